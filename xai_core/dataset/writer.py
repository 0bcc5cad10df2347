"""The results folder's pictures: what `pictures=` (`--pictures`) writes into OUT/maps, written by a
pool of threads, and read back for the page and the report, a previous version's layout included.

    all   KEY.jpg (the picture the maps belong to), KEY_METHOD.jpg (each map over it, JPEG) and the
          raw maps: raw-BATCH.METHOD.npy, float16 [N, H, W], one file per batch and method
          (a row's `maps_file` is BATCH's stem and `maps_index` its position in the batch)
    maps  KEY.jpg and the raw maps: the overlays are drawn from them when they are shown
    none  nothing: the table (results.parquet) only

Before this layout (rows without a `pictures` column): KEY.jpg, KEY_METHOD.png and KEY.npz (the
raw maps, float16, compressed, one file per image); they are still read."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from .._files import temporary_name
from .._pool import LazyPool
from ..errors import InvalidOptionError
from ..report.gallery import B_THUMB
from ..report.pictures import overlay_cam, overlay_cams
from .settings import PICTURES

#: Each level's rank: a row written at a level has the pictures of every level below it.
_RANK = {"none": 0, "maps": 1, "all": 2}
#: The names a row's pictures and raw maps have (the key is 32 + 16 hex digits).
KEY_PATTERN, RAW_PATTERN = re.compile(r"[0-9a-f]{32}-[0-9a-f]{16}"), re.compile(r"raw-[0-9a-f]{24}")
_METHOD_ID = re.compile(r"[a-z0-9+_-]{1,40}")
#: Images per task of the pool: small enough that a chunk's float arrays stay in the cache (the
#: batch's overlays in one numpy pass were slower than in chunks of 4 to 8 images, measured).
_CHUNK = 8
#: The largest side of the map thumbnails the HTML report draws for rows written with `maps`.
THUMBNAIL = 32
_POOL = LazyPool(32, "xai-writer")
#: What model B's pictures' names add to the row's key (a run against a model B): KEY_b.jpg, KEY_b_METHOD.jpg.
B_SUFFIX = "_b"


def writer_pool() -> ThreadPoolExecutor:
    """The threads that write the pictures, one per CPU this process may use (`usable_cpus`: its
    affinity, or inside a Ray actor the CPUs it was given), at most 32; made once, on first use.
    Threads rather than processes: the work is Pillow's JPEG encoder, OpenCV's colormap, numpy's
    blend over a chunk of images and np.save, which release the GIL for most of their time (a pure-Python thread kept
    about 3/4 of its speed while JPEGs were encoded next to it), so threads can use every CPU;
    processes would have to be sent each batch's images and maps (about 22 MB for 64 images),
    would start with torch imported, and could not be forked safely from a process that holds CUDA
    and torch's threads. `benchmarks/bench_dataset.py --writer N` times both on a machine."""
    return _POOL.get()


def check_pictures(value: object) -> str:
    """`value` as one of `PICTURES` (all, maps, none); raises `InvalidOptionError` otherwise."""
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in PICTURES:
        raise InvalidOptionError(f"Unknown pictures option {value!r}; use all (the picture, its overlays and the raw "
                                 "maps), maps (the picture and the raw maps) or none (the table only).")
    return text


def pictures_written(row: dict) -> str:
    """What was written for `row`: its `pictures` column, or for a row of a previous version (no
    such column) "all" (it wrote every picture), "none" for an error row."""
    if row.get("error"):
        return "none"
    return row.get("pictures") or "all"


def covers(row: dict, level: str) -> bool:
    """Whether `row` is done for a job asking for `level`: an error row always, an explained row
    when it has at least the pictures `level` asks for."""
    return bool(row.get("error")) or _RANK[pictures_written(row)] >= _RANK[level]


