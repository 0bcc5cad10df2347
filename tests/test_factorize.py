"""`factorize`: DFF equals pytorch-grad-cam's, is deterministic, and labels concepts sensibly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam import DeepFeatureFactorization

import xai_core
from conftest import CAT_CLASSES, no_hooks_left


def test_matches_library_dff(random_resnet, cat_path):
    ours = xai_core.factorize(random_resnet, cat_path, n_components=3, layer="layer4", top_k=3)
    x = random_resnet.preprocess(xai_core.load_image(cat_path))
    dff = DeepFeatureFactorization(random_resnet.module, random_resnet.layers["layer4"],
                                   computation_on_concepts=random_resnet.module.fc)
    try:
        _, heatmaps, concept_logits = dff(x, 3)
    finally:
        dff.activations_and_grads.release()
    np.testing.assert_allclose(ours.heatmaps, heatmaps[0], atol=1e-5)
    probs = torch.softmax(torch.from_numpy(concept_logits), -1).numpy()
    expected_top = np.argsort(-probs, axis=1)[:, :3]
    np.testing.assert_array_equal(ours.label_indices, expected_top)
    assert no_hooks_left(random_resnet.module)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_shapes_ranges_and_determinism(lite, cat_path, k):
    a = xai_core.factorize(lite, cat_path, n_components=k, top_k=2)
    b = xai_core.factorize(lite, cat_path, n_components=k, top_k=2)
    assert a.heatmaps.shape == (k, 224, 224) and a.heatmaps.dtype == np.float32
    assert a.heatmaps.min() >= 0 and a.heatmaps.max() <= 1
    assert a.dominant.shape == (224, 224) and set(np.unique(a.dominant)) <= set(range(k))
    assert len(a.labels) == k and all(len(l) == 2 for l in a.labels)
    np.testing.assert_array_equal(a.heatmaps, b.heatmaps)
    assert a.labels == b.labels


def test_a_cat_concept_on_the_cat_photo(lite, cat_path):
    result = xai_core.factorize(lite, cat_path, n_components=2, top_k=3)
    assert any(int(i) in CAT_CLASSES for i in result.label_indices[:, 0])
    for labels in result.labels:
        probs = [p for _, p in labels]
        assert probs == sorted(probs, reverse=True) and 0 < probs[0] <= 1


def test_earlier_layer_and_bad_options(lite, cat_path):
    assert xai_core.factorize(lite, cat_path, n_components=3, layer="stage5").heatmaps.shape == (3, 224, 224)
    for bad in (0, 17):
        with pytest.raises(xai_core.InvalidOptionError):
            xai_core.factorize(lite, cat_path, n_components=bad)
    with pytest.raises(xai_core.UnknownNameError):
        xai_core.factorize(lite, cat_path, layer="layer4")
