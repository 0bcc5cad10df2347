"""GPU benchmark (issue 12's goals), ResNet-50 on one CUDA device, batch 64:

- Grad-CAM on the batch: images/s of `explain_batch` against pytorch-grad-cam's batched GradCAM
  (goal: at least 5x) and against an inference forward (goal: at least 60% of its images/s);
- the same with `precision="bf16"`, and the largest map difference to fp32;
- the 8 gradient CAMs on one image against one forward (goal: within 5x);
- `evaluate` with 5 methods on one image, without the sanity check (goal: 0.3 s or less);
- peak GPU memory per batch size.

    python benchmarks/bench_gpu.py [--batch 64] [--repeats 5]

Prints the card, the torch and CUDA versions and Markdown tables; exits 2 without a CUDA device.
Needs this repository's requirements (grad-cam, ttach, scipy...) next to torch.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench_batch  # noqa: E402
import xai_core  # noqa: E402
from xai_core._timing import synchronize  # noqa: E402

EVAL_METHODS = ["gradcam", "hirescam", "gradcam++", "xgradcam", "layercam"]


def bf16_difference(handle, batch: int, layer: str) -> float:
    images = bench_batch.photos(batch)
    fp32 = xai_core.explain_batch(handle, images, ["gradcam"], layer=layer, batch_size=batch)
    bf16 = xai_core.explain_batch(handle, images, ["gradcam"], targets=[r.target for r in fp32], layer=layer,
                                  batch_size=batch, precision="bf16")
    return max(float(np.abs(a.maps["gradcam"] - b.maps["gradcam"]).max()) for a, b in zip(fp32, bf16))


def evaluate_seconds(handle, layer: str, repeats: int) -> float:
    image = bench_batch.photos(1)[0]
    explanation = xai_core.explain(handle, image, EVAL_METHODS, layer=layer)
    xai_core.evaluate(handle, image, explanation, sanity=False)  # warm-up
    times = []
    for _ in range(repeats):
        synchronize(handle.device)
        t0 = time.perf_counter()
        xai_core.evaluate(handle, image, explanation, sanity=False)
        synchronize(handle.device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--layer", default="layer4")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("No CUDA device here: run this on a machine with an NVIDIA GPU (the CPU figures come from "
              "benchmarks/bench_batch.py).")
        return 2
    handle = bench_batch.resnet50("cuda")
    torch.backends.cudnn.benchmark = True
    print(f"# {bench_batch.describe('cuda')}; ResNet-50 ({handle.weights_source}); medians of {args.repeats}")
    rows = bench_batch.measure(handle, args.batch, args.layer, args.repeats)
    rows += [{**r, "what": r["what"] + ", bf16"}
             for r in bench_batch.measure(handle, args.batch, args.layer, args.repeats, precision="bf16")[1:2]]
    rows += [bench_batch.single_image(handle, layer, args.repeats) for layer in ("layer3", "layer4")]
    rows.append({"what": f"evaluate, {len(EVAL_METHODS)} methods, 1 image, no sanity check",
                 "ours s": evaluate_seconds(handle, args.layer, args.repeats)})
    print(bench_batch.table(rows))
    print(f"\nbf16 vs fp32 Grad-CAM maps, batch {args.batch}: max |diff| {bf16_difference(handle, args.batch, args.layer):.2e}")
    print()
    print(bench_batch.table(bench_batch.peak_memory("cuda", [1, 16, 64, 256], args.layer)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
