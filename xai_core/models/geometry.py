"""How an original image became the model's picture (`Geometry`): the decoder's downscale of a very
large photo, the aspect bound's centre crop, the preprocessing's resize and centre crop. Ground truth
given in the original image's pixels goes through the same steps (`box_to_picture`,
`mask_to_picture`) to land on the pixels the maps cover."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from PIL import Image

from ..images import aspect_box, downscaled_from


@dataclass(frozen=True)
class Geometry:
    """Where the picture's pixels come from. All sizes are (width, height).

    `original`: the image as the user has it (EXIF orientation applied): ground truth's coordinates.
    `decoded`: its size once decoded (smaller than `original` only for a photo over
    `images.WORK_PIXELS`). `kept`: the part (left, top, right, bottom) of the decoded image the
    aspect bound keeps (`images.aspect_box`). `resized`: the kept part's size after the resize.
    `offset`: (left, top) of the picture in the resized image (negative where the crop pads).
    `picture`: the picture's size (the maps' size)."""

    original: tuple[int, int]
    decoded: tuple[int, int]
    kept: tuple[int, int, int, int]
    resized: tuple[int, int]
    offset: tuple[int, int]
    picture: tuple[int, int]

    @classmethod
    def identity(cls, size: tuple[int, int]) -> "Geometry":
        """The geometry of a picture that is its own original (a ready tensor input), `size` (w, h)."""
        w, h = int(size[0]), int(size[1])
        return cls((w, h), (w, h), (0, 0, w, h), (w, h), (0, 0), (w, h))

    def sources(self) -> tuple[np.ndarray, np.ndarray]:
        """The original-image coordinates (x of each column, y of each row) of the picture's pixel
        centres, float64: where each picture pixel samples the original (beyond [0, side): padding)."""
        xs = self._axis(0, self.picture[0])
        ys = self._axis(1, self.picture[1])
        return xs, ys

    def _axis(self, axis: int, count: int) -> np.ndarray:
        kept_side = self.kept[axis + 2] - self.kept[axis]
        centres = np.arange(count, dtype=np.float64) + 0.5 + self.offset[axis]  # resized coordinates
        decoded = centres * (kept_side / self.resized[axis]) + self.kept[axis]
        return decoded * (self.original[axis] / self.decoded[axis])

    def box_to_picture(self, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        """The box (original pixels; left, top inclusive, right, bottom exclusive, as Pillow's
        crop box) on the picture: bool [height, width], True where a pixel's centre samples the box
        (clipped to the image). Empty when the crop cuts the box away."""
        xs, ys = self.sources()
        w, h = self.original
        x0, x1 = max(float(x0), 0.0), min(float(x1), float(w))
        y0, y1 = max(float(y0), 0.0), min(float(y1), float(h))
        return ((ys >= y0) & (ys < y1))[:, None] & ((xs >= x0) & (xs < x1))[None, :]

    def mask_to_picture(self, mask) -> np.ndarray:
        """A mask covering the whole original image (bool or numbers, > 0 is the object, [rows,
        cols] of any size: it is stretched over the original) on the picture: bool [height, width].
        Nearest neighbour at each picture pixel's centre, i.e. torch's "nearest-exact" resize
        followed by the same crop; an index gather rather than a resize of the whole mask, so a
        large mask costs only the picture's pixels (and the aspect crop and padding fall out)."""
        mask = np.asarray(mask)
        if mask.ndim != 2 or mask.size == 0:
            raise ValueError(f"A mask is a 2-D array, not one of shape {mask.shape}.")
        xs, ys = self.sources()
        cols = np.floor(xs * (mask.shape[1] / self.original[0])).astype(np.int64)
        rows = np.floor(ys * (mask.shape[0] / self.original[1])).astype(np.int64)
        col_ok, row_ok = (cols >= 0) & (cols < mask.shape[1]), (rows >= 0) & (rows < mask.shape[0])
        picked = mask[np.clip(rows, 0, mask.shape[0] - 1)[:, None], np.clip(cols, 0, mask.shape[1] - 1)[None, :]] > 0
        return picked & row_ok[:, None] & col_ok[None, :]


def geometry_of(image: Image.Image, resized: tuple[int, int], crop: tuple[int, int]) -> Geometry:
    """The geometry of `image` (from `load_image`) resized to `resized` (w, h; the resize's real
    output) and centre-cropped to `crop` (w, h) as torchvision's `center_crop` does."""
    decoded = image.size
    original: Optional[tuple[int, int]] = downscaled_from(image)
    offset = (center_crop_offset(resized[0], crop[0]), center_crop_offset(resized[1], crop[1]))
    return Geometry(tuple(original or decoded), tuple(decoded), aspect_box(decoded), tuple(resized), offset,
                    tuple(crop))


def center_crop_offset(side: int, crop: int) -> int:
    """Where torchvision's `center_crop` of `crop` pixels starts along a side of `side` pixels (its
    `_center_crop_compute_crop_anchor` and `_center_crop_compute_padding`, private, so restated here
    and pinned by tests/localisation/test_geometry.py): round((side - crop) / 2) when cropping, minus
    the left / top padding (crop - side) // 2 when the crop is larger than the side."""
    if crop > side:
        return -((crop - side) // 2)
    return int(round((side - crop) / 2.0))


__all__ = ["Geometry", "center_crop_offset", "geometry_of"]
