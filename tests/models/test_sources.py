"""Model sources: `torchvision:NAME` and `timm:NAME` through `load_model`, with random weights,
a user's checkpoint and its labels, and one clear sentence for weights that cannot be had."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision.models as tvm
from PIL import Image

from xai_core import errors
from xai_core.models import load_model
from xai_core.predict import predict
from xai_core.models.sources import list_torchvision
from _deps import need

IMAGE = Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 96, 3), dtype=np.uint8))


def test_every_torchvision_classifier_is_a_source():
    names = list_torchvision()
    assert "torchvision:resnet18" in names and "torchvision:vit_b_16" in names and "torchvision:swin_t" in names
    assert not any("fcn" in n or "raft" in n for n in names)  # classification models only


def test_random_torchvision_model_has_imagenet_labels_and_default_transforms():
    h = load_model("torchvision:resnet18", weights=None, device="cpu", input_size=64)
    assert h.source == h.name == "torchvision:resnet18" and h.title == "resnet18 (torchvision)"
    assert len(h.categories) == 1000 and h.categories[0] == "tench"
    assert h.transforms.crop_size == [64] and h.default_layer == "layer4" and h.is_gap_linear("layer4")
    assert h.weights_file is None and "random" in h.weights_source
    assert h.preprocess(IMAGE).shape == (1, 3, 64, 64)


def test_a_users_checkpoint_with_its_labels(tmp_path):
    torch.manual_seed(0)
    model = tvm.resnet18(weights=None, num_classes=3)
    path = tmp_path / "three.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in model.state_dict().items()}}, path)
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(["cat", "dog", "bird"]))
    h = load_model("torchvision:resnet18", weights=str(path), labels=str(labels), device="cpu", input_size=64)
    assert h.categories == ("cat", "dog", "bird") and h.weights_file == str(path)
    assert str(tmp_path) not in h.weights_source
    torch.testing.assert_close(h.module.fc.weight, model.fc.weight)
    top = predict(h, IMAGE, top_k=3)
    assert sorted(p.label for p in top) == ["bird", "cat", "dog"]
    assert h.class_index("Dog") == 1
    with pytest.raises(errors.UnknownNameError, match="'cat'.*0-2"):
        h.class_index("tabby")
    with pytest.raises(errors.InvalidWeightsError, match="3 classes.*2 labels"):
        load_model("torchvision:resnet18", weights=str(path), labels=["a", "b"], device="cpu")
    with pytest.raises(errors.InvalidWeightsError, match="resnet34"):
        load_model("torchvision:resnet34", weights=str(path), device="cpu")
    unlabelled = load_model("torchvision:resnet18", weights=str(path), device="cpu", input_size=64)
    assert unlabelled.categories == ("class 0", "class 1", "class 2")


def test_labels_with_random_weights_set_the_class_count():
    h = load_model("torchvision:mobilenet_v3_small", weights=None, labels=["a", "b"], device="cpu", input_size=64)
    assert h.categories == ("a", "b") and h.module(torch.zeros(1, 3, 64, 64)).shape == (1, 2)


def test_timm_source_uses_timms_data_config():
    need("timm")
    h = load_model("timm:resnet18", weights=None, device="cpu")
    assert h.title == "resnet18 (timm)" and h.transforms.crop_size == [224] and h.default_layer == "layer4"
    assert h.transforms.interpolation.value == "bicubic" and len(h.categories) == 1000


@pytest.mark.parametrize("source,weights,error,words", [
    ("timm:resnet18", "DEFAULT", errors.WeightsUnavailableError, "Hugging Face hub"),
    ("timm:resnet18", "a1_in1k", errors.WeightsUnavailableError, "give it a state-dict file"),
    ("torchvision:resnet18", "IMAGENET1K_V9", errors.UnknownNameError, "IMAGENET1K_V1"),
    ("torchvision:resnet18", "missing.pt", errors.WeightsUnavailableError, "missing.pt"),
    ("torchvision:nonet", None, errors.UnknownNameError, "no image classifier"),
    ("timm:nonet", None, errors.UnknownNameError, "timm has no model"),
])
def test_one_sentence_errors(source, weights, error, words, monkeypatch):
    monkeypatch.setenv("XAI_OFFLINE", "1")
    with pytest.raises(error, match=words) as info:
        load_model(source, weights=weights, device="cpu")
    assert str(info.value).count(". ") == 0 and "\n" not in str(info.value)


def test_torchvision_tag_offline_says_where_to_put_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("XAI_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(errors.WeightsUnavailableError, match="resnet18-f37072fd.pth.*torch hub cache"):
        load_model("torchvision:resnet18", device="cpu")


def test_builtins_refuse_labels():
    with pytest.raises(errors.InvalidOptionError, match="torchvision:resnet50"):
        load_model("resnet50", weights=None, labels=["a"], device="cpu")


def test_a_torchvision_vit_is_built_for_its_transforms_crop(monkeypatch):
    """vit_h_14's DEFAULT weights crop 518 px: with random weights it is built for 518 too (its builder
    alone says 224), and an input size that is not a multiple of its patch gets one sentence."""
    import torchvision

    sizes: list = []
    original = torchvision.models.get_model_builder

    def tiny(weights=None, num_classes=1000, image_size=224):  # vit_h_14's layout, a fraction of its size
        sizes.append(image_size)
        return torchvision.models.VisionTransformer(image_size, 14, num_layers=1, num_heads=2, hidden_dim=8,
                                                    mlp_dim=16, num_classes=num_classes)

    monkeypatch.setattr(torchvision.models, "get_model_builder", lambda arch: tiny if arch == "vit_h_14" else original(arch))
    handle = load_model("torchvision:vit_h_14", weights=None, device="cpu")
    assert sizes[0] == 518 and list(handle.transforms.crop_size) == [518]
    with pytest.raises(errors.InvalidOptionError, match="multiple of 14, not 128; e.g. 126"):
        load_model("torchvision:vit_h_14", weights=None, input_size=128)


def test_a_timm_model_built_without_a_classifier_gets_one_for_its_labels():
    """timm builds DINOv2 models with num_classes=0 (features out): with random weights the source
    gives it a classifier with one output per label (ImageNet's 1000 by default, or the labels given)."""
    handle = load_model("timm:vit_small_patch14_reg4_dinov2", weights=None, input_size=56, device="cpu")
    with torch.no_grad():
        assert handle.module(torch.zeros(1, 3, 56, 56)).shape == (1, 1000) == (1, len(handle.categories))
    three = load_model("timm:vit_small_patch14_reg4_dinov2", weights=None, labels=["a", "b", "c"], input_size=56,
                       device="cpu")
    with torch.no_grad():
        assert three.module(torch.zeros(1, 3, 56, 56)).shape == (1, 3)
