"""End to end in a real browser: `streamlit run` on loopback, Debian's headless Chromium driven by
Playwright (no browser download), pick a sample, open the CAM page, wait for the Plotly heatmaps,
save a screenshot.

Also a script that refreshes the README screenshots:

    XAI_OFFLINE=1 python tests/test_browser_e2e.py --sample cat.png --out assets
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
#: The sample in use when a session starts (its gallery button reads "In use").
FIRST = "cat.png"
SAMPLES = sorted(p.name for p in (ROOT / "assets" / "images").iterdir() if p.suffix in {".png", ".jpg"})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(timeout: float = 90) -> Iterator[str]:
    """`streamlit run streamlit_app.py` on a free loopback port; yields its URL, stops it after."""
    port = _free_port()
    env = dict(os.environ, XAI_OFFLINE="1")
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    log = tempfile.TemporaryFile()  # a file, not a pipe: a chatty server can never block on it
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"streamlit exited early:\n{log.read().decode(errors='replace')}")
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("streamlit did not become healthy in time")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def capture(url: str, sample: str, out_dir: Path, dff: bool = False) -> dict:
    """Open the app, choose `sample` in the gallery, open the CAM page (and the DFF page), wait for
    the heatmaps, save screenshots and download the CAM page's HTML report into `out_dir`, then
    drag-zoom the first map; returns the files' paths and, as "zoomed_ranges", every panel's
    axis ranges after the zoom."""
    from playwright.sync_api import expect, sync_playwright

    shots: dict = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1900})
            page.goto(url, timeout=120_000)
            expect(page.get_by_text("Why did the classifier decide that?").first).to_be_visible(timeout=120_000)
            if sample != FIRST:
                page.locator("button", has_text="Use this").nth(_button_index(sample)).click(timeout=60_000)
            expect(page.get_by_text(f"Current image: {sample}")).to_be_visible(timeout=60_000)
            page.get_by_role("link", name="Compare CAM methods").first.click()
            expect(page.get_by_role("heading", name="Compare CAM methods")).to_be_visible(timeout=60_000)
            page.wait_for_function(  # the grid: 5 heatmaps drawn by Plotly
                "() => document.querySelectorAll('.js-plotly-plot g.hm image').length >= 5", timeout=120_000
            )
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
                page.wait_for_function(
                    "() => document.querySelectorAll('.js-plotly-plot g.hm image').length >= 5", timeout=120_000
                )
                page.wait_for_timeout(1500)
                shots["dff"] = out_dir / "screenshot_dff.png"
                page.screenshot(path=str(shots["dff"]))
        finally:
            browser.close()
    return shots


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


def _button_index(sample: str) -> int:
    """Position of `sample`'s "Use this" button (the image in use has an "In use" button instead)."""
    others = [s for s in SAMPLES if s != FIRST]
    return others.index(sample)


def test_cam_page_in_chromium(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    pytest.importorskip("playwright.sync_api", reason="playwright is missing: pip install playwright")
    with streamlit_server() as url:
        shots = capture(url, "coffee.png", tmp_path)
    png = shots["cam"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    report = shots["report"].read_text()
    assert "CAM comparison: coffee.png" in report and report.count("Plotly.newPlot") == 3
    ranges = dict(shots["zoomed_ranges"])  # zoom is linked: every panel shows the same zoomed window
    assert len(ranges) == 10 and len({tuple(r) for k, r in ranges.items() if k.startswith("x")}) == 1
    assert len({tuple(r) for k, r in ranges.items() if k.startswith("y")}) == 1
    assert ranges["xaxis"][1] - ranges["xaxis"][0] < 150  # zoomed in from 224 pixels


def test_deep_link_on_a_fresh_server_opens_the_page_through_the_router() -> None:
    """The first visitor of a new server opening /dff gets the DFF page with the shared sidebar
    (not Streamlit's pages-folder mode, which would run pages/dff.py without the entry point)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    pytest.importorskip("playwright.sync_api", reason="playwright is missing: pip install playwright")
    from playwright.sync_api import expect, sync_playwright

    with streamlit_server() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url + "/dff", timeout=120_000)
            expect(page.get_by_role("heading", name="Concepts in the image (DFF)")).to_be_visible(timeout=120_000)
            expect(page.get_by_text("Current image: cat.png")).to_be_visible(timeout=60_000)
            page.wait_for_function(
                "() => document.querySelectorAll('.js-plotly-plot g.hm image').length >= 4", timeout=120_000
            )
            expect(page.get_by_role("link", name="Compare CAM methods")).to_be_visible()
            expect(page.get_by_text("This app has encountered an error")).to_have_count(0)
        finally:
            browser.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Save screenshots of the CAM and DFF pages.")
    parser.add_argument("--sample", default="coffee.png", choices=SAMPLES)
    parser.add_argument("--out", type=Path, default=ROOT / "assets")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with streamlit_server() as server_url, tempfile.TemporaryDirectory() as warm_up:
        capture(server_url, next(s for s in SAMPLES if s not in (args.sample, FIRST)), Path(warm_up))
        shots = capture(server_url, args.sample, args.out, dff=True)  # times shown: a warm server's
    shots.pop("report").unlink()
    for kind in ("cam", "dff"):
        print(kind, shots[kind])
