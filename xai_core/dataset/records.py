"""One batch of input files: each file's record (its keys), the batch explained (and scored) in one
`explain_batch` (and `evaluate_batch`), one row per file, and the maps' pictures written to disk
(`writer.py`). `explain_records` is the per-batch function of both engines.

A row's `key` is its file's path, content and the settings (a row belongs to its file: identical
files in two folders are two rows); its `content_key` is the content and the settings alone, so a
file whose content was explained before under the same settings (a copy, a renamed or moved file)
gets that row's results and a copy of its maps (`copy_row`) instead of being explained again."""

from __future__ import annotations

import hashlib
import shutil
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from .. import versions
from .._pool import worker_pool
from ..errors import Cancelled, InvalidImageError, InvalidOptionError, XAIError
from ..evaluate import evaluate_batch
from ..explain import TOP_K, explain_batch
from ..faithfulness import RANDOM
from ..images import load_image
from ..models import ModelHandle
from .against import against_scores, against_values, b_pictures, b_score_values, explain_against
from .inputs import Source
from .kept import Keeper, keeping
from .localised import ground_truths, image_targets, localisation_values, truth_of
from .settings import EVAL_SCORES, NOT_EXPLAINED, Settings, columns
from .writer import store_pictures

_UNREADABLE = "The file cannot be read ({}); check that it exists and is readable."


def read_record(source: Source, digest: str) -> dict:
    """The file's record: its `key` (a hash of its path and content, and the settings' `digest`),
    its `content_key` (its content's hash and `digest`; None for an unreadable file, which gets
    an error instead). The bytes are not kept: the file is read again when it is explained, so
    that a large input is never held in memory at once."""
    try:
        content = content_hash(Path(source.file).read_bytes())
        error = None
    except OSError as err:
        content, error = None, _UNREADABLE.format(type(err).__name__)
    return {"source": source, "data": None, "key": row_key(source.path, content, digest),
            "content_key": None if content is None else f"{content}-{digest}", "error": error}


def content_hash(data: bytes) -> str:
    """A file's content hash as a row's key and `content_key` hold it: 32 hex digits of its SHA-256."""
    return hashlib.sha256(data).hexdigest()[:32]


def row_key(path: str, content: Optional[str], digest: str) -> str:
    """A row's key: 32 hex digits of a hash of the file's relative path and its content hash (None:
    unreadable), then the settings' digest (16 hex digits), so it also names the row's pictures."""
    name = hashlib.sha256(f"{path}\0{content or 'unreadable'}".encode()).hexdigest()[:32]
    return f"{name}-{digest}"


def copy_row(out_dir: str, record: dict, row: dict) -> dict:
    """`row` (a file's results, with the same content and settings as `record`'s file) as the row
    of `record`: its path, true label and key, and a copy of `row`'s pictures under the new key
    (its raw maps stay in their batch's file, which the copy names too)."""
    maps = Path(out_dir) / "maps"
    old, new = row["key"], record["key"]
    if old != new:
        for picture in maps.glob(f"{old}*"):
            shutil.copyfile(picture, maps / (new + picture.name[len(old):]))
    source = record["source"]
    return {**row, "path": source.path, "true_label": source.true_label, "key": new,
            "content_key": record.get("content_key")}


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


def explain_records(handle: ModelHandle, records: Sequence[dict], settings: Settings, out_dir: str,
                    pictures: str = "all", against: Optional[ModelHandle] = None,
                    keep: Optional[Keeper] = None) -> list[dict]:
    """The per-batch function of both engines: decode each record's bytes, explain the readable
    ones in one `explain_batch` (and `evaluate_batch` with `settings.evaluate`), write what
    `pictures` asks for of their maps under `out_dir/maps` (`writer.store_pictures`), and return
    one row per record (an error row for a refused file), in order. `against`: model B of a run
    against a model B (`against.py`). `keep` (`kept.Keeper`, --concepts): the batch's activations,
    kept in its own forward, are written there too."""
    rows, drawn = compute_batch(handle, records, settings, against, keep)
    return store_pictures(out_dir, rows, drawn, pictures)


#: The one sentence of a file that could not be explained for lack of memory, even alone.
OUT_OF_MEMORY = (f"{NOT_EXPLAINED} the model ran out of memory on this image, even alone; rerun on a device "
                 "with more memory.")


def compute_batch(handle: ModelHandle, records: Sequence[dict], settings: Settings,
                  against: Optional[ModelHandle] = None, keep: Optional[Keeper] = None) -> tuple[list[dict], list]:
    """`compute_records` of one batch, which survives running out of memory: the batch is split in
    halves and each half computed again, down to one image, whose row then says it could not be
    explained (retried by a rerun); the other files are explained as usual. `against` and `keep`: see
    `compute_records`."""
    try:
        return compute_records(handle, records, settings, against=against, keep=keep)
    except (torch.OutOfMemoryError, MemoryError):
        if handle.device.type == "cuda":
            torch.cuda.empty_cache()
        if len(records) == 1:
            return [_row(records[0], settings, error=OUT_OF_MEMORY)], []
    half = len(records) // 2
    first = compute_batch(handle, records[:half], settings, against, keep)
    second = compute_batch(handle, records[half:], settings, against, keep)
    return first[0] + second[0], first[1] + second[1]


