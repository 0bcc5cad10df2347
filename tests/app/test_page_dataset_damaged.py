"""AppTest of the Dataset page on a results folder whose summary.json is valid JSON of the wrong form
(issue 26): one sentence on the page, never Streamlit's exception box."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from _apptest import AppTest, charts as _charts, errors as _errors, new_app, page as _page, run as _run
from xai_core import dataset

SETTINGS = {"model": "efficientnet_lite0", "fingerprint": "0" * 64, "methods": ["gradcam"], "target": None,
            "layers": ["stage7"], "evaluate": False, "steps": 20}


@pytest.mark.parametrize("summary", [
    {"settings": SETTINGS, "methods": 5},
    {"settings": {**SETTINGS, "methods": 5}},
    {"settings": SETTINGS, "explained": 1, "accuracy": "high"},
    {"settings": SETTINGS, "explained": 1, "methods": {"gradcam": {"title": "Grad-CAM", "seconds": [1, 2]}}},
    {"settings": SETTINGS, "accuracy_note": ""},
    [1, 2],
], ids=["methods a number", "settings.methods a number", "accuracy a string", "an entry a list", "an empty note",
        "a list"])
def test_a_summary_of_the_wrong_form_is_one_sentence(monkeypatch, tmp_path, summary) -> None:
    folder = tmp_path / "results" / "odd"
    folder.mkdir(parents=True)
    settings = dataset.Settings("efficientnet_lite0", "0" * 64, ("gradcam",), None, ("stage7",))
    pq.write_table(pa.Table.from_pylist([], schema=dataset.schema(settings)), folder / "results.parquet")
    (folder / "summary.json").write_text(json.dumps(summary))
    monkeypatch.setenv("XAI_RESULTS_ROOT", str(tmp_path / "results"))
    app = _page(_run(new_app(monkeypatch)), "dataset")
    app.segmented_control(key="w:dataset.source").set_value("Results folder")
    _run(app)  # fails on an exception box
    errors = _errors(app)
    assert len(errors) == 1 and "“odd”" in errors[0] and "summary.json" in errors[0]
    assert errors[0].endswith("run the batch command again.") and errors[0].count(". ") == 0
    assert not _charts(app) and str(tmp_path) not in errors[0]


def test_the_summary_a_run_writes_has_the_form_readers_rely_on(lite, tmp_path) -> None:
    photos = Path(__file__).resolve().parents[2] / "assets" / "images"
    dataset.run(lite, str(photos), str(tmp_path / "out"), ["gradcam"], evaluate=True, steps=2, pictures="none")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert dataset.check_summary(summary) is summary
