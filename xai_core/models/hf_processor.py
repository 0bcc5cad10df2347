"""A Hugging Face image processor as torchvision preprocessing (`hf_transforms`): its resize, centre
crop, scaling and normalisation as an `ImageClassification`, checked against the processor itself
on a probe image (`misfit`), for the model source `hf:` (`hf.py`)."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms._presets import ImageClassification

from ..errors import InvalidOptionError
from .preprocessing import prepare

#: Largest mean |ours - processor's| (normalised units) on the probe image, up to a one-pixel shift
#: of the crop (`misfit`): our resize, crop and normalisation must be the processor's; only the
#: kernels' rounding may differ (LANCZOS, approximated by BICUBIC, measures 5e-4).
PREPROCESS_TOLERANCE = 0.02
#: PIL resampling codes (the processors' `resample`) -> what the tensor resize offers. LANCZOS (1) is
#: approximated by BICUBIC, as transformers' own torchvision backend does off the CPU.
_RESAMPLE = {0: InterpolationMode.NEAREST_EXACT, 1: InterpolationMode.BICUBIC, 2: InterpolationMode.BILINEAR,
             3: InterpolationMode.BICUBIC}


def hf_transforms(processor, source: str, input_size: Optional[int] = None) -> ImageClassification:
    """The image processor's resize, centre crop, scaling and normalisation as a torchvision
    `ImageClassification` (sizes may be [height, width] lists: an exact resize), at crop
    `input_size` when given. Raises `InvalidOptionError` for a processor it cannot express, or whose
    output it does not reproduce on a probe image."""
    kind = type(processor).__name__
    factor = float(getattr(processor, "rescale_factor", 0) or 0) if getattr(processor, "do_rescale", True) else 1.0
    if not math.isclose(factor, 1 / 255, rel_tol=1e-4):
        raise InvalidOptionError(f"{source}'s image processor ({kind}) scales pixels by {factor:g}, not 1/255; "
                                 "only processors that map pixels to [0, 1] before normalising are supported.")
    resize, crop = _sizes(processor, source, kind)
    if getattr(processor, "do_normalize", True):
        mean, std = _triple(processor.image_mean), _triple(processor.image_std)
    else:
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    resample = getattr(processor, "resample", None)
    interpolation = _interpolation(resample)
    if interpolation is None:
        raise InvalidOptionError(f"{source}'s image processor ({kind}) resizes with resampling {resample!r}; "
                                 "only nearest, bilinear, bicubic and lanczos are supported.")
    transforms = _classification(resize, crop, mean, std, interpolation)
    _check_preprocessing(transforms, processor, source, kind)
    if not input_size:
        return transforms
    size = int(input_size)
    scaled = [round(size * r / c) for r, c in zip(resize, crop)] if len(resize) == 2 else \
        [round(size * resize[0] / min(crop))]
    return _classification(scaled, [size, size], mean, std, interpolation)


def _interpolation(resample) -> Optional[InterpolationMode]:
    """The tensor resize's mode for a processor's `resample` (a PIL code, or a torchvision mode;
    None: bilinear, transformers' default), or None when it has none."""
    if isinstance(resample, InterpolationMode):
        return resample if resample in _RESAMPLE.values() else None
    try:
        return _RESAMPLE.get(int(2 if resample is None else resample))
    except (TypeError, ValueError):
        return None


def _sizes(processor, source: str, kind: str) -> tuple[list[int], list[int]]:
    """(resize, crop) in torchvision's terms: [h, w] resizes to exactly that, [n] the shorter edge to n."""
    size = getattr(processor, "size", None)
    height, width, short = (_field(size, k) for k in ("height", "width", "shortest_edge"))
    cropped = getattr(processor, "do_center_crop", False) and getattr(processor, "crop_size", None) is not None
    crop = [_field(processor.crop_size, "height"), _field(processor.crop_size, "width")] if cropped else None
    pct = getattr(processor, "crop_pct", None)
    unsupported = not getattr(processor, "do_resize", True) or any(
        _field(size, k) for k in ("longest_edge", "max_height", "max_width")) or (crop is not None and None in crop)
    if not unsupported and height and width and not short and not pct:
        return [height, width], crop or [height, width]  # ViT: an exact resize, then maybe a crop (DeiT)
    if not unsupported and short and pct and crop is None:  # ConvNeXt: shorter edge to short / crop_pct, crop
        return ([int(short / pct)], [short, short]) if short < 384 else ([short, short], [short, short])
    if not unsupported and short and crop:  # BiT / DINOv2 / CLIP (and PoolFormer, by short / crop_pct)
        return [int(short / pct) if pct else short], crop
    raise InvalidOptionError(f"{source}'s image processor ({kind}) does not resize every image to one size "
                             f"(size {_shown(size)}, centre crop {crop}); only fixed-size processors are supported.")


def _field(size, key: str) -> Optional[int]:
    """`size[key]` of a size dict or transformers' `SizeDict` (None when absent or zero)."""
    if size is None:
        return None
    value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
    return int(value) if value else None


def _shown(size) -> dict:
    keys = ("height", "width", "shortest_edge", "longest_edge", "max_height", "max_width")
    return {k: _field(size, k) for k in keys if _field(size, k)}


def _triple(values) -> tuple[float, float, float]:
    values = [float(values)] * 3 if isinstance(values, (int, float)) else [float(v) for v in values]
    return tuple(values) * (3 // len(values))  # type: ignore[return-value]


def _classification(resize: list[int], crop: list[int], mean, std, interpolation) -> ImageClassification:
    """torchvision's preset with `resize` and `crop` as given: its constructor takes one int each
    and wraps it in a list, so [height, width] sizes are set afterwards (its `forward`, and
    `preprocessing.prepare`, resize and crop to exactly a two-element list)."""
    transforms = ImageClassification(crop_size=crop[0], resize_size=resize[0], mean=mean, std=std,
                                     interpolation=interpolation, antialias=True)
    transforms.resize_size, transforms.crop_size = list(resize), list(crop)
    return transforms


def _probe_image() -> Image.Image:
    """A smooth, textured, landscape picture (not square: the resize rule shows)."""
    y, x = np.mgrid[0:300, 0:400] / 40.0
    rgb = np.stack([np.sin(x) * np.cos(y), np.sin(x + y), np.cos(0.5 * x - y)], axis=-1)
    return Image.fromarray(((rgb + 1) * 127.5).astype(np.uint8))


def _check_preprocessing(transforms: ImageClassification, processor, source: str, kind: str) -> None:
    """Refuse (one sentence) when `transforms` does not give the processor's pixel values."""
    image = _probe_image()
    try:
        want = torch.as_tensor(processor(images=image, return_tensors="pt")["pixel_values"], dtype=torch.float32)
    except Exception as err:  # noqa: BLE001 - a processor that cannot take an RGB picture
        raise InvalidOptionError(f"{source}'s image processor ({kind}) fails on an RGB picture "
                                 f"({type(err).__name__}); save a working processor with save_pretrained.") from None
    got = prepare(transforms, [image], torch.device("cpu")).x
    if got.shape != want.shape or misfit(got, want) > PREPROCESS_TOLERANCE:
        raise InvalidOptionError(f"{source}'s image processor ({kind}) prepares images in a way that resize, centre "
                                 "crop and normalisation do not reproduce; use a model with a standard processor.")


def misfit(got: torch.Tensor, want: torch.Tensor) -> float:
    """Mean |got - want| at the best of the nine one-pixel shifts: torchvision's centre crop rounds a
    half-pixel offset (Python's `round`), transformers' truncates it, so a crop may sit one pixel off."""
    h, w = got.shape[-2:]
    best = float("inf")
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            a = got[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)]
            b = want[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
            best = min(best, float((a - b).abs().mean()))
    return best


__all__ = ["PREPROCESS_TOLERANCE", "hf_transforms", "misfit"]
