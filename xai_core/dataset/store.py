"""The results folder on disk: rows written batch by batch as Parquet parts (atomically), read back
for resuming, and finished into results.parquet, summary.json and index.html.

    OUT/results.parquet   one row per input file (columns: `columns`)
    OUT/parts/            the rows, one Parquet file per batch, written (atomically) once the
                          batch's pictures are on disk; the local engine computes a batch while
                          the previous one is written, so a killed run loses at most two batches,
                          the one being computed and the one being written (with Ray, the
                          batches in flight on the actors); a rerun skips every file already there.
                          Each part is named with a hash of its bytes: a part changed by hand is
                          set aside (`check.py`)
    OUT/.lock             held by the run writing the folder (`lock.py`)
    OUT/maps/             what --pictures asks for (`writer.py`): with all (the default), per image
                          KEY.jpg (the picture the maps belong to) and KEY_METHOD.jpg (each map
                          over it), and per batch and method raw-BATCH.METHOD.npy (the raw maps,
                          float16 [N, H, W]; a row's maps_file and maps_index say where its are);
                          with maps, KEY.jpg and the raw maps; with none, nothing
    OUT/summary.json      per method: score means with 95% bootstrap intervals, win rates against
                          the random map, accuracy (with true labels); see `summarize`; with ground
                          truth (--ground-truth) also "localisation" (`localisation_summary`);
                          against a model B (--against) also "against" (`against_summary`)
    OUT/index.html        the browsable report (`report.html_reports`)

A row's `key` is the file's content hash and the job's settings: rerunning the same command finds
every file's key in `parts/` and skips it; a changed file or other settings run again. The local engine
runs the batches in this process (`run`); the Ray engine (`ray_engine.py`) runs `explain_records`
in Ray actors and writes the same rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

from .._files import atomic_file, write_atomic
from ..report import write_dataset_report
from .against_summary import against_summary
from .inputs import Source
from .localisation_summary import localisation_summary
from .settings import Settings, columns
from .summary import summarize
from .writer import KEY_PATTERN, RAW_PATTERN, with_thumbnails


def write_part(out: Path, rows: list[dict], settings: Settings) -> Path:
    """Write `rows` as the next part file, atomically (a killed run leaves no half part), named
    part-TIME-PID-SHA.parquet: SHA is its bytes' hash, so a part changed since (by hand) is told
    from one this package wrote (`read_parts`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema(settings)), buffer)
    data = buffer.getvalue().to_pybytes()
    path = out / "parts" / f"part-{time.time_ns()}-{os.getpid()}-{_sha(data)}.parquet"
    return write_atomic(path, data)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def schema(settings: Settings):
    import pyarrow as pa

    types = {"path": pa.string(), "key": pa.string(), "content_key": pa.string(), "error": pa.string(),
             "label": pa.string(),
             "probability": pa.float64(), "top5_labels": pa.list_(pa.string()),
             "top5_probabilities": pa.list_(pa.float64()), "target": pa.int64(), "target_label": pa.string(),
             "true_label": pa.string(), "pictures": pa.string(), "maps_file": pa.string(), "maps_index": pa.int64(),
             "results_version": pa.int64(), "ground_truth": pa.string(), "ground_truth_note": pa.string(),
             "ground_truth_outline": pa.string(), "correct": pa.bool_(), "b_label": pa.string(), "b_target_label": pa.string(), "b_correct": pa.bool_(),
             "b_note": pa.string(), "b_maps_file": pa.string(), "b_maps_index": pa.int64()}
    return pa.schema([(c, types.get(c, pa.float64()))
                      for c in columns(settings.methods, settings.evaluate, settings.localises, settings.compares)])


#: A part's name: its bytes' hash at the end (a part of an earlier version has none).
_PART = re.compile(r"part-[0-9]+-[0-9]+(?:-([0-9a-f]{16}))?\.parquet")


