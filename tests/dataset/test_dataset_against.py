"""`dataset.run(..., against=B)` and `batch --against`: model B's columns in every row (a model
against itself agrees exactly; against another model the columns are `compare_models`' of each
image), model B's pictures beside A's, resuming like `batch` (another model B explains again), the
summary's "against" block (its numbers are the rows' means), and the refusals."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

import xai_core
from _browser import chromium
from conftest import IMAGES
from xai_core import cli, dataset, report
from xai_core.dataset.writer import THUMBNAIL, with_thumbnails
from xai_core.report import gallery, html_reports
from xai_core.errors import InvalidOptionError, UnknownNameError
from xai_core.predict import is_correct

PHOTOS = sorted(p for p in IMAGES.iterdir() if p.name != "rocket.jpg")[:4]


def _tree(root: Path) -> Path:
    """An ImageFolder tree whose folders are ImageNet classes: tabby/ (2 photos), espresso/ (2)."""
    for folder, photos in (("tabby", PHOTOS[:2]), ("espresso", PHOTOS[2:4])):
        (root / folder).mkdir(parents=True)
        for photo in photos:
            shutil.copy(photo, root / folder / photo.name)
    return root


def _rows(out: Path) -> list[dict]:
    return pq.read_table(out / "results.parquet").to_pylist()


def resnet18(seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    return xai_core.load_model("torchvision:resnet18", weights=None, device="cpu", input_size=64, **kwargs)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return _tree(tmp_path_factory.mktemp("against") / "in")


@pytest.fixture(scope="module")
def other():
    return resnet18()


def test_a_model_against_itself_agrees_exactly(lite, tree, tmp_path):
    out = tmp_path / "out"
    result = dataset.run(lite, str(tree), str(out), ["gradcam", "layercam"], against=lite)
    assert result.explained == 4
    rows = _rows(out)
    for row in rows:
        assert row["gradcam_spearman"] == row["layercam_spearman"] == 1.0
        assert row["gradcam_top_iou"] == row["layercam_top_iou"] == 1.0
        assert (row["b_label"], row["b_probability"]) == (row["label"], pytest.approx(row["probability"], abs=1e-6))
        assert row["b_target_label"] == row["target_label"] and row["b_note"] is None
        # tabby and espresso are ImageNet classes: each prediction is right or wrong
        assert row["correct"] == row["b_correct"] == is_correct(row["label"], row["true_label"])
        for suffix in ("_b.jpg", "_b_gradcam.jpg", "_b_layercam.jpg", ".jpg", "_gradcam.jpg"):
            assert (out / "maps" / f"{row['key']}{suffix}").is_file()
        np.testing.assert_array_equal(dataset.read_map(out, row, "gradcam"),
                                      dataset.read_map(out, row, "gradcam", model="b"))
        assert dataset.read_picture(out, row, "gradcam", model="b") is not None
    summary = json.loads((out / "summary.json").read_text())
    block = summary["against"]
    assert block["model"] == lite.name and block["fingerprint"] == lite.fingerprint[:12]
    for method in ("gradcam", "layercam"):
        assert block["methods"][method]["spearman"]["mean"] == 1.0
        assert block["methods"][method]["top_iou"]["mean"] == 1.0
    assert block["accuracy_change"]["mean"] == 0.0
    dataset.check_summary(summary)


def test_against_another_model_the_columns_are_compare_models(lite, other, tree, tmp_path):
    out = tmp_path / "out"
    dataset.run(lite, str(tree), str(out), ["gradcam"], against=other)
    assert sum(row["gradcam_spearman"] is not None for row in _rows(out)) >= 2
    for row in _rows(out):
        alone = xai_core.compare_models(lite, other, tree / row["path"], ("gradcam",))
        compared = alone.methods["gradcam"]
        for score in ("spearman", "top_iou"):  # NaN (a constant map: a random ResNet's zero Grad-CAM) is null
            expected = getattr(compared, score)
            assert row[f"gradcam_{score}"] == (None if np.isnan(expected) else pytest.approx(expected, abs=1e-4))
        assert row["b_label"] == alone.top_b[0][1] and row["b_target_label"] == alone.target_label_b
        assert row["b_target_probability"] == pytest.approx(alone.probability_b, abs=1e-5)
        assert row["target_label"] == alone.target_label_a
        # model A's own columns and pictures are those of the run without model B
        np.testing.assert_allclose(dataset.read_map(out, row, "gradcam"),
                                   alone.explanation_a.maps["gradcam"], atol=2e-3)  # stored as float16
        np.testing.assert_allclose(dataset.read_map(out, row, "gradcam", model="b"),
                                   alone.explanation_b.maps["gradcam"], atol=2e-3)


def test_a_rerun_resumes_and_another_model_b_explains_again(lite, other, tree, tmp_path):
    out = tmp_path / "out"
    dataset.run(lite, str(tree), str(out), ["gradcam"], against=other)
    again = dataset.run(lite, str(tree), str(out), ["gradcam"], against=other)
    assert again.line().startswith("Nothing to do") and again.explained_now == 0
    changed = dataset.run(lite, str(tree), str(out), ["gradcam"], against=resnet18(seed=1))
    assert changed.explained_now == 4 and changed.skipped == 0
    alone = dataset.run(lite, str(tree), str(out), ["gradcam"])  # without model B: its own settings
    assert alone.explained_now == 4 and "b_label" not in _rows(out)[0]


def test_the_summary_block_is_the_rows_means(lite, other, tree, tmp_path):
    out = tmp_path / "out"
    dataset.run(lite, str(tree), str(out), ["gradcam"], against=other)
    rows, summary = _rows(out), json.loads((out / "summary.json").read_text())
    block = summary["against"]
    for score in ("spearman", "top_iou"):
        values = [r[f"gradcam_{score}"] for r in rows if r[f"gradcam_{score}"] is not None]
        entry = block["methods"]["gradcam"][score]
        assert entry["mean"] == pytest.approx(np.mean(values)) and entry["n"] == len(values)
        assert entry["low"] <= entry["mean"] <= entry["high"]
        for label, per_class in block["methods"]["gradcam"]["classes"].items():
            mine = [r[f"gradcam_{score}"] for r in rows if r["true_label"] == label and r[f"gradcam_{score}"] is not None]
            assert per_class[score]["mean"] == (pytest.approx(np.mean(mine)) if mine else None)
    assert set(block["methods"]["gradcam"]["classes"]) == {"tabby", "espresso"}
    right_a = [r["correct"] for r in rows]
    right_b = [r["b_correct"] for r in rows]
    assert block["accuracy_a"]["k"] == sum(right_a) and block["accuracy_b"]["k"] == sum(right_b)
    assert block["accuracy_change"]["mean"] == pytest.approx((sum(right_b) - sum(right_a)) / len(rows))
    means = {r["key"]: r["gradcam_spearman"] for r in rows if r["gradcam_spearman"] is not None}
    assert block["least_agreeing"] == sorted(means, key=lambda k: means[k]) and len(means) >= 2
    dataset.check_summary(summary)


def test_models_without_a_shared_label_or_target_are_refused_before_any_work(lite, tree, tmp_path):
    strangers = resnet18(labels=[f"thing {i}" for i in range(1000)])
    with pytest.raises(InvalidOptionError, match="no class label in common"):
        dataset.run(lite, str(tree), str(tmp_path / "out"), ["gradcam"], against=strangers)
    assert not (tmp_path / "out").exists()
    few = resnet18(labels=["tabby"] + [f"thing {i}" for i in range(999)])
    with pytest.raises(UnknownNameError, match="Only model A knows"):
        dataset.run(lite, str(tree), str(tmp_path / "out"), ["gradcam"], target="espresso", against=few)


def test_an_image_whose_class_model_b_does_not_know_keeps_model_a(lite, tree, tmp_path):
    """Model B knows "tabby" only: the images model A calls something else get A's results, B's
    prediction and a note, no agreement; the others are compared."""
    few = resnet18(labels=["tabby"] + [f"thing {i}" for i in range(999)])
    out = tmp_path / "out"
    result = dataset.run(lite, str(tree), str(out), ["gradcam"], against=few)
    assert result.explained == 4
    for row in _rows(out):
        assert row["b_label"] is not None and row["label"] is not None
        if row["target_label"] == "tabby":
            assert row["b_note"] is None and row["gradcam_spearman"] is not None
        else:
            assert "Only model A knows" in row["b_note"] and row["gradcam_spearman"] is None


def test_batch_against_on_the_command_line(tree, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["batch", "--input", str(tree), "--output", str(out), "--model", "efficientnet_lite0", "--device", "cpu"]
    args = base + ["--against", "efficientnet_lite0"]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "Model A efficientnet_lite0 against model B efficientnet_lite0" in printed
    assert "Grad-CAM: Spearman 1.000 [1.000, 1.000], top-20% IoU 1.000 [1.000, 1.000]" in printed
    assert _rows(out)[0]["gradcam_spearman"] == 1.0
    assert json.loads((out / "summary.json").read_text())["against"]["model"] == "efficientnet_lite0"
    assert cli.main(args) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("Nothing to do")
    missing = tmp_path / "missing.pt"
    assert cli.main(base + ["--against", "torchvision:resnet18", "--against-weights", str(missing)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: ") and "Traceback" not in error and error.rstrip(".").count(". ") == 0, error
    strangers = tmp_path / "labels.txt"
    strangers.write_text("\n".join(f"thing {i}" for i in range(1000)))
    assert cli.main(base + ["--against", "torchvision:resnet18", "--against-weights", "none",
                            "--against-labels", str(strangers)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: ") and "no class label in common" in error, error
    with pytest.raises(SystemExit) as refused:
        cli.main(base + ["--against", "nosuchmodel"])
    assert refused.value.code == 2 and "unknown model 'nosuchmodel'" in capsys.readouterr().err


def test_the_report_shows_the_block_and_sorts_by_least_agreement(lite, other, tree, tmp_path):
    out = tmp_path / "out"
    dataset.run(lite, str(tree), str(out), ["gradcam"], against=other)
    page = (out / "index.html").read_text()
    assert "<h2>Model A against model B</h2>" in page and "torchvision:resnet18" in page
    assert "least agreement first" in page and "_b_" in page  # the sort, model B's overlays in the cards
    assert '"against":true' in page


def test_the_block_escapes_every_string():
    entry = {"mean": 0.5, "low": 0.4, "high": 0.6, "n": 3, "interval": "bootstrap"}
    summary = {"settings": {"model": "<b>a</b>"}, "against": {
        "model": "<script>x</script>", "fingerprint": "abc", "compared": 3, "not_compared": 0,
        "methods": {"gradcam": {"title": "<i>t</i>", "spearman": entry, "top_iou": entry,
                                "classes": {"<img src=x>": {"spearman": entry, "top_iou": entry}}}}}}
    section = report.against_section_html(summary)
    assert "<script>" not in section and "<img" not in section and "<i>" not in section
    assert "&lt;script&gt;" in section and "&lt;img src=x&gt; 0.50" in section


def test_a_missing_model_b_picture_is_explained_again(lite, tree, tmp_path):
    out = tmp_path / "out"
    dataset.run(lite, str(tree), str(out), ["gradcam"], against=lite)
    row = _rows(out)[0]
    (out / "maps" / f"{row['key']}_b.jpg").unlink()
    again = dataset.run(lite, str(tree), str(out), ["gradcam"], against=lite)
    assert again.explained_now == 1 and (out / "maps" / f"{row['key']}_b.jpg").is_file()
    assert any("missing or damaged" in note for note in again.notes)


def test_model_b_pictures_follow_the_pictures_level(lite, tree, tmp_path):
    """--pictures maps: model B's picture and raw maps, no overlays (drawn when shown); none: nothing."""
    out = tmp_path / "maps"
    dataset.run(lite, str(tree), str(out), ["gradcam"], against=lite, pictures="maps")
    row = _rows(out)[0]
    assert (out / "maps" / f"{row['key']}_b.jpg").is_file() and not (out / "maps" / f"{row['key']}_b_gradcam.jpg").exists()
    assert dataset.read_picture(out, row, "gradcam", model="b") == dataset.read_picture(out, row, "gradcam")
    bare = tmp_path / "none"
    dataset.run(lite, str(tree), str(bare), ["gradcam"], against=lite, pictures="none")
    assert not (bare / "maps").exists() or not any((bare / "maps").iterdir())
    assert _rows(bare)[0]["b_maps_file"] is None and _rows(bare)[0]["gradcam_spearman"] == 1.0


