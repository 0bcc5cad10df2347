"""Soak: explain many distinct images in one process and report how resident memory grows.

    XAI_OFFLINE=1 python benchmarks/soak.py [--n 200] [--warmup 20] [--methods gradcam,hirescam,...]

Images are distinct crops, flips and colour shifts of the sample photos. Goal: after warm-up,
200 explanations grow RSS by at most 150 MB.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import xai_core  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def distinct_images(n: int):
    """`n` distinct PNG-encoded images derived from the sample photos."""
    photos = [xai_core.load_image(p) for p in sorted((ROOT / "assets" / "images").iterdir())]
    rng = np.random.default_rng(0)
    for i in range(n):
        img = photos[i % len(photos)]
        w, h = img.size
        box = (int(rng.integers(0, w // 4)), int(rng.integers(0, h // 4)), w - int(rng.integers(0, w // 4)),
               h - int(rng.integers(0, h // 4)))
        img = img.crop(box)
        if i % 2:
            img = ImageOps.mirror(img)
        arr = np.clip(np.asarray(img, dtype=np.int16) + rng.integers(-20, 20, 3), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "PNG")
        yield buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--methods", default="gradcam,hirescam,gradcam++,layercam,eigencam")
    parser.add_argument("--model", default="auto")
    args = parser.parse_args()
    handle = xai_core.load_model(args.model)
    images = distinct_images(args.warmup + args.n)
    for _ in range(args.warmup):
        xai_core.explain(handle, next(images), args.methods)
        xai_core.factorize(handle, xai_core.load_image(next(distinct_images(1))), n_components=3)
    gc.collect()
    start, peak, t0 = rss_mb(), 0.0, time.perf_counter()
    for i, data in enumerate(images, start=1):
        xai_core.explain(handle, data, args.methods)
        peak = max(peak, rss_mb())
        if i % 50 == 0:
            print(f"{i:4d} explanations: RSS {rss_mb():7.1f} MB ({rss_mb() - start:+.1f} MB)", flush=True)
    gc.collect()
    end = rss_mb()
    print(f"model {handle.name}; methods {args.methods}; {args.n} distinct images after {args.warmup} warm-up")
    print(f"RSS after warm-up {start:.1f} MB, after {args.n} explanations {end:.1f} MB: growth {end - start:+.1f} MB "
          f"(peak {peak:.1f} MB; goal <= +150 MB); {(time.perf_counter() - t0) / args.n:.2f} s per explanation")


if __name__ == "__main__":
    main()
