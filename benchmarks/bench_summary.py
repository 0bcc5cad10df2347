"""Benchmark of `xai_core.dataset.summarize` (summary.json) at dataset scale: 100,000 synthetic rows
(Grad-CAM, HiResCAM and LayerCAM plus the random map, with evaluation scores, true labels and a few
NaN scores), on one thread. Prints, per NaN pattern:

- time: summarize's wall time (best of --repeats), BLAS and OpenMP limited to one thread;
- memory: the peak of what summarize allocates above the rows (tracemalloc, numpy's buffers
  included), in a separate run (tracing slows the code down).

    XAI_OFFLINE=1 python benchmarks/bench_summary.py [--rows 100000] [--repeats 2] [--pattern rows]

NaN patterns: "rows" (a few images without any score: every score column has the same number of
values), "methods" (a few images without one method's scores: one count per method), "scattered"
(each score column its own NaNs: the worst case, one bootstrap draw per column). The bootstrap draws
its resample indices once per distinct number of values (same seed, same indices), so its cost grows
with the number of distinct counts, not with the number of columns.

The issue's goals for the "rows" pattern at 100,000 rows: at most 10 s on one core, at most 300 MB
above the rows.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported: one core
os.environ.setdefault("XAI_OFFLINE", "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from xai_core.dataset import EVAL_SCORES, Settings, columns, summarize  # noqa: E402
from xai_core.models.zoo import imagenet_categories  # noqa: E402

METHODS = ("gradcam", "hirescam", "layercam")
PATTERNS = ("rows", "methods", "scattered")
GOAL_SECONDS, GOAL_MB = 10.0, 300.0


def make_rows(count: int, pattern: str, seed: int = 0) -> list[dict]:
    """`count` rows of results.parquet's columns: 50 true labels (40 ImageNet classes, 10 folder
    names that are not), predictions right half the time, scores in [0, 1], 1% refused files, and a
    few NaN scores laid out by `pattern`."""
    rng = np.random.default_rng(seed)
    cats = imagenet_categories()
    labels = [cats[i] for i in range(0, 400, 10)] + [f"folder_{i}" for i in range(10)]
    cols = columns(METHODS, True)
    scored = [c for c in cols if c.endswith(tuple(EVAL_SCORES))]
    values = rng.random((count, len(scored)))
    if pattern == "rows":
        values[rng.choice(count, 20, replace=False)] = np.nan
    elif pattern == "methods":
        for m, method in enumerate(("random",) + METHODS):
            hit = rng.choice(count, 5 + m, replace=False)
            values[np.ix_(hit, [j for j, c in enumerate(scored) if c.startswith(f"{method}_")])] = np.nan
    else:
        for j in range(len(scored)):
            values[rng.choice(count, 3 + j, replace=False), j] = np.nan
    rows = []
    for i in range(count):
        true = labels[i % len(labels)]
        row = dict.fromkeys(cols)
        row.update(path=f"{true}/{i:06d}.jpg", key=f"k{i}", true_label=true)
        if i % 100 == 99:
            row["error"] = "Not an image."
        else:
            row.update(label=true if rng.random() < 0.5 else "tabby", probability=float(rng.random()), target=1,
                       seconds=0.05 + 0.01 * float(rng.random()),
                       **{f"{m}_seconds": 0.01 * float(rng.random()) for m in METHODS},
                       **{c: float(v) for c, v in zip(scored, values[i])})
        rows.append(row)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--pattern", choices=PATTERNS + ("all",), default="all")
    args = parser.parse_args(argv)
    settings = Settings("bench", hashlib.sha256(b"bench").hexdigest(), METHODS, None, ("layer",), True)
    cats = imagenet_categories()
    print(f"summarize over {args.rows:,} rows ({', '.join(METHODS)} + random, evaluation scores), one thread; "
          f"numpy {np.__version__}, {os.cpu_count()} CPUs")
    for pattern in PATTERNS if args.pattern == "all" else (args.pattern,):
        rows = make_rows(args.rows, pattern)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            summary = summarize(rows, settings, categories=cats)
            times.append(time.perf_counter() - start)
        json.dumps(summary, allow_nan=False)
        tracemalloc.start()
        summarize(rows, settings, categories=cats)
        peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        counts = {summary["methods"][m][s]["n"] for m in summary["methods"] for s in EVAL_SCORES}
        counts.add(summary["seconds_per_image"]["n"])
        ok = min(times) <= GOAL_SECONDS and peak_mb <= GOAL_MB
        print(f"  {pattern:9s} {len(counts):2d} distinct counts: {min(times):6.2f} s (best of {len(times)}), "
              f"peak {peak_mb:6.1f} MB above the rows{'' if ok or pattern != 'rows' else '  (over the goal)'}")
    print(f"  accuracy: {summary['accuracy_note']}")


if __name__ == "__main__":
    main()
