"""The Faithfulness page's time estimate counts what `evaluate` really runs: its forwards (counted
here by a hook on the model during a real evaluation), ROAD's imputations and the sanity check's
explanation passes, each priced at a per-unit time; no timings are asserted, only the structure."""

from __future__ import annotations

import weakref

import pytest

import xai_core
from xai_core.faithfulness import ROAD_PERCENTILES, estimate

METHODS = ["gradcam", "layercam"]


@pytest.fixture
def explanation(lite, cat_path):
    return xai_core.explain(lite, cat_path, METHODS, layer="stage7")


@pytest.fixture
def unit_prices(monkeypatch):
    """1 s per image forward, 0 s per imputed mask, nothing observed yet."""
    monkeypatch.setattr(estimate, "forward_seconds", lambda handle: 1.0)
    monkeypatch.setattr(estimate, "imputation_seconds", lambda handle: 0.0, raising=False)
    monkeypatch.setattr(estimate, "_OBSERVED", weakref.WeakKeyDictionary(), raising=False)
    monkeypatch.setattr(estimate, "_OBSERVED_S", weakref.WeakKeyDictionary(), raising=False)


def _forwarded_images(handle, run) -> list[int]:
    """The batch size of every forward of `handle`'s model while `run()` runs."""
    sizes: list[int] = []
    hook = handle.module.register_forward_pre_hook(lambda module, args: sizes.append(int(args[0].shape[0])))
    try:
        run()
    finally:
        hook.remove()
    return sizes


@pytest.mark.parametrize("steps", [2, 5])
def test_estimate_is_the_forwards_evaluate_runs_times_the_time_per_image(lite, cat_path, explanation, unit_prices,
                                                                          steps):
    expected = xai_core.estimate_evaluation_seconds(lite, explanation, steps=steps, sanity=False)
    sizes = _forwarded_images(lite, lambda: xai_core.evaluate(lite, cat_path, explanation, steps=steps, sanity=False))
    assert expected == pytest.approx(sum(sizes), rel=0.01)


def test_forward_batches_follow_evaluates_batching(lite, cat_path, explanation):
    for batch_size in (3, 4, 7):
        sizes = _forwarded_images(lite, lambda: xai_core.evaluate(lite, cat_path, explanation, steps=3, sanity=False,
                                                                  batch_size=batch_size))
        planned = estimate.forward_batches(3, 3, ROAD_PERCENTILES, batch_size)  # 2 maps + random
        assert planned["curves"] + planned["road"] == sizes


def test_road_imputation_is_priced_per_mask(lite, explanation, unit_prices, monkeypatch):
    monkeypatch.setattr(estimate, "forward_seconds", lambda handle: 0.0)
    monkeypatch.setattr(estimate, "imputation_seconds", lambda handle: 1.0)
    parts = estimate.evaluation_parts(lite, explanation, steps=4, road_percentiles=(20, 50, 80), sanity=False)
    assert parts == {"curves": 0.0, "road": 2 * 3 * 3, "sanity": 0.0}  # MoRF + LeRF x 3 percentiles x 3 maps


def test_sanity_check_adds_its_explanation_passes_shared_pass_included(lite, explanation, unit_prices):
    with_check = xai_core.estimate_evaluation_seconds(lite, explanation, steps=4, sanity=True)
    without = xai_core.estimate_evaluation_seconds(lite, explanation, steps=4, sanity=False)
    costs = xai_core.estimate_cost(lite, METHODS, list(explanation.layers))
    assert with_check - without == pytest.approx(sum(c.seconds for c in costs.values()))
    assert "shared pass" in costs


def test_after_an_evaluation_the_estimate_is_what_it_measured(lite, cat_path, explanation, monkeypatch):
    monkeypatch.setattr(estimate, "_OBSERVED", weakref.WeakKeyDictionary(), raising=False)
    monkeypatch.setattr(estimate, "_OBSERVED_S", weakref.WeakKeyDictionary(), raising=False)
    result = xai_core.evaluate(lite, cat_path, explanation, steps=3)
    measured = sum(result.timings[k] for k in ("deletion_insertion", "road", "sanity"))
    again = xai_core.estimate_evaluation_seconds(lite, explanation, steps=3)
    # the estimate also counts the scorer's one-image forward, outside the timed stages
    assert again == pytest.approx(measured, rel=0.1)


def test_later_evaluations_are_averaged_in(lite, explanation, unit_prices):
    """The first run replaces the timed prior; a second, slowed by other work, moves it half way."""
    curves = sum(estimate.forward_batches(3, 4, ROAD_PERCENTILES, 4)["curves"])
    for seconds in (1.0, 3.0):
        timings = {"deletion_insertion": seconds * (curves - 1), "road": 0.0, "sanity": 10 * seconds}
        estimate.observe_evaluation(lite, explanation, 4, ROAD_PERCENTILES, 4, timings, True)
    parts = estimate.evaluation_parts(lite, explanation, steps=4, batch_size=4)
    assert parts["curves"] == pytest.approx(2.0 * curves)
    assert parts["sanity"] == pytest.approx(20.0)


def test_a_road_stage_faster_than_the_curves_price_is_estimated_at_what_it_measured(lite, explanation, unit_prices,
                                                                                    monkeypatch):
    """The machine's load can change between the stages: ROAD then takes less than its forwards at
    the curves' price, and the estimate of the same evaluation must not exceed what it measured."""
    batches = estimate.forward_batches(3, 4, ROAD_PERCENTILES, 4)
    road_images = sum(batches["road"])
    for road in (0.5 * road_images, 2.0 * road_images):  # faster than 1 s per image, then slower
        monkeypatch.setattr(estimate, "_OBSERVED", weakref.WeakKeyDictionary())
        timings = {"deletion_insertion": 1.0 * (sum(batches["curves"]) - 1), "road": road}
        estimate.observe_evaluation(lite, explanation, 4, ROAD_PERCENTILES, 4, timings, False)
        parts = estimate.evaluation_parts(lite, explanation, steps=4, batch_size=4, sanity=False)
        assert parts["road"] == pytest.approx(road)
        assert parts["curves"] == pytest.approx(sum(batches["curves"]))