def save_pictures(out_dir: str, pictures: Sequence[tuple], level: str = "all") -> dict[str, tuple[str, int]]:
    """Write what `level` asks for of each explained image (`pictures`: (key, the picture, {method:
    map}) each) into `out_dir/maps`, in the writer pool, and wait for it. Returns {key: (the raw
    maps' stem, the image's index in them)} ({} for "none")."""
    if level == "none" or not pictures:
        return {}
    folder = Path(out_dir) / "maps"
    folder.mkdir(parents=True, exist_ok=True)
    groups: dict[tuple, list[int]] = defaultdict(list)  # images of one size and methods share raw files
    for n, (_, image, cams) in enumerate(pictures):
        groups[(image.shape, tuple(cams))].append(n)
    pool, tasks, where = writer_pool(), [], {}
    for (shape, methods), members in groups.items():
        keys = [pictures[n][0] for n in members]
        stem = "raw-" + hashlib.sha256("\0".join([*keys, str(shape)]).encode()).hexdigest()[:24]
        images = np.stack([pictures[n][1] for n in members])
        for method in methods:
            cams = np.stack([pictures[n][2][method] for n in members])
            tasks.append(pool.submit(_save_array, folder / f"{stem}.{method}.npy", cams))
            if level == "all":
                tasks += [pool.submit(_save_overlays, folder, keys[i:i + _CHUNK], images[i:i + _CHUNK],
                                      cams[i:i + _CHUNK], method) for i in range(0, len(keys), _CHUNK)]
        tasks += [pool.submit(_save_images, folder, keys[i:i + _CHUNK], images[i:i + _CHUNK])
                  for i in range(0, len(keys), _CHUNK)]
        where.update({key: (stem, i) for i, key in enumerate(keys)})
    for task in tasks:
        task.result()  # every file on disk (or the first error raised) before the batch's part
    return where


def _save_array(path: Path, cams: np.ndarray) -> None:
    tmp = temporary_name(path)  # unique to this process and call
    with open(tmp, "wb") as f:
        np.save(f, cams.astype(np.float16))
    os.replace(tmp, path)  # a killed run leaves no half raw file under its name


def _save_images(folder: Path, keys: Sequence[str], images: np.ndarray) -> None:
    for key, image in zip(keys, images):
        Image.fromarray(image).save(folder / f"{key}.jpg", quality=90)


def _save_overlays(folder: Path, keys: Sequence[str], images: np.ndarray, cams: np.ndarray, method: str) -> None:
    for key, overlay in zip(keys, overlay_cams(images, cams)):
        Image.fromarray(overlay).save(folder / f"{key}_{method}.jpg", quality=90)


def store_pictures(out_dir: str, rows: list[dict], pictures: Sequence[tuple], level: str = "all") -> list[dict]:
    """`save_pictures`, then each explained row says what was written (`pictures`, `maps_file`,
    `maps_index`) and gets its share of the writing's time in `seconds`; returns `rows`."""
    started = time.perf_counter()
    where = save_pictures(out_dir, pictures, level)
    share = (time.perf_counter() - started) / max(1, len(pictures))
    for row in rows:
        if row["error"] is None:
            row["seconds"] += share
            row["pictures"] = level
            row["maps_file"], row["maps_index"] = where.get(row["key"], (None, None))
            if "b_maps_file" in row:  # a run against a model B: its pictures are KEY_b... (`against.py`)
                row["b_maps_file"], row["b_maps_index"] = where.get(row["key"] + B_SUFFIX, (None, None))
    return rows


def read_map(folder: str | os.PathLike, row: dict, method: str, *, model: str = "a") -> Optional[np.ndarray]:
    """`row`'s raw `method` map (float32 [H, W]) in results folder `folder`: from its batch's raw
    file, or a previous version's KEY.npz; None when there is none. `model` "b": model B's map of a
    run against a model B (its `b_maps_file`)."""
    key, stem, index = _named(row, model)
    if key is None or not _METHOD_ID.fullmatch(str(method)):
        return None
    maps = Path(folder) / "maps"
    try:
        if stem is not None and RAW_PATTERN.fullmatch(str(stem)) and index is not None:
            return np.float32(np.load(maps / f"{stem}.{method}.npy", mmap_mode="r")[int(index)])
        with np.load(maps / f"{key}.npz") as raw:
            return np.float32(raw[method])
    except (OSError, KeyError, IndexError, ValueError):
        return None


