"""Every Streamlit internal the dashboard relies on, in one place (Streamlit has no public API for
these). tests/app/test_streamlit_internals.py pins each one, so a Streamlit upgrade that changes them
fails a test instead of silently changing the app.

- `end_pages_folder_mode`: `PagesManager.uses_pages_directory`, the switch of Streamlit's old
  pages-folder mode (a `pages/` folder beside the entry point, which the design card keeps);
- `rerun_requested`: the run's `ScriptRequests` state, to cancel a long computation as soon as the
  user changes a control or presses Stop;
- `forget_unknown_page`: the `PagesManager`'s intended page name, so a URL naming no page opens the
  default page instead of Streamlit's "Page not found" dialog;
- `attach_to_this_run`: `add_script_run_ctx`, so a helper thread may update an element (the
  progress bar) of the run that started it.
"""

from __future__ import annotations

import threading
from typing import Iterable, Optional

from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx


def end_pages_folder_mode() -> None:
    """Leave Streamlit's pages-folder mode (in which a deep link such as /cam runs pages/cam.py on its
    own, without the entry point). st.navigation ends it only once the entry point has run."""
    PagesManager.uses_pages_directory = False


def rerun_requested() -> bool:
    """True when this script run has been asked to stop or rerun (a changed control, Stop). Answers
    False, never cancel, outside a script run or if the internal ever changes."""
    ctx = get_script_run_ctx(suppress_warning=True)
    state = getattr(getattr(ctx, "script_requests", None), "_state", None)
    return getattr(state, "name", "CONTINUE") != "CONTINUE"


def requested_page_name() -> Optional[str]:
    """The URL path this run was asked to open by name (e.g. "nope" for /nope), or None."""
    ctx = get_script_run_ctx(suppress_warning=True)
    manager = getattr(ctx, "pages_manager", None)
    if manager is None or getattr(manager, "intended_page_script_hash", None):
        return None  # a run for a known page (by hash: links, reruns) is never redirected
    return getattr(manager, "intended_page_name", None) or None


def forget_unknown_page(url_paths: Iterable[str]) -> Optional[str]:
    """Call before st.navigation: when the URL names none of `url_paths` (e.g. /home or /nope),
    drop that name so st.navigation opens the default page (and the browser's address becomes the
    default page's) instead of showing "Page not found". Returns the name dropped, or None."""
    name = requested_page_name()
    if name is None or name in set(url_paths):
        return None
    get_script_run_ctx().pages_manager.set_script_intent("", "")
    return name


def attach_to_this_run(thread: threading.Thread) -> threading.Thread:
    """`thread` (not yet started), allowed to update this run's elements; returns it."""
    return add_script_run_ctx(thread, get_script_run_ctx())
