"""The attention methods (LeGrad, attention rollout, gradient-weighted relevance) against oracles
written or chosen independently of xai_core: TorchCAM 0.5's LeGrad, and re-implementations here of
rollout (Abnar & Zuidema 2020, with jacobgil/vit-explain's discard rule) and of Chefer et al.'s
relevance rule, from attention the test computes or records with its own hooks. Then: batches equal
single images, fused attention is put back, where the methods apply, their options, aug_smooth and
the cost model. Random weights, small inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import xai_core
from _deps import need
from conftest import IMAGES, no_hooks_left
from xai_core.errors import InvalidOptionError
from xai_core.methods import methods_for
from xai_core.methods.attention import AttentionRollout, GradientRelevance, LeGrad, grid_maps
from xai_core.methods.attention_capture import attention_layout, capturing
from _attention import batch_of as _batch_of, max_diff, ours, record, timm_attentions

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ATTENTION = ["legrad", "rollout", "relevance"]
TOL = 1e-5
#: LeGrad's raw maps here are of order 3e-3; ours and TorchCAM's differ by at most 1.9e-9 (a few float32
#: ulps at that size, with 1 or 2 threads): asserted with a margin of 10x.
LEGRAD_TOL = 2e-8
PICTURES = [IMAGES / "cat.png", IMAGES / "coffee.png", IMAGES / "rocket.jpg"]


def batch_of(handle, count: int = 1) -> torch.Tensor:
    return _batch_of(handle, PICTURES, count)
TARGETS = [3, 281, 7]



def _timm(name: str, size: int):
    need("timm")
    torch.manual_seed(0)
    return xai_core.load_model(f"timm:{name}", weights=None, device="cpu", input_size=size)


@pytest.fixture(scope="module")
def tv_vit():
    """torchvision's ViT-B/16 at 64 px, random weights; its zero-initialised head made random so that
    gradients are not all zero."""
    torch.manual_seed(0)
    handle = xai_core.load_model("torchvision:vit_b_16", weights=None, device="cpu", input_size=64)
    with torch.no_grad():
        torch.nn.init.normal_(handle.module.heads.head.weight, std=0.05)
    return handle


@pytest.fixture(scope="module")
def vit_tiny():
    return _timm("vit_tiny_patch16_224", 64)


@pytest.fixture(scope="module")
def deit():
    return _timm("deit_tiny_distilled_patch16_224", 64)


@pytest.fixture(scope="module")
def registers():
    """DINOv2 ViT-S/14 with 4 register tokens at 56 px. Its LayerScale starts at 1e-5, which makes a
    random model all but the identity (zero maps, features of order 1e-3): set to 0.1 here."""
    handle = _timm("vit_small_patch14_reg4_dinov2", 56)
    with torch.no_grad():
        for block in handle.module.blocks:
            block.ls1.gamma.fill_(0.1)
            block.ls2.gamma.fill_(0.1)
    return handle


@pytest.fixture(scope="module")
def swin():
    return _timm("swin_tiny_patch4_window7_224", 64)




# --- 1. LeGrad = TorchCAM's LeGrad --------------------------------------------------------------------


def torchcam_legrad(model, x, class_idx, blocks: int, normalized: bool = False) -> torch.Tensor:
    from torchcam.methods import LeGrad as TorchCamLeGrad

    with TorchCamLeGrad(model, list(model.encoder.layers)[-blocks:]) as extractor:
        model(x)
        (cam,) = extractor(class_idx, normalized=normalized)
    assert no_hooks_left(model)
    return cam.detach()


@pytest.mark.parametrize("blocks", [4, 2])
def test_legrad_equals_torchcam_single_image(tv_vit, blocks):
    need("torchcam")
    x = batch_of(tv_vit)
    expected = torchcam_legrad(tv_vit.module, x, 281, blocks)
    got = ours(tv_vit, LeGrad, x, [281], {"blocks": blocks})
    assert got.shape == (1, 4, 4) and expected.abs().max() > 1e-4  # a real map, not zeros
    assert max_diff(got, expected) <= LEGRAD_TOL


@pytest.mark.parametrize("blocks", [4, 2])
def test_legrad_equals_torchcam_batch_per_image_targets(tv_vit, blocks):
    need("torchcam")
    x = batch_of(tv_vit, 3)
    expected = torchcam_legrad(tv_vit.module, x, TARGETS, blocks)
    got = ours(tv_vit, LeGrad, x, TARGETS, {"blocks": blocks})
    assert got.shape == (3, 4, 4)
    assert max_diff(got, expected) <= LEGRAD_TOL
    # Per-image targets matter: the first image's map for another class is another map.
    assert max_diff(ours(tv_vit, LeGrad, x[:1], [TARGETS[1]], {"blocks": blocks}), got[:1]) > 1e-4


def test_explained_legrad_equals_torchcam_normalised_and_upsampled(tv_vit):
    """explain's map is TorchCAM's, min-max scaled as pytorch-grad-cam scales (1e-7 added to the
    maximum; TorchCAM adds 1e-8, a difference of up to 1e-7 / range, ~1e-4 on these small raw maps)
    and upsampled bilinearly (half-pixel centres)."""
    need("torchcam")
    x = batch_of(tv_vit)
    raw = torchcam_legrad(tv_vit.module, x, 281, 4)
    scaled = raw - raw.amin()
    scaled = scaled / (1e-7 + scaled.amax())
    upsample = lambda cam: F.interpolate(cam[:, None], size=(64, 64), mode="bilinear", align_corners=False)[0, 0]
    result = xai_core.explain(tv_vit, PICTURES[0], methods="legrad", target=281)
    assert result.maps["legrad"].shape == (64, 64)
    assert max_diff(result.maps["legrad"], upsample(scaled)) <= TOL
    normalised = torchcam_legrad(tv_vit.module, x, 281, 4, normalized=True)
    assert max_diff(result.maps["legrad"], upsample(normalised)) <= 1e-3


# --- 2. Rollout = the paper's rule + vit-explain's discard ------------------------------------------


def reference_rollout(attentions, prefix: int, grid, head_fusion: str, discard_ratio: float) -> torch.Tensor:
    """Abnar & Zuidema's rollout as jacobgil/vit-explain computes it, one image at a time."""
    maps = []
    for i in range(attentions[0].shape[0]):
        n = attentions[0].shape[-1]
        result = torch.eye(n)
        for attention in attentions:
            heads = attention[i]
            fused = {"mean": heads.mean(0), "max": heads.max(0).values, "min": heads.min(0).values}[head_fusion]
            flat = fused.view(-1)  # a view: zeroing it zeroes `fused`
            _, indices = flat.topk(int(flat.numel() * discard_ratio), largest=False)
            flat[indices[indices != 0]] = 0
            a = (fused + torch.eye(n)) / 2
            a = a / a.sum(dim=-1, keepdim=True)
            result = a @ result
        maps.append(result[0, prefix:].reshape(grid))
    return torch.stack(maps)


