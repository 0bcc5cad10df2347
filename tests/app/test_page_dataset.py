"""AppTest of the Dataset page (bundled EfficientNet-Lite0): no results root, a results folder made
by `xai_core.dataset.run`, uploaded photos, the hand-over to the CAM page, and no server path shown."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import pytest

import xai_core
from _legacy_results import make_legacy
from _apptest import AppTest, charts as _charts, errors as _errors, new_app, page as _page, run as _run
from _no_paths import forbidden_strings, leaks
from test_app_no_paths import all_text

IMAGES = Path(__file__).resolve().parents[2] / "assets" / "images"
CORRUPT = b"this is not a picture"


@pytest.fixture(scope="module")
def results_root(tmp_path_factory, lite) -> Path:
    """A results root holding one results folder, "pets": an ImageFolder tree of three photos and a
    corrupt file, explained with Grad-CAM and scored."""
    base = tmp_path_factory.mktemp("dataset")
    photos = base / "photos"
    for folder, name in (("cat", "cat.png"), ("espresso", "coffee.png"), ("daisy", "flower.jpg")):
        (photos / folder).mkdir(parents=True)
        shutil.copy(IMAGES / name, photos / folder / name)
    (photos / "cat" / "broken.png").write_bytes(CORRUPT)
    root = base / "results"
    xai_core.dataset.run(lite, str(photos), str(root / "pets"), ["gradcam"], layer="stage7", evaluate=True, steps=4)
    (root / "empty").mkdir()  # no summary.json: not listed
    return root


@pytest.fixture(scope="module")
def layouts_root(tmp_path_factory, lite) -> Path:
    """A results root with the same photos written three ways: "maps" (no overlays), "none" (no
    pictures) and "old" (the previous version's layout)."""
    base = tmp_path_factory.mktemp("layouts")
    photos = base / "photos"
    photos.mkdir()
    for name in ("cat.png", "coffee.png", "flower.jpg"):
        shutil.copy(IMAGES / name, photos / name)
    root = base / "results"
    for name, level in (("maps", "maps"), ("none", "none"), ("old", "all")):
        xai_core.dataset.run(lite, str(photos), str(root / name), ["gradcam"], layer="stage7", pictures=level)
    make_legacy(root / "old")
    return root


@pytest.mark.parametrize("name, images", [("old", 6), ("maps", 6), ("none", 0)])
def test_the_gallery_shows_whichever_pictures_were_written(monkeypatch, layouts_root, name, images) -> None:
    """The overlays (a previous version's PNGs), else drawn from the raw maps, else no images and
    one sentence that says why."""
    app = _folder_view(monkeypatch, layouts_root)
    app.selectbox(key="w:dataset.folder").set_value(name)
    _run(app)
    assert not _errors(app) and len(_open_buttons(app)) == 3
    assert len(app.main.image) == images
    notes = [i.value for i in app.info if "no pictures" in i.value]
    assert len(notes) == (1 if name == "none" else 0)
    if name == "none":
        assert "--pictures none" in notes[0] and notes[0].count(". ") == 0
    else:
        assert _gallery_captions(app) == ["cat.png", "Grad-CAM", "coffee.png", "Grad-CAM", "flower.jpg", "Grad-CAM"]


def _dataset_page(monkeypatch, root=None) -> AppTest:
    if root is None:
        monkeypatch.delenv("XAI_RESULTS_ROOT", raising=False)
    else:
        monkeypatch.setenv("XAI_RESULTS_ROOT", str(root))
    app = _run(new_app(monkeypatch))
    return _page(app, "dataset")


def _folder_view(monkeypatch, root) -> AppTest:
    app = _dataset_page(monkeypatch, root)
    app.segmented_control(key="w:dataset.source").set_value("Results folder")
    return _run(app)


def _open_buttons(app: AppTest) -> list:
    return [b for b in app.button if str(b.key).startswith("open.")]


def test_without_a_results_root_the_page_says_so_in_one_sentence(monkeypatch) -> None:
    app = _dataset_page(monkeypatch)
    assert not _errors(app) and app.title[0].value.startswith("Dataset")
    (first,) = [i.value for i in app.info if "upload up to 50 photos" in i.value.lower()]
    # it points at what the page shows: the Results folder choice, not a command shown elsewhere
    assert "*Results folder*" in first and "command above" not in first
    assert "Results folder" in app.segmented_control(key="w:dataset.source").options
    app.segmented_control(key="w:dataset.source").set_value("Results folder")
    _run(app)
    info = [i.value for i in app.info]
    assert len(info) == 1 and "XAI_RESULTS_ROOT setting is not set" in info[0]
    assert "python -m xai_core batch" in app.code[0].value
    assert not _errors(app) and not _charts(app)


def test_a_missing_results_root_is_named_without_its_path(monkeypatch, tmp_path) -> None:
    app = _folder_view(monkeypatch, tmp_path / "nowhere")
    assert "names no folder" in app.info[0].value and str(tmp_path) not in all_text(app)


def test_a_results_folder_shows_its_summary_and_gallery(monkeypatch, results_root) -> None:
    app = _folder_view(monkeypatch, results_root)
    assert not _errors(app)
    assert app.selectbox(key="w:dataset.folder").options == ["pets"]  # "empty" has no summary.json
    specs = _charts(app)
    scores = next(s for k, s in specs.items() if k.endswith("dataset_scores"))
    assert [a["text"] for a in scores["layout"]["annotations"]][:3] == ["Deletion AUC ↓", "Insertion AUC ↑",
                                                                         "ROAD combined ↑"]
    assert list(scores["data"][0]["x"]) == ["Grad-CAM", "Random map"] and scores["data"][0]["error_y"]["array"]
    assert any(k.endswith("dataset_win_rates") for k in specs)
    assert "3 of 4 files explained · 1 refused" in " ".join(m.value for m in app.markdown)
    assert app.metric and "%" in app.metric[0].value  # accuracy, with true labels
    assert len(_open_buttons(app)) == 3
    refused = [w.value for w in app.warning]
    assert len(refused) == 1 and refused[0].startswith("cat/broken.png: ") and "Traceback" not in refused[0]
    assert len(app.main.image) == 6  # each photo and its Grad-CAM map
    # filters: the correct/wrong choice exists with true labels, and changes what is shown
    outcome = app.selectbox(key="dataset.outcome.folder.pets")
    assert outcome.options == ["all", "correct", "wrong", "refused files"]
    outcome.set_value("refused files")
    _run(app)
    assert not _open_buttons(app) and len(app.warning) == 1
    app.selectbox(key="dataset.outcome.folder.pets").set_value("all")
    app.selectbox(key="dataset.cls.folder.pets").set_value("cat")
    _run(app)
    assert len(_open_buttons(app)) == 1 and len(app.warning) == 1
    app.selectbox(key="dataset.cls.folder.pets").set_value("all")
    app.selectbox(key="dataset.sort.folder.pets").set_value("gradcam_deletion_auc")
    app.toggle(key="dataset.desc.folder.pets").set_value(True)
    _run(app)
    rows = xai_core.dataset.read_rows(results_root / "pets")
    expected = [r["path"] for r in sorted((r for r in rows if not r["error"]), key=lambda r: -r["gradcam_deletion_auc"])]
    assert _gallery_captions(app)[::2] == expected  # each image's file name, then its map's method


def _gallery_captions(app: AppTest) -> list[str]:
    """The gallery's captions (one line each, the whole text on hover), in the page's order."""
    return [html.unescape(re.search(r'title="([^"]*)"', m.value).group(1)) for m in app.main.markdown
            if 'class="xai-fit"' in m.value]


def test_no_server_path_on_the_page(monkeypatch, results_root) -> None:
    app = _folder_view(monkeypatch, results_root)
    text = all_text(app)
    assert "pets" in text and not leaks(text, forbidden_strings(results_root))


def test_a_click_opens_the_image_on_the_cam_page_with_the_same_settings(monkeypatch, results_root) -> None:
    app = _folder_view(monkeypatch, results_root)
    app.selectbox(key="dataset.cls.folder.pets").set_value("espresso")
    _run(app)
    _open_buttons(app)[0].click()
    _run(app)
    assert app.title[0].value == "Compare CAM methods" and not _errors(app)
    assert app.sidebar.image[0].captions == ["Current image: coffee.png"]
    assert app.pills(key="w:cam.methods").value == ["gradcam"]
    assert app.selectbox(key="w:cam.layer").value == "stage7"
    assert "espresso" in app.subheader[0].value


def test_the_cam_page_explains_the_photo_the_row_explained_with_its_probability(monkeypatch, results_root,
                                                                               lite) -> None:
    """Not the results' picture of it (the model's input, saved as JPEG, whose probabilities differ):
    the photo itself, read again from the run's input, so the CAM page's numbers are the row's."""
    app = _folder_view(monkeypatch, results_root)
    app.selectbox(key="dataset.cls.folder.pets").set_value("espresso")
    _run(app)
    _open_buttons(app)[0].click()
    _run(app)
    (row,) = [r for r in xai_core.dataset.read_rows(results_root / "pets") if r["path"] == "espresso/coffee.png"]
    assert f"({row['probability']:.1%})" in app.subheader[0].value  # as the page shows it
    top = xai_core.predict(lite, app.session_state["image.bytes"], top_k=1)[0]
    assert top.label == row["label"] and abs(top.probability - row["probability"]) < 5e-4
    assert app.session_state["image.bytes"] == (IMAGES / "coffee.png").read_bytes()
    assert not [w for w in app.sidebar.warning if "original photo" in w.value]


@pytest.fixture
def changing_root(tmp_path, lite) -> tuple[Path, Path]:
    """(a results root holding "one": a run over one photo, the photo) for a test to move or change."""
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(IMAGES / "coffee.png", photos / "coffee.png")
    xai_core.dataset.run(lite, str(photos), str(tmp_path / "results" / "one"), ["gradcam"], layer="stage7")
    return tmp_path / "results", photos / "coffee.png"


@pytest.mark.parametrize("change, why", [("deleted", "not readable on this server"),
                                         ("changed", "has changed since the run")])
def test_without_its_photo_the_cam_page_explains_the_picture_and_says_why(monkeypatch, changing_root, change,
                                                                         why) -> None:
    root, photo = changing_root
    if change == "deleted":
        photo.unlink()
    else:
        photo.write_bytes((IMAGES / "cat.png").read_bytes())
    app = _folder_view(monkeypatch, root)
    _open_buttons(app)[0].click()
    _run(app)
    assert app.title[0].value == "Compare CAM methods" and not _errors(app)
    (row,) = xai_core.dataset.read_rows(root / "one")
    assert app.session_state["image.bytes"] == xai_core.dataset.read_picture(root / "one", row)
    (notice,) = [w.value for w in app.sidebar.warning if "original photo" in w.value]
    assert why in notice and "probabilities may differ" in notice and notice.count(". ") == 0
    assert not leaks(all_text(app), forbidden_strings(root, photo.parent))


def _uploads() -> list[tuple[str, bytes, str]]:
    return [("coffee.png", (IMAGES / "coffee.png").read_bytes(), "image/png"),
            ("broken.png", CORRUPT, "image/png"),
            ("flower.jpg", (IMAGES / "flower.jpg").read_bytes(), "image/jpeg")]


def test_uploaded_photos_are_explained_scored_and_open_on_the_cam_page(monkeypatch) -> None:
    app = _dataset_page(monkeypatch)
    app.session_state["eval.steps"] = 10
    app.pills(key="w:dataset.methods").set_value(["gradcam", "layercam"])
    app.toggle(key="w:dataset.evaluate").set_value(True)
    app.file_uploader(key="dataset.uploads").set_value(_uploads())
    _run(app)
    assert not _open_buttons(app)  # nothing runs before the button
    app.button(key="dataset.run").click()
    _run(app)
    assert not _errors(app)
    assert "2 of 3 files explained · 1 refused" in " ".join(m.value for m in app.markdown)
    assert any(k.endswith("dataset_scores") for k in _charts(app))
    refused = [w.value for w in app.warning]
    assert len(refused) == 1 and refused[0].startswith("broken.png: ") and "not an image" in refused[0]
    assert len(_open_buttons(app)) == 2 and len(app.main.image) == 6
    table = app.table[0].value  # the win rates: a static table, which wraps to any width
    assert list(table["method"]) == ["Grad-CAM", "LayerCAM"]
    # a filter change reruns the page without explaining again
    calls = []
    real = xai_core.explain_batch
    monkeypatch.setattr(xai_core, "explain_batch", lambda *a, **k: calls.append(1) or real(*a, **k))
    app.selectbox(key="dataset.outcome.upload").set_value("refused files")
    _run(app)
    assert not calls and not _open_buttons(app) and len(app.warning) == 1
    app.selectbox(key="dataset.outcome.upload").set_value("all")
    _run(app)
    _open_buttons(app)[1].click()  # flower.jpg
    _run(app)
    assert app.title[0].value == "Compare CAM methods"
    assert app.sidebar.image[0].captions == ["Current image: flower.jpg"]
    assert app.pills(key="w:cam.methods").value == ["gradcam", "layercam"]
    assert "daisy" in app.subheader[0].value
    assert not [w for w in app.sidebar.warning if "original photo" in w.value]  # the upload itself
    _page(app, "dataset")  # back: the uploader is empty, the photos explained earlier are still shown
    assert len(_open_buttons(app)) == 2 and any("explained earlier" in c.value for c in app.caption)
    _open_buttons(app)[0].click()  # coffee.png, no longer uploaded: its picture, and the page says so
    _run(app)
    (notice,) = [w.value for w in app.sidebar.warning if "original photo" in w.value]
    assert "no longer among the uploaded photos" in notice and "probabilities may differ" in notice


def test_a_chosen_class_is_explained_and_handed_over(monkeypatch, lite) -> None:
    app = _dataset_page(monkeypatch)
    assert app.selectbox(key="w:dataset.target").value == -1  # each photo's top class, shown as such
    assert app.selectbox(key="w:dataset.target").format_func(-1) == "each photo's top class"
    tabby = lite.categories.index("tabby")
    app.selectbox(key="w:dataset.target").set_value(tabby)
    app.pills(key="w:dataset.methods").set_value(["gradcam"])
    app.file_uploader(key="dataset.uploads").set_value(_uploads()[:1])
    _run(app)
    app.button(key="dataset.run").click()
    _run(app)
    assert "target: tabby" in " ".join(m.value for m in app.markdown)
    _open_buttons(app)[0].click()
    _run(app)
    assert app.title[0].value == "Compare CAM methods" and not _errors(app)
    assert app.radio(key="w:target.rank").value == "other" and app.selectbox(key="w:target.other").value == tabby
    assert "tabby" in app.subheader[0].value


def test_more_than_fifty_uploads_are_cut_with_one_sentence(monkeypatch) -> None:
    captured = {}
    from pages import _dataset_state

    monkeypatch.setattr(_dataset_state, "explain_uploads", lambda handle, files, *a, **k: captured.update(n=len(files))
                        or {"rows": [], "summary": {"files": 0, "explained": 0, "refused": 0, "settings": {},
                                                    "methods": {}}, "pictures": {}})
    app = _dataset_page(monkeypatch)
    app.file_uploader(key="dataset.uploads").set_value([(f"p{i}.png", CORRUPT + bytes([i]), "image/png")
                                                        for i in range(52)])
    _run(app)
    assert [w.value for w in app.warning] == ["You chose 52 photos; only the first 50 are explained."]
    assert app.button(key="dataset.run").label == "Explain 50 photos"
    app.button(key="dataset.run").click()
    _run(app)
    assert captured["n"] == 50 and not _errors(app)


def test_cancel_keeps_nothing_and_says_so(monkeypatch) -> None:
    """The Cancel button (shown while the photos are explained) ends the run: its callback runs at
    the next rerun, which the progress callback answers with False (`Cancelled`)."""
    app = _dataset_page(monkeypatch)
    app.file_uploader(key="dataset.uploads").set_value(_uploads()[:1])
    _run(app)
    app.button(key="dataset.run").click()
    _run(app)
    assert app.session_state["dataset.result"] is not None  # explained (AppTest cannot click mid-run) ...
    app.session_state["dataset.result"] = None
    app.session_state["dataset.pending"] = "cancelled"  # ... so: what Cancel's callback leaves
    _run(app)
    assert any(i.value.startswith("Cancelled: nothing was kept.") for i in app.info) and not _open_buttons(app)
    _run(app)
    assert not any(i.value.startswith("Cancelled") for i in app.info)  # said once


def test_uploads_are_explained_like_the_batch_command(lite) -> None:
    """`explain_uploads` gives the rows and the summary `dataset.explain_records` gives the same photos."""
    from pages import _dataset_state

    files = [(n, (IMAGES / n).read_bytes()) for n in ("cat.png", "coffee.png")] + [("bad.png", CORRUPT)]
    result = _dataset_state.explain_uploads(lite, files, ["gradcam"], "stage7", None, True, 4)
    rows = result["rows"]
    assert [r["path"] for r in rows] == ["cat.png", "coffee.png", "bad.png"]
    assert rows[2]["error"] and rows[0]["error"] is None and rows[0]["label"] == "Egyptian cat"
    assert set(rows[0]) == set(xai_core.dataset.columns(["gradcam"], True))
    assert result["summary"]["explained"] == 2 and result["summary"]["refused"] == 1
    assert set(result["pictures"][rows[0]["key"]]) == {None, "gradcam"}
    json.dumps(result["summary"])  # summary.json's content
    with pytest.raises(xai_core.Cancelled):
        _dataset_state.explain_uploads(lite, files, ["gradcam"], "stage7", None, False, 4, progress=lambda *a: False)


def test_only_listed_folders_can_be_read(monkeypatch, results_root) -> None:
    from pages import _dataset_state

    monkeypatch.setenv("XAI_RESULTS_ROOT", str(results_root))
    assert _dataset_state.results_folders() == ["pets"]
    for name in ("..", "../results/pets", "empty", str(results_root / "pets"), "pets/maps"):
        with pytest.raises(xai_core.InvalidOptionError, match="Choose one of the results folders listed"):
            _dataset_state.read_results(name, 0)
    assert _dataset_state.read_results("pets", _dataset_state.results_stamp("pets"))["summary"]["explained"] == 3
    assert _dataset_state.results_picture("pets", {"key": "../../secret"}) is None
    assert _dataset_state.results_picture("pets", {"key": "a" * 32 + "-" + "b" * 16}, "../x") is None
    assert _dataset_state.results_picture("..", {"key": "a" * 32 + "-" + "b" * 16}) is None


def test_the_faithfulness_page_links_here(app: AppTest) -> None:
    app.session_state["eval.methods"] = ["gradcam"]
    app.session_state["eval.steps"] = 10
    app.session_state["eval.sanity"] = False
    _page(app, "faithfulness")
    links = [link.proto for link in app.get("page_link")]
    assert any("rank the methods over many images" in link.label and link.page.endswith("dataset") for link in links), \
        [(link.label, link.page) for link in links]


def test_the_gallery_is_paginated(monkeypatch) -> None:
    """14 explained photos (kept from earlier in the session): 12 on the first page, 2 on the second."""
    from xai_core.dataset import Settings, columns, summarize

    rows = [{**dict.fromkeys(columns(["gradcam"], False)), "path": f"p{i:02}.png", "key": f"u{i}-x", "label": "tabby",
             "probability": 0.5 + i / 100, "target": 281, "target_label": "tabby", "seconds": 0.05,
             "gradcam_seconds": 0.01} for i in range(14)]
    summary = summarize(rows, Settings("efficientnet_lite0", "w", ("gradcam",), None, ("stage7",), False, 20))
    app = _dataset_page(monkeypatch)
    app.session_state["dataset.result"] = {"rows": rows, "summary": summary, "pictures": {},
                                           "request": ("m", tuple(f"f{i}" for i in range(14)), ("gradcam",), "stage7",
                                                       None, False, 0)}
    _run(app)
    assert len(_open_buttons(app)) == 12 and "page 1 of 2" in " ".join(c.value for c in app.caption)
    app.number_input(key="dataset.page.upload").set_value(2)
    _run(app)
    assert [b.key for b in _open_buttons(app)] == ["open.upload.u12-x", "open.upload.u13-x"]
    app.selectbox(key="dataset.sort.upload").set_value("probability")
    app.toggle(key="dataset.desc.upload").set_value(True)
    _run(app)
    assert [b.key for b in _open_buttons(app)] == ["open.upload.u1-x", "open.upload.u0-x"]
