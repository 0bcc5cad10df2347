"""The Dataset page and the dataset report (index.html) of the same results folder offer the same
controls in the same words: the sort menu's labels ("Grad-CAM · deletion", never the column id
`gradcam_deletion_auc`), the outcome filter only where it applies (correct / wrong with true labels,
refused files with a refused file) and the low-confidence filter. The page read through AppTest, the
report in Chromium from file://, each as a person sees it."""

from __future__ import annotations

from pathlib import Path

import pytest

from _apptest import AppTest, run as _run
from _browser import chromium
from test_page_dataset import _folder_view, layouts_root, results_root  # noqa: F401 - the results folders


def _page_controls(app: AppTest, name: str) -> dict:
    vid = f"folder.{name}"
    outcome = [s for s in app.selectbox if s.key == f"dataset.outcome.{vid}"]
    return {"sort": list(app.selectbox(key=f"dataset.sort.{vid}").options),
            "outcome": list(outcome[0].options) if outcome else None,
            "low": any(t.key == f"dataset.low.{vid}" for t in app.toggle)}


def _report_controls(index: Path) -> dict:
    with chromium() as browser:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(index.as_uri())
        page.wait_for_selector(".card")
        seen = {"sort": page.eval_on_selector_all("#sort option", "os => os.map(o => o.innerText)"),
                "outcome": page.eval_on_selector_all("#correct option", "os => os.map(o => o.innerText)")
                if page.is_visible("#correct") else None,
                "low": page.is_visible("#low")}
    assert errors == []
    return seen


@pytest.mark.parametrize("root, name, words", [
    ("results_root", "pets", ["Grad-CAM · deletion", "Grad-CAM · insertion", "Grad-CAM · ROAD", "Random map · deletion"]),
    ("layouts_root", "maps", ["Grad-CAM · seconds"]),
])
def test_the_page_and_the_report_offer_the_same_controls_in_the_same_words(request, monkeypatch, root, name, words):
    folder = request.getfixturevalue(root)
    app = _folder_view(monkeypatch, folder)
    app.selectbox(key="w:dataset.folder").set_value(name)
    _run(app)
    page, report = _page_controls(app, name), _report_controls(folder / name / "index.html")
    assert [t for t in page["sort"] + report["sort"] if "_" in t] == []  # no column id shown
    assert page["sort"][:3] == ["file", "probability", "seconds"] and all(w in page["sort"] for w in words)
    assert report == page
    if name == "pets":  # true labels (the folder names) and a refused file
        assert page["outcome"] == ["all", "correct", "wrong", "refused files"]
    else:  # no true label, nothing refused: no outcome filter at all
        assert page["outcome"] is None
    assert page["low"]
