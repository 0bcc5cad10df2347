"""The Dataset page's state and work: uploaded photos explained in memory (`explain_uploads`, through
`xai_core.dataset`), the results folders under the server's `XAI_RESULTS_ROOT` (listed, never typed),
and handing an image to the CAM page. UI-free helpers, as `_state` is for the other pages."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import streamlit as st

import xai_core
from pages import _state as S

DATA_SOURCE, DATA_FOLDER, DATA_METHODS = "dataset.source", "dataset.folder", "dataset.methods"
DATA_TARGET, DATA_EVAL, DATA_RESULT, DATA_PENDING = "dataset.target", "dataset.evaluate", "dataset.result", "dataset.pending"
DATA_CONCEPTS = "dataset.concepts_class"  # the class whose concepts are shown (an index into the block's)
DATA_UPLOADS = "dataset.uploads"  # the uploader's widget key (its files are not kept in our own state)
DATA_SOURCES = ("Upload photos", "Results folder")
TOP_CLASS = -1  # DATA_TARGET's "each photo's top class" (a selectbox shows None as no choice)
#: At most this many uploaded photos are explained in the app; folders go through the batch command.
MAX_UPLOADS = 50
RESULTS_ROOT_ENV = "XAI_RESULTS_ROOT"
#: On short lines (a code block would scroll a long one out of sight on a narrow window).
BATCH_COMMAND = ("python -m xai_core batch --input PHOTOS_DIR \\\n"
                 "    --output \"$XAI_RESULTS_ROOT/NAME\" \\\n"
                 "    --method gradcam,hirescam,layercam --eval")


def init_dataset_state() -> None:
    """The Dataset page's permanent keys (`setdefault`)."""
    ss = st.session_state
    ss.setdefault(DATA_SOURCE, DATA_SOURCES[0])
    ss.setdefault(DATA_FOLDER, None)
    ss.setdefault(DATA_TARGET, TOP_CLASS)
    ss.setdefault(DATA_EVAL, False)
    ss.setdefault(DATA_CONCEPTS, 0)


def offer_dataset_methods(offered: list[str]) -> None:
    """The Dataset page's methods start as the CAM page's that are `offered`, and stay among them."""
    ss = st.session_state
    ss.setdefault(DATA_METHODS, [m for m in ss[S.CAM_METHODS] if m in offered] or offered[:1])
    ss[DATA_METHODS] = [m for m in ss[DATA_METHODS] if m in offered]


def results_root() -> Optional[Path]:
    """The server's results root (`XAI_RESULTS_ROOT`), or None when it is not set."""
    import os

    value = os.environ.get(RESULTS_ROOT_ENV, "").strip()
    return Path(value).expanduser() if value else None


def results_folders() -> list[str]:
    """The names of the results root's direct subfolders that hold a summary.json, sorted ([] without a root)."""
    root = results_root()
    if root is None or not root.is_dir():
        return []
    try:
        return sorted(d.name for d in root.iterdir() if d.is_dir() and (d / "summary.json").is_file())
    except OSError:
        return []


def _results_folder(name: str) -> Path:
    """The folder `name`, only if it is one that `results_folders` lists; raises `InvalidOptionError`."""
    if name not in results_folders():
        raise xai_core.InvalidOptionError("Choose one of the results folders listed.")
    return results_root() / name


def results_stamp(name: str) -> int:
    """When folder `name`'s summary was written (a rerun of the batch command reads it again); 0 if unknown."""
    try:
        return (_results_folder(name) / "summary.json").stat().st_mtime_ns
    except (OSError, xai_core.XAIError):
        return 0


@st.cache_data(max_entries=8, show_spinner=False)
def read_results(name: str, stamp: int) -> dict:
    """{"summary": summary.json's content, "rows": results.parquet's rows} of results folder `name`
    (`stamp`: `results_stamp`); raises `InvalidOptionError` with one sentence for a damaged folder."""
    import json

    import pyarrow.parquet as pq

    folder = _results_folder(name)
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        rows = pq.read_table(folder / "results.parquet").to_pylist()
    except Exception:  # noqa: BLE001 - any damage reads as one sentence, never a traceback
        raise xai_core.InvalidOptionError(f"The results folder “{name}” cannot be read (its summary.json or "
                                          "results.parquet is missing or damaged); run the batch command again.") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("settings"), dict):
        raise xai_core.InvalidOptionError(f"The results folder “{name}” has no settings in its summary.json; "
                                          "run the batch command again.")
    return {"summary": xai_core.dataset.check_summary(summary, f"“{name}”"), "rows": rows}


