"""Model registry, weight resolution (file, hub cache, offline fallback) and `predict`."""

from __future__ import annotations

import socket

import pytest
import torch
from torchvision.models import ResNet50_Weights, resnet50

import xai_core
from xai_core.models import weights as weights_mod
from conftest import CAT_CLASSES


@pytest.fixture()
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache under TORCH_HOME, no XAI_WEIGHTS, and offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("XAI_WEIGHTS", raising=False)
    monkeypatch.setenv("XAI_OFFLINE", "1")
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    return checkpoints


@pytest.fixture(scope="module")
def random_state_dict():
    torch.manual_seed(1)
    return resnet50(weights=None).state_dict()


def test_registry():
    assert xai_core.list_models() == ["resnet50", "efficientnet_lite0"]
    spec = xai_core.get_model_spec("resnet50")
    assert spec.default_weights == ResNet50_Weights.DEFAULT.name
    assert {"IMAGENET1K_V1", "IMAGENET1K_V2"} <= set(spec.weights)
    with pytest.raises(xai_core.UnknownNameError):
        xai_core.load_model("vgg16")


@pytest.mark.parametrize("name", ["resnet50", "efficientnet_lite0"])
def test_handle_contract(name):
    handle = xai_core.load_model(name, weights=None, device="cpu")
    assert handle.name == name and not handle.module.training
    assert len(handle.categories) == 1000 and handle.categories[281] == "tabby"
    assert list(handle.layers) == list(handle.spec.layer_names) and handle.default_layer in handle.layers
    x = handle.preprocess(xai_core.load_image(_png(40, 30)))
    assert tuple(x.shape) == (1, 3, 224, 224)
    with torch.inference_mode():
        for layer in handle.layers:  # every head maps its layer's activations to the model's logits
            acts = {}
            hook = handle.layers[layer].register_forward_hook(lambda m, i, o: acts.setdefault("a", o))
            try:
                logits = handle.module(x)
            finally:
                hook.remove()
            torch.testing.assert_close(handle.head(layer)(acts["a"]), logits, rtol=1e-4, atol=1e-4)
    assert "random" in handle.weights_source


def _png(w, h):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_resnet50_from_hub_cache(hub, random_state_dict):
    cached = hub / "resnet50-11ad3fa6.pth"  # the file name torchvision's DEFAULT (V2) downloads to
    torch.save(random_state_dict, cached)
    handle = xai_core.load_model("auto", device="cpu")
    assert handle.name == "resnet50" and handle.notice is None
    assert handle.weights_file == str(cached)  # the path, for the CLI and the API
    assert "torch hub cache" in handle.weights_source and "resnet50-11ad3fa6.pth" in handle.weights_source
    assert str(hub) not in handle.weights_source  # ... but never in the words a dashboard shows
    torch.testing.assert_close(handle.module.fc.weight, random_state_dict["fc.weight"])


def test_resnet50_v1_tag_uses_its_own_cache_file(hub, random_state_dict):
    with pytest.raises(xai_core.WeightsUnavailableError, match="resnet50-0676ba61.pth"):
        xai_core.load_model("resnet50", weights="IMAGENET1K_V1")
    torch.save(random_state_dict, hub / "resnet50-0676ba61.pth")
    assert "resnet50-0676ba61.pth" in xai_core.load_model("resnet50", weights="IMAGENET1K_V1").weights_source


def test_explicit_file_and_env_variable(hub, tmp_path, monkeypatch, random_state_dict):
    path = tmp_path / "mine.pth"
    torch.save(random_state_dict, path)
    handle = xai_core.load_model("resnet50", weights=str(path))
    assert handle.weights_file == str(path) and handle.weights_source == "the file mine.pth"
    monkeypatch.setenv("XAI_WEIGHTS", str(path))
    handle = xai_core.load_model("auto")
    assert handle.name == "resnet50" and handle.weights_file == str(path)
    assert "XAI_WEIGHTS" in handle.weights_source and str(tmp_path) not in handle.weights_source


