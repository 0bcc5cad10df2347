"""Attention rollout and gradient-weighted relevance read the tokens the classifier reads, on tiny
random Hugging Face classifiers of each pooling family (class token: ViT; patch mean: BEiT with mean
pooling, CLIP's image classifier; class token joined with the patch mean: DINOv2, also with
registers; class and distillation heads averaged: DeiT with teacher, and timm's distilled DeiT).
Each map equals a rule written here from an independently loaded copy of the model (eager
attention, its own `output_attentions`) that states the family's pooling explicitly; on class-token
models the maps are exactly those of the former class-token reading. Also: attention that cannot
be read is said so (data2vec-vision, torchvision's Swin), a failed probe leaves the methods out
with the reason, and the layout is probed again at another input size. Random weights, 32 pixels."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict

import pytest
import torch

import xai_core
from _hf import save_classifiers
from _deps import need
from conftest import IMAGES, no_hooks_left
from xai_core.errors import InvalidOptionError
from xai_core.methods import attention as attention_module
from xai_core.methods import attention_unavailable, methods_for
from xai_core.methods.attention import AttentionRollout, GradientRelevance, grid_maps
from xai_core.methods.attention_capture import attention_layout
from _attention import batch_of as _batch_of, max_diff, ours, record, reference_rollout, timm_attentions

transformers = need("transformers", reason="Hugging Face models are optional: "
                                                          "pip install -r requirements-hf.txt (CI installs it)")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ATTENTION = ["legrad", "rollout", "relevance"]
TOL = 1e-5
PICTURES = [IMAGES / "cat.png", IMAGES / "coffee.png", IMAGES / "rocket.jpg"]
TARGETS = [3, 0, 1]  # 5 classes
#: Three blocks, 8-pixel patches (a 4x4 grid), weights drawn 10x wider than the default so that
#: attention is far from uniform.
VIT = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
           intermediate_size=64, num_labels=5, initializer_range=0.2)
CROP_36_TO_32 = dict(size={"height": 36, "width": 36}, crop_size={"height": 32, "width": 32}, do_center_crop=True)
SQUARE_32 = dict(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


def read_rule(family: str, r: torch.Tensor) -> torch.Tensor:
    """The row of an [N, N] relevance matrix that `family`'s classifier reads, written from its
    modeling code: which final tokens its head pools, and how."""
    if family == "vit":  # classifier(sequence_output[:, 0])
        return r[0]
    if family in ("beit", "clip"):  # LayerNorm(mean of the patch tokens) / mean of the patch tokens
        return r[1:].mean(dim=0)
    if family == "dinov2":  # classifier(cat([class token, mean of the patch tokens]))
        return 0.5 * r[0] + 0.5 * r[1:].mean(dim=0)
    if family == "dinov2_reg":  # the same, the 2 register tokens left out of the mean
        return 0.5 * r[0] + 0.5 * r[3:].mean(dim=0)
    if family == "deit":  # (cls_classifier(token 0) + distillation_classifier(token 1)) / 2
        return 0.5 * (r[0] + r[1])
    raise KeyError(family)


PREFIX = {"vit": 1, "beit": 1, "clip": 1, "dinov2": 1, "dinov2_reg": 3, "deit": 2}


def _classifier(family: str):
    t = transformers
    if family == "vit":
        return t.ViTForImageClassification(t.ViTConfig(**VIT)), t.ViTImageProcessor(size={"height": 32, "width": 32})
    if family == "beit":
        return t.BeitForImageClassification(t.BeitConfig(**VIT, use_mean_pooling=True)), \
            t.BeitImageProcessor(**CROP_36_TO_32)
    if family == "data2vec":
        return t.Data2VecVisionForImageClassification(t.Data2VecVisionConfig(**VIT, use_mean_pooling=True)), \
            t.BeitImageProcessor(**CROP_36_TO_32)
    if family == "clip":
        vision = {k: v for k, v in VIT.items() if k != "num_labels"}
        text = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
        config = t.CLIPConfig(vision_config=vision, text_config=text, num_labels=5)
        return t.CLIPForImageClassification(config), t.CLIPImageProcessor(**SQUARE_32)
    if family == "dinov2":
        return t.Dinov2ForImageClassification(t.Dinov2Config(**VIT)), t.BitImageProcessor(**SQUARE_32)
    if family == "dinov2_reg":
        config = t.Dinov2WithRegistersConfig(**VIT, num_register_tokens=2)
        return t.Dinov2WithRegistersForImageClassification(config), t.BitImageProcessor(**SQUARE_32)
    if family == "deit":
        model = t.DeiTForImageClassificationWithTeacher(t.DeiTConfig(**VIT))
        with torch.no_grad():  # transformers starts both tokens and the position embeddings at zero: the
            for token in (model.deit.embeddings.cls_token, model.deit.embeddings.distillation_token,
                          model.deit.embeddings.position_embeddings):  # two tokens would stay equal
                token.normal_(std=0.2)
        return model, t.DeiTImageProcessor(**CROP_36_TO_32)
    raise KeyError(family)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict:
    """family -> the folder it was saved into (model and processor)."""
    return save_classifiers(tmp_path_factory.mktemp("hf_tokens"), [*PREFIX, "data2vec"], _classifier)


@pytest.fixture(scope="module")
def handles(saved) -> dict:
    return {family: xai_core.load_model(f"hf:{folder}", device="cpu") for family, folder in saved.items()}


def reference(saved, family: str):
    """The same classifier loaded again, on its own, with eager attention."""
    model = transformers.AutoModelForImageClassification.from_pretrained(saved[family], attn_implementation="eager")
    assert model.config._attn_implementation == "eager"
    return model.eval()


def reference_relevance(model, x, target: int, read, prefix: int) -> torch.Tensor:
    """Chefer et al.'s rule, one image: R = I, then R += mean over heads of (dlogit/dA * A)^+ @ R."""
    with torch.enable_grad():
        out = model(pixel_values=x.detach().clone(), output_attentions=True)
        grads = torch.autograd.grad(out.logits[0, target], out.attentions)
    relevance = torch.eye(out.attentions[0].shape[-1], dtype=torch.float64)
    for attention, grad in zip(out.attentions, grads):
        cam = (grad[0].double() * attention[0].detach().double()).clamp(min=0).mean(dim=0)
        relevance = relevance + cam @ relevance
    return read(relevance)[prefix:].reshape(4, 4)


