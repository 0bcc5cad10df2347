"""The dataset job: see the package docstring."""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
from PIL import Image

from .._names import split_names
from .._pool import worker_pool
from ..errors import Cancelled, InvalidImageError, InvalidOptionError, XAIError
from ..evaluate import evaluate_batch
from ..faithfulness import HIGHER_IS_BETTER, RANDOM, ROAD_PERCENTILES
from ..explain import TOP_K, explain_batch, images_per_batch
from ..images import load_image
from ..methods import get_method
from ..models import ModelHandle, list_models
from ..predict import is_correct
from ..report import overlay_cam, write_dataset_report
from ..models import is_source

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
#: The scores of `--eval`, each with whether higher is better (for win rates against the random map).
EVAL_SCORES = {score: HIGHER_IS_BETTER[score] for score in ("deletion_auc", "insertion_auc", "road_combined")}
BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED = 2000, 0
#: How the error of a readable file that could not be explained starts (retried by a rerun).
NOT_EXPLAINED = "Not explained:"


@dataclass(frozen=True)
class Source:
    """One input file: `path` relative to the input (POSIX), `file` on disk, `true_label` (the
    subfolder's name in an ImageFolder tree, else None)."""

    path: str
    file: str
    true_label: Optional[str] = None


@dataclass(frozen=True)
class Settings:
    """What makes the maps; part of every row's key."""

    model: str
    weights: str
    methods: tuple[str, ...]
    target: Optional[int]  # a class index (labels can repeat: ImageNet has two 'crane's)
    layers: tuple[str, ...]
    evaluate: bool = False
    steps: int = 20
    road_percentiles: tuple[int, ...] = ROAD_PERCENTILES

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class JobResult:
    """What `run` did: files explained, refused (an error row), and skipped (done before)."""

    explained: int
    refused: int
    skipped: int
    failed: int
    output: str
    seconds: float

    def line(self) -> str:
        """The last line the CLI prints."""
        done = f"Explained {self.explained} file{'s' * (self.explained != 1)}"
        refused = f"refused {self.refused} (see the error column of results.parquet)"
        skipped = f"; {self.skipped} already done were skipped" if self.skipped else ""
        failed = f"; {self.failed} readable file{'s' * (self.failed != 1)} failed" if self.failed else ""
        return f"{done}, {refused}{skipped}{failed}; results in {self.output}."


def list_inputs(spec: str, exclude: Optional[Path] = None) -> tuple[Path, list[Source]]:
    """The input files of `spec`: a folder (every image under it; an ImageFolder tree, i.e. every
    image exactly one subfolder deep, gives each file its subfolder's name as true label), a text
    file listing one path a line (relative to its folder; `#` starts a comment), or a glob.
    Files under `exclude` (a results folder inside the input) are left out. Returns (the folder
    paths are relative to, the files sorted by path). Raises `InvalidOptionError` when nothing is found."""
    text = str(spec).strip()
    path = Path(text).expanduser()
    if path.is_dir():
        root = path.resolve()
        files = sorted(f for f in root.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                       and not (exclude is not None and f.resolve().is_relative_to(exclude)))
        rel = [f.relative_to(root) for f in files]
        folder_tree = bool(rel) and all(len(r.parts) == 2 for r in rel)
        sources = [Source(r.as_posix(), str(f), r.parts[0] if folder_tree else None) for r, f in zip(rel, files)]
    elif path.is_file() and path.suffix.lower() == ".txt":
        root = path.resolve().parent
        lines = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
        sources = []
        for line in dict.fromkeys(filter(None, lines)):
            f = (root / line).resolve() if not Path(line).is_absolute() else Path(line)
            sources.append(Source(os.path.relpath(f, root).replace(os.sep, "/"), str(f)))
    elif any(ch in text for ch in "*?["):
        root = Path(_glob_root(text)).resolve()
        files = sorted(Path(f).resolve() for f in glob.glob(text, recursive=True) if os.path.isfile(f))
        sources = [Source(f.relative_to(root).as_posix(), str(f)) for f in files]
    elif path.is_file():
        root = path.resolve().parent
        sources = [Source(path.name, str(path.resolve()))]
    else:
        raise InvalidOptionError(f"The input {text!r} is neither a folder, a .txt list, a file nor a glob that exists.")
    if exclude is not None:
        sources = [s for s in sources if not Path(s.file).resolve().is_relative_to(exclude)]
    if not sources:
        where = " outside the results folder" if exclude is not None else ""
        raise InvalidOptionError(f"No images found in {text!r}{where} (looked for {', '.join(IMAGE_SUFFIXES)}).")
    return root, sorted(sources, key=lambda s: s.path)


