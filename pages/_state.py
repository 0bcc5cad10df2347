"""The dashboard's session-state keys and its cached wrappers around `xai_core`.

Everything the pages share lives here: the permanent session-state keys (widget values are copied
into them, so a choice survives a page change), `st.cache_resource` for the models and
`st.cache_data` for predictions, maps and factorizations, keyed by the image's digest, the model key
and the settings. The model handle is passed as `_handle` (not hashed); `model_key` stands for it.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import streamlit as st
from PIL import ImageOps

import xai_core
from xai_core import catalog
from xai_core.images import input_notices
from xai_core.models import AUTO, PREFERRED

ROOT = Path(__file__).resolve().parents[1]
SAMPLES_DIR = ROOT / "assets" / "images"
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]
SOURCES = ("Samples", "Upload", "Camera")
FIRST_SAMPLE = "cat.png"
#: The CAM page's default methods: they differ visibly at the layer before a GAP head.
DEFAULT_METHODS = ("gradcam", "hirescam", "gradcam++", "layercam", "eigencam")
#: The Faithfulness page's default methods: the five gradient methods of the benchmark.
DEFAULT_EVAL_METHODS = ("gradcam", "hirescam", "gradcam++", "xgradcam", "layercam")
#: Slow methods whose estimate is above this many seconds wait for the user's go-ahead; the others
#: run at once, with their estimate and a progress bar.
CONFIRM_ABOVE_S = 10.0

# Permanent session-state keys (widget keys are "w:" + these, see `bind`).
MODEL = "model"
SOURCE = "image.source"
SAMPLE = "image.sample"
IMAGE_BYTES, IMAGE_NAME, IMAGE_DIGEST = "image.bytes", "image.name", "image.digest"
UPLOAD_SEEN, UPLOAD_ERROR = "image.upload_seen", "image.error"
TARGET_RANK, TARGET_OTHER, TARGET_FOR = "target.rank", "target.other", "target.for"
CAM_METHODS, CAM_LAYER, AUG_SMOOTH, EIGEN_SMOOTH = "cam.methods", "cam.layer", "cam.aug_smooth", "cam.eigen_smooth"
CAM_APPROVED = "cam.approved"
OPACITY, COLORMAP, COLUMNS = "view.opacity", "view.colormap", "view.columns"
DFF_N, DFF_LAYER = "dff.n_components", "dff.layer"
EVAL_METHODS, EVAL_STEPS, EVAL_SANITY = "eval.methods", "eval.steps", "eval.sanity"
# The object the Faithfulness page's maps are scored against: a box in the picture's pixels (drawn,
# or a link's ?box=) or an uploaded mask (name, bytes), for the image of digest LOC_FOR; LOC_ROUND
# numbers the picker's and the uploader's widget keys (Clear starts a new round: both empty).
LOC_BOX, LOC_MASK, LOC_FOR, LOC_ROUND, LOC_SEEN = "loc.box", "loc.mask", "loc.for", "loc.round", "loc.seen"
PROGRESS_SLOT = "run.progress_slot"  # the placeholder under the page title where progress bars go
ACTIVE = "run.model"  # (handle, model key) loaded by the entry point for the current run
OFFER = "run.offer"  # ({name: catalog entry} of the models file, its error or None), read once per run
OTHER = "other"


ENTRY = "run.entry"  # set by streamlit_app.py in every run, consumed by the page


def mark_entry_point() -> None:
    """Called by streamlit_app.py just before it runs the page."""
    st.session_state[ENTRY] = True


def ensure_entry_point() -> None:
    """Rerun through streamlit_app.py when Streamlit ran a page file on its own (call it first).

    With a pages/ folder beside the entry point, a fresh server whose first visitors open a deep
    link (e.g. /cam) run that file in Streamlit's old pages-folder mode, without the entry point
    (no state, no sidebar). st.navigation ends that mode only once the entry point has run; this
    ends it and reruns, and the same URL then opens the same page through the router. The check is
    per session (the entry point marks each run), so concurrent first visitors are all caught."""
    from pages._streamlit_internals import end_pages_folder_mode

    if not st.session_state.pop(ENTRY, False):
        end_pages_folder_mode()
        st.rerun()


def sample_names() -> list[str]:
    """File names of the sample photos in assets/images, sorted."""
    return sorted(p.name for p in SAMPLES_DIR.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})


def init_state() -> None:
    """Set every permanent key to its default once per session (`setdefault`)."""
    ss = st.session_state
    samples = sample_names()
    first = FIRST_SAMPLE if FIRST_SAMPLE in samples else samples[0]
    ss.setdefault(MODEL, AUTO)
    ss.setdefault(SOURCE, SOURCES[0])
    ss.setdefault(SAMPLE, first)
    if IMAGE_BYTES not in ss:
        set_image(sample_bytes(first), first)
    ss.setdefault(UPLOAD_SEEN, None)
    ss.setdefault(UPLOAD_ERROR, None)
    ss.setdefault(TARGET_RANK, 0)
    ss.setdefault(TARGET_OTHER, 0)
    ss.setdefault(TARGET_FOR, None)
    ss.setdefault(CAM_METHODS, list(DEFAULT_METHODS))
    ss.setdefault(CAM_LAYER, None)
    ss.setdefault(AUG_SMOOTH, False)
    ss.setdefault(EIGEN_SMOOTH, False)
    ss.setdefault(CAM_APPROVED, set())
    ss.setdefault(OPACITY, 0.5)
    ss.setdefault(COLORMAP, "Jet")
    ss.setdefault(COLUMNS, 3)
    ss.setdefault(DFF_N, 4)
    ss.setdefault(DFF_LAYER, None)
    ss.setdefault(EVAL_METHODS, list(DEFAULT_EVAL_METHODS))
    ss.setdefault(EVAL_STEPS, 20)
    ss.setdefault(EVAL_SANITY, True)
    ss.setdefault(LOC_BOX, None)
    ss.setdefault(LOC_MASK, None)
    ss.setdefault(LOC_FOR, None)
    ss.setdefault(LOC_ROUND, 0)
    ss.setdefault(LOC_SEEN, None)


def read_models_file() -> None:
    """Read the deployment's models file (`xai_core.catalog`) for this run: its models join the
    picker; a bad file's one-sentence error is kept for the sidebar (`models_file_error`), and only
    the built-in models are offered."""
    try:
        offer = ({e.name: e for e in catalog.entries()}, None)
    except xai_core.XAIError as err:
        offer = ({}, str(err))
    st.session_state[OFFER] = offer


def catalog_entry(name: str) -> Optional[catalog.CatalogEntry]:
    """The models file's entry `name` (read this run), or None for auto, a built-in or an unknown name."""
    return st.session_state[OFFER][0].get(name)


