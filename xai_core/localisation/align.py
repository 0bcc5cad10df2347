"""Ground truth in the original image's pixels (boxes, a mask array or file, a `GroundTruth`) put on
the model's picture through the explanation's `Geometry`: one bool mask of the maps' shape, and
sentences about what was done on the way (clipped boxes, a scaled mask, an empty one)."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from ..errors import InvalidGroundTruthError
from ..models import Geometry
from .truth import Box, GroundTruth, _finite

#: What `localise(box=...)` takes: (x0, y0, x1, y1), a `Box`, or a sequence of them (their union).
BoxArg = Union[Sequence[float], Box, Sequence[Union[Sequence[float], Box]]]


@dataclass(frozen=True)
class Aligned:
    """Ground truth on the picture: `mask` bool [height, width]; `present`: whether the ground truth
    holds an object in the original image at all (False: an empty mask, every box left out), so an
    empty `mask` with `present` means the crop cut the object away; `notes`: what was done."""

    mask: np.ndarray
    present: bool
    notes: tuple[str, ...]


def aligned_mask(geometry: Geometry, box: Optional[BoxArg] = None, mask=None,
                 truth: Optional[GroundTruth] = None) -> Aligned:
    """The object on the picture from exactly one of `box`, `mask` (a 2-D array, a mask file, its
    bytes or a PIL image, covering the original image) or `truth` (`Aligned`). Raises
    `InvalidGroundTruthError` for neither or several, an empty box, a box outside the image, a mask
    that is not 2-D or not an image."""
    if sum(x is not None for x in (box, mask, truth)) != 1:
        raise InvalidGroundTruthError("Give the object once: box=(x0, y0, x1, y1), mask=an array or a mask file, "
                                      "or truth=a GroundTruth.")
    if box is not None:
        return _boxes_on_picture(geometry, _boxes(box), strict=True)
    if mask is not None:
        return _mask_on_picture(geometry, mask)
    return _truth_on_picture(geometry, truth)


def _boxes(box: BoxArg) -> list[Box]:
    """`box` as a list of `Box`es; raises for anything that is not one box or a sequence of them."""
    if isinstance(box, Box):
        return [box]
    items = list(box) if isinstance(box, (list, tuple, np.ndarray)) else None
    if items and all(isinstance(v, (int, float, np.integer, np.floating)) for v in items):
        items = [items]
    boxes = []
    for item in items or [None]:
        if isinstance(item, Box):
            boxes.append(item)
            continue
        values = [_finite(v) for v in item] if isinstance(item, (list, tuple, np.ndarray)) else []
        if len(values) != 4 or None in values:
            raise InvalidGroundTruthError(f"A box is four numbers (x0, y0, x1, y1) in the original image's pixels, "
                                          f"not {item!r}.")
        boxes.append(Box(*values))
    return boxes


def _boxes_on_picture(geometry: Geometry, boxes: list[Box], strict: bool) -> Aligned:
    """The union of `boxes` on the picture. An empty box, or one wholly outside the image, raises
    when `strict` (the user typed it), else is left out with a note (it came from a file)."""
    size = geometry.original
    notes: list[str] = []
    picture = np.zeros(geometry.picture[::-1], dtype=bool)
    present = False
    for box in boxes:
        shown = f"({box.x0:g}, {box.y0:g}, {box.x1:g}, {box.y1:g})"
        clipped = box.clipped(size)
        if box.empty or clipped.empty:
            why = ("is empty: x1 must exceed x0 and y1 exceed y0" if box.empty
                   else f"lies outside the image ({size[0]}x{size[1]} pixels)")
            if strict:
                raise InvalidGroundTruthError(f"The box {shown} {why}.")
            notes.append(f"The box {shown} {why}, so it was left out.")
            continue
        if clipped != box:
            notes.append(f"The box {shown} was clipped to the image ({size[0]}x{size[1]} pixels).")
        picture |= geometry.box_to_picture(clipped.x0, clipped.y0, clipped.x1, clipped.y1)
        present = True
    return Aligned(picture, present, tuple(notes))


def _mask_on_picture(geometry: Geometry, mask) -> Aligned:
    """A mask array or file (> 0 is the object) stretched over the original image, on the picture."""
    name = Path(mask).name if isinstance(mask, (str, Path)) else "The mask"
    if isinstance(mask, (str, Path, bytes, bytearray)):
        array = read_mask(mask)
    elif isinstance(mask, Image.Image):
        array = _mask_array(mask)
    else:
        array = np.asarray(mask)
    if array.ndim != 2 or array.size == 0 or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise InvalidGroundTruthError(f"{name} must be a 2-D array of numbers (rows, columns), not one of shape "
                                      f"{array.shape} and type {array.dtype}.")
    notes = []
    w, h = geometry.original
    if array.shape != (h, w):
        notes.append(f"{name} is {array.shape[1]}x{array.shape[0]} pixels and the image {w}x{h}; it was scaled "
                     "to the image.")
    present = bool((array > 0).any())
    if not present:
        notes.append(f"{name} is empty (no pixel above 0), so there is no object to point at.")
    return Aligned(geometry.mask_to_picture(array > 0), present, tuple(notes))


def read_mask(path: Union[str, Path, bytes]) -> np.ndarray:
    """A mask file (its path, or its bytes: an upload) as a 2-D array (a palette image's indices, a
    colour image's brightest channel; an alpha channel is ignored). Raises `InvalidGroundTruthError`
    naming a file that is not an image."""
    data = isinstance(path, (bytes, bytearray))
    name = "The mask" if data else f"The mask {Path(path).name}"
    try:
        with Image.open(io.BytesIO(path) if data else Path(path)) as image:
            image.load()
            return _mask_array(image)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        raise InvalidGroundTruthError(f"{name} is not an image we can read; save it as a PNG.") from None


def _mask_array(image: Image.Image) -> np.ndarray:
    """A mask image's values: a palette image's indices, a colour image's brightest channel."""
    if image.mode in ("RGB", "RGBA", "CMYK", "YCbCr", "LA", "PA"):
        return np.asarray(image.convert("RGB")).max(axis=-1)
    return np.asarray(image)


def _truth_on_picture(geometry: Geometry, truth: GroundTruth) -> Aligned:
    """The union of everything `truth` holds, on the picture; its own notes first."""
    notes = list(truth.notes)
    picture = np.zeros(geometry.picture[::-1], dtype=bool)
    present = bool(truth.polygons or truth.rles)
    drawn = truth.size or geometry.original
    if truth.size and tuple(truth.size) != tuple(geometry.original):
        notes.append(f"{truth.source or 'The ground truth'} was drawn on a {drawn[0]}x{drawn[1]} image and this one "
                     f"is {geometry.original[0]}x{geometry.original[1]}; it was scaled to the image.")
    if truth.boxes:
        sx, sy = geometry.original[0] / drawn[0], geometry.original[1] / drawn[1]
        scaled = [Box(b.x0 * sx, b.y0 * sy, b.x1 * sx, b.y1 * sy, b.label) for b in truth.boxes]
        boxes = _boxes_on_picture(geometry, scaled, strict=False)
        picture |= boxes.mask
        present |= boxes.present
        notes.extend(boxes.notes)
    if truth.polygons:
        canvas = Image.new("1", tuple(drawn))  # Pillow rasterises the polygons at the size they were drawn on
        draw = ImageDraw.Draw(canvas)
        for polygon in truth.polygons:
            draw.polygon(list(polygon), fill=1, outline=1)
        picture |= geometry.mask_to_picture(np.asarray(canvas))
    for rle in truth.rles:
        picture |= geometry.mask_to_picture(_decode_rle(rle, truth.source))
    if truth.mask is not None:
        mask = _mask_on_picture(geometry, truth.mask)
        picture |= mask.mask
        present |= mask.present
        notes.extend(mask.notes)
    if truth.empty:
        notes.append(f"{truth.source or 'The ground truth'} holds no object for this image.")
    return Aligned(picture, present, tuple(notes))


def _decode_rle(rle: dict, source: str) -> np.ndarray:
    """A COCO RLE mask decoded with pycocotools (the readers refuse RLE without it)."""
    try:
        from pycocotools import mask as coco_mask  # optional: only COCO RLE needs it
    except ImportError:
        raise InvalidGroundTruthError(f"{source or 'The ground truth'} holds RLE masks, which need pycocotools: "
                                      "pip install pycocotools.") from None
    counts = rle["counts"]
    if isinstance(counts, list):
        rle = coco_mask.frPyObjects(rle, *rle["size"])
    elif isinstance(counts, str):
        rle = {"size": rle["size"], "counts": counts.encode("ascii")}
    with warnings.catch_warnings():  # pycocotools 2.0 calls numpy's __array__ the pre-2.0 way
        warnings.simplefilter("ignore", DeprecationWarning)
        return np.asarray(coco_mask.decode(rle)) > 0


__all__ = ["Aligned", "BoxArg", "aligned_mask", "read_mask"]
