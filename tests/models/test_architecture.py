"""Layer discovery and reshape inference (`xai_core.models.architecture`) on random-weight models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from _arch_models import FAMILIES, image, model, no_hooks, size
from xai_core.models.architecture import ChannelsLast, TokenGrid, describe, probe_input, trace

#: The layers pytorch-grad-cam's docs and tutorials advise, and a few more per family.
EXPECTED = {
    "resnet18": (["layer1", "layer2", "layer3", "layer4"], "layer4"),
    "mobilenet_v3_small": ([f"features.{i}" for i in range(13)], "features.12"),
    "efficientnet_b0": ([f"features.{i}" for i in range(9)], "features.8"),
    "densenet121": (["features.denseblock1", "features.transition1", "features.denseblock2", "features.transition2",
                     "features.denseblock3", "features.transition3", "features.denseblock4", "features.norm5"],
                    "features.norm5"),
    "vgg11": (["features.1", "features.4", "features.7", "features.9", "features.12", "features.14",
               "features.17", "features.19", "features.20"], "features.20"),
    "convnext_tiny": ([f"features.{i}" for i in range(8)], "features.7"),
    "regnet_y_400mf": (["stem"] + [f"trunk_output.block{i}" for i in range(1, 5)], "trunk_output.block4"),
    "vit_b_16": ([f"encoder.layers.encoder_layer_{i}.ln_1" for i in range(12)], "encoder.layers.encoder_layer_11.ln_1"),
    "swin_t": ([f"features.{s}.{b}.norm1" for s, n in ((1, 2), (3, 2), (5, 6), (7, 2)) for b in range(n)],
               "features.7.1.norm1"),
    "timm:deit_tiny_distilled_patch16_224": ([f"blocks.{i}.norm1" for i in range(12)], "blocks.11.norm1"),
}

#: name -> (prefix tokens, channels last) of the default layer; 64 px / patch 16 -> a 4 x 4 grid.
TRANSFORMERS = {
    "vit_b_16": (1, False),
    "swin_t": (0, True),
    "timm:deit_tiny_distilled_patch16_224": (2, False),
    "timm:vit_tiny_reg4_gap": (4, False),
    "timm:vit_tiny_cls_reg4": (5, False),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_candidate_layers_and_default(name):
    """Block-level candidates in forward order, and the default pytorch-grad-cam advises: the last
    spatial block before global pooling (CNN) or the last block's first normalisation (transformer)."""
    m = model(name)
    arch = describe(m, (size(name), size(name)))
    layers, default = EXPECTED[name]
    assert list(arch.layers) == layers
    assert arch.default_layer == default
    assert all(arch.layers[p] is m.get_submodule(p) for p in layers)
    assert arch.transformer == (name in TRANSFORMERS)
    assert no_hooks(m)


def _hand_written(name: str):
    """The tutorials' reshape_transform (pytorch-grad-cam docs, vision transformers)."""
    prefix, channels_last = TRANSFORMERS[name]
    if channels_last:  # Swin: [B, H, W, C]
        return lambda tensor: tensor.permute(0, 3, 1, 2)

    def reshape_transform(tensor, height=4, width=4):
        result = tensor[:, prefix:, :].reshape(tensor.size(0), height, width, tensor.size(2))
        return result.transpose(2, 3).transpose(1, 2)

    return reshape_transform


@pytest.mark.parametrize("name", list(TRANSFORMERS))
def test_inferred_reshape_equals_hand_written(name):
    """The inferred transform has the right prefix and grid, and gives exactly the hand-written
    transform's maps on every candidate layer's real activations."""
    m = model(name)
    arch = describe(m, (size(name), size(name)))
    prefix, channels_last = TRANSFORMERS[name]
    expected = ChannelsLast() if channels_last else TokenGrid(prefix, 4, 4)
    assert arch.reshape_transforms[arch.default_layer] == expected
    rec = trace(m, image(name), capture=list(arch.layers))
    for path in list(arch.layers)[-3:]:  # Swin's last stages: 2 x 2 maps, no prefix
        got = arch.reshape_transforms[path](rec.outputs[path])
        assert got.shape[1] == rec.outputs[path].shape[-1]
        if path == arch.default_layer:
            assert torch.equal(got, _hand_written(name)(rec.outputs[path]))


@pytest.mark.parametrize("name", list(TRANSFORMERS))
def test_gradcam_with_inferred_reshape_equals_hand_written(name):
    """pytorch-grad-cam's GradCAM given the inferred transform equals GradCAM given the
    hand-written one (within 1e-5), at the default layer."""
    m = model(name)
    arch = describe(m, (size(name), size(name)))
    layer = arch.layers[arch.default_layer]
    x, targets = image(name, batch=2), [ClassifierOutputTarget(3), ClassifierOutputTarget(7)]
    maps = []
    for transform in (arch.reshape_transforms[arch.default_layer], _hand_written(name)):
        with GradCAM(model=m, target_layers=[layer], reshape_transform=transform) as cam:
            maps.append(cam(input_tensor=x, targets=targets))
    assert maps[0].shape == (2, size(name), size(name)) and np.isfinite(maps[0]).all()
    np.testing.assert_allclose(maps[0], maps[1], atol=1e-5)
    assert no_hooks(m)


@pytest.mark.parametrize("name", ["resnet18", "densenet121", "convnext_tiny"])
def test_cnn_layers_need_no_reshape(name):
    arch = describe(model(name), (size(name), size(name)))
    assert set(arch.reshape_transforms.values()) == {None}


def test_trace_removes_its_hooks_after_an_error():
    """A model that raises mid-forward leaves no hook behind, and the error propagates."""

    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            self.conv(x)
            raise RuntimeError("boom")

    m = Broken().eval()
    with pytest.raises(RuntimeError, match="boom"):
        describe(m, (16, 16))
    assert no_hooks(m)


def test_describe_refuses_training_mode():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with pytest.raises(ValueError, match="eval mode"):
        describe(m, (16, 16))


def test_probe_input_is_reproducible():
    m = model("resnet18")
    assert torch.equal(probe_input(m, (32, 32)), probe_input(m, (32, 32)))


def test_families_cover_the_issue():
    assert {"resnet18", "vit_b_16", "swin_t", "timm:deit_tiny_distilled_patch16_224"} <= set(FAMILIES)
