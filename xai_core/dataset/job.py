"""`run`: the dataset job. Lists the inputs, skips the files a previous run with the same settings
did, explains the rest batch by batch with the local engine (this process) or the Ray engine, writes
each batch's rows as a part, and finishes the results folder (see the package docstring)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional, Sequence

from .._names import split_names
from ..errors import InvalidOptionError
from ..explain import images_per_batch
from ..methods import get_method
from ..models import ModelHandle
from .inputs import list_inputs
from .ray_engine import run_ray
from .records import compute_records, read_record, save_pictures
from .settings import NOT_EXPLAINED, JobResult, Settings
from .store import finish, read_rows, write_part


def run(
    handle: ModelHandle,
    input_spec: str,
    output: str,
    methods: Sequence[str],
    *,
    target=None,
    layer=None,
    evaluate: bool = False,
    steps: int = 20,
    batch_size: Optional[int] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    engine: str = "local",
    address: Optional[str] = None,
) -> JobResult:
    """Explain every file of `input_spec` (see `list_inputs`) into the folder `output`, skipping
    the files a previous run with the same settings already did. `progress(done, total)` after each
    batch. Raises `InvalidOptionError` for bad settings (before any work); a bad file is an error
    row, never an exception."""
    started = time.perf_counter()
    methods = [get_method(m).id for m in split_names(methods, lower=True)]
    if not methods:
        raise InvalidOptionError("Choose at least one method.")
    if target is not None:
        target = handle.class_index(target)
    layers = tuple(split_names(layer)) or (handle.default_layer,)
    layers = tuple(handle.layer_name(n) for n in layers)
    if engine not in ("local", "ray"):
        raise InvalidOptionError(f"Unknown engine {engine!r}; use local or ray.")
    settings = Settings(handle.name, handle.fingerprint, tuple(methods), target, layers, bool(evaluate), int(steps))
    size = images_per_batch(handle, batch_size)
    out = Path(output).expanduser().resolve()
    root, sources = list_inputs(input_spec, exclude=out)  # never our own maps
    try:
        (out / "parts").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InvalidOptionError(f"The results folder cannot be made ({type(err).__name__}); give --output a "
                                 "writable folder path.") from None
    digest = settings.digest()
    done_keys = {row["key"] for row in read_rows(out) if not (row["error"] or "").startswith(NOT_EXPLAINED)}
    todo, keys = [], {}
    for source in sources:
        record = read_record(source, digest)
        keys[source.path] = record["key"]
        if record["key"] not in done_keys:
            todo.append(record)
    total, finished = len(todo), 0
    if progress is not None:
        progress(0, total)
    if engine == "ray":
        batches = run_ray(handle, todo, settings, str(out), size, address)
    else:
        batches = _pipelined(handle, todo, settings, out, size)
    for rows in batches:
        write_part(out, rows, settings)
        finished += len(rows)
        if progress is not None:
            progress(finished, total)
    rows = finish(out, [s.path for s in sources], keys, settings, str(root))
    refused = [r for r in rows if r["error"] is not None]
    failed = sum(r["error"].startswith(NOT_EXPLAINED) for r in refused)
    return JobResult(len(rows) - len(refused), len(refused) - failed, len(sources) - total, failed, str(out),
                     time.perf_counter() - started)


def _pipelined(handle: ModelHandle, todo: list, settings: Settings, out: Path, size: int):
    """The local engine: each batch's rows, once its pictures are on disk (so a part never names a
    missing map); a batch's pictures are written in a background thread while the next batch is
    computed (PIL and zlib release the GIL)."""
    pending = None
    with ThreadPoolExecutor(max_workers=1) as pool:
        for i in range(0, len(todo), size):
            batch = todo[i:i + size]
            rows, pictures = compute_records(handle, batch, settings)
            if pending is not None:
                pending[1].result()
                yield pending[0]
            pending = (rows, pool.submit(save_pictures, str(out), pictures))
        if pending is not None:
            pending[1].result()
            yield pending[0]


__all__ = ["run"]
