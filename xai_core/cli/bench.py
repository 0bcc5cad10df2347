"""`python -m xai_core bench`: pytorch-grad-cam vs xai_core on the same model, image and layer, in one
process. Prints one table: method, library time, ours, ratio, max abs difference, peak RSS."""

from __future__ import annotations

import dataclasses
import os
import platform
import threading
import time
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from scipy.stats import spearmanr
from torchvision.transforms._presets import ImageClassification

from ..errors import WeightsUnavailableError
from ..explain import explain
from ..images import load_image
from ..models import load_model
from ..methods import GRADIENT8
from ..methods.reference import library_map
SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "images" / "cat.png"


@contextmanager
def _peak_rss() -> Iterator[list]:
    """Samples this process's resident memory every 5 ms; yields a list holding the peak in MB."""
    peak, stop = [0.0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            with open("/proc/self/statm") as fh:
                peak[0] = max(peak[0], int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20)
            stop.wait(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def _timed(fn: Callable) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _row(name, lib_s, ours_s, diff, rss, note="") -> str:
    lib = f"{lib_s:9.3f}s" if lib_s is not None else f"{'-':>10}"
    ratio = f"{lib_s / ours_s:8.1f}x" if lib_s is not None else f"{'-':>9}"
    diff_s = f"{diff:10.1e}" if diff is not None else f"{'-':>10}"
    return f"| {name:<34} | {lib} | {ours_s:9.3f}s | {ratio} | {diff_s} | {rss:7.0f} MB | {note}"


def run(model: str = "resnet50", layer: str | None = None, quick: bool = False, image: str = str(SAMPLE),
        print_fn: Callable[[str], None] = print) -> None:
    """Run the benchmark and print its table (see the module docstring)."""
    torch.manual_seed(0)
    try:
        handle = load_model(model, device="cpu")
    except WeightsUnavailableError:  # same compute with random weights
        handle = load_model(model, weights=None, device="cpu")
    layer = layer or handle.default_layer
    pil = load_image(image)
    x = handle.preprocess(pil)
    print_fn(f"model {handle.name} ({handle.weights_source}), layer {layer}, image {Path(image).name}; "
             f"torch {torch.__version__}, {torch.get_num_threads()} threads on {os.cpu_count()} cores, "
             f"{platform.processor() or platform.machine()}; pytorch-grad-cam {version('grad-cam')}")
    print_fn(f"| {'method':<34} | {'library':>10} | {'ours':>10} | {'ratio':>9} | {'max |diff|':>10} | {'peak RSS':>10} | note")
    print_fn("|" + "-" * 36 + "|" + "-" * 12 + "|" + "-" * 12 + "|" + "-" * 11 + "|" + "-" * 12 + "|" + "-" * 12 + "|------")

    methods = list(GRADIENT8)
    explain(handle, pil, methods, layer=layer)  # warm-up
    with _peak_rss() as rss:
        ours_s, ours = _timed(lambda: explain(handle, pil, methods, layer=layer))
    lib_s, lib = _timed(lambda: {m: library_map(handle, m, layer, x, ours.target, batch_size=32) for m in methods})
    diff = max(float(np.abs(lib[m] - ours.maps[m]).max()) for m in methods)
    print_fn(_row("8 gradient CAMs, one explain", lib_s, ours_s, diff, rss[0], "library: one after another"))
    with torch.inference_mode():
        handle.module(x)
        fwd_s, _ = _timed(lambda: handle.module(x))
    print_fn(_row("8 gradient CAMs vs 1 inference pass", fwd_s, ours_s, None, rss[0],
                  f"ours = {ours_s / fwd_s:.2f} x one forward (goal <= 2.5)"))

    small = dataclasses.replace(handle, transforms=ImageClassification(crop_size=48, resize_size=48)) if quick else handle
    xs = small.preprocess(pil)
    for method in ("kpcacam", "shapleycam", "finercam", "fullgrad", "ablationcam", "scorecam", "fastscorecam"):
        h, xx = (small, xs) if method in ("ablationcam", "scorecam", "fastscorecam") else (handle, x)
        with _peak_rss() as rss:
            t, res = _timed(lambda: explain(h, pil, [method], layer=layer, target=ours.target))
        ref_method = "scorecam" if method == "fastscorecam" else method
        lt, ref = _timed(lambda: library_map(h, ref_method, layer, xx, ours.target, batch_size=32))
        ours_map = res.maps[method]
        note = f"{xx.shape[-1]} px input" if h is small and quick else ""
        if method == "fastscorecam":
            rho = spearmanr(ref.ravel(), ours_map.ravel())[0]
            note = (note + "; " if note else "") + f"vs exact Score-CAM: Spearman {rho:.3f}"
            print_fn(_row(method + " (top 64)", lt, t, float(np.abs(ref - ours_map).max()), rss[0], note))
        else:
            print_fn(_row(method, lt, t, float(np.abs(ref - ours_map).max()), rss[0], note))
    print_fn(f"Grad-CAM alone (one explain): {_timed(lambda: explain(handle, pil, ['gradcam'], layer=layer))[0]:.3f}s")
