"""Dataset mode with ground truth (`run(..., ground_truth=)`, `batch --ground-truth`): the
localisation columns equal `xai_core.localise` on the same explanation, a box's label naming a
class is the image's target, summary.json's "localisation" block (means, intervals, win rates
against both baselines, the centre-prior sentence), the object's outline over the gallery's maps,
the counting of files without ground truth and of ground truth without a file, objects left out,
and changed ground truth scored again."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

import xai_core
from _browser import chromium
from conftest import IMAGES
from xai_core import dataset
from xai_core.localisation import outline_polygons, outline_text, read_ground_truth

SCORES = ("pointing", "energy", "rank", "iou")


def _photos(root: Path) -> Path:
    root.mkdir(parents=True)
    for name in ("cat.png", "coffee.png", "flower.jpg", "rocket.jpg"):
        shutil.copy(IMAGES / name, root / name)
    return root


def _csv(path: Path, label: str, cat_box="100,50,350,280") -> Path:
    # coffee.png (600x400) is resized to 384x256 and cropped to 224: x < 125 is cut away, so the
    # flower's box at the same place of a 640x427 photo lies outside the crop; rocket.jpg has none
    path.write_text("path,x0,y0,x1,y1,label\n"
                    f"cat.png,{cat_box},\n"
                    f"coffee.png,150,100,450,350,{label}\n"
                    "flower.jpg,0,0,40,40,\n"
                    "gone/missing.jpg,1,1,20,20,\n")
    return path


def _rows(out: Path) -> dict[str, dict]:
    return {r["path"]: r for r in pq.read_table(out / "results.parquet").to_pylist()}


def test_columns_equal_localise_and_a_label_sets_the_target(lite, tmp_path):
    root = _photos(tmp_path / "in")
    label = lite.categories[281]  # tabby: not what the model sees in a coffee cup
    truth = _csv(tmp_path / "boxes.csv", label)
    result = dataset.run(lite, str(root), str(tmp_path / "out"), ["gradcam"], ground_truth=str(truth))
    rows = _rows(tmp_path / "out")
    assert rows["coffee.png"]["target"] == 281 and rows["coffee.png"]["label"] != label
    assert f"label names the class {label}" in rows["coffee.png"]["ground_truth_note"]
    assert rows["cat.png"]["target_label"] == rows["cat.png"]["label"]  # no label: the run's target (top-1)
    # the same images, batch and targets explained directly, then localised by hand
    names = sorted(rows)
    pils = [xai_core.load_image((root / n).read_bytes()) for n in names]
    targets = [281 if n == "coffee.png" else None for n in names]
    explanations = xai_core.explain_batch(lite, pils, ["gradcam"], targets=targets, layer=[lite.default_layer])
    truths = read_ground_truth(truth)
    for name, explanation in zip(names, explanations):
        row = rows[name]
        if name in ("cat.png", "coffee.png"):
            assert row["ground_truth"] == "scored"
            found = xai_core.localise(explanation, truth=truths.find(name))
            assert row["ground_truth_outline"] == outline_text(found.mask)  # what the galleries draw
            for method in ("gradcam", "random", "centre"):
                for score in SCORES:
                    want = getattr(found.scores[method], score)
                    assert row[f"{method}_{score}"] == pytest.approx(want, abs=1e-6), (name, method, score)
        else:
            assert all(row[f"{m}_{s}"] is None for m in ("gradcam", "random", "centre") for s in SCORES)
            assert row.get("ground_truth_outline") is None
    assert rows["flower.jpg"]["ground_truth"] == "outside" and "outside" in rows["flower.jpg"]["ground_truth_note"]
    assert rows["rocket.jpg"]["ground_truth"] is None
    line = result.ground_truth
    assert line.startswith("Ground truth: 2 of 4 explained files scored") and "1 without ground truth (rocket.jpg)" in line
    assert "1 ground truth entry names no input file (gone/missing.jpg)" in line
    assert "1 left out: object outside the crop (flower.jpg)" in line and "1 target named by a ground truth label" in line

    summary = dataset.check_summary(json.loads((tmp_path / "out" / "summary.json").read_text()))
    block = summary["localisation"]
    assert summary["settings"]["ground_truth"] == str(truth.resolve())
    assert block["note"].startswith("Objects sit near the centre of most photos")
    assert block["counts"] == {"images": 3, "scored": 2, "no_ground_truth": 1, "unmatched": 1, "outside": 1,
                               "empty": 0, "unusable": 0, "noted": 2, "labelled": 1}
    assert block["counts_note"] == line
    assert set(block["maps"]) == {"gradcam", "random", "centre"}
    for score in SCORES:
        entry = block["maps"]["gradcam"][score]
        values = [rows[n][f"gradcam_{score}"] for n in ("cat.png", "coffee.png")]
        assert entry["n"] == 2 and entry["mean"] == pytest.approx(np.mean(values)) and entry["low"] <= entry["high"]
        for baseline in ("random", "centre"):
            wins = sum(rows[n][f"gradcam_{score}"] > rows[n][f"{baseline}_{score}"] for n in ("cat.png", "coffee.png"))
            rate = block["maps"]["gradcam"][f"{score}_win_rate_{baseline}"]
            assert rate["interval"] == "wilson" and rate["k"] == wins and rate["n"] == 2
        assert f"{score}_win_rate_random" not in block["maps"]["centre"]
    html = (tmp_path / "out" / "index.html").read_text()
    assert "Does the map point at the object?" in html and "centre prior" in html
    assert "target: each image’s top class, or the class its ground truth’s label names (1 image)" in html
    sorts = xai_core.report.dataset_figures.sort_choices(list(rows.values()), {"gradcam": "Grad-CAM"})
    assert sorts["gradcam_pointing"] == "Grad-CAM · pointing game" and sorts["gradcam_iou"] == "Grad-CAM · IoU"
    assert not any(k.startswith(("random_", "centre_")) for k in sorts)
    misses = sum(r["gradcam_pointing"] == 0 for r in rows.values())
    with chromium() as browser:  # the gallery filters on pointing-game misses
        page = browser.new_page()
        errors: list = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto((tmp_path / "out" / "index.html").as_uri())
        page.wait_for_function("document.getElementById('count').innerText === '4 of 4 images'")
        assert "points at the object" in page.inner_text("#gallery") or "misses the object" in page.inner_text("#gallery")
        # the object's outline over each scored row's map: on the box, where the map's picture is drawn
        drawn = page.evaluate("""() => [...document.querySelectorAll('#gallery .drawn')].map(d => {
            const p = d.querySelector('path'), i = d.querySelector('img').getBoundingClientRect();
            if (!p) return null; const b = p.getBoundingClientRect();
            return [(b.left - i.left) / i.width, (b.top - i.top) / i.height, (b.right - i.left) / i.width,
                    (b.bottom - i.top) / i.height]; })""")
        outlined = [d for d in drawn if d is not None]
        assert len(outlined) == 2 and len(drawn) == 4  # cat and coffee scored; flower outside, rocket none
        for name in ("cat.png", "coffee.png"):
            (width, height), (polygon,) = outline_polygons(rows[name]["ground_truth_outline"])
            want = [polygon[:, 0].min() / width, polygon[:, 1].min() / height,
                    polygon[:, 0].max() / width, polygon[:, 1].max() / height]
            assert any(np.allclose(d, want, atol=0.03) for d in outlined), (name, want, outlined)
        page.check("#miss")
        assert page.locator("#count").inner_text() == f"{misses} of 4 images" and errors == []


def test_changed_ground_truth_is_scored_again(lite, tmp_path):
    root = _photos(tmp_path / "in")
    truth = _csv(tmp_path / "boxes.csv", "")
    out = tmp_path / "out"
    dataset.run(lite, str(root), str(out), ["gradcam"], ground_truth=str(truth))
    before = _rows(out)["cat.png"]
    again = dataset.run(lite, str(root), str(out), ["gradcam"], ground_truth=str(truth))
    assert again.explained_now == 0 and again.line().startswith("Nothing to do")
    _csv(truth, "", cat_box="0,0,120,100")  # the same file name, other boxes
    changed = dataset.run(lite, str(root), str(out), ["gradcam"], ground_truth=str(truth))
    assert changed.explained_now == 4
    after = _rows(out)["cat.png"]
    assert after["key"] != before["key"] and after["centre_energy"] != before["centre_energy"]
    plain = dataset.run(lite, str(root), str(tmp_path / "plain"), ["gradcam"])  # no ground truth: no columns
    assert plain.ground_truth == "" and "gradcam_pointing" not in _rows(tmp_path / "plain")["cat.png"]
    assert "localisation" not in json.loads((tmp_path / "plain" / "summary.json").read_text())


def test_masks_scaled_empty_and_copies_with_other_ground_truth(lite, tmp_path):
    root = tmp_path / "in"
    (root / "a").mkdir(parents=True)
    shutil.copy(IMAGES / "cat.png", root / "a" / "cat.png")
    shutil.copy(IMAGES / "cat.png", root / "copy.png")  # the same photo: scored against its own mask
    masks = tmp_path / "masks"
    (masks / "a").mkdir(parents=True)
    half = np.zeros((150, 225), np.uint8)  # half the photo's size: scaled
    half[25:140, 50:175] = 255
    Image.fromarray(half).save(masks / "a" / "cat.png")
    Image.fromarray(np.zeros((300, 451), np.uint8)).save(masks / "copy.png")  # empty: left out, counted
    result = dataset.run(lite, str(root), str(tmp_path / "out"), ["gradcam"], ground_truth=str(masks))
    rows = _rows(tmp_path / "out")
    assert rows["a/cat.png"]["ground_truth"] == "scored" and "scaled" in rows["a/cat.png"]["ground_truth_note"]
    assert not math.isnan(rows["a/cat.png"]["gradcam_energy"])
    assert rows["copy.png"]["ground_truth"] == "empty" and rows["copy.png"]["gradcam_energy"] is None
    assert "1 left out: empty ground truth (no object) (copy.png)" in result.ground_truth
