"""AppTest of the Faithfulness page's section "Does the map point at the object?" (bundled
EfficientNet-Lite0): a box (a link's ?box=, as a drawn box is kept) and an uploaded mask give the
scores `xai_core.localise` gives on the same explanation, the outline is drawn on every map, and each
mistake a user can make gets one sentence with nothing lost. (AppTest cannot drag a box: the
picker's selection is read by `box_from_selection`, tested in tests/report/test_localisation_figures.py.)"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

import xai_core
from _apptest import AppTest, array as _array, chart as _chart, charts as _charts, errors as _errors
from _apptest import page as _page, run as _run
from pages import _panels
from xai_core.report import figures
from xai_core.report.localisation_figures import CENTRE_PRIOR_NOTE, LOCALISATION_COLUMNS

METHODS = ["gradcam", "layercam"]
TITLES = [xai_core.get_method(m).title for m in METHODS]
BOX = (60, 40, 170, 200)
HEADING = "Does the map point at the object?"


@pytest.fixture
def used(monkeypatch) -> list:
    """The explanations the page scored (each `xai_core.localise` call's first argument)."""
    seen, real = [], xai_core.localise
    monkeypatch.setattr(xai_core, "localise", lambda explanation, *a, **k: seen.append(explanation)
                        or real(explanation, *a, **k))
    return seen


def _faithfulness(app: AppTest, box: str | None = None) -> AppTest:
    app.session_state["eval.methods"] = METHODS
    app.session_state["eval.steps"] = 10
    app.session_state["eval.sanity"] = False
    if box is not None:
        app.query_params["box"] = box
    return _page(app, "faithfulness")


def _table(app: AppTest):
    frames = [f.value for f in app.dataframe if "Energy ↑" in f.value.columns]
    assert len(frames) == 1
    return frames[0]


def _assert_table_is(app: AppTest, expected: xai_core.Localisation) -> None:
    table = _table(app)
    assert list(table["method"]) == TITLES + ["random (baseline)", "centre prior (baseline)"]
    names = METHODS + ["random", "centre"]
    for field, header, _ in LOCALISATION_COLUMNS:
        want = [getattr(expected.scores[n], field) for n in names]
        np.testing.assert_allclose(table[header].to_numpy(float), want, rtol=0, atol=1e-12)


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_links_box_scores_every_map_as_localise_does_and_outlines_it(app: AppTest, used, monkeypatch) -> None:
    captured = {}
    monkeypatch.setattr(_panels, "report_button", lambda *a, **k: captured.update(args=a, kwargs=k))
    _faithfulness(app, box=",".join(map(str, BOX)))
    assert not _errors(app) and not app.warning
    assert HEADING in [s.value for s in app.subheader]
    assert used and len({id(e) for e in used}) == 1  # one explanation: the page's cached one
    explanation = used[0]
    assert sorted(explanation.maps) == sorted(METHODS)
    expected = xai_core.localise(explanation, box=BOX, on_picture=True)
    rectangle = np.zeros(explanation.maps["gradcam"].shape, bool)
    rectangle[BOX[1]:BOX[3], BOX[0]:BOX[2]] = True
    np.testing.assert_array_equal(expected.mask, rectangle)  # the box drawn is that rectangle of the maps
    _assert_table_is(app, expected)
    assert any(CENTRE_PRIOR_NOTE == m.value for m in app.markdown)
    grid = _chart(app, "loc.grid")
    contours = [t for t in grid["data"] if t["type"] == "contour"]
    assert len(contours) == len(METHODS)  # the outline on every map
    outline = np.asarray(figures.outline_trace(expected.mask).z, np.float32).ravel()
    for contour in contours:
        np.testing.assert_array_equal(np.asarray(_array(contour["z"]), np.float32).ravel(), outline)
    assert [a["text"] for a in grid["layout"]["annotations"] if "energy" in a["text"]] == [
        f"energy {expected.scores[m].energy:.2f} · {'hit' if expected.scores[m].pointing == 1 else 'miss'}"
        for m in METHODS]
    (heading, table_html), = captured["kwargs"]["sections"][2:]  # the report: the scores and the outlined maps
    assert heading == HEADING and "<td>centre prior (baseline)</td>" in table_html and CENTRE_PRIOR_NOTE in table_html
    assert [title for title, _ in captured["args"][1]][-1] == HEADING
    picker = _chart(app, "loc.pick0")
    assert picker["layout"]["dragmode"] == "select" and len(picker["layout"]["shapes"]) == 1
    assert any("box from (60, 40) to (170, 200)" in c.value for c in app.caption)
    # Clear: no object, no scores, the picker and the uploader afresh
    app.button(key="loc.clear").click()
    _run(app)
    assert not [f for f in app.dataframe if "Energy ↑" in f.value.columns]
    assert "loc.grid" not in " ".join(_charts(app)) and any(k.endswith("loc.pick1") for k in _charts(app))
    assert any(c.value.startswith("No object yet") for c in app.caption)


def test_an_uploaded_mask_of_another_size_is_scaled_and_scored_as_localise_does(app: AppTest, used) -> None:
    _faithfulness(app)
    assert any(c.value.startswith("No object yet") for c in app.caption) and HEADING in [s.value for s in app.subheader]
    mask = np.zeros((150, 226), np.uint8)  # the photo is 451x300: half its size
    mask[40:130, 60:170] = 255
    data = _png(mask)
    app.file_uploader(key="loc.upload0").set_value(("cat_mask.png", data, "image/png"))
    _run(app)
    assert not _errors(app)
    expected = xai_core.localise(used[-1], mask=data)
    _assert_table_is(app, expected)
    notes = [i.value for i in app.info]
    assert any(n.startswith("cat_mask.png: The mask is 226x150 pixels") and "scaled" in n for n in notes)
    assert any("the mask cat_mask.png" in c.value for c in app.caption)


@pytest.mark.parametrize("name, data, words", [
    ("notes.png", b"%PDF-1.4 this is no picture", "notes.png: The mask is not an image we can read"),
    ("blank.png", _png(np.zeros((30, 40), np.uint8)), "blank.png: The mask is all background"),
])
def test_a_bad_mask_gets_one_sentence_and_the_box_stays(app: AppTest, used, name, data, words) -> None:
    _faithfulness(app, box=",".join(map(str, BOX)))
    before = _table(app)
    app.file_uploader(key="loc.upload0").set_value((name, data, "image/png"))
    _run(app)
    (error,) = _errors(app)
    assert error.startswith(words) and error.endswith("The previous object is still in use.")
    assert _table(app).equals(before)  # nothing lost
    assert any("box from (60, 40)" in c.value for c in app.caption)


@pytest.mark.parametrize("box, words", [
    ("10,10,10,50", "is empty"),  # no area
    ("400,10,500,50", "outside the image"),  # beyond the 224x224 picture
])
def test_a_box_that_marks_nothing_gets_one_sentence(app: AppTest, box, words) -> None:
    _faithfulness(app, box=box)
    (error,) = _errors(app)
    assert words in error and "\n" not in error
    assert not [f for f in app.dataframe if "Energy ↑" in f.value.columns]
    assert len(app.dataframe) == 2  # the faithfulness scores are all there


def test_a_links_box_that_is_no_box_is_said_in_the_sidebar(app: AppTest) -> None:
    _faithfulness(app, box="1,2,three,4")
    assert any("box is not four numbers" in w.value for w in app.sidebar.warning)
    assert any(c.value.startswith("No object yet") for c in app.caption) and not _errors(app)


def test_a_box_clipped_to_the_picture_is_said(app: AppTest) -> None:
    _faithfulness(app, box="-20,100,100,300")
    assert not _errors(app)
    assert any("clipped" in i.value and "224x224" in i.value for i in app.info)
    assert all(not math.isnan(v) for v in _table(app)["Energy ↑"])


def test_another_image_forgets_the_object(app: AppTest) -> None:
    _faithfulness(app, box=",".join(map(str, BOX)))
    assert any("box from (60, 40)" in c.value for c in app.caption)
    app.selectbox(key="w:image.sample").set_value("coffee.png")
    _run(app)
    assert app.session_state["loc.box"] is None and not _errors(app)
    assert any(c.value.startswith("No object yet") for c in app.caption)
    assert not [f for f in app.dataframe if "Energy ↑" in f.value.columns]


def test_a_bad_mask_with_no_object_marked_yet_gets_its_sentence_alone(app: AppTest) -> None:
    _faithfulness(app)
    app.file_uploader(key="loc.upload0").set_value(("notes.png", b"not a picture", "image/png"))
    _run(app)
    assert _errors(app) == ["notes.png: The mask is not an image we can read; save it as a PNG."]
    assert any(c.value.startswith("No object yet") for c in app.caption)
