"""Sweep (not a CI test): explain every torchvision classifier once with random (seeded) weights
and print a Markdown table of what `xai_core` inferred and whether it worked.

    XAI_OFFLINE=1 python benchmarks/sweep_torchvision.py [--only SUBSTR] [--methods gradcam,hirescam,eigencam,ablationcam]
        [--timeout 120] [--input-size 128] [--threads 2] [--out benchmarks/results/sweep_torchvision.md]

Each model runs in a worker process (one at a time; the model is freed after use, and a worker
that passes --timeout is killed and replaced, the row says "timeout"). `--input-size N` builds
and explains at N px where the architecture allows; a model that fails at N is retried once at its
own crop size (the "input" column says which size ran).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT / "assets" / "images" / "cat.png"
DEFAULT_METHODS = "gradcam,hirescam,eigencam,ablationcam"


def _one_line(err: BaseException) -> str:
    text = (str(err).strip().splitlines() or [""])[0]
    return f"{type(err).__name__}: {text}"[:160]


def _describe_reshape(fn) -> str:
    if fn is None:
        return "none"
    from xai_core.models.architecture.reshape import ChannelsLast, TokenGrid
    if isinstance(fn, TokenGrid):
        return f"prefix {fn.prefix}, {fn.height}x{fn.width} grid"
    if isinstance(fn, ChannelsLast):
        return "channels-last"
    return type(fn).__name__


def _fitted(name: str, size: int) -> int:
    """`size` rounded down to a multiple of a torchvision ViT's patch (vit_h_14: 14 px), else as is."""
    patch = int(name.rsplit("_", 1)[1]) if name.startswith("vit_") else 1
    return size - size % patch


def _run(name: str, methods: list, input_size, seed: int) -> dict:
    import gc

    import torch
    import torchvision

    import xai_core

    row = {"model": name, "family": torchvision.models.get_model_builder(name).__module__.rsplit(".", 1)[-1]}
    t0 = time.perf_counter()
    handle = None
    try:
        torch.manual_seed(seed)
        handle = xai_core.load_model(f"torchvision:{name}", weights=None, device="cpu", input_size=input_size)
        layer = handle.default_layer
        row.update(layer=layer, input=str(handle.transforms.crop_size[0]), transformer="yes" if handle.transformer else "no",
                   reshape=_describe_reshape(handle.reshape(layer)))
        head = handle.head(layer)
        row["head"] = "gap-linear" if handle.is_gap_linear(layer) else ("exact" if head.exact else "replay")
        result = xai_core.explain(handle, IMAGE, methods=methods)
        bad = [m for m in methods if not (result.maps[m].shape == result.image.shape[:2]
                                          and bool(torch.isfinite(torch.from_numpy(result.maps[m])).all()))]
        row["status"] = "ok" if not bad else "non-finite or mis-sized map: " + ", ".join(bad)
    except Exception as err:  # noqa: BLE001 - the sweep reports every failure as one line
        row["status"] = _one_line(err)
    finally:
        del handle
        gc.collect()
    row["seconds"] = time.perf_counter() - t0
    return row


def _worker(conn, threads: int) -> None:
    import warnings

    import torch
    warnings.filterwarnings("ignore")
    torch.set_num_threads(threads)
    sys.path.insert(0, str(ROOT))
    import xai_core  # noqa: F401  (imported once, outside the per-model timings)
    while True:
        job = conn.recv()
        if job is None:
            return
        conn.send(_run(*job))


class Worker:
    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._start()

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, self.threads), daemon=True)
        self.proc.start()

    def run(self, job: tuple, timeout: float):
        self.conn.send(job)
        if self.conn.poll(timeout):
            try:
                return self.conn.recv()
            except EOFError:
                pass
            self.proc.join()
            code = self.proc.exitcode
            self._start()
            return {"status": f"worker died (exit code {code})"}
        self.proc.kill()
        self.proc.join()
        self._start()
        return None

    def close(self) -> None:
        self.conn.send(None)
        self.proc.join(10)


COLUMNS = ["model", "family", "layer", "input", "transformer", "reshape", "head", "status", "seconds"]
HEADER = ["model", "family", "default layer", "input", "transformer?", "reshape", "head", "status", "seconds"]


def _cell(row: dict, key: str) -> str:
    value = row.get(key, "")
    if key == "seconds":
        return f"{value:.1f}" if isinstance(value, float) else str(value)
    return str(value).replace("|", "\\|")


def _table(args, methods, rows, total, started, torch, torchvision) -> str:
    ok = sum(r["status"] == "ok" for r in rows)
    size = f"{args.input_size} px input where the architecture allows (else the model's own crop size)" \
        if args.input_size else "each model's own crop size"
    done = "" if len(rows) == total else f" (partial: {len(rows)} of {total} models so far)"
    lines = [
        f"Every torchvision classifier (torchvision {torchvision.__version__}, torch {torch.__version__}, "
        f"{args.threads} threads, CPU), random weights (seed {args.seed}), `{IMAGE.name}`, "
        f"methods {', '.join(methods)} at the default layer, {size}; timeout {args.timeout:g} s per model "
        "(seconds: load with random init + one `explain`). "
        f"**{ok} of {len(rows)} ok**{done} ({time.perf_counter() - started:.0f} s in all). "
        "Reproduce: `XAI_OFFLINE=1 python benchmarks/sweep_torchvision.py "
        + (f"--input-size {args.input_size} " if args.input_size else "")
        + (f"--methods {','.join(methods)} " if ",".join(methods) != DEFAULT_METHODS else "")
        + f"--timeout {args.timeout:g}`.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(_cell(r, k) for k in COLUMNS) + " |" for r in rows]
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    return text


def main() -> None:
    import torch
    import torchvision

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="only the models whose name contains SUBSTR")
    parser.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma list (default {DEFAULT_METHODS})")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per model (load + explain)")
    parser.add_argument("--input-size", type=int, default=None, help="crop size (default: the model's own)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    names = [n for n in torchvision.models.list_models(module=torchvision.models) if not args.only or args.only in n]
    worker = Worker(args.threads)
    rows = []
    started = time.perf_counter()
    try:
        for name in names:
            sizes = [_fitted(name, args.input_size), None] if args.input_size else [None]
            first_error = None
            for size in sizes:
                row = worker.run((name, methods, size, args.seed), args.timeout)
                if row is None:
                    row = {"model": name, "status": f"timeout (> {args.timeout:g} s)", "seconds": args.timeout,
                           "input": str(size or "own")}
                row.setdefault("model", name)
                if row.get("status") == "ok" or size is None or str(row.get("status", "")).startswith("timeout"):
                    break
                first_error = f"at {size} px: {row['status']}"
                print(f"# {name} {first_error}; retrying at its own size", file=sys.stderr, flush=True)
            if first_error and row.get("status") != "ok":
                row["status"] = f"{row['status']} (and {first_error})"
            rows.append(row)
            print(f"# {name}: {row['status']} ({row.get('seconds', 0):.1f} s)", file=sys.stderr, flush=True)
            _table(args, methods, rows, len(names), started, torch, torchvision)
    finally:
        worker.close()
    print(_table(args, methods, rows, len(names), started, torch, torchvision))


if __name__ == "__main__":
    main()