def test_model_b_maps_are_drawn_in_the_report_at_the_maps_level(lite, other, tree, tmp_path, monkeypatch):
    """--pictures maps writes no overlays: index.html draws each map's thumbnail over its picture,
    model B's over model B's picture (its tile after model A's in a row's strip), on the first page
    (embedded) and beyond it (gallery/thumbs/KEY.png; the first page made 2 rows long here)."""
    monkeypatch.setattr(gallery, "PAGE", 2)
    monkeypatch.setattr(html_reports, "PAGE", 2)
    out = tmp_path / "maps"
    dataset.run(lite, str(tree), str(out), ["gradcam"], against=other, pictures="maps")
    rows = with_thumbnails(out, _rows(out), ["gradcam"])
    for row in rows:  # model B's thumbnail is its raw map, downsampled as model A's
        b_map = dataset.read_map(out, row, "gradcam", model="b")
        step = -(-max(b_map.shape) // THUMBNAIL)
        want = np.uint8(np.clip(b_map[::step, ::step], 0, 1) * 255)
        assert base64.b64decode(row["thumbs"]["maps"]["b:gradcam"]) == want.tobytes()
    strips = sorted((out / "gallery" / "thumbs").glob("*.png"))
    assert len(strips) == 2 and all(Image.open(s).size == (32, 64) for s in strips)  # A's tile, then B's
    drawn = ("[...document.querySelectorAll('#gallery canvas')].map(c => [c.dataset.method, c.width > 0 && "
             "c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some(v => v > 0)])")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # one origin: canvases can be read
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with chromium() as browser:
        page = browser.new_page()
        errors: list = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
        page.wait_for_function("!document.getElementById('pager').hidden")  # the whole run has loaded
        for number in (1, 2):  # the first page (embedded thumbnails), then the second (the strips)
            assert page.locator("#pageno").inner_text() == f"page {number} of 2"
            page.wait_for_function(f"{drawn}.length === 4 && {drawn}.every(d => d[1])")
            assert sorted(m for m, _ in page.evaluate(drawn)) == ["b:gradcam", "b:gradcam", "gradcam", "gradcam"]
            if number == 1:
                page.click("#next")
        assert errors == []
    server.shutdown()