def _glob_root(pattern: str) -> str:
    parts = Path(pattern).parts
    fixed = [p for p in parts[:next(i for i, p in enumerate(parts) if any(ch in p for ch in "*?["))]]
    return str(Path(*fixed)) if fixed else "."


def columns(methods: Sequence[str], evaluate: bool) -> list[str]:
    """The columns of results.parquet, in order."""
    cols = ["path", "key", "error", "label", "probability", "top5_labels", "top5_probabilities", "target",
            "target_label", "true_label"]
    cols += ["seconds"] + [f"{m}_seconds" for m in methods]
    if evaluate:
        cols += [f"{m}_{score}" for m in list(methods) + [RANDOM] for score in EVAL_SCORES]
    return cols


_UNREADABLE = "The file cannot be read ({}); check that it exists and is readable."


def read_record(source: Source, digest: str) -> dict:
    """The file's key (its content hash and the settings'), or an error for a file that cannot be
    read. The bytes are not kept: the file is read again when it is explained, so that a large
    input is never held in memory at once."""
    try:
        data = Path(source.file).read_bytes()
    except OSError as err:
        return {"source": source, "data": None, "key": f"unreadable-{digest}-{source.path}",
                "error": _UNREADABLE.format(type(err).__name__)}
    key = f"{hashlib.sha256(data).hexdigest()[:32]}-{digest}"
    return {"source": source, "data": None, "key": key, "error": None}


def _decode(record: dict):
    """The record's image (PIL), or the one-sentence reason it is refused."""
    if record["error"] is not None:
        return record["error"]
    try:
        return load_image(record_bytes(record))
    except InvalidImageError as err:
        return str(err)
    except OSError as err:
        return _UNREADABLE.format(type(err).__name__)


def record_bytes(record: dict) -> bytes:
    """The record's bytes: those it carries, else its file's (raises OSError)."""
    return record["data"] if record.get("data") is not None else Path(record["source"].file).read_bytes()


def explain_records(handle: ModelHandle, records: Sequence[dict], settings: Settings, out_dir: str) -> list[dict]:
    """The per-batch function of both engines: decode each record's bytes, explain the readable
    ones in one `explain_batch` (and `evaluate_batch` with `settings.evaluate`), write their maps
    under `out_dir/maps`, and return one row per record (an error row for a refused file), in order."""
    rows, pictures = compute_records(handle, records, settings)
    save_pictures(out_dir, pictures)
    return rows


def compute_records(handle: ModelHandle, records: Sequence[dict], settings: Settings, *,
                    batch_size: Optional[int] = None,
                    progress: Optional[Callable[[int, int], Optional[bool]]] = None) -> tuple[list[dict], list]:
    """`explain_records` without the writing: (the rows, the pictures `save_pictures` writes: (key,
    the picture the maps belong to, {method: map}) per explained record). `batch_size` images per
    forward (default: all at once); `progress(done, total)` counts the images explained, then (with
    evaluation) scored; returning False cancels (raises `Cancelled`)."""
    rows: list[Optional[dict]] = [None] * len(records)
    good = []
    for i, (record, decoded) in enumerate(zip(records, worker_pool().map(_decode, records))):
        if isinstance(decoded, str):
            rows[i] = _row(record, settings, error=decoded)
        else:
            good.append((i, decoded))
    if not good:
        return rows, []
    pils = [pil for _, pil in good]
    total = len(pils) * (2 if settings.evaluate else 1)
    report = (lambda offset: None if progress is None else  # noqa: E731
              (lambda _stage, done, _total: progress(offset + done, total)))
    try:
        explanations = explain_batch(handle, pils, settings.methods, targets=settings.target,
                                     layer=list(settings.layers), batch_size=batch_size or len(pils),
                                     progress=report(0))
        scores = (evaluate_batch(handle, pils, explanations, steps=settings.steps,
                                 road_percentiles=settings.road_percentiles, progress=report(len(pils)))
                  if settings.evaluate else None)
    except Cancelled:
        raise
    except XAIError as err:  # a readable file that could not be explained: its row says why
        for i, _ in good:
            rows[i] = _row(records[i], settings, error=f"{NOT_EXPLAINED} {err}")
        return rows, []
    pictures = []
    for n, (i, _) in enumerate(good):
        rows[i] = _explained_row(records[i], settings, explanations[n], scores[n] if scores else None)
        pictures.append((records[i]["key"], explanations[n].image, explanations[n].maps))
    return rows, pictures


