"""Benchmark, in a real browser: how soon the Faithfulness page shows its first scores, and how soon a
changed control gives its new result while a long evaluation runs.

    XAI_OFFLINE=1 python benchmarks/bench_cancel.py [--skip-cancel]

Starts `streamlit run` on loopback and drives Debian's Chromium (Playwright). Prints the seconds
from the moment the page is requested to the start of the scoring (its plan and expected time are
shown), to the first scores (the first table row, drawn while the other maps are still being
scored) and to the complete result, for three visits of the default page (5 maps):
on a fresh server (nothing imported or loaded yet), on the warm server with an image not seen yet
(cold caches), and again (cache hit). Then opens the page with 5% steps, waits 3 s into the
scoring, moves the curve step to 10%, and prints the seconds until the new scores are shown. The
old run is cancelled after its current batch (`pages/_streamlit_internals.rerun_requested`); without that,
Streamlit's fast rerun let it finish beside the new one (20.7 s against 14.5 s when measured on
the 2-core machine).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "app"))
from test_browser_e2e import CHROMIUM, streamlit_server  # noqa: E402

#: The score table's caption, drawn with the first partial result ("1 map and the random baseline...").
FIRST_SCORES = re.compile(r"maps? and the random baseline")
VISITS = (("fresh server", "cat.png"), ("warm server, new image", "coffee.png"),
          ("same again (cache hit)", "coffee.png"))
CANCEL_SAMPLE = "rocket.jpg"


def first_scores(browser, url: str) -> None:
    """Seconds to the first scores and to the complete result, per visit (a new session each)."""
    for name, sample in VISITS:
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        started = time.time()
        page.goto(f"{url}/faithfulness?sample={sample}", timeout=180_000)
        scoring = None
        if "cache hit" not in name:  # the plan of the scoring (under the bar), shown until the first scores
            page.get_by_text("on this server").first.wait_for(timeout=180_000)
            scoring = time.time() - started
        page.get_by_text(FIRST_SCORES).first.wait_for(timeout=180_000)
        first = time.time() - started
        page.get_by_text("steps per curve").first.wait_for(timeout=180_000)
        total = time.time() - started
        print(f"{name:<24} " + (f"scoring starts {scoring:5.1f} s, " if scoring else " " * 22)
              + f"first scores {first:5.1f} s, complete {total:5.1f} s")
        page.close()


def cancel(browser, url: str, sample: str) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 2000})
    page.goto(f"{url}/faithfulness?sample={sample}", timeout=120_000)  # an image not scored yet
    page.wait_for_selector("text=Scoring 5 maps", timeout=120_000)
    page.wait_for_timeout(3000)
    started = time.time()
    page.get_by_role("slider").first.focus()
    page.keyboard.press("ArrowLeft")  # 5% -> 10% of the pixels per step
    page.wait_for_selector("text=10 steps per curve", timeout=180_000)
    print(f"new scores shown {time.time() - started:.1f} s after the change")
    print(page.locator("text=Scored in").first.inner_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-cancel", action="store_true", help="only time the first scores")
    args = parser.parse_args()
    with streamlit_server() as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        first_scores(browser, url)
        if not args.skip_cancel:
            cancel(browser, url, CANCEL_SAMPLE)
        browser.close()


if __name__ == "__main__":
    main()
