"""`python -m xai_core concepts`: a folder of a class's photos into a results folder (concepts.json,
crops/, index.html), hostile file names shown as text, and one `error:` line for bad input."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from PIL import Image

import _hostile
from conftest import IMAGES
from xai_core import cli

LITE = ["--model", "efficientnet_lite0"]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@pytest.fixture(scope="module")
def hostile_photos(tmp_path_factory):
    folder = _hostile.photos(tmp_path_factory.mktemp("photos"), IMAGES)
    (folder / _hostile.BROKEN).unlink()
    return folder


@pytest.fixture(scope="module")
def atlas(hostile_photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "concepts"
    code = cli.main(["concepts", "--input", str(hostile_photos), "--target", "tabby", "--n-concepts", "2",
                     "--output", str(out), "--top-crops", "3", *LITE])
    assert code == 0
    return out


def test_the_results_folder(atlas, capsys):
    summary = json.loads((atlas / "concepts.json").read_text())
    assert summary["targets"] == ["tabby"] and summary["images"] == 4 and len(summary["concepts"]) == 2
    assert summary["method"] == "exact (linear head)" and len(summary["fidelity"]["removed"]) == 3
    for concept in summary["concepts"]:
        assert concept["importance_low"] <= concept["importance"] <= concept["importance_high"]
        assert len(concept["crops"]) == 3
        for crop in concept["crops"]:
            with Image.open(atlas / crop["file"]) as picture:
                assert picture.format == "JPEG" and picture.size == (64, 64)
    assert sorted(p.name for p in (atlas / "crops").iterdir()) == sorted(
        c["file"].split("/")[1] for concept in summary["concepts"] for c in concept["crops"])


def test_the_atlas_is_offline_and_shows_file_names_as_text(atlas):
    page = (atlas / "index.html").read_text()
    parser = _Tags()
    parser.feed(page)
    tags = {t for t, _ in parser.tags}
    assert "svg" in tags and "a" not in tags and "script" not in tags
    sources = [img["src"] for t, img in parser.tags if t == "img"]
    assert sources and all(s.startswith("crops/concept_") for s in sources)  # nothing fetched from elsewhere
    assert "&lt;a href=" in page or "&lt;img src=x" in page  # a hostile name, shown as text
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "").replace(f"https:\\\\{_hostile.HOST}", "")


@pytest.mark.parametrize("args,sentence", [
    (["--target", "no such class"], "Unknown class 'no such class'"),
    (["--target", "tabby", "--n-concepts", "9"], "9 concepts need at least 9 images; got 6."),
    (["--target", "tabby,tiger cat,cello"], "Give one class or two different classes, not 3."),
])
def test_bad_input_is_one_error_line(tmp_path, capsys, args, sentence):
    code = cli.main(["concepts", "--input", str(IMAGES), "--output", str(tmp_path / "out"), *LITE,
                     "--n-concepts", "2", *args])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "[" not in line]
    assert code == 2 and lines == [lines[0]] and lines[0].startswith("error: " + sentence), err
    assert "Traceback" not in err


def test_an_empty_input_is_one_error_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = cli.main(["concepts", "--input", str(tmp_path / "empty"), "--target", "tabby", "--output",
                     str(tmp_path / "out"), *LITE])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
