"""AppTest of the Dataset page on a results folder made with ground truth (`run(..., ground_truth=)`):
its summary shows the localisation means with their intervals and win rates against both baselines,
the centre prior's sentence and the counts line; the gallery draws the object's outline over the maps."""

from __future__ import annotations

import shutil
from pathlib import Path

import xai_core
from _apptest import errors as _errors, new_app, page as _page, run as _run

IMAGES = Path(__file__).resolve().parents[2] / "assets" / "images"


def test_the_summary_shows_the_localisation_means(monkeypatch, tmp_path, lite) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("cat.png", "coffee.png"):
        shutil.copy(IMAGES / name, photos / name)
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("cat.png,100,50,350,280\nother.png,1,1,9,9\n")
    xai_core.dataset.run(lite, str(photos), str(tmp_path / "results" / "boxes"), ["gradcam"], pictures="all",
                         ground_truth=str(boxes))
    monkeypatch.setenv("XAI_RESULTS_ROOT", str(tmp_path / "results"))
    app = _page(_run(new_app(monkeypatch)), "dataset")
    app.segmented_control(key="w:dataset.source").set_value("Results folder")
    _run(app)
    assert not _errors(app)
    assert any("Does the map point at the object?" in m.value for m in app.markdown)
    (table,) = [t for t in app.table if "pointing game" in " ".join(map(str, t.value.columns))]
    assert list(table.value.iloc[:, 0]) == ["Grad-CAM", "Random map", "Centre prior"]
    captions = " ".join(c.value for c in app.caption)
    assert "shows nothing about the model" in captions and "1 without ground truth (coffee.png)" in captions
    assert "other.png" in captions
    assert "The magenta line on each map is the object's outline from the run's ground truth." in captions