def save_pictures(out_dir: str, pictures: Sequence[tuple]) -> None:
    """Write each explained image's picture (KEY.jpg), its maps over it (KEY_METHOD.png) and its raw
    maps (KEY.npz, float16) into `out_dir/maps`."""
    maps = Path(out_dir) / "maps"
    maps.mkdir(parents=True, exist_ok=True)
    for key, image, cams in pictures:
        Image.fromarray(image).save(maps / f"{key}.jpg", quality=90)
        for method, cam in cams.items():
            Image.fromarray(overlay_cam(image, cam)).save(maps / f"{key}_{method}.png", compress_level=3)
        np.savez_compressed(maps / f"{key}.npz", **{m: np.float16(c) for m, c in cams.items()})


def _row(record: dict, settings: Settings, error: Optional[str] = None) -> dict:
    row = {c: None for c in columns(settings.methods, settings.evaluate)}
    source = record["source"]
    row.update(path=source.path, key=record["key"], error=error, true_label=source.true_label)
    return row


def _explained_row(record: dict, settings: Settings, explanation, evaluation) -> dict:
    row = _row(record, settings)
    for method in explanation.maps:
        row[f"{method}_seconds"] = float(explanation.timings.get(method, 0.0))  # the method's own work
    row["seconds"] = float(explanation.timings["total"])  # the image's share of its batch, shared pass included
    top = explanation.top[:TOP_K]
    row.update(label=top[0].label, probability=float(top[0].probability),
               top5_labels=[p.label for p in top], top5_probabilities=[float(p.probability) for p in top],
               target=int(explanation.target), target_label=explanation.target_label)
    if evaluation is not None:
        for method in list(settings.methods) + [RANDOM]:
            for score in EVAL_SCORES:
                row[f"{method}_{score}"] = float(evaluation.scores[method][score])
    return row


# --- the job ------------------------------------------------------------------------------------


def model_args(handle: ModelHandle) -> dict:
    """`load_model` keywords that load `handle`'s model again in another process (a Ray actor):
    its name, its weights file (or its tag's cached file), its labels for a source model. Raises
    `InvalidOptionError` for a randomly initialised model, which another process cannot reproduce."""
    if handle.weights_file is None and "random" in handle.weights_source:
        raise InvalidOptionError(f"{handle.name} has random weights, which another process cannot load; "
                                 "give it a weights file or a tag.")
    args: dict = {"name": handle.name}
    if is_source(handle.name):
        args.update(weights=handle.weights_file, labels=list(handle.categories))
    elif handle.weights_file is not None and handle.name in list_models(models_file=False):
        args["weights"] = handle.weights_file
    return args


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
    settings = Settings(handle.name, handle.weights_source, tuple(methods), target, layers, bool(evaluate), int(steps))
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
        from .ray_engine import run_ray

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


