"""`class_concepts` (issue 30): concepts across a class. Oracles: pytorch-grad-cam's `dff` on the same
activations, the model's own logits and linear layer, and the head re-run on activations with a
concept projected out by hand."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
import torch
from pytorch_grad_cam.feature_factorization.deep_feature_factorization import dff

import xai_core
from conftest import IMAGES, no_hooks_left
from xai_core.concepts import extract
from xai_core import Cancelled, ClassConcepts, Concept, InvalidOptionError, UnknownNameError, class_concepts

PHOTOS = sorted(str(p) for p in IMAGES.iterdir() if p.suffix in (".png", ".jpg"))


def activations(handle, layer, paths):
    """(model input, the layer's [N, C, h, w] output, logits) recorded here with a plain hook."""
    x = handle.prepare([xai_core.load_image(p) for p in paths]).x
    seen = []
    hook = handle.layers[layer].register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))
    try:
        with torch.no_grad():
            logits = handle.module(x)
    finally:
        hook.remove()
    return x, seen[0], logits


@pytest.fixture(scope="module")
def tabby(lite):
    return class_concepts(lite, PHOTOS, "tabby", n_concepts=4)


@pytest.mark.parametrize("count,k", [(1, 1), (3, 3)])
def test_concepts_are_dffs_on_the_same_activations(lite, count, k):
    result = class_concepts(lite, PHOTOS[:count], "tabby", n_concepts=k, fidelity=False)
    _, acts, _ = activations(lite, lite.default_layer, PHOTOS[:count])
    concepts, explanations = dff(acts.numpy().copy(), n_components=k)
    scale = np.abs(concepts).max()
    assert np.abs(concepts - (result.directions + result.offset[None, :]).T).max() <= 1e-5 * scale
    assert np.abs(explanations - result.coefficients).max() <= 1e-5 * np.abs(explanations).max()
    assert result.solver == "nmf" and result.layer == lite.default_layer and result.images == count


def test_importances_and_residual_sum_to_the_logit_minus_the_bias(lite, tabby):
    _, _, logits = activations(lite, lite.default_layer, PHOTOS)
    cls = lite.class_index("tabby")
    bias = float(lite.module.fc.bias[cls].detach())
    want = logits[:, cls].double().numpy() - bias
    assert tabby.method == "exact (linear head)"
    assert np.abs(tabby.contributions.sum(axis=1) + tabby.residuals - want).max() <= 1e-4
    total = sum(c.importance for c in tabby.concepts) + tabby.residual
    assert abs(total - want.mean()) <= 1e-4
    # the split itself: mean coefficient x (direction . the class's weights), from the fc layer here
    weights = lite.module.fc.weight[cls].detach().double().numpy()
    means = tabby.coefficients.mean(axis=(2, 3), dtype=np.float64)
    assert np.allclose(tabby.contributions, means * (tabby.directions.astype(np.float64) @ weights), atol=1e-6)


def test_removing_the_top_concept_lowers_the_logit_by_its_importance(lite, tabby):
    top = tabby.fidelity["order"][0]
    assert tabby.concepts[top].importance == max(c.importance for c in tabby.concepts)
    _, acts, logits = activations(lite, lite.default_layer, PHOTOS)
    coeff = torch.from_numpy(tabby.coefficients[:, top])[:, None]  # [N, 1, h, w]
    direction = torch.from_numpy(tabby.directions[top])[None, :, None, None]
    with torch.no_grad():
        removed = lite.head(lite.default_layer)(acts - coeff * direction)
    cls = lite.class_index("tabby")
    drops = (logits[:, cls] - removed[:, cls]).double().numpy()
    # measured: |drop - contribution| <= 2e-6 (float32 head); 1e-4 leaves room for other BLAS
    assert np.abs(drops - tabby.contributions[:, top]).max() <= 1e-4
    assert abs(drops.mean() - tabby.concepts[top].importance) <= 1e-4
    curve = tabby.fidelity["logit_removed"]
    assert abs((curve[0] - curve[1]) - tabby.concepts[top].importance) <= 1e-4


def test_fidelity_curves_and_areas(tabby):
    f = tabby.fidelity
    k = len(tabby.concepts)
    assert len(f["removed"]) == len(f["random"]) == k + 1
    assert f["removed"][0] == pytest.approx(f["random"][0])  # nothing removed yet: the same images
    assert f["removed"][-1] == pytest.approx(f["random"][-1])  # everything removed: the same activations
    assert f["auc_low"] <= f["auc"] <= f["auc_high"] and f["random_auc_low"] <= f["random_auc"] <= f["random_auc_high"]
    assert f["auc"] < f["random_auc"]  # the tabby concept first: the probability falls at once


