"""Model source `hf:PATH_OR_ID`: tiny random Hugging Face classifiers of six families, saved with
`save_pretrained` (model and image processor) into a temporary folder and loaded offline through
`load_model`. They predict as transformers does, preprocess as their processor does, get their
layers, reshapes and heads from `architecture`, explain, travel by `load_args`, load from a models
file and from the Hugging Face cache, and every failure is one sentence. Nothing is downloaded."""

from __future__ import annotations

import json
import re
import shutil
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import xai_core
from _deps import need
from conftest import IMAGES, no_hooks_left
from xai_core import catalog
from xai_core.errors import InvalidOptionError, InvalidWeightsError, WeightsUnavailableError, XAIError
from xai_core.models import load_entry, load_model
from xai_core.models.architecture import TokenGrid
from xai_core.models.hf import HFClassifier
from xai_core.models.hf_processor import hf_transforms, misfit

transformers = need("transformers", reason="Hugging Face models are optional: "
                                                          "pip install -r requirements-hf.txt (CI installs it)")

LABELS = ["ant", "bee", "cat", "dog", "eel"]
#: A 32-pixel ViT-style geometry: 8-pixel patches (a 4x4 grid), two blocks, width 32.
VIT = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
           intermediate_size=64)
CROP_36_TO_32 = dict(size={"height": 36, "width": 36}, crop_size={"height": 32, "width": 32}, do_center_crop=True)


def _classifier(family: str):
    """(model, processor) of `family`, random weights, 5 classes, 32-pixel inputs."""
    t = transformers
    labels = dict(num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
                  label2id={name: i for i, name in enumerate(LABELS)})
    if family == "vit":
        return t.ViTForImageClassification(t.ViTConfig(**VIT, **labels)), \
            t.ViTImageProcessor(size={"height": 32, "width": 32})
    if family == "deit":  # class + distillation token, resize 36 then crop 32
        return t.DeiTForImageClassificationWithTeacher(t.DeiTConfig(**VIT, **labels)), \
            t.DeiTImageProcessor(**CROP_36_TO_32)
    if family == "swin":
        config = t.SwinConfig(image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2],
                              window_size=4, **labels)
        return t.SwinForImageClassification(config), t.ViTImageProcessor(size={"height": 32, "width": 32})
    if family == "beit":
        return t.BeitForImageClassification(t.BeitConfig(**VIT, use_mean_pooling=True, **labels)), \
            t.BeitImageProcessor(**CROP_36_TO_32)
    if family == "convnext":  # shorter edge to 32 / 0.875 = 36, centre crop 32
        config = t.ConvNextConfig(num_stages=2, hidden_sizes=[8, 16], depths=[1, 1], **labels)
        return t.ConvNextForImageClassification(config), \
            t.ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875)
    if family == "dinov2_reg":  # class token + 2 register tokens; DINOv2's processor (shorter edge, crop)
        config = t.Dinov2WithRegistersConfig(**VIT, num_register_tokens=2, **labels)
        return t.Dinov2WithRegistersForImageClassification(config), \
            t.BitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    raise KeyError(family)


#: family -> (default layer, candidate layers, transformer, reshape of the default layer).
EXPECTED = {
    "vit": ("model.vit.layers.1.layernorm_before", 2, True, TokenGrid(1, 4, 4)),
    "deit": ("model.deit.layers.1.layernorm_before", 2, True, TokenGrid(2, 4, 4)),
    "swin": ("model.swin.encoder.layers.1.blocks.0.layernorm_before", 2, True, TokenGrid(0, 4, 4)),
    "beit": ("model.beit.layers.1.layernorm_before", 2, True, TokenGrid(1, 4, 4)),
    "convnext": ("model.convnext.encoder.stages.1", 3, False, None),
    "dinov2_reg": ("model.dinov2_with_registers.encoder.layer.1.norm1", 2, True, TokenGrid(3, 4, 4)),
}
IMAGE = Image.open(IMAGES / "cat.png").convert("RGB")
ODD = Image.fromarray(np.random.default_rng(0).integers(0, 255, (97, 131, 3), dtype=np.uint8))