def models_file_error() -> Optional[str]:
    """The models file's one-sentence error of this run, or None."""
    return st.session_state[OFFER][1]


def model_names() -> list[str]:
    """The picker's model ids: auto, the built-ins, then the models file's (names only: a page
    user can choose a model, never a file)."""
    return [AUTO] + xai_core.list_models(models_file=False) + list(st.session_state[OFFER][0])


#: How the picker marks ResNet-50 when `auto` could not load it on this server.
UNAVAILABLE = "weights not on this server"


def auto_model() -> Optional[xai_core.ModelHandle]:
    """The model `auto` loads on this server (`get_model`, cached), or None when even it cannot be loaded."""
    try:
        return get_model(AUTO)
    except xai_core.XAIError:
        return None


def model_title(name: str) -> str:
    """How the picker names model id `name`: auto with the model it loads on this server, and
    ResNet-50 marked unavailable when `auto` could not load it (so the picker, the banner and the
    maps name one model)."""
    if name == AUTO:
        auto = auto_model()
        # its short name ("EfficientNet-Lite0"): the whole title does not fit the sidebar's box
        return f"auto: {auto.spec.title.split(' (')[0]}" if auto is not None else "auto (best available)"
    entry = catalog_entry(name)
    if entry is not None:
        return entry.title
    title = xai_core.get_model_spec(name).title
    if name == PREFERRED and getattr(auto_model(), "name", None) != PREFERRED:
        return f"{title} — {UNAVAILABLE}"
    return title


def model_notices(handle: xai_core.ModelHandle) -> list[str]:
    """[why this model was loaded], worded for a dashboard user (no CLI flag), or []."""
    notice = handle.dashboard_notice or handle.notice
    return [notice] if notice else []


QUERY_SEEN, QUERY_TARGET, QUERY_NOTICE = "query.seen", "query.target", "query.notice"


