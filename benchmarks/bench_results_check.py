"""Benchmark of what a rerun spends checking a results folder (issue 26): a synthetic folder of
--rows done rows (Grad-CAM, pictures "all", batches of 64, small pictures: the check reads headers
only), then, best of --repeats:

- read_rows: reading every part (checking each part's hash), as a rerun did before the check;
- trusted_rows: the same plus every row's files on disk (maps/ listed once, each raw file's header
  and one picture's size per raw file read once).

    XAI_OFFLINE=1 python benchmarks/bench_results_check.py [--rows 10000] [--repeats 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from xai_core.dataset import Settings, columns, read_rows, write_part  # noqa: E402
from xai_core.dataset.check import trusted_rows  # noqa: E402

BATCH = 64


def make_folder(out: Path, count: int, settings: Settings) -> None:
    """`count` done rows of `settings` in `out`, each with its picture, overlay and raw map."""
    (out / "parts").mkdir(parents=True, exist_ok=True)
    (out / "maps").mkdir(exist_ok=True)
    buffer = out / "proto.jpg"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(buffer)
    jpeg = buffer.read_bytes()
    digest = settings.digest()
    for start in range(0, count, BATCH):
        stem = "raw-" + hashlib.sha256(str(start).encode()).hexdigest()[:24]
        size = min(BATCH, count - start)
        np.save(out / "maps" / f"{stem}.gradcam.npy", np.zeros((size, 32, 32), np.float16))
        rows = []
        for i in range(size):
            key = hashlib.sha256(str(start + i).encode()).hexdigest()[:32] + "-" + digest
            (out / "maps" / f"{key}.jpg").write_bytes(jpeg)
            (out / "maps" / f"{key}_gradcam.jpg").write_bytes(jpeg)
            row = dict.fromkeys(columns(["gradcam"], False))
            row.update(path=f"{start + i}.jpg", key=key, content_key=f"c{start + i}", label="x", probability=0.5,
                       top5_labels=["x"], top5_probabilities=[0.5], target=1, target_label="x", pictures="all",
                       maps_file=stem, maps_index=i, seconds=0.1, gradcam_seconds=0.1)
            rows.append(row)
        write_part(out, rows, settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="where to build the folder (default: a temporary folder)")
    args = parser.parse_args()
    settings = Settings("bench", "f" * 64, ("gradcam",), None, ("layer",))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp) / "results"
        make_folder(out, args.rows, settings)
        times = {"read_rows": [], "trusted_rows": []}
        for _ in range(args.repeats):
            started = time.perf_counter()
            read_rows(out)
            times["read_rows"].append(time.perf_counter() - started)
            started = time.perf_counter()
            rows, damaged, aside = trusted_rows(out, settings.methods, settings.digest())
            times["trusted_rows"].append(time.perf_counter() - started)
            assert len(rows) == args.rows and not damaged and not aside
        print(f"{args.rows} done rows, {os.cpu_count()} cores: " + "; ".join(
            f"{name} {min(values):.2f} s" for name, values in times.items()))


if __name__ == "__main__":
    main()
