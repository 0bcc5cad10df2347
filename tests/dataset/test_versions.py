"""Results versions (issue 26): each row records the results version of the xai_core that computed
it; a rerun into a folder written with another version says so in one clause of its last line,
keeps those rows (marked by their `results_version`, counted in summary.json) and explains them
again only when asked (`--refresh`, `run(..., refresh=True)`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from _legacy_results import unhashed
from conftest import IMAGES
from xai_core import cli, dataset, versions

PHOTOS = [IMAGES / "cat.png", IMAGES / "coffee.png", IMAGES / "flower.jpg"]
COMMAND = ["batch", "--method", "gradcam", "--model", "efficientnet_lite0", "--batch-size", "2"]


@pytest.fixture
def written(lite, tmp_path) -> tuple[Path, Path]:
    """Three photos explained into a results folder by this version."""
    root, out = tmp_path / "in", tmp_path / "out"
    root.mkdir()
    for photo in PHOTOS:
        shutil.copy(photo, root / photo.name)
    result = dataset.run(lite, str(root), str(out), ["gradcam"], batch_size=2)
    assert result.explained == 3 and result.older == ()
    return root, out


def _versions(out: Path) -> tuple[list, dict]:
    rows = pq.read_table(out / "results.parquet").to_pylist()
    summary = json.loads((out / "summary.json").read_text())
    return [r["results_version"] for r in rows], summary["rows_by_results_version"]


def _batch(root: Path, out: Path, capsys, *extra: str) -> str:
    status = cli.main([*COMMAND, "--input", str(root), "--output", str(out), *extra])
    captured = capsys.readouterr()
    assert status == 0 and "Traceback" not in captured.err
    return captured.out.strip().splitlines()[-1]


def test_rows_record_the_results_version(written):
    _, out = written
    assert _versions(out) == ([versions.RESULTS_VERSION] * 3, {str(versions.RESULTS_VERSION): 3})
    assert json.loads((out / "summary.json").read_text())["results_version"] == versions.RESULTS_VERSION


def test_a_rerun_after_a_version_bump_keeps_the_old_rows_and_says_so(written, monkeypatch, capsys):
    """The folder was written by version V; the code is now V + 1: the rerun explains nothing, its
    last line says that 3 rows are of version V and how to refresh them, and the rows stay V's."""
    root, out = written
    old = versions.RESULTS_VERSION
    pictures = {p.name: p.read_bytes() for p in (out / "maps").iterdir()}
    monkeypatch.setattr(versions, "RESULTS_VERSION", old + 1)
    line = _batch(root, out, capsys)
    assert line.startswith("Nothing to do: all 3 files were done before with these settings")
    assert (f"3 rows kept from another results version (3 of results version {old}; this xai_core writes version "
            f"{old + 1}, whose maps or scores may differ): rerun with --refresh to explain them again") in line
    assert _versions(out) == ([old] * 3, {str(old): 3})
    assert json.loads((out / "summary.json").read_text())["results_version"] == old + 1
    assert {p.name: p.read_bytes() for p in (out / "maps").iterdir()} == pictures  # nothing written again

    line = _batch(root, out, capsys, "--refresh")
    assert line.startswith("Explained 3 files") and "3 of another results version were explained again (--refresh)" \
        in line and "kept from another results version" not in line
    assert _versions(out) == ([old + 1] * 3, {str(old + 1): 3})
    assert "results version" not in _batch(root, out, capsys, "--refresh")  # nothing left to refresh


def test_rows_written_before_versions_were_recorded_are_kept_unless_refreshed(lite, written, capsys):
    """A folder of an xai_core without results versions (no results_version column): its rows are
    kept and said to be from before versions were recorded; `refresh=True` explains them again."""
    root, out = written
    for part in [*(out / "parts").glob("part-*.parquet"), out / "results.parquet"]:
        pq.write_table(pq.read_table(part).drop_columns(["results_version"]), part)
        unhashed(part)  # as those versions named their parts (a hashed part changed since is set aside)
    again = dataset.run(lite, str(root), str(out), ["gradcam"], batch_size=2)
    assert (again.skipped, again.older) == (3, ((None, 3),))
    assert "3 rows kept from another results version (3 from before results versions were recorded;" in again.line()
    assert _versions(out) == ([None] * 3, {"unrecorded": 3})
    refreshed = dataset.run(lite, str(root), str(out), ["gradcam"], batch_size=2, refresh=True)
    assert (refreshed.explained, refreshed.skipped, refreshed.refreshed, refreshed.older) == (3, 0, 3, ())
    assert _versions(out) == ([versions.RESULTS_VERSION] * 3, {str(versions.RESULTS_VERSION): 3})
