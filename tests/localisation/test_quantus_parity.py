"""Quantus 0.6 is the oracle of the localisation scores: our pointing game, energy and rank accuracy
equal its `PointingGame`, `RelevanceMassAccuracy` and `RelevanceRankAccuracy` on the same maps and
masks, within 1e-6.

Quantus's `PointingGame` has no tolerance: it counts a hit when a maximum of the map lies in the
mask it is given. Ours (Zhang et al. 2018) counts a hit within 15 px (at 224 px) of the object, so
Quantus is given the object already dilated by our `dilate(mask, pointing_radius(shape))`, the mask
our pointing game tests. Both read the maps as they are: Quantus's own normalisation and absolute
value are switched off (`normalise=False, abs=False`), as our maps are already in [0, 1]. Quantus
reads float64 copies, so both sum in the same precision."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import xai_core
from xai_core.faithfulness.baseline import random_map
from xai_core.localisation import (centre_prior, dilate, energy, pointing_game, pointing_radius, rank_accuracy,
                                   score_map)

from _deps import need

TOLERANCE = 1e-6


def _quantus(metric: str, maps: list[np.ndarray], masks: list[np.ndarray]) -> np.ndarray:
    """Quantus's `metric` of each map against its mask, computed by its `__call__` (model=None:
    the maps are given), one image per call so maps of different sizes can be compared."""
    quantus = need("quantus", "Quantus is the localisation tests' oracle: pip install -r requirements-dev.txt")
    scores = []
    for cam, mask in zip(maps, masks):
        x = np.zeros((1, 3, *cam.shape), dtype=np.float64)  # only its shape is read
        instance = getattr(quantus, metric)(abs=False, normalise=False, disable_warnings=True,
                                            display_progressbar=False)
        (score,) = instance(model=None, x_batch=x, y_batch=np.zeros(1, dtype=int),
                            a_batch=cam[None, None].astype(np.float64), s_batch=mask[None, None].astype(np.float64))
        scores.append(float(score))
    return np.array(scores)


def _cases() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Maps (smooth noise, noise with exact zeros as a ReLU leaves, the centre prior, white noise)
    and masks (boxes, blobs, scattered pixels) at several sizes, none empty."""
    rng = np.random.default_rng(28)
    maps, masks = [], []
    for shape in [(224, 224), (56, 72), (13, 9), (7, 7), (240, 180)]:
        smooth = _smooth(rng, shape)
        relu = np.float32(np.clip(smooth - 0.3, 0, None) / 0.7)
        for cam in (smooth, relu, centre_prior(shape), rng.random(shape, dtype=np.float32)):
            box = np.zeros(shape, bool)
            y0, x0 = rng.integers(0, shape[0] // 2), rng.integers(0, shape[1] // 2)
            box[y0:y0 + rng.integers(1, shape[0] // 2 + 1), x0:x0 + rng.integers(1, shape[1] // 2 + 1)] = True
            blob = _smooth(rng, shape) > 0.6
            scattered = rng.random(shape) > 0.9
            for mask in (box, blob, scattered):
                if mask.any():
                    maps.append(cam)
                    masks.append(mask)
    return maps, masks


def _smooth(rng, shape) -> np.ndarray:
    """Smooth noise in [0, 1] with no ties: coarse noise upsampled, as a CAM's resolution."""
    coarse = Image.fromarray(rng.random((max(2, shape[0] // 16), max(2, shape[1] // 16))).astype(np.float32))
    cam = np.asarray(coarse.resize(shape[::-1], Image.Resampling.BICUBIC), dtype=np.float32)
    cam = cam + rng.random(shape, dtype=np.float32) * 1e-3  # breaks the upsampling's ties
    return np.float32((cam - cam.min()) / np.ptp(cam))


def _top_without_ties(cam: np.ndarray, mask: np.ndarray) -> bool:
    """Whether the |mask| highest pixels end above a gap: no tie at the cut. At a tie Quantus keeps
    whichever tied pixels its unstable `argsort` puts first; ours shares the places among them
    (tested in test_localisation_scores.py)."""
    ordered = np.sort(cam.ravel())[::-1]
    size = int(mask.sum())
    return size == ordered.size or ordered[size - 1] > ordered[size]


def test_energy_is_quantus_relevance_mass_accuracy():
    maps, masks = _cases()
    ours = np.array([energy(cam, mask) for cam, mask in zip(maps, masks)])
    np.testing.assert_allclose(ours, _quantus("RelevanceMassAccuracy", maps, masks), rtol=0, atol=TOLERANCE)


def test_rank_accuracy_is_quantus_relevance_rank_accuracy():
    maps, masks = _cases()
    kept = [(cam, mask) for cam, mask in zip(maps, masks) if _top_without_ties(cam, mask)]
    assert len(kept) >= 30  # the ReLU'd maps' zeros tie only where the object is larger than their support
    ours = np.array([rank_accuracy(cam, mask) for cam, mask in kept])
    theirs = _quantus("RelevanceRankAccuracy", [c for c, _ in kept], [m for _, m in kept])
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOLERANCE)


def test_pointing_game_is_quantus_pointing_game_on_the_dilated_object():
    maps, masks = _cases()
    dilated = [dilate(mask, pointing_radius(mask.shape)) for mask in masks]
    ours = np.array([pointing_game(cam, target) for cam, target in zip(maps, dilated)])
    np.testing.assert_array_equal(ours, _quantus("PointingGame", maps, dilated))
    assert 0 < ours.mean() < 1  # hits and misses both tested
    assert [score_map(c, m).pointing for c, m in zip(maps, masks)] == list(ours)


def test_the_tolerance_turns_a_near_miss_into_a_hit():
    """A maximum 10 px right of a 224 px object: a miss for the undilated mask (Quantus too), a
    hit within 15 px; 20 px away it is a miss."""
    mask = np.zeros((224, 224), bool)
    mask[100:120, 50:80] = True
    for gap, hit in ((10, 1.0), (20, 0.0)):
        cam = np.zeros((224, 224), np.float32)
        cam[110, 79 + gap] = 1.0
        assert _quantus("PointingGame", [cam], [mask])[0] == 0.0
        assert score_map(cam, mask).pointing == hit
        assert _quantus("PointingGame", [cam], [dilate(mask, pointing_radius(mask.shape))])[0] == hit


def test_the_bundled_models_maps_score_as_quantus_says(lite, cat_path):
    """The real maps of the bundled model against a box around the cat."""
    explanation = xai_core.explain(lite, cat_path, methods=["gradcam", "layercam", "eigencam"])
    image = xai_core.load_image(cat_path)
    box = (image.width * 0.2, image.height * 0.2, image.width * 0.7, image.height * 0.9)
    result = xai_core.localise(explanation, box=box)
    maps = [explanation.maps[m] for m in explanation.maps] + [random_map(result.mask.shape)]
    masks = [result.mask] * len(maps)
    names = list(explanation.maps) + ["random"]
    np.testing.assert_allclose([result.scores[n].energy for n in names],
                               _quantus("RelevanceMassAccuracy", maps, masks), rtol=0, atol=TOLERANCE)
    untied = [i for i, cam in enumerate(maps) if _top_without_ties(cam, result.mask)]
    assert {"gradcam", "random"} <= {names[i] for i in untied}  # LayerCAM, EigenCAM: zeros tie at the cut
    np.testing.assert_allclose([result.scores[names[i]].rank for i in untied],
                               _quantus("RelevanceRankAccuracy", [maps[i] for i in untied], masks[:len(untied)]),
                               rtol=0, atol=TOLERANCE)
    dilated = [dilate(result.mask, result.radius)] * len(maps)
    np.testing.assert_array_equal([result.scores[n].pointing for n in names],
                                  _quantus("PointingGame", maps, dilated))


@pytest.mark.parametrize("score", [energy, rank_accuracy, pointing_game])
def test_an_empty_object_or_a_zero_map_scores_nan(score):
    """Undefined, as Quantus's NaN for an empty mask (its PointingGame turns that NaN into True)."""
    cam = np.random.default_rng(0).random((8, 8))
    assert np.isnan(score(cam, np.zeros((8, 8), bool)))
    assert np.isnan(score(np.zeros((8, 8)), np.ones((8, 8), bool)))
