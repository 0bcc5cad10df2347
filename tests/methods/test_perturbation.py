"""Perturbation methods: progress and cancellation, Faster Score-CAM, and the cost model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

import xai_core
from xai_core.methods.cost import SLOW_FACTOR, estimate_cost
from conftest import IMAGES, no_hooks_left


def test_progress_is_reported_and_cancel_stops(random_resnet, cat_path):
    seen = []
    xai_core.explain(random_resnet, cat_path, methods=["ablationcam", "fastscorecam"], layer="layer3",
                     batch_size=256, progress=lambda m, done, total: seen.append((m, done, total)))
    for method in ("ablationcam", "fastscorecam"):
        steps = [(d, t) for m, d, t in seen if m == method]
        assert steps and steps[-1][0] == steps[-1][1], f"{method} must report up to done == total"
        assert [d for d, _ in steps] == sorted(d for d, _ in steps)
    calls = []
    with pytest.raises(xai_core.Cancelled):
        xai_core.explain(random_resnet, cat_path, methods=["scorecam"], layer="layer4", batch_size=16,
                         progress=lambda m, done, total: calls.append(done) or False)
    assert calls == [16], "cancelling must stop after the first batch"
    assert no_hooks_left(random_resnet.module)


def test_fast_scorecam_uses_top_k_and_tracks_exact(lite):
    """On a real photo at a small layer, the top-k map correlates with exact Score-CAM."""
    image = IMAGES / "coffee.png"
    exact = xai_core.explain(lite, image, methods=["scorecam"], layer="stage7", batch_size=64)
    fast = xai_core.explain(lite, image, methods=["fastscorecam"], layer="stage7", target=exact.target,
                            options={"fastscorecam": {"top_k": 96}})
    rho = spearmanr(exact.maps["scorecam"].ravel(), fast.maps["fastscorecam"].ravel())[0]
    assert rho >= 0.9
    k8 = xai_core.explain(lite, image, methods=["fastscorecam"], layer="stage7", target=exact.target,
                          options={"fastscorecam": {"top_k": 8}})
    assert not np.allclose(k8.maps["fastscorecam"], fast.maps["fastscorecam"])


def test_cost_model(random_resnet):
    costs = estimate_cost(random_resnet, xai_core.methods_for(random_resnet), layer="layer4")
    assert set(costs) == set(xai_core.methods_for(random_resnet)) | {"shared pass"}
    assert costs["scorecam"].passes == 2048 and costs["scorecam"].slow
    assert costs["fastscorecam"].passes == 64
    assert "linear head" in costs["ablationcam"].detail
    for method in ("gradcam", "hirescam", "layercam", "eigencam"):
        assert costs[method].passes == 0 and not costs[method].slow
    assert "26560 bias-gradient maps" in costs["fullgrad"].detail and costs["fullgrad"].passes > 3
    for cost in costs.values():  # slow: above SLOW_FACTOR x a Grad-CAM (no timed assertion: the machine is shared)
        assert cost.slow == (cost.seconds > SLOW_FACTOR * costs["shared pass"].seconds)
    at3 = estimate_cost(random_resnet, ["ablationcam", "scorecam"], layer="layer3", aug_smooth=True)
    assert at3["scorecam"].passes == 1024 * 6
    assert at3["ablationcam"].passes > costs["ablationcam"].passes
    assert estimate_cost(random_resnet, ["fastscorecam"], "layer4",
                         options={"fastscorecam": {"top_k": 10}})["fastscorecam"].passes == 10


def test_cost_estimate_learns_from_the_last_run(lite, random_resnet, cat_path):
    result = xai_core.explain(lite, cat_path, methods=["fullgrad"])
    after = estimate_cost(lite, ["fullgrad"])["fullgrad"]
    assert "measured" in after.detail and after.seconds == result.timings["fullgrad"]
    # a measurement serves only the same options (defaults filled in on both sides)
    fast = xai_core.explain(random_resnet, cat_path, methods=["fastscorecam"], layer="layer4", batch_size=256,
                            options={"fastscorecam": {"top_k": 12}})
    same = estimate_cost(random_resnet, "fastscorecam", "layer4", options=fast.options["methods"])["fastscorecam"]
    assert same.seconds == fast.timings["fastscorecam"] and "measured" in same.detail
    other = estimate_cost(random_resnet, "fastscorecam", "layer4", options={"fastscorecam": {"top_k": 13}})
    assert "measured" not in other["fastscorecam"].detail


def test_fullgrad_reports_start_and_end(lite, cat_path):
    seen = []
    xai_core.explain(lite, cat_path, methods=["fullgrad"], progress=lambda m, d, t: seen.append((m, d, t)))
    assert seen == [("fullgrad", 0, 1), ("fullgrad", 1, 1)]
    with pytest.raises(xai_core.Cancelled):
        xai_core.explain(lite, cat_path, methods=["fullgrad"], progress=lambda m, d, t: False)
