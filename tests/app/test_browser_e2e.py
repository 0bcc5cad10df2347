"""End to end in a real browser: `streamlit run` on loopback, Debian's headless Chromium driven by
Playwright (no browser download). One server and one browser for every check: a deep link on the
fresh server, unknown paths, the favicon, no file-system path on any page, every method pill
fully visible, and the CAM page itself (pick a sample, wait for the Plotly heatmaps, screenshot,
HTML report, linked zoom).

Locally a missing Chromium or Playwright skips these tests; under CI=true it fails them.

Also a script that refreshes the README screenshots:

    XAI_OFFLINE=1 python tests/app/test_browser_e2e.py --sample cat.png --out assets
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: run as a script too
import _browser  # noqa: E402
from _browser import CHROMIUM, browser_unavailable, chromium, streamlit_server  # noqa: E402,F401  (CHROMIUM: bench_cancel.py's)

ROOT = Path(__file__).resolve().parents[2]
#: The sample in use when a session starts (its gallery button reads "In use").
FIRST = "cat.png"
SAMPLES = sorted(p.name for p in (ROOT / "assets" / "images").iterdir() if p.suffix in {".png", ".jpg"})


def capture(browser, url: str, sample: str, out_dir: Path, dff: bool = False) -> dict:
    """Open the app, choose `sample` in the gallery, open the CAM page (and the DFF page), wait for
    the heatmaps, save screenshots and download the CAM page's HTML report into `out_dir`, then
    drag-zoom the first map; returns the files' paths and, as "zoomed_ranges", every panel's
    axis ranges after the zoom, and as "page" the open page (closed with its browser)."""
    from playwright.sync_api import expect

    shots: dict = {}
    page = browser.new_page(viewport={"width": 1600, "height": 1900})
    page.goto(url, timeout=120_000)
    expect(page.get_by_text("Why did the classifier decide that?").first).to_be_visible(timeout=120_000)
    if sample != FIRST:
        card = page.locator('[class*="st-key-sample_card_"]').filter(has=page.get_by_text(sample, exact=True))
        card.get_by_role("button", name="Use this").click(timeout=60_000)  # the gallery button under `sample`
    expect(page.get_by_text(f"Current image: {sample}")).to_be_visible(timeout=60_000)
    page.get_by_role("link", name="Compare CAM methods").first.click()
    expect(page.get_by_role("heading", name="Compare CAM methods")).to_be_visible(timeout=60_000)
    _wait_for_heatmaps(page, 5)
    page.wait_for_timeout(1500)  # let the last layout/animation settle
    shots["cam"] = out_dir / "screenshot_cam.png"
    page.screenshot(path=str(shots["cam"]))
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Download HTML report").click()
    shots["report"] = out_dir / "cam_report.html"
    download.value.save_as(shots["report"])
    shots["zoomed_ranges"] = _drag_zoom_first_panel(page)
    if dff:
        page.get_by_role("link", name="Concepts (DFF)").first.click()
        _wait_for_heatmaps(page, 5)
        page.wait_for_timeout(1500)
        shots["dff"] = out_dir / "screenshot_dff.png"
        page.screenshot(path=str(shots["dff"]))
    shots["page"] = page
    return shots


def _wait_for_heatmaps(page, n: int) -> None:
    page.wait_for_function(  # n heatmaps drawn by Plotly
        f"() => document.querySelectorAll('.js-plotly-plot g.hm image').length >= {n}", timeout=120_000
    )


_AXIS_RANGES = """() => {
    const layout = document.querySelectorAll('.js-plotly-plot')[1]._fullLayout;
    return Object.keys(layout).filter(k => /^[xy]axis[0-9]*$/.test(k)).sort()
        .map(k => [k, layout[k].range.map(Math.round)]);
}"""


def _drag_zoom_first_panel(page) -> list:
    """Drag a zoom box over the first map of the CAM grid; returns every panel's axis ranges."""
    box = page.locator(".js-plotly-plot").nth(1).locator("g.hm image").first.bounding_box()
    page.mouse.move(box["x"] + 40, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + 120, box["y"] + 140, steps=8)
    page.mouse.up()
    page.wait_for_timeout(1000)
    return page.evaluate(_AXIS_RANGES)


#: Every method pill (and every widget label) on the page: its text, whether it is selected, whether
#: any part of it is cut off (an element narrower than its content), and whether it lies inside the
#: window's width.
_LABELS = """() => [...document.querySelectorAll('button[data-variant="pills"], [data-testid="stWidgetLabel"]')]
    .map(el => {
        const r = el.getBoundingClientRect();
        const clipped = [el, ...el.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1);
        return {text: el.innerText.trim(), pill: el.dataset.variant === 'pills', selected: el.dataset.selected === 'true',
                clipped, inside: r.left >= 0 && r.right <= window.innerWidth};
    })"""

