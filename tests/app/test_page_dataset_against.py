"""AppTest of the Dataset page on a results folder made against a model B (`run(..., against=)`):
its summary shows the "Model A against model B" table and sentences, the gallery offers the
"least agreement first" sort and shows model B's map beside model A's with B's prediction."""

from __future__ import annotations

import shutil
from pathlib import Path

import xai_core
from _apptest import errors as _errors, new_app, page as _page, run as _run
from test_app_no_paths import all_text

IMAGES = Path(__file__).resolve().parents[2] / "assets" / "images"


def test_the_page_shows_the_against_block(monkeypatch, tmp_path, lite) -> None:
    photos = tmp_path / "photos"
    for folder, name in (("tabby", "cat.png"), ("espresso", "coffee.png")):
        (photos / folder).mkdir(parents=True)
        shutil.copy(IMAGES / name, photos / folder / name)
    xai_core.dataset.run(lite, str(photos), str(tmp_path / "results" / "ab"), ["gradcam"], against=lite)
    monkeypatch.setenv("XAI_RESULTS_ROOT", str(tmp_path / "results"))
    app = _page(_run(new_app(monkeypatch)), "dataset")
    app.segmented_control(key="w:dataset.source").set_value("Results folder")
    _run(app)
    assert not _errors(app)
    assert any("Model A against model B" in m.value for m in app.markdown)
    (table,) = [t for t in app.table if "Spearman" in " ".join(map(str, t.value.columns))]
    assert list(table.value.iloc[:, 0]) == ["Grad-CAM"]
    assert table.value.iloc[0, 1].replace("\\", "").startswith("1.000 [1.000, 1.000]")  # Markdown-escaped text
    captions = " ".join(c.value for c in app.caption)
    assert "Accuracy: A" in captions and "2 images compared" in captions
    sort = [s for s in app.selectbox if s.label == "Sort by"][0]
    assert [o for o in sort.options if "IoU" in o or "Spearman" in o] == [
        "least agreement first (models A and B, mean Spearman)"]
    sort.set_value("agreement")
    _run(app)
    assert not _errors(app)
    assert any("model B:" in m.value and "Spearman 1.00" in m.value for m in app.markdown)
    shown = all_text(app)
    assert "A · Grad-CAM" in shown and "B · Grad-CAM" in shown  # model B's map beside model A's


def test_the_page_shows_both_models_faithfulness(monkeypatch, tmp_path, lite) -> None:
    """A run against a model B with --eval: the faithfulness table (A, B, B − A per method and score)
    under the agreement table; a model against itself changes nothing."""
    photos = tmp_path / "photos" / "tabby"
    photos.mkdir(parents=True)
    shutil.copy(IMAGES / "cat.png", photos / "cat.png")
    xai_core.dataset.run(lite, str(photos.parent), str(tmp_path / "results" / "ab"), ["gradcam"], against=lite,
                         evaluate=True, steps=3)
    monkeypatch.setenv("XAI_RESULTS_ROOT", str(tmp_path / "results"))
    app = _page(_run(new_app(monkeypatch)), "dataset")
    app.segmented_control(key="w:dataset.source").set_value("Results folder")
    _run(app)
    assert not _errors(app)
    (table,) = [t for t in app.table if "B − A (mean, 95% CI)" in [str(c).replace("\\", "") for c in t.value.columns]]
    assert len(table.value) == 3 and set(table.value.iloc[:, 0]) == {"Grad-CAM"}
    changes = [str(v).replace("\\", "") for v in table.value.iloc[:, 4]]
    assert changes == ["0.000 [0.000, 0.000]"] * 3
    assert "Faithfulness of each model's own maps" in " ".join(c.value for c in app.caption)
