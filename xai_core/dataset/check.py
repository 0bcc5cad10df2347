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
from .writer import B_SUFFIX, KEY_PATTERN, RAW_PATTERN, pictures_written

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
    disk = _Disk(Path(out) / "maps")
    damaged = {key for key, row in rows.items() if key.endswith(f"-{digest}") and not disk.holds(row, methods)}
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


class _Disk:
    """The files of a results folder's maps/, listed once: whether a row's files are there, each
    raw file's shape read once (its header) and compared once with the size of a picture it maps."""

    def __init__(self, maps: Path):
        self.maps = maps
        try:
            self.names = set(os.listdir(maps))
        except OSError:
            self.names = set()
        self.shapes: dict[str, Optional[tuple]] = {}  # raw file name -> its shape, None when unusable

    def holds(self, row: dict, methods: Sequence[str]) -> bool:
        """Whether every file `row` says was written is there, its raw maps holding its index, at
        the size of its picture."""
        level, key = pictures_written(row), row["key"]
        if level == "none":
            return True
        if f"{key}.jpg" not in self.names:
            return False
        if row.get("pictures") is None:  # the previous layout: KEY_METHOD.png and KEY.npz
            return f"{key}.npz" in self.names and all(
                f"{key}_{m}.png" in self.names or f"{key}_{m}.jpg" in self.names for m in methods)
        if level == "all" and not all(f"{key}_{m}.jpg" in self.names for m in methods):
            return False
        if row.get("b_label") is not None and f"{key}{B_SUFFIX}.jpg" not in self.names:
            return False  # a run against a model B: its picture too (its maps are in their own raw files)
        for method in methods:
            shape = self._shape(f"{row['maps_file']}.{method}.npy", key)
            if shape is None or row["maps_index"] >= shape[0]:
                return False
        return True

    def _shape(self, name: str, key: str) -> Optional[tuple]:
        """The shape [N, H, W] of raw file `name` when it is one and its maps have the size of row
        `key`'s picture (every row of a raw file has pictures of one size); else None."""
        if name not in self.shapes:
            shape = _raw_shape(self.maps / name) if name in self.names else None
            fits = shape is not None and len(shape) == 3 and shape[1:] == _picture_size(self.maps / f"{key}.jpg")
            self.shapes[name] = shape if fits else None
        return self.shapes[name]


def _picture_size(path: Path) -> Optional[tuple[int, int]]:
    """(height, width) of the picture at `path` (its header only), None when it cannot be read."""
    try:
        with Image.open(path) as picture:
            return picture.height, picture.width
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _raw_shape(path: Path) -> Optional[tuple]:
    """The shape of the raw maps' array at `path` (memory-mapped: its header only), None when it
    is not an array file or is shorter than its header says."""
    try:
        return tuple(np.load(path, mmap_mode="r").shape)
    except (OSError, ValueError):
        return None


__all__ = ["ASIDE", "notes", "trusted_rows"]