_FAVICON = """async () => {
    const link = document.querySelector("link[rel~='icon']");
    const href = link ? link.href : "";
    const response = href.startsWith("data:") || new URL(href).origin === location.origin ? await fetch(href) : null;
    return {href, same_origin: response !== null, status: response ? response.status : 0,
            type: response ? response.headers.get("content-type") : ""};
}"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object, Path]]:
    """(url, browser, folder): one fresh server and one browser for every test of this module. The
    server's configuration names a weights file that is not there, so `auto` falls back with a
    notice: a notice that must not reveal that path either."""
    folder = tmp_path_factory.mktemp("server")
    with chromium() as browser, streamlit_server(XAI_WEIGHTS=str(folder / "secret" / "resnet50.pth")) as url:
        yield url, browser, folder


def test_deep_link_on_a_fresh_server_opens_the_page_through_the_router(served) -> None:
    """The first visitor of a new server opening /dff gets the DFF page with the shared sidebar
    (not Streamlit's pages-folder mode, which would run pages/dff.py without the entry point).
    This must stay the module's first browser test: it needs the server fresh."""
    from playwright.sync_api import expect

    url, browser, _ = served
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url + "/dff", timeout=120_000)
    expect(page.get_by_role("heading", name="Concepts in the image (DFF)")).to_be_visible(timeout=120_000)
    expect(page.get_by_text("Current image: cat.png")).to_be_visible(timeout=60_000)
    _wait_for_heatmaps(page, 4)
    expect(page.get_by_role("link", name="Compare CAM methods")).to_be_visible()
    expect(page.get_by_text("This app has encountered an error")).to_have_count(0)
    page.close()


@pytest.mark.parametrize("path", ["/home", "/nope"])
def test_unknown_paths_open_the_start_page(served, path: str) -> None:
    from playwright.sync_api import expect

    url, browser, _ = served
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url + path, timeout=120_000)
    expect(page.get_by_role("heading", name="Why did the classifier decide that?")).to_be_visible(timeout=120_000)
    expect(page.get_by_text("Current image: cat.png")).to_be_visible(timeout=60_000)
    page.wait_for_url(url + "/", timeout=30_000)  # the address becomes the Start page's
    expect(page.get_by_text("Page not found")).to_have_count(0)
    page.close()


def test_favicon_is_served_by_the_app(served) -> None:
    """The tab's icon is a local image the app serves itself (offline-safe), not Streamlit's default."""
    from playwright.sync_api import expect

    url, browser, _ = served
    page = browser.new_page()
    page.goto(url, timeout=120_000)
    expect(page.get_by_role("heading", name="Why did the classifier decide that?")).to_be_visible(timeout=120_000)
    page.wait_for_function("() => (document.querySelector(\"link[rel~='icon']\") || {}).href?.includes('/media/')",
                           timeout=30_000)
    icon = page.evaluate(_FAVICON)
    assert icon["same_origin"] and icon["status"] == 200 and icon["type"].startswith("image/"), icon
    page.close()


def test_no_page_shows_a_file_system_path(served) -> None:
    """Every page's visible text, with the model banner's details open, names no server path (the
    server's configuration names a missing weights file: the banner says so, without its path)."""
    from playwright.sync_api import expect

    from _no_paths import forbidden_strings, leaks

    url, browser, folder = served
    forbidden = forbidden_strings(folder)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url, timeout=120_000)
    for title, link in [("Why did the classifier decide that?", None), ("Compare CAM methods", "Compare CAM methods"),
                        ("Concepts in the image (DFF)", "Concepts (DFF)"),
                        ("Faithfulness: which map can I trust?", "Faithfulness"),
                        ("Dataset: rank the methods over many images", "Dataset")]:
        if link:
            page.get_by_role("link", name=link).first.click()
        expect(page.get_by_role("heading", name=title)).to_be_visible(timeout=120_000)
        banner = page.get_by_text("Model: EfficientNet-Lite0").first
        expect(banner).to_be_visible(timeout=60_000)
        if not page.get_by_text("Why this model").first.is_visible():
            banner.click()  # open the details
        expect(page.get_by_text("Why this model").first).to_be_visible(timeout=10_000)
        text = page.evaluate("() => document.body.innerText")
        assert "XAI_WEIGHTS" in text  # the notice is there...
        assert not leaks(text, forbidden), title  # ... without the path
    page.close()


