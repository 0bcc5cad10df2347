"""The sidebar's Model box, the model banner and the maps always name the same model, with and
without ResNet-50's weights on the server; the advice for getting them is written for a dashboard
user (the server's hub cache, XAI_WEIGHTS, a models-file entry), never the CLI's `--weights PATH`."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
import torch
from torchvision.models import resnet50

import xai_core
from _apptest import AppTest, all_text, errors as _errors, new_app, page as _page, run as _run
from xai_core.models.weights import cache_path

RESNET = "ResNet-50 (torchvision, ImageNet)"
LITE = "EfficientNet-Lite0 (bundled, ImageNet)"
#: How the Model box names the model auto loaded: its short name (the whole title does not fit there).
SHORT_RESNET, SHORT_LITE = "auto: ResNet-50", "auto: EfficientNet-Lite0"


def _server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_resnet: bool):
    """A server whose torch hub cache (TORCH_HOME) is empty, or holds random ResNet-50 weights under
    torchvision's file name; offline, no XAI_WEIGHTS. The cached models are loaded afresh."""
    from pages import _state

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("XAI_OFFLINE", "1")
    monkeypatch.delenv("XAI_WEIGHTS", raising=False)
    if with_resnet:
        file = Path(cache_path(xai_core.get_model_spec("resnet50").weights_record()))
        file.parent.mkdir(parents=True)
        torch.manual_seed(0)
        torch.save(resnet50(weights=None).state_dict(), file)
    _state.get_model.clear()


@pytest.fixture
def no_resnet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from pages import _state

    _server(tmp_path, monkeypatch, with_resnet=False)
    yield
    _state.get_model.clear()  # the next tests load the model of the usual configuration


@pytest.fixture
def with_resnet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from pages import _state

    _server(tmp_path, monkeypatch, with_resnet=True)
    yield
    _state.get_model.clear()


@pytest.fixture
def explained(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The title of the model of every `xai_core.explain` call (the maps' model); the maps' cache is emptied."""
    from pages import _state

    titles: list[str] = []
    real = xai_core.explain

    def spy(handle, *args, **kwargs):
        titles.append(handle.spec.title)
        return real(handle, *args, **kwargs)

    monkeypatch.setattr(xai_core, "explain", spy)
    _state.explain.clear()
    return titles


def _shown_model(at: AppTest) -> str:
    """What the sidebar's Model box shows (its selected option, as the user reads it)."""
    picker = at.radio(key="w:model")
    return picker.options[picker.index]


def _cam_page(at: AppTest) -> AppTest:
    at.session_state["cam.methods"] = ["gradcam"]  # one map is enough to know which model made it
    return _page(at, "cam")


def _advice_is_for_the_dashboard(text: str) -> None:
    assert "--weights" not in text  # a dashboard user has no command line
    assert "XAI_WEIGHTS" in text and "hub/checkpoints" in text and "resnet50-11ad3fa6.pth" in text
    assert "models file" in text and ('weights = "PATH"' in text or 'weights = \\"PATH\\"' in text)


def test_the_dashboard_tells_how_to_get_resnet50_without_a_cli_flag(no_resnet, downloads,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run(new_app(monkeypatch))
    assert at.expander[0].label.startswith(f"Model: {LITE}")
    _advice_is_for_the_dashboard(all_text(at))  # the banner's "Why this model"
    _cam_page(at)
    _advice_is_for_the_dashboard(html.unescape(downloads["cam_report"]))  # the report exported from the page
    at.radio(key="w:model").set_value("resnet50")
    _run(at)
    (error,) = _errors(at)  # choosing ResNet-50: one sentence, with the same advice
    _advice_is_for_the_dashboard(error)
    assert "--weights" not in all_text(at)


def test_the_cli_and_the_api_keep_their_own_wording(no_resnet, tmp_path: Path, capsys) -> None:
    from xai_core.cli import main

    assert "--weights PATH" in xai_core.load_model("auto").notice
    image = Path(__file__).resolve().parents[2] / "assets" / "images" / "cat.png"
    assert main(["cam", "--img", str(image), "--method", "gradcam", "--output", str(tmp_path / "cat.png")]) == 0
    (note,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: ")]
    assert "--weights PATH" in note and "server" not in note and "models file" not in note


def test_without_resnet50_weights_the_picker_the_banner_and_the_maps_agree(no_resnet, explained,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run(new_app(monkeypatch))
    picker = at.radio(key="w:model")
    assert f"{RESNET} — weights not on this server" in picker.options  # offered, marked with the reason
    assert _shown_model(at) == SHORT_LITE and at.expander[0].label.startswith(f"Model: {LITE}")  # auto names its model
    at.radio(key="w:model").set_value("resnet50")
    _run(at)
    assert _shown_model(at) == SHORT_LITE  # back on what is really loaded
    assert at.expander[0].label.startswith(f"Model: {LITE}")
    _cam_page(at)
    assert explained == [LITE] and _shown_model(at) == SHORT_LITE and not _errors(at)


def test_a_link_to_resnet50_without_its_weights_shows_one_model(no_resnet, explained,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    at = new_app(monkeypatch)
    at.query_params["model"] = "resnet50"
    _run(at)
    assert len(_errors(at)) == 1 and _shown_model(at) == SHORT_LITE and at.expander[0].label.startswith(f"Model: {LITE}")
    _cam_page(at)
    assert explained == [LITE] and _shown_model(at) == SHORT_LITE


def test_with_resnet50_weights_it_is_offered_and_used(with_resnet, explained,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run(new_app(monkeypatch))
    picker = at.radio(key="w:model")
    assert RESNET in picker.options and not any("not on this server" in o for o in picker.options)
    assert _shown_model(at) == SHORT_RESNET and at.expander[0].label.startswith(f"Model: {RESNET}")  # auto: ResNet-50
    at.radio(key="w:model").set_value("resnet50")
    _run(at)
    assert _shown_model(at) == RESNET and at.expander[0].label.startswith(f"Model: {RESNET}") and not _errors(at)
    _cam_page(at)
    assert explained == [RESNET] and _shown_model(at) == RESNET


def test_when_not_even_auto_loads_another_model_can_still_be_picked(no_resnet, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken.pth").write_bytes(b"not a state dict")
    monkeypatch.setenv("XAI_WEIGHTS", str(tmp_path / "broken.pth"))  # auto's ResNet-50 file is broken
    at = _run(new_app(monkeypatch))
    assert len(_errors(at)) == 1 and not at.expander  # one sentence, no banner, no page
    at.radio(key="w:model").set_value("efficientnet_lite0")  # the sidebar is still there
    _run(at)
    assert not _errors(at) and _shown_model(at) == LITE and at.expander[0].label.startswith(f"Model: {LITE}")
