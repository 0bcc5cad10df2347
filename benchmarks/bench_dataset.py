"""Benchmark of dataset mode (`python -m xai_core batch`) against doing without it, same inputs.

Each figure has the same input files on both sides (JPEG photos made from assets/images: random
crops, flips and rotations, in a temporary folder):

- speed (`--device cpu|cuda`): Grad-CAM over `--images` photos (default 2000 on a GPU, 200 on a
  CPU), decoding included, ResNet-50 (random weights when none are cached: the compute is the
  same), batch 64 on a GPU and 16 on a CPU: a plain loop with pytorch-grad-cam's batched GradCAM
  (decode, the model's preprocessing, GradCAM on a batch; nothing written) against
  `xai_core.dataset.run` with every output (`--pictures all`: each picture, its overlays, the raw
  maps, the Parquet parts, summary.json and index.html);
- writing: the bundled EfficientNet-Lite0 on the same device, `dataset.run` (decoding the files and
  writing every output) against `explain_batch` given the same files decoded beforehand (nothing
  written): the share of explain_batch's images/s the job keeps (goal: at least 80%), the median
  of `--repeats` runs (the machine may be shared: each run is printed);
- writer (with `--writer N`): N generated pictures written with their overlay and raw map by
  `dataset.save_pictures` with 1 thread, with one per core, and by a process pool;
- memory (with `--memory-images M`): RSS over a run of M small generated photos with the bundled
  EfficientNet-Lite0, sampled after every batch; the growth from the end of the first batch to the
  largest value. With `--engine ray` the run is on a local Ray and the RSS is the driver's.

    XAI_OFFLINE=1 python benchmarks/bench_dataset.py --device cpu --images 200 --repeats 3
    XAI_OFFLINE=1 python benchmarks/bench_dataset.py --device cpu --images 64        # a quick check
    python benchmarks/bench_dataset.py --device cuda                      # 2,000 photos, under 3 minutes
    XAI_OFFLINE=1 python benchmarks/bench_dataset.py --skip-speed --skip-writing --memory-images 2000
"""

from __future__ import annotations

import argparse
import inspect
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import xai_core  # noqa: E402
from xai_core import dataset  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_batch import resnet50, rss_mb  # noqa: E402


def make_photos(folder: Path, count: int, side: int = 0, seed: int = 0) -> list[Path]:
    """`count` JPEGs from the sample photos: random crops, flips and small rotations; `side` > 0
    resizes them to side x side (small files for the memory run)."""
    rng = np.random.default_rng(seed)
    base = [Image.open(p).convert("RGB") for p in sorted((ROOT / "assets" / "images").iterdir())]
    folder.mkdir(parents=True, exist_ok=True)
    draws = [(rng.uniform(0.6, 1.0, 2), rng.random(3), rng.uniform(-10, 10), rng.random()) for _ in range(count)]
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # Pillow releases the GIL: the photos in parallel
        return list(pool.map(lambda i: _photo(folder, base[i % len(base)], i, draws[i], side), range(count)))


def _photo(folder: Path, img: Image.Image, i: int, draw: tuple, side: int) -> Path:
    (fw, fh), (fx, fy, _), angle, flip = draw
    w, h = img.size
    cw, ch = int(w * fw), int(h * fh)
    x, y = int(fx * (w - cw + 1)), int(fy * (h - ch + 1))
    out = img.crop((x, y, x + cw, y + ch)).rotate(float(angle))
    if flip < 0.5:
        out = ImageOps.mirror(out)
    if side:
        out = out.resize((side, side))
    path = folder / f"photo_{i:05d}.jpg"
    out.save(path, quality=90)
    return path


def _encode_chunk(folder: str, keys: list, images: np.ndarray, cams: np.ndarray) -> None:
    """A process pool's task for the writer comparison: a chunk's overlays and pictures, as JPEG."""
    from xai_core.report.pictures import overlay_cams

    for key, image, overlay in zip(keys, images, overlay_cams(images, cams)):
        Image.fromarray(image).save(Path(folder) / f"{key}.jpg", quality=90)
        Image.fromarray(overlay).save(Path(folder) / f"{key}_gradcam.jpg", quality=90)