def _save(folder: Path, family: str = "vit", seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model, processor = _classifier(family)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict:
    """family -> the folder it was saved into."""
    root = tmp_path_factory.mktemp("hf")
    return {family: _save(root / family, family) for family in EXPECTED}


def _one_sentence(err: BaseException) -> str:
    message = str(err)
    assert isinstance(err, XAIError) and "\n" not in message and "Traceback" not in message, message
    assert message.endswith(".") and not re.search(r"[.;]\s+[A-Z]", message), message
    return message


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_a_family_predicts_preprocesses_and_explains_as_transformers_does(family, saved):
    folder = saved[family]
    handle = load_model(f"hf:{folder}", device="cpu")
    reference = transformers.AutoModelForImageClassification.from_pretrained(folder, local_files_only=True).eval()
    processor = transformers.AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    pixel_values = processor(images=IMAGE, return_tensors="pt").pixel_values
    assert isinstance(handle.module, HFClassifier) and not handle.module.training
    assert handle.module.config.model_type == reference.config.model_type
    with torch.no_grad():
        torch.testing.assert_close(handle.module(pixel_values), reference(pixel_values=pixel_values).logits,
                                   rtol=0, atol=1e-5)
    # transformers 5's processors resize with torchvision's tensor kernels, as `prepare` does: the
    # inputs agree to float rounding (measured: at most 2e-7 apart).
    torch.testing.assert_close(handle.prepare([IMAGE]).x, pixel_values, rtol=0, atol=1e-5)
    # On some sizes a crop's offset is a half pixel: torchvision rounds it, transformers truncates it,
    # so the crop may sit one pixel off; the pixels themselves agree (measured: 1e-7 on average).
    assert misfit(handle.prepare([ODD]).x, processor(images=ODD, return_tensors="pt").pixel_values) < 1e-5
    assert handle.categories == tuple(LABELS) and handle.class_index("Cat") == 2
    assert handle.title == f"{family} (Hugging Face, {reference.config.model_type})"
    assert handle.weights_source == f"the Hugging Face folder {family}" and handle.weights_file == str(folder)
    layer, count, transformer, reshape = EXPECTED[family]
    assert handle.default_layer == layer and len(handle.layers) == count and handle.transformer is transformer
    assert handle.reshape(layer) == reshape
    head = handle.head(layer)
    acts = {}
    hook = handle.module.get_submodule(layer).register_forward_hook(lambda m, i, o: acts.setdefault("a", o))
    with torch.no_grad():
        logits = handle.module(pixel_values)
    hook.remove()
    torch.testing.assert_close(head.bind(handle.module, pixel_values)(acts["a"]), logits, rtol=0, atol=1e-5)
    result = xai_core.explain(handle, IMAGE, methods=("gradcam", "hirescam"), target="bee")
    assert result.layers == (layer,) and result.target_label == "bee"
    for m in result.maps.values():
        assert m.shape == (32, 32) and np.isfinite(m).all() and 0 <= m.min() and m.max() <= 1
    assert no_hooks_left(handle.module) and all(p.grad is None for p in handle.module.parameters())


def test_labels_override_and_random_weights(saved):
    folder = saved["vit"]
    handle = load_model(f"hf:{folder}", labels=["a", "b", "c", "d", "e"], device="cpu")
    assert handle.categories == ("a", "b", "c", "d", "e") and handle.load_args["labels"] == list("abcde")
    with pytest.raises(InvalidOptionError) as info:
        load_model(f"hf:{folder}", labels=["a", "b"], device="cpu")
    assert "5 classes but 2 labels" in _one_sentence(info.value)
    random = load_model(f"hf:{folder}", weights=None, labels=["x", "y"], device="cpu")
    assert random.categories == ("x", "y") and random.module(torch.zeros(1, 3, 32, 32)).shape == (1, 2)
    assert "random" in random.weights_source and random.weights_file is None
    assert isinstance(random.spec.build(), HFClassifier)


def test_input_size_overrides_the_crop_or_is_refused(saved):
    vit = load_model(f"hf:{saved['vit']}", device="cpu", input_size=48)  # position embeddings interpolated
    assert vit.transforms.crop_size == [48, 48] and vit.prepare([IMAGE]).x.shape == (1, 3, 48, 48)
    assert vit.reshape(vit.default_layer) == TokenGrid(1, 6, 6)
    convnext = load_model(f"hf:{saved['convnext']}", device="cpu", input_size=48)
    assert convnext.transforms.crop_size == [48, 48] and convnext.transforms.resize_size == [54]
    with pytest.raises(InvalidOptionError) as info:
        load_model(f"hf:{saved['vit']}", device="cpu", input_size=4)  # smaller than one patch
    assert "does not take 4x4 images" in _one_sentence(info.value)


@pytest.mark.parametrize("processor,resize,crop,mean", [
    (lambda t: t.ViTImageProcessor(size={"height": 32, "width": 48}, do_normalize=False), [32, 48], [32, 48], 0.0),
    (lambda t: t.ConvNextImageProcessor(size={"shortest_edge": 384}), [384, 384], [384, 384], 0.5),  # no crop
    (lambda t: t.ConvNextImageProcessor(size={"shortest_edge": 224}, crop_pct=0.875), [256], [224, 224], 0.5),
    (lambda t: t.PoolFormerImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                                          crop_pct=0.9), [35], [32, 32], 0.485),
    (lambda t: t.CLIPImageProcessor(), [224], [224, 224], 0.48145466),
])
def test_processors_become_resize_crop_normalise(processor, resize, crop, mean):
    transforms = hf_transforms(processor(transformers), "hf:x")
    assert transforms.resize_size == resize and transforms.crop_size == crop and transforms.mean[0] == mean


