"""What counts as revealing the server's file system (shared by the AppTest and the browser test)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def forbidden_strings(*extra: Path) -> set[str]:
    """Absolute paths (and their tell-tale parts) that must appear nowhere a visitor can read: the
    checkout, the Python environment, the home folder, torch hub's cache and `extra`."""
    paths = {ROOT, Path(sys.prefix), Path.home(), Path(torch.hub.get_dir()), *extra}
    return {str(p) for p in paths} | {"site-packages", "/root/", "/home/", "/tmp/"}


def leaks(text: str, forbidden: set[str]) -> list[str]:
    """The forbidden strings found in `text`, sorted (empty: nothing revealed)."""
    return sorted(s for s in forbidden if s in text)
