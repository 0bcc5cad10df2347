"""A user's checkpoint (`xai_core.models.checkpoints`): real files written to tmp_path."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision.models as tvm

from xai_core.models.checkpoints import classifier_layers, load_checkpoint, read_labels, read_state_dict, strip_prefixes
from xai_core.errors import InvalidOptionError, InvalidWeightsError, WeightsUnavailableError
from _deps import need

LABELS = ["cat", "dog", "bird"]


def _resnet18(num_classes: int) -> torch.nn.Module:
    return tvm.resnet18(weights=None, num_classes=num_classes)


@pytest.fixture(scope="module")
def finetuned() -> torch.nn.Module:
    """A '3-class fine-tuned' ResNet-18 (random weights, seeded)."""
    torch.manual_seed(0)
    return _resnet18(3).eval()


def _save(obj, path):
    torch.save(obj, path)
    return path


def _one_sentence(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert message.endswith(".") and ". " not in message.replace("e.g. ", ""), message
    return message


def test_three_class_checkpoint_loads_with_its_labels(finetuned, tmp_path):
    path = _save(finetuned.state_dict(), tmp_path / "pets.pt")
    ckpt = load_checkpoint(path, _resnet18, labels=LABELS, arch="resnet18")
    assert ckpt.num_classes == 3 and ckpt.categories == tuple(LABELS) and ckpt.classifier == ("fc",)
    assert not ckpt.module.training
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ckpt.module(x), finetuned(x))


def test_class_count_inferred_without_labels(finetuned, tmp_path):
    ckpt = load_checkpoint(_save(finetuned.state_dict(), tmp_path / "w.pth"), _resnet18, arch="resnet18")
    assert ckpt.num_classes == 3 and ckpt.categories == ("class 0", "class 1", "class 2")


@pytest.mark.parametrize("wrap", [
    lambda sd: {"state_dict": sd, "epoch": 7},
    lambda sd: {"model": sd, "optimizer": {"lr": 0.1}},
    lambda sd: {f"module.{k}": v for k, v in sd.items()},  # DataParallel
    lambda sd: {"state_dict": {f"model.{k}": v for k, v in sd.items()}, "global_step": 10},  # Lightning
    lambda sd: {"model": {f"model.module.{k}": v for k, v in sd.items()}},
], ids=["state_dict", "model", "module.", "lightning", "nested+both"])
def test_nested_and_prefixed_checkpoints(finetuned, tmp_path, wrap):
    path = _save(wrap(finetuned.state_dict()), tmp_path / "w.ckpt")
    ckpt = load_checkpoint(path, _resnet18, labels=LABELS, arch="resnet18")
    assert torch.equal(ckpt.module.fc.weight, finetuned.fc.weight)


def test_another_architecture(tmp_path):
    path = _save(tvm.mobilenet_v3_small(weights=None, num_classes=3).state_dict(), tmp_path / "m.pt")
    with pytest.raises(InvalidWeightsError) as err:
        load_checkpoint(path, _resnet18, labels=LABELS, arch="resnet18")
    message = _one_sentence(err)
    assert "does not hold resnet18 weights" in message and "unexpected" in message and "missing" in message
    assert "'conv1.weight'" in message or "'bn1.bias'" in message  # examples of the expected keys


def test_same_names_other_shapes(finetuned, tmp_path):
    state = finetuned.state_dict()
    state["conv1.weight"] = torch.zeros(64, 3, 3, 3)  # not ResNet-18's 7x7 stem
    with pytest.raises(InvalidWeightsError) as err:
        load_checkpoint(_save(state, tmp_path / "w.pt"), _resnet18, arch="resnet18")
    assert "'conv1.weight' is (64, 3, 3, 3) where resnet18 has (64, 3, 7, 7)" in _one_sentence(err)


def test_label_count_differs_from_class_count(finetuned, tmp_path):
    path = _save(finetuned.state_dict(), tmp_path / "w.pt")
    with pytest.raises(InvalidWeightsError) as err:
        load_checkpoint(path, _resnet18, labels=LABELS + ["fish", "cow"], arch="resnet18")
    message = _one_sentence(err)
    assert "has 3 classes" in message and "5 labels" in message


@pytest.mark.parametrize("zip_format", [True, False])
def test_pickled_whole_model_is_refused_without_unpickling(finetuned, tmp_path, zip_format):
    path = tmp_path / "model.pt"
    torch.save(finetuned, path, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(InvalidWeightsError) as err:
        read_state_dict(path)
    assert "holds a pickled model, not a state dict; save model.state_dict()" in _one_sentence(err)


def _saved_bytes(tmp_path) -> bytes:
    torch.save({"w": torch.zeros(64)}, tmp_path / "good.pt")
    return (tmp_path / "good.pt").read_bytes()


@pytest.mark.parametrize("content,expected", [
    (b"this is not a torch file", "is not a PyTorch weights file (torch.save writes a zip archive"),
    (b"", "is empty"),
    (b"garbage", "is not a PyTorch weights file"),
    (b"PK\x03\x04 truncated zip", "is a damaged or incomplete torch.save archive"),
    ("half of a real file", "is a damaged or incomplete torch.save archive"),
    (b"\x80\x02}q\x00(X", "is a damaged or incomplete torch.save file in the legacy format"),
])
def test_garbage_file(tmp_path, content, expected):
    """The sentence says what is wrong with the file, never the name of an internal exception."""
    if isinstance(content, str):
        whole = _saved_bytes(tmp_path)
        content = whole[: len(whole) // 2]
    path = tmp_path / "junk.pt"
    path.write_bytes(content)
    with pytest.raises(InvalidWeightsError) as err:
        read_state_dict(path)
    assert expected in _one_sentence(err)
    assert "Error" not in str(err.value) and "(error)" not in str(err.value)


@pytest.mark.parametrize("obj,found", [
    ([1, 2, 3], "holds a list"), ({"epoch": 3, "lr": 0.1}, "a dict with keys 'epoch'"),
    ({"state_dict": {"w": 1}}, "a dict with keys 'w'")])
def test_loadable_but_not_a_state_dict(tmp_path, obj, found):
    with pytest.raises(InvalidWeightsError) as err:
        read_state_dict(_save(obj, tmp_path / "w.pt"))
    assert found in _one_sentence(err) and "not a state dict" in str(err.value)


def test_other_pickled_objects(tmp_path):
    import argparse

    path = _save({"state_dict": {"w": torch.zeros(1)}, "args": argparse.Namespace(lr=0.1)}, tmp_path / "w.pt")
    with pytest.raises(InvalidWeightsError) as err:
        read_state_dict(path)
    assert "Python objects that a safe load refuses" in _one_sentence(err)


def test_missing_file(tmp_path):
    with pytest.raises(WeightsUnavailableError):
        read_state_dict(tmp_path / "nope.pt")


def test_strip_prefixes_keeps_an_architecture_own_prefix():
    state = {"model.a": torch.zeros(1), "model.b": torch.zeros(1)}
    assert list(strip_prefixes(state)) == ["a", "b"]
    assert list(strip_prefixes(state, expected=["model.a", "model.b"])) == ["model.a", "model.b"]
    assert list(strip_prefixes({"module.x": 1, "y": 2})) == ["module.x", "y"]


@pytest.mark.parametrize("build,expected", [
    (lambda: tvm.resnet18(weights=None), ("fc",)),
    (lambda: tvm.mobilenet_v3_small(weights=None), ("classifier.3",)),
    (lambda: tvm.squeezenet1_0(weights=None), ("classifier.1",)),
    (lambda: tvm.convnext_tiny(weights=None), ("classifier.2",)),
    (lambda: tvm.vit_b_16(weights=None, image_size=32), ("heads.head",)),
])
def test_classifier_layers(build, expected):
    assert classifier_layers(build()) == expected


def test_distilled_deit_checkpoint_resizes_both_heads(tmp_path):
    timm = need("timm")

    def build(k):
        return timm.create_model("deit_tiny_distilled_patch16_224", pretrained=False, img_size=32, num_classes=k)

    assert classifier_layers(build(10)) == ("head", "head_dist")
    path = _save(build(3).state_dict(), tmp_path / "deit.pt")
    ckpt = load_checkpoint(path, build, labels=LABELS, arch="deit_tiny_distilled_patch16_224")
    assert ckpt.num_classes == 3 and ckpt.module(torch.randn(1, 3, 32, 32)).shape == (1, 3)


def test_labels_sources(tmp_path):
    text = tmp_path / "labels.txt"
    text.write_text("cat\n\n dog \nbird\n", encoding="utf-8")
    listed = tmp_path / "labels.json"
    listed.write_text(json.dumps(LABELS), encoding="utf-8")
    assert read_labels(text) == read_labels(listed) == read_labels(str(listed)) == read_labels(LABELS) == tuple(LABELS)


@pytest.mark.parametrize("content,expected", [
    ('{"0": "cat"}', "holds a JSON dict"), ("[1, 2]", "non-empty string"), ("[\"cat\", ", "not valid JSON"),
    ("cat\ndog\nCat\n", "twice"), ("\n\n", "at least one label"),
])
def test_bad_labels_files(tmp_path, content, expected):
    path = tmp_path / ("labels.json" if content.startswith(("{", "[")) else "labels.txt")
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidOptionError, match=expected):
        read_labels(path)


def test_missing_labels_file(tmp_path):
    with pytest.raises(InvalidOptionError, match="No labels file"):
        read_labels(tmp_path / "labels.txt")