@pytest.mark.parametrize("processor,words", [
    (lambda t: t.LevitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
     "do not reproduce"),  # LeViT resizes to 256/224 of its size, which no attribute says
    (lambda t: t.ViTImageProcessor(size={"height": 32, "width": 32}, resample=4), "resampling 4"),
    (lambda t: t.ViTImageProcessor(size={"height": 32, "width": 32}, do_rescale=False), "not 1/255"),
    (lambda t: t.ViTImageProcessor(size={"height": 32, "width": 32}, do_resize=False), "one size"),
])
def test_processors_that_cannot_be_reproduced_are_refused(processor, words):
    with pytest.raises(InvalidOptionError) as info:
        hf_transforms(processor(transformers), "hf:x")
    assert words in _one_sentence(info.value)


def _break(folder: Path, case: str) -> None:
    """Make `folder` (a saved ViT, or nothing) into a broken model of kind `case`."""
    t = transformers
    if case == "empty":
        folder.mkdir()
    elif case == "junk config":
        folder.mkdir()
        (folder / "config.json").write_text('{"hello": 1}')
    elif case == "text model":
        t.BertModel(t.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                 vocab_size=50)).save_pretrained(folder)
    elif case == "base model":  # a ViT without its classifier: the head would be random
        t.ViTModel(t.ViTConfig(**VIT)).save_pretrained(folder)
        t.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    else:
        _save(folder)
        if case == "corrupt weights":
            (folder / "model.safetensors").write_bytes(b"\x00" * 100)
        elif case == "no weights":
            (folder / "model.safetensors").unlink()
        elif case == "no processor":
            (folder / "preprocessor_config.json").unlink()
        elif case == "odd rescale":
            data = json.loads((folder / "preprocessor_config.json").read_text())
            (folder / "preprocessor_config.json").write_text(json.dumps({**data, "rescale_factor": 1 / 127.5}))
        elif case == "image-sized output":  # a shorter-edge resize without a crop: no fixed size
            t.ViTImageProcessor(size={"shortest_edge": 32}).save_pretrained(folder)