def test_a_missing_server_file_falls_back_without_revealing_its_path(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("XAI_WEIGHTS", str(tmp_path / "secret" / "resnet.pth"))
    handle = xai_core.load_model("auto")
    assert handle.name == "efficientnet_lite0" and "XAI_WEIGHTS" in handle.notice
    assert str(tmp_path) not in handle.notice and handle.weights_file.endswith(".pth")
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "resnet.pth").write_bytes(b"garbage")
    with pytest.raises(xai_core.InvalidWeightsError) as err:  # a broken server file is an error, unnamed
        xai_core.load_model("auto")
    assert "XAI_WEIGHTS" in str(err.value) and str(tmp_path) not in str(err.value)


def test_auto_falls_back_offline_with_instructions(hub):
    handle = xai_core.load_model("auto")
    assert handle.name == "efficientnet_lite0"
    assert "resnet50-11ad3fa6.pth" in handle.notice and "torch hub cache" in handle.notice
    assert "--weights" in handle.notice and "\n" not in handle.notice
    assert str(hub) not in handle.notice and "/root/" not in handle.notice  # no server path: a public UI shows it
    assert handle.weights_file and handle.weights_file.endswith(".pth")  # the bundled file's path, for the API


def test_unreachable_host_is_detected_without_downloading(hub, monkeypatch):
    monkeypatch.delenv("XAI_OFFLINE")
    weights_mod._offline_hosts.clear()
    attempts = []

    def refuse(address, timeout=None):
        attempts.append(timeout)
        raise OSError("network unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(ResNet50_Weights.IMAGENET1K_V2.__class__, "get_state_dict",
                        lambda *a, **k: pytest.fail("must not try to download"), raising=False)
    with pytest.raises(xai_core.WeightsUnavailableError, match="cannot be reached"):
        xai_core.load_model("resnet50")
    assert attempts and attempts[0] <= 5, "the probe must time out within seconds"
    weights_mod._offline_hosts.clear()


def test_bad_weight_files_get_clear_errors(hub, tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(xai_core.WeightsUnavailableError, match="No weights file: '.*nope.pth' does not exist"):
        xai_core.load_model("resnet50", weights=str(missing))
    with pytest.raises(xai_core.WeightsUnavailableError):  # auto must not hide a missing explicit file
        xai_core.load_model("auto", weights=str(missing))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(xai_core.InvalidWeightsError, match="is not a PyTorch weights file"):
        xai_core.load_model("resnet50", weights=str(garbage))
    other = tmp_path / "other.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), other)
    with pytest.raises(xai_core.InvalidWeightsError, match="do not fit resnet50"):
        xai_core.load_model("resnet50", weights=str(other))
    pickled = tmp_path / "pickled.pth"
    torch.save({"model": object.__new__(_Evil)}, pickled)
    with pytest.raises(xai_core.InvalidWeightsError):  # weights_only=True refuses arbitrary objects
        xai_core.load_model("resnet50", weights=str(pickled))


class _Evil:
    pass


def test_device_override():
    assert xai_core.load_model("efficientnet_lite0", device="cpu").device.type == "cpu"
    with pytest.raises(xai_core.InvalidOptionError):
        xai_core.load_model("efficientnet_lite0", device="no-such-device")


def test_pretrained_predictions_mean_something(lite, cat_path, coffee_path):
    top3 = xai_core.predict(lite, cat_path, top_k=3)
    assert len(top3) == 3 and any(p.index in CAT_CLASSES for p in top3)
    top1 = xai_core.predict(lite, coffee_path, top_k=1)[0]
    assert top1.label in ("espresso", "cup") and top1.probability > 0.5
    probs = [p.probability for p in xai_core.predict(lite, coffee_path, top_k=5)]
    assert probs == sorted(probs, reverse=True)
    with pytest.raises(xai_core.InvalidOptionError):
        xai_core.predict(lite, coffee_path, top_k=0)


def test_foreign_weights_tag_is_named_not_treated_as_a_path():
    with pytest.raises(xai_core.UnknownNameError, match="IMAGENET1K"):
        xai_core.load_model("efficientnet_lite0", weights="IMAGENET1K_V1")
