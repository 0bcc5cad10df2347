"""A row belongs to its file (issue 18): identical files in two folders are two rows, a renamed or
moved file is reported under its new path and label, identical content is never explained twice
(its results and pictures are copied), the pictures of rows that are gone are removed, and the
settings are keyed by the model's fingerprint (a retrained checkpoint at the same path runs again;
a first download and a later cached load resume each other). A copy counts once in the summary, and
the last line says what the run did (issue 27)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

import xai_core
from conftest import IMAGES
from xai_core import cli, dataset
from xai_core.dataset import job

PHOTOS = sorted(IMAGES.iterdir())


def _rows(out: Path) -> list[dict]:
    return pq.read_table(out / "results.parquet").to_pylist()


@pytest.fixture
def counted(monkeypatch):
    """How many images the job explained (the calls into the per-batch function)."""
    seen: list[int] = []
    real = job.compute_batch

    def spy(handle, records, settings):
        seen.append(len(records))
        return real(handle, records, settings)

    monkeypatch.setattr(job, "compute_batch", spy)
    return seen


def _pictures(out: Path, key: str) -> list[str]:
    return sorted(p.name[len(key):] for p in (out / "maps").glob(f"{key}*"))


def _raw(out: Path) -> list[str]:
    """The raw maps' files (one per batch and method)."""
    return sorted(p.name for p in (out / "maps").glob("raw-*"))


def test_identical_files_in_two_classes_are_two_rows_explained_once(lite, tmp_path, counted):
    root = tmp_path / "in"
    for folder in ("cat", "dog"):
        (root / folder).mkdir(parents=True)
    shutil.copy(PHOTOS[1], root / "cat" / "a.png")
    shutil.copy(PHOTOS[1], root / "dog" / "b.png")
    result = dataset.run(lite, str(root), str(tmp_path / "out"), ["gradcam"])
    rows = _rows(tmp_path / "out")
    assert [(r["path"], r["true_label"]) for r in rows] == [("cat/a.png", "cat"), ("dog/b.png", "dog")]
    assert rows[0]["key"] != rows[1]["key"] and rows[0]["content_key"] == rows[1]["content_key"]
    assert sum(counted) == 1 and result.copied == 1 and result.explained == 2
    assert rows[0]["label"] == rows[1]["label"] and rows[0]["gradcam_seconds"] == rows[1]["gradcam_seconds"]
    for row in rows:  # each row has its own pictures; the copy names the raw maps of the row it copies
        assert _pictures(tmp_path / "out", row["key"]) == [".jpg", "_gradcam.jpg"]
    assert rows[0]["maps_file"] == rows[1]["maps_file"]
    assert _raw(tmp_path / "out") == [f"{rows[0]['maps_file']}.gradcam.npy"]
    np.testing.assert_array_equal(dataset.read_map(tmp_path / "out", rows[0], "gradcam"),
                                  dataset.read_map(tmp_path / "out", rows[1], "gradcam"))


def test_a_renamed_or_moved_file_keeps_its_results_under_its_new_path_and_label(lite, tmp_path, counted):
    root, out = tmp_path / "in", tmp_path / "out"
    for folder in ("cat", "dog"):
        (root / folder).mkdir(parents=True)
    shutil.copy(PHOTOS[1], root / "cat" / "x.png")
    shutil.copy(PHOTOS[2], root / "dog" / "y.png")
    dataset.run(lite, str(root), str(out), ["gradcam"])
    before = {r["path"]: r for r in _rows(out)}
    os.rename(root / "cat" / "x.png", root / "dog" / "x_renamed.png")  # moved to another class, renamed
    counted.clear()
    again = dataset.run(lite, str(root), str(out), ["gradcam"])
    rows = _rows(out)
    assert [(r["path"], r["true_label"]) for r in rows] == [("dog/x_renamed.png", "dog"), ("dog/y.png", "dog")]
    assert counted == [] and again.copied == 1 and again.skipped == 1  # nothing explained again
    assert rows[0]["label"] == before["cat/x.png"]["label"]
    summary = (out / "summary.json").read_text()
    assert "cat/x.png" not in (out / "index.html").read_text() and '"files": 2' in summary
    # the old row's pictures are gone, the new row has its own
    assert _pictures(out, before["cat/x.png"]["key"]) == []
    assert _pictures(out, rows[0]["key"]) == [".jpg", "_gradcam.jpg"]


