"""Hostile strings from a user, a model or a file, for the tests that check every page shows them as
text: a models file whose model has a hostile title and hostile class labels, a results folder whose
photos, class folders and labels are hostile, and readers that find markup in what Streamlit renders.

Markdown is parsed with markdown-it-py (CommonMark, installed with Streamlit through rich), and the
literal autolinks that Streamlit's GFM adds after parsing are found with Streamlit's own patterns."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from markdown_it import MarkdownIt

HOST = "evil.example"
IMAGE = f"![t](https://{HOST}/x.png)"
LINK = f"[x](https://{HOST})"
ANCHOR = f'<a href="https://{HOST}">a</a>'
BLANK = f"cat\n\n![b](https://{HOST}/blank.png)"
BARE = f"https://{HOST}/bare www.{HOST} me@{HOST}"
#: The hostile strings a label or a title can hold (a file name cannot hold "/": see PHOTOS).
HOSTILE = (IMAGE, LINK, ANCHOR, BLANK, BARE)
TITLE = f"{IMAGE} {LINK} {ANCHOR} :red[red]"
#: Hostile class folders and photo names (a name holds no "/": a browser reads "\\" as "/" in an https
#: address), and a broken photo's name.
PHOTOS = {f"[x](https:\\\\{HOST})": ("![t](https:\\\\evil.example\\x.png).png", "<a href='https:\\\\evil.example'>a.png",
                                     "a\n\n![b](https:\\\\evil.example\\b.png) <img src=x>.png"),
          "<img src=x onerror=alert(1)>": ("2. *cat*.jpg",)}
#: A results folder's hostile name.
FOLDER = "<a href='https:\\\\evil.example'>run"
BROKEN = "<img src=x onerror=alert(1)>/<a href='https:\\\\evil.example'>broken.png"
NAME = "hostile"


def labels(n: int = 10) -> list[str]:
    """`n` class labels, each hostile (and unique)."""
    return [f"{HOSTILE[i % len(HOSTILE)]} {i}" for i in range(n)]


def models_file(folder: Path) -> Path:
    """A models file offering NAME: a ResNet-18 of 10 classes (random weights, seeded) with a hostile
    title and hostile labels (a JSON list)."""
    import torch
    import torchvision

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    names = labels()
    torch.save(torchvision.models.resnet18(weights=None, num_classes=len(names)).state_dict(), folder / "ten.pt")
    (folder / "labels.json").write_text(json.dumps(names), encoding="utf-8")
    path = folder / "models.toml"
    path.write_text(f'[[model]]\nname = "{NAME}"\nsource = "torchvision:resnet18"\nweights = "ten.pt"\n'
                    f'labels = "labels.json"\ntitle = {json.dumps(TITLE)}\n', encoding="utf-8")
    return path


def photos(folder: Path, images: Path) -> Path:
    """An ImageFolder tree of the sample photos under hostile folder and file names."""
    samples = sorted(p for p in images.iterdir() if p.suffix in (".png", ".jpg"))
    i = 0
    for cls, names in PHOTOS.items():
        (folder / cls).mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copy(samples[i % len(samples)], folder / cls / name)
            i += 1
    (folder / BROKEN).write_bytes(b"not a picture")
    return folder


def environment(base: Path, images: Path) -> dict[str, str]:
    """The server's settings for a hostile deployment under `base`: XAI_MODELS, the hostile model;
    XAI_RESULTS_ROOT, one results folder (FOLDER) of the hostile photos, explained and scored with
    that model (so its labels are hostile too)."""
    import xai_core

    env = {"XAI_MODELS": str(models_file(base / "deploy")), "XAI_RESULTS_ROOT": str(base / "results")}
    before = os.environ.get("XAI_MODELS")
    os.environ["XAI_MODELS"] = env["XAI_MODELS"]
    try:
        handle = xai_core.models.load_entry(NAME, device="cpu")
    finally:
        os.environ.pop("XAI_MODELS") if before is None else os.environ.__setitem__("XAI_MODELS", before)
    folder = photos(base / "photos", images)
    xai_core.dataset.run(handle, str(folder), str(base / "results" / FOLDER), ["gradcam"], evaluate=True, steps=4)
    return env


# --- finding markup -----------------------------------------------------------------------------------
_MD = MarkdownIt("commonmark")
#: Streamlit's GFM literal autolinks (its frontend's own patterns), found in text after parsing.
_LITERAL = re.compile(r"(https?://|www(?=\.))[-.\w]+|[-.\w+]+@[-\w]+(?:\.[-\w]+)+", re.IGNORECASE)
_TAG = re.compile(r"<\s*(a|img|script|iframe|image|svg)\b", re.IGNORECASE)


def markdown_markup(source: str, allow_links: bool = False) -> list[str]:
    """What Markdown `source` (as Streamlit renders it) holds besides text, emphasis and code: links,
    images, raw HTML, literal autolinks. `allow_links`: the page's
    own links (to papers) are fine, those to HOST or with a backslash are not."""
    found = []
    for block in _MD.parse(source):
        if block.type == "html_block":
            found.append(f"html_block {block.content[:60]!r}")
        for token in block.children or []:
            href = token.attrGet("href") or token.attrGet("src") or ""
            hostile = HOST in str(href) or "\\" in str(href)
            if token.type in ("image", "html_inline") or (token.type == "link_open" and (hostile or not allow_links)):
                found.append(f"{token.type} {href or token.content!r}")
            if token.type == "text" and _LITERAL.search(token.content):
                found.append(f"autolink {_LITERAL.search(token.content).group()!r}")
    return found


def plotly_markup(spec) -> list[str]:
    """The tags Plotly would render as links or images in a figure spec's texts (its strings)."""
    found = []

    def walk(value) -> None:
        if isinstance(value, str):
            if not value.startswith("data:") and _TAG.search(value):
                found.append(value[:80])
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(spec)
    return found


def shown(markdown: str) -> str:
    """The text a person reads in `markdown` (of one paragraph): its backslash escapes resolved and
    its invisible word joiners left out."""
    tokens = _MD.parseInline(markdown)[0].children or []
    return "".join(t.content for t in tokens if t.type in ("text", "code_inline")).replace("\u2060", "")
