"""The head after a target layer (`xai_core.models.architecture.head_for`): exact where it can be
isolated, a checked replay elsewhere, never wrong; and AblationCAM through it equals the library's."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from pytorch_grad_cam import AblationCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from _arch_models import EXACT_FAMILIES, assert_same, image, model, no_hooks, size
from xai_core.models.architecture import describe, head_for, probe_input, trace
from xai_core.methods.cam_classes import HeadAblationCAM
from xai_core.models.specs import children_after

#: Families whose every candidate layer has an isolated (exact) head; transformers replay one block.
REPLAY_FAMILIES = ["vit_b_16", "swin_t", "timm:deit_tiny_distilled_patch16_224", "timm:vit_tiny_cls_reg4"]
#: Layers whose head is global average pooling + linear (Grad-CAM == HiResCAM there).
GAP_LINEAR = {("resnet18", "layer4"), ("efficientnet_b0", "features.8"), ("regnet_y_400mf", "trunk_output.block4")}


def _layers(name: str) -> list[str]:
    layers = list(describe(model(name), (size(name), size(name))).layers)
    return layers if name in EXACT_FAMILIES else [layers[0], layers[len(layers) // 2], layers[-1]]


def _check(name: str, layer: str, head, x: torch.Tensor) -> None:
    m = model(name)
    rec = trace(m, x, capture=[layer])
    with torch.no_grad():
        got = head(rec.outputs[layer])
    assert_same(got, rec.logits)


@pytest.mark.parametrize("name", EXACT_FAMILIES + REPLAY_FAMILIES)
def test_head_reproduces_the_logits_at_every_candidate_layer(name):
    """head(activations of x) == model(x) for inputs other than the probe, batched, and the kind
    of head (exact / replay of one block) and its global-average-pool+linear flag are as expected."""
    m = model(name)
    probe = probe_input(m, (size(name), size(name)))
    x = image(name, seed=5, batch=2)
    for layer in _layers(name):
        head = head_for(m, layer, probe)
        assert head.exact == (name in EXACT_FAMILIES)
        assert head.gap_linear == ((name, layer) in GAP_LINEAR)
        if head.exact:
            _check(name, layer, head, x)
        else:
            assert head.replay_from == layer.rpartition(".")[0]  # the block holding the norm
            for b in range(2):
                _check(name, layer, head.bind(m, x[b:b + 1]), x[b:b + 1])
        assert head.after and all(any(True for _ in a.parameters(recurse=False)) for a in head.after)
    assert no_hooks(m)


@pytest.mark.parametrize("name,layer", [("mobilenet_v3_small", "features.12"), ("vgg11", "features.20"),
                                        ("efficientnet_b0", "features.8"), ("densenet121", "features.norm5")])
def test_naive_children_after_is_wrong_where_ours_is_right(name, layer):
    """The issue's bug: the top-level children after `features` are not the head of these models."""
    m = model(name)
    x = image(name)
    rec = trace(m, x, capture=[layer])
    head = head_for(m, layer, probe_input(m, (size(name), size(name))))
    assert_same(head(rec.outputs[layer]), rec.logits)
    top = layer.split(".")[0]
    features = trace(m, x, capture=[top]).outputs[top]
    try:
        naive = children_after(m, top)(features)
    except RuntimeError:
        return  # the naive head does not even run
    scale = float(rec.logits.abs().max())
    assert naive.shape != rec.logits.shape or float((naive - rec.logits).abs().max()) > 0.01 * scale