def apply_query_params() -> None:
    """Shareable links: `?model=resnet50&sample=coffee.png&target=967&box=40,30,180,200` picks a
    model (by its id: auto, a built-in or a models-file name), a sample photo, a target class (its
    range is checked against the model's classes in `_panels.prediction_panel`) and the object's
    box on the model's picture (x0,y0,x1,y1 in its pixels: the Faithfulness page scores the maps
    against it). A model not offered is ignored with
    a notice (`QUERY_NOTICE`). Each new query is applied once, so the user's later choices are not
    overridden. Call after `read_models_file`."""
    ss = st.session_state
    query = tuple(sorted(st.query_params.items()))
    if not query or ss.get(QUERY_SEEN) == query:
        return
    ss[QUERY_SEEN] = query
    model = st.query_params.get("model")
    if model in model_names():
        ss[MODEL] = model
    elif model is not None:
        named = f"“{model}”" if re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", model) else "it names"
        ss[QUERY_NOTICE] = f"The link's model {named} is not offered here; showing {model_title(ss[MODEL])}."
    sample = st.query_params.get("sample")
    if sample in sample_names():
        ss[SOURCE], ss[SAMPLE] = SOURCES[0], sample
        set_image(sample_bytes(sample), sample)
    target = st.query_params.get("target", "")
    ss[QUERY_TARGET] = int(target) if target.isdigit() else None
    box = st.query_params.get("box")
    if box is not None:
        numbers = _four_numbers(box)
        if numbers is not None:  # checked against the picture on the page
            ss[LOC_BOX], ss[LOC_MASK], ss[LOC_FOR] = numbers, None, ss[IMAGE_DIGEST]
        else:
            ss[QUERY_NOTICE] = " ".join(filter(None, [ss.get(QUERY_NOTICE), "The link's box is not four numbers "
                                                      "x0,y0,x1,y1 (the picture's pixels); no box is drawn."]))


def _four_numbers(text: str) -> Optional[tuple[float, ...]]:
    """"x0,y0,x1,y1" as four finite floats, or None."""
    try:
        numbers = tuple(float(v) for v in text.split(","))
    except ValueError:
        return None
    return numbers if len(numbers) == 4 and all(math.isfinite(v) for v in numbers) else None


def bind(key: str) -> dict[str, Any]:
    """Keyword arguments tying a widget to permanent `key` (Streamlit's documented pattern): the
    widget key "w:" + key is loaded from `key` before every render, and its callback stores the
    user's change back, so the value survives page changes. Use as `st.slider(..., **bind(KEY))`."""
    st.session_state["w:" + key] = st.session_state[key]
    return {"key": "w:" + key, "on_change": _store, "args": (key,)}


def _store(key: str) -> None:
    st.session_state[key] = st.session_state["w:" + key]


def set_image(data: bytes, name: str) -> None:
    """Make `data` the current image (its validity is checked by `check_image`)."""
    ss = st.session_state
    ss[IMAGE_BYTES], ss[IMAGE_NAME] = bytes(data), name
    ss[IMAGE_DIGEST] = digest_of(data)


def digest_of(data: bytes) -> str:
    """The cache key of an image: a digest of its bytes."""
    return hashlib.sha256(data).hexdigest()[:20]


def current_image() -> tuple[str, bytes, str]:
    """(digest, bytes, name) of the current image."""
    ss = st.session_state
    return ss[IMAGE_DIGEST], ss[IMAGE_BYTES], ss[IMAGE_NAME]


@st.cache_data(max_entries=16, show_spinner=False)
def sample_bytes(name: str) -> bytes:
    """The bytes of sample photo `name`."""
    return (SAMPLES_DIR / name).read_bytes()


@st.cache_data(max_entries=64, show_spinner=False)
def thumbnail(digest: str, _data: bytes, size: int = 160) -> np.ndarray:
    """A square uint8 thumbnail (centre crop) of the image; raises `InvalidImageError` for a bad image."""
    return np.asarray(ImageOps.fit(xai_core.load_image(_data), (size, size)))


@st.cache_data(max_entries=64, show_spinner=False)
def image_notices(digest: str, _data: bytes) -> tuple[str, ...]:
    """What was done to the image before the model sees it (downscaled, cropped); raises
    `InvalidImageError` for a bad image."""
    return input_notices(xai_core.load_image(_data))


@st.cache_resource(show_spinner="Loading the model...")
def get_model(name: str, entry: Optional[catalog.CatalogEntry] = None) -> xai_core.ModelHandle:
    """The shared model handle for `name`: "auto" or a registered model, or the models file's
    `entry` of that name (hashed too, so an edited entry loads afresh); raises XAIError."""
    return xai_core.models.load_entry(entry) if entry is not None else xai_core.load_model(name)


def model_key(handle: xai_core.ModelHandle) -> str:
    """Cache key standing for `handle`: the model name and where its weights came from."""
    return f"{handle.name}|{handle.weights_source}|{handle.weights_file}"


