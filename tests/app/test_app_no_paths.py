"""A public demo must not reveal the server's file system: no absolute path on any page (AppTest of
every page, every element's text) or in any exported report, even when the server's weights
configuration names files (a missing XAI_WEIGHTS file makes `auto` fall back with a notice)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from _apptest import AppTest, all_text, errors as _errors, new_app, page as _page, run as _run
from _no_paths import forbidden_strings, leaks


@pytest.fixture
def server_file_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The server names a weights file that is not there (and its own torch hub cache): `auto`
    falls back to the bundled model with a notice that could name those paths."""
    from pages import _state

    monkeypatch.setenv("XAI_WEIGHTS", str(tmp_path / "secret" / "resnet50.pth"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    _state.get_model.clear()
    yield tmp_path
    _state.get_model.clear()  # the next tests load the model of the usual configuration


def test_no_page_and_no_report_shows_a_server_path(server_file_missing: Path, downloads: dict,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    forbidden = forbidden_strings(server_file_missing)
    app = _run(new_app(monkeypatch))
    banner = app.expander[0]
    assert banner.label.startswith("Model: EfficientNet-Lite0") and "XAI_WEIGHTS" in all_text(app)
    app.session_state["eval.methods"] = ["gradcam"]  # keep the Faithfulness page short
    app.session_state["eval.steps"] = 10
    app.session_state["eval.sanity"] = False
    for name in ("home", "cam", "dff", "faithfulness", "compare", "dataset"):
        if name != "home":
            _page(app, name)
        assert not _errors(app), name
        assert not leaks(all_text(app), forbidden), name
    assert {"cam_report", "dff_report", "eval_report", "cmp_report"} <= set(downloads)
    for key, content in downloads.items():
        assert not leaks(content, forbidden), key
    assert "EfficientNet-Lite0" in downloads["cam_report"] and "XAI_WEIGHTS" in downloads["cam_report"]


def test_the_checks_would_see_a_path(server_file_missing: Path) -> None:
    """The helpers above do find a path where there is one (so the test cannot pass vacuously)."""
    forbidden = forbidden_strings(server_file_missing)
    assert leaks(f"weights at {server_file_missing}/secret/resnet50.pth", forbidden)
    assert leaks(f"the file {Path(torch.hub.get_dir()) / 'checkpoints' / 'x.pth'}", forbidden)
    assert leaks(f"{sys.prefix}/lib/python3/site-packages/efficientnet_lite0/w.pth", forbidden)
