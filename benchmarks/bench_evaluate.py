"""Benchmark: `evaluate` with the bundled EfficientNet-Lite0 and 5 gradient methods (gradcam,
hirescam, gradcam++, xgradcam, layercam) on the cat photo, on the CPU (default) or a GPU. Parts:

  full    all the scores (deletion, insertion, ROAD, confidence change, random baseline, sanity check,
          agreement): the time of each stage and of each partial result; goal on a 2-core CPU <= 15 s,
          the first scores within 5 s. The first run in the process is reported as "cold".
  single  `evaluate(..., sanity=False)` on one image: median total and ROAD stage.
  batch   `evaluate_batch` on `--images` photos (the bundled ones, mirrored and rotated) x 2 maps.
  solver  ROAD's imputation alone for the systems of one `single` call (32 at the default layer:
          4 distinct maps x 8 masks): the exact sparse solve (`FastImputer`, 2 threads) against the
          batched device solve (`harmonic_fill`), and the largest per-pixel difference.

    XAI_OFFLINE=1 python benchmarks/bench_evaluate.py [--device cpu] [--parts full,single,batch,solver]
    python benchmarks/bench_evaluate.py --device cuda          # about 1 minute on one GPU

At the default layer (`head`, a GAP + linear head) gradcam = hirescam = xgradcam by construction, and
`evaluate` scores their common map once; `--layer stage7` times 5 different maps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_batch  # noqa: E402
import xai_core  # noqa: E402
from xai_core._timing import synchronize  # noqa: E402
from xai_core.faithfulness import ROAD_PERCENTILES, curves, imputation, road  # noqa: E402
from xai_core.faithfulness.baseline import random_map, same_map_groups  # noqa: E402
from xai_core.faithfulness.road import RoadJobs  # noqa: E402

METHODS = ["gradcam", "hirescam", "gradcam++", "xgradcam", "layercam"]
BATCH_METHODS = ["gradcam", "layercam"]
IMAGE = ROOT / "assets" / "images" / "cat.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--parts", default="full,single,batch,solver")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layer", default=None, help="target layer (default: the model's)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--images", type=int, default=64, help="images of the batch part")
    parser.add_argument("--batch-size", type=int, default=None, help="images per forward (default: evaluate's)")
    args = parser.parse_args()
    handle = xai_core.load_model("efficientnet_lite0", device=args.device)
    explanation = xai_core.explain(handle, IMAGE, METHODS, layer=args.layer)
    options = {} if args.batch_size is None else {"batch_size": args.batch_size}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, device "
          f"{args.device}; {handle.name} at {', '.join(explanation.layers)}; steps {args.steps}; "
          f"medians of {args.repeats} warm runs")
    parts = args.parts.split(",")
    if "full" in parts:
        full(handle, explanation, args, options)
    if "single" in parts:
        runs = [_timed(lambda: xai_core.evaluate(handle, IMAGE, explanation, sanity=False, steps=args.steps,
                                                 **options), handle.device) for _ in range(args.repeats + 1)][1:]
        print(f"single: evaluate, {len(METHODS)} methods, sanity=False: median {_median(runs, 'total'):.2f} s "
              f"(ROAD stage {_median(runs, 'road'):.2f} s, deletion/insertion {_median(runs, 'deletion_insertion'):.2f} s)"
              f"; {', '.join(f'{s:.2f}' for s, _ in runs)} s")
    if "batch" in parts:
        images = photos(args.images)
        explanations = xai_core.explain_batch(handle, images, BATCH_METHODS, layer=args.layer)
        runs = [_timed(lambda: xai_core.evaluate_batch(handle, images, explanations, steps=args.steps, **options),
                       handle.device) for _ in range(args.repeats)]
        print(f"batch: evaluate_batch, {len(images)} images x {len(BATCH_METHODS)} maps: median "
              f"{statistics.median(s for s, _ in runs):.1f} s ({', '.join(f'{s:.1f}' for s, _ in runs)} s)")
    if "solver" in parts:
        solver(handle, explanation, args.repeats)


def full(handle, explanation, args, options) -> None:
    totals, stages = [], []
    for run in range(args.repeats + 1):
        t0, partials = time.perf_counter(), []
        result = xai_core.evaluate(handle, IMAGE, explanation, steps=args.steps,
                                   on_partial=lambda p: partials.append((time.perf_counter() - t0, p.pending)),
                                   **options)
        print(f"full, {'cold' if run == 0 else 'warm'} run: " + ", ".join(
            f"{s:.1f} s ({'+'.join(pending) or 'complete'})" for s, pending in partials))
        if run:
            totals.append(time.perf_counter() - t0)
            stages.append(result.timings)
    print(f"notes: {' '.join(result.notes) or '-'}")
    for stage in stages[0]:
        print(f"  {stage:<20} {statistics.median(s.get(stage, 0.0) for s in stages):6.2f} s")
    estimate = xai_core.estimate_evaluation_seconds(handle, explanation, steps=args.steps, sanity=True)
    print(f"full: all scores median {statistics.median(totals):.2f} s (goal <= 15 s on 2 CPU cores); one "
          f"scoring forward {curves.forward_seconds(handle) * 1000:.0f} ms per image; the estimate was {estimate:.1f} s")


def solver(handle, explanation, repeats: int) -> None:
    """The exact and the batched solve of the ROAD systems of one `single` call."""
    x = handle.preprocess(xai_core.load_image(IMAGE))
    maps = {m: np.float32(explanation.maps[m]) for m in explanation.maps}
    cams = [maps[rep] for rep in same_map_groups(maps)] + [random_map(tuple(x.shape[-2:]))]
    cams = np.stack([curves.rank_map(curves.ranks(c), c.shape) for c in cams])
    jobs = RoadJobs(x, cams, ROAD_PERCENTILES)
    unknown, image = jobs.unknown, x[0].cpu()

    def exact():
        with ThreadPoolExecutor(2) as pool:  # as `RoadJobs` ran them before the batched solve
            return torch.stack(list(pool.map(lambda m: road.FastImputer(noise=0.0)(image, (~m).float()), unknown)))

    batched_in = (x.expand(len(unknown), -1, -1, -1), unknown.to(x.device))
    exact_runs = [_timed(exact, "cpu") for _ in range(repeats)]
    batched_runs = [_timed(lambda: imputation.harmonic_fill(*batched_in), handle.device) for _ in range(repeats + 1)][1:]
    diff = float((batched_runs[0][1].cpu() - exact_runs[0][1]).abs().max())
    print(f"solver: {len(unknown)} systems ({len(cams)} maps x {jobs.job_count} masks, 3 x {x.shape[-2]} x "
          f"{x.shape[-1]}): exact (SuperLU, 2 CPU threads) median {statistics.median(s for s, _ in exact_runs):.2f} s "
          f"({', '.join(f'{s:.2f}' for s, _ in exact_runs)}), batched on {handle.device} median "
          f"{statistics.median(s for s, _ in batched_runs):.3f} s ({', '.join(f'{s:.3f}' for s, _ in batched_runs)}); "
          f"max |diff| {diff:.1e}")


def photos(count: int) -> list:
    """`count` photos: bench_batch's (the bundled ones, mirrored and rotated)."""
    return bench_batch.photos(count)


def _timed(fn, device) -> tuple[float, object]:
    synchronize(device)
    t0 = time.perf_counter()
    out = fn()
    synchronize(device)
    return time.perf_counter() - t0, out


def _median(runs, stage: str) -> float:
    return statistics.median(result.timings[stage] for _, result in runs)


if __name__ == "__main__":
    main()
