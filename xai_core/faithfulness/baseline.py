"""The random-map baseline every map is scored against, and which maps are the same (scored once)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..methods import GAP_IDENTICAL
from ..models import ModelHandle

#: The baseline's name among the methods' maps.
RANDOM = "random"
#: Seed of the random baseline map: uniform noise on a coarse grid (the side / 32 like a CAM's
#: resolution, at least 4), upsampled bilinearly, so it is as smooth as the maps it is compared with.
RANDOM_SEED = 0
#: Maps that differ by at most this everywhere are scored once (e.g. gradcam = hirescam at a GAP layer).
SAME_MAP_TOLERANCE = 1e-5


def random_map(shape: tuple[int, int]) -> np.ndarray:
    """The baseline map: smooth, seeded uniform noise, float32 [H, W] in [0, 1]."""
    grid = (max(4, round(shape[0] / 32)), max(4, round(shape[1] / 32)))
    coarse = torch.from_numpy(np.random.default_rng(RANDOM_SEED).random(grid, dtype=np.float32))
    fine = torch.nn.functional.interpolate(coarse[None, None], size=shape, mode="bilinear", align_corners=False)
    cam = fine[0, 0].numpy()
    return np.float32((cam - cam.min()) / max(float(np.ptp(cam)), 1e-12))


def same_map_groups(maps: dict[str, np.ndarray]) -> dict[str, list[str]]:
    """Maps equal within `SAME_MAP_TOLERANCE`, as {representative: [it and its equals]}."""
    groups: dict[str, list[str]] = {}
    for method, cam in maps.items():
        rep = next((r for r in groups if np.abs(maps[r] - cam).max() <= SAME_MAP_TOLERANCE), None)
        if rep is None:
            groups[method] = [method]
        else:
            groups[rep].append(method)
    return groups


def identical_pairs(handle: ModelHandle, methods: Sequence[str], layers: Sequence[str]) -> tuple[tuple[str, str, str], ...]:
    """The pairs of `methods` whose maps are equal by construction at `layers`, each as (method,
    method, reason): Grad-CAM, HiResCAM and XGrad-CAM before global average pooling + a linear layer."""
    same = [m for m in GAP_IDENTICAL if m in methods]
    if len(same) < 2 or not all(handle.is_gap_linear(n) for n in layers):
        return ()
    reason = (f"{layers[0]} feeds global average pooling + a linear layer, so the gradient is the "
              "same at every location")
    return tuple((a, b, reason) for i, a in enumerate(same) for b in same[i + 1:])


__all__ = ["RANDOM", "RANDOM_SEED", "SAME_MAP_TOLERANCE", "identical_pairs", "random_map", "same_map_groups"]
