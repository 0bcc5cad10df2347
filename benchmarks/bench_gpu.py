"""GPU benchmark (issue 20's table): every row measured side by side in one run, with the same
inputs for both sides, on ResNet-50 and ViT-B/16 (random weights where no pretrained weights are
cached: the arithmetic is the same).

Rows, for each batch size in --batches:
- inference forward (fp32, bf16 autocast, channels-last): the floor;
- Grad-CAM from the same tensor: pytorch-grad-cam's batched GradCAM against `explain_batch` given
  the tensor (goals: >= 5x the library, >= 60% of the forward's images/s); the largest map difference;
- Grad-CAM from --photos decoded photos (PIL images, preprocessing included): fp32, bf16, channels-last;
- ViT-B/16: forward, the library's batched GradCAM and ours from the same tensor.
Then, once: the 8 gradient CAMs on one image at layer3 and layer4 (ours in one `explain` against one
forward and against the library's 8 classes; goal <= 5x one forward), `evaluate` with 5 maps on one
image without the sanity check (goal <= 0.3 s) and `evaluate_batch` with --eval-images images x 2
maps (goal <= 5 s). The dataset job's rows come from `bench_dataset.py --device cuda`.

    python benchmarks/bench_gpu.py                          # CUDA: batches 64 and 256, 256 photos
    XAI_OFFLINE=1 python benchmarks/bench_gpu.py --device cpu --batches 4 --photos 8 --eval-images 4 \
        --input-size 96 --repeats 1                         # the same rows on a CPU, small (a smoke run)

Prints the card, the torch and CUDA versions and one Markdown table. On a GPU it runs in about 2 minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench_batch  # noqa: E402
import xai_core  # noqa: E402
from xai_core.errors import WeightsUnavailableError  # noqa: E402

EVAL_METHODS = ["gradcam", "hirescam", "gradcam++", "xgradcam", "layercam"]


def timed(fn, device, repeats: int) -> tuple[float, object]:
    return bench_batch.timed(fn, device, repeats)


def load(name: str, device: str, input_size) -> xai_core.ModelHandle:
    """`torchvision:NAME` with its cached weights, else random ones; at `input_size` (random) if given."""
    torch.manual_seed(0)
    try:
        if input_size is None:
            return xai_core.load_model(f"torchvision:{name}", device=device)
    except WeightsUnavailableError:
        pass
    return xai_core.load_model(f"torchvision:{name}", weights=None, device=device, input_size=input_size)


@contextlib.contextmanager
def channels_last(module: torch.nn.Module):
    """The module's weights in channels-last memory format for the block (put back after)."""
    module.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        module.to(memory_format=torch.contiguous_format)


