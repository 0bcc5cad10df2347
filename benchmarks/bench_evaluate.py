"""Benchmark: all the scores of `evaluate` (deletion, insertion, ROAD, confidence change, random
baseline, sanity check, agreement) for 5 gradient methods on one image with the bundled
EfficientNet-Lite0. Goal: <= 15 s on a 2-core CPU, the first scores (`on_partial`'s first call:
the random map's and the first map's curves) within 5 s. Prints the time of each stage, of each
partial result, and the page's estimate; the first run in the process is reported as "cold" (the
forward's timing, the randomized copy of the sanity check and the first forwards are made then).

    XAI_OFFLINE=1 python benchmarks/bench_evaluate.py [--repeats 2] [--layer head] [--steps 20]

At the default layer (`head`, a GAP + linear head) gradcam = hirescam = xgradcam by construction, and
`evaluate` scores their common map once; `--layer stage7` times 5 different maps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import xai_core  # noqa: E402
from xai_core.faithfulness import curves  # noqa: E402

METHODS = ["gradcam", "hirescam", "gradcam++", "xgradcam", "layercam"]
IMAGE = Path(__file__).resolve().parents[1] / "assets" / "images" / "cat.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--layer", default=None, help="target layer (default: the model's)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=None, help="images per forward (default: evaluate's)")
    args = parser.parse_args()
    handle = xai_core.load_model("efficientnet_lite0", device="cpu")
    explanation = xai_core.explain(handle, IMAGE, METHODS, layer=args.layer)
    options = {} if args.batch_size is None else {"batch_size": args.batch_size}
    totals, cpu, stages = [], [], []
    for run in range(args.repeats + 1):
        t0, c0, partials = time.perf_counter(), _cpu(), []
        result = xai_core.evaluate(handle, IMAGE, explanation, steps=args.steps,
                                   on_partial=lambda p: partials.append((time.perf_counter() - t0, p.pending)),
                                   **options)
        print(f"{'cold' if run == 0 else 'warm'} run: " + ", ".join(
            f"{s:.1f} s ({'+'.join(pending) or 'complete'})" for s, pending in partials))
        if run:
            totals.append(time.perf_counter() - t0)
            cpu.append(_cpu() - c0)
            stages.append(result.timings)
    forward = curves.forward_seconds(handle)
    estimate = xai_core.estimate_evaluation_seconds(handle, explanation, steps=args.steps, sanity=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
          f"{handle.name} at {', '.join(explanation.layers)}; methods {', '.join(METHODS)}; steps {args.steps}")
    print(f"notes: {' '.join(result.notes) or '-'}")
    for stage in stages[0]:
        values = [s.get(stage, 0.0) for s in stages]
        print(f"  {stage:<20} {statistics.median(values):6.2f} s")
    print(f"all scores: median {statistics.median(totals):.2f} s, min {min(totals):.2f} s over {len(totals)} runs "
          f"(goal <= 15 s)")
    print(f"process CPU time per run: {statistics.median(cpu):.1f} s (2 free cores give up to 2x the wall time; "
          f"less means other load); one scoring forward takes {forward * 1000:.0f} ms per image, so a run "
          f"costs about {statistics.median(totals) / forward:.0f} image forwards; the page's estimate was {estimate:.1f} s")


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


if __name__ == "__main__":
    main()
