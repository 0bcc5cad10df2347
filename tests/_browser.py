"""Debian's headless Chromium through Playwright, and `streamlit run` on loopback, for the browser tests
(no browser download)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from _deps import unavailable

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]


def browser_unavailable(reason: str) -> None:
    """Skip a browser test that cannot run here, but fail it under CI=true: there a missing browser
    must not pass as a skipped test."""
    unavailable(reason)


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
            # scrollbars drawn as a person's browser draws them (Playwright hides them by default)
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"],
                                         ignore_default_args=["--hide-scrollbars"])
        except Exception as err:  # noqa: BLE001  (any launch failure means: no browser here)
            browser_unavailable(f"Chromium did not start: {str(err).splitlines()[0]}")
        try:
            yield browser
        finally:
            browser.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(timeout: float = 90, **env_vars: str) -> Iterator[str]:
    """`streamlit run streamlit_app.py` on a free loopback port (with `env_vars` in its environment);
    yields its URL, stops it after."""
    port = _free_port()
    env = dict(os.environ, XAI_OFFLINE="1", **env_vars)
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    log = tempfile.TemporaryFile()  # a file, not a pipe: a chatty server can never block on it
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"streamlit exited early:\n{log.read().decode(errors='replace')}")
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("streamlit did not become healthy in time")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
