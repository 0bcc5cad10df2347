"""AppTest of the Dataset page on a results folder where two files share one content (issue 27):
one caption says so, and the figures count that content once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from _apptest import errors as _errors, new_app, page as _page, run as _run
from xai_core import dataset
from xai_core.report import markdown_text

IMAGES = Path(__file__).resolve().parents[2] / "assets" / "images"


def test_a_folder_with_a_copy_says_that_its_content_counts_once(monkeypatch, tmp_path, lite) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, photo in (("cat.png", "cat.png"), ("cat copy.png", "cat.png"), ("coffee.png", "coffee.png")):
        shutil.copy(IMAGES / photo, photos / name)
    dataset.run(lite, str(photos), str(tmp_path / "results" / "copies"), ["gradcam"], pictures="none")
    summary = json.loads((tmp_path / "results" / "copies" / "summary.json").read_text())
    assert summary["duplicates"] == {"files": 2, "contents": 1} and summary["seconds_per_image"]["n"] == 2
    monkeypatch.setenv("XAI_RESULTS_ROOT", str(tmp_path / "results"))
    app = _page(_run(new_app(monkeypatch)), "dataset")
    app.segmented_control(key="w:dataset.source").set_value("Results folder")
    _run(app)
    assert not _errors(app)
    captions = [c.value for c in app.caption]
    assert captions.count(markdown_text(summary["duplicates_note"] + ".")) == 1
    assert summary["duplicates_note"] == ("2 files have the same content as another (1 distinct content): the means, "
                                          "intervals and win rates count each content once")  # no accuracy here