def class_token_row(r: torch.Tensor) -> torch.Tensor:
    return r[0]


# --- 1. Rollout and relevance read what the head reads ------------------------------------------


@pytest.mark.parametrize("family", list(PREFIX))
def test_rollout_reads_the_tokens_the_head_reads(saved, handles, family):
    handle, model, prefix = handles[family], reference(saved, family), PREFIX[family]
    read = lambda r: read_rule(family, r)  # noqa: E731
    x = _batch_of(handle, PICTURES, 2)
    with torch.no_grad():
        attentions = model(pixel_values=x, output_attentions=True).attentions
        torch.testing.assert_close(handle.module(x), model(pixel_values=x).logits, rtol=0, atol=1e-5)
    assert len(attentions) == 3 and attentions[0].shape[-1] == prefix + 16
    captured, layout, logits = record(handle, x)
    assert layout.reason is None and layout.prefix == prefix and layout.grid == (4, 4)
    for head_fusion, discard_ratio in (("mean", 0.0), ("max", 0.9)):
        options = {"head_fusion": head_fusion, "discard_ratio": discard_ratio}
        expected = reference_rollout(attentions, prefix, (4, 4), head_fusion, discard_ratio, read=read)
        assert expected.std() > 1e-4, options  # not a flat map
        got = grid_maps(AttentionRollout, captured, layout, logits, [0, 0], options)
        assert max_diff(got, expected) <= TOL, (family, options)
        if family != "vit":  # the class token's row is another map: the reading matters here
            by_class_token = reference_rollout(attentions, prefix, (4, 4), head_fusion, discard_ratio, read=class_token_row)
            assert max_diff(by_class_token, expected) > 100 * TOL, (family, options)


