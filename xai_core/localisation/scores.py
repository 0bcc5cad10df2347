"""The four localisation scores of one map against one object mask (numpy, both [H, W] on the
picture), and the centre-prior baseline map. Each is a few lines to recompute by hand; the pointing
game, energy and rank accuracy equal Quantus 0.6's `PointingGame` (on the dilated object),
`RelevanceMassAccuracy` and `RelevanceRankAccuracy` (tests/localisation/test_quantus_parity.py)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np
from scipy import ndimage

#: The pointing game's tolerance (Zhang et al. 2018): 15 px at a 224 px picture, scaled with the
#: map's shorter side (`pointing_radius`).
POINTING_TOLERANCE = (15, 224)


@dataclass(frozen=True)
class Scores:
    """One map's localisation scores; NaN where a score is undefined (an empty object, or a map
    that is zero everywhere).

    `pointing`: 1.0 when a maximum of the map lies in the object dilated by `pointing_radius`, else 0.0.
    `energy`: the share of the map's mass inside the object. `rank`: the share of the object's
    pixels among the map's |object| highest pixels. `iou`: intersection over union of the map's
    region at or above half its maximum with the object."""

    pointing: float
    energy: float
    rank: float
    iou: float


def pointing_radius(shape: tuple[int, int]) -> float:
    """The pointing game's tolerance in pixels of a map of `shape` (rows, cols): 15 at 224 px."""
    pixels, side = POINTING_TOLERANCE
    return pixels * min(shape) / side


def dilate(mask: np.ndarray, radius: float) -> np.ndarray:
    """`mask` (bool [H, W]) grown by every pixel whose centre lies within `radius` pixels
    (Euclidean) of one of its pixels' centres (scipy's exact distance transform)."""
    mask = np.asarray(mask, dtype=bool)
    grown = np.zeros_like(mask)
    if not mask.any():
        return grown
    # only pixels within the object's bounding box grown by the radius can be near it: the
    # transform runs on that window, which holds every object pixel, so its distances are exact
    reach = int(math.ceil(radius))
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    window = (slice(max(rows[0] - reach, 0), rows[-1] + reach + 1),
              slice(max(cols[0] - reach, 0), cols[-1] + reach + 1))
    grown[window] = ndimage.distance_transform_edt(~mask[window]) <= radius
    return grown


def pointing_game(cam: np.ndarray, target: np.ndarray) -> float:
    """1.0 when a maximum of `cam` lies in `target` (bool, already dilated: see `dilate`), else 0.0;
    NaN for an empty target or a map that is zero everywhere. Ties at the maximum: any of them
    counts, as Quantus's `PointingGame` does."""
    return _pointing(*_checked(cam, target))


def energy(cam: np.ndarray, mask: np.ndarray) -> float:
    """The share of `cam`'s mass (a map ≥ 0) inside `mask`; NaN for an empty mask or a zero map."""
    return _energy(*_checked(cam, mask))


def rank_accuracy(cam: np.ndarray, mask: np.ndarray) -> float:
    """The share of `mask`'s pixels among `cam`'s |mask| highest pixels; NaN for an empty mask or a
    zero map. Pixels tied at the cut share the remaining places in proportion (the mean over every
    order of the tied pixels), so a map's flat regions favour no position; without ties at the cut
    this is Quantus's `RelevanceRankAccuracy`, which breaks ties by its sort's order."""
    return _rank(*_checked(cam, mask))


def iou(cam: np.ndarray, mask: np.ndarray) -> float:
    """Intersection over union of `cam`'s region at or above half its maximum with `mask`; NaN for
    an empty mask or a zero map."""
    return _iou(*_checked(cam, mask))


def score_map(cam: np.ndarray, mask: np.ndarray, target: Optional[np.ndarray] = None) -> Scores:
    """The four scores of `cam` (float [H, W], ≥ 0) against `mask` (bool [H, W]); `target`: the
    mask dilated by `pointing_radius` (computed when not given; `localise` computes it once for all
    the maps of an image)."""
    cam, mask = _checked(cam, mask)
    if target is None:
        target = dilate(mask, pointing_radius(mask.shape))
    # the map's maximum and the object's size are found once for the four scores (the cost goal: <= 5% of explain)
    peak, size = cam.max(), int(np.count_nonzero(mask))
    return Scores(_pointing(cam, target, peak), _energy(cam, mask, size), _rank(cam, mask, peak, size),
                  _iou(cam, mask, peak, size))


