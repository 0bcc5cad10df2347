"""Extra time and memory of `batch --concepts K` (issue 30, dataset mode): the same dataset run with
and without --concepts, each in its own process (peak RSS is per process), on an ImageFolder made
from assets/images (one class folder per photo, `--per-class` crops and flips of it, in a temporary
folder), Grad-CAM, --pictures none. Prints per run the wall seconds, peak RSS, the end-of-run concept
step's seconds (summary.json's concepts.seconds) and the kept activations' size on disk.

    XAI_OFFLINE=1 python benchmarks/bench_dataset_concepts.py                       # lite, 6 x 16 photos
    XAI_OFFLINE=1 python benchmarks/bench_dataset_concepts.py --model torchvision:resnet50 --per-class 24 --repeat 1
    (torchvision:... models with random weights: the compute is the same)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_folder(root: Path, per_class: int) -> None:
    for photo in sorted((ROOT / "assets" / "images").iterdir()):
        base = Image.open(photo).convert("RGB")
        w, h = base.size
        (root / photo.stem).mkdir(parents=True)
        for i in range(per_class):
            crop = base.crop((i * w // (4 * per_class), (i % 4) * h // 40, w - (i % 5) * w // 40,
                              h - i * h // (5 * per_class)))
            (ImageOps.mirror(crop) if i % 2 else crop).save(root / photo.stem / f"{i:03d}.jpg", quality=92)


def one_run(args: argparse.Namespace) -> None:
    import xai_core

    random = args.model.startswith("torchvision:")  # e.g. torchvision:resnet50, random weights (offline)
    handle = xai_core.load_model(args.model, device=args.device, **({"weights": None} if random else {}))
    out = Path(args.out)
    started = time.perf_counter()
    result = xai_core.dataset.run(handle, args.input, str(out), ["gradcam"], batch_size=args.batch_size,
                                  pictures="none", concepts=args.concepts or None)
    wall = time.perf_counter() - started
    block = json.loads((out / "summary.json").read_text()).get("concepts", {})
    kept = sum(f.stat().st_size for f in (out / "concepts" / "activations").glob("*.npy")) if args.concepts else 0
    print(json.dumps({"concepts": args.concepts, "files": result.explained, "wall_s": round(wall, 2),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                      "concept_step_s": round(block.get("seconds", 0.0), 2), "classes": len(block.get("classes", [])),
                      "kept_mb": round(kept / 2**20, 2)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--per-class", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--input"), parser.add_argument("--out"), parser.add_argument("--concepts", type=int)
    args = parser.parse_args()
    if args.out:  # a child: one run
        one_run(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        make_folder(Path(tmp) / "in", args.per_class)
        for n in range(args.repeat):
            for k in (0, args.k):
                cmd = [sys.executable, __file__, "--model", args.model, "--device", args.device, "--batch-size",
                       str(args.batch_size), "--input", str(Path(tmp) / "in"), "--out", str(Path(tmp) / f"o{n}{k}"),
                       "--concepts", str(k)]
                print(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
