"""The DFF page's "Across a class" mode: its session-state keys, the images of a class (a results
folder's, read again from the run's input, or uploaded photos) and the cached `class_concepts` run.
UI-free helpers, as `_state` is for the other pages."""

from __future__ import annotations

from collections import Counter
from typing import Optional

import streamlit as st

import xai_core
from pages import _dataset_state as D
from pages import _state as S
from xai_core.concepts import concepts_summary

CON_MODE, CON_SOURCE, CON_FOLDER, CON_KIND = "concepts.mode", "concepts.source", "concepts.folder", "concepts.kind"
CON_CLASS, CON_TARGET, CON_SECOND, CON_N = "concepts.class", "concepts.target", "concepts.second", "concepts.n"
CON_LAYER, CON_RESULT = "concepts.layer", "concepts.result"
CON_PENDING, CON_IMAGE = "concepts.pending", "concepts.image"
CON_TARGET_FOR = "concepts.target_for"  # the images whose default class CON_TARGET was set for
CON_UPLOADS = "concepts.uploads"  # the uploader's widget key (its files are not kept in our own state)
MODES = ("This image", "Across a class")
CON_SOURCES = ("Upload photos", "Results folder")
#: A results folder's classes: the class each photo was predicted as, or its folder's name (true class).
KINDS = ("predicted class", "true class (folder)")
NO_CLASS = -1  # CON_SECOND's "no second class"
#: At most this many images of a class are analysed in the app (the CLI takes any number).
MAX_IMAGES = 100


def init_concepts_state() -> None:
    """The mode's permanent keys (`setdefault`)."""
    ss = st.session_state
    ss.setdefault(CON_MODE, MODES[0])
    ss.setdefault(CON_SOURCE, CON_SOURCES[0])
    ss.setdefault(CON_FOLDER, None)
    ss.setdefault(CON_KIND, KINDS[0])
    ss.setdefault(CON_CLASS, None)
    ss.setdefault(CON_TARGET, 0)
    ss.setdefault(CON_TARGET_FOR, None)
    ss.setdefault(CON_SECOND, NO_CLASS)
    ss.setdefault(CON_N, 5)
    ss.setdefault(CON_LAYER, None)
    ss.setdefault(CON_IMAGE, 0)


def folder_classes(rows: list[dict], kind: str) -> dict[str, int]:
    """{class: number of photos} of a results folder's explained rows, by `kind` (one of `KINDS`),
    most photos first; a true class only where the folders named classes."""
    column = "label" if kind == KINDS[0] else "true_label"
    counts = Counter(r[column] for r in rows if not r.get("error") and r.get(column))
    return dict(sorted(counts.items(), key=lambda item: (-item[1], str(item[0]))))


def folder_images(name: str, rows: list[dict], kind: str, classes: list[str]) -> tuple[list[tuple[str, bytes]], int]:
    """([(file name, bytes)] of the photos of results folder `name` whose class (by `kind`) is one of
    `classes`, at most `MAX_IMAGES`; each the original photo read again from the run's input
    (`xai_core.dataset.original_file`), else its picture in the folder (the model's input, JPEG)),
    and how many of them are such pictures. Rows with neither are left out."""
    column = "label" if kind == KINDS[0] else "true_label"
    images, stand_ins = [], 0
    for row in rows:
        if row.get("error") or row.get(column) not in classes:
            continue
        data, _ = D.results_original(name, row)
        if data is None:
            data = D.results_picture(name, row)
            stand_ins += data is not None
        if data:
            images.append((str(row["path"]).rsplit("/", 1)[-1], data))
        if len(images) == MAX_IMAGES:
            break
    return images, stand_ins


def most_common_class(handle: xai_core.ModelHandle, model: str, images: list[tuple[str, bytes]]) -> int:
    """The class index that is the top-1 class of most `images` (ties: the first seen); raises
    `InvalidImageError` for an image that cannot be read."""
    tops = [S.predict(handle, model, S.digest_of(data), data, 1)[0][0][0] for _, data in images]
    return Counter(tops).most_common(1)[0][0]


def default_target(handle: xai_core.ModelHandle, model: str, images: list[tuple[str, bytes]],
                   chosen: Optional[str]) -> bool:
    """Set the target box to `chosen` (a results folder's class, when it is one of the model's) or,
    for uploads, to the most common top-1 class: once per set of images, so the user's choice
    stays. Returns True; raises `InvalidImageError`."""
    ss = st.session_state
    key = (model, chosen, tuple(S.digest_of(d) for _, d in images))
    if ss[CON_TARGET_FOR] == key:
        return True
    if chosen is not None:
        if chosen in handle.categories:
            ss[CON_TARGET] = handle.categories.index(chosen)
    elif images:
        ss[CON_TARGET] = int(most_common_class(handle, model, images))
    ss[CON_TARGET_FOR] = key  # after the images were read: a bad one is reported again on the next run
    return True


@st.cache_data(max_entries=6, show_spinner=False)
def class_concepts(_handle, model: str, digests: tuple[str, ...], _images: tuple[bytes, ...], targets: tuple[int, ...],
                   n_concepts: int, layer: str, _progress=None) -> xai_core.ClassConcepts:
    """`xai_core.class_concepts` of these images (`digests` stand for them) for class `targets` (one,
    or two: shared concepts), cached. `_progress(stage, done, total)` must not call st (see
    `_panels.progress`). Raises `InvalidOptionError`, `InvalidImageError`, `Cancelled`."""
    target = targets[0] if len(targets) == 1 else list(targets)
    return xai_core.class_concepts(_handle, list(_images), target, n_concepts=n_concepts, layer=layer,
                                   progress=_progress)


def summary_of(result: xai_core.ClassConcepts, names: list[str]) -> dict:
    """`concepts_summary` (what the figures draw) of `result`, `names[i]` naming image i."""
    return concepts_summary(result, names)


def estimate_s(handle: xai_core.ModelHandle, model: str, count: int, layer: str) -> float:
    """A rough time for `count` images: three passes of the shared pass's cost per image."""
    try:
        cost = S.costs(handle, model, ("gradcam",), layer, False)["shared pass"].seconds
    except (xai_core.XAIError, KeyError):
        cost = 0.2
    return max(1.0, 3 * count * cost)