def score_maps(maps: Mapping[str, np.ndarray], mask: np.ndarray, radius: float, *,
               fixed: Sequence[str] = ()) -> dict[str, Scores]:
    """{name: `score_map(cam, mask, dilate(mask, radius))`} for each map of one image, the same
    numbers found cheaper (`localise` calls it; goal: <= 5% of the time the maps take): a map's
    maximum is usually one pixel or a few, so the pointing game checks the object's pixels within
    `radius` of each instead of dilating the whole object (done once, only for a map with many
    maxima). `fixed`: the names of maps that are one read-only array for every image (the
    baselines): their maximum, sum and sorted values are found once and kept."""
    mask = np.asarray(mask, dtype=bool)
    size = int(np.count_nonzero(mask))
    target: list[np.ndarray] = []  # the dilated object, made at most once
    scores = {}
    for name, cam in maps.items():
        cam, _ = _checked(cam, mask)
        known = _fixed(cam) if name in fixed else None
        peak = cam.max() if known is None else known.peak
        if not size or not peak > 0:
            pointing = math.nan
        else:
            first = np.array([cam.argmax()])  # one maximum; the others (ties) only when it misses
            if _near(mask, first, radius):
                pointing = 1.0
            elif (peaks := np.flatnonzero(cam == peak)).size <= _FEW_PEAKS:
                pointing = float(_near(mask, peaks, radius))
            else:
                target = target or [dilate(mask, radius)]
                pointing = _pointing(cam, target[0], peak)
        region = cam >= 0.5 * peak  # IoU's region; rank accuracy's cut lies in it when it is large enough
        scores[name] = Scores(pointing, _energy(cam, mask, size, None if known is None else known.total),
                              _rank(cam, mask, peak, size, None if known is None else known.positive, region),
                              _iou(cam, mask, peak, size, region))
    return scores


@dataclass(frozen=True)
class _Fixed:
    """What the scores need of a baseline map, found once: the map (the cache checks identity),
    its maximum, its float64 sum (as `_energy` takes it) and its positive values in ascending order."""

    cam: np.ndarray
    peak: object
    total: float
    positive: np.ndarray


_FIXED: dict[int, _Fixed] = {}  # id(map) -> its facts; a handful of shapes at most, oldest dropped


def _fixed(cam: np.ndarray) -> _Fixed:
    found = _FIXED.get(id(cam))
    if found is None or found.cam is not cam:
        flat = cam.ravel()
        found = _Fixed(cam, cam.max(), float(cam.sum(dtype=np.float64)), np.sort(flat[flat > 0]))
        while len(_FIXED) >= 16:
            _FIXED.pop(next(iter(_FIXED)), None)
        _FIXED[id(cam)] = found
    return found


_FEW_PEAKS = 16  # up to this many maxima, `_near` checks each; more: the dilated object


def _near(mask: np.ndarray, points: np.ndarray, radius: float) -> bool:
    """Whether a pixel of `mask` lies within `radius` of one of `points` (flat indices), centre to
    centre: `dilate(mask, radius)` at those points, with the same distance (float64 sqrt of the
    integer squared offsets, as scipy's transform computes it)."""
    flat = mask.ravel()
    disk = _disk(float(radius))
    reach = disk.shape[0] // 2
    cols = mask.shape[1]
    for point in points.tolist():
        if flat[point]:
            return True
        y, x = divmod(point, cols)
        top, left = max(y - reach, 0), max(x - reach, 0)
        window = mask[top:y + reach + 1, left:x + reach + 1]
        near = disk[top - (y - reach):top - (y - reach) + window.shape[0],
                    left - (x - reach):left - (x - reach) + window.shape[1]]
        if (window & near).any():
            return True
    return False


@functools.lru_cache(maxsize=8)
def _disk(radius: float) -> np.ndarray:
    """Bool [2r+1, 2r+1] (r: `radius` rounded up): the pixels whose centres lie within `radius` of
    the middle one's."""
    reach = int(math.ceil(radius))
    dy, dx = np.mgrid[-reach:reach + 1, -reach:reach + 1]
    disk = np.sqrt((dy * dy + dx * dx).astype(np.float64)) <= radius
    disk.flags.writeable = False
    return disk


def _pointing(cam: np.ndarray, target: np.ndarray, peak=None) -> float:
    peak = cam.max() if peak is None else peak
    if not target.any() or not peak > 0:
        return math.nan
    return float(np.any(target & (cam == peak)))


