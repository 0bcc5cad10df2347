"""`dataset.original_file` (issue 27): a results folder's row gives back the photo it explained, read
again from the run's input, only when that file is inside the recorded input folder (no `..`, no
absolute path, no link out of it), still there and unchanged (its key, as `row_key` computes it);
otherwise None and a clause that says why, naming no path."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import IMAGES
from xai_core import dataset
from xai_core.dataset import original
from xai_core.dataset.records import content_hash, row_key

DIGEST = "0123456789abcdef"


def test_a_run_records_its_input_folder_and_each_row_gives_back_its_photo(lite, tmp_path) -> None:
    photos = tmp_path / "photos"
    (photos / "cats").mkdir(parents=True)
    shutil.copy(IMAGES / "cat.png", photos / "cats" / "cat.png")
    shutil.copy(IMAGES / "coffee.png", photos / "coffee.png")
    out = tmp_path / "out"
    dataset.run(lite, str(photos), str(out), ["gradcam"], layer="stage7")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input"] == "photos" and summary["input_root"] == str(photos.resolve())
    dataset.check_summary(summary)
    assert str(tmp_path) not in (out / "index.html").read_text()  # the report a visitor may see names no path
    rows = dataset.read_rows(out)
    assert sorted(r["path"] for r in rows) == ["cats/cat.png", "coffee.png"]
    for row in rows:
        assert dataset.original_file(out, row) == ((photos / row["path"]).read_bytes(), None)


def _folder(tmp_path: Path, root: "Path | bool | None" = None) -> Path:
    """A results folder whose summary.json records input folder `root` (tmp_path/in by default; False: none)."""
    out = tmp_path / "out"
    out.mkdir()
    summary = {"input": "in", "settings": {}}
    if root is not False:
        summary["input_root"] = str(root or tmp_path / "in")
    (out / "summary.json").write_text(json.dumps(summary))
    return out


def _row(path: str, data: bytes) -> dict:
    """The row a run writes for a file at `path` (relative to the input folder) with content `data`."""
    return {"path": path, "key": row_key(path, content_hash(data), DIGEST)}


@pytest.fixture
def photo(tmp_path) -> bytes:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    data = (IMAGES / "coffee.png").read_bytes()
    (tmp_path / "in" / "sub" / "coffee.png").write_bytes(data)
    return data


def test_the_unchanged_file_inside_the_input_folder_is_read(tmp_path, photo) -> None:
    assert dataset.original_file(_folder(tmp_path), _row("sub/coffee.png", photo)) == (photo, None)


@pytest.mark.parametrize("escape", ["../secret.png", "sub/../../secret.png", "ABSOLUTE"])
def test_a_row_path_that_leaves_the_input_folder_is_refused(tmp_path, photo, escape) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(photo)  # a real image, with the key the row claims: only the path is wrong
    path = str(secret) if escape == "ABSOLUTE" else escape
    assert dataset.original_file(_folder(tmp_path), _row(path, photo)) == (None, original.OUTSIDE)


def test_a_link_out_of_the_input_folder_is_refused(tmp_path, photo) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(photo)
    try:
        os.symlink(secret, tmp_path / "in" / "link.png")
    except (OSError, NotImplementedError):
        pytest.skip("no symbolic links here")
    assert dataset.original_file(_folder(tmp_path), _row("link.png", photo)) == (None, original.OUTSIDE)


def test_a_missing_file_is_not_read(tmp_path, photo) -> None:
    out = _folder(tmp_path)
    (tmp_path / "in" / "sub" / "coffee.png").unlink()
    assert dataset.original_file(out, _row("sub/coffee.png", photo)) == (None, original.UNREADABLE)


def test_a_changed_file_is_not_passed_off_as_the_one_explained(tmp_path, photo) -> None:
    out = _folder(tmp_path)
    (tmp_path / "in" / "sub" / "coffee.png").write_bytes((IMAGES / "cat.png").read_bytes())
    assert dataset.original_file(out, _row("sub/coffee.png", photo)) == (None, original.CHANGED)
    # the same content under another name is another row's file, not this one's
    (tmp_path / "in" / "sub" / "other.png").write_bytes(photo)
    row = dict(_row("sub/coffee.png", photo), path="sub/other.png")
    assert dataset.original_file(out, row) == (None, original.CHANGED)


@pytest.mark.parametrize("damage", ["no root", "relative root", "no summary", "bad key"])
def test_a_folder_that_does_not_say_where_its_input_is_reads_nothing(tmp_path, photo, damage) -> None:
    out = _folder(tmp_path, {"no root": False, "relative root": Path("in")}.get(damage))
    if damage == "no summary":
        (out / "summary.json").unlink()
    row = _row("sub/coffee.png", photo)
    if damage == "bad key":
        row["key"] = None
    data, why = dataset.original_file(out, row)
    assert data is None and why == original.NOT_RECORDED


def test_the_reasons_name_no_path() -> None:
    for why in (original.NOT_RECORDED, original.OUTSIDE, original.UNREADABLE, original.CHANGED):
        assert "/" not in why and "\\" not in why
