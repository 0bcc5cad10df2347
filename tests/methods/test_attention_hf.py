"""The attention methods (LeGrad, attention rollout, gradient-weighted relevance) on Hugging Face
classifiers (`hf:FOLDER`): tiny random models saved with `save_pretrained`. On a ViT, each method
equals a rule written here from an independently loaded copy of the model (eager attention,
`output_attentions` / `output_hidden_states`): nothing of xai_core's capture is used by the
references. On ViT, DeiT with teacher (2 prefix tokens), BEiT and DINOv2 with registers, batches
equal single images; the model is left as it was (attention implementation, hooks, forwards); Swin
and ConvNeXt are refused in one sentence. Random weights, 32-pixel inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import xai_core
from _hf import save_classifiers
from _deps import need
from conftest import IMAGES, no_hooks_left
from xai_core.errors import InvalidOptionError
from xai_core.methods import methods_for
from xai_core.methods.attention import AttentionRollout, GradientRelevance, LeGrad, grid_maps
from xai_core.methods.attention_capture import attention_layout, capturing
from _attention import batch_of as _batch_of, max_diff, ours, record, reference_rollout
from xai_core.methods.device_cams import scale

transformers = need("transformers", reason="Hugging Face models are optional: "
                                                          "pip install -r requirements-hf.txt (CI installs it)")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ATTENTION = ["legrad", "rollout", "relevance"]
TOL = 1e-5
PICTURES = [IMAGES / "cat.png", IMAGES / "coffee.png", IMAGES / "rocket.jpg"]


def batch_of(handle, count: int = 1) -> torch.Tensor:
    return _batch_of(handle, PICTURES, count)
TARGETS = [3, 0, 1]  # 5 classes
#: A 32-pixel ViT geometry: 8-pixel patches (a 4x4 grid), three blocks (so that LeGrad's `blocks`
#: option picks a strict subset), width 32, two heads. Weights drawn 10x wider than transformers'
#: default (std 0.02), whose attention is all but uniform (rollout maps flat to 1e-4).
VIT = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
           intermediate_size=64, num_labels=5, initializer_range=0.2)
CROP_36_TO_32 = dict(size={"height": 36, "width": 36}, crop_size={"height": 32, "width": 32}, do_center_crop=True)
#: family -> the prefix tokens (class, distillation, registers) before the 4x4 patch grid.
PREFIX = {"vit": 1, "deit": 2, "beit": 1, "dinov2_reg": 3}



def _classifier(family: str):
    """(model, processor) of `family`, random weights, 5 classes, 32-pixel inputs."""
    t = transformers
    if family == "vit":
        return t.ViTForImageClassification(t.ViTConfig(**VIT)), t.ViTImageProcessor(size={"height": 32, "width": 32})
    if family == "deit":  # class + distillation token; logits: the mean of its two heads
        return t.DeiTForImageClassificationWithTeacher(t.DeiTConfig(**VIT)), t.DeiTImageProcessor(**CROP_36_TO_32)
    if family == "beit":  # relative position bias, LayerScale 0.5, mean-pooled patch tokens
        # Read as the head reads (the patch tokens' mean), relevance holds the identity's 1/16 in every
        # patch: with the default LayerScale 0.1 the blocks' part is under 2% of that offset.
        return t.BeitForImageClassification(t.BeitConfig(**VIT, use_mean_pooling=True,
                                                         layer_scale_init_value=0.5)), \
            t.BeitImageProcessor(**CROP_36_TO_32)
    if family == "dinov2_reg":  # class token + 2 registers; head on [class, mean of patches]
        config = t.Dinov2WithRegistersConfig(**VIT, num_register_tokens=2)
        return t.Dinov2WithRegistersForImageClassification(config), \
            t.BitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    if family == "swin":
        config = t.SwinConfig(image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2],
                              window_size=4, num_labels=5)
        return t.SwinForImageClassification(config), t.ViTImageProcessor(size={"height": 32, "width": 32})
    if family == "convnext":
        config = t.ConvNextConfig(num_stages=2, hidden_sizes=[8, 16], depths=[1, 1], num_labels=5)
        return t.ConvNextForImageClassification(config), \
            t.ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875)
    raise KeyError(family)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict:
    """family -> the folder it was saved into (model and processor)."""
    return save_classifiers(tmp_path_factory.mktemp("hf_attention"), [*PREFIX, "swin", "convnext"], _classifier)


@pytest.fixture(scope="module")
def handles(saved) -> dict:
    return {family: xai_core.load_model(f"hf:{folder}", device="cpu") for family, folder in saved.items()}


@pytest.fixture(scope="module")
def vit(handles):
    return handles["vit"]


@pytest.fixture(scope="module")
def reference(saved):
    """The same ViT loaded again, on its own, with eager attention (whose `output_attentions` are the
    probabilities it multiplies with V, in the graph)."""
    model = transformers.AutoModelForImageClassification.from_pretrained(saved["vit"], attn_implementation="eager")
    assert model.config._attn_implementation == "eager"
    return model.eval()




def reference_outputs(model, x, **kwargs):
    out = model(pixel_values=x.detach().clone(), output_attentions=True, **kwargs)
    assert len(out.attentions) == VIT["num_hidden_layers"] and out.attentions[0].shape[-1] == 17
    assert all(a.requires_grad for a in out.attentions)  # graph tensors, as the rule needs
    return out


def test_layouts_of_the_transformers(handles):
    for family, prefix in PREFIX.items():
        layout = attention_layout(handles[family])
        assert layout.reason is None, (family, layout.reason)
        assert layout.prefix == prefix and layout.grid == (4, 4), family
        assert len(layout.sites) == VIT["num_hidden_layers"], family


def test_the_reference_model_is_the_loaded_model(vit, reference):
    x = batch_of(vit, 2)
    with torch.no_grad():
        torch.testing.assert_close(vit.module(x), reference(pixel_values=x).logits, rtol=0, atol=1e-5)


# --- 1. explain_batch = explain, on four transformer families ------------------------------------


@pytest.mark.parametrize("family", list(PREFIX))
def test_explain_batch_per_image_targets_equals_explain(handles, family):
    handle = handles[family]
    methods = ATTENTION + ["gradcam"]
    targets = [TARGETS[0], None, TARGETS[2]]
    # the raw maps are real maps (spread over several % of their size), so 1e-5 on the scaled ones means something
    x = batch_of(handle, 1)
    for cam_class in (LeGrad, AttentionRollout, GradientRelevance):
        raw = ours(handle, cam_class, x, TARGETS[:1])
        assert float(raw.max() - raw.min()) > 0.02 * float(raw.abs().max()) > 0, (family, cam_class.__name__)
    batch = xai_core.explain_batch(handle, PICTURES, methods, targets=targets)
    assert len(batch) == 3
    for picture, target, result in zip(PICTURES, targets, batch):
        single = xai_core.explain(handle, picture, methods=methods, target=target)
        assert result.target == single.target and (target is None or result.target == target)
        for method in methods:
            cam = result.maps[method]
            assert cam.shape == (32, 32) and np.isfinite(cam).all(), (family, method)
            assert max_diff(cam, single.maps[method]) <= TOL, (family, method)
    # per-image targets matter: LeGrad and relevance of the first image for another class differ
    other = xai_core.explain(handle, PICTURES[0], methods=ATTENTION, target=TARGETS[2])
    assert max_diff(other.maps["legrad"], batch[0].maps["legrad"]) > 1e-3, family
    assert max_diff(other.maps["relevance"], batch[0].maps["relevance"]) > 1e-3, family
    assert max_diff(other.maps["rollout"], batch[0].maps["rollout"]) <= TOL, family  # class-agnostic


# --- 2. Rollout = Abnar & Zuidema's rule on the model's own output_attentions ---------------------


def test_rollout_equals_reference_from_output_attentions(vit, reference):
    x = batch_of(vit, 2)
    with torch.no_grad():
        attentions = reference(pixel_values=x, output_attentions=True).attentions
    captured, layout, logits = record(vit, x)
    for head_fusion in ("mean", "max", "min"):
        for discard_ratio in (0.0, 0.9):
            options = {"head_fusion": head_fusion, "discard_ratio": discard_ratio}
            expected = reference_rollout(attentions, 1, (4, 4), head_fusion, discard_ratio)
            assert expected.std() > 1e-4, options  # not a flat map
            got = grid_maps(AttentionRollout, captured, layout, logits, [0, 0], options)
            assert max_diff(got, expected) <= TOL, options
    # the discard option changes the map (it is not ignored)
    plain = reference_rollout(attentions, 1, (4, 4), "mean", 0.0)
    assert max_diff(plain, reference_rollout(attentions, 1, (4, 4), "mean", 0.9)) > 1e-4


def test_explained_rollout_is_the_reference_scaled_and_upsampled(vit, reference):
    x = batch_of(vit, 1)
    with torch.no_grad():
        attentions = reference(pixel_values=x, output_attentions=True).attentions
    raw = reference_rollout(attentions, 1, (4, 4), "max", 0.9).float()
    result = xai_core.explain(vit, PICTURES[0], methods="rollout",
                              options={"rollout": {"head_fusion": "max", "discard_ratio": 0.9}})
    assert result.maps["rollout"].shape == (32, 32)
    assert max_diff(result.maps["rollout"], scale(raw, (32, 32))[0]) <= TOL


# --- 3. Gradient-weighted relevance = Chefer et al.'s rule ---------------------------------------


def reference_relevance(model, x, target: int, prefix: int = 1, grid=(4, 4)) -> torch.Tensor:
    """One image: R = I, then R += mean over heads of (dlogit/dA * A)^+ @ R, block by block."""
    with torch.enable_grad():
        out = reference_outputs(model, x)
        grads = torch.autograd.grad(out.logits[0, target], out.attentions)
    relevance = torch.eye(out.attentions[0].shape[-1], dtype=torch.float64)
    for attention, grad in zip(out.attentions, grads):
        cam = (grad[0].double() * attention[0].detach().double()).clamp(min=0).mean(dim=0)
        relevance = relevance + cam @ relevance
    return relevance[0, prefix:].reshape(grid)


def test_relevance_equals_chefer_rule_per_image_targets(vit, reference):
    x = batch_of(vit, 3)
    expected = torch.stack([reference_relevance(reference, x[i:i + 1], t) for i, t in enumerate(TARGETS)])
    assert (expected - expected.amin(dim=(1, 2), keepdim=True)).amax() > 1e-4  # not all clipped away
    got = ours(vit, GradientRelevance, x, TARGETS)
    assert max_diff(got, expected) <= TOL
    assert max_diff(ours(vit, GradientRelevance, x[:1], [TARGETS[1]]), got[:1]) > 1e-5  # the target matters


# --- 4. LeGrad = its rule on the model's own hidden states and classifier ----------------------------


def reference_legrad(model, x, targets, blocks: int, prefix: int = 1, grid=(4, 4)) -> torch.Tensor:
    """For each of the last `blocks` blocks: the block's output tokens (hidden_states[i + 1]), every
    token replaced by their mean, through the ViT's own final norm and classifier (it reads the class
    token); the gradient of the target's score with respect to that block's attention, clamped at 0,
    averaged over heads and queries; patch columns averaged over the blocks."""
    index = torch.as_tensor(targets)
    with torch.enable_grad():
        out = reference_outputs(model, x, output_hidden_states=True)
        states = out.hidden_states
        assert len(states) == len(out.attentions) + 1
        # hidden_states[-1] is the last block's output, before the final norm
        torch.testing.assert_close(model.vit.layernorm(states[-1]), model.vit(pixel_values=x).last_hidden_state)
        count = len(out.attentions)
        columns = []
        for i in range(count - min(blocks, count), count):
            mean = states[i + 1].mean(dim=1)  # [B, D]: the token every position now holds
            scores = model.classifier(model.vit.layernorm(mean))
            selected = scores.gather(1, index[:, None]).sum()
            (grad,) = torch.autograd.grad(selected, out.attentions[i], retain_graph=True)
            columns.append(grad.double().clamp(min=0).mean(dim=(1, 2))[:, prefix:])
    return torch.stack(columns).mean(dim=0).reshape(x.shape[0], *grid)


@pytest.mark.parametrize("blocks", [4, 2, 1])
def test_legrad_equals_reference(vit, reference, blocks):
    x = batch_of(vit, 3)
    expected = reference_legrad(reference, x, TARGETS, blocks)
    assert expected.abs().max() > 1e-6 and expected.std() > 0  # a real map
    got = ours(vit, LeGrad, x, TARGETS, {"blocks": blocks})
    assert got.shape == (3, 4, 4)
    assert max_diff(got, expected) <= TOL


def test_legrad_blocks_option_changes_the_map(vit, reference):
    x = batch_of(vit, 1)
    every = reference_legrad(reference, x, TARGETS[:1], 3)
    last = reference_legrad(reference, x, TARGETS[:1], 1)
    assert max_diff(every, last) > 10 * TOL  # so the parametrised check above can tell blocks apart
    assert max_diff(ours(vit, LeGrad, x, TARGETS[:1], {"blocks": 50}), every) <= TOL


# --- 5. The model is left as it was --------------------------------------------------------------


def _state(module: torch.nn.Module) -> dict:
    """Every config's attention implementation, and which modules carry an instance `forward`."""
    configs = {id(m.config): m.config for m in module.modules() if hasattr(m, "config")}
    return {
        "implementations": sorted((k, c._attn_implementation) for k, c in configs.items()),
        "instance_forwards": [n for n, m in module.named_modules() if "forward" in m.__dict__],
        "training": [m.training for m in module.modules()],
        "requires_grad": [p.requires_grad for p in module.parameters()],
    }