def writer(count: int, work: Path, repeats: int) -> None:
    """Seconds to write `count` 224 px pictures with their Grad-CAM overlay and raw map: the
    writer with 1 thread, with one thread per core (what `dataset.run` uses), and the same chunks
    in a process pool (images and maps pickled to the workers); medians of `repeats`."""
    from concurrent.futures import ProcessPoolExecutor

    from xai_core._pool import LazyPool
    from xai_core.dataset import save_pictures, writer as dataset_writer

    rng = np.random.default_rng(0)
    pictures = [(f"{i:032x}-{0:016x}", rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
                 {"gradcam": rng.random((224, 224), dtype=np.float32)}) for i in range(count)]
    cores = os.cpu_count() or 1
    timings = {}
    original = dataset_writer._POOL
    for threads in sorted({1, cores}):
        dataset_writer._POOL = LazyPool(threads, "bench-writer")  # the writer's pool, at this size
        times = []
        for r in range(repeats):
            started = time.perf_counter()
            save_pictures(str(work / f"writer_{threads}_{r}"), pictures, "all")
            times.append(time.perf_counter() - started)
        dataset_writer._POOL.get().shutdown()
        timings[f"threads x{threads}"] = statistics.median(times)
    dataset_writer._POOL = original
    images, cams = np.stack([p[1] for p in pictures]), np.stack([p[2]["gradcam"] for p in pictures])
    keys = [p[0] for p in pictures]
    with ProcessPoolExecutor(cores) as pool:
        list(pool.map(abs, range(cores)))  # started before the clock
        times = []
        for r in range(repeats):
            folder = work / f"writer_processes_{r}"
            folder.mkdir()
            started = time.perf_counter()
            futures = [pool.submit(_encode_chunk, str(folder), keys[i:i + 8], images[i:i + 8], cams[i:i + 8])
                       for i in range(0, count, 8)]
            np.save(folder / "raw.npy", cams.astype(np.float16))
            for future in futures:
                future.result()
            times.append(time.perf_counter() - started)
        timings[f"processes x{cores}"] = statistics.median(times)
    print(f"\n## writer: {count} pictures of 224 px, each with its Grad-CAM overlay (JPEG) and raw map, "
          f"medians of {repeats}")
    print("| writer | seconds | pictures/s |\n|---|---|---|")
    for name, seconds in timings.items():
        print(f"| {name} | {seconds:.2f} | {count / seconds:.0f} |")


def _job(handle, photos: Path, out: Path, batch: int, pictures: str = "all", **kwargs):
    """`dataset.run` with Grad-CAM; `pictures` is passed only to a version that has it (the
    benchmark also measures the code before it)."""
    if "pictures" in inspect.signature(dataset.run).parameters:
        kwargs["pictures"] = pictures
    return dataset.run(handle, str(photos), str(out), ["gradcam"], batch_size=batch, **kwargs)


def library_loop(handle, paths: list[Path], layer: str, batch: int) -> float:
    """Seconds for pytorch-grad-cam's batched GradCAM over `paths`, decoding and preprocessing included."""
    from pytorch_grad_cam import GradCAM

    started = time.perf_counter()
    with GradCAM(handle.module, [handle.layers[layer]]) as cam:
        for i in range(0, len(paths), batch):
            x = torch.cat([handle.preprocess(Image.open(p).convert("RGB")) for p in paths[i:i + batch]])
            cam(x, None)  # top-1 targets, maps [B, H, W] (as numpy: on the host)
    return time.perf_counter() - started


def speed(count: int, work: Path, device: str, batch: int, pictures: str) -> None:
    handle = resnet50(device)
    photos = work / "photos"
    paths = make_photos(photos, count)
    layer = handle.default_layer
    library_loop(handle, paths[:batch], layer, batch)  # warm-up (cuDNN, the allocator)
    xai_core.explain_batch(handle, [xai_core.load_image(p) for p in paths[:2]], ["gradcam"])
    lib = library_loop(handle, paths, layer, batch)
    out = work / "out"
    started = time.perf_counter()
    result = _job(handle, photos, out, batch, pictures)
    ours = time.perf_counter() - started
    again = time.perf_counter()
    _job(handle, photos, out, batch, pictures)
    rerun = time.perf_counter() - again
    print(f"## speed: Grad-CAM over {count} JPEG photos, ResNet-50 ({handle.weights_source}), {layer}, "
          f"{handle.device}, batch {batch}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| what | seconds | images/s |\n|---|---|---|")
    print(f"| plain loop with pytorch-grad-cam's batched GradCAM, decoding included, nothing written | "
          f"{lib:.1f} | {count / lib:.1f} |")
    print(f"| `dataset.run`, decoding, maps, pictures ({pictures}), Parquet, summary and report included | "
          f"{ours:.1f} | {count / ours:.1f} |")
    print(f"| the same command again (every file skipped) | {rerun:.1f} | |")
    print(f"dataset.run / plain loop: **{lib / ours:.2f}x** the plain loop's images/s; {result.line()}")


