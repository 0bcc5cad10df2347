"""The dataset report's gallery, kept out of index.html so that its size does not grow with the run.

index.html embeds the summary and the gallery's first page (`PAGE` rows in file order, each with its
map thumbnails); the whole run is in sidecar files in OUT/gallery, which the page loads with a
`<script src>` (that works from file://, where Chromium refuses fetch() of a local file):

    gallery/rows-HASH.js       every row but its pictures, by column (`index_columns`), as a call
                               `xaiGallery({...})`; HASH is its content's, so an index.html never
                               reads another run's rows
    gallery/thumbs/KEY.png     for a row written with `--pictures maps` (no overlay files) beyond the
                               first page: its map thumbnails, one under the other, in jet colours

A run of at most `PAGE` rows has no sidecar: every row is in index.html. Each sidecar is written
atomically (`write_atomic`), and those no index.html names any more are removed (`prune_gallery`).
Written here: no library we use pages a static report."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import re
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
from PIL import Image

from .._files import write_atomic
from .._pool import worker_pool
from .pictures import JET

#: Rows per page of the gallery: the page embedded in index.html, and each page shown after.
PAGE = 50
FOLDER = "gallery"
#: The thumbnail name of model B's map of a method in a run against a model B: B_THUMB + method
#: (`dataset.with_thumbnails`); its tile sits after model A's in the row's strip.
B_THUMB = "b:"
#: The row columns the page never reads (the thumbnails travel apart, the rest is for the job).
_LEFT_OUT = ("thumbs", "maps_file", "maps_index", "content_key", "top5_labels", "top5_probabilities")
#: A key that is safe as a file name (the dataset's keys are hex digits and a dash).
_KEY = re.compile(r"[0-9a-f-]{1,64}")
_PALETTE = np.uint8(JET).reshape(-1).tolist()
#: Rows with their map thumbnails (`thumbs`) from rows without (`dataset.with_thumbnails`): called on
#: a page or a chunk of rows at a time, so the whole run's thumbnails are never in memory at once.
Thumbnails = Callable[[Sequence[dict]], list[dict]]
#: Rows per chunk of the thumbnails and per task of the pool (Pillow's PNG encoder and the writes
#: release the GIL).
CHUNK = 256
#: Characters that must not appear raw inside a <script> block (an HTML parser reads `</script>`,
#: `<!--` before JSON.parse does).
_SCRIPT_UNSAFE = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


def script_json(value: object) -> str:
    """`value` as JSON for a `<script type="application/json">` block: `<`, `>` and `&` escaped as
    \\u003c, \\u003e and \\u0026 (JSON.parse reads them back as they were), NaN and infinities as null."""
    return json.dumps(_finite(value), allow_nan=False, separators=(",", ":")).translate(_SCRIPT_UNSAFE)


def _finite(value: object) -> object:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (int, str, bool)) or value is None:
        return value
    return _finite(float(value))  # numpy scalars


def _js_order(text: object) -> bytes:
    """The key that sorts strings as JavaScript's `<` does (by UTF-16 code units)."""
    return str(text).encode("utf-16-be", "surrogatepass")


def gallery_order(rows: Sequence[dict]) -> list[dict]:
    """`rows` in the gallery's first order (by file, as the page sorts them)."""
    return sorted(rows, key=lambda r: _js_order(r.get("path") or ""))


def classes_of(rows: Sequence[dict]) -> list[str]:
    """The class filter's choices: each row's true label, else its label, sorted as the page sorts."""
    return sorted({str(r.get("true_label") or r.get("label")) for r in rows if r.get("true_label") or r.get("label")},
                  key=_js_order)


def _columns(rows: Sequence[dict]) -> list[str]:
    names: dict[str, None] = {}
    for row in rows[:1] or ():
        names.update(dict.fromkeys(row))
    return [k for k in names if k not in _LEFT_OUT]


def _thumb(row: dict, methods: Sequence[str], known: dict) -> Optional[list]:
    """[h, w, [index in `methods` of each map in the row's thumbnail file, in order]], or None
    (`known`: the index lists made so far, by the row's maps, shared by the rows)."""
    thumbs = row.get("thumbs")
    if not thumbs or not _KEY.fullmatch(str(row.get("key"))):
        return None
    names = tuple(thumbs["maps"])
    if names not in known:
        known[names] = [n for n, m in enumerate(methods) if m in thumbs["maps"]]
    return [thumbs["h"], thumbs["w"], known[names]] if known[names] else None