def read_parts(out: Path) -> Iterator[tuple[Path, Optional[list[dict]]]]:
    """Each part file in `out/parts`, oldest first, with its rows, or None for a part that cannot be
    read or whose bytes are not those it was written with (its name's hash: changed by hand)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for part in sorted((Path(out) / "parts").glob("part-*.parquet")):
        name = _PART.fullmatch(part.name)
        try:
            data = part.read_bytes()
            if name is None or (name.group(1) is not None and name.group(1) != _sha(data)):
                yield part, None
                continue
            yield part, pq.read_table(pa.BufferReader(data)).to_pylist()
        except Exception:  # noqa: BLE001 - a damaged part (a disk error) is not trusted, never fatal
            yield part, None


def read_rows(out: Path) -> list[dict]:
    """Every row in the parts of `out/parts` that can be trusted (`read_parts`; the latest part wins
    for a key); [] when there is none. Part files of other settings (other columns) are read too:
    their keys never match."""
    rows: dict[str, dict] = {}
    for _, part in read_parts(out):
        for row in part or ():
            if isinstance(row.get("key"), str):
                rows[row["key"]] = row
    return list(rows.values())


def finish(out: Path, sources: Sequence[Source], keys: dict, settings: Settings, root: str,
           categories: Optional[Sequence[str]] = None, unmatched: Sequence[str] = (),
           extra: Optional[Callable[[list], dict]] = None) -> tuple[list[dict], int]:
    """Write results.parquet (one row per input file, in order, from the parts; its path and true
    label always the current listing's), summary.json (`categories`: the model's labels, to tell
    whether the true labels are its classes) and index.html, each atomically (a full disk leaves the
    previous complete file), and remove the pictures of files that are no longer in the input (a
    changed, moved or deleted file's; `prune_pictures`). Returns (the rows, how many pictures were
    removed). With ground truth, summary.json also holds "localisation" (`unmatched`: the ground
    truth entries that name no input file; see `localisation_summary`). `extra(rows)`: more of
    summary.json (the run's "concepts" block), computed once the rows are final."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    by_key = {row["key"]: row for row in read_rows(out)}
    cols = columns(settings.methods, settings.evaluate, settings.localises, settings.compares)
    rows = [{**{c: by_key[keys[s.path]].get(c) for c in cols}, "path": s.path, "true_label": s.true_label}
            for s in sources if keys[s.path] in by_key]
    with atomic_file(out / "results.parquet") as file:
        pq.write_table(pa.Table.from_pylist(rows, schema=schema(settings)), file)
    summary = summarize(rows, settings, categories)
    summary["input"] = os.path.basename(os.path.normpath(root))  # for people: the folder's name
    summary["input_root"] = os.path.abspath(root)  # for `original_file`: where the rows' paths are (never shown)
    if settings.localises:
        summary["localisation"] = localisation_summary(rows, settings, unmatched)
    if settings.compares:
        summary["against"] = against_summary(rows, settings)
    if extra is not None:
        summary.update(extra(rows))
    write_atomic(out / "summary.json", json.dumps(summary, indent=2, allow_nan=False))
    write_dataset_report(out, rows, summary, lambda some: with_thumbnails(out, some, settings.methods))
    return rows, prune_pictures(out, keys.values(), by_key.values())


#: What a killed run left half written (`temporary_name`; under the lock no other run writes now).
_PARTIAL = re.compile(r"\.(?:results\.parquet|summary\.json|index\.html|part-[0-9].*|raw-[0-9a-f]{24}\..*)"
                      r"(?:\.[0-9]+-[0-9a-f]{12})?\.tmp")


def prune_pictures(out: Path, keys: Iterable[str], rows: Iterable[dict]) -> int:
    """Remove the pictures in `out/maps` of files no longer in the input: those whose key's file
    part (its path and content) is not that of any of `keys` (the input's rows' keys, under any
    settings: another method's pictures of a file still there are kept), and the raw files that
    only such rows name (`rows`: every stored row, of any settings). Raw files that no stored row
    names (their rows were explained again) and what a killed run left half written are removed
    too, uncounted. Returns how many pictures of files no longer in the input were removed."""
    files = {str(key)[:32] for key in keys}
    named: dict[str, bool] = {}  # raw stem -> whether a row of a file still in the input names it
    for row in rows:
        for stem in (row.get("maps_file"), row.get("b_maps_file")):  # model A's raw maps, model B's
            if stem is not None:
                named[str(stem)] = named.get(str(stem), False) or str(row["key"])[:32] in files
    removed = 0
    maps = Path(out) / "maps"
    for picture in (maps.iterdir() if maps.is_dir() else ()):
        key, stem = KEY_PATTERN.match(picture.name), RAW_PATTERN.match(picture.name)
        gone = bool(key and key.group(0)[:32] not in files) or bool(stem and named.get(stem.group(0)) is False)
        if gone or (stem and stem.group(0) not in named) or _PARTIAL.fullmatch(picture.name):
            picture.unlink(missing_ok=True)
            removed += gone
    for folder in (Path(out), Path(out) / "parts"):
        for path in (folder.iterdir() if folder.is_dir() else ()):
            if _PARTIAL.fullmatch(path.name):
                path.unlink(missing_ok=True)
    return removed


__all__ = ["finish", "prune_pictures", "read_parts", "read_rows", "schema", "write_part"]
