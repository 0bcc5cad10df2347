"""Benchmark: what `compare_models` costs on top of the two `explain` calls it makes (goal: at most
+10%). The bundled EfficientNet-Lite0 (A) against a torchvision ResNet-18 with random weights (B;
224 px, the same preprocessing geometry, and 256 px, which needs the common grid's resampling) and
against itself; the same for `compare_models_batch` against two `explain_batch` calls. Each row:
median seconds of the two explains, of the comparison, and the overhead, over interleaved repeats;
and the comparison's own work alone (grid, resampling, Spearman, IoU, difference). On the CPU the
seconds are this process's CPU time (`time.process_time`, one torch thread by default), which a busy
shared machine disturbs far less than wall time; on a GPU, wall time.

    XAI_OFFLINE=1 python benchmarks/bench_compare.py [--device cpu] [--threads 1] [--repeats 15] [--methods gradcam]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

os.environ.setdefault("XAI_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import xai_core  # noqa: E402
from xai_core import compare  # noqa: E402
from xai_core._timing import synchronize  # noqa: E402

PHOTOS = sorted(p for p in (ROOT / "assets" / "images").iterdir() if p.suffix in (".png", ".jpg"))
GOAL = 0.10


def _clock(device: torch.device):
    return time.process_time if device.type == "cpu" else time.perf_counter


def _seconds(device: torch.device, call) -> float:
    clock = _clock(device)
    synchronize(device)
    started = clock()
    call()
    synchronize(device)
    return clock() - started


def measure(a, b, methods: list[str], repeats: int, batch: bool) -> tuple[float, float]:
    """Median seconds of (explain A + explain B, compare) over `repeats` interleaved runs (the order
    alternating, so a drift of the machine's load hits both alike), after one warm-up of each;
    `batch`: all the sample photos through the batched calls."""
    image = PHOTOS[1]  # cat.png
    if batch:
        two = lambda: (xai_core.explain_batch(a, PHOTOS, methods), xai_core.explain_batch(b, PHOTOS, methods))  # noqa: E731
        one = lambda: xai_core.compare_models_batch(a, b, PHOTOS, methods)  # noqa: E731
    else:
        two = lambda: (xai_core.explain(a, image, methods), xai_core.explain(b, image, methods))  # noqa: E731
        one = lambda: xai_core.compare_models(a, b, image, methods)  # noqa: E731
    two(), one()
    explains, compares = [], []
    for i in range(repeats):
        if i % 2:
            compares.append(_seconds(a.device, one))
            explains.append(_seconds(a.device, two))
        else:
            explains.append(_seconds(a.device, two))
            compares.append(_seconds(a.device, one))
    return statistics.median(explains), statistics.median(compares)


def own_work(a, b, methods: list[str], repeats: int) -> float:
    """Median seconds of what `compare_models` adds per image to the two explains: the common grid,
    each map resampled onto it (when the geometries differ), Spearman, top-20% IoU and the difference."""
    ea, eb = xai_core.explain(a, PHOTOS[1], methods), xai_core.explain(b, PHOTOS[1], methods)

    def work() -> None:
        grid = None if ea.geometry == eb.geometry else compare.common_grid(ea.geometry, eb.geometry)
        for m in methods:
            ma, mb = ea.maps[m], eb.maps[m]
            if grid is not None:
                ma, mb = compare.on_grid(ma, ea.geometry, grid), compare.on_grid(mb, eb.geometry, grid)
            compare.spearman(ma, mb), compare.top_iou(ma, mb), compare.difference(ma, mb)

    return statistics.median(_seconds(a.device, work) for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on the CPU (default: 1)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--methods", default="gradcam", help="comma list of method ids (default: gradcam)")
    args = parser.parse_args()
    methods = args.methods.split(",")
    torch.set_num_threads(args.threads)
    lite = xai_core.load_model("efficientnet_lite0", device=args.device)
    torch.manual_seed(0)
    resnet = xai_core.load_model("torchvision:resnet18", weights=None, device=args.device)
    torch.manual_seed(0)
    resnet256 = xai_core.load_model("torchvision:resnet18", weights=None, device=args.device, input_size=256)
    pairs = [("lite0 vs itself", lite, lite), ("lite0 vs resnet18 (224 px)", lite, resnet),
             ("lite0 vs resnet18 (256 px)", lite, resnet256)]
    clock = "CPU" if torch.device(args.device).type == "cpu" else "wall"
    print(f"device {args.device} ({clock} seconds), torch threads {torch.get_num_threads()}, methods {','.join(methods)}, "
          f"median of {args.repeats}; batch rows: {len(PHOTOS)} photos")
    print(f"{'pair':<30}{'call':<8}{'2 explains s':>14}{'compare s':>12}{'overhead':>10}{'own work ms':>13}  "
          f"goal <= +{GOAL:.0%}")
    for name, a, b in pairs:
        for batch in (False, True):
            explains, compared = measure(a, b, methods, args.repeats if not batch else max(3, args.repeats // 3),
                                         batch)
            overhead = compared / explains - 1
            verdict = "ok" if overhead <= GOAL else "OVER"
            work = own_work(a, b, methods, args.repeats) * (len(PHOTOS) if batch else 1)
            print(f"{name:<30}{'batch' if batch else 'one':<8}{explains:>14.3f}{compared:>12.3f}{overhead:>+10.1%}"
                  f"{work * 1000:>13.1f}  {verdict}")
    print("own work: the grid, resampling, Spearman, IoU and difference alone (per call: x photos for a batch); "
          "the overhead column also carries the machine's noise.")


if __name__ == "__main__":
    main()
