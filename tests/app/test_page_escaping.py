"""Every page shows the strings that came from a user, a model or a file as text, never as markup: a
models file's model with a hostile title and hostile class labels, uploads and a results folder with
hostile names. Every element Streamlit renders as Markdown (bodies, captions, alerts, labels, help,
radio options, expander and tab labels, image captions) is parsed, and every Plotly figure's texts
are read: no link, image or HTML comes of them, and the hostile strings are shown as they are."""

from __future__ import annotations

import html
import io
import pytest

from _apptest import AppTest, chart as _chart, charts as _charts, errors as _errors, new_app, page as _page, run as _run
from _hostile import ANCHOR, BROKEN, FOLDER, HOST, IMAGE, LINK, NAME, TITLE, environment, labels, markdown_markup
from _hostile import plotly_markup, shown
from conftest import IMAGES

#: The fields Streamlit renders as Markdown, by element type (a select box's options are plain text).
_MARKDOWN_FIELDS = {"label", "help", "body", "caption", "captions"}


def _markdown_of(at: AppTest) -> list[tuple[str, str, bool]]:
    """(element type, Markdown source, whether it allows HTML) of every Markdown-rendered field."""
    found: list[tuple[str, str, bool]] = []

    def fields(message, kind: str, allow_html: bool) -> None:
        for field, value in message.ListFields():
            if field.name == "options" and kind == "Radio":
                found.extend((kind, v, False) for v in value)
            elif field.type == field.TYPE_MESSAGE:
                for item in ([value] if hasattr(value, "ListFields") else value):
                    fields(item, kind, allow_html)
            elif field.name in _MARKDOWN_FIELDS and kind not in ("Code", "Text"):
                found.extend((kind, v, allow_html) for v in ([value] if isinstance(value, str) else value))

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            fields(proto, type(proto).__name__, bool(getattr(proto, "allow_html", False)))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return found


def _markup(at: AppTest) -> list[str]:
    """Every link, image or HTML that a string of the page would render (the papers' links aside)."""
    problems = []
    for kind, source, allow_html in _markdown_of(at):
        if allow_html:  # our one-line captions: one HTML block, the text inside it escaped
            if "\n" in source or any(tag in source.lower() for tag in ("<a", "<img", "<b>")):
                problems.append(f"{kind} HTML: {source[:80]!r}")
        else:
            problems += [f"{kind}: {p}" for p in markdown_markup(source, allow_links=True)]
    for key, spec in _charts(at).items():
        problems += [f"chart {key}: {p}" for p in plotly_markup(spec)]
    return problems


def _shown(at: AppTest) -> str:
    """The text a person reads in every Markdown field of the page."""
    return "\n".join(shown(source) for _, source, allow_html in _markdown_of(at) if not allow_html)


@pytest.fixture(scope="module")
def hostile_env(tmp_path_factory) -> dict[str, str]:
    """XAI_MODELS: the hostile model (a ResNet-18); XAI_RESULTS_ROOT: a results folder of hostile
    photos, explained and scored with that model (`_hostile.environment`)."""
    return environment(tmp_path_factory.mktemp("hostile"), IMAGES)


@pytest.fixture
def hostile_app(hostile_env, monkeypatch) -> AppTest:
    for name, value in hostile_env.items():
        monkeypatch.setenv(name, value)
    at = new_app(monkeypatch)
    at.query_params["model"] = NAME
    return _run(at)


def _png() -> bytes:
    out = io.BytesIO()
    from PIL import Image

    Image.open(IMAGES / "cat.png").convert("RGB").save(out, "PNG")
    return out.getvalue()


