"""The file a results folder's row explained, read again from the run's input (`original_file`):
the photo itself, whose probabilities are the row's, rather than the results' picture of it (the
model's input, resized and saved as JPEG, whose probabilities differ slightly)."""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Optional

from .records import content_hash, row_key
from .writer import KEY_PATTERN

#: Why a row's original file is not read: clauses that complete "The original photo ...", no path.
NOT_RECORDED = "is not recorded in this results folder (made by an earlier version)"
OUTSIDE = "is not inside the run's input folder"
UNREADABLE = "is not readable on this server (moved or deleted since the run)"
CHANGED = "has changed since the run"


def original_file(folder: str | os.PathLike, row: dict) -> tuple[Optional[bytes], Optional[str]]:
    """(the bytes of the file `row` of results folder `folder` explained, None) when it is still
    there: inside the run's input folder (summary.json's `input_root`; the row's path relative,
    without `..`, and inside it with links resolved), readable, and with the path and content that
    give the row's key (`records.row_key`), so a changed file is never passed off as the one
    explained. Otherwise (None, why): a clause that completes "The original photo ...", naming no
    path (`NOT_RECORDED`, `OUTSIDE`, `UNREADABLE`, `CHANGED`). Raises nothing."""
    root, key, path = _input_root(Path(folder)), str(row.get("key")), row.get("path")
    if root is None or not KEY_PATTERN.fullmatch(key) or not isinstance(path, str) or not path:
        return None, NOT_RECORDED
    file = _inside(root, path)
    if file is None:
        return None, OUTSIDE
    try:
        data = file.read_bytes()
    except OSError:
        return None, UNREADABLE
    if row_key(path, content_hash(data), key.split("-", 1)[1]) != key:
        return None, CHANGED
    return data, None


def _input_root(folder: Path) -> Optional[Path]:
    """The run's input folder as summary.json records it (absolute), or None."""
    try:
        root = json.loads((folder / "summary.json").read_text(encoding="utf-8")).get("input_root")
    except (OSError, ValueError, AttributeError):
        return None
    return Path(root) if isinstance(root, str) and os.path.isabs(root) else None


def _inside(root: Path, path: str) -> Optional[Path]:
    """`root / path` with links resolved, if `path` is relative, has no `..` and stays inside `root`
    (resolved too); else None."""
    posix = PurePosixPath(path)
    if posix.is_absolute() or PureWindowsPath(path).drive or "\\" in path or "\0" in path or ".." in posix.parts:
        return None
    try:
        base = root.resolve()
        file = (base / posix).resolve()
    except (OSError, RuntimeError):  # a link loop
        return None
    return file if file.is_relative_to(base) and file != base else None


__all__ = ["CHANGED", "NOT_RECORDED", "OUTSIDE", "UNREADABLE", "original_file"]
