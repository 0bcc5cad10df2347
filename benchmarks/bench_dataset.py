"""Benchmark of dataset mode (`python -m xai_core batch`), two figures:

- speed: Grad-CAM over N photos (JPEG files, decoding included) with `xai_core.dataset.run` against a
  plain loop over the same files with pytorch-grad-cam's batched GradCAM (decode, the model's
  preprocessing, GradCAM on a batch of 16; nothing written), same process, ResNet-50 (random
  weights when its pretrained file is absent: the compute is the same);
- memory: RSS over a run of M small generated photos with the bundled EfficientNet-Lite0, sampled
  after every batch; the growth from the end of the first batch to the largest value. With
  `--engine ray` the run is on a local Ray and the RSS is the driver's (this process's).

    XAI_OFFLINE=1 python benchmarks/bench_dataset.py [--photos 200] [--memory-images 2000] [--engine ray]

The photos are made from assets/images (random crops, flips and rotations, saved as JPEG) in a
temporary folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import xai_core  # noqa: E402
from xai_core import dataset  # noqa: E402
from xai_core.errors import WeightsUnavailableError  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_batch import rss_mb  # noqa: E402


def make_photos(folder: Path, count: int, side: int = 0, seed: int = 0) -> list[Path]:
    """`count` JPEGs from the sample photos: random crops, flips and small rotations; `side` > 0
    resizes them to side x side (small files for the memory run)."""
    rng = np.random.default_rng(seed)
    base = [Image.open(p).convert("RGB") for p in sorted((ROOT / "assets" / "images").iterdir())]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        img = base[i % len(base)]
        w, h = img.size
        cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        out = img.crop((x, y, x + cw, y + ch)).rotate(float(rng.uniform(-10, 10)))
        if rng.random() < 0.5:
            out = ImageOps.mirror(out)
        if side:
            out = out.resize((side, side))
        path = folder / f"photo_{i:05d}.jpg"
        out.save(path, quality=90)
        paths.append(path)
    return paths


def library_loop(handle, paths: list[Path], layer: str, batch: int = 16) -> float:
    """Seconds for pytorch-grad-cam's batched GradCAM over `paths`, decoding and preprocessing included."""
    from pytorch_grad_cam import GradCAM

    started = time.perf_counter()
    with GradCAM(handle.module, [handle.layers[layer]]) as cam:
        for i in range(0, len(paths), batch):
            x = torch.cat([handle.preprocess(Image.open(p).convert("RGB")) for p in paths[i:i + batch]])
            cam(x, None)  # top-1 targets, maps [B, H, W]
    return time.perf_counter() - started


def speed(count: int, work: Path, device: str = "cpu", batch: int = 16) -> None:
    try:
        handle = xai_core.load_model("resnet50", device=device)
    except WeightsUnavailableError:
        torch.manual_seed(0)
        handle = xai_core.load_model("resnet50", weights=None, device=device)
    paths = make_photos(work / "photos", count)
    layer = handle.default_layer
    xai_core.explain_batch(handle, [paths[0]] * 2, ["gradcam"])  # warm-up
    lib = library_loop(handle, paths, layer, batch)
    out = work / "out"
    started = time.perf_counter()
    result = dataset.run(handle, str(work / "photos"), str(out), ["gradcam"], batch_size=batch)
    ours = time.perf_counter() - started
    again = time.perf_counter()
    dataset.run(handle, str(work / "photos"), str(out), ["gradcam"], batch_size=batch)
    rerun = time.perf_counter() - again
    print(f"## speed: Grad-CAM over {count} JPEG photos, ResNet-50 ({handle.weights_source}), {layer}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| what | seconds | images/s |\n|---|---|---|")
    print(f"| plain loop, pytorch-grad-cam batched GradCAM (batch {batch}), decoding included, nothing written | "
          f"{lib:.1f} | {count / lib:.1f} |")
    print(f"| `dataset.run` (batch {batch}), decoding, maps, overlays, Parquet, summary and report included | "
          f"{ours:.1f} | {count / ours:.1f} |")
    print(f"| the same command again (every file skipped) | {rerun:.1f} | |")
    print(f"speed-up: **{lib / ours:.2f}x** (goal 1.5x); {result.line()}")


def memory(count: int, work: Path, engine: str = "local") -> None:
    handle = xai_core.load_model("efficientnet_lite0", device="cpu")
    make_photos(work / "small", count, side=96)
    samples = []

    def sample(done: int, total: int) -> None:
        samples.append((done, rss_mb("VmRSS")))

    started = time.perf_counter()
    result = dataset.run(handle, str(work / "small"), str(work / "out_small"), ["gradcam"], batch_size=16,
                         progress=sample, engine=engine)
    seconds = time.perf_counter() - started
    after_first = samples[1][1]
    peak = max(rss for _, rss in samples)
    print(f"\n## memory: {count} generated 96 px photos, bundled EfficientNet-Lite0, Grad-CAM, batch 16, "
          f"{engine} engine ({seconds:.0f} s, {count / seconds:.1f} images/s; RSS of this process)")
    print(f"RSS after the first batch {after_first:.0f} MB, largest {peak:.0f} MB, at the end {samples[-1][1]:.0f} MB: "
          f"growth **{peak - after_first:+.0f} MB** (goal <= 200 MB); {result.line()}")
    marks = [samples[int(len(samples) * f)] for f in (0.25, 0.5, 0.75)] + [samples[-1]]
    print("RSS by images done: " + ", ".join(f"{d}: {r:.0f} MB" for d, r in marks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--memory-images", type=int, default=2000)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--device", default="cpu", help="the speed run's device, e.g. cuda")
    parser.add_argument("--batch", type=int, default=16, help="the speed run's batch size (64 on a GPU)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--engine", choices=["local", "ray"], default="local", help="the memory run's engine")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="xai-bench-dataset-"))
    try:
        if not args.skip_speed:
            speed(args.photos, work, args.device, args.batch)
        if not args.skip_memory:
            memory(args.memory_images, work, args.engine)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nCPU: {os.cpu_count()} cores; python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
