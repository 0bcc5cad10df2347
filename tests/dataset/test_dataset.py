"""xai_core.dataset and the `batch` command: inputs, one row per file (error rows for refused files),
the maps, summary.json (bootstrap intervals, win rates, accuracy), index.html, resume after a
finished or a killed run, and the exit status and last line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageOps

import xai_core
from conftest import IMAGES
from xai_core import cli, dataset

PHOTOS = sorted(IMAGES.iterdir())


def _tree(root: Path) -> Path:
    """An ImageFolder tree: cat/ (2 photos), other/ (2 photos and a corrupt .jpg)."""
    for folder, photos in (("cat", PHOTOS[:2]), ("other", PHOTOS[2:4])):
        (root / folder).mkdir(parents=True)
        for photo in photos:
            shutil.copy(photo, root / folder / photo.name)
    (root / "other" / "broken.jpg").write_bytes(b"not a jpeg")
    return root


def _rows(out: Path) -> list[dict]:
    return pq.read_table(out / "results.parquet").to_pylist()


def test_list_inputs_folder_tree_glob_and_list(tmp_path):
    root = _tree(tmp_path / "in")
    (root / "notes.txt").write_text("not an image")
    base, sources = dataset.list_inputs(str(root))
    assert base == root.resolve()
    assert [s.path for s in sources] == sorted(s.path for s in sources)
    assert {s.path for s in sources} == {"cat/" + p.name for p in PHOTOS[:2]} | {"other/" + p.name for p in PHOTOS[2:4]} \
        | {"other/broken.jpg"}
    assert {s.true_label for s in sources} == {"cat", "other"}
    shutil.copy(PHOTOS[0], root / "top.png")  # an image outside the class folders: not an ImageFolder tree
    assert {s.true_label for s in dataset.list_inputs(str(root))[1]} == {None}
    assert [s.path for s in dataset.list_inputs(str(root / "cat" / "*.png"))[1]] == sorted(
        p.name for p in PHOTOS[:2] if p.suffix == ".png")
    listing = tmp_path / "list.txt"
    listing.write_text(f"in/cat/{PHOTOS[0].name}\n# a comment\nin/missing.png\n")
    assert [s.path for s in dataset.list_inputs(str(listing))[1]] == [f"in/cat/{PHOTOS[0].name}", "in/missing.png"]
    with pytest.raises(xai_core.InvalidOptionError, match="No images found"):
        dataset.list_inputs(str(tmp_path / "in" / "*.gif"))
    with pytest.raises(xai_core.InvalidOptionError, match="neither a folder"):
        dataset.list_inputs(str(tmp_path / "nowhere"))


def test_a_run_writes_a_row_per_file_maps_summary_and_report(lite, tmp_path):
    root = _tree(tmp_path / "in")
    out = tmp_path / "out"
    result = dataset.run(lite, str(root), str(out), ["gradcam", "layercam"], layer="stage7", evaluate=True, steps=4,
                         batch_size=3)
    assert (result.explained, result.refused, result.skipped, result.failed) == (4, 1, 0, 0)
    assert result.line().startswith("Explained 4 files, refused 1")
    rows = _rows(out)
    assert [r["path"] for r in rows] == sorted(r["path"] for r in rows) and len(rows) == 5
    assert list(rows[0]) == dataset.columns(["gradcam", "layercam"], True)
    broken = next(r for r in rows if r["path"] == "other/broken.jpg")
    assert broken["error"] and broken["label"] is None and broken["true_label"] == "other"
    good = [r for r in rows if r["error"] is None]
    single = xai_core.explain(lite, root / good[0]["path"], ["gradcam"], layer="stage7")
    assert good[0]["label"] == single.top[0].label and good[0]["target"] == single.target
    assert len(good[0]["top5_labels"]) == 5 and good[0]["top5_probabilities"][0] == pytest.approx(
        single.top[0].probability, abs=1e-5)
    for row in good:
        assert row["true_label"] in ("cat", "other") and row["seconds"] > 0
        # the image's whole share: decoding, both maps, the faithfulness scores (slower than the maps)
        assert row["seconds"] > 2 * (row["gradcam_seconds"] + row["layercam_seconds"])
        for m in ("gradcam", "layercam", "random"):
            assert 0 <= row[f"{m}_deletion_auc"] <= 1 and 0 <= row[f"{m}_insertion_auc"] <= 1
        for name in (f"{row['key']}.jpg", f"{row['key']}_gradcam.jpg", f"{row['key']}_layercam.jpg"):
            assert (out / "maps" / name).is_file()
        assert row["pictures"] == "all" and (out / "maps" / f"{row['maps_file']}.gradcam.npy").is_file()
    raw = dataset.read_map(out, good[0], "gradcam")
    np.testing.assert_allclose(raw, single.maps["gradcam"], atol=1e-3)  # float16
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["files"], summary["explained"], summary["refused"]) == (5, 4, 1)
    entry = summary["methods"]["gradcam"]
    ins = entry["insertion_auc"]
    assert ins["n"] == 4 and ins["low"] <= ins["mean"] <= ins["high"]
    assert ins["mean"] == pytest.approx(np.mean([r["gradcam_insertion_auc"] for r in good]))
    wins = np.mean([r["gradcam_insertion_auc"] > r["random_insertion_auc"] for r in good])
    assert entry["insertion_auc_win_rate"]["mean"] == pytest.approx(wins)
    # ImageNet's labels are neither "cat" nor "other": no accuracy, a sentence instead of 0%
    assert "accuracy" not in summary and summary["accuracy_note"] == "folder names are not the model's classes: 0 of 2 match"
    page = (out / "index.html").read_text()
    assert "other/broken.jpg" in page and good[0]["key"] in page
    assert "map and the faithfulness scores and the pictures written: each image" in page
    assert str(tmp_path) not in page


def test_rerun_skips_done_files_and_a_killed_run_loses_at_most_its_batch(lite, tmp_path):
    root = _tree(tmp_path / "in")
    out = tmp_path / "out"
    calls = []

    def stop_after_first_batch(done, total):
        calls.append(done)
        if done >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        dataset.run(lite, str(root), str(out), ["gradcam"], batch_size=2, progress=stop_after_first_batch)
    assert len(list((out / "parts").glob("part-*.parquet"))) == 1  # the finished batch was kept
    again = dataset.run(lite, str(root), str(out), ["gradcam"], batch_size=2)
    assert (again.explained, again.refused, again.skipped) == (4, 1, 2)
    first = _rows(out)
    done = dataset.run(lite, str(root), str(out), ["gradcam"], batch_size=2)
    assert (done.skipped, done.explained) == (5, 4)
    assert done.line().startswith("Nothing to do: all 5 files were done before with these settings")
    assert _rows(out) == first
    ImageOps.mirror(Image.open(PHOTOS[0])).save(root / "cat" / PHOTOS[0].name)  # a changed file runs again
    changed = dataset.run(lite, str(root), str(out), ["gradcam"], batch_size=2)
    assert changed.skipped == 4
    other = dataset.run(lite, str(root), str(out), ["hirescam"], batch_size=2)  # other settings: all again
    assert other.skipped == 0 and "hirescam_seconds" in _rows(out)[0]


def test_bootstrap_interval():
    ci = dataset.bootstrap_ci([1.0, 2.0, 3.0, 4.0, float("nan"), None])
    assert ci["n"] == 4 and ci["mean"] == 2.5 and 1.0 <= ci["low"] < 2.5 < ci["high"] <= 4.0
    assert dataset.bootstrap_ci([]) == {"mean": None, "low": None, "high": None, "n": 0}
    assert dataset.bootstrap_ci([0.5] * 10) == {"mean": 0.5, "low": 0.5, "high": 0.5, "n": 10}


def test_the_batch_command(lite, tmp_path, capsys):
    root = _tree(tmp_path / "in")
    status = cli.main(["batch", "--input", str(root), "--output", str(tmp_path / "out"), "--method", "gradcam",
                       "--model", "efficientnet_lite0"])
    out, err = capsys.readouterr()
    assert status == 0 and out.strip().splitlines()[-1].startswith("Explained 4 files, refused 1")
    assert "images/s" in err and "Traceback" not in err
    again = cli.main(["batch", "--input", str(root), "--output", str(tmp_path / "out"), "--method", "gradcam",
                      "--model", "efficientnet_lite0"])
    out, err = capsys.readouterr()
    assert again == 0 and out.strip().splitlines()[-1].startswith("Nothing to do: all 5 files")
    assert "nothing to do" in err and "0/0" not in err and "starting" not in err
    assert cli.main(["batch", "--input", str(tmp_path / "none"), "--output", str(tmp_path / "o2")]) == 2
    assert "neither a folder" in capsys.readouterr().err
    assert cli.main(["batch", "--input", str(root), "--output", str(tmp_path / "o3"), "--target", "no such class",
                     "--model", "efficientnet_lite0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Unknown class") and len(err.strip().splitlines()) == 1


def test_the_results_folder_inside_the_input_is_not_read_as_input(lite, tmp_path):
    root = _tree(tmp_path / "in")
    first = dataset.run(lite, str(root), str(root / "results"), ["gradcam"])
    again = dataset.run(lite, str(root), str(root / "results"), ["gradcam"])
    assert (first.explained, again.explained, again.skipped) == (4, 4, 5)
    assert {r["true_label"] for r in _rows(root / "results")} == {"cat", "other"}  # still an ImageFolder tree
    (tmp_path / "file").write_text("x")
    with pytest.raises(xai_core.InvalidOptionError, match="results folder cannot be made"):
        dataset.run(lite, str(root), str(tmp_path / "file" / "out"), ["gradcam"])
    with pytest.raises(xai_core.InvalidOptionError, match="batch_size"):
        dataset.run(lite, str(root), str(tmp_path / "o"), ["gradcam"], batch_size=0)


def test_a_fixed_target_is_kept_as_an_index(lite, tmp_path):
    """A user's labels may repeat a name: the job keeps the class index, and the label beside it."""
    photo = tmp_path / "in"
    photo.mkdir()
    shutil.copy(PHOTOS[0], photo / PHOTOS[0].name)
    dataset.run(lite, str(photo), str(tmp_path / "out"), ["gradcam"], target=517)
    (row,) = _rows(tmp_path / "out")
    assert (row["target"], row["target_label"]) == (517, lite.categories[517])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["settings"]["target"] == 517 and summary["target_label"] == lite.categories[517]