@pytest.mark.parametrize("family", list(PREFIX))
def test_the_model_is_left_as_it_was(handles, family):
    handle = handles[family]
    model = handle.module
    implementation = model.config._attn_implementation
    assert implementation != "eager"  # a fused default, switched only for the explained forward
    before = _state(model)
    assert before["instance_forwards"] == []
    x = batch_of(handle, 2)
    with torch.no_grad():
        expected = model(x)
    xai_core.explain(handle, PICTURES[0], methods=ATTENTION + ["gradcam"], target=TARGETS[0])
    xai_core.explain_batch(handle, PICTURES[:2], ATTENTION, targets=TARGETS[:2],
                           options={"legrad": {"blocks": 1}, "rollout": {"discard_ratio": 0.5}})
    assert model.config._attn_implementation == implementation
    assert _state(model) == before
    assert no_hooks_left(model)
    assert all(p.grad is None for p in model.parameters())
    with torch.no_grad():
        assert torch.equal(model(x), expected)


def test_capture_puts_the_implementation_back_on_error(vit):
    model = vit.module
    implementation = model.config._attn_implementation
    assert implementation != "eager"
    with pytest.raises(RuntimeError, match="boom"):
        with capturing(model, attention_layout(vit).sites):
            assert model.config._attn_implementation == "eager"  # the exact path inside
            raise RuntimeError("boom")
    assert model.config._attn_implementation == implementation
    assert no_hooks_left(model) and not any("forward" in m.__dict__ for m in model.modules())


