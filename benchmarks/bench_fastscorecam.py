"""Faster Score-CAM vs exact Score-CAM on every sample photo: time and Spearman rank correlation.

    XAI_OFFLINE=1 python benchmarks/bench_fastscorecam.py [--model efficientnet_lite0] [--layer head] [--top-k K]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import xai_core  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--layer", default=None)
    parser.add_argument("--top-k", type=int, default=xai_core.get_method("fastscorecam").defaults["top_k"])
    args = parser.parse_args()
    handle = xai_core.load_model(args.model, device="cpu")
    print(f"model {handle.name} ({handle.weights_source.split(' (')[0]}), layer {args.layer or handle.default_layer}, "
          f"top_k {args.top_k}")
    print(f"| {'image':<18} | {'target':<22} | {'exact':>8} | {'fast':>7} | {'speed-up':>8} | Spearman |")
    print("|" + "|".join("-" * n for n in (20, 24, 10, 9, 10, 10)) + "|")
    for path in sorted((ROOT / "assets" / "images").iterdir()):
        exact = xai_core.explain(handle, path, ["scorecam"], layer=args.layer, batch_size=64)
        fast = xai_core.explain(handle, path, ["fastscorecam"], layer=args.layer, target=exact.target,
                                options={"fastscorecam": {"top_k": args.top_k}})
        t_exact, t_fast = exact.timings["scorecam"], fast.timings["fastscorecam"]
        rho = spearmanr(exact.maps["scorecam"].ravel(), fast.maps["fastscorecam"].ravel())[0]
        print(f"| {path.name:<18} | {exact.target_label[:22]:<22} | {t_exact:7.1f}s | {t_fast:6.2f}s | "
              f"{t_exact / t_fast:7.1f}x | {rho:8.3f} |", flush=True)


if __name__ == "__main__":
    main()