@pytest.mark.parametrize("model,prefix", [("vit_tiny", 1), ("registers", 5)])
def test_rollout_equals_reference(request, model, prefix):
    handle = request.getfixturevalue(model)
    x = batch_of(handle, 2)
    attentions = timm_attentions(handle.module, x)
    captured, layout, logits = record(handle, x)
    assert layout.prefix == prefix and layout.grid == (4, 4)
    for head_fusion in ("mean", "max", "min"):
        for discard_ratio in (0.0, 0.9):
            options = {"head_fusion": head_fusion, "discard_ratio": discard_ratio}
            expected = reference_rollout(attentions, prefix, (4, 4), head_fusion, discard_ratio)
            got = grid_maps(AttentionRollout, captured, layout, logits, [0, 0], options)
            assert max_diff(got, expected) <= TOL, options
            assert expected.std() > 1e-4, options  # not a flat map


# --- 3. Gradient-weighted relevance = Chefer et al.'s rule ------------------------------------------


def reference_relevance(model, x, target: int, prefix: int, grid) -> torch.Tensor:
    """Chefer et al. (2021), one image: attention recorded by this test's hooks on `attn_drop` (with
    fused attention off for the call), its gradient from autograd, R = I then R += cam @ R."""
    recorded, flags = [], [b.attn.fused_attn for b in model.blocks]
    hooks = [b.attn.attn_drop.register_forward_hook(lambda m, i, out: recorded.append(out)) for b in model.blocks]
    try:
        for block in model.blocks:
            block.attn.fused_attn = False
        with torch.enable_grad():
            logits = model(x.detach().clone().requires_grad_(True))
            grads = torch.autograd.grad(logits[0, target], recorded)
    finally:
        for hook, block, flag in zip(hooks, model.blocks, flags):
            hook.remove()
            block.attn.fused_attn = flag
    relevance = torch.eye(recorded[0].shape[-1])
    for attention, grad in zip(recorded, grads):
        cam = (grad[0] * attention[0].detach()).clamp(min=0).mean(dim=0)
        relevance = relevance + cam @ relevance
    return relevance[0, prefix:].reshape(grid)


