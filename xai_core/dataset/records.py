"""One batch of input files: each file's record (its key), the batch explained (and scored) in one
`explain_batch` (and `evaluate_batch`), one row per file, and the maps' pictures written to disk.
`explain_records` is the per-batch function of both engines."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
from PIL import Image

from .._pool import worker_pool
from ..errors import Cancelled, InvalidImageError, XAIError
from ..evaluate import evaluate_batch
from ..explain import TOP_K, explain_batch
from ..faithfulness import RANDOM
from ..images import load_image
from ..models import ModelHandle
from ..report import overlay_cam
from .inputs import Source
from .settings import EVAL_SCORES, NOT_EXPLAINED, Settings, columns

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


__all__ = ["compute_records", "explain_records", "read_record", "record_bytes", "save_pictures"]
