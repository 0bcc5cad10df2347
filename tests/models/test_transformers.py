"""Vision transformers through `load_model` (random weights, 64 px): every CAM method runs with the
inferred `reshape_transform` and equals pytorch-grad-cam given the hand-written one within 1e-5."""

from __future__ import annotations

import gc
import sys
from functools import lru_cache

import numpy as np
import torch
import pytest
from PIL import Image

import xai_core
from _arch_models import _well_scaled, no_hooks
from xai_core.methods.reference import library_map
from _eigen_sign import library_with_convention

SIDE = 64
TOL = 1e-5
#: source -> (prefix tokens, channels last): the tutorials' hand-written reshape_transform.
TRANSFORMERS = {
    "torchvision:vit_b_16": (1, False),
    "torchvision:swin_t": (0, True),
    "timm:deit_tiny_distilled_patch16_224": (2, False),
    "timm:vit_little_patch16_reg4_gap_256": (4, False),
}
GRADIENT = ["gradcam", "hirescam", "gradcam++", "xgradcam", "layercam", "eigengradcam", "gradcamelementwise",
            "finercam"]
#: The gradient-free methods as well; the perturbation ones only on the tiny models (each
#: ablated channel of the library's AblationCAM / ScoreCAM runs the whole model).
METHODS = {
    "torchvision:vit_b_16": GRADIENT + ["eigencam", "kpcacam"],
    "torchvision:swin_t": GRADIENT + ["eigencam"],
    "timm:deit_tiny_distilled_patch16_224": GRADIENT + ["eigencam", "kpcacam", "ablationcam", "scorecam"],
    "timm:vit_little_patch16_reg4_gap_256": ["gradcam", "gradcam++", "ablationcam"],
}
IMAGE = Image.fromarray(np.random.default_rng(3).integers(0, 255, (72, 80, 3), dtype=np.uint8))


@lru_cache(maxsize=None)
def handle(source: str):
    """The source at 64 px with random weights, its logits of order 1 (torchvision's ViT head is
    zeros) and batch-norm statistics set (`_arch_models._well_scaled`)."""
    torch.manual_seed(0)  # the same random model whatever ran before
    h = xai_core.load_model(source, weights=None, device="cpu", input_size=SIDE)
    _well_scaled(h.module, SIDE)
    h._heads.clear()  # the heads were checked on the unscaled module
    return h


def hand_written(source: str):
    prefix, channels_last = TRANSFORMERS[source]
    if channels_last:
        return lambda tensor: tensor.permute(0, 3, 1, 2)

    def reshape_transform(tensor, height=SIDE // 16, width=SIDE // 16):
        result = tensor[:, prefix:, :].reshape(tensor.size(0), height, width, tensor.size(2))
        return result.transpose(2, 3).transpose(1, 2)

    return reshape_transform


@pytest.mark.parametrize("source", list(TRANSFORMERS))
def test_every_method_equals_the_library_with_a_hand_written_reshape(source):
    h = handle(source)
    assert h.transformer and h.reshape(h.default_layer) is not None
    result = xai_core.explain(h, IMAGE, METHODS[source], target=3)
    x = h.preprocess(IMAGE)
    for method in METHODS[source]:
        with library_with_convention():  # EigenCAM / EigenGrad-CAM: the library's projection, our sign
            want = library_map(h, method, [h.default_layer], x, 3, reshape_transform=hand_written(source), batch_size=32)
        got = result.maps[method]
        assert got.shape == want.shape == (SIDE, SIDE) and np.isfinite(got).all()
        assert np.abs(got - want).max() <= TOL, method
    assert no_hooks(h.module) and all(p.grad is None for p in h.module.parameters())


@pytest.mark.parametrize("source", ["torchvision:vit_b_16", "torchvision:swin_t"])
def test_shapleycam_works_where_the_library_raises(source):
    """The library's ShapleyCAM weighs the raw tokens and raises; ours weighs the reshaped map with
    the library's own weights (gradient minus half the Hessian-vector product, reshaped)."""
    h = handle(source)
    got = xai_core.explain(h, IMAGE, ["shapleycam", "gradcam"]).maps  # the top-1: a well-defined map
    assert got["shapleycam"].shape == (SIDE, SIDE) and np.isfinite(got["shapleycam"]).all()
    assert got["shapleycam"].max() > 0
    assert no_hooks(h.module) and all(p.grad is None for p in h.module.parameters())
    unraisable, hook = [], sys.unraisablehook
    sys.unraisablehook = unraisable.append  # e.g. an exception in the library's BaseCAM.__del__
    try:
        with pytest.raises(ValueError):  # "Invalid activation shape" (ViT), "could not be broadcast" (Swin)
            library_map(h, "shapleycam", [h.default_layer], h.preprocess(IMAGE), 3,
                        reshape_transform=hand_written(source))
        gc.collect()
    finally:
        sys.unraisablehook = hook
    # the library's hooks released the way it expects, even on its reshaped (view) gradients
    assert unraisable == [] and no_hooks(h.module) and all(p.grad is None for p in h.module.parameters())


def test_transformer_note_suggests_the_gradient_free_methods():
    result = xai_core.explain(handle("timm:deit_tiny_distilled_patch16_224"), IMAGE, ["gradcam"])
    assert any("vision transformer" in n and "Ablation-CAM" in n for n in result.notes)