@pytest.mark.parametrize("family", list(PREFIX))
def test_relevance_reads_the_tokens_the_head_reads(saved, handles, family):
    handle, model, prefix = handles[family], reference(saved, family), PREFIX[family]
    read = lambda r: read_rule(family, r)  # noqa: E731
    x = _batch_of(handle, PICTURES, 3)
    expected = torch.stack([reference_relevance(model, x[i:i + 1], t, read, prefix) for i, t in enumerate(TARGETS)])
    assert (expected - expected.amin(dim=(1, 2), keepdim=True)).amax() > 1e-4  # not all clipped away
    got = ours(handle, GradientRelevance, x, TARGETS)
    assert max_diff(got, expected) <= TOL, family
    if family != "vit":
        by_class_token = torch.stack([reference_relevance(model, x[i:i + 1], t, class_token_row, prefix)
                                      for i, t in enumerate(TARGETS)])
        assert max_diff(by_class_token, expected) > 100 * TOL, family


def test_the_probed_token_weights(handles):
    """The weights the probe found are the pooling coefficients the modeling code states."""
    for family, prefix in PREFIX.items():
        weights = torch.tensor(attention_layout(handles[family]).weights, dtype=torch.float64)
        expected = read_rule(family, torch.eye(prefix + 16, dtype=torch.float64))
        assert weights.shape == expected.shape and max_diff(weights, expected) <= 1e-6, (family, weights)


def _former_read(relevance, layout):
    """The reading before the token weights: the class token's row (all rows' mean without prefix)."""
    row = relevance[:, 0] if layout.prefix else relevance.mean(dim=1)
    return row[:, layout.prefix:]


@pytest.mark.parametrize("model", ["hf_vit", "timm_vit", "tv_vit"])
def test_class_token_models_give_exactly_the_former_maps(request, handles, model, monkeypatch):
    need("timm")
    if model == "hf_vit":
        handle = handles["vit"]
    elif model == "timm_vit":
        torch.manual_seed(0)
        handle = xai_core.load_model("timm:vit_tiny_patch16_224", weights=None, device="cpu", input_size=32)
    else:
        torch.manual_seed(0)
        handle = xai_core.load_model("torchvision:vit_b_16", weights=None, device="cpu", input_size=32)
        with torch.no_grad():
            torch.nn.init.normal_(handle.module.heads.head.weight, std=0.05)
    layout = attention_layout(handle)
    assert layout.weights == (1.0,) + (0.0,) * (len(layout.weights) - 1)  # one-hot on the class token
    x = _batch_of(handle, PICTURES, 2)
    now = {c: ours(handle, c, x, TARGETS[:2]) for c in (AttentionRollout, GradientRelevance)}
    monkeypatch.setattr(attention_module, "_read", _former_read)
    for cam_class, got in now.items():
        assert torch.equal(got, ours(handle, cam_class, x, TARGETS[:2])), (model, cam_class.__name__)


def test_timm_distilled_deit_reads_both_heads():
    """timm's distilled DeiT averages its class-token and distillation-token heads in eval mode."""
    need("timm")
    torch.manual_seed(0)
    handle = xai_core.load_model("timm:deit_tiny_distilled_patch16_224", weights=None, device="cpu", input_size=64)
    assert handle.module.distilled_training is False
    with torch.no_grad():  # timm's init (std 0.02) leaves attention all but uniform: 10x wider
        for parameter in handle.module.parameters():
            if parameter.dim() > 1:
                parameter.normal_(std=0.2)
    layout = attention_layout(handle)
    assert layout.prefix == 2 and max_diff(torch.tensor(layout.weights[:2]), torch.tensor([0.5, 0.5])) <= 1e-6
    assert not any(layout.weights[2:])
    x = _batch_of(handle, PICTURES, 2)
    attentions = timm_attentions(handle.module, x)
    expected = reference_rollout(attentions, 2, (4, 4), "mean", 0.0, read=lambda r: 0.5 * (r[0] + r[1]))
    assert max_diff(reference_rollout(attentions, 2, (4, 4), "mean", 0.0, read=class_token_row), expected) > 10 * TOL
    assert max_diff(ours(handle, AttentionRollout, x, [0, 0]), expected) <= TOL


