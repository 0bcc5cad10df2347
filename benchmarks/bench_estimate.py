"""Benchmark: the Faithfulness page's time estimate against the real `evaluate`. For 3 sample photos x
2 layers of the bundled EfficientNet-Lite0 and gradcam, layercam, eigencam at the default steps (with
the sanity check), it prints two estimates made before each run: "fresh", as a fresh process makes it
(no evaluation observed yet: the timed forward, imputation and cost model alone), and "shown", what the
page shows (refined by the evaluations before it in this process); then the seconds `evaluate` really
took, the ratios real / estimate, and whether every ratio is within 0.5x-2x. The machine's load
average is printed: on a shared machine the ratio moves with it.

    XAI_OFFLINE=1 python benchmarks/bench_estimate.py [--device cpu] [--images cat.png,coffee.png,rocket.jpg]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import xai_core  # noqa: E402
from xai_core.faithfulness import estimate as estimate_module  # noqa: E402

METHODS = ["gradcam", "layercam", "eigencam"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", default="cat.png,coffee.png,rocket.jpg")
    parser.add_argument("--layers", default="", help="comma list; default: the model's default layer and one other")
    args = parser.parse_args()
    handle = xai_core.load_model("efficientnet_lite0", device=args.device)
    layers = args.layers.split(",") if args.layers else _two_layers(handle)
    print(f"torch threads {__import__('torch').get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"device {args.device}, load average {os.getloadavg()}")
    print(f"{'image':<12} {'layer':<8} {'fresh s':>8} {'shown s':>8} {'real s':>8} {'real/fresh':>10} "
          f"{'real/shown':>10}  load(1 min)")
    ratios = []
    for name in args.images.split(","):
        path = ROOT / "assets" / "images" / name
        for layer in layers:
            explanation = xai_core.explain(handle, path, METHODS, layer=layer)
            fresh = _fresh_estimate(handle, explanation)
            shown = xai_core.estimate_evaluation_seconds(handle, explanation)
            t0 = time.perf_counter()
            xai_core.evaluate(handle, path, explanation)
            real = time.perf_counter() - t0
            ratios += [real / fresh, real / shown]
            print(f"{name:<12} {layer:<8} {fresh:8.1f} {shown:8.1f} {real:8.1f} {real / fresh:10.2f} {real / shown:10.2f}"
                  f"  {os.getloadavg()[0]:.1f}", flush=True)
    inside = all(0.5 <= r <= 2.0 for r in ratios)
    print(f"real / estimate from {min(ratios):.2f} to {max(ratios):.2f}: "
          f"{'all' if inside else 'NOT all'} within 0.5x-2x")


def _fresh_estimate(handle, explanation) -> float:
    """The estimate with this process's observed evaluations set aside (a benchmark may look inside)."""
    observed = estimate_module._OBSERVED
    estimate_module._OBSERVED = type(observed)()
    try:
        return xai_core.estimate_evaluation_seconds(handle, explanation)
    finally:
        estimate_module._OBSERVED = observed


def _two_layers(handle) -> list[str]:
    names = list(handle.layers)
    default = handle.default_layer if isinstance(handle.default_layer, str) else names[-1]
    other = next(n for n in reversed(names) if n != default)
    return [default, other]


if __name__ == "__main__":
    main()
