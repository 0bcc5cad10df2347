"""The agreement numbers (Spearman, top-20% IoU, centre of mass) and `Comparison.verdict`, a pure
function of them: the bands' words, the object's share of each map, where the mass moved."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scipy import stats

from xai_core.compare import (MethodComparison, agreement_words, centre_of_mass, difference, mean_ranks, spearman,
                              top_iou, top_mask, verdict)
from xai_core.errors import InvalidOptionError


def blob(cx: float, cy: float, size: int = 40, radius: float = 8.0) -> np.ndarray:
    """A cone of `radius` pixels centred on (cx, cy): zero beyond it, symmetric about its centre."""
    y, x = np.mgrid[0:size, 0:size] + 0.5
    return np.clip(1 - np.hypot(x - cx, y - cy) / radius, 0, 1).astype(np.float32)


def compared(map_a, map_b) -> MethodComparison:
    return MethodComparison("gradcam", "Grad-CAM", map_a, map_b, difference(map_a, map_b), spearman(map_a, map_b),
                            top_iou(map_a, map_b))


def test_the_numbers():
    a = blob(10, 20)
    assert spearman(a, a) == 1.0 and top_iou(a, a) == 1.0
    assert spearman(a, 1 - a) == pytest.approx(-1.0, abs=1e-12)
    assert math.isnan(spearman(a, np.zeros_like(a))) and math.isnan(top_iou(a, np.full_like(a, 0.3)))
    ramp = np.arange(1600, dtype=np.float32).reshape(40, 40)
    assert top_mask(ramp).sum() == 320 and top_mask(ramp)[-8:].all()  # 20% of 1600 pixels, the highest
    assert top_mask(np.zeros((4, 4))) is None
    flat_top = np.zeros((10, 10)); flat_top[:5] = 1.0  # 50 pixels tied at the top: all of them count
    assert top_mask(flat_top).sum() == 50
    assert centre_of_mass(a) == pytest.approx((0.25, 0.5), abs=1e-3) and centre_of_mass(np.zeros((3, 3))) is None
    d = difference(np.zeros((2, 2)), np.ones((2, 2)))
    assert d.dtype == np.float32 and (d == 1).all()


def test_spearman_is_scipys():
    """Our ranks (one np.unique) are scipy's `rankdata`, and the correlation `spearmanr`'s, on maps
    with many ties (ReLU zeros, a few levels) as CAMs have them."""
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = np.clip(rng.random((60, 50), dtype=np.float32) - 0.4, 0, 1)
        b = np.round(np.clip(a + rng.normal(0, 0.3, a.shape).astype(np.float32), 0, 1), 1)
        np.testing.assert_array_equal(mean_ranks(a), stats.rankdata(a.ravel()))
        assert spearman(a, b) == pytest.approx(stats.spearmanr(a.ravel(), b.ravel()).statistic, abs=1e-12)


@pytest.mark.parametrize("rho, words", [(0.95, "agree strongly"), (0.7, "agree strongly"), (0.698, "agree strongly"),
                                        (0.6949, "agree moderately"),
                                        (0.4, "agree moderately"), (0.31, "agree weakly"), (0.1, "agree weakly"),
                                        (0.09, "do not agree at all"), (-0.8, "do not agree at all")])
def test_the_bands(rho, words):
    assert agreement_words(rho) == words


def test_where_the_mass_moved():
    left, right = blob(10, 20), blob(30, 20)
    moved = verdict(compared(left, right))
    assert moved.startswith("Grad-CAM's maps do not agree at all (Spearman ")
    assert moved.endswith("model B's map moved right (its centre of mass by 50% of the picture).")
    assert "moved left and up" in verdict(compared(blob(30, 30), blob(10, 10)))
    assert verdict(compared(left, left)) == "Grad-CAM's maps agree strongly (Spearman 1.00); model B's map stayed in place."


def test_the_share_on_the_object():
    left, right = blob(10, 20), blob(30, 20)
    mask = np.zeros((40, 40), bool)
    mask[:, 20:] = True
    line = verdict(compared(left, right), mask)
    assert line.endswith("model B moved its attention from the background to the object (model B puts 100% of its "
                         "map on the object, model A 0%).")
    assert verdict(compared(right, left), mask).endswith("from the object to the background (model B puts 0% of its "
                                                         "map on the object, model A 100%).")
    both = verdict(compared(right, blob(28, 20)), mask)
    assert both.endswith("; model B puts 100% of its map on the object, model A 100%.") or "model A 99%" in both
    assert "mask is empty" in verdict(compared(left, right), np.zeros((40, 40), bool))
    with pytest.raises(InvalidOptionError, match="40 x 40"):
        verdict(compared(left, right), np.zeros((10, 10), bool))


def test_constant_and_missing_maps():
    constant = verdict(compared(blob(10, 10), np.zeros((40, 40), np.float32)))
    assert "Spearman is undefined" in constant and "zero everywhere" in constant
    missing = MethodComparison("rollout", "Attention rollout", None, blob(5, 5), None, None, None, "Only on B.")
    assert verdict(missing) == "Only on B."
