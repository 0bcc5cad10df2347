"""Benchmark of `xai_core.class_concepts` (concepts across a class, issue 30) at ResNet-50's layer4
(random weights: the compute is the same), on JPEG photos generated from assets/images (random
crops, flips and small rotations, as bench_dataset.py makes them, in a temporary folder):

- speed: `--images` photos (default 1000) through `class_concepts` (5 concepts, fidelity and crops
  on) against their forward passes alone (decoding, preprocessing and the model, in the same
  batches); goal: at most 2x the forwards plus the NMF;
- memory (`--memory-images`, default 10000; 0 skips it): RSS of this process sampled after every
  batch of a run on small photos at a small input (`--memory-size`, default 64 px, so 10,000 photos
  stay minutes on a CPU; many locations: MiniBatchNMF, streamed); the growth from the end of the
  first batch to the largest value; goal: at most 1 GB.

    XAI_OFFLINE=1 python benchmarks/bench_concepts.py                      # 1,000 + 10,000 photos
    XAI_OFFLINE=1 python benchmarks/bench_concepts.py --images 200 --memory-images 2000   # quicker
    XAI_OFFLINE=1 python benchmarks/bench_concepts.py --images 200 --memory-images 2000 --stream  # streamed
    python benchmarks/bench_concepts.py --device cuda --images 1000 --memory-images 10000 --memory-size 224
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import torch
from torchvision.transforms._presets import ImageClassification

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import xai_core  # noqa: E402
from xai_core._timing import synchronize  # noqa: E402
from xai_core.concepts import extract  # noqa: E402
from xai_core.explain import images_per_batch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_batch import rss_mb, table  # noqa: E402
from bench_dataset import make_photos  # noqa: E402

LAYER, K = "layer4", 5


def resnet50(device: str, size: int) -> xai_core.ModelHandle:
    torch.manual_seed(0)
    handle = xai_core.load_model("torchvision:resnet50", weights=None, device=device)
    if size != 224:
        handle = dataclasses.replace(handle, transforms=ImageClassification(crop_size=size, resize_size=size))
    return handle


def forwards(handle, paths: list, batch: int) -> float:
    """Seconds to decode, preprocess and run the model on every photo, `batch` at a time."""
    synchronize(handle.device)
    t0 = time.perf_counter()
    with torch.no_grad():
        for first in range(0, len(paths), batch):
            x = handle.prepare([xai_core.load_image(p) for p in paths[first:first + batch]]).x
            handle.module(x)
    synchronize(handle.device)
    return time.perf_counter() - t0


def speed(count: int, work: Path, device: str, size: int) -> dict:
    paths = make_photos(work / "speed", count)
    handle = resnet50(device, size)
    batch = images_per_batch(handle)
    forwards(handle, paths[:batch], batch)  # warm-up
    t_forward = forwards(handle, paths, batch)
    t0 = time.perf_counter()
    result = xai_core.class_concepts(handle, paths, 0, n_concepts=K, layer=LAYER)
    total = time.perf_counter() - t0
    nmf = result.timings["nmf"]
    return {"run": f"speed, {count} photos at {size} px", "device": str(handle.device), "solver": result.solver,
            "forwards s": t_forward, "class_concepts s": total, "of it NMF s": nmf,
            "(total - NMF) / forwards": (total - nmf) / t_forward, "goal": "<= 2",
            "fit s": result.timings["fit"], "scores s": result.timings["scores"],
            "fidelity s": result.timings["fidelity"]}


def memory(count: int, work: Path, device: str, size: int) -> dict:
    paths = make_photos(work / "memory", count, side=max(size + 16, 80))
    handle = resnet50(device, size)
    samples: list = []

    def sample(stage: str, done: int, total: int) -> None:
        samples.append((stage, done, rss_mb("VmRSS")))

    t0 = time.perf_counter()
    result = xai_core.class_concepts(handle, paths, 0, n_concepts=K, layer=LAYER, progress=sample, top_crops=2)
    seconds = time.perf_counter() - t0
    first, peak = samples[0][2], max(r for _, _, r in samples)
    return {"run": f"memory, {count} photos at {size} px", "device": str(handle.device), "solver": result.solver,
            "seconds": seconds, "RSS after 1st batch MB": first, "largest MB": peak, "growth MB": peak - first,
            "goal": "<= 1024", "locations": count * result.coefficients.shape[2] * result.coefficients.shape[3]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=224, help="input size of the speed run (default: 224)")
    parser.add_argument("--memory-images", type=int, default=10000)
    parser.add_argument("--memory-size", type=int, default=64)
    parser.add_argument("--stream", action="store_true", help="stream (MiniBatchNMF) at any size, as many "
                        "locations do: shows that mode's time and memory on counts this machine runs quickly")
    args = parser.parse_args()
    if args.stream:
        extract.STREAM_ROWS = 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.images:
            rows.append(speed(args.images, Path(tmp), args.device, args.size))
            print(table(rows[-1:]), flush=True)
        if args.memory_images:
            rows.append(memory(args.memory_images, Path(tmp), args.device, args.memory_size))
            print(table(rows[-1:]), flush=True)
    print(f"\nResNet-50 (random weights) at {LAYER}, {K} concepts, torch threads {torch.get_num_threads()}, "
          f"{time.strftime('%Y-%m-%d')}")


if __name__ == "__main__":
    main()