def test_crops_lie_where_the_coefficient_maps_peak(lite, tabby):
    pictures = lite.prepare([xai_core.load_image(p) for p in PHOTOS]).pixels.numpy()
    height, width = tabby.picture_size
    for concept in tabby.concepts:
        assert len(concept.crops) == 6
        peaks = [tabby.coefficients[n, concept.index].max() for n, _, _, _ in concept.crops]
        assert peaks == sorted(peaks, reverse=True)
        for n, x, y, crop in concept.crops:
            grid = tabby.coefficients[n, concept.index]
            row, col = np.unravel_index(grid.argmax(), grid.shape)
            assert (x, y) == (int((col + 0.5) * width / grid.shape[1]), int((row + 0.5) * height / grid.shape[0]))
            assert crop.dtype == np.uint8 and crop.shape == (64, 64, 3)
            left, top = min(max(x - 32, 0), width - 64), min(max(y - 32, 0), height - 64)
            assert np.array_equal(crop, pictures[n, top:top + 64, left:left + 64])
            # the full-size map peaks in the crop too
            full = tabby.maps(n)[concept.index]
            py, px = np.unravel_index(full.argmax(), full.shape)
            assert left <= px < left + 64 and top <= py < top + 64


def test_a_fixed_seed_gives_the_same_result(lite, tabby):
    again = class_concepts(lite, PHOTOS, "tabby", n_concepts=4)
    assert np.array_equal(again.directions, tabby.directions)
    assert np.array_equal(again.coefficients, tabby.coefficients)
    assert again.fidelity == tabby.fidelity
    assert [c.importance for c in again.concepts] == [c.importance for c in tabby.concepts]
    other = class_concepts(lite, PHOTOS, "tabby", n_concepts=4, seed=1, fidelity=False, top_crops=0)
    assert not np.array_equal(other.directions, tabby.directions)


