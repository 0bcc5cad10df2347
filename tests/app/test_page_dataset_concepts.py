"""AppTest of the Dataset page on a results folder made with --concepts (`run(..., concepts=K)`): the
"Concepts per class" block (a selectbox of classes, the concepts table with importance intervals, the
crops), escaped, and a summary naming a file outside concepts/ gets no picture."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import xai_core
from _apptest import errors as _errors, new_app, page as _page, run as _run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dataset"))
from test_dataset_concepts import tabby_folder  # noqa: E402


def _pictures(app) -> list:
    """The concepts' crops on the page (the sidebar shows the current image too)."""
    return [picture for element in app.get("image") for picture in element.proto.imgs
            if picture.caption.startswith("concept")]


def test_the_page_shows_the_concepts_per_class(monkeypatch, tmp_path, lite) -> None:
    root = tabby_folder(tmp_path / "in", count=8, others=2)
    out = tmp_path / "results" / "cats"
    xai_core.dataset.run(lite, str(root), str(out), ["gradcam"], pictures="none", concepts=2)
    summary = json.loads((out / "summary.json").read_text())
    monkeypatch.setenv("XAI_RESULTS_ROOT", str(tmp_path / "results"))
    app = _page(_run(new_app(monkeypatch)), "dataset")
    app.segmented_control(key="w:dataset.source").set_value("Results folder")
    _run(app)
    assert not _errors(app)
    assert any(s.value == "Concepts per class" for s in app.subheader)
    box = app.selectbox(key="w:dataset.concepts_class")
    classes = summary["concepts"]["classes"]
    assert len(box.options) == len(classes) and any("true class tabby (8 images)" in o for o in box.options)
    (table,) = [t for t in app.table if "importance (95% CI)" in " ".join(map(str, t.value.columns))]
    assert len(table.value) == 2
    first = classes[0]["concepts"][0]
    cell = str(table.value.iloc[0, 2]).replace("\\", "")  # the cells are Markdown-escaped text
    assert f"{first['importance']:.3f} [{first['importance_low']:.3f}," in cell
    captions = " ".join(c.value for c in app.caption)
    assert "Skipped for having fewer images" in captions and "Fidelity: class probability area" in captions
    assert len(_pictures(app)) >= 2  # each concept's crops
    box.set_value(len(classes) - 1)
    _run(app)
    assert not _errors(app)


def test_a_crop_outside_the_concepts_folder_is_never_read(monkeypatch, tmp_path, lite) -> None:
    root = tabby_folder(tmp_path / "in", count=8, others=0)
    out = tmp_path / "results" / "cats"
    xai_core.dataset.run(lite, str(root), str(out), ["gradcam"], pictures="none", concepts=2)
    summary = json.loads((out / "summary.json").read_text())
    for entry in summary["concepts"]["classes"]:
        entry["label"] = "**bold** <b>x</b> [link](https://e.x)"
        for c in entry["concepts"]:
            c["crops"] = ["../../summary.json", "/etc/passwd"]
    (out / "summary.json").write_text(json.dumps(summary))
    monkeypatch.setenv("XAI_RESULTS_ROOT", str(tmp_path / "results"))
    app = _page(_run(new_app(monkeypatch)), "dataset")
    app.segmented_control(key="w:dataset.source").set_value("Results folder")
    _run(app)
    assert not _errors(app)
    assert not _pictures(app)
    box = app.selectbox(key="w:dataset.concepts_class")
    assert all("\\*\\*bold\\*\\*" in o for o in box.options)
