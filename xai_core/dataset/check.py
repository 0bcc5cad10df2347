"""What a rerun trusts of a results folder: it checks the parts and the files on disk rather than
believe them. A part whose bytes changed since it was written (by hand), that cannot be read, or
that holds a value this package never writes (an unknown `pictures`, a bad key or raw-map place) is
set aside (renamed PART.aside, never deleted) and its files are explained again; a done row whose
picture, overlay or raw map is missing, or whose raw map file is too short or of the wrong shape,
is explained again too. One note says what was found."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from .settings import PICTURES
from .store import read_parts
from .writer import KEY_PATTERN, RAW_PATTERN, pictures_written

#: What a part set aside is renamed to: PART + this.
ASIDE = ".aside"


def trusted_rows(out: Path, methods: Sequence[str], digest: str) -> tuple[list[dict], set[str], list[str]]:
    """(the stored rows a rerun may trust, the keys of the rows of these settings, `digest`, that are
    not trusted because their pictures on disk are missing or damaged, the names the parts set aside
    now have). Sets aside the parts that cannot be trusted (see the module)."""
    rows: dict[str, dict] = {}
    aside = []
    for part, part_rows in read_parts(out):
        if part_rows is None or not all(_plausible(row) for row in part_rows):
            target = part.with_name(part.name + ASIDE)
            os.replace(part, target)
            aside.append(target.name)
            continue
        rows.update((row["key"], row) for row in part_rows)
    shapes: dict[Path, Optional[tuple]] = {}
    damaged = {key for key, row in rows.items() if key.endswith(f"-{digest}")
               and not _on_disk(Path(out) / "maps", row, methods, shapes)}
    return [row for key, row in rows.items() if key not in damaged], damaged, aside


def notes(aside: Sequence[str], damaged: int) -> tuple[str, ...]:
    """The notes of what `trusted_rows` found: the parts set aside, the files explained again
    because their pictures were missing or damaged (`damaged` of them still in the input)."""
    out = []
    if aside:
        names = ", ".join(aside[:3]) + (f" and {len(aside) - 3} more" if len(aside) > 3 else "")
        out.append(f"{len(aside)} part{'s' * (len(aside) != 1)} of the results changed since written or could not "
                   f"be read, so {'they were' if len(aside) != 1 else 'it was'} set aside (not deleted) as parts/"
                   f"{names} and {'their' if len(aside) != 1 else 'its'} files were explained again.")
    if damaged:
        many = damaged != 1
        out.append(f"{damaged} file{'s' * many} done before {'were' if many else 'was'} explained again because "
                   f"{'their' if many else 'its'} pictures or raw maps in maps/ were missing or damaged.")
    return tuple(out)


def _plausible(row: dict) -> bool:
    """Whether `row` holds only values this package writes (any row of a part changed by hand may not)."""
    level, stem, index = row.get("pictures"), row.get("maps_file"), row.get("maps_index")
    if not (isinstance(row.get("key"), str) and KEY_PATTERN.fullmatch(row["key"])) or level not in (None, *PICTURES) \
            or not isinstance(row.get("error"), (str, type(None))):
        return False
    if level in ("all", "maps") and not row.get("error"):
        return isinstance(stem, str) and bool(RAW_PATTERN.fullmatch(stem)) and isinstance(index, int) \
            and not isinstance(index, bool) and index >= 0
    return True


def _on_disk(maps: Path, row: dict, methods: Sequence[str], shapes: dict) -> bool:
    """Whether every file `row` says was written is in `maps`, its raw maps holding its index at
    its picture's size (`shapes`: each raw file's shape, read once)."""
    level, key = pictures_written(row), row["key"]
    if level == "none":
        return True
    size = _picture_size(maps / f"{key}.jpg")
    if size is None:
        return False
    if row.get("pictures") is None:  # the previous layout: KEY_METHOD.png and KEY.npz
        return (maps / f"{key}.npz").is_file() and all(
            (maps / f"{key}_{m}.png").is_file() or (maps / f"{key}_{m}.jpg").is_file() for m in methods)
    if level == "all" and not all((maps / f"{key}_{m}.jpg").is_file() for m in methods):
        return False
    for method in methods:
        path = maps / f"{row['maps_file']}.{method}.npy"
        if path not in shapes:
            shapes[path] = _raw_shape(path)
        shape = shapes[path]
        if shape is None or len(shape) != 3 or row["maps_index"] >= shape[0] or tuple(shape[1:]) != size:
            return False
    return True


def _picture_size(path: Path) -> Optional[tuple[int, int]]:
    """(height, width) of the picture at `path` (its header only), None when it cannot be read."""
    try:
        with Image.open(path) as picture:
            return picture.height, picture.width
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _raw_shape(path: Path) -> Optional[tuple]:
    """The shape of the raw maps' array at `path` (memory-mapped: its header only), None when it
    is missing, not an array file, or shorter than its header says."""
    try:
        return tuple(np.load(path, mmap_mode="r").shape)
    except (OSError, ValueError):
        return None


__all__ = ["ASIDE", "notes", "trusted_rows"]
