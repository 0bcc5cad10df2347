"""Benchmark: does the map point at the object? `xai_core.localise` and the grid pointing game with the
bundled EfficientNet-Lite0, on the CPU (default) or a GPU. Parts:

  composites  each bundled sample photo pasted at a known box (a third to half of the canvas side, at
              seeded random positions inside the model's crop) onto a plain grey background, onto
              seeded noise and onto a tiled crop of another sample photo; explained (target: the
              photo's own top-1 class) with every fast gradient CAM the model offers at its default
              layer, scored with `localise(explanation, box=the pasted box)`. Per background, each
              map's and baseline's mean score with a 95% bootstrap interval, and the win rate
              against the centre prior (ties are no win) with its 95% Wilson interval.
  grid        `dataset.grid_pointing_game` on the sample photos (10 grids, min confidence 0.1).
  cost        seconds of `localise` against seconds of `explain` for the same maps (goal: <= 5%).

    XAI_OFFLINE=1 python benchmarks/bench_localisation.py [--device cpu] [--parts composites,grid,cost]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import xai_core  # noqa: E402
from xai_core.dataset import bootstrap_ci, grid_pointing_game  # noqa: E402
from xai_core.dataset.summary import wilson_ci  # noqa: E402
from xai_core.dataset.grid_report import grid_table  # noqa: E402
from xai_core.faithfulness import RANDOM  # noqa: E402
from xai_core.localisation import CENTRE  # noqa: E402
from xai_core.methods import GRADIENT, get_method  # noqa: E402

PHOTOS = ROOT / "assets" / "images"
BACKGROUNDS = ("grey", "noise", "tiled")
SCORES = ("pointing", "energy", "rank", "iou")
CANVAS = 512


def fast_gradient_methods(handle: xai_core.ModelHandle) -> list[str]:
    """The gradient CAMs the model offers that the cost model does not call slow (as the CAM page
    splits fast from slow)."""
    offered = [m for m in xai_core.methods_for(handle) if get_method(m).kind == GRADIENT]
    costs = xai_core.estimate_cost(handle, offered)
    return [m for m in offered if not costs[m].slow]


def background(kind: str, rng: np.random.Generator, others: list[Path]) -> Image.Image:
    """A CANVAS x CANVAS background: plain grey, seeded RGB noise (smoothed a little: texture, not
    pixel dust) or a 128 px crop of another sample photo tiled over it."""
    if kind == "grey":
        return Image.new("RGB", (CANVAS, CANVAS), (128, 128, 128))
    if kind == "noise":
        noise = rng.integers(0, 256, (CANVAS // 4, CANVAS // 4, 3), dtype=np.uint8)
        return Image.fromarray(noise).resize((CANVAS, CANVAS), Image.Resampling.BILINEAR)
    with Image.open(others[int(rng.integers(len(others)))]) as other:
        other = other.convert("RGB")
        x, y = int(rng.integers(other.width - 128)), int(rng.integers(other.height - 128))
        tile = other.crop((x, y, x + 128, y + 128))
    canvas = Image.new("RGB", (CANVAS, CANVAS))
    for ty in range(0, CANVAS, 128):
        for tx in range(0, CANVAS, 128):
            canvas.paste(tile, (tx, ty))
    return canvas


def composite(photo: Path, kind: str, rng: np.random.Generator, margin: int) -> tuple[Image.Image, tuple]:
    """`photo` scaled so its longer side is a third to half of the canvas, pasted at a seeded random
    position inside the model's crop (`margin` px from each edge); returns the picture and the box."""
    others = sorted(p for p in PHOTOS.iterdir() if p != photo and p.suffix in (".png", ".jpg"))
    canvas = background(kind, rng, others)
    with Image.open(photo) as image:
        image = image.convert("RGB")
        side = int(rng.uniform(CANVAS / 3, CANVAS / 2))
        scale = side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        pasted = image.resize(size, Image.Resampling.BICUBIC)
    x0 = int(rng.integers(margin, CANVAS - margin - size[0] + 1))
    y0 = int(rng.integers(margin, CANVAS - margin - size[1] + 1))
    canvas.paste(pasted, (x0, y0))
    return canvas, (x0, y0, x0 + size[0], y0 + size[1])


def run_composites(handle, methods: list[str], per_photo: int, seed: int, repeats: int) -> dict:
    """Explain and score every composite; returns the scores per background and the timings."""
    photos = sorted(p for p in PHOTOS.iterdir() if p.suffix in (".png", ".jpg"))
    rng = np.random.default_rng(seed)
    margin = int(np.ceil(CANVAS * (1 - 224 / 256) / 2))  # the model's centre crop keeps 224 of 256
    rows = {kind: [] for kind in BACKGROUNDS}
    explain_s, localise_s, centres = {"wall": [], "cpu": []}, {"wall": [], "cpu": []}, 0
    for photo in photos:
        target = xai_core.predict(handle, photo, top_k=1)[0].index  # the object's own class
        for kind in BACKGROUNDS:
            for _ in range(per_photo):
                picture, box = composite(photo, kind, rng, margin)
                centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
                centres += abs(centre[0] - CANVAS / 2) < CANVAS / 8 and abs(centre[1] - CANVAS / 2) < CANVAS / 8
                wall, cpu = time.perf_counter(), time.process_time()
                explanation = xai_core.explain(handle, picture, methods, target=target)
                explain_s["wall"].append(time.perf_counter() - wall)
                explain_s["cpu"].append(time.process_time() - cpu)
                times = {"wall": [], "cpu": []}
                for _ in range(repeats):
                    wall, cpu = time.perf_counter(), time.process_time()
                    result = xai_core.localise(explanation, box=box)
                    times["wall"].append(time.perf_counter() - wall)
                    times["cpu"].append(time.process_time() - cpu)
                for clock in times:
                    localise_s[clock].append(statistics.median(times[clock]))
                rows[kind].append({name: s for name, s in result.scores.items()})
    return {"rows": rows, "explain_s": explain_s, "localise_s": localise_s, "images": len(explain_s["wall"]),
            "near_centre": centres}


