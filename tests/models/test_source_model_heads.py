"""Heads through `load_model` sources (random weights, small inputs): AblationCAM equals the
library's on the CNNs whose top-level children are not their head, the pooled shortcut equals the
library where the layer's minimum is not 0, DenseNet's `features.norm5` (an in-place ReLU follows)
records cleanly, and DFF labels and the sanity check use each model's own head."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
import torch
from PIL import Image

import xai_core
from _arch_models import _well_scaled, no_hooks
from xai_core.faithfulness.sanity import randomized_handle
from xai_core.methods.cam_classes import library_ablation_values
from xai_core.methods.shared_pass import recording
from xai_core.methods.reference import library_map

SIDE = 32
IMAGE = Image.fromarray(np.random.default_rng(4).integers(0, 255, (40, 36, 3), dtype=np.uint8))


@lru_cache(maxsize=None)
def handle(source: str, side: int = SIDE):
    h = xai_core.load_model(source, weights=None, device="cpu", input_size=side)
    _well_scaled(h.module, side)
    h._heads.clear()
    return h


#: Layers with fewer channels than the default ones: the library's AblationCAM runs the whole model
#: once per channel, so the default layers (576-1280 channels) would take minutes.
@pytest.mark.parametrize("source,layer", [
    ("torchvision:mobilenet_v3_small", "features.11"), ("torchvision:densenet121", "features.transition1"),
    ("torchvision:efficientnet_b0", "features.6"), ("torchvision:convnext_tiny", "features.3"),
])
def test_ablationcam_equals_the_library(source, layer):
    h = handle(source, 64 if "densenet" in source else SIDE)  # DenseNet: 64 px for a 2 x 2 map at norm5
    layer = layer or h.default_layer
    got = xai_core.explain(h, IMAGE, ["ablationcam", "gradcam"], target=5, layer=layer).maps["ablationcam"]
    want = library_map(h, "ablationcam", [layer], h.preprocess(IMAGE), 5, batch_size=32)
    assert np.abs(got - want).max() <= 1e-5
    assert no_hooks(h.module) and all(p.grad is None for p in h.module.parameters())


def test_pooled_shortcut_uses_the_librarys_constants():
    """timm's test EfficientNet ends in BatchNorm + SiLU (minimum < 0, 256 channels) and its head is
    GAP + linear, like EfficientNet-B0's features.8: the pooled path must lower the constant row by
    row as AblationLayer does, and equal the library."""
    values = library_ablation_values(torch.tensor(-0.25), 3)
    first = np.float32(np.float32(-0.25) - np.float32(1e7))
    assert values.tolist() == [first, np.float32(first - np.float32(1e7)),
                               np.float32(np.float32(first - np.float32(1e7)) - np.float32(1e7))]
    assert library_ablation_values(torch.tensor(0.0), 2).tolist() == [0.0, 0.0]
    h = handle("timm:test_efficientnet")
    assert h.is_gap_linear(h.default_layer)
    test_ablationcam_equals_the_library("timm:test_efficientnet", h.default_layer)


def test_densenet_norm5_records_with_the_inplace_relu_after_it():
    """DenseNet applies `F.relu(features, inplace=True)` to norm5's output: recording must neither
    fail ("a leaf Variable ... in-place") nor keep the overwritten (post-ReLU) values. The library
    keeps the tensor the ReLU overwrites, so its maps at norm5 use post-ReLU activations; ours use
    the layer's real output (hence no parity test at norm5, and one at denseblock4 above)."""
    h = handle("torchvision:densenet121", 64)  # a 2 x 2 map at norm5
    assert h.default_layer == "features.norm5"
    result = xai_core.explain(h, IMAGE, ["gradcam", "eigencam", "ablationcam"], target=1)
    assert all(np.isfinite(m).all() and m.shape == (64, 64) for m in result.maps.values())
    x = h.preprocess(IMAGE)
    with recording([h.layers["features.norm5"]], start_graph=False) as acts, torch.no_grad():
        h.module(x)
    with torch.no_grad():
        features = h.module.features[:-1](x)
        want = h.module.features.norm5(features)
    assert want.min() < 0 and torch.allclose(acts[0], want, atol=1e-6)  # pre-ReLU, as norm5 outputs
    dff = xai_core.factorize(h, IMAGE, n_components=2)
    assert dff.heatmaps.shape == (2, 64, 64)
    assert no_hooks(h.module) and all(p.grad is None for p in h.module.parameters())


def test_dff_labels_a_transformers_concepts_with_its_own_labels():
    h = xai_core.load_model("timm:deit_tiny_distilled_patch16_224", weights=None, labels=[f"c{i}" for i in range(5)],
                            device="cpu", input_size=64)
    result = xai_core.factorize(h, IMAGE, n_components=3, top_k=2)
    assert result.heatmaps.shape == (3, 64, 64) and np.isfinite(result.heatmaps).all()
    assert all(label in h.categories for row in result.labels for label, _ in row)
    probs = [p for row in result.labels for _, p in row]
    assert all(0 <= p <= 1 for p in probs)
    assert no_hooks(h.module)


def test_sanity_copy_reinitialises_the_layer_and_everything_after_it():
    h = handle("torchvision:mobilenet_v3_small")
    layer = h.default_layer
    copy = randomized_handle(h, [layer]).module
    changed = {name for name, p in copy.named_parameters() if not torch.equal(p, h.module.get_parameter(name))}
    assert "classifier.3.weight" in changed and "classifier.0.weight" in changed  # the head after `features`
    assert any(n.startswith(layer + ".") for n in changed)
    assert not any(n.startswith("features.0.") for n in changed)


def test_ablationcam_is_blank_with_a_note_when_the_target_score_is_zero():
    """A zero-initialised head (torchvision's ViTs, untrained) gives every logit 0: pytorch-grad-cam's
    AblationCAM divides by that 0 and returns NaN; ours returns a blank map and says why."""
    from xai_core.methods.cam_classes import ABLATION_UNDEFINED

    handle = xai_core.load_model("torchvision:resnet18", weights=None, device="cpu", input_size=64)
    torch.nn.init.zeros_(handle.module.fc.weight)
    torch.nn.init.zeros_(handle.module.fc.bias)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    result = xai_core.explain(handle, image, ["ablationcam"])
    assert np.isfinite(result.maps["ablationcam"]).all() and not result.maps["ablationcam"].any()
    assert ABLATION_UNDEFINED in result.notes
    assert ABLATION_UNDEFINED not in xai_core.explain(
        xai_core.load_model("torchvision:resnet18", weights=None, device="cpu", input_size=64), image, ["ablationcam"]
    ).notes
