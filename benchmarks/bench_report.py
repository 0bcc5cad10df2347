"""Benchmark of the dataset report (index.html and its gallery/ sidecars) at dataset scale: 100,000
synthetic rows of 8 methods with evaluation scores, written as with `--pictures maps` (each
explained row carries its map thumbnails, as `dataset.with_thumbnails` gives them to the report;
1% refused files). Prints index.html's size, the sidecars' total size and file count, and the
seconds `write_dataset_report` took (the sidecars included): wall time, and the CPU time of this
process (all its threads; the machine's load average is printed, a shared machine stretches the
wall time).

    XAI_OFFLINE=1 python benchmarks/bench_report.py [--rows 100000] [--methods 8] [--out DIR]

The thumbnails are drawn from a pool of 256 smooth maps (so that the rows do not hold 1 GB of
distinct strings): every row still gets its own thumbnail file, of a realistic size.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from xai_core._pool import usable_cpus  # noqa: E402
from xai_core.dataset import EVAL_SCORES, columns  # noqa: E402
from xai_core.report import write_dataset_report  # noqa: E402
from xai_core.report.gallery import FOLDER, PAGE  # noqa: E402

METHODS = ("gradcam", "gradcam++", "xgradcam", "eigencam", "layercam", "hirescam", "scorecam", "ablationcam")
SIDE = 32  # dataset.writer.THUMBNAIL: the thumbnails' largest side


def _smooth_maps(count: int, rng) -> list[str]:
    """`count` thumbnails (a few Gaussian blobs each, uint8, base64), as the writer makes them."""
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    out = []
    for _ in range(count):
        cam = sum(np.exp(-((yy - rng.uniform(0, SIDE)) ** 2 + (xx - rng.uniform(0, SIDE)) ** 2)
                         / rng.uniform(20, 120)) for _ in range(3))
        out.append(base64.b64encode(np.uint8(255 * cam / cam.max()).tobytes()).decode("ascii"))
    return out


def make_rows(count: int, methods, seed: int = 0) -> list[dict]:
    """`count` rows of results.parquet's columns written with --pictures maps, with `thumbs`."""
    rng = np.random.default_rng(seed)
    labels = [f"class_{i:03d}" for i in range(50)]
    cols = columns(methods, True)
    scored = [c for c in cols if c.endswith(tuple(EVAL_SCORES))]
    values = rng.random((count, len(scored)))
    pool = _smooth_maps(256, rng)
    rows = []
    for i in range(count):
        true = labels[i % len(labels)]
        row = dict.fromkeys(cols)
        key = f"{hashlib.sha256(str(i).encode()).hexdigest()[:32]}-{'0' * 16}"
        row.update(path=f"{true}/{i:06d}.jpg", key=key, content_key=key[:32], true_label=true)
        if i % 100 == 99:
            row.update(error="Not an image.", pictures="none")
        else:
            picks = rng.integers(0, len(pool), len(methods))
            row.update(label=true if rng.random() < 0.5 else "tabby", probability=float(rng.random()), target=1,
                       target_label="tabby", top5_labels=[true, "tabby", "a", "b", "c"],
                       top5_probabilities=[0.5, 0.2, 0.1, 0.1, 0.1], pictures="maps", maps_file=f"raw-{i // 64:024x}",
                       maps_index=i % 64, seconds=0.05 + 0.01 * float(rng.random()),
                       **{f"{m}_seconds": 0.01 * float(rng.random()) for m in methods},
                       **{c: float(v) for c, v in zip(scored, values[i])},
                       thumbs={"h": SIDE, "w": SIDE, "maps": {m: pool[p] for m, p in zip(methods, picks)}})
        rows.append(row)
    return rows


def _size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else []
    return sum(p.stat().st_size for p in files), len(files)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--methods", type=int, default=8, choices=range(1, len(METHODS) + 1))
    parser.add_argument("--out", help="the results folder to write into (default: a temporary one)")
    args = parser.parse_args(argv)
    methods = METHODS[:args.methods]
    rows = make_rows(args.rows, methods)
    summary = {"input": "bench", "files": args.rows, "explained": args.rows - args.rows // 100,
               "refused": args.rows // 100, "settings": {"methods": list(methods), "model": "bench", "layers": ["l"]},
               "methods": {m: {"title": m} for m in methods}}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        out.mkdir(parents=True, exist_ok=True)
        print(f"write_dataset_report: {args.rows:,} rows x {len(methods)} methods (--pictures maps), "
              f"{usable_cpus()} usable CPUs of {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} before")
        for run in ("first write", "rewrite (thumbnails kept)"):
            start, cpu = time.perf_counter(), time.process_time()
            index = write_dataset_report(out, rows, summary)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            sidecars, files = _size(out / FOLDER)
            print(f"  {run:26s} {seconds:7.1f} s ({cpu:5.1f} s CPU)   index.html {index.stat().st_size / 2**20:6.2f} MB "
                  f"(the first {PAGE} rows)   {FOLDER}/ {sidecars / 2**20:7.1f} MB in {files:,} files   "
                  f"load average {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