def test_a_changed_files_old_pictures_are_removed(lite, tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    root.mkdir()
    shutil.copy(PHOTOS[1], root / "x.png")
    dataset.run(lite, str(root), str(out), ["gradcam"])
    (old,) = _rows(out)
    shutil.copy(PHOTOS[2], root / "x.png")  # new content, same name
    result = dataset.run(lite, str(root), str(out), ["gradcam"])
    (new,) = _rows(out)
    assert new["key"] != old["key"] and result.pruned == 3 and "removed 3 pictures" in result.line()
    assert sorted(p.name for p in (out / "maps").iterdir()) == sorted(
        [new["key"] + end for end in (".jpg", "_gradcam.jpg")] + [f"{new['maps_file']}.gradcam.npy"])
    assert old["maps_file"] != new["maps_file"]  # the old row's raw file went with it


def test_the_last_line_says_what_this_run_did(lite, tmp_path, counted, capsys):
    """A first run, a rerun after a rename (nothing explained: the renamed file reused the results of
    its content), a new file, a file that is refused, and a rerun with nothing to do."""
    root, out = tmp_path / "in", (tmp_path / "out").resolve()
    root.mkdir()
    shutil.copy(PHOTOS[1], root / "x.png")
    shutil.copy(PHOTOS[2], root / "y.png")
    assert dataset.run(lite, str(root), str(out), ["gradcam"]).line() == f"Explained 2 files; results in {out}."
    os.rename(root / "x.png", root / "z.png")
    counted.clear()
    assert cli.main(["batch", "--input", str(root), "--output", str(out), "--method", "gradcam",
                     "--model", "efficientnet_lite0"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert counted == [] and last.startswith("Explained 0 files; 1 already done were skipped; ")
    assert "; 1 renamed or copied file reused the results of the same content; " in last
    assert last.endswith(f"; results of all 2 files (2 explained) in {out}.") and "refused" not in last
    shutil.copy(PHOTOS[3], root / "w.png")  # a new file
    line = dataset.run(lite, str(root), str(out), ["gradcam"]).line()
    assert sum(counted) == 1 and line.startswith("Explained 1 file; 2 already done were skipped; ")
    assert line.endswith(f"; results of all 3 files (3 explained) in {out}.") and "reused" not in line
    (root / "v.png").write_bytes(b"not a picture")
    line = dataset.run(lite, str(root), str(out), ["gradcam"]).line()
    assert line.startswith("Explained 0 files, refused 1 (see the error column of results.parquet); 3 already done")
    assert line.endswith(f"; results of all 4 files (3 explained, 1 not) in {out}.")
    line = dataset.run(lite, str(root), str(out), ["gradcam"]).line()
    assert line == (f"Nothing to do: all 4 files were done before with these settings (3 explained, 1 not); "
                    f"results in {out}.")


def test_a_copy_counts_once_in_the_summary_and_the_report(lite, tmp_path):
    """Two photos and a byte-identical copy of one: every mean and win rate counts 2 images, the
    summary and the report say that 2 files shared 1 content, and the line that 1 reused results."""
    root, out = tmp_path / "in", (tmp_path / "out").resolve()
    root.mkdir()
    for name, photo in (("a.png", PHOTOS[1]), ("b.png", PHOTOS[2]), ("c.png", PHOTOS[1])):
        shutil.copy(photo, root / name)
    line = dataset.run(lite, str(root), str(out), ["gradcam"], evaluate=True, steps=2, pictures="none").line()
    assert line.startswith("Explained 2 files; 1 renamed or copied file reused the results of the same content; ")
    assert line.endswith(f"; results of all 3 files (3 explained) in {out}.")
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["files"], summary["explained"]) == (3, 3)
    assert summary["duplicates"] == {"files": 2, "contents": 1}
    entries = [summary["seconds_per_image"]] + [v for e in summary["methods"].values() for v in e.values()
                                                if isinstance(v, dict)]
    assert len(entries) == 11 and all(e["n"] == 2 for e in entries)
    assert summary["duplicates_note"] in (out / "index.html").read_text()


def _checkpoint(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    model = xai_core.load_model("torchvision:resnet18", weights=None, device="cpu", labels=["a", "b", "c"]).module
    torch.save(model.state_dict(), path)
    return path


def test_a_retrained_checkpoint_at_the_same_path_runs_again(tmp_path, counted):
    root = tmp_path / "in"
    root.mkdir()
    shutil.copy(PHOTOS[1], root / "x.png")
    weights, labels = _checkpoint(tmp_path / "best.pt", 0), ["a", "b", "c"]
    first = xai_core.load_model("torchvision:resnet18", weights=str(weights), labels=labels, device="cpu",
                                input_size=64)
    dataset.run(first, str(root), str(tmp_path / "out"), ["gradcam"])
    same = xai_core.load_model("torchvision:resnet18", weights=str(weights), labels=labels, device="cpu",
                               input_size=64)
    assert same.fingerprint == first.fingerprint
    assert dataset.run(same, str(root), str(tmp_path / "out"), ["gradcam"]).skipped == 1
    _checkpoint(weights, 1)  # retrained: the same path, other weights
    retrained = xai_core.load_model("torchvision:resnet18", weights=str(weights), labels=labels, device="cpu",
                                    input_size=64)
    assert retrained.weights_source == first.weights_source and retrained.fingerprint != first.fingerprint
    counted.clear()
    again = dataset.run(retrained, str(root), str(tmp_path / "out"), ["gradcam"])
    assert again.skipped == 0 and sum(counted) == 1
    summary = (tmp_path / "out" / "summary.json").read_text()
    assert retrained.fingerprint[:12] in summary and retrained.fingerprint[:12] in (
        tmp_path / "out" / "index.html").read_text()


def test_a_first_download_and_a_later_cached_load_resume_each_other(tmp_path, monkeypatch, counted):
    """The weights' display string differs ("downloaded into" / "from the torch hub cache"); the
    fingerprint does not."""
    import socket

    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("XAI_OFFLINE", raising=False)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: socket.socket())  # "online"
    torch.manual_seed(0)
    state = torchvision.models.resnet18(num_classes=1000).state_dict()
    member = torchvision.models.ResNet18_Weights.DEFAULT

    def download(url, model_dir=None, **kwargs):  # torch hub's download into its cache, without the network
        folder = model_dir or os.path.join(torch.hub.get_dir(), "checkpoints")
        os.makedirs(folder, exist_ok=True)
        torch.save(state, os.path.join(folder, os.path.basename(url)))
        return state

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", download)
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", download, raising=False)
    root = tmp_path / "in"
    root.mkdir()
    shutil.copy(PHOTOS[1], root / "x.png")
    downloaded = xai_core.load_model("torchvision:resnet18", weights="DEFAULT", device="cpu", input_size=64)
    assert "downloaded" in downloaded.weights_source
    dataset.run(downloaded, str(root), str(tmp_path / "out"), ["gradcam"])
    cached = xai_core.load_model("torchvision:resnet18", weights="DEFAULT", device="cpu", input_size=64)
    assert "from the torch hub cache" in cached.weights_source and member.url.endswith(
        os.path.basename(cached.weights_file))
    counted.clear()
    assert dataset.run(cached, str(root), str(tmp_path / "out"), ["gradcam"]).skipped == 1 and counted == []