def compute_records(handle: ModelHandle, records: Sequence[dict], settings: Settings, *,
                    batch_size: Optional[int] = None,
                    progress: Optional[Callable[[int, int], Optional[bool]]] = None,
                    against: Optional[ModelHandle] = None, keep: Optional[Keeper] = None) -> tuple[list[dict], list]:
    """`explain_records` without the writing: (the rows, the pictures `writer.save_pictures` writes: (key,
    the picture the maps belong to, {method: map}) per explained record). `batch_size` images per
    forward (default: all at once); `progress(done, total)` counts the images explained, then (with
    evaluation) scored, then (against a model B) scored with model B; returning False cancels
    (raises `Cancelled`). With `settings.compares`,
    `against` is model B: each image is compared with it (`against.explain_against`: model A is
    explained once), its row gets model B's columns and its pictures model B's (KEY_b); with evaluation
    model B's maps are scored with model B too (`against.against_scores`). `keep`
    (`kept.Keeper`, for --concepts): the explained images' activations at its layer, recorded in model
    A's own forward (`kept.keeping`), are written there."""
    if settings.compares and (against is None or against.fingerprint != settings.against_fingerprint):
        raise InvalidOptionError("These settings compare with a model B: give that model (against=).")
    started = time.perf_counter()
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
    truths = ground_truths(settings)  # with ground truth, a box's label naming a class is its image's target
    targets = image_targets(handle.categories, truths, [records[i] for i, _ in good], settings.target)
    b_scored = settings.evaluate and settings.compares  # model B's maps are scored too, with model B
    total = len(pils) * (1 + settings.evaluate + b_scored)
    report = (lambda offset: None if progress is None else  # noqa: E731
              (lambda _stage, done, _total: progress(offset + done, total)))
    try:
        with (keeping(handle, keep.layer, len(pils)) if keep is not None else nullcontext([])) as kept:
            if settings.compares:  # model A first, then B (`kept` holds A's forward: the first)
                compared = explain_against(handle, against, pils, settings, _each(targets, len(pils)),
                                           batch_size or len(pils), report(0))
                explanations = [explanation for explanation, _, _ in compared]
            else:
                explanations = explain_batch(handle, pils, settings.methods, targets=targets,
                                             layer=list(settings.layers), batch_size=batch_size or len(pils),
                                             progress=report(0))
        scores = (evaluate_batch(handle, pils, explanations, steps=settings.steps,
                                 road_percentiles=settings.road_percentiles, progress=report(len(pils)))
                  if settings.evaluate else None)
        b_scores = against_scores(against, pils, compared, settings, report(2 * len(pils))) if b_scored else None
    except Cancelled:
        raise
    except XAIError as err:  # a readable file that could not be explained: its row says why
        for i, _ in good:
            rows[i] = _row(records[i], settings, error=f"{NOT_EXPLAINED} {err}")
        return rows, []
    if keep is not None and kept and (batch_size or len(pils)) >= len(pils):
        keep.add([records[i] for i, _ in good], kept[0])
    pictures = []
    share = (time.perf_counter() - started) / len(good)  # decoding, the maps and the scores: the image's share
    for n, (i, _) in enumerate(good):
        rows[i] = _explained_row(records[i], settings, explanations[n], scores[n] if scores else None, share)
        rows[i].update(localisation_values(settings, truth_of(truths, records[i]["source"].path), explanations[n]))
        pictures.append((records[i]["key"], explanations[n].image, explanations[n].maps))
        if settings.compares:
            _, comparison, note = compared[n]
            rows[i].update(against_values(handle, against, records[i]["source"].true_label, explanations[n],
                                          comparison, note, pils[n]))
            if b_scores is not None:
                rows[i].update(b_score_values(settings.methods, b_scores[n]))
            pictures += b_pictures(records[i]["key"], comparison)
    return rows, pictures


def _each(targets, count: int) -> list:
    """`image_targets`' answer as one target per image."""
    return list(targets) if isinstance(targets, (list, tuple)) else [targets] * count


def _row(record: dict, settings: Settings, error: Optional[str] = None) -> dict:
    row = {c: None for c in columns(settings.methods, settings.evaluate, settings.localises, settings.compares)}
    source = record["source"]
    row.update(path=source.path, key=record["key"], content_key=record.get("content_key"), error=error,
               true_label=source.true_label, results_version=versions.RESULTS_VERSION)
    return row


def _explained_row(record: dict, settings: Settings, explanation, evaluation, seconds: float) -> dict:
    row = _row(record, settings)
    for method in explanation.maps:
        row[f"{method}_seconds"] = float(explanation.timings.get(method, 0.0))  # the method's own work
    row["seconds"] = float(seconds)  # the image's share of its batch: decoding, every method, the scores
    top = explanation.top[:TOP_K]
    row.update(label=top[0].label, probability=float(top[0].probability),
               top5_labels=[p.label for p in top], top5_probabilities=[float(p.probability) for p in top],
               target=int(explanation.target), target_label=explanation.target_label)
    if evaluation is not None:
        for method in list(settings.methods) + [RANDOM]:
            for score in EVAL_SCORES:
                row[f"{method}_{score}"] = float(evaluation.scores[method][score])
    return row


__all__ = ["OUT_OF_MEMORY", "compute_batch", "compute_records", "content_hash", "copy_row", "explain_records",
           "read_record", "record_bytes", "row_key"]
