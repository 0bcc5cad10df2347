"""Benchmark: the attention methods on a vision transformer.

1. Speed (the issue's CPU goal): one `explain` with LeGrad over the last 4 blocks plus Grad-CAM,
   against one inference forward of the same image, on torchvision ViT-B/16 (224 px); median of
   `--repeats`, runs alternated. Also each attention method alone.
2. Which explanation suits a transformer (`--folder DIR`): dataset mode (`xai_core.dataset.run`
   with evaluation) over a folder of photos, for Grad-CAM, LayerCAM, EigenCAM, LeGrad, attention
   rollout and gradient-weighted relevance: deletion AUC (lower is better), insertion AUC and ROAD
   (higher is better), each mean with its 95% bootstrap interval, and the win rate against the
   random map (95% Wilson interval), as summary.json holds them.

    XAI_OFFLINE=1 python benchmarks/bench_attention.py [--repeats 5] [--threads 2]
    XAI_OFFLINE=1 python benchmarks/bench_attention.py --skip-speed --folder PHOTOS \\
        --model torchvision:vit_b_16 --weights DEFAULT [--output DIR] [--steps 20]

Without pretrained weights (`--weights none`) the faithfulness table describes a random network;
it shows the script runs, not which method suits a trained ViT.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import xai_core  # noqa: E402
from xai_core import dataset  # noqa: E402

IMAGE = Path(__file__).resolve().parents[1] / "assets" / "images" / "cat.png"
COMPARED = ("gradcam", "layercam", "eigencam", "legrad", "rollout", "relevance")
SCORES = (("deletion_auc", "deletion AUC (lower better)"), ("insertion_auc", "insertion AUC"),
          ("road_combined", "ROAD combined"))


def _handle(args) -> xai_core.ModelHandle:
    weights = None if str(args.weights).lower() == "none" else args.weights
    handle = xai_core.load_model(args.model, weights=weights, device=args.device)
    if weights is None and args.model.startswith("torchvision:vit"):
        torch.manual_seed(args.seed)  # torchvision zero-initialises the head: every gradient would be 0
        torch.nn.init.normal_(handle.module.heads.head.weight, std=0.05)
    return handle


def speed(handle: xai_core.ModelHandle, repeats: int) -> None:
    image = xai_core.load_image(IMAGE)
    x = handle.preprocess(image)
    runs = {"forward": lambda: _forward(handle, x),
            "gradcam + legrad": lambda: xai_core.explain(handle, image, methods=("gradcam", "legrad")),
            "gradcam": lambda: xai_core.explain(handle, image, methods=("gradcam",)),
            "legrad": lambda: xai_core.explain(handle, image, methods=("legrad",)),
            "rollout": lambda: xai_core.explain(handle, image, methods=("rollout",)),
            "relevance": lambda: xai_core.explain(handle, image, methods=("relevance",))}
    times: dict = {name: [] for name in runs}
    for run in runs.values():
        run()  # warm-up (and the attention layout's probe)
    for _ in range(repeats):
        for name, run in runs.items():  # alternated, so load changes hit every row alike
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    forward = statistics.median(times["forward"])
    print(f"speed, image {IMAGE.name}, input {tuple(x.shape)}, median of {repeats} (min-max):")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<18} {median:7.3f} s ({min(values):.3f}-{max(values):.3f})  {median / forward:5.2f}x forward")


def _forward(handle, x) -> None:
    with torch.inference_mode():
        handle.module(x)


def faithfulness(handle: xai_core.ModelHandle, folder: str, output: str, steps: int, batch_size: int) -> None:
    started = time.perf_counter()
    result = dataset.run(handle, folder, output, COMPARED, evaluate=True, steps=steps, batch_size=batch_size)
    summary = json.loads((Path(output) / "summary.json").read_text())
    print(f"faithfulness over {result.explained} photos of {folder} ({result.refused} refused), steps {steps}, "
          f"{time.perf_counter() - started:.0f} s; mean [95% CI] / win rate vs the random map [95% CI]")
    header = f"  {'method':<28}" + "".join(f"{label:>34}" for _, label in SCORES)
    print(header)
    for method, entry in summary["methods"].items():
        cells = []
        for score, _ in SCORES:
            mean, win = entry.get(score), entry.get(f"{score}_win_rate")
            text = "-" if not mean or mean.get("mean") is None else \
                f"{mean['mean']:.3f} [{mean['low']:.3f}, {mean['high']:.3f}]"
            if win and win.get("mean") is not None:
                text += f" / {100 * win['mean']:.0f}%"
            cells.append(f"{text:>34}")
        print(f"  {entry['title']:<28}" + "".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="torchvision:vit_b_16")
    parser.add_argument("--weights", default="none", help="DEFAULT, a file, or none (random weights)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--folder", help="photos to score the methods on (dataset mode)")
    parser.add_argument("--output", help="results folder (default: a temporary one)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    handle = _handle(args)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, device "
          f"{handle.device}; grad-cam {version('grad-cam')}; model {handle.name} ({handle.weights_source})")
    if not args.skip_speed:
        speed(handle, args.repeats)
    if args.folder:
        with tempfile.TemporaryDirectory() as scratch:
            faithfulness(handle, args.folder, args.output or scratch, args.steps, args.batch_size)


if __name__ == "__main__":
    main()
