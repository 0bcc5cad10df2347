"""A results folder's integrity (issue 26): one writer at a time (a lock; a second run stops at once
with one sentence naming the holder), runs of other settings never delete each other's pictures, a
rerun checks what is on disk (missing pictures and raw maps are written again, a part changed by hand
is set aside and its files explained again, no traceback), and summary.json and index.html are
written atomically (a full disk leaves the previous file whole, and one sentence)."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import xai_core
from conftest import IMAGES, ROOT
from xai_core import cli, dataset

PHOTOS = sorted(IMAGES.iterdir())


def _inputs(root: Path, count: int = 3) -> Path:
    root.mkdir()
    for photo in PHOTOS[:count]:
        shutil.copy(photo, root / photo.name)
    return root


def _rows(out: Path) -> list[dict]:
    return pq.read_table(out / "results.parquet").to_pylist()


def _missing_pictures(out: Path, methods: list[str]) -> list[str]:
    """The files that results.parquet's rows say were written and that are not in maps/."""
    missing = []
    for row in _rows(out):
        names = [f"{row['key']}.jpg"] + [f"{row['key']}_{m}.jpg" for m in methods] * (row["pictures"] == "all")
        names += [f"{row['maps_file']}.{m}.npy" for m in methods]
        missing += [n for n in names if not (out / "maps" / n).is_file()]
    return missing


# --- 1. one writer at a time ---------------------------------------------------------------------