@st.cache_data(max_entries=64, show_spinner=False)
def predict(_handle, model: str, digest: str, _data: bytes, top_k: int = 5) -> tuple[list, float]:
    """(top-k predictions, at most one per class of the model; seconds); raises `InvalidImageError`."""
    t0 = time.perf_counter()
    predictions = xai_core.predict(_handle, _data, top_k=min(top_k, len(_handle.categories)))
    return [tuple(p) for p in predictions], time.perf_counter() - t0


@st.cache_data(max_entries=64, show_spinner=False)
def display_image(_handle, model: str, digest: str, _data: bytes) -> "np.ndarray":
    """The resized, cropped picture the model sees (uint8 [H, W, 3]); raises `InvalidImageError`."""
    return _handle.display_image(xai_core.load_image(_data))


@st.cache_data(max_entries=64, show_spinner=False)
def explain(_handle, model: str, digest: str, _data: bytes, methods: tuple[str, ...], target: int,
            layer: str, aug_smooth: bool, eigen_smooth: bool, _progress=None) -> xai_core.Explanation:
    """`xai_core.explain` for these settings, cached. `_progress(method, done, total)` is told
    how far the perturbation methods are (it must not call st: see `_panels.progress`)."""
    return xai_core.explain(_handle, _data, list(methods), target=target, layer=layer,
                            aug_smooth=aug_smooth, eigen_smooth=eigen_smooth, progress=_progress)


@st.cache_data(max_entries=32, show_spinner=False)
def factorize(_handle, model: str, digest: str, _data: bytes, n_components: int, layer: str,
              top_k: int = 3) -> xai_core.Factorization:
    """`xai_core.factorize` for these settings, cached."""
    return xai_core.factorize(_handle, _data, n_components=n_components, layer=layer, top_k=top_k)


def cam_default_layer(handle: xai_core.ModelHandle) -> str:
    """The last layer whose head is not pooling + linear: there Grad-CAM and HiResCAM differ."""
    candidates = [n for n in handle.layers if n not in handle.spec.gap_linear_layers]
    return candidates[-1] if candidates else handle.default_layer


@st.cache_data(max_entries=64, show_spinner=False)
def costs(_handle, model: str, methods: tuple[str, ...], layer: str, aug_smooth: bool) -> dict:
    """`xai_core.estimate_cost` (method id or "shared pass" -> `Cost`: passes, seconds, slow,
    detail), from xai_core's one timed calibration per model."""
    return xai_core.estimate_cost(_handle, list(methods), layer, aug_smooth=aug_smooth)


def percent(p: float) -> str:
    """'37.7%', or '3.1e-06' for probabilities too small to show as a percentage."""
    return f"{p:.1%}" if p >= 0.001 else f"{p:.2g}"


def duration(seconds: float) -> str:
    """'850 ms', '2.4 s', '35 s' or '3.5 min'."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# Faithfulness page
@st.cache_data(max_entries=16, show_spinner=False)
def evaluate_progressively(_handle, model: str, digest: str, _data: bytes, methods: tuple[str, ...], target: int,
                           layer: str, steps: int, sanity: bool, _explanation: xai_core.Explanation, _progress=None,
                           _on_partial=None) -> xai_core.Evaluation:
    """`xai_core.evaluate` of `_explanation` (the cached `explain` of these same settings, without
    smoothing), cached. `_progress(stage, done, total)` as for `explain`; `_on_partial(evaluation)`
    gets each partial result (it must not call st: see `_live.live`). A cache hit calls neither."""
    return xai_core.evaluate(_handle, _data, _explanation, steps=steps, sanity=sanity, progress=_progress,
                             on_partial=_on_partial)


def method_titles(methods) -> dict[str, str]:
    """{method id: its title}, how the UI names methods (ids are for the API and the CLI)."""
    return {m: xai_core.get_method(m).title for m in methods}


@st.cache_data(max_entries=32, show_spinner=False)
def localise(model: str, digest: str, methods: tuple[str, ...], target: int, layer: str,
             box: Optional[tuple[float, ...]], mask_digest: Optional[str], _explanation: xai_core.Explanation,
             _mask: Optional[bytes]) -> xai_core.Localisation:
    """`xai_core.localise` of `_explanation` (the cached `explain` of these settings) against `box`
    (the picture's pixels: drawn on the page) or else `_mask` (an uploaded mask file's bytes, the
    original image's pixels; `mask_digest` stands for it), cached. Raises `InvalidGroundTruthError`."""
    if box is not None:
        return xai_core.localise(_explanation, box=box, on_picture=True)
    return xai_core.localise(_explanation, mask=_mask)
