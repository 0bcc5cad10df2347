"""The results folder on disk: rows written batch by batch as Parquet parts (atomically), read back
for resuming, and finished into results.parquet, summary.json and index.html.

    OUT/results.parquet   one row per input file (columns: `columns`)
    OUT/parts/            the rows, one Parquet file per batch, written (atomically) once the
                          batch's pictures are on disk; the local engine computes a batch while
                          the previous one is written, so a killed run loses at most two batches,
                          the one being computed and the one being written (with Ray, the
                          batches in flight on the actors); a rerun skips every file already there
    OUT/maps/             what --pictures asks for (`writer.py`): with all (the default), per image
                          KEY.jpg (the picture the maps belong to) and KEY_METHOD.jpg (each map
                          over it), and per batch and method raw-BATCH.METHOD.npy (the raw maps,
                          float16 [N, H, W]; a row's maps_file and maps_index say where its are);
                          with maps, KEY.jpg and the raw maps; with none, nothing
    OUT/summary.json      per method: score means with 95% bootstrap intervals, win rates against
                          the random map, accuracy (with true labels); see `summarize`
    OUT/index.html        the browsable report (`report.html_reports`)

A row's `key` is the file's content hash and the job's settings: rerunning the same command finds
every file's key in `parts/` and skips it; a changed file or other settings run again. The local engine
runs the batches in this process (`run`); the Ray engine (`ray_engine.py`) runs `explain_records`
in Ray actors and writes the same rows.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Optional, Sequence

from ..report import write_dataset_report
from .inputs import Source
from .settings import Settings, columns
from .summary import summarize
from .writer import KEY_PATTERN, RAW_PATTERN, with_thumbnails


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

    types = {"path": pa.string(), "key": pa.string(), "content_key": pa.string(), "error": pa.string(),
             "label": pa.string(),
             "probability": pa.float64(), "top5_labels": pa.list_(pa.string()),
             "top5_probabilities": pa.list_(pa.float64()), "target": pa.int64(), "target_label": pa.string(),
             "true_label": pa.string(), "pictures": pa.string(), "maps_file": pa.string(), "maps_index": pa.int64(),
             "results_version": pa.int64()}
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


def finish(out: Path, sources: Sequence[Source], keys: dict, settings: Settings, root: str,
           categories: Optional[Sequence[str]] = None) -> tuple[list[dict], int]:
    """Write results.parquet (one row per input file, in order, from the parts; its path and true
    label always the current listing's), summary.json (`categories`: the model's labels, to tell
    whether the true labels are its classes) and index.html, and remove the pictures of rows that
    are gone (a changed, moved or deleted file's). Returns (the rows, how many pictures were removed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    by_key = {row["key"]: row for row in read_rows(out)}
    cols = columns(settings.methods, settings.evaluate)
    rows = [{**{c: by_key[keys[s.path]].get(c) for c in cols}, "path": s.path, "true_label": s.true_label}
            for s in sources if keys[s.path] in by_key]
    tmp = out / ".results.parquet.tmp"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema(settings)), tmp)
    os.replace(tmp, out / "results.parquet")
    summary = summarize(rows, settings, categories)
    summary["input"] = os.path.basename(os.path.normpath(root))
    (out / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False))
    write_dataset_report(out, with_thumbnails(out, rows, settings.methods), summary)
    return rows, prune_pictures(out, rows)


#: A raw file being written (a killed run's is removed).
_PARTIAL = re.compile(r"\.raw-[0-9a-f]{24}\..*\.tmp")


def prune_pictures(out: Path, rows: Sequence[dict]) -> int:
    """Remove the pictures in `out/maps` whose row is not among `rows` (the results' rows: a
    picture's name starts with its row's key, a raw file's with a stem no row names any more) and
    raw files a killed run left half written; returns how many were removed."""
    keys = {row["key"] for row in rows}
    stems = {row.get("maps_file") for row in rows}
    removed = 0
    maps = Path(out) / "maps"
    for picture in (maps.iterdir() if maps.is_dir() else ()):
        key, stem = KEY_PATTERN.match(picture.name), RAW_PATTERN.match(picture.name)
        if (key and key.group(0) not in keys) or (stem and stem.group(0) not in stems) \
                or _PARTIAL.fullmatch(picture.name):
            picture.unlink(missing_ok=True)
            removed += 1
    return removed


__all__ = ["finish", "prune_pictures", "read_rows", "schema", "write_part"]