def _column(values: list) -> list:
    """`values` with NaN and infinities as None (JSON has neither); one pass per column."""
    if not any(isinstance(v, float) for v in values):
        return values if all(v is None or isinstance(v, (str, int)) for v in values) else _finite(values)
    return [v if isinstance(v, float) and math.isfinite(v) or v is None or isinstance(v, (str, int))
            else _finite(v) for v in values]


def index_columns(rows: Sequence[dict], methods: Sequence[str], thumbs: Optional[list] = None) -> dict:
    """What the page filters, sorts and shows of every row, by column: {"n", "columns", "values",
    "thumb"} (`thumb`: each row's [h, w, method indices] of gallery/thumbs/KEY.png, or None; given
    as `thumbs`, else read from the rows' own `thumbs`)."""
    names, known = _columns(rows), {}
    return {"n": len(rows), "columns": names, "values": [_column([r.get(k) for r in rows]) for k in names],
            "thumb": thumbs if thumbs is not None else [_thumb(r, methods, known) for r in rows]}


def _write_thumbs(folder: Path, rows: Sequence[dict], methods: Sequence[str],
                  thumbnails: Optional[Thumbnails]) -> list:
    """Each row's `_thumb` entry, writing its gallery/thumbs/KEY.png where missing (the rows' thumbnails
    made by `thumbnails` first, when given, and dropped once written)."""
    known: dict = {}
    entries = []
    for row in thumbnails(rows) if thumbnails is not None else rows:
        thumb = _thumb(row, methods, known)
        entries.append(thumb)
        path = folder / f"{row['key']}.png"
        if thumb is None or path.exists():  # a key names one image and settings: its maps never change
            continue
        h, w, present = thumb
        tiles = b"".join(base64.b64decode(row["thumbs"]["maps"][methods[n]]) for n in present)
        strip = Image.frombytes("P", (w, h * len(present)), tiles)
        strip.putpalette(_PALETTE)
        data = io.BytesIO()
        strip.save(data, "PNG", compress_level=1)
        write_atomic(path, data.getvalue(), sync=False)  # thumbnails: made again from the maps
    return entries


def write_gallery(out: Path, rows: Sequence[dict], methods: Sequence[str],
                  thumbnails: Optional[Thumbnails] = None) -> tuple[Optional[str], set[str]]:
    """Write the sidecars of `rows` (in `gallery_order`; the first page with its `thumbs`) into
    `out/gallery`: the thumbnails of the rows beyond the first page (from their own `thumbs`, or
    made by `thumbnails` a chunk at a time), then the rows' script. Returns that script's path
    relative to `out` (None when every row fits in index.html: nothing written) and the names of
    the thumbnail files it reads (for `prune_gallery`)."""
    if len(rows) <= PAGE:
        return None, set()
    folder = Path(out) / FOLDER
    (folder / "thumbs").mkdir(parents=True, exist_ok=True)
    rest, known = rows[PAGE:], {}
    chunks = worker_pool().map(lambda i: _write_thumbs(folder / "thumbs", rest[i:i + CHUNK], methods, thumbnails),
                               range(0, len(rest), CHUNK))
    thumbs = [_thumb(r, methods, known) for r in rows[:PAGE]] + [t for chunk in chunks for t in chunk]
    index = json.dumps(index_columns(rows, methods, thumbs), allow_nan=False, separators=(",", ":"))
    text = f"xaiGallery({index.translate(_SCRIPT_UNSAFE)});\n".encode()  # index_columns has no NaN left
    name = f"rows-{hashlib.sha256(text).hexdigest()[:16]}.js"
    write_atomic(folder / name, text)
    return f"{FOLDER}/{name}", {f"{r.get('key')}.png" for r, t in zip(rest, thumbs[PAGE:]) if t is not None}


def prune_gallery(out: Path, script: Optional[str], thumbs: set[str]) -> int:
    """Remove what of `out/gallery` index.html no longer reads (other rows scripts, thumbnails not in
    `thumbs`: of rows that are gone or in the first page; everything when `script` is None); returns
    how many files were removed."""
    folder = Path(out) / FOLDER
    if not folder.is_dir():
        return 0
    keep = ({Path(script).name} | thumbs) if script else set()
    removed = 0
    for path in [*folder.glob("rows-*.js"), *folder.glob("thumbs/*.png"), *folder.glob("**/.*.tmp")]:
        if path.name not in keep:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


__all__ = ["B_THUMB", "CHUNK", "FOLDER", "PAGE", "Thumbnails", "classes_of", "gallery_order", "index_columns", "prune_gallery", "script_json",
           "write_gallery"]