class _Functional(nn.Module):
    """A forward no isolation can reproduce: the tail mixes the layer's output with the input."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2, self.fc = nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3), nn.Linear(8, 5)

    def forward(self, x):
        y = self.conv2(torch.relu(self.conv1(x)))
        return self.fc(y.mean((2, 3)) * 2 + x.mean())


def test_whole_model_replay_when_nothing_isolates():
    torch.manual_seed(0)
    m = _Functional().eval()
    head = head_for(m, "conv2", torch.randn(1, 3, 16, 16))
    assert not head.exact and head.replay_from == ""
    x = torch.randn(1, 3, 16, 16)
    rec = trace(m, x, capture=["conv2"])
    assert_same(head.bind(m, x)(rec.outputs["conv2"]), rec.logits)
    assert no_hooks(m)


def test_a_layer_that_runs_twice_has_no_head():
    relu = nn.ReLU()
    m = nn.Sequential(nn.Conv2d(3, 4, 3), relu, nn.Conv2d(4, 4, 3), relu, nn.Flatten(), nn.LazyLinear(2))
    m(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="2 times"):
        head_for(m.eval(), "1", torch.randn(1, 3, 8, 8))
    assert no_hooks(m)


def test_replay_head_removes_its_hook_after_an_error():
    m = model("vit_b_16")
    layer = "encoder.layers.encoder_layer_11.ln_1"
    head = head_for(m, layer, probe_input(m, (64, 64)))
    with pytest.raises(ValueError, match="outputs"):
        head(torch.zeros(1, 3, 768))  # wrong token count
    assert no_hooks(m)


def _library_weights(m, layer, x, target):
    """pytorch-grad-cam's AblationCAM weights: the layer swapped for its AblationLayer."""
    module = m.get_submodule(layer)
    with AblationCAM(m, [module], batch_size=64) as cam:
        cam.activations_and_grads(x)
        acts = cam.activations_and_grads.activations[0]
        return cam.get_cam_weights(x, module, [ClassifierOutputTarget(target)], acts, None), acts


def _head_weights(head, gap, acts, target):
    """HeadAblationCAM's weights with `head` as the head, the way explain() configures it."""
    layer = nn.Identity()  # stands for the target layer: HeadAblationCAM looks heads up by id
    cam = HeadAblationCAM.__new__(HeadAblationCAM)
    cam.activations_and_grads = _NoHooks()
    cam.heads, cam.gap_heads = {id(layer): head.module}, ({id(layer)} if gap else set())
    cam.guard, cam.batch_size, cam.device, cam.progress = contextlib.nullcontext, 64, torch.device("cpu"), None
    return cam.get_cam_weights(None, layer, [ClassifierOutputTarget(target)], acts.numpy(), None)


class _NoHooks:
    def release(self):  # BaseCAM.__del__ calls it
        pass


@pytest.mark.parametrize("name,layer,pooled", [
    ("mobilenet_v3_small", "features.12", False), ("densenet121", "features.norm5", False),
    ("efficientnet_b0", "features.8", False), ("resnet18", "layer3", False), ("resnet18", "layer4", True)])
def test_head_ablation_equals_library_ablationcam(name, layer, pooled):
    """Ablating each channel through our head (exact, and forced replay for MobileNetV3) equals
    the library's AblationLayer-based AblationCAM score, channel by channel. `pooled`: through
    HeadAblationCAM's pooled shortcut for a GAP+linear head (ResNet's layer4 is post-ReLU, min 0)."""
    m = model(name)
    x = image(name, seed=3)[..., :32, :32]
    head = head_for(m, layer, probe_input(m, (32, 32)))
    assert head.gap_linear == pooled or name == "efficientnet_b0"
    want, acts = _library_weights(m, layer, x, target=3)
    got = _head_weights(head, pooled, acts, target=3)
    assert np.abs(want).max() > 1e-3
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    if name == "mobilenet_v3_small":
        replay = head_for(_NoIsolation(m).eval(), "m." + layer, x)  # whole-model replay, bound to x
        assert not replay.exact
        np.testing.assert_allclose(_head_weights(replay, False, acts, target=3), want, rtol=1e-4,
                                   atol=1e-5 * np.abs(want).max())
    assert no_hooks(m)


class _NoIsolation(nn.Module):
    """Wraps a model so that only the whole-model replay can serve as its head."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(x) * (2 + x.mean())