def print_composites(result: dict, methods: list[str]) -> None:
    names = [*methods, RANDOM, CENTRE]
    print(f"{result['images']} composites ({len(result['rows'])} backgrounds), "
          f"{result['near_centre']} with the object's centre within 1/8 of the canvas side of its centre")
    for kind, rows in result["rows"].items():
        print(f"\nbackground: {kind} ({len(rows)} composites); mean [95% bootstrap interval]")
        print(f"{'map':<20}" + "".join(f"{s:>22}" for s in SCORES))
        for name in names:
            cells = []
            for score in SCORES:
                ci = bootstrap_ci([getattr(row[name], score) for row in rows])
                cells.append("-" if ci["mean"] is None else f"{ci['mean']:.3f} [{ci['low']:.2f}, {ci['high']:.2f}]")
            print(f"{name:<20}" + "".join(f"{c:>22}" for c in cells))
        print(f"win rate against the centre prior (share of composites scoring above it; ties are no win) "
              f"[95% Wilson interval]")
        print(f"{'map':<20}" + "".join(f"{s:>22}" for s in SCORES))
        for name in [*methods, RANDOM]:
            cells = []
            for score in SCORES:
                pairs = [(getattr(r[name], score), getattr(r[CENTRE], score)) for r in rows]
                pairs = [(a, b) for a, b in pairs if np.isfinite(a) and np.isfinite(b)]
                win = wilson_ci(sum(a > b for a, b in pairs), len(pairs))
                cells.append("-" if win["mean"] is None else
                             f"{win['mean']:.2f} [{win['low']:.2f}, {win['high']:.2f}]")
            print(f"{name:<20}" + "".join(f"{c:>22}" for c in cells))
    print("\nObjects sit near the centre of most photos: a map that does not beat the centre prior shows nothing "
          "about the model.")


def print_cost(result: dict, methods: list[str]) -> None:
    """Seconds of `localise` (median of its repeats per composite) against `explain`'s, by the wall
    clock and by the process's CPU time (on a loaded machine the CPU time is the steadier of the two)."""
    print(f"cost over {result['images']} composites, {len(methods)} maps + 2 baselines each:")
    for clock, title in (("wall", "wall clock"), ("cpu", "CPU time")):
        explain_s, localise_s = np.array(result["explain_s"][clock]), np.array(result["localise_s"][clock])
        ratio = localise_s.sum() / explain_s.sum()
        print(f"  {title:<10}  localise median {1e3 * np.median(localise_s):5.1f} ms (min {1e3 * localise_s.min():4.1f}), "
              f"explain median {1e3 * np.median(explain_s):4.0f} ms (min {1e3 * explain_s.min():3.0f}): localise / "
              f"explain = {ratio:.1%} (goal <= 5%: {'met' if ratio <= 0.05 else 'NOT met'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--parts", default="composites,grid,cost")
    parser.add_argument("--per-photo", type=int, default=5, help="composites per photo and background (default: 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="localise calls per composite (median timed)")
    parser.add_argument("--grids", type=int, default=10)
    args = parser.parse_args()
    env = " ".join(f"{k}={os.environ[k]}" for k in ("XAI_OFFLINE", "OMP_NUM_THREADS") if k in os.environ)
    print(f"$ {env + ' ' if env else ''}python {' '.join(shlex.quote(a) for a in sys.argv)}")
    parts = set(args.parts.split(","))
    started = time.perf_counter()
    handle = xai_core.load_model("efficientnet_lite0", device=args.device)
    methods = fast_gradient_methods(handle)
    print(f"{handle.name} on {args.device} at {handle.default_layer}; fast gradient CAMs: {', '.join(methods)}")
    if parts & {"composites", "cost"}:
        result = run_composites(handle, methods, args.per_photo, args.seed, args.repeats)
        if "composites" in parts:
            print()
            print_composites(result, methods)
        if "cost" in parts:
            print()
            print_cost(result, methods)
    if "grid" in parts:
        game = grid_pointing_game(handle, str(PHOTOS), methods, grids=args.grids, min_confidence=0.1, seed=args.seed)
        print()
        print(grid_table(game.summary))
        for note in game.notes:
            print("note: " + " ".join(note.split()))
    print(f"\nwall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