def results_picture(name: str, row: dict, method: Optional[str] = None, model: str = "a") -> Optional[bytes]:
    """The bytes of `row`'s picture (`method` None) or of its `method` map over it in results folder
    `name` (one `results_folders` lists), whichever was written (`xai_core.dataset.read_picture`;
    `model` "b": model B's, in a run against a model B), or None when the row has none."""
    try:
        folder = _results_folder(name)
    except xai_core.XAIError:
        return None
    return xai_core.dataset.read_picture(folder, row, method, model=model)


def results_original(name: str, row: dict) -> tuple[Optional[bytes], Optional[str]]:
    """(the bytes of the photo `row` of results folder `name` explained, read again from the run's
    input, None), or (None, why not: a clause completing "The original photo ...", no path), by
    `xai_core.dataset.original_file`."""
    try:
        folder = _results_folder(name)
    except xai_core.XAIError:
        return None, "cannot be found (its results folder is no longer listed)"
    return xai_core.dataset.original_file(folder, row)


def concept_crop(name: str, folder: str, file: str) -> Optional[bytes]:
    """The bytes of crop `file` (summary.json's, e.g. crops/concept_00_00.jpg) of class folder `folder`
    (e.g. concepts/true-0281-tabby) in results folder `name`: only a .jpg inside its concepts/ folder
    (a summary naming anything else gets None), None when it cannot be read."""
    try:
        base = (_results_folder(name) / "concepts").resolve()
        path = (base.parent / folder / file).resolve()
    except (OSError, ValueError, xai_core.InvalidOptionError):
        return None
    if base not in path.parents or path.suffix != ".jpg" or not path.is_file():
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


def stand_in_notice(why: str) -> str:
    """The CAM page's one sentence when it explains a row's picture instead of its photo (`why`:
    a clause completing "The original photo ...")."""
    return (f"The original photo {why}, so the results' picture of it (the model's input, saved as JPEG) is "
            "explained: its probabilities may differ slightly from the row's.")


def _jpeg(image: np.ndarray) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(image).save(out, "JPEG", quality=88)
    return out.getvalue()


def explain_uploads(handle: xai_core.ModelHandle, files: list[tuple[str, bytes]], methods: list[str], layer: str,
                    target: Optional[int], evaluate: bool, steps: int, progress=None) -> dict:
    """Explain uploaded photos (name, bytes) as the batch command does, in memory: {"rows": one
    row per file with results.parquet's columns (an unreadable file: its one-sentence error),
    "summary": summary.json's content, "pictures": {row key: {None: the picture the model saw,
    method: its map over it} as JPEG bytes}}. `progress(stage, done, total)` counts the images
    explained, then scored; returning False cancels (`Cancelled`)."""
    from xai_core import dataset
    from xai_core.report import overlay_cam

    settings = dataset.Settings(handle.name, handle.fingerprint, tuple(methods), target, (layer,),
                                bool(evaluate), int(steps))
    records = [{"source": dataset.Source(name, ""), "data": data, "key": f"u{i}-{S.digest_of(data)}", "error": None}
               for i, (name, data) in enumerate(files)]
    tell = None if progress is None else (lambda done, total: progress("images", done, total))
    rows, pictures = dataset.compute_records(handle, records, settings, batch_size=8, progress=tell)
    jpegs = {key: {None: _jpeg(image), **{m: _jpeg(overlay_cam(image, cam)) for m, cam in cams.items()}}
             for key, image, cams in pictures}
    return {"rows": rows, "summary": dataset.summarize(rows, settings, handle.categories), "pictures": jpegs}


def open_on_cam(data: bytes, name: str, methods: list[str], layer: str, target: Optional[int],
                model: Optional[str] = None, notice: Optional[str] = None) -> None:
    """Hand an image to the CAM page with these settings (then `st.switch_page("pages/cam.py")`):
    it becomes the current image (as an upload, so the sidebar keeps it), the CAM page's methods
    and layer are set, smoothing is off, and `target` (None: the image's top class) is chosen as a
    link's `?target=` is. `model`: the model id to use, if it is not the active one (one not offered
    leaves the active one, with a notice). `notice`: a sentence the CAM page shows once (with the
    model's, if any), as a link's notice is."""
    ss = st.session_state
    notices = [notice] if notice else []
    if model is not None and model != ss[S.ACTIVE][0].name:
        if model in S.model_names():
            ss[S.MODEL] = model
        else:
            notices.insert(0, f"The results' model “{model}” is not offered here; showing "
                              f"{S.model_title(ss[S.MODEL])}.")
    if notices:
        ss[S.QUERY_NOTICE] = " ".join(notices)
    S.set_image(data, name)
    ss[S.SOURCE], ss[S.UPLOAD_ERROR] = S.SOURCES[1], None
    ss[S.CAM_METHODS], ss[S.CAM_LAYER] = list(methods), layer
    ss[S.AUG_SMOOTH] = ss[S.EIGEN_SMOOTH] = False
    ss[S.TARGET_FOR], ss[S.QUERY_TARGET] = None, target