@pytest.mark.parametrize("case,error,words", [
    ("missing", WeightsUnavailableError, "is not on this machine"),
    ("empty", InvalidOptionError, "without config.json"),
    ("junk config", InvalidOptionError, "not an image classifier"),
    ("text model", InvalidOptionError, "'bert' model, not an image classifier"),
    ("base model", InvalidWeightsError, "lack 2 tensors"),
    ("corrupt weights", InvalidWeightsError, "cannot be loaded"),
    ("no weights", WeightsUnavailableError, "holds no weights"),
    ("no processor", InvalidOptionError, "no usable image processor"),
    ("odd rescale", InvalidOptionError, "not 1/255"),
    ("image-sized output", InvalidOptionError, "only fixed-size processors"),
])
def test_each_failure_is_one_sentence_without_a_server_path(case, error, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the model is named relatively: messages add no absolute path
    if case != "missing":
        _break(tmp_path / "model", case)
    with pytest.raises(error) as info:
        load_model("hf:model", device="cpu")
    message = _one_sentence(info.value)
    assert words in message and message.startswith("hf:model") and str(tmp_path) not in message


def test_weights_other_than_the_folders_are_refused(saved):
    with pytest.raises(InvalidOptionError) as info:
        load_model(f"hf:{saved['vit']}", weights="model.pt", device="cpu")
    assert "takes its weights from its own folder" in _one_sentence(info.value)


def test_without_transformers_one_sentence(saved, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` fails
    with pytest.raises(InvalidOptionError) as info:
        load_model(f"hf:{saved['vit']}", device="cpu")
    assert _one_sentence(info.value) == "Hugging Face models need transformers; pip install -r requirements-hf.txt."
    assert xai_core.models.is_source("hf:anything")


def test_load_args_round_trip_from_a_relative_folder(saved, tmp_path, monkeypatch):
    shutil.copytree(saved["deit"], tmp_path / "deit")
    monkeypatch.chdir(tmp_path)
    handle = load_model("hf:deit", labels=LABELS, device="cpu")
    assert handle.name == "hf:deit" and handle.load_args["name"] == f"hf:{tmp_path / 'deit'}"
    monkeypatch.chdir(saved["vit"])  # another process, another working folder
    again = load_model(**handle.load_args, device="cpu")
    assert again.fingerprint == handle.fingerprint and again.categories == handle.categories
    assert repr(again.transforms) == repr(handle.transforms)
    other = load_model(f"hf:{saved['vit']}", device="cpu")
    assert other.fingerprint != handle.fingerprint


def test_a_models_file_names_a_folder_relative_to_itself(saved, tmp_path, monkeypatch):
    deploy = tmp_path / "deploy"
    shutil.copytree(saved["swin"], deploy / "models" / "swin")
    (deploy / "models.toml").write_text('[[model]]\nname = "tiny-swin"\nsource = "hf:models/swin"\n'
                                        'title = "Tiny Swin"\n\n'
                                        '[[model]]\nname = "gone"\nsource = "hf:models/gone"\n')
    monkeypatch.setenv(catalog.ENV, str(deploy / "models.toml"))
    monkeypatch.chdir(saved["vit"])  # relative paths start at the models file's folder, not here
    entry = catalog.get_entry("tiny-swin")
    assert entry.source == "hf:models/swin"  # what the dashboard shows, as the file writes it
    handle = load_entry("tiny-swin", device="cpu")
    assert handle.name == "tiny-swin" and handle.title == "Tiny Swin" and handle.transformer
    assert handle.weights_source == "the Hugging Face folder swin" and handle.load_args == {"name": "tiny-swin"}
    assert load_model("tiny-swin", device="cpu").fingerprint == handle.fingerprint
    with pytest.raises(WeightsUnavailableError) as info:
        load_entry("gone", device="cpu")
    message = _one_sentence(info.value)
    assert "model 2 ('gone')" in message and "hf:models/gone" in message and str(tmp_path) not in message


def _hub_cache(root: Path, repo: str, folder: Path) -> None:
    """A Hugging Face cache holding `repo` at one snapshot, as huggingface-cli download leaves it."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    entry = root / f"models--{repo.replace('/', '--')}"
    shutil.copytree(folder, entry / "snapshots" / commit)
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text(commit)


def test_a_hub_id_loads_from_the_cache_without_the_network(saved, tmp_path, monkeypatch):
    _hub_cache(tmp_path / "cache", "someone/tiny-vit", saved["vit"])
    monkeypatch.setattr(transformers.utils.hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    calls = []

    def no_network(self, address):
        calls.append(address)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    handle = load_model("hf:someone/tiny-vit", device="cpu")
    assert handle.weights_source == "the Hugging Face cache (someone/tiny-vit)"
    assert handle.title == "someone/tiny-vit (Hugging Face, vit)" and handle.load_args["name"] == "hf:someone/tiny-vit"
    assert handle.fingerprint == load_model(f"hf:{saved['vit']}", device="cpu").fingerprint
    with pytest.raises(WeightsUnavailableError) as info:
        load_model("hf:someone/not-downloaded", device="cpu")
    assert "Hugging Face cache" in _one_sentence(info.value)
    assert calls == []