# --- 2. Attention that cannot be read is said so ------------------------------------------------


def assert_one_sentence(message: str, *words: str) -> None:
    assert message.endswith(".") and "\n" not in message and "Traceback" not in message, message
    assert ". " not in message, message
    assert all(word in message for word in words), message


def test_data2vec_vision_attention_cannot_be_read_is_said(handles):
    handle = handles["data2vec"]
    offered = methods_for(handle)
    assert "gradcam" in offered and not set(ATTENTION) & set(offered)
    why = attention_unavailable(handle)
    assert "attention cannot be read" in why and "Data2VecVision" in why and "convolutional" not in why
    with pytest.raises(InvalidOptionError) as err:
        xai_core.explain(handle, PICTURES[0], methods="rollout")
    assert_one_sentence(str(err.value), "Attention rollout", "attention cannot be read", "Data2VecVision")
    assert "convolutional" not in str(err.value)


def test_torchvision_swin_is_not_called_convolutional():
    torch.manual_seed(0)
    handle = xai_core.load_model("torchvision:swin_t", weights=None, device="cpu", input_size=64)
    assert not set(ATTENTION) & set(methods_for(handle))
    with pytest.raises(InvalidOptionError) as err:
        xai_core.explain(handle, PICTURES[0], methods="legrad")
    assert_one_sentence(str(err.value), "LeGrad", "attention cannot be read", "ShiftedWindowAttention", "windows")
    assert "convolutional" not in str(err.value)


# --- 3. A probe that fails leaves the methods out, with the reason -------------------------------


def test_methods_for_never_raises_and_says_why(saved):
    handle = xai_core.load_model(f"hf:{saved['vit']}", device="cpu")  # its own module: nothing cached yet

    def broken(module, args):
        raise AssertionError("the model broke")

    hook = handle.module.register_forward_pre_hook(broken)
    try:
        offered = methods_for(handle)
        assert "gradcam" in offered and not set(ATTENTION) & set(offered)
        why = attention_unavailable(handle)
        assert "failed" in why and "the model broke" in why, why
        with pytest.raises(InvalidOptionError) as err:
            xai_core.estimate_cost(handle, ["legrad"])
        assert_one_sentence(str(err.value), "LeGrad", "the model broke")
    finally:
        hook.remove()
    assert no_hooks_left(handle.module)
    assert set(ATTENTION) <= set(methods_for(handle))  # a failure is not cached: probed again
    assert attention_unavailable(handle) is None


# --- 4. Another input size is probed again ------------------------------------------------------


def test_the_layout_is_probed_again_at_another_input_size(saved):
    """DINOv2 interpolates its position embeddings, so one module serves 32 and 48 pixels."""
    small = xai_core.load_model(f"hf:{saved['dinov2']}", device="cpu")
    large = xai_core.load_model(f"hf:{saved['dinov2']}", device="cpu", input_size=48)
    assert attention_layout(small).grid == (4, 4)
    layers = OrderedDict((name, small.module.get_submodule(name)) for name in large.layers)
    shared = dataclasses.replace(large, module=small.module, layers=layers)
    assert attention_layout(shared).grid == (6, 6) and attention_layout(small).grid == (4, 4)
    ours_shared = xai_core.explain(shared, PICTURES[0], methods=["rollout", "relevance"], target=1)
    ours_large = xai_core.explain(large, PICTURES[0], methods=["rollout", "relevance"], target=1)
    for method in ("rollout", "relevance"):
        assert max_diff(ours_shared.maps[method], ours_large.maps[method]) <= TOL, method