def test_the_result_is_frozen_numpy_and_picklable(lite, tabby):
    assert isinstance(tabby, ClassConcepts) and all(isinstance(c, Concept) for c in tabby.concepts)
    back = pickle.loads(pickle.dumps(tabby))
    assert np.array_equal(back.coefficients, tabby.coefficients) and back.targets == ("tabby",)
    maps = tabby.maps(1)
    assert maps.dtype == np.float32 and maps.shape == (4, 224, 224) and 0 <= maps.min() and maps.max() <= 1
    projected = tabby.maps(PHOTOS[1], lite)
    assert projected.shape == maps.shape
    # the fitted coefficients and the projection on the fixed directions agree where it matters
    assert np.corrcoef(projected.ravel(), maps.ravel())[0, 1] > 0.9
    labels = {label for c in tabby.concepts for label, _ in c.labels}
    assert labels & {"tabby", "tiger cat", "Egyptian cat"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        tabby.images = 3


def test_shared_concepts_of_two_classes(lite):
    result = class_concepts(lite, PHOTOS, ["tabby", "espresso"], n_concepts=3, top_crops=1)
    assert result.targets == ("tabby", "espresso")
    assert result.image_targets[PHOTOS.index(str(IMAGES / "coffee.png"))] == 1
    assert result.image_targets[PHOTOS.index(str(IMAGES / "cat.png"))] == 0
    for concept in result.concepts:
        assert set(concept.importance_by_class) == {"tabby", "espresso"}
    espresso = [c.importance_by_class["espresso"][0] for c in result.concepts]
    best = result.concepts[int(np.argmax(espresso))]
    assert best.labels[0][0] in ("espresso", "cup", "coffee mug")


def test_a_first_order_estimate_on_a_transformer():
    torch.manual_seed(0)
    vit = xai_core.load_model("timm:vit_tiny_patch16_224", weights=None, device="cpu", input_size=64)
    result = class_concepts(vit, PHOTOS, 3, n_concepts=3, top_crops=2)
    assert result.method == "first-order estimate (gradient x coefficient)"
    assert result.coefficients.shape == (6, 3, 4, 4) and len(result.fidelity["removed"]) == 4
    assert any("negative activations" in n for n in result.notes)
    assert np.allclose(result.contributions.sum(axis=1) + result.residuals, result.logits)


@pytest.mark.parametrize("call,error,sentence", [
    (lambda h: class_concepts(h, PHOTOS[:2], "tabby", n_concepts=3), InvalidOptionError,
     "3 concepts need at least 3 images; got 2."),
    (lambda h: class_concepts(h, PHOTOS, "no such class", n_concepts=2), UnknownNameError,
     "Unknown class 'no such class'"),
    (lambda h: class_concepts(h, PHOTOS, ["tabby", "tabby cat"], n_concepts=2), UnknownNameError, "Unknown class"),
    (lambda h: class_concepts(h, PHOTOS[:1], ["tabby", "cello"], n_concepts=1), InvalidOptionError,
     "None of the 1 images scores 'cello' above 'tabby'; give images of both classes."),
    (lambda h: class_concepts(h, PHOTOS, "tabby", n_concepts=0), InvalidOptionError,
     "n_concepts must be between 1 and"),
    (lambda h: class_concepts(h, PHOTOS, "tabby", n_concepts=2, layer="nope"), UnknownNameError, "Unknown layer"),
])
def test_bad_input_is_one_sentence(lite, call, error, sentence):
    with pytest.raises(error) as info:
        call(lite)
    message = str(info.value)
    assert message.startswith(sentence) and message.endswith(".") and message.replace("e.g. ", "").count(". ") == 0


def test_more_concepts_than_channels_is_refused(lite):
    many = [PHOTOS[1]] * 41  # stage3 has 40 channels
    with pytest.raises(InvalidOptionError, match=r"^Layer stage3 has 40 channels: ask for at most 40 concepts\.$"):
        class_concepts(xai_core.load_model("efficientnet_lite0", device="cpu"), many, "tabby", n_concepts=41,
                       layer="stage3")


def test_a_layer_with_negative_activations_is_shifted_and_says_so(lite):
    result = class_concepts(lite, PHOTOS[:3], "tabby", n_concepts=2, layer="stage7", top_crops=1)
    assert any(n.startswith("Layer stage7 has negative activations") for n in result.notes)
    assert result.offset.min() < 0
    assert result.method == "first-order estimate (gradient x coefficient)"


def test_many_locations_stream_through_minibatch_nmf(lite, tabby, monkeypatch):
    monkeypatch.setattr(extract, "STREAM_ROWS", 100)  # 6 images x 7 x 7 locations = 294 rows
    result = class_concepts(lite, PHOTOS, "tabby", n_concepts=4, batch_size=2)
    assert result.solver == "minibatch" and any("MiniBatchNMF" in n for n in result.notes)
    assert result.coefficients.shape == tabby.coefficients.shape
    _, _, logits = activations(lite, lite.default_layer, PHOTOS)
    cls = lite.class_index("tabby")
    want = logits[:, cls].double().numpy() - float(lite.module.fc.bias[cls].detach())
    assert np.abs(result.contributions.sum(axis=1) + result.residuals - want).max() <= 1e-4
    # streamed, the factorisation explains the activations about as well as NMF on all of them at once
    _, acts, _ = activations(lite, lite.default_layer, PHOTOS)

    def error(r):
        approx = np.einsum("nkhw,kc->nchw", r.coefficients, r.directions) + r.offset[None, :, None, None]
        return np.linalg.norm(approx - acts.numpy()) / np.linalg.norm(acts.numpy())

    assert error(result) <= 1.05 * error(tabby)  # measured: 0.790 streamed, 0.790 at once
    again = class_concepts(lite, PHOTOS, "tabby", n_concepts=4, batch_size=2)
    assert np.array_equal(again.directions, result.directions)


def test_no_hook_is_left_after_a_run_or_a_cancelled_one(lite):
    result = class_concepts(lite, PHOTOS[:2], "tabby", n_concepts=2, top_crops=0, fidelity=False)
    assert no_hooks_left(lite.module) and all(c.crops == [] for c in result.concepts) and result.fidelity == {}
    stages = []

    def cancel(stage, done, total):
        stages.append((stage, done, total))
        return False

    with pytest.raises(Cancelled, match=r"^The computation was cancelled\.$"):
        class_concepts(lite, PHOTOS, "tabby", n_concepts=2, batch_size=2, progress=cancel)
    assert stages == [("activations", 2, 6)] and no_hooks_left(lite.module)
