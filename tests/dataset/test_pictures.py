"""What a dataset job writes besides the table (issue 20): `pictures="all"` (the picture, its overlays
as JPEG, the raw maps in one float16 file per batch and method), "maps" (no overlays: they are drawn
from the raw maps when shown), "none" (the table only); what a rerun with another level does; the
batch's overlays computed at once equal `overlay_cam`'s; and a results folder of the previous
layout (KEY_METHOD.png, KEY.npz) still reads, resumes and keeps its pictures."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

import xai_core
from _legacy_results import make_legacy
from conftest import IMAGES
from xai_core import cli, dataset
from xai_core.report.pictures import overlay_cam, overlay_cams

PHOTOS = sorted(IMAGES.iterdir())


def _inputs(root: Path, count: int = 3) -> Path:
    root.mkdir()
    for photo in PHOTOS[:count]:
        shutil.copy(photo, root / photo.name)
    (root / "broken.jpg").write_bytes(b"not a picture")
    return root


def _rows(out: Path) -> list[dict]:
    return [r for r in pq.read_table(out / "results.parquet").to_pylist() if r["error"] is None]


def _files(out: Path) -> list[str]:
    maps = out / "maps"
    return sorted(p.name for p in maps.iterdir()) if maps.is_dir() else []


def test_the_batchs_overlays_equal_overlay_cam_image_by_image():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 40, 30, 3), dtype=np.uint8)
    cams = rng.random((5, 40, 30), dtype=np.float32)
    cams[1], cams[2] = 0.0, 1.0  # flat maps
    cams[3] = cams[3] * 1.4 - 0.2  # out of [0, 1]: clipped as overlay_cam does
    batch = overlay_cams(images, cams)
    assert batch.dtype == np.uint8 and batch.shape == images.shape
    for image, cam, overlay in zip(images, cams, batch):
        np.testing.assert_array_equal(overlay, overlay_cam(image, cam))


def test_save_pictures_writes_every_image_in_chunks_and_one_raw_file_per_batch_size_and_method(tmp_path):
    rng = np.random.default_rng(1)
    pictures = [(f"{i:032x}-{0:016x}", rng.integers(0, 256, (16 if i < 19 else 12, 16, 3), dtype=np.uint8),
                 {"gradcam": rng.random((16 if i < 19 else 12, 16), dtype=np.float32),
                  "layercam": rng.random((16 if i < 19 else 12, 16), dtype=np.float32)}) for i in range(21)]
    where = dataset.save_pictures(str(tmp_path), pictures, "all")
    names = _files(tmp_path)
    assert len([n for n in names if n.endswith(".jpg")]) == 21 * 3  # the picture and two overlays each
    raw = [n for n in names if n.startswith("raw-")]
    assert len(raw) == 4 and not [n for n in names if n.endswith(".tmp")]  # 2 sizes x 2 methods
    assert len({where[key][0] for key, _, _ in pictures}) == 2
    for key, image, cams in pictures:
        row = {"key": key, "maps_file": where[key][0], "maps_index": where[key][1]}
        np.testing.assert_allclose(dataset.read_map(tmp_path, row, "layercam"), cams["layercam"], atol=1e-3)
        with Image.open(tmp_path / "maps" / f"{key}_gradcam.jpg") as overlay:
            assert overlay.format == "JPEG" and overlay.size == image.shape[1::-1]
    assert dataset.save_pictures(str(tmp_path / "none"), pictures, "none") == {}
    assert not (tmp_path / "none").exists()


@pytest.fixture(scope="module")
def levels(tmp_path_factory):
    """The same three photos and a corrupt file, run once at each level."""
    base = tmp_path_factory.mktemp("levels")
    root = _inputs(base / "in")
    handle = xai_core.load_model("efficientnet_lite0", device="cpu")
    results = {level: dataset.run(handle, str(root), str(base / level), ["gradcam", "layercam"], pictures=level,
                                  batch_size=2) for level in dataset.PICTURES}
    return base, root, handle, results


def test_all_writes_the_picture_jpeg_overlays_and_raw_maps(levels):
    base, _, _, results = levels
    out = base / "all"
    rows = _rows(out)
    assert results["all"].explained == 3 and results["all"].line().startswith("Explained 3 files, refused 1")
    for row in rows:
        assert row["pictures"] == "all" and row["maps_file"].startswith("raw-") and row["maps_index"] in (0, 1)
        for end in (".jpg", "_gradcam.jpg", "_layercam.jpg"):
            assert (out / "maps" / f"{row['key']}{end}").is_file()
        assert dataset.read_picture(out, row, "gradcam") == (out / "maps" / f"{row['key']}_gradcam.jpg").read_bytes()
    assert len([n for n in _files(out) if n.startswith("raw-")]) == 4  # 2 batches x 2 methods
    assert not [n for n in _files(out) if n.endswith((".png", ".npz"))]


def test_maps_writes_the_picture_and_raw_maps_and_overlays_are_drawn_from_them(levels):
    base, root, handle, results = levels
    out = base / "maps"
    assert "no overlays (--pictures maps)" in results["maps"].line()
    rows = _rows(out)
    assert all(r["pictures"] == "maps" for r in rows)
    assert not [n for n in _files(out) if n.endswith(("_gradcam.jpg", "_layercam.jpg"))]
    row = rows[0]
    single = xai_core.explain(handle, root / row["path"], ["gradcam"])
    np.testing.assert_allclose(dataset.read_map(out, row, "gradcam"), single.maps["gradcam"], atol=2e-3)
    drawn = Image.open(io.BytesIO(dataset.read_picture(out, row, "gradcam")))
    written = Image.open(base / "all" / "maps" / f"{_rows(base / 'all')[0]['key']}_gradcam.jpg")
    assert drawn.format == "JPEG" and drawn.size == written.size  # the same overlay, from the raw map
    assert np.abs(np.float32(drawn.convert("RGB")) - np.float32(written.convert("RGB"))).mean() < 6
    report = (out / "index.html").read_text()
    data = json.loads(report[report.index('type="application/json">') + 24:report.index("</script>")])
    thumbs = next(r for r in data["rows"] if r["key"] == row["key"])["thumbs"]
    assert set(thumbs["maps"]) == {"gradcam", "layercam"} and thumbs["h"] == thumbs["w"] == 32
    assert len(data["jet"]) == 256 and "drawn" in report


def test_none_writes_the_table_only(levels):
    base, _, _, results = levels
    out = base / "none"
    assert "no pictures, the table only (--pictures none)" in results["none"].line()
    assert _files(out) == [] and all(r["pictures"] == "none" and r["maps_file"] is None for r in _rows(out))
    assert dataset.read_picture(out, _rows(out)[0]) is None
    assert dataset.read_picture(out, _rows(out)[0], "gradcam") is None
    assert "This run wrote no pictures (--pictures none)" in (out / "index.html").read_text()


def test_a_rerun_asking_for_more_explains_again_and_one_asking_for_less_keeps_what_is_there(levels, tmp_path):
    base, root, handle, _ = levels
    out = tmp_path / "out"
    shutil.copytree(base / "none", out)
    more = dataset.run(handle, str(root), str(out), ["gradcam", "layercam"], pictures="all", batch_size=2)
    assert (more.explained, more.skipped, more.redone) == (3, 1, 3)  # the corrupt file is done at any level
    assert "3 done before with fewer pictures than --pictures all were explained again to write them" in more.line()
    assert all(r["pictures"] == "all" for r in _rows(out)) and len(_files(out)) == 3 * 3 + 4
    before = {p.name: p.stat().st_mtime_ns for p in (out / "maps").iterdir()}
    less = dataset.run(handle, str(root), str(out), ["gradcam", "layercam"], pictures="none", batch_size=2)
    assert (less.explained, less.skipped, less.richer) == (3, 4, 3)
    assert less.line().startswith("Nothing to do: all 4 files were done before") and \
        "3 skipped files kept the pictures written before (more than --pictures none)" in less.line()
    assert {p.name: p.stat().st_mtime_ns for p in (out / "maps").iterdir()} == before  # nothing removed or rewritten
    assert all(r["pictures"] == "all" for r in _rows(out))


def test_copies_of_identical_content_copy_their_pictures_at_each_level(tmp_path):
    handle = xai_core.load_model("efficientnet_lite0", device="cpu")
    root = tmp_path / "in"
    root.mkdir()
    shutil.copy(PHOTOS[1], root / "a.png")
    shutil.copy(PHOTOS[1], root / "b.png")
    result = dataset.run(handle, str(root), str(tmp_path / "maps"), ["gradcam"], pictures="maps")
    a, b = _rows(tmp_path / "maps")
    assert result.copied == 1 and a["maps_file"] == b["maps_file"] and a["maps_index"] == b["maps_index"]
    assert (tmp_path / "maps" / "maps" / f"{b['key']}.jpg").is_file()
    assert dataset.read_picture(tmp_path / "maps", b, "gradcam") is not None


def test_an_unknown_level_is_one_sentence_before_any_work(lite, tmp_path, capsys):
    with pytest.raises(xai_core.InvalidOptionError) as err:
        dataset.run(lite, str(IMAGES), str(tmp_path / "out"), ["gradcam"], pictures="png")
    message = str(err.value)
    assert message.startswith("Unknown pictures option 'png'; use all") and "\n" not in message
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit) as exit_:  # a usage error of the CLI: before the model is loaded
        cli.main(["batch", "--input", str(IMAGES), "--output", str(tmp_path / "out"), "--pictures", "png",
                  "--model", "efficientnet_lite0"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Unknown pictures option 'png'" in err and "Traceback" not in err


def test_a_results_folder_of_the_previous_layout_reads_resumes_and_keeps_its_pictures(levels, tmp_path):
    base, root, handle, _ = levels
    out = tmp_path / "old"
    shutil.copytree(base / "all", out)
    make_legacy(out)
    rows = dataset.read_rows(out)
    row = next(r for r in rows if r["error"] is None)
    assert row.get("pictures") is None and dataset.pictures_written(row) == "all"
    assert dataset.read_picture(out, row, "gradcam") == (out / "maps" / f"{row['key']}_gradcam.png").read_bytes()
    assert dataset.read_map(out, row, "layercam").shape == (224, 224)
    legacy = _files(out)
    again = dataset.run(handle, str(root), str(out), ["gradcam", "layercam"], batch_size=2)  # today's default
    assert again.line().startswith("Nothing to do: all 4 files were done before") and again.pruned == 0
    assert _files(out) == legacy  # the old pictures are the rows' pictures: none removed
    report = (out / "index.html").read_text()
    assert "'legacy'" in report and ".png" in report
    data = json.loads(report[report.index('type="application/json">') + 24:report.index("</script>")])
    assert all(r["pictures"] is None for r in data["rows"])
