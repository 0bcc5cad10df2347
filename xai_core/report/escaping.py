"""Text from a user, a model or a file (file names, folder names, class labels, model titles, and the
error sentences built from them) shown as text, never as markup: `markdown_text` for whatever
Streamlit renders as Markdown (st.markdown, captions, alerts, widget labels, radio options, help,
expander and tab labels, st.table cells), `html_text` for text inside HTML, Plotly's figure texts
included (titles, tick labels, legends, annotations and hover labels: Plotly renders <a>, <b>, <br>
and a few more tags there). Python's `html.escape` escapes for HTML; no library escapes for
Streamlit's Markdown, hence `markdown_text`."""

from __future__ import annotations

import html
import re

#: U+2060 WORD JOINER: invisible, and breaks the patterns that Streamlit's Markdown turns into links
#: or icons *after* backslash escapes are resolved (GFM's literal autolinks https://x, www.x and
#: a@b.c, emoji and :material/...: shortcodes), which no backslash can reach.
_JOINER = "\u2060"
#: Every character that starts inline Markdown (code, emphasis, strikethrough, links and images,
#: raw HTML and autolinks, entities, LaTeX) or a block mid-line (#, |); escaped with a backslash.
_INLINE = re.compile(r"([\\`*~\[\]<>&$#|])")
#: An underscore between two letters or digits never emphasises (CommonMark); any other one may.
_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
#: What makes a list item or a heading underline at the start of a line (the text's start only:
#: `one_line` leaves no other line).
_LINE_START = re.compile(r"^(\d{1,9}(?=[.)])|(?=[-+=]))")


#: Whitespace but the no-break spaces (which keep words together on purpose: `figures.concept_name`).
_BREAKING_SPACE = re.compile(r"[^\S\u00a0\u202f]+")


def one_line(text: object) -> str:
    """`str(text)` with every run of whitespace (line breaks and blank lines included, no-break
    spaces left as they are) made one space, and none at either end."""
    return _BREAKING_SPACE.sub(" ", str(text)).strip(" ")


def markdown_text(text: object) -> str:
    """`text` (anything: str() is taken) as Markdown that Streamlit shows as exactly that text, on
    one line: no link, image, HTML, emphasis, code, list, heading, icon or LaTeX can come of it.
    Use it for every string from a user, a model or a file that reaches a Streamlit element
    rendering Markdown; the rest of the sentence stays Markdown."""
    out = _INLINE.sub(r"\\\1", one_line(text))
    out = _UNDERSCORE.sub(r"\\_", out)
    out = _LINE_START.sub(r"\1\\", out, count=1)
    out = re.sub(r":(?=\S)", ":" + _JOINER, out)  # https://, :smile:, :material/x:, :red[x]
    out = re.sub(r"(?i)(www)\.", r"\1" + _JOINER + ".", out)
    return out.replace("@", _JOINER + "@")


def html_text(text: object, quote: bool = False) -> str:
    """`text` on one line (`one_line`) with <, > and & escaped for HTML (and quotes too with
    `quote`, for an attribute's value): for Plotly's figure texts, and for text inside HTML."""
    return html.escape(one_line(text), quote=quote)


__all__ = ["html_text", "markdown_text", "one_line"]
