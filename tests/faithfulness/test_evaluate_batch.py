"""xai_core.evaluate_batch: the scores of `evaluate(..., sanity=False)` for every image, with the
forwards batched across maps and images; one-sentence errors naming the image; cancellation."""

from __future__ import annotations

import numpy as np
import pytest

import xai_core
from conftest import IMAGES

METHODS = ["gradcam", "layercam", "eigencam"]
SCALARS = ["deletion_auc", "insertion_auc", "confidence_change", "road_morf", "road_lerf", "road_combined"]


@pytest.fixture(scope="module")
def batch(lite):
    images = [xai_core.load_image(p) for p in sorted(IMAGES.iterdir())][:3]
    return images, xai_core.explain_batch(lite, images, METHODS, layer="stage7")


def test_scores_equal_evaluate_per_image(lite, batch):
    images, explanations = batch
    results = xai_core.evaluate_batch(lite, images, explanations, steps=5, road_percentiles=(30, 70), batch_size=8,
                                      group=2)
    assert len(results) == 3
    for image, explanation, got in zip(images, explanations, results):
        want = xai_core.evaluate(lite, image, explanation, steps=5, road_percentiles=(30, 70), sanity=False)
        assert got.target == explanation.target and set(got.scores) == set(METHODS + ["random"])
        assert got.same_as == want.same_as and got.pending == ()
        for method in want.scores:
            for key in SCALARS:
                assert got.scores[method][key] == pytest.approx(want.scores[method][key], abs=1e-5), (method, key)
            np.testing.assert_allclose(got.scores[method]["deletion_curve"], want.scores[method]["deletion_curve"],
                                       atol=1e-5)
            assert got.scores[method]["sanity_passed"] is None
        np.testing.assert_allclose(got.agreement.spearman, want.agreement.spearman)
    assert results[0].scores["gradcam"]["deletion_auc"] != results[1].scores["gradcam"]["deletion_auc"]


def test_errors_name_the_image_and_progress_cancels(lite, batch):
    images, explanations = batch
    with pytest.raises(xai_core.InvalidOptionError, match="one explanation per image: 3 images, 2"):
        xai_core.evaluate_batch(lite, images, explanations[:2])
    with pytest.raises(xai_core.InvalidOptionError, match="^Image 2 of 3: The explanation was computed for another"):
        xai_core.evaluate_batch(lite, images, [explanations[0], explanations[0], explanations[2]])
    seen = []
    xai_core.evaluate_batch(lite, images[:2], explanations[:2], steps=2, road_percentiles=(50,), group=1,
                            progress=lambda *a: seen.append(a))
    assert seen == [("images", 1, 2), ("images", 2, 2)]
    with pytest.raises(xai_core.Cancelled):
        xai_core.evaluate_batch(lite, images, explanations, steps=2, road_percentiles=(50,), group=1,
                                progress=lambda *a: False)
