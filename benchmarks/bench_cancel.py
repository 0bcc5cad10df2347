"""Benchmark: how soon a changed control gives its new result while a long evaluation runs.

    XAI_OFFLINE=1 python benchmarks/bench_cancel.py

Starts `streamlit run` on loopback and drives Debian's Chromium (Playwright): opens the
Faithfulness page (5 methods, 5% steps), waits 3 s into the scoring, moves the curve step to 10%,
and prints the seconds until the new scores are shown. The old run is cancelled after its current
batch (`pages/_panels.superseded`); without that, Streamlit's fast rerun let it finish beside the
new one (20.7 s against 14.5 s when measured on the 2-core machine).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_browser_e2e import CHROMIUM, streamlit_server  # noqa: E402


def main() -> None:
    with streamlit_server() as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        page.goto(url + "/faithfulness", timeout=120_000)
        page.wait_for_selector("text=Scoring 5 maps", timeout=120_000)
        page.wait_for_timeout(3000)
        started = time.time()
        page.get_by_role("slider").first.focus()
        page.keyboard.press("ArrowLeft")  # 5% -> 10% of the pixels per step
        page.wait_for_selector("text=10 steps per curve", timeout=180_000)
        print(f"new scores shown {time.time() - started:.1f} s after the change")
        print(page.locator("text=Scored in").first.inner_text())
        browser.close()


if __name__ == "__main__":
    main()
