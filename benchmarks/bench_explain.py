"""Benchmark: one `explain` with the 8 classic gradient/activation CAMs vs pytorch-grad-cam calling
them one after another, same process, model, image, layer and target. Prints times and the max
absolute difference per method.

    XAI_OFFLINE=1 python benchmarks/bench_explain.py [--repeats 3]

ResNet-50 runs with random weights when its pretrained weights are absent: the compute is the same.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import xai_core  # noqa: E402
from xai_core.methods import GRADIENT8  # noqa: E402
from xai_core.errors import WeightsUnavailableError  # noqa: E402
from xai_core.methods.reference import library_map  # noqa: E402

IMAGE = Path(__file__).resolve().parents[1] / "assets" / "images" / "cat.png"


def library_sequential(handle, x, layer, target, reshape_transform=None):
    return {method: library_map(handle, method, layer, x, target, reshape_transform=reshape_transform)
            for method in GRADIENT8}


def bench(handle, layer, repeats, reshape_transform=None):
    """Median seconds of pytorch-grad-cam's 8 CAMs one after another (with `reshape_transform` for a
    transformer layer), of one `explain` with the 8 and of one inference forward; max |diff| per method."""
    x = handle.preprocess(xai_core.load_image(IMAGE))
    ours = xai_core.explain(handle, IMAGE, methods=list(GRADIENT8), layer=layer)  # warm-up
    library_sequential(handle, x, layer, ours.target, reshape_transform)
    t_lib, t_ours, t_fwd = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ref = library_sequential(handle, x, layer, ours.target, reshape_transform)
        t_lib.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ours = xai_core.explain(handle, IMAGE, methods=list(GRADIENT8), layer=layer, target=ours.target)
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with torch.inference_mode():
            handle.module(x)
        t_fwd.append(time.perf_counter() - t0)
    lib, our, fwd = (statistics.median(t) for t in (t_lib, t_ours, t_fwd))
    diffs = {m: float(np.abs(ref[m] - ours.maps[m]).max()) for m in GRADIENT8}
    return lib, our, fwd, diffs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    try:
        resnet = xai_core.load_model("resnet50", device="cpu")
    except WeightsUnavailableError:
        torch.manual_seed(0)
        resnet = xai_core.load_model("resnet50", weights=None, device="cpu")
    lite = xai_core.load_model("efficientnet_lite0", device="cpu")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores; image {IMAGE.name}")
    print(f"{'model':<20}{'layer':<8}{'library 8x':>11}{'one explain':>13}{'speed-up':>10}{'1 forward':>11}"
          f"{'vs fwd':>8}  max |diff| per method")
    for handle, layer in [(resnet, "layer4"), (resnet, "layer3"), (lite, "head"), (lite, "stage6")]:
        lib, our, fwd, diffs = bench(handle, layer, args.repeats)
        worst = max(diffs.values())
        print(f"{handle.name + ('*' if 'random' in handle.weights_source else ''):<20}{layer:<8}{lib:>10.3f}s"
              f"{our:>12.3f}s{lib / our:>9.1f}x{fwd:>10.3f}s{our / fwd:>7.1f}x  worst {worst:.1e}  "
              + " ".join(f"{m}={d:.0e}" for m, d in diffs.items()))
    print("* random weights (pretrained ResNet-50 weights not on this machine; same compute)")


if __name__ == "__main__":
    main()