@pytest.mark.parametrize("model,prefix", [("vit_tiny", 1), ("registers", 5)])
def test_relevance_equals_reference_single_image(request, model, prefix):
    handle = request.getfixturevalue(model)
    x = batch_of(handle)
    expected = reference_relevance(handle.module, x, 7, prefix, (4, 4))
    got = ours(handle, GradientRelevance, x, [7])
    assert max_diff(got[0], expected) <= TOL
    assert (expected - expected.min()).max() > 1e-4  # the gradients are not all clipped away


@pytest.mark.parametrize("model,prefix", [("vit_tiny", 1), ("registers", 5)])
def test_relevance_equals_reference_batch_per_image_targets(request, model, prefix):
    handle = request.getfixturevalue(model)
    x = batch_of(handle, 3)
    expected = torch.stack([reference_relevance(handle.module, x[i:i + 1], t, prefix, (4, 4))
                            for i, t in enumerate(TARGETS)])
    got = ours(handle, GradientRelevance, x, TARGETS)
    assert max_diff(got, expected) <= TOL
    assert max_diff(ours(handle, GradientRelevance, x[:1], [TARGETS[1]]), got[:1]) > 1e-5


# --- 4. explain_batch = explain ------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["tv_vit", "deit", "registers"])
def test_explain_batch_per_image_targets_equals_explain(request, model):
    handle = request.getfixturevalue(model)
    methods = ATTENTION + ["gradcam"]
    targets = [TARGETS[0], None, TARGETS[2]]
    batch = xai_core.explain_batch(handle, PICTURES, methods, targets=targets)
    for picture, target, result in zip(PICTURES, targets, batch):
        single = xai_core.explain(handle, picture, methods=methods, target=target)
        assert result.target == single.target and (target is None or result.target == target)
        for method in methods:
            assert max_diff(result.maps[method], single.maps[method]) <= TOL, method
    # Sharing one pass (a full graph kept for the attention methods) changes neither Grad-CAM nor them.
    for alone in (["gradcam"], ATTENTION):
        result = xai_core.explain(handle, PICTURES[2], methods=alone, target=targets[2])
        assert all(max_diff(result.maps[m], batch[2].maps[m]) <= TOL for m in alone), alone


# --- 5. Fused attention switched for the call and put back -----------------------------------------