def writing(count: int, work: Path, device: str, batch: int, pictures: str, repeats: int) -> None:
    """`dataset.run` (files in, every output written) against `explain_batch` on the same files decoded."""
    handle = xai_core.load_model("efficientnet_lite0", device=device)
    photos = work / "lite_photos"
    pils = [xai_core.load_image(p) for p in make_photos(photos, count, seed=1)]
    xai_core.explain_batch(handle, pils[:batch], ["gradcam"], batch_size=batch)  # warm-up
    _job(handle, photos, work / "warm", batch, pictures)
    plain, ours = [], []
    for r in range(repeats):  # alternated, so that a busy moment of a shared machine falls on both
        started = time.perf_counter()
        xai_core.explain_batch(handle, pils, ["gradcam"], batch_size=batch)
        plain.append(count / (time.perf_counter() - started))
        out = work / f"lite_out_{r}"
        started = time.perf_counter()
        result = _job(handle, photos, out, batch, pictures)
        ours.append(count / (time.perf_counter() - started))
        shutil.rmtree(out, ignore_errors=True)
    a, b = statistics.median(plain), statistics.median(ours)
    print(f"\n## writing: Grad-CAM over {count} JPEG photos, bundled EfficientNet-Lite0, {handle.device}, batch "
          f"{batch}, medians of {repeats} runs (each: explain_batch, then dataset.run)")
    print("| what | images/s (median) | each run |\n|---|---|---|")
    print(f"| `explain_batch` on the files decoded beforehand, nothing written | {a:.1f} | "
          f"{', '.join(f'{v:.1f}' for v in plain)} |")
    print(f"| `dataset.run` from the files, pictures {pictures}, Parquet, summary, report | {b:.1f} | "
          f"{', '.join(f'{v:.1f}' for v in ours)} |")
    print(f"dataset.run keeps **{b / a:.0%}** of explain_batch's images/s (goal: at least 80%); {result.line()}")


def memory(count: int, work: Path, engine: str = "local") -> None:
    handle = xai_core.load_model("efficientnet_lite0", device="cpu")
    make_photos(work / "small", count, side=96)
    samples = []

    def sample(done: int, total: int) -> None:
        samples.append((done, rss_mb("VmRSS")))

    started = time.perf_counter()
    result = _job(handle, work / "small", work / "out_small", 16, progress=sample, engine=engine)
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
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--images", "--photos", type=int, help="photos of the speed and writing runs "
                        "(default: 2000 on cuda, 200 on cpu)")
    parser.add_argument("--batch", type=int, help="images per batch (default: 64 on cuda, 16 on cpu)")
    parser.add_argument("--pictures", default="all", help="what dataset.run writes: all, maps or none")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the writing figure (the median is shown)")
    parser.add_argument("--memory-images", type=int, default=0, help="photos of the memory run (0: none)")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-memory", action="store_true", help="(the default: the memory run needs "
                        "--memory-images)")
    parser.add_argument("--skip-writing", action="store_true")
    parser.add_argument("--writer", type=int, default=0, help="pictures of the writer comparison (threads "
                        "against processes; 0: none)")
    parser.add_argument("--engine", choices=["local", "ray"], default="local", help="the memory run's engine")
    args = parser.parse_args()
    gpu = args.device == "cuda"
    count, batch = args.images or (2000 if gpu else 200), args.batch or (64 if gpu else 16)
    work = Path(tempfile.mkdtemp(prefix="xai-bench-dataset-"))
    started = time.perf_counter()
    try:
        if not args.skip_speed:
            speed(count, work, args.device, batch, args.pictures)
        if not args.skip_writing:
            writing(count if not gpu else min(count, 1000), work, args.device, batch, args.pictures,
                    max(1, args.repeats))
        if args.writer:
            writer(args.writer, work, max(1, args.repeats))
        if args.memory_images and not args.skip_memory:
            memory(args.memory_images, work, args.engine)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nCPU: {os.cpu_count()} cores; python {sys.version.split()[0]}; "
          f"{torch.cuda.get_device_name() if gpu else 'no GPU used'}; {time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
