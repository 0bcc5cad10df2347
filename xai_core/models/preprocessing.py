"""A model's preprocessing (torchvision's `ImageClassification`: resize, centre crop, scale to [0, 1],
normalise) as batched tensor work on the model's device.

torchvision's preset runs on one PIL image at a time on the CPU; on a GPU that per-image Python was
most of `explain_batch`'s time (issue 20). Here the CPU only turns each decoded picture into a
uint8 array (in the worker threads); images of one size are stacked, moved to the device in one
transfer per size and resized there together (torchvision's own tensor kernels: antialiased, as the
preset), then the whole batch is centre-cropped and normalised at once. The uint8 crop is also the
picture the maps are aligned with (`Prepared.pixels`), so no second resize is needed for display.

The result matches the PIL preset up to the resize kernel's rounding: torch's antialiased uint8
resize against Pillow's (measured in `benchmarks/bench_preprocess.py`, checked in
`tests/models/test_preprocessing.py`); the crop, scaling and normalisation are the same operations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torchvision.transforms.v2.functional as F
from PIL import Image
from torch import nn

from .._pool import worker_pool
from ..errors import InvalidImageError
from ..images import bounded_aspect
from .geometry import Geometry, geometry_of

@dataclass(frozen=True)
class Prepared:
    """A batch ready for the model: `x` float32 [N, 3, H, W] normalised, and `pixels` uint8
    [N, H, W, 3] (RGB, the resized and cropped picture `x` was made from), both on the device;
    `geometries`: how each original image became its picture (`Geometry`), one per image."""

    x: torch.Tensor
    pixels: torch.Tensor
    geometries: tuple = ()

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, index: slice) -> "Prepared":
        return Prepared(self.x[index], self.pixels[index], self.geometries[index])


def prepare(transforms: nn.Module, images: Sequence[Image.Image], device: torch.device) -> Prepared:
    """`images` (RGB PIL images, e.g. from `load_image`) through `transforms` (a torchvision
    `ImageClassification`) as one batch on `device`."""
    arrays = list(worker_pool().map(_array, images)) if len(images) > 1 else [_array(i) for i in images]
    crops: list = [None] * len(arrays)
    geometries: list = [None] * len(arrays)
    crop_wh = tuple(_center_crop_size(transforms.crop_size))[::-1]
    for shape, indices in _by_shape(arrays).items():
        stacked = torch.from_numpy(np.stack([arrays[i] for i in indices]))  # [n, H, W, 3]
        if device.type == "cuda":
            stacked = stacked.pin_memory()
        stacked = stacked.to(device, non_blocking=True).permute(0, 3, 1, 2)  # channels-last NCHW, no copy
        resized = F.resize(stacked, list(transforms.resize_size), interpolation=transforms.interpolation,
                           antialias=transforms.antialias)
        cropped = F.center_crop(resized, list(transforms.crop_size))
        for n, i in enumerate(indices):
            crops[i] = cropped[n]
            geometries[i] = geometry_of(images[i], (resized.shape[-1], resized.shape[-2]), crop_wh)
    pixels = torch.stack(crops)
    return Prepared(normalise(transforms, pixels), pixels.permute(0, 2, 3, 1).contiguous(), tuple(geometries))


def normalise(transforms: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 3, H, W] -> the model's float32 input: scaled to [0, 1] and normalised, as the preset."""
    mean = torch.tensor(transforms.mean, dtype=torch.float32, device=pixels.device)[None, :, None, None]
    std = torch.tensor(transforms.std, dtype=torch.float32, device=pixels.device)[None, :, None, None]
    x = pixels.contiguous().to(torch.float32) / 255
    return (x - mean) / std


def from_tensor(transforms: nn.Module, x: torch.Tensor, device: torch.device) -> Prepared:
    """A ready model input (float [N, 3, H, W], normalised with `transforms`' mean and std, e.g. a
    DataLoader's batch) as a `Prepared` on `device`; its pixels are the input un-normalised. Raises
    `InvalidImageError` for a tensor of another shape or type."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point() \
            or x.shape[0] == 0:
        shape = "x".join(map(str, x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InvalidImageError(f"A tensor batch must be float [N, 3, H, W], normalised as the model's "
                                f"preprocessing does; this one is {shape}"
                                f"{'' if not isinstance(x, torch.Tensor) else ' ' + str(x.dtype)}.")
    x = x.to(device=device, dtype=torch.float32)
    mean = torch.tensor(transforms.mean, dtype=torch.float32, device=device)[None, :, None, None]
    std = torch.tensor(transforms.std, dtype=torch.float32, device=device)[None, :, None, None]
    pixels = ((x * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)
    identity = Geometry.identity((x.shape[-1], x.shape[-2]))
    return Prepared(x, pixels.permute(0, 2, 3, 1).contiguous(), (identity,) * x.shape[0])


def _array(image: Image.Image) -> np.ndarray:
    """uint8 [H, W, 3] of an RGB PIL image, its aspect bounded as the models expect."""
    image = bounded_aspect(image)
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


def _center_crop_size(size) -> tuple[int, int]:
    """(height, width) of a centre crop given as torchvision takes it: one side or [height, width]."""
    size = [size] if isinstance(size, int) else list(size)
    return (int(size[0]), int(size[-1]))


def _by_shape(arrays: list) -> dict:
    """Indices of the arrays grouped by shape, in first-seen order: each group is resized together."""
    groups: dict = {}
    for i, a in enumerate(arrays):
        groups.setdefault(a.shape, []).append(i)
    return groups


__all__ = ["Prepared", "from_tensor", "normalise", "prepare"]
