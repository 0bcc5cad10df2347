"""Evidence for each concept: the picture crops where its coefficient map peaks (one per image, the
images with the highest peaks first), and the classes its direction votes for (as DFF labels its
components: the model's head on the concept tiled over the layer's grid)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..explain import decoded
from ..factorize import concept_probabilities
from ..images import ImageSource
from ..models import ModelHandle

#: Side of a crop in the picture's pixels (smaller pictures give smaller crops).
CROP_PIXELS = 64


def peaks(coefficients: np.ndarray, concept: int, count: int) -> list:
    """The `count` images where concept `concept` peaks highest: [(image, row, column)] on the
    layer's grid, highest first (ties: the earlier image)."""
    maps = coefficients[:, concept]  # [N, h, w]
    flat = maps.reshape(len(maps), -1)
    best = flat.argmax(axis=1)
    values = flat[np.arange(len(flat)), best]
    chosen = np.lexsort((np.arange(len(values)), -values))[:count]
    width = maps.shape[2]
    return [(int(n), int(best[n] // width), int(best[n] % width)) for n in chosen]


def centre(row: int, column: int, grid: tuple, picture: tuple) -> tuple:
    """(x, y) in the picture (height, width) of a grid cell's centre."""
    return (int((column + 0.5) * picture[1] / grid[1]), int((row + 0.5) * picture[0] / grid[0]))


def crop_box(x: int, y: int, picture: tuple) -> tuple:
    """(left, top, side) of the square crop centred on (x, y) as far as the picture allows."""
    side = min(CROP_PIXELS, picture[0], picture[1])
    left = min(max(x - side // 2, 0), picture[1] - side)
    top = min(max(y - side // 2, 0), picture[0] - side)
    return left, top, side


def crops(handle: ModelHandle, images: Sequence[ImageSource], coefficients: np.ndarray, count: int,
          picture: tuple) -> list:
    """Per concept, `count` crops [(image, x, y, uint8 RGB [s, s, 3])] where it peaks; the
    chosen images are decoded and preprocessed again (no forward)."""
    grid = coefficients.shape[2:]
    chosen = [peaks(coefficients, i, count) for i in range(coefficients.shape[1])] if count else []
    wanted = sorted({n for per in chosen for n, _, _ in per})
    pixels = {}
    for start in range(0, len(wanted), 16):
        part = wanted[start:start + 16]
        pils = [decoded(images, n, n + 1)[0] for n in part]
        for n, array in zip(part, handle.prepare(pils).pixels.cpu().numpy()):
            pixels[n] = array
    out = []
    for per in chosen:
        found = []
        for n, row, column in per:
            x, y = centre(row, column, grid, picture)
            left, top, side = crop_box(x, y, picture)
            found.append((n, x, y, np.ascontiguousarray(pixels[n][top:top + side, left:left + side])))
        out.append(found)
    return out


def labels(handle: ModelHandle, layer: str, concepts: np.ndarray, raw: torch.Tensor, x: torch.Tensor,
           top_k: int = 2) -> list:
    """Per concept, its `top_k` classes [(label, probability)] through the head (`concepts`: [C, k]
    as DFF's, i.e. direction + offset; `raw`, `x`: one image's activations and input)."""
    probs = concept_probabilities(handle, layer, concepts, raw, x)
    order = np.argsort(-probs, axis=1)[:, :top_k]
    return [[(handle.categories[j], float(probs[i, j])) for j in row] for i, row in enumerate(order)]
