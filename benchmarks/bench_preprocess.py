"""Preprocessing on the model's device (`xai_core.models.preprocessing.prepare`) against the PIL
path (torchvision's `ImageClassification` preset, one image at a time): how far apart the model
inputs are, and how fast each is, with the same decoded photos on both sides.

    XAI_OFFLINE=1 python benchmarks/bench_preprocess.py                 # CPU, 50 photos, batch 64
    python benchmarks/bench_preprocess.py --device cuda --batch 256     # on a GPU
    XAI_OFFLINE=1 python benchmarks/bench_preprocess.py --profile       # + explain_batch's profile

Photos: the bundled ones, mirrored, rotated and rescaled (0.5x to 2x) to make `--photos` distinct
images of many sizes. Differences are per pixel of the normalised input, and in uint8 levels
(difference x 255 x std). `--profile` prints the top entries of a profile of `explain_batch` over
`--batch` photos with every thread included (yappi: `pip install yappi`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms._presets import ImageClassification

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench_batch  # noqa: E402
import xai_core  # noqa: E402
from xai_core._pool import worker_pool  # noqa: E402
from xai_core._timing import median_time  # noqa: E402
from xai_core.images import bounded_aspect  # noqa: E402
from xai_core.models.preprocessing import prepare  # noqa: E402

PRESETS = {
    "bilinear 256/224 (EfficientNet-Lite0, ResNet-50 V1)": ImageClassification(crop_size=224, resize_size=256),
    "bilinear 232/224 (ResNet-50 V2)": ImageClassification(crop_size=224, resize_size=232),
    "bicubic 248/224 (timm's usual)": ImageClassification(crop_size=224, resize_size=248,
                                                          interpolation=InterpolationMode.BICUBIC),
}


def photos(count: int) -> list:
    """`count` distinct photos of many sizes (bench_batch's photos, rescaled 0.5x to 2x)."""
    scales = [0.5, 0.75, 1.0, 1.5, 2.0]
    return [p.resize((max(1, int(p.width * scales[i % 5])), max(1, int(p.height * scales[i % 5]))))
            for i, p in enumerate(bench_batch.photos(count))]


def pil_path(transforms, images, device) -> torch.Tensor:
    """The preset on each PIL image in the worker threads, as `explain_batch` did before issue 20."""
    return torch.cat(list(worker_pool().map(lambda p: transforms(bounded_aspect(p)).unsqueeze(0).to(device),
                                            images)))


def profile(batch: int, device: str, top: int) -> None:
    import yappi

    handle = xai_core.load_model(device=device)
    images = bench_batch.photos(batch)
    xai_core.explain_batch(handle, images, ["gradcam"], batch_size=batch)  # warm-up
    yappi.set_clock_type("wall")
    yappi.start(profile_threads=True)
    xai_core.explain_batch(handle, images, ["gradcam"], batch_size=batch)
    yappi.stop()
    stats = yappi.get_func_stats()
    stats.sort("tsub")
    print(f"\n## Profile of explain_batch, {batch} photos, Grad-CAM, {handle.name} on {device}, all threads "
          "(yappi, wall clock), top entries by own time\n")
    print("| function | calls | own s | total s |\n|---|---:|---:|---:|")
    for s in list(stats)[:top]:
        print(f"| {s.module.split('site-packages/')[-1]}:{s.lineno} {s.name} | {s.ncall} | {s.tsub:.3f} | "
              f"{s.ttot:.3f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--photos", type=int, default=50)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"# {bench_batch.describe(args.device)}")
    images = photos(args.photos)
    print(f"\n## Model input: prepare vs the PIL preset, {len(images)} photos\n")
    print("| preset | max abs diff | mean abs diff | max (uint8 levels) | mean (uint8 levels) |\n|---|---:|---:|---:|---:|")
    for name, transforms in PRESETS.items():
        ours = prepare(transforms, images, device).x
        theirs = pil_path(transforms, images, device)
        diff = (ours - theirs).abs()
        levels = diff * 255 * torch.tensor(transforms.std, device=device)[None, :, None, None]
        print(f"| {name} | {diff.max():.4f} | {diff.mean():.2e} | {levels.max():.2f} | {levels.mean():.4f} |")
    batch = bench_batch.photos(args.batch)
    transforms = next(iter(PRESETS.values()))
    pil_s = median_time(lambda: pil_path(transforms, batch, device), device, args.repeats)
    ours_s = median_time(lambda: prepare(transforms, batch, device), device, args.repeats)
    print(f"\n## Speed, batch {args.batch}, medians of {args.repeats}\n")
    print("| path | s | img/s |\n|---|---:|---:|")
    print(f"| PIL preset per image (worker threads) | {pil_s:.3f} | {args.batch / pil_s:.0f} |")
    print(f"| prepare (batched on {args.device}) | {ours_s:.3f} | {args.batch / ours_s:.0f} |")
    if args.profile:
        profile(args.batch, args.device, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