def write_part(out: Path, rows: list[dict], settings: Settings) -> Path:
    """Write `rows` as the next part file (atomically: a killed run leaves no half part)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=schema(settings))
    name = f"part-{time.time_ns()}-{os.getpid()}.parquet"
    tmp = out / "parts" / f".{name}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, out / "parts" / name)
    return out / "parts" / name


def schema(settings: Settings):
    import pyarrow as pa

    types = {"path": pa.string(), "key": pa.string(), "error": pa.string(), "label": pa.string(),
             "probability": pa.float64(), "top5_labels": pa.list_(pa.string()),
             "top5_probabilities": pa.list_(pa.float64()), "target": pa.int64(), "target_label": pa.string(),
             "true_label": pa.string()}
    return pa.schema([(c, types.get(c, pa.float64())) for c in columns(settings.methods, settings.evaluate)])


def read_rows(out: Path) -> list[dict]:
    """Every row in `out/parts` (the latest part wins for a key); [] when there is none. Part files
    of other settings (other columns) are read too: their keys never match."""
    import pyarrow.parquet as pq

    rows: dict[str, dict] = {}
    for part in sorted((Path(out) / "parts").glob("part-*.parquet")):
        try:
            for row in pq.read_table(part).to_pylist():
                rows[row["key"]] = row
        except Exception:  # noqa: BLE001 - a damaged part (a disk error) is redone, never fatal
            continue
    return list(rows.values())


def finish(out: Path, paths: Sequence[str], keys: dict, settings: Settings, root: str) -> list[dict]:
    """Write results.parquet (one row per input path, in order, from the parts), summary.json and
    index.html; returns the rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    by_key = {row["key"]: row for row in read_rows(out)}
    cols = columns(settings.methods, settings.evaluate)
    rows = [{c: by_key[keys[p]].get(c) for c in cols} for p in paths if keys[p] in by_key]
    tmp = out / ".results.parquet.tmp"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema(settings)), tmp)
    os.replace(tmp, out / "results.parquet")
    summary = summarize(rows, settings)
    summary["input"] = os.path.basename(os.path.normpath(root))
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    write_dataset_report(out, rows, summary)
    return rows


# --- the summary --------------------------------------------------------------------------------


def bootstrap_ci(values: Iterable[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> dict:
    """Mean of `values` (NaNs dropped) with a 95% percentile-bootstrap interval: {"mean", "low",
    "high", "n"} (None for no values)."""
    data = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if data.size == 0:
        return {"mean": None, "low": None, "high": None, "n": 0}
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": float(data.mean()), "low": float(low), "high": float(high), "n": int(data.size)}


def summarize(rows: Sequence[dict], settings: Settings) -> dict:
    """summary.json's content: counts, settings, accuracy (with true labels), and per method its
    seconds per image and, with evaluation, each score's mean and 95% bootstrap interval and the
    paired win rate against the random map (the share of images where the method's score is
    better than the random map's on the same image, with its interval)."""
    ok = [r for r in rows if r["error"] is None]
    summary: dict = {
        "files": len(rows), "explained": len(ok), "refused": len(rows) - len(ok),
        "settings": dataclasses.asdict(settings), "methods": {},
    }
    summary["target_label"] = next((r["target_label"] for r in ok), None) if settings.target is not None else None
    summary["seconds_per_image"] = bootstrap_ci(r["seconds"] for r in ok)
    labelled = [r for r in ok if r.get("true_label")]
    if labelled:
        summary["accuracy"] = bootstrap_ci([float(is_correct(r.get("label"), r.get("true_label"))) for r in labelled])
    for method in list(settings.methods) + ([RANDOM] if settings.evaluate else []):
        entry: dict = {"title": get_method(method).title if method != RANDOM else "Random map"}
        if method != RANDOM:
            entry["seconds"] = bootstrap_ci(r[f"{method}_seconds"] for r in ok)
        if settings.evaluate:
            for score, higher in EVAL_SCORES.items():
                entry[score] = bootstrap_ci(r[f"{method}_{score}"] for r in ok)
                if method != RANDOM:
                    wins = [float((r[f"{method}_{score}"] > r[f"{RANDOM}_{score}"]) == higher
                                  and r[f"{method}_{score}"] != r[f"{RANDOM}_{score}"]) for r in ok]
                    entry[f"{score}_win_rate"] = bootstrap_ci(wins)
        summary["methods"][method] = entry
    return summary


__all__ = ["JobResult", "Settings", "Source", "bootstrap_ci", "columns", "explain_records", "list_inputs", "run",
           "summarize"]
