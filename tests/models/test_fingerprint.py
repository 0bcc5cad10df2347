"""A model is identified by its fingerprint (weights, architecture, preprocessing, labels), not by a
display string, and `load_args` loads the very same model again (another process, a Ray actor) for
every model source. A string that is one of the model's labels names that class before a digit
string is read as an index."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import torchvision
from torchvision.transforms._presets import ImageClassification

import xai_core
from _deps import need
from _hf import save_tiny_vit
from xai_core.models.hf import HFClassifier


def _same_model(a: xai_core.ModelHandle, b: xai_core.ModelHandle) -> None:
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 64
    assert a.categories == b.categories and a.name == b.name and a.default_layer == b.default_layer
    assert repr(a.transforms) == repr(b.transforms)


def _again(handle: xai_core.ModelHandle) -> xai_core.ModelHandle:
    return xai_core.load_model(**handle.load_args, device="cpu")


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    """A torch hub cache with random weights under torchvision's file names (no download)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    return folder


def test_a_builtin_round_trips(lite):
    assert lite.load_args == {"name": "efficientnet_lite0", "weights": "DEFAULT"}
    _same_model(_again(lite), lite)


def test_resnet50_from_a_weights_file_and_from_xai_weights_round_trips(tmp_path, monkeypatch):
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet50().state_dict(), tmp_path / "r50.pth")
    handle = xai_core.load_model("resnet50", weights=str(tmp_path / "r50.pth"), device="cpu")
    assert handle.load_args == {"name": "resnet50", "weights": str(tmp_path / "r50.pth")}
    _same_model(_again(handle), handle)
    monkeypatch.setenv("XAI_WEIGHTS", str(tmp_path / "r50.pth"))
    from_env = xai_core.load_model("resnet50", device="cpu")
    assert from_env.load_args["weights"] == str(tmp_path / "r50.pth")  # the file itself, not $XAI_WEIGHTS
    monkeypatch.delenv("XAI_WEIGHTS")
    _same_model(_again(from_env), from_env)
    assert from_env.fingerprint == handle.fingerprint  # the same weights, read another way


def test_a_torchvision_tag_round_trips_with_its_own_preprocessing(hub):
    """IMAGENET1K_V1's preprocessing (resize 256) is not DEFAULT's (232): the tag travels as a tag."""
    torch.manual_seed(0)
    state = torchvision.models.resnet50().state_dict()
    for member in torchvision.models.ResNet50_Weights:
        torch.save(state, hub / Path(member.url).name)
    v1 = xai_core.load_model("torchvision:resnet50", weights="IMAGENET1K_V1", device="cpu")
    assert v1.load_args["weights"] == "IMAGENET1K_V1" and v1.transforms.resize_size == [256]
    _same_model(_again(v1), v1)
    v2 = xai_core.load_model("torchvision:resnet50", weights="IMAGENET1K_V2", device="cpu")
    assert v2.fingerprint != v1.fingerprint  # the same weights' bytes, another preprocessing


@pytest.mark.parametrize("source", ["torchvision:resnet18", "timm:resnet18"])
def test_a_checkpoint_with_its_labels_round_trips(tmp_path, source):
    torch.manual_seed(1)
    labels = ["cat", "coffee", "rocket"]
    module = xai_core.load_model(source, weights=None, device="cpu", labels=labels).module
    torch.save(module.state_dict(), tmp_path / "pets.pt")
    (tmp_path / "labels.txt").write_text("\n".join(labels))
    handle = xai_core.load_model(source, weights=str(tmp_path / "pets.pt"), labels=str(tmp_path / "labels.txt"),
                                 device="cpu", input_size=64)
    assert handle.load_args == {"name": source, "weights": str(tmp_path / "pets.pt"), "labels": labels,
                                "input_size": 64}
    _same_model(_again(handle), handle)


def test_a_models_file_name_round_trips(tmp_path, monkeypatch):
    (tmp_path / "models.toml").write_text('[[model]]\nname = "my-lite"\nsource = "efficientnet_lite0"\n')
    monkeypatch.setenv("XAI_MODELS", str(tmp_path / "models.toml"))
    handle = xai_core.load_model("my-lite", device="cpu")
    assert handle.load_args == {"name": "my-lite"}
    _same_model(_again(handle), handle)