def test_the_start_page_shows_a_hostile_model_and_upload_as_text(hostile_app: AppTest) -> None:
    at = hostile_app
    assert not _errors(at) and at.session_state["run.model"][0].name == NAME
    banner = at.expander[0].label
    assert shown(banner).startswith(f"Model: {TITLE} · weights: ")  # the title, as it was written
    assert f"“{NAME}”" in shown(at.expander[0].markdown[0].value)
    options = at.radio(key="w:target.rank").options  # the top classes' labels, as they are
    assert any(shown(o).startswith(ANCHOR) or shown(o).startswith(LINK) for o in options), options
    assert [shown(o) for o in options][-1] == "Another class (why not X?)"
    bars = _chart(at, "prediction_chart")["data"][0]["y"]  # each label as Plotly text: escaped, on one line
    assert len(bars) == 5 and set(bars) <= {html.escape(" ".join(label.split()), quote=False) for label in labels()}
    assert all("<" not in y and "\n" not in y for y in bars) and any(HOST in y for y in bars)
    assert _markup(at) == []
    # an upload named like Markdown, and a broken one named like HTML
    at.segmented_control(key="w:image.source").set_value("Upload")
    _run(at)
    at.file_uploader(key="w:upload").set_value((f"{IMAGE}.png", _png(), "image/png"))  # its type: its name's end
    _run(at)
    assert shown(at.sidebar.image[0].captions[0]) == f"Current image: {IMAGE}.png"
    assert any(shown(c).startswith(f"{IMAGE}.png, as the model sees it") for c in at.main.image[-1].captions)
    at.file_uploader(key="w:upload").set_value((f"{ANCHOR}\n\n{LINK}.png", b"not a picture", "image/png"))
    _run(at)
    (error,) = _errors(at)
    assert shown(error).startswith(f"{ANCHOR} {LINK}.png: ") and "not an image" in error
    assert _markup(at) == []


def test_the_cam_dff_and_faithfulness_pages_show_hostile_labels_as_text(hostile_app: AppTest) -> None:
    at = hostile_app
    at.session_state["eval.methods"], at.session_state["eval.sanity"] = ["gradcam"], False
    at.session_state["eval.steps"] = 10
    at.radio(key="w:target.rank").set_value("other")  # a class whose label is a link (label 1)
    _run(at)
    at.selectbox(key="w:target.other").set_value(1)
    _run(at)
    for name in ("cam", "dff", "faithfulness"):
        _page(at, name)
        assert not _errors(at), name
        assert _markup(at) == [], name
        assert _charts(at), name
    _page(at, "cam")
    assert f"Why “{LINK} 1”" in shown(at.subheader[0].value)
    _page(at, "faithfulness")
    assert f"maps of “{LINK} 1”" in shown(at.subheader[0].value)


def test_the_compare_page_shows_a_hostile_model_and_labels_as_text(hostile_app: AppTest) -> None:
    """Model A the hostile model, model B the bundled one; each explains its own top class (a hostile label)."""
    at = hostile_app
    at.session_state["cmp.target"] = "top:own"
    _page(at, "compare")
    assert not _errors(at) and _markup(at) == [] and _charts(at)
    assert TITLE in _shown(at)  # model A's title, as it was written
    bars = _chart(at, "cmp_prediction_a")["data"][0]["y"]
    assert all("<" not in y and "\n" not in y for y in bars) and any(HOST in y for y in bars)


def test_the_dataset_page_shows_hostile_file_names_and_labels_as_text(hostile_app: AppTest) -> None:
    at = _page(hostile_app, "dataset")
    at.segmented_control(key="w:dataset.source").set_value("Results folder")
    _run(at)
    assert not _errors(at)
    assert at.selectbox(key="w:dataset.folder").value == FOLDER  # a select box's options are plain text
    refused = [shown(w.value) for w in at.warning]
    assert len(refused) == 1 and refused[0].startswith(f"{BROKEN}: ") and "not an image" in refused[0]
    captions = [m.value for m in at.main.markdown if 'class="xai-fit"' in m.value]
    assert any("![t](https:\\\\evil.example\\x.png).png".replace("'", "&#x27;") in c for c in captions), captions
    assert any("a ![b](https:\\\\evil.example\\b.png) &lt;img src=x&gt;.png" in c for c in captions), captions
    assert f"{HOST}" in _shown(at)
    assert _markup(at) == []
