"""Pins every Streamlit internal in pages/_streamlit_internals.py: if a Streamlit release changes one,
this fails instead of the app silently changing (deep links, cancelling, unknown URLs, progress)."""

from __future__ import annotations

import inspect
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.commands import navigation
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.script_requests import RerunData, ScriptRequests

from pages import _streamlit_internals as internals

ENTRY = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")


def _in_run(monkeypatch: pytest.MonkeyPatch, **ctx) -> None:
    """Make the internals module see a script run context with these attributes."""
    monkeypatch.setattr(internals, "get_script_run_ctx", lambda **_: SimpleNamespace(**ctx))


def test_pages_folder_mode_is_a_class_switch_that_streamlit_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """With pages/ beside the entry point Streamlit starts in its old pages-folder mode (the switch is
    set by the first PagesManager), runs page files without the entry point while it is on, and
    keeps it off once turned off (what `S.ensure_entry_point` and tests/_apptest.py rely on)."""
    import streamlit.runtime.scriptrunner.script_runner as script_runner
    import streamlit.testing.v1.app_test as app_test

    monkeypatch.setattr(PagesManager, "uses_pages_directory", None)
    PagesManager(ENTRY)
    assert PagesManager.uses_pages_directory is True
    internals.end_pages_folder_mode()
    assert PagesManager.uses_pages_directory is False
    PagesManager(ENTRY)
    assert PagesManager.uses_pages_directory is False
    assert "if PagesManager.uses_pages_directory:" in inspect.getsource(script_runner.ScriptRunner)
    assert app_test.PagesManager is PagesManager  # tests/_apptest.py replaces it there


def test_a_superseded_run_cancels_its_long_computation(monkeypatch: pytest.MonkeyPatch) -> None:
    """The progress callback asks Streamlit's own request state: CONTINUE goes on, STOP or RERUN
    cancels (xai_core then raises Cancelled and the new run starts at once)."""
    requests = ScriptRequests()
    _in_run(monkeypatch, script_requests=requests)
    assert not internals.rerun_requested()
    requests.request_rerun(RerunData(query_string=""))
    assert internals.rerun_requested()
    stopped = ScriptRequests()
    stopped.request_stop()
    _in_run(monkeypatch, script_requests=stopped)
    assert internals.rerun_requested()
    monkeypatch.setattr(internals, "get_script_run_ctx", lambda **_: None)  # outside a script run
    assert not internals.rerun_requested()


def _default_and_cam() -> tuple[dict, str]:
    pages = {"h-start": {"page_script_hash": "h-start", "url_pathname": ""},
             "h-cam": {"page_script_hash": "h-cam", "url_pathname": "cam"}}
    return pages, "h-start"


def test_an_unknown_url_is_forgotten_so_the_default_page_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    """A URL opens a page by its name (the PagesManager's intended page name); a name no page has
    resolves to nothing, which makes st.navigation show "Page not found". Forgetting the name makes
    the same resolution fall back to the default page."""
    pages, start = _default_and_cam()
    manager = PagesManager(ENTRY)
    manager.set_script_intent("", "nope")
    assert manager.set_pages_and_resolve(dict(pages), start) is None  # Streamlit's "Page not found"
    _in_run(monkeypatch, pages_manager=manager)
    assert internals.requested_page_name() == "nope"
    assert internals.forget_unknown_page(["", "cam"]) == "nope"
    assert manager.set_pages_and_resolve(dict(pages), start)["page_script_hash"] == start

    manager.set_script_intent("", "cam")  # a known page is left alone
    assert internals.forget_unknown_page(["", "cam"]) is None
    assert manager.set_pages_and_resolve(dict(pages), start)["page_script_hash"] == "h-cam"
    manager.set_script_intent("h-cam", "")  # a run by page hash (links, reruns) is never redirected
    assert internals.forget_unknown_page(["", "cam"]) is None
    assert "send_page_not_found(ctx)" in inspect.getsource(navigation._navigation)


def test_a_helper_thread_attached_to_the_run_sees_its_context(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = SimpleNamespace(name="this run")
    monkeypatch.setattr(internals, "get_script_run_ctx", lambda **_: ctx)
    seen = []
    thread = internals.attach_to_this_run(threading.Thread(target=lambda: seen.append(get_script_run_ctx())))
    thread.start()
    thread.join()
    assert seen == [ctx]