def plain_logits(model, x) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("pattern", ["all fused", "mixed"])
def test_timm_fused_attention_put_back(vit_tiny, pattern):
    model = vit_tiny.module
    flags = [True] * len(model.blocks) if pattern == "all fused" else [i % 2 == 0 for i in range(len(model.blocks))]
    before = [b.attn.fused_attn for b in model.blocks]
    try:
        for block, flag in zip(model.blocks, flags):
            block.attn.fused_attn = flag
        x = batch_of(vit_tiny)
        expected = plain_logits(model, x)
        result = xai_core.explain(vit_tiny, PICTURES[0], methods=ATTENTION, target=TARGETS[0])
        assert [b.attn.fused_attn for b in model.blocks] == flags
        assert no_hooks_left(model)
        assert torch.equal(plain_logits(model, x), expected)
        probabilities = expected.softmax(-1)[0]
        assert result.top and all(abs(p.probability - float(probabilities[p.index])) <= TOL for p in result.top)
        assert result.top[0].index == int(probabilities.argmax())
    finally:
        for block, flag in zip(model.blocks, before):
            block.attn.fused_attn = flag


def test_torchvision_attention_put_back(tv_vit):
    x = batch_of(tv_vit)
    expected = plain_logits(tv_vit.module, x)
    result = xai_core.explain(tv_vit, PICTURES[0], methods=ATTENTION, target=TARGETS[0])
    assert no_hooks_left(tv_vit.module)
    assert torch.equal(plain_logits(tv_vit.module, x), expected)
    probabilities = expected.softmax(-1)[0]
    assert all(abs(p.probability - float(probabilities[p.index])) <= TOL for p in result.top)


def test_capturing_puts_back_on_error(vit_tiny):
    model = vit_tiny.module
    before = [b.attn.fused_attn for b in model.blocks]
    with pytest.raises(RuntimeError, match="boom"):
        with capturing(model, attention_layout(vit_tiny).sites):
            assert not any(b.attn.fused_attn for b in model.blocks)  # the exact path inside
            raise RuntimeError("boom")
    assert [b.attn.fused_attn for b in model.blocks] == before
    assert no_hooks_left(model)


# --- 6. Where the methods apply ----------------------------------------------------------------------


@pytest.mark.parametrize("model", ["tv_vit", "vit_tiny", "deit", "registers"])
def test_methods_for_vits_offers_attention_methods(request, model):
    offered = methods_for(request.getfixturevalue(model))
    assert set(ATTENTION) <= set(offered) and "gradcam" in offered


@pytest.mark.parametrize("model", ["lite", "swin"])
def test_methods_for_cnn_and_swin_leaves_them_out(request, model):
    offered = methods_for(request.getfixturevalue(model))
    assert not set(ATTENTION) & set(offered) and "gradcam" in offered


def assert_one_sentence(message: str, *names: str) -> None:
    assert message.endswith(".") and "\n" not in message and "Traceback" not in message, message
    assert ". " not in message, message
    assert all(name in message for name in names), message


@pytest.mark.parametrize("model,why", [("lite", "convolutional"), ("swin", "windows")])
def test_attention_method_refused_where_it_does_not_apply(request, model, why):
    handle = request.getfixturevalue(model)
    with pytest.raises(InvalidOptionError) as err:
        xai_core.explain(handle, PICTURES[0], methods="legrad")
    assert_one_sentence(str(err.value), "LeGrad", why)
    with pytest.raises(InvalidOptionError) as err:
        xai_core.explain_batch(handle, PICTURES[:1], methods=["gradcam", "rollout", "relevance"])
    assert_one_sentence(str(err.value), "Attention rollout", "Gradient-weighted relevance")


# --- 7. Options ------------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [{"legrad": {"blocks": 0}}, {"rollout": {"head_fusion": "median"}},
                                     {"rollout": {"discard_ratio": 1.0}}])
def test_invalid_options_refused(vit_tiny, options):
    with pytest.raises(InvalidOptionError):
        xai_core.explain(vit_tiny, PICTURES[0], methods=ATTENTION, options=options)


