"""`read_ground_truth`: the reader for a ground truth path, chosen by what it is (a CSV, a COCO JSON,
a folder of PNG masks or of Pascal VOC XML files)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Union

from ..errors import InvalidGroundTruthError
from .formats import read_coco, read_voc_folder
from .truth import GroundTruths, read_csv_boxes, read_mask_folder


def read_ground_truth(path: Union[str, Path]) -> GroundTruths:
    """The ground truth in `path`, as `GroundTruths` {relative image path (POSIX): GroundTruth}: a CSV
    `path,x0,y0,x1,y1[,label]` or a COCO instances JSON (keys: the paths they give), a folder of
    Pascal VOC XML files or of PNG masks mirroring the input (keys: the files' relative paths). Look
    an image up with `.find(relative_path)`, which ignores suffixes. Raises `InvalidGroundTruthError` (naming
    the file) for anything it cannot read."""
    path = Path(path)
    if path.is_dir():
        suffixes = {p.suffix.lower() for p in path.rglob("*") if p.is_file()}
        if ".xml" in suffixes:
            return read_voc_folder(path)
        return read_mask_folder(path)
    if not path.is_file():
        raise InvalidGroundTruthError(f"The ground truth {path.name} is neither a file nor a folder; give a CSV, a "
                                      "COCO JSON, or a folder of masks or Pascal VOC XML files.")
    if path.suffix.lower() == ".json":
        return read_coco(path)
    if path.suffix.lower() in (".csv", ".txt"):
        return read_csv_boxes(path)
    raise InvalidGroundTruthError(f"The ground truth file {path.name} is neither a CSV (.csv) nor a COCO JSON "
                                  "(.json).")


def ground_truth_digest(path: Union[str, Path]) -> str:
    """16 hex digits of a hash of the ground truth's content: a file's bytes, or a folder's files
    (their relative paths and bytes, in order), so changed ground truth is told from the one
    scored before. Raises `InvalidGroundTruthError` when `path` is neither a file nor a folder."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
    elif path.is_file():
        files = [path]
    else:
        raise InvalidGroundTruthError(f"The ground truth {path.name} is neither a file nor a folder; give a CSV, a "
                                      "COCO JSON, or a folder of masks or Pascal VOC XML files.")
    try:
        for file in files:
            digest.update(file.relative_to(path).as_posix().encode() + b"\0" if file != path else b"\0")
            with file.open("rb") as stream:
                for chunk in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(chunk)
    except OSError as err:
        raise InvalidGroundTruthError(f"The ground truth {path.name} cannot be read ({type(err).__name__}); check "
                                      "that it is readable.") from None
    return digest.hexdigest()[:16]


__all__ = ["ground_truth_digest", "read_ground_truth"]