# --- 6. Swin and ConvNeXt: not offered, refused in one sentence -----------------------------------


def assert_one_sentence(message: str, *words: str) -> None:
    assert message.endswith(".") and "\n" not in message and "Traceback" not in message, message
    assert ". " not in message, message
    assert all(word in message for word in words), message


@pytest.mark.parametrize("family,why", [("swin", "windows"), ("convnext", "convolutional")])
def test_swin_and_convnext_are_refused(handles, saved, family, why):
    handle = handles[family]
    offered = methods_for(handle)
    assert "gradcam" in offered and not set(ATTENTION) & set(offered)
    with pytest.raises(InvalidOptionError) as err:
        xai_core.explain(handle, PICTURES[0], methods="legrad")
    assert_one_sentence(str(err.value), "LeGrad", why)
    assert str(saved[family]) not in str(err.value)  # the model's name, not its folder
    with pytest.raises(InvalidOptionError) as err:
        xai_core.explain_batch(handle, PICTURES[:1], methods=["gradcam", "rollout", "relevance"])
    assert_one_sentence(str(err.value), "Attention rollout", "Gradient-weighted relevance", why)
    assert no_hooks_left(handle.module)


def test_transformers_are_offered_the_attention_methods(handles):
    for family in PREFIX:
        offered = methods_for(handles[family])
        assert set(ATTENTION) <= set(offered) and "gradcam" in offered, family


# --- 7. Every method shares the pass with them ----------------------------------------------------


def test_second_order_methods_share_the_pass_with_the_attention_methods(vit):
    """ShapleyCAM's Hessian-vector product is a second backward through the shared forward; the
    gradient-based attention methods computed after it still need that forward's graph (as
    `--method all` asks for every method at once)."""
    alone = xai_core.explain(vit, PICTURES[0], methods=ATTENTION, target=TARGETS[0])
    together = xai_core.explain(vit, PICTURES[0], methods=["shapleycam", "finercam"] + ATTENTION, target=TARGETS[0])
    for method in ATTENTION:
        assert max_diff(together.maps[method], alone.maps[method]) <= TOL, method
