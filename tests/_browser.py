"""Debian's headless Chromium through Playwright, for the browser tests (no browser download)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"


def browser_unavailable(reason: str) -> None:
    """Skip a browser test that cannot run here, but fail it under CI=true: there a missing browser
    must not pass as a skipped test."""
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"{reason} (CI=true: the browser tests must run)", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """Debian's headless Chromium through Playwright, or `browser_unavailable` when it cannot start."""
    if not Path(CHROMIUM).exists():
        browser_unavailable(f"{CHROMIUM} is missing: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        browser_unavailable("playwright is missing: pip install -r requirements-dev.txt")
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        except Exception as err:  # noqa: BLE001  (any launch failure means: no browser here)
            browser_unavailable(f"Chromium did not start: {str(err).splitlines()[0]}")
        try:
            yield browser
        finally:
            browser.close()
