"""Benchmark: on torchvision ViT-B/16 (random weights, 224 px, CPU), one `explain` with the 8
gradient/activation CAMs vs pytorch-grad-cam calling them one after another with the tutorial's
hand-written reshape_transform; same layer (the default: the last block's ln_1), same target.
Prints the median times, the ratio, one inference forward and the max |diff| per method.

    XAI_OFFLINE=1 python benchmarks/bench_vit.py [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import xai_core  # noqa: E402
from bench_explain import bench  # noqa: E402  (one harness: same timing loop and reference call)

IMAGE = Path(__file__).resolve().parents[1] / "assets" / "images" / "cat.png"


def vit_reshape(tensor: torch.Tensor, height: int = 14, width: int = 14) -> torch.Tensor:
    """pytorch-grad-cam's ViT tutorial transform: drop the class token, tokens -> [B, C, 14, 14]."""
    result = tensor[:, 1:, :].reshape(tensor.size(0), height, width, tensor.size(2))
    return result.transpose(2, 3).transpose(1, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    handle = xai_core.load_model("torchvision:vit_b_16", weights=None, device="cpu")
    layer = handle.default_layer
    x = handle.preprocess(xai_core.load_image(IMAGE))
    lib, our, fwd, diffs = bench(handle, layer, args.repeats, reshape_transform=vit_reshape)
    target = xai_core.explain(handle, IMAGE, methods=["gradcam"], layer=layer).target
    from importlib.metadata import version
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores; "
          f"pytorch-grad-cam {version('grad-cam')}; image {IMAGE.name}")
    print(f"model torchvision:vit_b_16 (random weights, seed {args.seed}), input {tuple(x.shape)}, layer {layer}, "
          f"target {target}, reshape {handle.reshape(layer)}; median of {args.repeats}")
    print(f"pytorch-grad-cam, 8 methods one after another: {lib:.3f} s")
    print(f"xai_core, one explain with the 8:              {our:.3f} s")
    print(f"speed-up: {lib / our:.1f}x (goal >= 5x: {'met' if lib / our >= 5 else 'NOT met'})")
    print(f"one inference forward: {fwd:.3f} s; one explain = {our / fwd:.2f}x a forward")
    print("max |diff| per method (ours vs library):")
    for m, diff in diffs.items():
        print(f"  {m:<20} {diff:.2e}")


if __name__ == "__main__":
    main()
