"""Ground truth as read from files: `GroundTruth` per image (boxes with optional labels, COCO
polygons or RLE, or a mask file), keyed by the image's relative path (`GroundTruths`); the readers
of a mask folder and of a CSV (COCO and Pascal VOC: `formats.py`; `read.py` picks the reader)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Iterator, Mapping, Optional, Union

from ..errors import InvalidGroundTruthError


@dataclass(frozen=True)
class Box:
    """A box in the original image's pixels: left and top inclusive, right and bottom exclusive
    (Pillow's crop box; a COCO box is (x, y, x + w, y + h)), with an optional class label."""

    x0: float
    y0: float
    x1: float
    y1: float
    label: Optional[str] = None

    @property
    def empty(self) -> bool:
        return not (self.x1 > self.x0 and self.y1 > self.y0)

    def clipped(self, size: tuple[int, int]) -> "Box":
        """The box clipped to an image of `size` (width, height) (maybe `empty`)."""
        w, h = size
        return replace(self, x0=min(max(self.x0, 0.0), w), y0=min(max(self.y0, 0.0), h),
                       x1=max(min(self.x1, w), 0.0), y1=max(min(self.y1, h), 0.0))


@dataclass(frozen=True)
class GroundTruth:
    """One image's object: the union of its `boxes`, `polygons` (COCO: flat x, y lists in the
    original's pixels), `rles` (COCO run-length masks, decoded with pycocotools) and `mask` (a mask
    file: any size, stretched over the image; > 0 is the object). `size`: (width, height) of the
    image the ground truth was drawn on, where the file says (COCO, VOC); `source`: the file it came
    from; `notes`: sentences about what was done while reading it (refused boxes...); `labels`: the
    object's class names where the file gives them (boxes' labels, COCO categories), in order."""

    boxes: tuple[Box, ...] = ()
    polygons: tuple[tuple[float, ...], ...] = ()
    rles: tuple = ()
    mask: Optional[Path] = None
    size: Optional[tuple[int, int]] = None
    source: str = ""
    notes: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when it holds no box, polygon, RLE or mask file."""
        return not (self.boxes or self.polygons or self.rles or self.mask)

    def merged(self, other: "GroundTruth") -> "GroundTruth":
        """The union of two ground truths of one image (duplicate boxes and labels once)."""
        return GroundTruth(tuple(dict.fromkeys(self.boxes + other.boxes)), self.polygons + other.polygons,
                           self.rles + other.rles, self.mask or other.mask, self.size or other.size,
                           self.source or other.source, self.notes + other.notes,
                           tuple(dict.fromkeys(self.labels + other.labels)))


class GroundTruths(Mapping[str, GroundTruth]):
    """What a reader returns: a read-only mapping {relative image path (POSIX): GroundTruth}, and
    `find` to look an image up by its own relative path (whatever its suffix)."""

    def __init__(self, entries: Mapping[str, GroundTruth]) -> None:
        self._entries = dict(entries)
        self._stems: dict[str, str] = {}
        for key in self._entries:  # built once: a lookup per image stays O(1) at any dataset size
            self._stems.setdefault(PurePosixPath(key).with_suffix("").as_posix(), key)

    def __getitem__(self, key: str) -> GroundTruth:
        return self._entries[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"GroundTruths({len(self)} images)"

    def find(self, relative: Union[str, Path]) -> Optional[GroundTruth]:
        """The ground truth of the image at `relative` (a path relative to the input folder): the
        entry of that path, else the one of the same path with another suffix (a mask `a/b.png` or
        an annotation `a/b.xml` for the image `a/b.jpg`), else None."""
        key = PurePosixPath(Path(relative).as_posix())
        if key.as_posix() in self._entries:
            return self._entries[key.as_posix()]
        found = self._stems.get(key.with_suffix("").as_posix())
        return None if found is None else self._entries[found]


def read_mask_folder(folder: Union[str, Path]) -> GroundTruths:
    """{relative path of each PNG under `folder`: GroundTruth(mask=its path)}. Raises
    `InvalidGroundTruthError` when the folder holds no PNG."""
    folder = Path(folder)
    masks = sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".png" and p.is_file())
    if not masks:
        raise InvalidGroundTruthError(f"The mask folder {folder.name} holds no PNG masks; give one PNG per image, "
                                      "mirroring the input's relative paths.")
    return GroundTruths({p.relative_to(folder).as_posix(): GroundTruth(mask=p, source=p.name) for p in masks})


def read_csv_boxes(path: Union[str, Path]) -> GroundTruths:
    """The boxes of a CSV `path,x0,y0,x1,y1[,label]` (an optional header row; pixels of the original
    image), several rows of one image united. A box of no area is refused with a note on its image.
    Raises `InvalidGroundTruthError` naming the file and line of a malformed row."""
    path = Path(path)
    truths: dict[str, GroundTruth] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            for number, row in enumerate(csv.reader(stream), start=1):
                if not row or not "".join(row).strip() or (number == 1 and _is_header(row)):
                    continue
                key, box = _csv_box(row, path.name, number)
                truth = GroundTruth(source=path.name)
                if box.empty:
                    truth = replace(truth, notes=(f"{path.name} line {number}: the box has no area and was left "
                                                  "out.",))
                else:
                    truth = replace(truth, boxes=(box,), labels=(box.label,) if box.label else ())
                truths[key] = truths[key].merged(truth) if key in truths else truth
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InvalidGroundTruthError(f"The ground truth file {path.name} cannot be read as CSV text "
                                      f"({type(err).__name__}).") from None
    if not truths:
        raise InvalidGroundTruthError(f"The ground truth file {path.name} holds no boxes; write rows "
                                      "path,x0,y0,x1,y1[,label].")
    return GroundTruths(truths)


def _is_header(row: list[str]) -> bool:
    return len(row) >= 5 and _finite(row[1]) is None


def _csv_box(row: list[str], name: str, number: int) -> tuple[str, Box]:
    cells = [c.strip() for c in row]
    numbers = [_finite(c) for c in cells[1:5]]
    if len(cells) not in (5, 6) or not cells[0] or any(n is None for n in numbers):
        raise InvalidGroundTruthError(f"{name} line {number} is not path,x0,y0,x1,y1[,label] with four numbers; "
                                      "fix that row.")
    key = PurePosixPath(Path(cells[0]).as_posix()).as_posix().removeprefix("./")
    label = cells[5] if len(cells) == 6 and cells[5] else None
    return key, Box(*numbers, label=label)


def _finite(value) -> Optional[float]:
    """`value` as a finite float, or None (the readers' and `localise`'s check of every number)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


__all__ = ["Box", "GroundTruth", "GroundTruths", "read_csv_boxes", "read_mask_folder"]