def test_the_fingerprint_follows_weights_preprocessing_and_labels(lite):
    """Not the name or the weights' display string; every thing that changes the outputs."""
    renamed = lite.renamed("another name", "Another title")
    assert renamed.fingerprint == lite.fingerprint
    assert dataclasses.replace(lite, weights_source="elsewhere").fingerprint == lite.fingerprint
    other_crop = dataclasses.replace(lite, transforms=ImageClassification(crop_size=200, resize_size=232))
    other_labels = dataclasses.replace(lite, categories=lite.categories[:-1] + ("x",))
    fingerprints = {lite.fingerprint, other_crop.fingerprint, other_labels.fingerprint}
    torch.manual_seed(0)
    random = xai_core.load_model("efficientnet_lite0", weights=None, device="cpu")
    assert len(fingerprints | {random.fingerprint}) == 4


def test_a_label_names_its_class_before_a_digit_string_is_an_index(tmp_path):
    labels = ["10", "20", "cat"]
    handle = xai_core.load_model("torchvision:resnet18", weights=None, device="cpu", labels=labels, input_size=64)
    assert handle.class_index("10") == 0 and handle.class_index("20") == 1  # labels, not indices 10 and 20
    assert handle.class_index("2") == 2 and handle.class_index(1) == 1  # not a label: an index
    assert handle.class_index("CAT") == 2
    result = xai_core.explain(handle, Path(xai_core.__file__).parents[1] / "assets" / "images" / "cat.png",
                              ["gradcam"], target="20")
    assert (result.target, result.target_label) == (1, "20")


@pytest.mark.parametrize("change", [{"hidden_act": "relu"}, {"layer_norm_eps": 1e-6}])
def test_a_hugging_face_models_configuration_is_part_of_its_fingerprint(tmp_path, monkeypatch, change):
    """The same tensors under another activation or layer-norm epsilon compute other outputs, so
    they are another model; the same folder loaded twice, or again by its `load_args` (from another
    working folder, with its labels), is the same model."""
    transformers = need("transformers", reason="Hugging Face models are optional")
    config = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=64, num_labels=3)
    torch.manual_seed(0)
    model = transformers.ViTForImageClassification(config)
    processor = transformers.ViTImageProcessor(size={"height": 32, "width": 32})
    for name in ("vit", "other"):
        model.save_pretrained(tmp_path / name)
        processor.save_pretrained(tmp_path / name)
    other = json.loads((tmp_path / "other" / "config.json").read_text())
    (tmp_path / "other" / "config.json").write_text(json.dumps({**other, **change}))
    monkeypatch.chdir(tmp_path)
    vit = xai_core.load_model("hf:vit", device="cpu", labels=["a", "b", "c"])
    changed = xai_core.load_model("hf:other", device="cpu", labels=["a", "b", "c"])
    assert changed.module.config.to_dict().items() >= change.items()  # the file was read as changed
    for a, b in zip(vit.module.state_dict().values(), changed.module.state_dict().values()):
        assert torch.equal(a, b)  # the same tensors
    assert changed.fingerprint != vit.fingerprint
    _same_model(xai_core.load_model("hf:vit", device="cpu", labels=["a", "b", "c"]), vit)
    monkeypatch.chdir(tmp_path / "other")
    _same_model(_again(vit), vit)
    _same_model(_again(changed), changed)


def test_a_hugging_face_models_class_is_part_of_its_fingerprint(tmp_path):
    """The same tensors and configuration wrapped in another class (whose forward may differ) are
    another model: `HFClassifier`'s fingerprint covers the wrapped model's class, not only its own."""
    transformers = need("transformers", reason="Hugging Face models are optional")

    class OtherViT(transformers.ViTForImageClassification):
        """Another class of the same tensors and configuration (another forward, in a real case)."""

    vit = xai_core.load_model(f"hf:{save_tiny_vit(tmp_path / 'vit')}", device="cpu")
    other = OtherViT(vit.module.config)
    other.load_state_dict(vit.module.model.state_dict())
    wrapped = dataclasses.replace(vit, module=HFClassifier(other.eval()))
    assert wrapped.module.state_dict().keys() == vit.module.state_dict().keys()
    assert wrapped.fingerprint != vit.fingerprint
    again = dataclasses.replace(vit, module=HFClassifier(vit.module.model))
    assert again.fingerprint == vit.fingerprint  # the same class: the same model