def read_picture(folder: str | os.PathLike, row: dict, method: Optional[str] = None, *,
                 model: str = "a") -> Optional[bytes]:
    """The bytes of `row`'s picture in results folder `folder` (`method` None), or of its `method`
    map over it: the overlay written (KEY_METHOD.jpg, or a previous version's .png), else one drawn
    from the raw map and the picture (JPEG); None when the row has neither. `model` "b": model B's
    picture and maps of a run against a model B (KEY_b.jpg, KEY_b_METHOD.jpg, its `b_maps_file`)."""
    key = _named(row, model)[0]
    if key is None or (method is not None and not _METHOD_ID.fullmatch(str(method))):
        return None
    maps = Path(folder) / "maps"
    if method is None:
        return _read(maps / f"{key}.jpg")
    for name in (f"{key}_{method}.jpg", f"{key}_{method}.png"):
        data = _read(maps / name)
        if data is not None:
            return data
    image, cam = _read(maps / f"{key}.jpg"), read_map(folder, row, method, model=model)
    if image is None or cam is None:
        return None
    picture = np.asarray(Image.open(io.BytesIO(image)).convert("RGB"))
    if picture.shape[:2] != cam.shape:
        return None
    out = io.BytesIO()
    Image.fromarray(overlay_cam(picture, cam)).save(out, "JPEG", quality=90)
    return out.getvalue()


def _named(row: dict, model: str) -> tuple[Optional[str], object, object]:
    """(the name `row`'s pictures of `model` ("a" or "b") start with, its raw maps' stem and index);
    the name None for a key this package never writes."""
    key = str(row.get("key"))
    if not KEY_PATTERN.fullmatch(key) or model not in ("a", "b"):
        return None, None, None
    if model == "b":
        return key + B_SUFFIX, row.get("b_maps_file"), row.get("b_maps_index")
    return key, row.get("maps_file"), row.get("maps_index")


def _read(path: Path) -> Optional[bytes]:
    try:
        return path.read_bytes()
    except OSError:
        return None


def with_thumbnails(folder: str | os.PathLike, rows: Sequence[dict], methods: Sequence[str]) -> list[dict]:
    """`rows`, those written with "maps" (no overlays) each with `thumbs`: {"h", "w", "maps": {method:
    its raw map at most `THUMBNAIL` pixels a side, uint8, base64}}, which the HTML report draws
    over the picture; in a run against a model B, model B's maps too, as `B_THUMB` + method. Each raw
    file is opened once (memory-mapped); other rows are unchanged."""
    wanted: dict[tuple[str, str], list[int]] = defaultdict(list)
    for n, row in enumerate(rows):
        if pictures_written(row) != "maps":
            continue
        for prefix, stem, index in (("", row.get("maps_file"), row.get("maps_index")),
                                    (B_THUMB, row.get("b_maps_file"), row.get("b_maps_index"))):
            if stem and index is not None:
                wanted[(prefix, str(stem))].append(n)
    out = list(rows)
    for (prefix, stem), members in wanted.items():
        index = "maps_index" if not prefix else "b_maps_index"
        for method in methods:
            try:
                raw = np.load(Path(folder) / "maps" / f"{stem}.{method}.npy", mmap_mode="r")
            except (OSError, ValueError):
                continue
            step = max(1, -(-max(raw.shape[1:]) // THUMBNAIL))
            for n in members:
                small = np.uint8(np.clip(np.float32(raw[int(rows[n][index]), ::step, ::step]), 0, 1) * 255)
                thumbs = out[n].get("thumbs") or {"h": small.shape[0], "w": small.shape[1], "maps": {}}
                if (small.shape[0], small.shape[1]) != (thumbs["h"], thumbs["w"]):
                    continue  # model B's picture of another size: one strip holds tiles of one size
                thumbs["maps"][prefix + method] = base64.b64encode(small.tobytes()).decode("ascii")
                out[n] = {**out[n], "thumbs": thumbs}
    return out


__all__ = ["B_SUFFIX", "KEY_PATTERN", "RAW_PATTERN", "THUMBNAIL", "check_pictures", "covers", "pictures_written", "read_map",
           "read_picture", "save_pictures", "store_pictures", "with_thumbnails", "writer_pool"]
