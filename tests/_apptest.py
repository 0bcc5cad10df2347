"""Shared AppTest helpers: the app fixture (through the entry point's router) and chart readers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import streamlit.testing.v1.app_test as app_test_module
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from pages._streamlit_internals import end_pages_folder_mode

APP = Path(__file__).resolve().parents[1] / "streamlit_app.py"
TIMEOUT = 180  # the first run loads the model


def run(at: AppTest) -> AppTest:
    at.run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    return at


class _NavigationPagesManager(PagesManager):
    """AppTest builds a new PagesManager per run and resets `uses_pages_directory`, so with a
    pages/ folder every rerun after the first executed only the page file (Streamlit's v1
    multipage mode), skipping the entry point. A real server stops looking at pages/ once the
    entry point has called st.navigation; this does the same (tests/app/test_streamlit_internals.py
    pins both internals)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        end_pages_folder_mode()


def new_app(monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """An AppTest of the entry point that routes every rerun through st.navigation (not yet run)."""
    monkeypatch.setattr(app_test_module, "PagesManager", _NavigationPagesManager)
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The app after its first run (Start page)."""
    return run(new_app(monkeypatch))


def page(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"pages/{page}.py")
    return run(at)


def charts(at: AppTest) -> dict[str, dict]:
    """The page's Plotly figures (as their JSON specs), by chart key."""
    found = {}
    for element in at.get("plotly_chart"):
        spec = json.loads(element.proto.spec)
        found[element.proto.id.split("-", 2)[-1] if "-" in element.proto.id else element.proto.id] = spec
    return found


def chart(at: AppTest, name: str) -> dict:
    matches = [spec for key, spec in charts(at).items() if key.endswith(name)]
    assert len(matches) == 1, list(charts(at))
    return matches[0]


def array(value) -> np.ndarray:
    """A figure spec's array: a list, or Plotly's typed-array encoding {"dtype", "bdata"}."""
    if isinstance(value, dict):
        import base64

        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def heatmap_names(spec: dict) -> list[str]:
    return [t["name"] for t in spec["data"] if t["type"] == "heatmap"]


def all_text(at: AppTest) -> str:
    """Every element's protobuf (labels, values, options, captions, help texts, chart specs) as text."""
    parts: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The content of every download button the pages draw (a report is built when clicked: here, at once)."""
    found: dict[str, str] = {}
    real = st.download_button

    def record(label, data, *args, **kwargs):
        content = data() if callable(data) else data
        found[kwargs.get("key") or label] = content if isinstance(content, str) else content.decode()
        return real(label, data, *args, **kwargs)

    monkeypatch.setattr(st, "download_button", record)
    return found