def forward(handle, x, precision=None):
    autocast = torch.autocast(x.device.type, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        return handle.module(x)


def library_gradcam(handle, x, layer: str, targets: list) -> np.ndarray:
    """pytorch-grad-cam's GradCAM on the whole batch tensor (its own forward and backward)."""
    with GradCAM(handle.module, [handle.layers[layer]], reshape_transform=handle.reshape(layer)) as cam:
        return cam(x, [ClassifierOutputTarget(t) for t in targets])


def batch_rows(handle, label: str, layer: str, photos: list, batch: int, repeats: int, precisions) -> list[dict]:
    device = handle.device
    x = torch.cat([handle.preprocess(p) for p in photos[:batch]])
    targets = forward(handle, x).argmax(-1).tolist()
    rows = []
    t_fwd, _ = timed(lambda: forward(handle, x), device, repeats)
    rows.append({"what": f"{label} inference forward, batch {batch}", "s": t_fwd, "img/s": batch / t_fwd})
    if "bf16" in precisions:
        t, _ = timed(lambda: forward(handle, x, "bf16"), device, repeats)
        rows.append({"what": f"{label} inference forward, batch {batch}, bf16", "s": t, "img/s": batch / t})
    if "channels-last" in precisions:
        with channels_last(handle.module):
            xc = x.contiguous(memory_format=torch.channels_last)
            t, _ = timed(lambda: forward(handle, xc), device, repeats)
        rows.append({"what": f"{label} inference forward, batch {batch}, channels-last", "s": t, "img/s": batch / t})
    t_lib, ref = timed(lambda: library_gradcam(handle, x, layer, targets), device, repeats)
    t_ours, ours = timed(lambda: xai_core.explain_batch(handle, x, ["gradcam"], targets=targets, layer=layer,
                                                         batch_size=batch), device, repeats)
    diff = float(np.abs(ref - np.stack([r.maps["gradcam"] for r in ours])).max())
    rows.append({"what": f"{label} Grad-CAM, batch {batch}, same tensor", "library s": t_lib, "s": t_ours,
                 "img/s": batch / t_ours, "x library": t_lib / t_ours, "% of forward": 100 * t_fwd / t_ours,
                 "max diff": diff})
    return rows


def photo_rows(handle, photos: list, batch: int, layer: str, repeats: int, precisions) -> list[dict]:
    """Grad-CAM from decoded photos (preprocessing included), in batches of `batch`."""
    rows = []
    for precision in precisions:
        bf16 = "bf16" if precision == "bf16" else None
        context = channels_last(handle.module) if precision == "channels-last" else contextlib.nullcontext()
        with context:
            t, _ = timed(lambda: xai_core.explain_batch(handle, photos, ["gradcam"], layer=layer, batch_size=batch,
                                                        precision=bf16), handle.device, repeats)
        rows.append({"what": f"ResNet-50 Grad-CAM, {len(photos)} photos (PIL), batch {batch}, {precision}", "s": t,
                     "img/s": len(photos) / t})
    return rows


def single_image(handle, layer: str, repeats: int) -> dict:
    """The 8 gradient CAMs on one image: one `explain` against one forward and the library's 8 classes."""
    return {**bench_batch.single_image(handle, layer, repeats), "what": f"ResNet-50 8 gradient CAMs, 1 image, {layer}"}


def evaluate_rows(handle, photos: list, count: int, repeats: int) -> list[dict]:
    device = handle.device
    image = photos[0]
    explanation = xai_core.explain(handle, image, EVAL_METHODS)
    t_one, _ = timed(lambda: xai_core.evaluate(handle, image, explanation, sanity=False), device, repeats)
    images = photos[:count]
    explanations = xai_core.explain_batch(handle, images, ["gradcam", "hirescam"])
    t_batch, _ = timed(lambda: xai_core.evaluate_batch(handle, images, explanations), device, 1)
    return [{"what": f"ResNet-50 evaluate, {len(EVAL_METHODS)} maps, 1 image, no sanity check", "s": t_one},
            {"what": f"ResNet-50 evaluate_batch, {len(images)} images x 2 maps", "s": t_batch,
             "img/s": len(images) / t_batch}]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batches", default="64,256", help="comma-separated batch sizes")
    parser.add_argument("--photos", type=int, default=256, help="decoded photos for the 'from photos' rows")
    parser.add_argument("--eval-images", type=int, default=64)
    parser.add_argument("--input-size", type=int, default=None, help="a smaller input (CPU smoke runs)")
    parser.add_argument("--layer", default="layer4")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-vit", action="store_true")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("No CUDA device here: run this on a machine with an NVIDIA GPU, or pass --device cpu.")
        return 2
    torch.backends.cudnn.benchmark = True
    batches = [int(b) for b in args.batches.split(",")]
    precisions = ["fp32", "channels-last"] + (["bf16"] if args.device.startswith("cuda") else [])
    photos = bench_batch.photos(max(args.photos, max(batches), args.eval_images))
    resnet = load("resnet50", args.device, args.input_size)
    print(f"# {bench_batch.describe(args.device)}; ResNet-50 ({resnet.weights_source}); medians of {args.repeats}")
    started = time.perf_counter()
    rows = []
    for batch in batches:
        rows += batch_rows(resnet, "ResNet-50", args.layer, photos, batch, args.repeats, precisions)
    rows += photo_rows(resnet, photos[:args.photos], batches[0], args.layer, args.repeats, precisions)
    rows += [single_image(resnet, layer, args.repeats) for layer in ("layer3", "layer4")]
    rows += evaluate_rows(resnet, photos, args.eval_images, args.repeats)
    if not args.skip_vit:
        vit = load("vit_b_16", args.device, args.input_size and 16 * (args.input_size // 16))
        for batch in batches:
            rows += batch_rows(vit, "ViT-B/16", vit.default_layer, photos, batch, args.repeats, ["fp32"])
    print(bench_batch.table(rows))
    print(f"\n{time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
