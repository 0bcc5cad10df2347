"""How much two maps on one grid agree: Spearman's rank correlation over the pixels, the
IoU of each map's top 20% of pixels, the difference, and where the mass moved (centre of mass)."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

#: The share of each map's pixels (the highest) that `top_iou` compares.
TOP_SHARE = 0.2


def spearman(map_a: np.ndarray, map_b: np.ndarray) -> float:
    """Spearman's rank correlation of the two maps' pixels: the Pearson correlation of their ranks,
    ties ranked by their mean rank, as `scipy.stats.spearmanr` computes it (pinned by
    tests/compare/test_agreement_words.py); NaN where a map is constant (no ranking to compare).
    Equal maps give 1.0."""
    a, b = np.ravel(map_a), np.ravel(map_b)
    if a.size < 2 or a.min() == a.max() or b.min() == b.max():
        return math.nan
    if np.array_equal(a, b):
        return 1.0  # exactly: the correlation's floating-point sum can land a hair below
    rho = np.corrcoef(mean_ranks(a), mean_ranks(b))[0, 1]
    return float(np.clip(rho, -1.0, 1.0))


def mean_ranks(values: np.ndarray) -> np.ndarray:
    """`scipy.stats.rankdata(values, method="average")` (ranks from 1, ties sharing their mean rank),
    float64, through one `np.unique`: about twice as fast as rankdata on a map's float32 pixels,
    the bulk of a comparison's own cost, hence written out here."""
    _, inverse, counts = np.unique(np.ravel(values), return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inverse.ravel()]


def top_mask(cam: np.ndarray, share: float = TOP_SHARE) -> Optional[np.ndarray]:
    """bool mask of `cam`'s highest `share` of pixels: every pixel at or above the value of the
    ceil(share * n)-th highest (pixels tied at the cut all count, so no position is favoured);
    None for a constant map (no top to speak of)."""
    flat = np.ravel(cam)
    if flat.size == 0 or flat.min() == flat.max():
        return None
    k = max(1, int(math.ceil(share * flat.size)))
    cut = np.partition(flat, flat.size - k)[flat.size - k]
    return np.asarray(cam) >= cut


def top_iou(map_a: np.ndarray, map_b: np.ndarray, share: float = TOP_SHARE) -> float:
    """Intersection over union of the two maps' top `share` of pixels (`top_mask`); NaN where a map
    is constant."""
    ta, tb = top_mask(map_a, share), top_mask(map_b, share)
    if ta is None or tb is None:
        return math.nan
    return float(np.count_nonzero(ta & tb) / np.count_nonzero(ta | tb))


def difference(map_a: np.ndarray, map_b: np.ndarray) -> np.ndarray:
    """map_b - map_a, float32 in [-1, 1] (both maps in [0, 1])."""
    return np.clip(np.asarray(map_b, np.float32) - np.asarray(map_a, np.float32), -1.0, 1.0)


def centre_of_mass(cam: np.ndarray) -> Optional[tuple[float, float]]:
    """(x, y) of the map's centre of mass as fractions of its width and height (0.5, 0.5 is the
    middle); None for a map with no mass."""
    cam = np.asarray(cam, dtype=np.float64)
    total = cam.sum()
    if not total > 0:
        return None
    h, w = cam.shape
    x = float((cam.sum(axis=0) * (np.arange(w) + 0.5)).sum() / total / w)
    y = float((cam.sum(axis=1) * (np.arange(h) + 0.5)).sum() / total / h)
    return x, y


__all__ = ["TOP_SHARE", "centre_of_mass", "difference", "mean_ranks", "spearman", "top_iou", "top_mask"]
