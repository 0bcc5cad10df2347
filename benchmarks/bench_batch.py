"""Benchmark: many images at once. `xai_core.explain_batch` against pytorch-grad-cam given the same
batch tensor, and against a plain inference forward, in the same process, on ResNet-50 (random
weights when its pretrained weights are absent: the compute is the same). Prints a Markdown table.

    XAI_OFFLINE=1 python benchmarks/bench_batch.py                  # CPU: batch 16, layer4
    XAI_OFFLINE=1 python benchmarks/bench_batch.py --memory         # + peak memory per batch size
    python benchmarks/bench_batch.py --device cuda --batch 64       # GPU (what bench_gpu.py runs)

Rows: Grad-CAM on the batch (ours vs the library's batched GradCAM), the 8 gradient CAMs on the batch
(ours in one call vs the library's 8 classes one after another), and inference forward throughput.
Ours takes the photos (decoded PIL images) and includes preprocessing; the library and the forward
get the preprocessed tensor. Max |diff| is against the library's maps of the same tensor.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import xai_core  # noqa: E402
from xai_core._timing import synchronize  # noqa: E402
from xai_core.methods import GRADIENT8  # noqa: E402
from xai_core.errors import WeightsUnavailableError  # noqa: E402
from xai_core.methods import get_method  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402


def resnet50(device: str) -> xai_core.ModelHandle:
    try:
        return xai_core.load_model("resnet50", device=device)
    except WeightsUnavailableError:
        torch.manual_seed(0)
        return xai_core.load_model("resnet50", weights=None, device=device)


def photos(count: int) -> list:
    """`count` photos: the bundled ones, mirrored and rotated to make more distinct images."""
    from PIL import ImageOps

    base = [xai_core.load_image(p) for p in sorted((ROOT / "assets" / "images").iterdir())]
    out = []
    while len(out) < count:
        k = len(out) // len(base)
        img = base[len(out) % len(base)]
        out.append(ImageOps.mirror(img) if k % 2 else img.rotate(5 * k) if k else img)
    return out[:count]


def timed(fn, device, repeats: int) -> tuple[float, object]:
    fn()  # warm-up
    times, result = [], None
    for _ in range(repeats):
        synchronize(device)
        t0 = time.perf_counter()
        result = fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def library(handle, method: str, x: torch.Tensor, layer: str, targets: list) -> np.ndarray:
    """pytorch-grad-cam's class for `method` on the whole batch tensor (its own forward/backward)."""
    cls = get_method(method).library_class
    with cls(handle.module, [handle.layers[layer]]) as cam:
        return cam(x, [ClassifierOutputTarget(t) for t in targets])


def measure(handle, batch: int, layer: str, repeats: int, precision=None) -> list[dict]:
    device = handle.device
    images = photos(batch)
    x = torch.cat([handle.preprocess(i) for i in images])
    with torch.inference_mode():
        targets = handle.module(x).argmax(-1).tolist()
    rows = []
    t_fwd, _ = timed(lambda: _forward(handle, x), device, repeats)
    rows.append({"what": f"inference forward, batch {batch}", "seconds": t_fwd, "images/s": batch / t_fwd})
    for methods, label in ((["gradcam"], "Grad-CAM"), (list(GRADIENT8), "8 gradient CAMs")):
        t_ours, ours = timed(lambda: xai_core.explain_batch(handle, images, methods, targets=targets, layer=layer,
                                                           batch_size=batch, precision=precision), device, repeats)
        t_lib, ref = timed(lambda: {m: library(handle, m, x, layer, targets) for m in methods}, device,
                           max(1, repeats if label == "Grad-CAM" else 1))
        diff = max(float(np.abs(ref[m] - np.stack([r.maps[m] for r in ours])).max()) for m in methods)
        rows.append({"what": f"{label}, batch {batch}, {layer}", "library s": t_lib, "ours s": t_ours,
                     "speed-up": t_lib / t_ours, "images/s": batch / t_ours, "vs forward": t_ours / t_fwd,
                     "max diff": diff})
    return rows