def _energy(cam: np.ndarray, mask: np.ndarray, size: Optional[int] = None, total: Optional[float] = None) -> float:
    total = float(cam.sum(dtype=np.float64)) if total is None else total
    if not (mask.any() if size is None else size) or not total > 0:
        return math.nan
    return float(cam.sum(where=mask, dtype=np.float64)) / total


def _rank(cam: np.ndarray, mask: np.ndarray, peak=None, size: Optional[int] = None,
          positive: Optional[np.ndarray] = None, region: Optional[np.ndarray] = None) -> float:
    size = int(np.count_nonzero(mask)) if size is None else size
    if not size or not (cam.max() if peak is None else peak) > 0:
        return math.nan
    flat, inside = cam.ravel(), mask.ravel()
    if positive is not None and positive.size >= size:  # a baseline's sorted positive values
        cut = positive[positive.size - size]
    else:
        cut = _kth_highest(flat, size, None if region is None else region.ravel())  # the |mask|-th highest value
    above, tied = flat > cut, flat == cut
    places = size - int(np.count_nonzero(above))
    hits = np.count_nonzero(inside & above) + places * np.count_nonzero(inside & tied) / np.count_nonzero(tied)
    return float(hits) / size


def _kth_highest(flat: np.ndarray, k: int, top: Optional[np.ndarray] = None):
    """The `k`-th highest value of `flat` (1-D floats, no NaN, 1 <= k <= size): the value of
    `np.partition(flat, flat.size - k)[flat.size - k]`, found faster. numpy's introselect slows down
    some 25x on many equal values, as a CAM's zeros after ReLU, so the positive values (where the
    cut lies unless the object outgrows them) are partitioned alone, as the integers of their bits
    (the same order for positive IEEE floats; integer comparisons are about twice as fast). `top`:
    bool, the pixels at or above some positive value (e.g. half the maximum); when they number k
    or more, the cut lies among them and only they are partitioned."""
    if top is not None and np.count_nonzero(top) >= k:
        positive = flat[top]
    else:
        positive = flat[flat > 0]
    if positive.size >= k:
        index = positive.size - k
        bits = _BITS.get(positive.dtype)
        if bits is None:
            return np.partition(positive, index)[index]
        return np.partition(positive.view(bits), index).view(positive.dtype)[index]
    rest = flat[~(flat > 0)]  # the cut lies among the values <= 0
    index = rest.size - (k - positive.size)
    low, high = rest.min(), rest.max()
    return high if low == high else np.partition(rest, index)[index]  # all equal (zeros): no partition


_BITS = {np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}  # a float's bits as an integer


def _iou(cam: np.ndarray, mask: np.ndarray, peak=None, size: Optional[int] = None,
         region: Optional[np.ndarray] = None) -> float:
    peak = cam.max() if peak is None else peak
    if not (mask.any() if size is None else size) or not peak > 0:
        return math.nan
    region = cam >= 0.5 * peak if region is None else region
    return np.count_nonzero(region & mask) / np.count_nonzero(region | mask)


@functools.lru_cache(maxsize=8)
def centre_prior(shape: tuple[int, int]) -> np.ndarray:
    """The centre-prior baseline map: a Gaussian at the picture's centre with σ a quarter of each
    side, float32 [H, W] with maximum 1 (objects sit near the centre of most photos). Read-only:
    one array per shape is shared (a model's pictures all have one shape)."""
    rows, cols = shape
    y = (np.arange(rows) + 0.5 - rows / 2) / (rows / 4)
    x = (np.arange(cols) + 0.5 - cols / 2) / (cols / 4)
    prior = np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2))
    prior = np.float32(prior / prior.max())
    prior.flags.writeable = False
    return prior


def _checked(cam: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A float map (float32 kept: sums are taken in float64) and a bool mask of one 2-D shape."""
    cam, mask = np.asarray(cam), np.asarray(mask, dtype=bool)
    if cam.dtype.kind != "f":  # not np.issubdtype(cam.dtype, np.floating), in a tenth of the time
        cam = cam.astype(np.float64)
    if cam.ndim != 2 or cam.shape != mask.shape:
        raise ValueError(f"A map and its mask must be 2-D arrays of one shape, not {cam.shape} and {mask.shape}.")
    return cam, mask


__all__ = ["POINTING_TOLERANCE", "Scores", "centre_prior", "dilate", "energy", "iou", "pointing_game",
           "pointing_radius", "rank_accuracy", "score_map", "score_maps"]
