"""The faster paths of the scores give the very numbers of the plain ones: `score_maps` (the pointing
game on a window around each maximum, the baselines' facts kept) equals `score_map` on the dilated
object, and rank accuracy's cut (the positive values partitioned as integers) equals
`np.partition`'s on the whole map."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from xai_core.localisation import Scores, dilate, pointing_radius, rank_accuracy, score_map, score_maps


def _rank_by_partition(cam: np.ndarray, mask: np.ndarray) -> float:
    """Rank accuracy as first written: the cut from `np.partition` over the whole map."""
    size = int(np.count_nonzero(mask))
    if not size or not cam.max() > 0:
        return math.nan
    flat, inside = cam.ravel(), mask.ravel()
    cut = np.partition(flat, flat.size - size)[flat.size - size]
    above, tied = flat > cut, flat == cut
    places = size - int(np.count_nonzero(above))
    hits = np.count_nonzero(inside & above) + places * np.count_nonzero(inside & tied) / np.count_nonzero(tied)
    return float(hits) / size


def _maps(rng: np.random.Generator, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Maps with what the fast paths special-case: zeros after ReLU, a plateau at the maximum, a
    one-pixel peak at the border, ties everywhere, negative values, float64, all zero."""
    smooth = ndimage.gaussian_filter(rng.random(shape), rng.uniform(1, 8))
    relu = np.maximum(smooth - np.quantile(smooth, rng.uniform(0.2, 0.9)), 0)
    relu = (relu / relu.max()).astype(np.float32)
    plateau = np.minimum(relu, np.float32(0.5))  # many pixels tied at the maximum
    border = np.zeros(shape, np.float32)
    border[rng.integers(shape[0]), 0] = 1.0
    quantised = (np.round(relu * 4) / 4).astype(np.float32)
    return {"relu": relu, "plateau": plateau, "border": border, "quantised": quantised,
            "signed": (smooth - smooth.mean()).astype(np.float32), "float64": smooth, "zero": np.zeros(shape, np.float32)}


def _masks(rng: np.random.Generator, shape: tuple[int, int]) -> list[np.ndarray]:
    rows, cols = shape
    box = np.zeros(shape, bool)
    y0, x0 = rng.integers(rows // 2), rng.integers(cols // 2)
    box[y0:y0 + rng.integers(1, rows // 2), x0:x0 + rng.integers(1, cols // 2)] = True
    blob = ndimage.gaussian_filter(rng.random(shape), 4) > 0.52
    corner = np.zeros(shape, bool)
    corner[-3:, -3:] = True
    return [box, blob, corner, np.zeros(shape, bool), np.ones(shape, bool)]


def _same(a: Scores, b: Scores) -> bool:
    return all((x == y) or (math.isnan(x) and math.isnan(y)) for x, y in zip(vars(a).values(), vars(b).values()))


@pytest.mark.parametrize("seed", range(6))
def test_score_maps_equals_score_map_on_the_dilated_object(seed):
    rng = np.random.default_rng(seed)
    shape = (224, 224) if seed % 2 else (int(rng.integers(20, 90)), int(rng.integers(20, 90)))
    maps = _maps(rng, shape)
    for mask in _masks(rng, shape):
        for radius in (pointing_radius(shape), 0.0, 2.5):
            # "fixed" maps (the baselines) keep their maximum, sum and order from call to call
            fast = score_maps(maps, mask, radius, fixed=("relu", "signed", "zero", "float64"))
            target = dilate(mask, radius)
            assert list(fast) == list(maps)
            for name, cam in maps.items():
                assert _same(fast[name], score_map(cam, mask, target)), (name, radius)


@pytest.mark.parametrize("seed", range(6))
def test_rank_accuracy_equals_the_whole_map_partition(seed):
    rng = np.random.default_rng(100 + seed)
    shape = (int(rng.integers(5, 120)), int(rng.integers(5, 120)))
    for cam in _maps(rng, shape).values():
        for mask in _masks(rng, shape):
            ours, reference = rank_accuracy(cam, mask), _rank_by_partition(np.asarray(cam), mask)
            assert ours == reference or (math.isnan(ours) and math.isnan(reference))


def test_a_tied_maximum_in_the_object_is_a_hit_even_after_one_outside():
    cam = np.zeros((60, 60), np.float32)
    cam[2, 2] = cam[39, 39] = 1.0  # the first maximum in reading order lies far from the object
    mask = np.zeros((60, 60), bool)
    mask[30:38, 30:38] = True  # (39, 39) is 2.83 px from its corner (37, 37)
    for radius, hit in ((3.0, 1.0), (2.5, 0.0), (0.0, 0.0)):
        assert score_maps({"m": cam}, mask, radius)["m"].pointing == hit
        assert score_map(cam, mask, dilate(mask, radius)).pointing == hit
