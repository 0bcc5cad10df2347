"""A results folder of the previous layout, made from one of today's (the dataset tests and the
Dataset page's tests read both)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from xai_core import dataset

#: The columns today's rows have and the previous layout's lack.
NEW_COLUMNS = ("pictures", "maps_file", "maps_index")


def unhashed(table: Path) -> Path:
    """A part renamed as versions before hashed parts named theirs: part-TIME-PID (no hash of its
    bytes, so its rows are checked one by one instead of set aside when its bytes change); any other
    table is left as it is."""
    if table.parent.name != "parts":
        return table
    return table.rename(table.with_name("-".join(table.name.split("-")[:3]) + ".parquet"))


def make_legacy(out: Path) -> None:
    """Turn a results folder of this version (written with "all") into the previous version's layout:
    KEY_METHOD.png overlays and KEY.npz raw maps per image, no raw batch files, rows without the
    pictures, maps_file and maps_index columns, parts named part-TIME-PID.parquet."""
    rows = dataset.read_rows(out)
    methods = json.loads((out / "summary.json").read_text())["settings"]["methods"]
    for row in rows:
        if row["error"] is None:
            maps = {m: np.float16(dataset.read_map(out, row, m)) for m in methods}
            np.savez_compressed(out / "maps" / f"{row['key']}.npz", **maps)
            for m in methods:
                jpg = out / "maps" / f"{row['key']}_{m}.jpg"
                Image.open(jpg).save(jpg.with_suffix(".png"))
                jpg.unlink()
    for raw in (out / "maps").glob("raw-*"):
        raw.unlink()
    for table in [*(out / "parts").glob("part-*.parquet"), out / "results.parquet"]:
        old = pq.read_table(table)
        pq.write_table(old.drop_columns([c for c in NEW_COLUMNS if c in old.column_names]), table)
        unhashed(table)
    assert "pictures" not in pq.read_schema(out / "results.parquet").names
