"""One representative model of each family through `load_model(..., weights=None)` at 64 px:
gradient CAMs give finite [0, 1] maps of the input's size at the automatic default layer, leave no
hook and no .grad on the model, and Grad-CAM equals pytorch-grad-cam's (with the inferred reshape)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import xai_core
from _arch_models import _well_scaled, no_hooks
from xai_core.methods.reference import library_map

SIDE = 64
FAMILIES = ["torchvision:resnet18", "torchvision:mobilenet_v3_small", "torchvision:efficientnet_b0",
            "torchvision:densenet121", "torchvision:vgg11", "torchvision:convnext_tiny",
            "torchvision:regnet_y_400mf", "torchvision:vit_b_16", "torchvision:swin_t",
            "timm:deit_tiny_distilled_patch16_224"]
METHODS = ["gradcam", "gradcam++", "layercam"]
#: The library keeps DenseNet's norm5 output after the model's in-place ReLU overwrote it (post-ReLU
#: values); ours is the layer's real output, so the parity check uses the block before it.
PARITY_LAYER = {"torchvision:densenet121": "features.denseblock4"}
IMAGE = Image.fromarray(np.random.default_rng(5).integers(0, 255, (70, 90, 3), dtype=np.uint8))


@pytest.mark.parametrize("source", FAMILIES)
def test_gradient_cams_on_every_family(source):
    h = xai_core.load_model(source, weights=None, device="cpu", input_size=SIDE)
    _well_scaled(h.module, SIDE)  # logits of order 1 (torchvision's ViT head starts at zero)
    h._heads.clear()
    result = xai_core.explain(h, IMAGE, METHODS, target=7)
    assert result.layers == (h.default_layer,) and result.target_label == h.categories[7]
    for method in METHODS:
        m = result.maps[method]
        assert m.shape == (SIDE, SIDE) and m.dtype == np.float32 and np.isfinite(m).all()
        assert 0 <= m.min() and m.max() <= 1
    assert no_hooks(h.module) and all(p.grad is None for p in h.module.parameters())
    layer = PARITY_LAYER.get(source, h.default_layer)
    got = result.maps["gradcam"] if layer == h.default_layer else \
        xai_core.explain(h, IMAGE, ["gradcam"], target=7, layer=layer).maps["gradcam"]
    want = library_map(h, "gradcam", [layer], h.preprocess(IMAGE), 7)
    assert np.abs(got - want).max() <= 1e-5
    assert any("vision transformers" in n for n in result.notes) == h.transformer