def test_blocks_beyond_the_model_average_all_blocks(vit_tiny):
    count = len(attention_layout(vit_tiny).sites)
    assert count == 12
    x = batch_of(vit_tiny)
    every = ours(vit_tiny, LeGrad, x, [7], {"blocks": count})
    assert max_diff(ours(vit_tiny, LeGrad, x, [7], {"blocks": 50}), every) == 0.0
    assert max_diff(ours(vit_tiny, LeGrad, x, [7], {"blocks": 1}), every) > 1e-5
    many, all_ = (xai_core.explain(vit_tiny, PICTURES[0], methods="legrad", target=7, options={"legrad": {"blocks": b}})
                  for b in (50, count))
    assert max_diff(many.maps["legrad"], all_.maps["legrad"]) <= TOL


def test_options_recorded_and_replayable(vit_tiny):
    options = {"legrad": {"blocks": 2}, "rollout": {"head_fusion": "max"}}
    result = xai_core.explain(vit_tiny, PICTURES[0], methods=ATTENTION, target=7, options=options)
    assert result.options["methods"] == {"legrad": {"blocks": 2},
                                         "rollout": {"head_fusion": "max", "discard_ratio": 0.0}}
    again = xai_core.explain(vit_tiny, PICTURES[0], methods=ATTENTION, target=7, options=result.options["methods"])
    assert all(max_diff(result.maps[m], again.maps[m]) <= TOL for m in ATTENTION)
    default = xai_core.explain(vit_tiny, PICTURES[0], methods=ATTENTION, target=7)
    assert default.options["methods"] == {"legrad": {"blocks": 4},
                                          "rollout": {"head_fusion": "mean", "discard_ratio": 0.0}}


def test_head_fusions_give_different_maps(vit_tiny):
    x = batch_of(vit_tiny)
    maps = {f: ours(vit_tiny, AttentionRollout, x, [0], {"head_fusion": f}) for f in ("mean", "max", "min")}
    assert max_diff(maps["mean"], maps["max"]) > 1e-4
    assert max_diff(maps["mean"], maps["min"]) > 1e-4
    assert max_diff(maps["max"], maps["min"]) > 1e-4


# --- 8. aug_smooth -----------------------------------------------------------------------------------


def test_aug_smooth_with_attention_methods(vit_tiny):
    plain = xai_core.explain(vit_tiny, PICTURES[0], methods=ATTENTION, target=7)
    result = xai_core.explain(vit_tiny, PICTURES[0], methods=ATTENTION, target=7, aug_smooth=True)
    assert result.options["aug_smooth"] is True
    for method in ATTENTION:
        cam = result.maps[method]
        assert cam.shape == (64, 64) and cam.dtype == np.float32, method
        assert np.isfinite(cam).all() and cam.min() >= 0.0 and cam.max() <= 1.0, method
        assert cam.max() - cam.min() > 1e-3, method  # not flat
        assert max_diff(cam, plain.maps[method]) > 1e-4, method  # the augmentations were averaged in


# --- 9. Cost ------------------------------------------------------------------------------------------


def test_estimate_cost_covers_attention_methods():
    handle = _timm("deit_tiny_distilled_patch16_224", 32)  # fresh: no measured times yet
    methods = ["gradcam"] + ATTENTION
    costs = xai_core.estimate_cost(handle, methods)
    assert set(methods) | {"shared pass"} == set(costs)
    for method in methods:
        cost = costs[method]
        assert cost.method == method and math.isfinite(cost.seconds) and cost.seconds >= 0, method
        assert math.isfinite(cost.passes) and cost.passes >= 0 and isinstance(cost.slow, bool), method
    # The gradient-based ones cost more than rollout, which only multiplies recorded matrices.
    assert costs["relevance"].seconds > costs["rollout"].seconds
    assert costs["legrad"].seconds > costs["rollout"].seconds
    # After a run, the estimates are the times measured.
    xai_core.explain(handle, PICTURES[0], methods=methods, target=3)
    measured = xai_core.estimate_cost(handle, methods)
    assert all(measured[m].detail.endswith("(time measured on the last run)") for m in ATTENTION)
    assert all(math.isfinite(measured[m].seconds) and measured[m].seconds >= 0 for m in ATTENTION)
