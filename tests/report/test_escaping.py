"""`markdown_text` and `html_text`: a string from a user, a model or a file is text, never markup, and
reads as it was written (on one line)."""

from __future__ import annotations

import ast

import pytest

from conftest import ROOT
from _hostile import HOSTILE, PHOTOS, TITLE, markdown_markup, shown
from xai_core.report import html_text, markdown_text

STRINGS = [*HOSTILE, TITLE, *PHOTOS, *(n for names in PHOTOS.values() for n in names),
           "1. first", "- item", "+ item", "# heading", "> quote", "    code", "```fence", "a | b", "$x^2$",
           "**bold** _it_ ~~gone~~ `code`", "&lt;entity&gt; &amp;", ":material/home: :smile: :red[red]",
           "[ref]: https://evil.example", "line\r\nbreak\u2028and\x85more", "trailing\\", "resnet18_3class.pt"]


@pytest.mark.parametrize("text", STRINGS)
def test_markdown_text_is_text_that_reads_as_written(text):
    source = markdown_text(text)
    assert markdown_markup(source) == [] and markdown_markup(f"Sentence: {source} ends.") == []
    assert "\n" not in source and "\r" not in source
    assert shown(source) == " ".join(text.split())


def test_plain_names_are_left_as_they_are():
    for text in ("EfficientNet-Lite0 (bundled, ImageNet)", "resnet18_3class.pt", "cat.png", "tabby, tabby cat"):
        assert markdown_text(text) == text and html_text(text) == text


@pytest.mark.parametrize("text", STRINGS)
def test_html_text_escapes_tags_on_one_line(text):
    out = html_text(text)
    assert "<" not in out and ">" not in out and "\n" not in out
    assert "'" not in html_text(text, quote=True) and '"' not in html_text(text, quote=True)


def test_one_escaping_module_for_every_page_and_report():
    """Every string the package, the app or its pages turn into HTML or Markdown is escaped by
    `xai_core.report.escaping` (`html_text`, `markdown_text`): no other module escapes on its own
    with the standard library's `html` (html_reports.py and eval_figures.py did)."""
    sources = [*(ROOT / "xai_core").rglob("*.py"), ROOT / "streamlit_app.py", *(ROOT / "pages").glob("*.py")]
    own = []
    for path in sources:
        if path == ROOT / "xai_core" / "report" / "escaping.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import) and any(a.name == "html" for a in node.names) or \
                    isinstance(node, ast.ImportFrom) and node.module == "html":
                own.append(str(path.relative_to(ROOT)))
    assert own == []
