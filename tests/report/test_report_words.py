"""The dataset report (index.html) names every sortable column in the Dataset page's words
(`dataset_figures.sort_choices`: "Grad-CAM · deletion", "probability", never a column id such as
`gradcam_deletion_auc`, which stays the option's value) and offers only the filters that apply to its
run: correct / wrong only with true labels, low confidence only with predictions. Read as a person
sees them, in Chromium from file://."""

from __future__ import annotations

from pathlib import Path

import pytest

from _browser import chromium
from test_gallery import METHODS, make_rows
from xai_core.report import dataset_figures as DF
from xai_core.report.html_reports import write_dataset_report

TITLES = {"gradcam": "Grad-CAM", "layercam": "LayerCAM", "random": "Random map"}


def _rows(count: int, truth: bool = True, predictions: bool = True) -> list[dict]:
    rows = make_rows(count)
    for n, row in enumerate(rows):
        row.update({f"{m}_seconds": 0.01 * n for m in METHODS}, random_deletion_auc=0.5,
                   **{f"{m}_deletion_auc": 0.3 for m in METHODS}, **{f"{m}_road_combined": 0.1 for m in METHODS})
        row["results_version"] = 3  # a number with no label: never offered
        if not truth:
            row["true_label"] = None
        if not predictions:
            row.update(error="Not an image.", label=None, probability=None, pictures=None)
    return rows


def _report(out: Path, rows: list[dict]) -> dict:
    """What a person sees of the report's controls: the sort menu's (value, text), the outcome filter's
    texts (None: not shown), whether the low-confidence filter is shown."""
    out.mkdir(parents=True)
    summary = {"input": "in", "files": len(rows), "explained": len(rows), "refused": 0,
               "settings": {"methods": list(METHODS), "model": "m", "layers": ["l"]},
               "methods": {m: {"title": t} for m, t in TITLES.items()}}
    write_dataset_report(out, rows, summary)
    with chromium() as browser:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto((out / "index.html").as_uri())
        page.wait_for_function(f"document.getElementById('count').innerText.startsWith('{len(rows)} of')")
        seen = {"sort": [tuple(o) for o in page.eval_on_selector_all("#sort option", "os => os.map(o => [o.value, o.innerText])")],
                "outcome": page.eval_on_selector_all("#correct option", "os => os.map(o => o.innerText)")
                if page.is_visible("#correct") else None,
                "low": page.is_visible("#low"), "cards": page.locator("#gallery").inner_text()}
    assert errors == []
    return seen


def test_the_sort_menu_shows_the_dataset_pages_words_and_keeps_the_ids_as_values(tmp_path):
    rows = _rows(80)  # beyond one page: the menu is the whole run's
    seen = _report(tmp_path / "run", rows)
    texts = [text for _, text in seen["sort"]]
    assert texts[:3] == ["file", "probability", "seconds"]
    for text in ("Grad-CAM · deletion", "LayerCAM · insertion", "Grad-CAM · ROAD", "LayerCAM · seconds",
                 "Random map · deletion"):
        assert text in texts
    assert not [t for t in texts if "_" in t or t in rows[0] and t not in ("probability", "seconds")], texts
    assert "results_version" not in dict(seen["sort"]) and "gradcam_deletion_auc" in dict(seen["sort"])
    assert seen["sort"] == list(DF.sort_choices(rows, TITLES).items())  # the page's menu (pages/dataset.py)
    # each card's scores read as on the Dataset page: "Grad-CAM: deletion 0.300, insertion …"
    assert "Grad-CAM: deletion 0.300, insertion" in seen["cards"] and "deletion_auc" not in seen["cards"]


@pytest.mark.parametrize("truth", [True, False])
def test_the_correct_or_wrong_filter_is_offered_only_with_true_labels(tmp_path, truth):
    rows = _rows(30, truth=truth)
    seen = _report(tmp_path / "run", rows)
    assert seen["outcome"] == (["all", "correct", "wrong"] if truth else None)  # no refused file in 30 rows
    assert seen["outcome"] == (list(DF.outcome_choices(rows)) if truth else None) and seen["low"]
    refused = _rows(30, truth=truth)
    refused[0].update(error="Not an image.", label=None, probability=None)
    seen = _report(tmp_path / "refused", refused)
    assert seen["outcome"] == (["all", "correct", "wrong", "refused files"] if truth else ["all", "refused files"])


def test_no_low_confidence_filter_without_predictions(tmp_path):
    seen = _report(tmp_path / "run", _rows(5, predictions=False))
    assert not seen["low"] and seen["outcome"] == ["all", "refused files"]