def test_a_second_run_on_a_folder_in_use_stops_at_once_naming_the_holder(lite, tmp_path):
    """This process runs a job that waits in its first batch; the batch command, in another process,
    on the same folder says in one sentence that it is in use, by this process, and exits non-zero."""
    root, out = _inputs(tmp_path / "in", 2), tmp_path / "out"
    waiting, release = threading.Event(), threading.Event()

    def wait_in_the_first_batch(done, total):
        waiting.set()
        assert release.wait(300)

    job = threading.Thread(target=dataset.run, args=(lite, str(root), str(out), ["gradcam"]),
                           kwargs=dict(progress=wait_in_the_first_batch))
    job.start()
    try:
        assert waiting.wait(300)
        started = time.perf_counter()
        second = subprocess.run([sys.executable, "-m", "xai_core", "batch", "--input", str(root), "--output", str(out),
                                 "--method", "gradcam", "--model", "efficientnet_lite0"], cwd=ROOT,
                                capture_output=True, text=True, timeout=300,
                                env={**os.environ, "XAI_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
        seconds = time.perf_counter() - started
    finally:
        release.set()
        job.join()
    assert second.returncode != 0, second.stdout
    assert second.stderr.startswith("error: The results folder is in use by another batch run "
                                    f"(process {os.getpid()} on host ")
    assert len(second.stderr.strip().splitlines()) == 1 and "Traceback" not in second.stderr
    assert all(f"-{os.getpid()}-" in p.name for p in (out / "parts").glob("part-*"))  # none of the second's
    assert len(_rows(out)) == 2 and seconds < 120  # the first run finished alone; the second did no work
    assert json.loads((out / ".lock").read_text())["pid"] == os.getpid()
    again = dataset.run(lite, str(root), str(out), ["gradcam"])  # the lock was released at the end
    assert again.skipped == 2


def test_a_lock_held_by_this_process_refuses_a_run_here_too(lite, tmp_path):
    root, out = _inputs(tmp_path / "in", 1), tmp_path / "out"
    dataset.run(lite, str(root), str(out), ["gradcam"])
    parts = sorted(p.name for p in (out / "parts").iterdir())
    with dataset.lock.hold_folder(out):
        with pytest.raises(xai_core.errors.ResultsInUseError, match=f"in use by another batch run .process {os.getpid()}"):
            dataset.run(lite, str(root), str(out), ["hirescam"])
    assert sorted(p.name for p in (out / "parts").iterdir()) == parts  # nothing was written


def test_a_file_system_without_locks_runs_and_says_so(lite, tmp_path, monkeypatch):
    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(dataset.lock.fcntl, "flock", no_locks)
    result = dataset.run(lite, str(_inputs(tmp_path / "in", 1)), str(tmp_path / "out"), ["gradcam"])
    assert result.explained == 1 and result.notes == (dataset.lock.UNLOCKED,)


def test_temporary_names_are_unique_to_the_process_and_the_call(tmp_path):
    names = {xai_core._files.temporary_name(tmp_path / "summary.json") for _ in range(100)}
    assert len(names) == 100 and all(f".summary.json.{os.getpid()}-" in n.name for n in names)


def test_what_a_killed_run_left_half_written_is_removed_and_nothing_else(lite, tmp_path):
    root, out = _inputs(tmp_path / "in", 1), tmp_path / "out"
    dataset.run(lite, str(root), str(out), ["gradcam"])
    left = [out / ".summary.json.999-0123456789ab.tmp", out / ".results.parquet.tmp",
            out / "parts" / ".part-1-999-0123456789abcdef.parquet.999-0123456789ab.tmp",
            out / "maps" / f".raw-{'0' * 24}.gradcam.npy.999-0123456789ab.tmp"]
    kept = [out / ".notes.tmp", out / "maps" / "notes.txt"]  # not ours
    for path in left + kept:
        path.write_bytes(b"half")
    assert dataset.run(lite, str(root), str(out), ["gradcam"]).pruned == 0  # no picture of a file gone
    assert [p.exists() for p in left + kept] == [False] * len(left) + [True] * len(kept)


# --- 2. settings do not delete each other's pictures ---------------------------------------------

def test_runs_of_other_settings_keep_each_others_pictures(lite, tmp_path):
    """Grad-CAM, then HiResCAM, then Grad-CAM into one folder: after each run every row's pictures
    are there, and no run says it removed pictures; a file that leaves the input loses its pictures
    (of both settings), and the count says so."""
    root, out = _inputs(tmp_path / "in"), tmp_path / "out"
    lines = []
    for method in ("gradcam", "hirescam", "gradcam"):
        result = dataset.run(lite, str(root), str(out), [method], batch_size=2)
        lines.append(result.line())
        assert result.pruned == 0 and "removed" not in result.line()
        assert _missing_pictures(out, [method]) == [] and len(_rows(out)) == 3
    assert lines[0].startswith("Explained 3 files") and lines[1].startswith("Explained 3 files")
    assert lines[2].startswith("Nothing to do: all 3 files were done before")
    before = {p.name for p in (out / "maps").iterdir()}
    gone = next(r for r in _rows(out) if r["path"] == PHOTOS[0].name)
    (root / PHOTOS[0].name).unlink()
    result = dataset.run(lite, str(root), str(out), ["hirescam"], batch_size=2)
    removed = before - {p.name for p in (out / "maps").iterdir()}
    assert removed and all(not n.startswith(gone["key"][:32]) for n in (p.name for p in (out / "maps").iterdir()))
    assert result.pruned == len(removed) and f"removed {len(removed)} pictures of files no longer" in result.line()
    assert _missing_pictures(out, ["hirescam"]) == []
    assert dataset.run(lite, str(root), str(out), ["gradcam"], batch_size=2).line().startswith("Nothing to do")
    assert _missing_pictures(out, ["gradcam"]) == []


# --- 3. a rerun checks what is on disk -----------------------------------------------------------

@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Three photos explained with Grad-CAM twice: with every picture ("all") and with "maps"."""
    base = tmp_path_factory.mktemp("checked")
    root = _inputs(base / "in")
    handle = xai_core.load_model("efficientnet_lite0", device="cpu")
    for level in ("all", "maps"):
        dataset.run(handle, str(root), str(base / level), ["gradcam"], pictures=level, batch_size=2)
    return base, root, handle


def _copy(folders, level: str, tmp_path: Path) -> Path:
    shutil.copytree(folders[0] / level, tmp_path / "out")
    return tmp_path / "out"


def _rerun(folders, out: Path, level: str = "all"):
    _, root, handle = folders
    return dataset.run(handle, str(root), str(out), ["gradcam"], pictures=level, batch_size=2)


@pytest.mark.parametrize("lost", ["overlay", "picture", "raw"])
def test_a_deleted_picture_or_raw_map_is_noticed_and_written_again(folders, tmp_path, lost):
    out = _copy(folders, "all", tmp_path)
    row = next(r for r in _rows(out) if r["maps_index"] == 1)  # a raw file shared with one other row
    name = {"overlay": f"{row['key']}_gradcam.jpg", "picture": f"{row['key']}.jpg",
            "raw": f"{row['maps_file']}.gradcam.npy"}[lost]
    (out / "maps" / name).unlink()
    result = _rerun(folders, out)
    again = 2 if lost == "raw" else 1
    assert (result.explained, result.skipped) == (3, 3 - again)
    assert result.notes == (f"{again} file{'s' * (again > 1)} done before {'were' if again > 1 else 'was'} explained "
                            f"again because {'their' if again > 1 else 'its'} pictures or raw maps in maps/ were "
                            "missing or damaged.",)
    assert _missing_pictures(out, ["gradcam"]) == []
    assert _rerun(folders, out).line().startswith("Nothing to do") and _missing_pictures(out, ["gradcam"]) == []


def _edit_part(out: Path, change, *, checksum: bool = True) -> Path:
    """Rewrite the part holding the first row with `change(rows)` applied, as a hand would (with
    pyarrow); `checksum` False names it as the previous version did (no hash of its bytes)."""
    part = sorted((out / "parts").glob("part-*.parquet"))[0]
    table = pq.read_table(part)
    rows = table.to_pylist()
    change(rows)
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), part)
    if not checksum:
        part = part.rename(part.with_name("-".join(part.name.split("-")[:3]) + ".parquet"))
    return part


def test_a_part_changed_by_hand_is_set_aside_and_its_files_explained_again(folders, tmp_path, capsys):
    out = _copy(folders, "all", tmp_path)
    truth = {r["path"]: r["label"] for r in _rows(out)}

    def relabel(rows):
        for row in rows:
            row["label"] = "edited by hand"

    part = _edit_part(out, relabel)
    status = cli.main(["batch", "--input", str(folders[1]), "--output", str(out), "--method", "gradcam",
                       "--model", "efficientnet_lite0", "--batch-size", "2"])
    stdout, stderr = capsys.readouterr()
    # the part held 2 of the 3 rows: those 2 were explained again, the third skipped
    assert status == 0 and stdout.strip().startswith("Explained 2 files; 1 already done were skipped")
    notes = [line for line in stderr.splitlines() if line.startswith("note:")]
    assert notes == [f"note: 1 part of the results changed since written or could not be read, so it was set aside "
                     f"(not deleted) as parts/{part.name}.aside and its files were explained again."]
    assert not part.exists() and part.with_name(part.name + ".aside").is_file()
    assert {r["path"]: r["label"] for r in _rows(out)} == truth and "edited by hand" not in (out / "index.html").read_text()


@pytest.mark.parametrize("damage, checksum, skipped", [
    ("unknown pictures value", True, 1), ("unknown pictures value", False, 1),  # the part is set aside
    ("maps_index past its file", True, 1),  # set aside: its bytes changed
    ("maps_index past its file", False, 2),  # a previous version's part: that row is explained again
    ("raw map of the wrong shape", True, 1),  # both rows of the raw file are explained again
    ("raw map of another size", True, 1),
])
def test_a_damaged_part_or_raw_map_is_redone_not_a_traceback(folders, tmp_path, capsys, damage, checksum, skipped):
    """The three cases that crashed a rerun with a traceback, in a results folder written with
    "maps" (the report reads the raw maps to draw them). The first part holds the first batch's two
    rows, which share a raw file."""
    out = _copy(folders, "maps", tmp_path)
    if damage == "unknown pictures value":
        _edit_part(out, lambda rows: rows[0].update(pictures="some"), checksum=checksum)
    elif damage == "maps_index past its file":
        _edit_part(out, lambda rows: rows[0].update(maps_index=99), checksum=checksum)
    else:
        part = sorted((out / "parts").glob("part-*.parquet"))[0]
        stem = pq.read_table(part).to_pylist()[0]["maps_file"]
        wrong = np.zeros(10 if damage == "raw map of the wrong shape" else (2, 5, 5), np.float16)
        np.save(out / "maps" / f"{stem}.gradcam.npy", wrong)
    status = cli.main(["batch", "--input", str(folders[1]), "--output", str(out), "--method", "gradcam",
                       "--model", "efficientnet_lite0", "--batch-size", "2", "--pictures", "maps"])
    stdout, stderr = capsys.readouterr()
    assert status == 0 and "Traceback" not in stderr and stdout.strip().startswith(f"Explained {3 - skipped} file")
    notes = [line for line in stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "explained again" in notes[0]
    assert f"{skipped} already done were skipped" in stdout
    assert all(r["pictures"] == "maps" for r in _rows(out))
    for row in _rows(out):
        assert dataset.read_map(out, row, "gradcam").shape == (224, 224)
        assert dataset.read_picture(out, row, "gradcam") is not None
    assert cli.main(["batch", "--input", str(folders[1]), "--output", str(out), "--method", "gradcam",
                     "--model", "efficientnet_lite0", "--pictures", "maps"]) == 0
    assert capsys.readouterr().out.strip().startswith("Nothing to do")


# --- 4. atomic writes ----------------------------------------------------------------------------

class _FullDisk:
    """A file whose disk fills halfway through a write."""

    def __init__(self, file):
        self._file = file

    def write(self, data):
        self._file.write(data[:len(data) // 2])
        self._file.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()


@pytest.mark.parametrize("name", ["summary.json", "index.html"])
def test_a_disk_that_fills_leaves_the_previous_file_whole_and_one_sentence(lite, tmp_path, monkeypatch, capsys, name):
    root, out = _inputs(tmp_path / "in", 2), tmp_path / "out"
    command = ["batch", "--input", str(root), "--output", str(out), "--method", "gradcam", "--model",
               "efficientnet_lite0"]
    assert cli.main(command) == 0
    capsys.readouterr()
    before = (out / name).read_bytes()
    real_open = io.open

    def open_on_a_full_disk(file, mode="r", *args, **kwargs):
        opened = real_open(file, mode, *args, **kwargs)
        return _FullDisk(opened) if name in os.path.basename(str(file)) and "w" in mode else opened

    monkeypatch.setattr(io, "open", open_on_a_full_disk)
    monkeypatch.setattr("builtins.open", open_on_a_full_disk)
    (root / PHOTOS[0].name).unlink()  # the new summary and report would differ
    status = cli.main(command)
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert status == 1 and err.strip().splitlines()[-1] == (
        "error: The results could not be written (OSError: No space left on device); free some space or give "
        "--output a writable folder, then rerun the same command to go on.")
    assert "Traceback" not in err
    assert (out / name).read_bytes() == before  # the previous complete file
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    json.loads((out / "summary.json").read_text())
