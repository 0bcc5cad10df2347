"""The dataset report stays bounded: index.html embeds the summary and the gallery's first page only,
so its size does not grow with the run; the rest is in gallery/ (the rows by column, the map
thumbnails of rows written with --pictures maps as PNG files), which the page reads from file:// in
Chromium to page, filter and sort over the whole run."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _browser import chromium
from xai_core.report.gallery import CHUNK, PAGE, gallery_order
from xai_core.report.html_reports import write_dataset_report

METHODS = ("gradcam", "layercam")
CLASSES = ("cat", "dog", "fox", "owl", "yak")


def make_rows(count: int, seed: int = 0) -> list[dict]:
    """`count` rows as the job writes them with --pictures maps (each with `thumbs`, as
    `dataset.with_thumbnails` gives them), five of every 185 rows refused files, in shuffled order."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in rng.permutation(count):
        true = CLASSES[i % len(CLASSES)]
        key = f"{hashlib.sha256(str(i).encode()).hexdigest()[:32]}-{'0' * 16}"
        row = {"path": f"{true}/{i:05d}.jpg", "key": key, "true_label": true, "error": None, "maps_file": "raw-x",
               "maps_index": 0, "target": 1, "target_label": "tabby"}
        if (i // len(CLASSES)) % 37 == 20:  # some in the paged run beyond its first page
            row.update(error="Not an image.", label=None, probability=None, pictures=None)
        else:
            row.update(label=true if rng.random() < 0.5 else "tabby", probability=float(rng.random()), pictures="maps",
                       seconds=float(rng.random()),
                       **{f"{m}_insertion_auc": float(rng.random()) for m in METHODS},
                       thumbs={"h": 32, "w": 32, "maps": {m: base64.b64encode(rng.integers(0, 256, 1024, np.uint8)
                                                                              .tobytes()).decode() for m in METHODS}})
        rows.append(row)
    return rows


def _summary(count: int) -> dict:
    return {"input": "in", "files": count, "explained": count, "refused": 0,
            "settings": {"methods": list(METHODS), "model": "m", "layers": ["l"]},
            "methods": {m: {"title": m.upper()} for m in METHODS}}


def _write(out: Path, rows: list[dict]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    return write_dataset_report(out, rows, _summary(len(rows)))


def _script_rows(out: Path) -> dict:
    (script,) = (out / "gallery").glob("rows-*.js")
    text = script.read_text()
    assert text.startswith("xaiGallery(") and text.endswith(");\n")
    return json.loads(text[len("xaiGallery("):-3])


def test_index_html_does_not_grow_with_the_run(tmp_path):
    small = _write(tmp_path / "small", make_rows(200)).stat().st_size
    large = _write(tmp_path / "large", make_rows(2000)).stat().st_size
    assert abs(large - small) < 0.01 * small, (small, large)  # the first page only, whatever the run's size
    assert small < 200_000
    index = _script_rows(tmp_path / "large")
    assert index["n"] == 2000 and len(index["thumb"]) == 2000 and "thumbs" not in index["columns"]
    assert sorted(index["values"][index["columns"].index("path")]) == index["values"][index["columns"].index("path")]
    explained = [r for r in gallery_order(make_rows(2000))[PAGE:] if r["pictures"] == "maps"]
    thumbs = sorted(p.name for p in (tmp_path / "large" / "gallery" / "thumbs").iterdir())
    assert thumbs == sorted(f"{r['key']}.png" for r in explained)  # beyond the first page, one file per row
    strip = Image.open(tmp_path / "large" / "gallery" / "thumbs" / thumbs[0])
    assert strip.size == (32, 32 * len(METHODS)) and strip.mode == "P"
    row = next(r for r in explained if f"{r['key']}.png" == thumbs[0])
    np.testing.assert_array_equal(np.asarray(strip)[32:], np.frombuffer(
        base64.b64decode(row["thumbs"]["maps"]["layercam"]), np.uint8).reshape(32, 32))


def test_the_sidecars_follow_the_run_and_a_small_run_needs_none(tmp_path):
    out = tmp_path / "out"
    rows = make_rows(300)
    _write(out, rows)
    first = set((out / "gallery").rglob("*.*"))
    kept = [r for r in rows if not r["path"].startswith("cat/")]
    _write(out, kept)  # the cat rows are gone: their thumbnails and the previous rows script with them
    names = {p.name for p in (out / "gallery" / "thumbs").iterdir()}
    assert not any(f"{r['key']}.png" in names for r in rows if r["path"].startswith("cat/"))
    assert len(list((out / "gallery").glob("rows-*.js"))) == 1 and _script_rows(out)["n"] == len(kept)
    assert not [p for p in (out / "gallery").rglob("*.tmp")] and first
    page = _write(out, rows[:PAGE]).read_text()  # every row fits in index.html: no sidecar
    assert not [p for p in (out / "gallery").rglob("*.*")] and '"script":null' in page


@pytest.fixture(scope="module")
def paged_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("paged")
    rows = make_rows(2 * PAGE + 30)
    (out / "maps").mkdir()
    for row in rows:
        Image.new("RGB", (8, 8), (90, 120, 150)).save(out / "maps" / f"{row['key']}.jpg")
    _write(out, rows)
    return out, gallery_order(rows)


def test_the_gallery_pages_filters_and_sorts_the_whole_run_from_file(paged_run):
    out, rows = paged_run
    total = len(rows)
    with chromium() as browser:
        page = browser.new_page()
        errors, thumbs, failed = [], set(), []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.on("requestfinished", lambda r: thumbs.add(r.url) if "/gallery/thumbs/" in r.url else None)
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.goto((out / "index.html").as_uri())
        page.wait_for_function(f"document.getElementById('count').innerText === '{total} of {total} images'")
        assert page.locator(".card").count() == PAGE and page.locator("#pageno").inner_text() == "page 1 of 3"
        assert page.locator(".card figcaption").first.inner_text() == rows[0]["path"]
        page.click("#next")
        assert page.locator(".card").count() == PAGE
        assert page.locator(".card .meta b, .card figure > figcaption").first.inner_text() == rows[PAGE]["path"]
        drawn = [r for r in rows[PAGE:2 * PAGE] if r["pictures"] == "maps"]
        assert page.locator(".card canvas").count() == len(METHODS) * len(drawn)
        page.wait_for_function("[...document.querySelectorAll('.card canvas')].every(c => c.width === 32)")
        page.wait_for_timeout(300)
        assert {u.rsplit("/", 1)[1] for u in thumbs} == {f"{r['key']}.png" for r in drawn} and failed == []
        page.click("#next")
        assert page.locator(".card").count() == total - 2 * PAGE and page.locator("#next").is_disabled()
        # sorting and filtering see every row, not the page on screen
        page.select_option("#sort", "gradcam_insertion_auc")
        page.check("#desc")
        best = max((r for r in rows if r.get("gradcam_insertion_auc") is not None),
                   key=lambda r: r["gradcam_insertion_auc"])
        assert page.locator("#pageno").inner_text() == "page 1 of 3"
        assert page.locator(".card figcaption").first.inner_text() == best["path"]
        page.select_option("#cls", "owl")
        owls = sum(r["true_label"] == "owl" for r in rows)
        assert page.locator("#count").inner_text() == f"{owls} of {total} images"
        page.select_option("#correct", "error")
        assert page.locator("#count").inner_text() == \
            f"{sum(r['true_label'] == 'owl' and bool(r['error']) for r in rows)} of {total} images"
        assert errors == []


def test_without_its_sidecar_the_page_says_so_and_shows_the_first_page(paged_run, tmp_path):
    out, rows = paged_run
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "index.html").write_text((out / "index.html").read_text())  # index.html alone, moved elsewhere
    with chromium() as browser:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto((copy / "index.html").as_uri())
        page.wait_for_selector("#partial:not([hidden])")
        assert f"the first {PAGE} of {len(rows)} images only" in page.locator("#partial").inner_text()
        assert page.locator(".card").count() == PAGE and page.locator("#count").inner_text() == f"{PAGE} of {PAGE} images"
        assert errors == []


def test_thumbnails_are_made_a_chunk_at_a_time(tmp_path):
    """The job gives the report its rows without thumbnails and a function that makes them: the
    report asks for at most a page or a chunk at a time (the whole run's thumbnails, about 1 GB at
    100k images x 8 methods, are never in memory at once), and writes exactly what it writes for
    rows that carry their thumbnails."""
    rows = make_rows(3 * CHUNK + 7)
    bare = [{k: v for k, v in r.items() if k != "thumbs"} for r in rows]
    by_key = {r["key"]: r for r in rows}
    asked = []

    def thumbnails(some):
        asked.append(len(some))
        return [by_key[r["key"]] for r in some]

    out_given, out_made = tmp_path / "given", tmp_path / "made"
    for out in (out_given, out_made):
        out.mkdir()
    write_dataset_report(out_given, rows, _summary(len(rows)))
    write_dataset_report(out_made, bare, _summary(len(rows)), thumbnails)
    assert max(asked) <= max(CHUNK, PAGE) and sum(asked) == len(rows)
    files = lambda out: {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert files(out_made) == files(out_given)
