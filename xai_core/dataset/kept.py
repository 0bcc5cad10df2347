"""`run(..., concepts=K)`: each explained image's activations at the concepts layer, recorded in the
very forward that makes its maps (a scoped forward hook around `explain_batch`, for the calling
thread only, removed after; never a second forward) and kept as float16 under
OUT/concepts/activations/ (one .npy per batch and a .json naming its rows' keys and content keys and
the run that wrote it), by this process (the local engine) or by the Ray actor that explains the
batch (the `Keeper` travels to the actors; names are unique per run and batch), so the concepts are
extracted at the end of the run (`concepts.dataset_concepts`, registered here with
`register_concepts_step`: the concepts package imports this one, not the other way round), a resumed
run finds the activations of the rows it skips, and `prune_kept` drops those of rows explained again
or no longer in the input."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

import numpy as np
import torch
from torch import nn

from .._files import write_atomic
from ..errors import InvalidOptionError
from ..models import ModelHandle

#: Where the kept activations go, under the results folder.
ACTIVATIONS = Path("concepts") / "activations"
_STEP: list = []


def register_concepts_step(step: Callable) -> Callable:
    """Register the function that extracts the concepts at the end of a run (the concepts package
    does, on import): `step(handle, out, rows, root, k, seed) -> summary.json's "concepts" block`."""
    _STEP[:] = [step]
    return step


def concepts_step() -> Callable:
    """The registered end-of-run concepts step (raises `InvalidOptionError` when none is)."""
    if not _STEP:
        raise InvalidOptionError("Concepts are not available: import xai_core (its concepts package) first.")
    return _STEP[0]


def checked_concepts(handle: ModelHandle, k: object) -> Optional[int]:
    """`k` (the number of concepts per class, None: none) checked before any work: a whole number
    from 2 to the layer's channels, a model whose default layer's head is global average pooling +
    linear (exact importance from the kept activations alone). Either engine keeps the activations
    (the Ray actors write them to the results folder, as they write the pictures). Raises
    `InvalidOptionError`."""
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise InvalidOptionError(f"--concepts must be a whole number of concepts per class, 2 or more, not {k!r}.")
    layer = handle.default_layer
    if handle.reshape(layer) is not None or not handle.is_gap_linear(layer):
        raise InvalidOptionError(f"--concepts needs a model whose head after {layer} is global average pooling + "
                                 "linear (as ResNet or EfficientNet); for this model use the concepts command.")
    linear = [m for m in handle.head(layer).module.modules() if isinstance(m, nn.Linear)]
    channels = linear[-1].in_features if linear else None
    if channels is not None and k > channels:
        raise InvalidOptionError(f"Layer {layer} has {channels} channels: ask for at most {channels} concepts.")
    return int(k)


@contextmanager
def keeping(handle: ModelHandle, layer: str, count: int) -> Iterator[list]:
    """A forward hook on `layer` (removed on exit, also on error) that keeps, as float16 on the CPU,
    the [count, C, h, w] output of the first forward of `count` images on the calling thread: the
    shared pass's (it is the first forward of `explain_batch`'s batch)."""
    owner, kept = threading.get_ident(), []
    reshape = handle.reshape(layer)

    def hook(module, inputs, output):
        if threading.get_ident() != owner or kept or output.shape[0] != count:
            return None
        grid = output if reshape is None else reshape(output)
        kept.append(grid.detach().to("cpu", torch.float16, copy=True).numpy())
        return None

    hook_handle = handle.layers[layer].register_forward_hook(hook)
    try:
        yield kept
    finally:
        hook_handle.remove()


class Keeper:
    """Writes each batch's kept activations under `out`/concepts/activations (kill-safe: the .npy
    first, then the .json that names its rows, each atomically), named by a hash of `run` (this
    run's id, new by default) and the batch's keys: unique per run and batch, so Ray actors never
    write the same file. Plain data: it is sent to the Ray actors as it is."""

    def __init__(self, out: Path, layer: str, run: Optional[str] = None) -> None:
        self.folder, self.layer, self.run = Path(out) / ACTIVATIONS, layer, run or uuid.uuid4().hex
        self.folder.mkdir(parents=True, exist_ok=True)

    def add(self, records: Sequence[dict], grid: np.ndarray) -> None:
        keys = [r["key"] for r in records]
        name = hashlib.sha256("\0".join([self.run, *keys]).encode()).hexdigest()[:24]
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(grid, dtype=np.float16))
        write_atomic(self.folder / f"{name}.npy", buffer.getvalue(), sync=False)
        write_atomic(self.folder / f"{name}.json", json.dumps(
            {"layer": self.layer, "keys": keys, "content_keys": [r.get("content_key") for r in records],
             "run": self.run, "written": time.time_ns()}), sync=False)


def _entries(out: Path) -> list:
    """(the .json, its content) of every readable kept batch in `out`, oldest first (by the time
    written, which batches written before runs were recorded lack: they come first)."""
    found = []
    for meta in sorted((Path(out) / ACTIVATIONS).glob("*.json")):
        try:
            entry = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(entry, dict) and len(entry.get("keys", ())) == len(entry.get("content_keys", ())):
            found.append((meta, entry))
    return sorted(found, key=lambda me: int(me[1].get("written") or 0))


def kept_index(out: Path, layer: str) -> dict:
    """Row key or content key -> (.npy file, index) of every kept activation of `layer` in `out`
    (the newest where a key was kept twice)."""
    index: dict = {}
    for meta, entry in _entries(out):
        array = meta.with_suffix(".npy")
        if entry.get("layer") != layer or not array.is_file():
            continue
        for i, (key, content) in enumerate(zip(entry["keys"], entry["content_keys"])):
            if key:
                index[key] = (array, i)
            if content:
                index[content] = (array, i)
    return index


def prune_kept(out: Path, keys: Iterable[str], contents: Iterable[str], explained: Iterable[str], run: str) -> int:
    """Drop the kept activations that no row will use: those of a file no longer in the input
    (neither its key's file part, its path and content, among the input's `keys`, nor its content
    key among `contents`), those of a row this run explained again (`explained`) kept by an earlier
    run (`run`: this run's id; explained again without keeping, the row has none), and every older
    copy of a key kept twice. A kept batch with no activation left is removed (.json first, then its
    .npy), one with some has the others' keys blanked (atomically). Returns how many batches were
    removed. Call it under the folder's lock once the run's batches are written."""
    files, contents, explained = {str(k)[:32] for k in keys}, set(contents), set(explained)
    entries, newest = _entries(out), {}
    for n, (_, entry) in enumerate(entries):
        for key in entry["keys"]:
            newest[key] = n
    removed = 0
    for n, (meta, entry) in enumerate(entries):
        live = [bool(key) and newest[key] == n and (str(key)[:32] in files or content in contents)
                and not (key in explained and entry.get("run") != run)
                for key, content in zip(entry["keys"], entry["content_keys"])]
        if not any(live):
            meta.unlink(missing_ok=True)
            meta.with_suffix(".npy").unlink(missing_ok=True)
            removed += 1
        elif not all(live):
            entry["keys"] = [k if keep else None for k, keep in zip(entry["keys"], live)]
            entry["content_keys"] = [c if keep else None for c, keep in zip(entry["content_keys"], live)]
            write_atomic(meta, json.dumps(entry), sync=False)
    folder, named = Path(out) / ACTIVATIONS, {meta.name for meta, _ in _entries(out)}
    for meta in folder.glob("*.json"):  # unreadable (damaged): its batch cannot be used
        if meta.name not in named:
            meta.unlink(missing_ok=True)
    for array in folder.glob("*.npy"):  # a killed run's batch whose .json was never written
        if not array.with_suffix(".json").is_file():
            array.unlink(missing_ok=True)
    for partial in folder.glob(".*.tmp"):  # what a killed run left half written (`temporary_name`)
        partial.unlink(missing_ok=True)
    return removed


def load_kept(places: Sequence[tuple]) -> np.ndarray:
    """float32 [N, C, h, w]: the kept activations at `places` ((file, index) each), in order."""
    by_file: dict = {}
    for n, (path, i) in enumerate(places):
        by_file.setdefault(path, []).append((n, i))
    out = None
    for path, wanted in by_file.items():
        array = np.load(path, mmap_mode="r")
        if out is None:
            out = np.empty((len(places), *array.shape[1:]), np.float32)
        for n, i in wanted:
            out[n] = array[i]
    return out if out is not None else np.zeros((0, 0, 0, 0), np.float32)


__all__ = ["ACTIVATIONS", "Keeper", "checked_concepts", "concepts_step", "keeping", "kept_index", "load_kept",
           "prune_kept", "register_concepts_step"]
