"""Benchmark: server-side render times of the dashboard's CAM page, measured with streamlit's AppTest
(the whole script run: entry point, sidebar, page, cached calls, figure building and serialisation;
no browser). Prints:

- cold start: the first run of a new session in a fresh process (imports, model load, first image);
- new image: the CAM page's render after uploading a photo not seen before, default methods
  (prediction + one shared pass for the 5 default maps + figures), the model already loaded;
- display only: the CAM page's re-render after an opacity or colormap change (nothing recomputed).

    XAI_OFFLINE=1 python benchmarks/bench_app.py [--repeats 6]

The issue's goals on a 2-core CPU with the bundled model: new image <= 3 s, display only <= 0.5 s.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("XAI_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import streamlit.testing.v1.app_test as app_test_module  # noqa: E402
from PIL import Image  # noqa: E402
from streamlit.runtime.pages_manager import PagesManager  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from pages._streamlit_internals import end_pages_folder_mode  # noqa: E402

GOAL_NEW, GOAL_DISPLAY = 3.0, 0.5


class _NavigationPagesManager(PagesManager):
    """As on a real server: once st.navigation has run, pages/ is not a v1 pages folder (AppTest
    would otherwise rerun only the page file, skipping the entry point, and time too little)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        end_pages_folder_mode()


def _timed_run(at: AppTest) -> float:
    t0 = time.perf_counter()
    at.run(timeout=600)
    seconds = time.perf_counter() - t0
    if at.exception:
        raise RuntimeError(at.exception[0].value)
    if at.error:
        raise RuntimeError(at.error[0].value)
    return seconds


def _new_photos(count: int) -> list[tuple[str, bytes]]:
    """`count` photos the app has not seen: the samples, cropped by a few pixels, as JPEG."""
    samples = sorted(p for p in (ROOT / "assets" / "images").iterdir() if p.suffix in {".png", ".jpg"})
    photos = []
    for i in range(count):
        image = Image.open(samples[i % len(samples)]).convert("RGB")
        image = image.crop((i + 1, i + 1, image.width, image.height))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=92)
        photos.append((f"bench_{i}.jpg", buffer.getvalue()))
    return photos


def _summary(name: str, times: list[float], goal: float) -> str:
    verdict = "meets" if max(times) <= goal else ("median meets" if statistics.median(times) <= goal else "misses")
    return (f"{name:<32} median {statistics.median(times):6.3f} s   min {min(times):6.3f} s   "
            f"max {max(times):6.3f} s   (n={len(times)}, goal <= {goal} s: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=6, help="new images and display changes to time")
    args = parser.parse_args()
    app_test_module.PagesManager = _NavigationPagesManager

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=600)
    cold = _timed_run(at)
    handle = at.session_state["run.model"][0]
    at.switch_page("pages/cam.py")
    _timed_run(at)  # the default image on the CAM page: warms the shared-pass code paths
    at.segmented_control(key="w:image.source").set_value("Upload")
    _timed_run(at)

    new_image = []
    for name, data in _new_photos(args.repeats):
        at.file_uploader(key="w:upload").set_value((name, data, "image/jpeg"))
        new_image.append(_timed_run(at))
        assert at.session_state["image.name"] == name

    display = []
    for i in range(args.repeats):
        if i % 2:
            at.selectbox(key="w:view.colormap").set_value(["Viridis", "Jet"][i // 2 % 2])
        else:
            at.slider(key="w:view.opacity").set_value(0.3 + 0.1 * (i % 5))
        display.append(_timed_run(at))

    print(f"model: {handle.spec.title} ({handle.name}), device {handle.device}, {os.cpu_count()} CPU cores")
    print(f"{'cold start (new session + model)':<32} {cold:6.3f} s")
    print(_summary("CAM page, new image", new_image, GOAL_NEW))
    print(_summary("CAM page, display-only change", display, GOAL_DISPLAY))


if __name__ == "__main__":
    main()
