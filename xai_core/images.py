"""Decoding user images into RGB `PIL.Image`s: Pillow does the decoding and EXIF; we add the checks."""

from __future__ import annotations

import io
import os
import re
import warnings
from typing import BinaryIO, Optional, Union

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from .errors import InvalidImageError

ImageSource = Union[str, os.PathLike, bytes, bytearray, BinaryIO, Image.Image]

#: Images with more pixels than this are refused as possible decompression bombs.
MAX_PIXELS = 64_000_000
#: Larger images are downscaled (keeping their aspect) to at most this many pixels while decoding;
#: the models only look at a 224-256 px crop, and this bounds memory per request.
WORK_PIXELS = 16_000_000
#: `image.info` key recording the original (width, height) of a downscaled image.
DOWNSCALED_FROM = "xai_downscaled_from"
#: EXIF orientations whose transpose swaps width and height (5-8: a quarter turn, maybe mirrored).
_SWAPS_SIDES = (5, 6, 7, 8)
#: Transparent pixels are put on this neutral grey before the model sees them.
TRANSPARENT_FILL = (128, 128, 128)


def load_image(source: ImageSource) -> Image.Image:
    """Return `source` (path, bytes, binary file object or PIL image) as an RGB `PIL.Image`.

    EXIF orientation is applied, the first frame of an animation is used, transparency is put on
    a neutral grey; images over WORK_PIXELS are downscaled, and `image.info[DOWNSCALED_FROM]`
    then holds the original size (as shown: EXIF orientation applied) (see `downscaled_from`). Raises `InvalidImageError` (a `ValueError`) for anything that is not a
    decodable raster image, decompression bombs included.
    """
    if isinstance(source, Image.Image):
        return _to_rgb(source)
    stream = _open_stream(source)
    try:
        with warnings.catch_warnings():
            # Pillow warns above its own limit (89 megapixels); ours is lower and refused in one sentence
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(stream)
        with opened as img:
            _check_size(img.size)
            original = img.size
            scale = (WORK_PIXELS / (original[0] * original[1])) ** 0.5
            target = (max(1, int(original[0] * scale)), max(1, int(original[1] * scale)))
            if scale < 1:
                img.draft("RGB", target)  # JPEG: decode at a reduced scale directly
            img.seek(0)
            img.load()
            if scale < 1 and img.size[0] * img.size[1] > WORK_PIXELS:
                img.thumbnail(target, Image.Resampling.LANCZOS)
            if img.getexif().get(ExifTags.Base.Orientation) in _SWAPS_SIDES:
                original = original[::-1]  # the size as the photo is shown (the transpose below turns it)
            img = _to_rgb(ImageOps.exif_transpose(img))
            if scale < 1:
                img.info[DOWNSCALED_FROM] = original
            return img
    except InvalidImageError:
        raise
    except Image.DecompressionBombError as err:  # over Pillow's hard limit (179 megapixels), so over ours
        pixels = re.search(r"(\d+) pixels", str(err))
        size = f"{int(pixels.group(1)) / 1e6:.0f} megapixels" if pixels else "too many pixels"
        raise InvalidImageError(f"The image is too large to decode safely: {size}, where the limit is "
                                f"{MAX_PIXELS // 1_000_000} megapixels.") from None
    except UnidentifiedImageError:
        raise InvalidImageError(
            "This file is not an image we can read; use a PNG, JPEG, WebP, BMP, GIF or TIFF photo."
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, TypeError):  # Pillow's wording is not for our users
        raise InvalidImageError("The image file is damaged or truncated and cannot be decoded; choose another "
                                "file.") from None


def downscaled_from(image: Image.Image) -> Optional[tuple[int, int]]:
    """The original (width, height) when `load_image` downscaled `image`, else None."""
    return image.info.get(DOWNSCALED_FROM)


#: Images longer than this many times their width (or wider than this many times their height) are
#: centre-cropped to this ratio before preprocessing: a 3000x24 strip would otherwise be resized to
#: a few pixels high, and the model's centre crop sees only a central square of it anyway.
MAX_ASPECT = 4.0


def bounded_aspect(image: Image.Image) -> Image.Image:
    """`image`, centre-cropped to at most `MAX_ASPECT`:1 (to `aspect_box(image.size)`)."""
    box = aspect_box(image.size)
    return image if box == (0, 0, *image.size) else image.crop(box)


def aspect_box(size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The part (left, top, right, bottom) of a picture of `size` (width, height) that
    `bounded_aspect` keeps: all of it, or its central `MAX_ASPECT`:1 part."""
    w, h = size
    if max(w, h) <= MAX_ASPECT * min(w, h):
        return (0, 0, w, h)
    keep = int(MAX_ASPECT * min(w, h))
    if w > h:
        left = (w - keep) // 2
        return (left, 0, left + keep, h)
    top = (h - keep) // 2
    return (0, top, w, top + keep)


def input_notices(image: Image.Image) -> tuple[str, ...]:
    """Sentences for the user about what was done to `image` (from `load_image`) before the model
    sees it: a downscale of a very large photo, a crop of an extreme aspect ratio."""
    notices = []
    original = downscaled_from(image)
    if original:
        notices.append(
            f"The photo is {original[0]}x{original[1]} pixels ({original[0] * original[1] / 1e6:.0f} megapixels); "
            f"it was downscaled to {image.size[0]}x{image.size[1]} while decoding, to bound memory "
            f"(the limit is {WORK_PIXELS // 1_000_000} megapixels)."
        )
    w, h = image.size
    if max(w, h) > MAX_ASPECT * min(w, h):
        notices.append(
            f"The photo is {max(w, h) / min(w, h):.0f} times {'wider' if w > h else 'taller'} than it is "
            f"{'high' if w > h else 'wide'}; the model looks at its central {MAX_ASPECT:g}:1 part."
        )
    return tuple(notices)


def _open_stream(source: ImageSource) -> BinaryIO:
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise InvalidImageError("The file is empty; choose an image file.")
        return io.BytesIO(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise InvalidImageError(f"No image file at {path!r}; check the path.")
        if os.path.getsize(path) == 0:
            raise InvalidImageError(f"The file {path!r} is empty; choose an image file.")
        with open(path, "rb") as fh:
            return io.BytesIO(fh.read())
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise InvalidImageError("The file object must be opened in binary mode.")
        return _open_stream(bytes(data))
    raise InvalidImageError(f"Cannot read an image from a {type(source).__name__}; pass a path, bytes or a file.")


def _check_size(size: tuple[int, int]) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise InvalidImageError("The image has no pixels.")
    if width * height > MAX_PIXELS:
        raise InvalidImageError(
            f"The image is too large to decode safely: {width}x{height} pixels "
            f"({width * height / 1e6:.0f} megapixels), where the limit is {MAX_PIXELS // 1_000_000} megapixels."
        )


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB (Pillow's `convert` clips 16-bit and float data, so
    those are rescaled here by hand)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        finite = arr[np.isfinite(arr)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        scaled = np.nan_to_num((arr - lo) / (hi - lo if hi > lo else 1.0)) * 255.0
        img = Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8), "L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, TRANSPARENT_FILL + (255,))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


__all__ = ["TRANSPARENT_FILL", "DOWNSCALED_FROM", "MAX_ASPECT", "MAX_PIXELS", "WORK_PIXELS", "ImageSource", "aspect_box", "bounded_aspect",
           "downscaled_from", "input_notices", "load_image"]
