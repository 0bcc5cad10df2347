"""The dataset report (index.html) is escaped for where each text goes: a file named
`<!--<script>x.jpg` and a label `</script><b>` leave the gallery working in Chromium, and NaN never
reaches the embedded JSON (which JSON.parse would reject)."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch

import xai_core
from _browser import chromium
from conftest import IMAGES
from xai_core import dataset
from xai_core.report.html_reports import dataset_report_html, script_json

HOSTILE_FILE = "<!--<script>x.jpg"
HOSTILE_LABELS = ["</script><b>", "<!--", "a & b"]


def test_script_json_escapes_what_closes_a_script_and_drops_nan():
    text = script_json({"a": "</script><!--<b>&", "b": float("nan"), "c": [1.5, float("-inf")]})
    assert not re.search(r"[<>&]", text) and "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": "</script><!--<b>&", "b": None, "c": [1.5, None]}


def test_the_report_holds_no_raw_script_breakers_or_nan():
    rows = [{"path": HOSTILE_FILE, "key": "k", "error": None, "label": "</script><b>", "probability": float("nan"),
             "true_label": "{{data}}", "target_label": "<!--"}]
    summary = {"input": "{{summary}}<b>", "settings": {"methods": [], "model": "m{{facts}}"}, "methods": {}}
    page = dataset_report_html(rows, summary)
    data = page[page.index('<script id="data" type="application/json">'):]
    data = data[data.index(">") + 1:data.index("</script>")]
    assert json.loads(data)["rows"][0]["path"] == HOSTILE_FILE and "NaN" not in data
    assert page.count("<script") == 2 and page.count("<table class='summary'>") == 1
    # a text that looks like a slot of the template stays that text: it fills no other slot
    assert "<title>Explanations: {{summary}}&lt;b&gt;</title>" in page and "model m{{facts}}" in page


@pytest.fixture
def hostile_run(tmp_path):
    """A real run: a 3-class checkpoint whose labels are all hostile, over a file with a hostile name."""
    torch.manual_seed(0)
    model = xai_core.load_model("torchvision:resnet18", weights=None, device="cpu", labels=HOSTILE_LABELS).module
    torch.save(model.state_dict(), tmp_path / "w.pt")
    handle = xai_core.load_model("torchvision:resnet18", weights=str(tmp_path / "w.pt"), labels=HOSTILE_LABELS,
                                 device="cpu", input_size=64)
    root = tmp_path / "in"
    root.mkdir()
    shutil.copy(IMAGES / "rocket.jpg", root / HOSTILE_FILE)
    shutil.copy(IMAGES / "cat.png", root / "plain.png")
    result = dataset.run(handle, str(root), str(tmp_path / "out"), ["gradcam"], evaluate=True, steps=2)
    assert result.explained == 2
    return tmp_path / "out"


def test_hostile_names_leave_the_gallery_working_in_chromium(hostile_run):
    with chromium() as browser:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto((hostile_run / "index.html").as_uri())
        page.wait_for_selector(".card")
        assert errors == []
        assert page.locator(".card").count() == 2 and page.locator("#count").inner_text() == "2 of 2 images"
        text = page.locator("#gallery").inner_text()
        assert HOSTILE_FILE in text and any(label in text for label in HOSTILE_LABELS)
        labels = page.locator("#gallery .meta > b").all_inner_texts()  # each card's label, shown as text
        assert len(labels) == 2 and set(labels) <= set(HOSTILE_LABELS) and page.locator("#gallery b b").count() == 0
        page.select_option("#sort", "probability")  # the controls still work
        assert page.locator(".card").count() == 2


@pytest.fixture(scope="module")
def level_runs(tmp_path_factory):
    """Two photos written with --pictures maps (overlays drawn in the browser) and none."""
    base = tmp_path_factory.mktemp("levels")
    root = base / "in"
    root.mkdir()
    for name in ("cat.png", "rocket.jpg"):
        shutil.copy(IMAGES / name, root / name)
    handle = xai_core.load_model("efficientnet_lite0", device="cpu")
    for level in ("maps", "none"):
        dataset.run(handle, str(root), str(base / level), ["gradcam", "layercam"], pictures=level)
    return base


def test_the_gallery_draws_maps_from_raw_maps_or_says_there_are_no_pictures(level_runs):
    with chromium() as browser:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto((level_runs / "maps" / "index.html").as_uri())
        page.wait_for_selector(".card")
        assert page.locator(".card canvas").count() == 4 and page.locator("#nopictures").is_hidden()
        assert page.evaluate("[...document.querySelectorAll('.card canvas')].every(c => c.width === 32)")
        assert page.locator(".card img").count() == 2 + 4  # each picture, under each drawn map too
        page.goto((level_runs / "none" / "index.html").as_uri())
        page.wait_for_selector(".card")
        assert page.locator(".card img").count() == 0 and page.locator(".card canvas").count() == 0
        assert "wrote no pictures (--pictures none)" in page.locator("#nopictures").inner_text()
        assert errors == []