def test_cam_page_in_chromium(served, tmp_path: Path) -> None:
    import xai_core

    url, browser, _ = served
    shots = capture(browser, url, "coffee.png", tmp_path)
    page = shots.pop("page")
    png = shots["cam"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    report = shots["report"].read_text()
    assert "CAM comparison: coffee.png" in report and report.count("Plotly.newPlot") == 3
    ranges = dict(shots["zoomed_ranges"])  # zoom is linked: every panel shows the same zoomed window
    assert len(ranges) == 10 and len({tuple(r) for k, r in ranges.items() if k.startswith("x")}) == 1
    assert len({tuple(r) for k, r in ranges.items() if k.startswith("y")}) == 1
    assert ranges["xaxis"][1] - ranges["xaxis"][0] < 150  # zoomed in from 224 pixels
    for width in (1600, 1024):  # every method pill and widget label whole, on a wide and a narrow window
        page.set_viewport_size({"width": width, "height": 1200})
        page.wait_for_timeout(500)
        labels = page.evaluate(_LABELS)
        pills = [label for label in labels if label["pill"]]
        cnn_methods = [m for m in xai_core.list_methods() if m not in xai_core.list_methods(xai_core.methods.ATTENTION)]
        assert len(pills) == len(cnn_methods) and sum(p["selected"] for p in pills) == 5, pills
        assert [label for label in labels if label["clipped"] or not label["inside"]] == [], width
    page.close()


def test_browser_tests_fail_under_ci_instead_of_skipping(monkeypatch: pytest.MonkeyPatch) -> None:
    """A browser test that cannot start Chromium skips locally but fails under CI=true."""
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        browser_unavailable("no browser")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no browser"):
        browser_unavailable("no browser")
    monkeypatch.setattr(_browser, "CHROMIUM", "/nonexistent/chromium")
    with pytest.raises(pytest.fail.Exception, match="missing"):
        with chromium():
            pass


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Save screenshots of the CAM and DFF pages.")
    parser.add_argument("--sample", default="coffee.png", choices=SAMPLES)
    parser.add_argument("--out", type=Path, default=ROOT / "assets")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with streamlit_server() as server_url, chromium() as chrome, tempfile.TemporaryDirectory() as warm_up:
        capture(chrome, server_url, next(s for s in SAMPLES if s not in (args.sample, FIRST)), Path(warm_up))
        shots = capture(chrome, server_url, args.sample, args.out, dff=True)  # times shown: a warm server's
    shots.pop("report").unlink()
    for kind in ("cam", "dff"):
        print(kind, shots[kind])


#: The Faithfulness page's box picker: the chart in box-selection mode.
_PICKER = "[...document.querySelectorAll('.js-plotly-plot')].findIndex(p => p._fullLayout && p._fullLayout.dragmode === 'select')"


def test_a_box_dragged_on_the_faithfulness_picture_scores_the_maps(served) -> None:
    """A person drags a box on the picture: Plotly's box selection reaches the page through
    `st.plotly_chart(on_select=...)`, the box is kept, and the outlined maps and the scores appear."""
    from playwright.sync_api import expect

    url, browser, _ = served
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        page.goto(url + "/faithfulness", timeout=120_000)
        expect(page.get_by_text("No object yet").first).to_be_visible(timeout=300_000)
        # The caption can appear before Plotly has drawn the picture; until it has, findIndex is -1
        # and nth(-1) would pick the last (possibly hidden) chart, so wait for the picker itself.
        page.wait_for_function(f"() => ({_PICKER}) >= 0", timeout=120_000)
        picker = page.locator(".js-plotly-plot").nth(page.evaluate(f"() => {_PICKER}"))
        expect(picker).to_be_visible(timeout=120_000)
        picker.scroll_into_view_if_needed()
        area = picker.locator(".nsewdrag").first.bounding_box()
        page.mouse.move(area["x"] + 0.3 * area["width"], area["y"] + 0.25 * area["height"])
        page.mouse.down()
        page.mouse.move(area["x"] + 0.7 * area["width"], area["y"] + 0.8 * area["height"], steps=10)
        page.mouse.up()
        expect(page.get_by_text("The object: the box from").first).to_be_visible(timeout=120_000)
        expect(page.get_by_text("The magenta line").first).to_be_visible(timeout=120_000)
        caption = page.get_by_text("The object: the box from").first.inner_text()
        x0, y0, x1, y1 = (float(v) for v in caption.split("from (")[1].split(" on ")[0]
                          .replace(") to (", ", ").rstrip(")").split(", "))
        assert 55 < x0 < 80 and 45 < y0 < 70 and 145 < x1 < 170 and 170 < y1 < 190, caption  # 224 px picture
    finally:
        page.close()