def _forward(handle, x):
    with torch.inference_mode():
        return handle.module(x)


def single_image(handle, layer: str, repeats: int) -> dict:
    """The 8 gradient CAMs on one image: ours (one explain) vs one inference forward and the library's
    8 classes one after another."""
    from xai_core.methods.reference import library_map

    device = handle.device
    image = photos(1)[0]
    x = handle.preprocess(image)
    target = int(_forward(handle, x).argmax())
    t_fwd, _ = timed(lambda: _forward(handle, x), device, max(repeats, 5))
    t_ours, ours = timed(lambda: xai_core.explain(handle, image, list(GRADIENT8), target=target, layer=layer),
                         device, repeats)
    t_lib, ref = timed(lambda: {m: library_map(handle, m, layer, x, target) for m in GRADIENT8}, device, 1)
    return {"what": f"8 gradient CAMs, 1 image, {layer}", "library s": t_lib, "ours s": t_ours,
            "speed-up": t_lib / t_ours, "vs forward": t_ours / t_fwd, "forward s": t_fwd,
            # the Eigen methods' sign follows our stated rule, not LAPACK's (README, Methods)
            "max diff": max(float(np.abs(ref[m] - ours.maps[m]).max()) for m in GRADIENT8 if "eigen" not in m)}


def peak_memory(device: str, sizes: list[int], layer: str) -> list[dict]:
    """Peak memory of one `explain_batch` with the 8 gradient CAMs per batch size, each in a fresh
    process after a warm-up: the peak RSS growth (Linux), and on CUDA the allocator's peak."""
    rows = []
    for size in sizes:
        out = subprocess.run([sys.executable, __file__, "--child-memory", str(size), "--device", device,
                              "--layer", layer], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def _child_memory(size: int, device: str, layer: str) -> None:
    handle = resnet50(device)
    images = photos(size)
    xai_core.explain(handle, images[0], ["gradcam"], layer=layer)  # warm-up: allocator and kernels
    base = rss_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # Linux: reset the peak (VmHWM) to the current RSS
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base_gpu = torch.cuda.memory_allocated() / 2**20
    xai_core.explain_batch(handle, images, list(GRADIENT8), layer=layer, batch_size=size)
    row = {"batch": size, "RSS before MB": base, "peak RSS growth MB": rss_mb("VmHWM") - base}
    if device.startswith("cuda"):
        row["GPU peak above the model MB"] = torch.cuda.max_memory_allocated() / 2**20 - base_gpu
    print(json.dumps(row))


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def table(rows: list[dict]) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    fmt = lambda v: v if isinstance(v, str) else (f"{v:.1e}" if isinstance(v, float) and abs(v) < 1e-2  # noqa: E731
                                                  else f"{v:,.3f}" if isinstance(v, float) else str(v))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def describe(device: str) -> str:
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    return f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads), torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--layer", default="layer4")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="also peak memory per batch size")
    parser.add_argument("--bf16", action="store_true", help="also the batch with precision='bf16' (CUDA)")
    parser.add_argument("--child-memory", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_memory:
        return _child_memory(args.child_memory, args.device, args.layer)
    handle = resnet50(args.device)
    print(f"# {describe(args.device)}; ResNet-50 ({handle.weights_source}); {args.repeats} repeats, medians")
    rows = measure(handle, args.batch, args.layer, args.repeats)
    if args.bf16:
        bf16 = measure(handle, args.batch, args.layer, args.repeats, precision="bf16")[1:]
        rows += [{**r, "what": r["what"] + ", bf16"} for r in bf16]
    rows += [single_image(handle, layer, args.repeats) for layer in ("layer3", "layer4")]
    print(table(rows))
    if args.memory:
        sizes = [1, 4, 16, 64] if not args.device.startswith("cuda") else [1, 16, 64, 256]
        print()
        print(table(peak_memory(args.device, sizes, args.layer)))


if __name__ == "__main__":
    main()
