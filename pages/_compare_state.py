"""The "Compare models" page's session-state keys, its link (`?model=A&against=B`), model B's loading
and the cached `xai_core.compare_models`. Model A is the sidebar's model (`_state.MODEL`);
model B is any other model the app offers, by id. The handles are passed as `_handle_*` (not hashed);
`_state.model_key` stands for each."""

from __future__ import annotations

import re
from typing import Optional

import numpy as np
import streamlit as st

import xai_core
from pages import _state as S
from xai_core.compare import OWN, shared_labels
from xai_core.localisation import aligned_mask
from xai_core.models import Geometry

# Permanent session-state keys (widget keys are "w:" + these, see `_state.bind`).
AGAINST, METHODS, TARGET, QUERY_SEEN = "cmp.against", "cmp.methods", "cmp.target", "cmp.query_seen"
#: The page's default methods (those that apply): one gradient and one activation-weighted method.
DEFAULT_METHODS = ("gradcam", "layercam")
#: The target choices that are no label: model A's top class, each model's own top class; a shared
#: label's choice is LABEL + the label (so no label can be taken for one of these).
TOP_A, OWN_TOP, LABEL = "top:a", "top:own", "label:"


def init_state() -> None:
    """Set the page's keys to their defaults once per session (`setdefault`)."""
    ss = st.session_state
    ss.setdefault(AGAINST, None)
    ss.setdefault(METHODS, list(DEFAULT_METHODS))
    ss.setdefault(TARGET, TOP_A)


def apply_query_params() -> None:
    """The link's `against=B` (a model id, as `model=`) picks model B once per new query; a model
    not offered is ignored with a notice added to `_state.QUERY_NOTICE`. Call after
    `_state.apply_query_params`."""
    ss = st.session_state
    query = tuple(sorted(st.query_params.items()))
    if not query or ss.get(QUERY_SEEN) == query:
        return
    ss[QUERY_SEEN] = query
    against = st.query_params.get("against")
    if against is None:
        return
    if against in S.model_names():
        ss[AGAINST] = against
        return
    named = f"“{against}”" if re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", against) else "it names"
    notice = f"The link's model B {named} is not offered here; pick one on the Compare models page."
    ss[S.QUERY_NOTICE] = " ".join(filter(None, [ss.get(S.QUERY_NOTICE), notice]))


def candidates() -> list[str]:
    """Model B's choices: every model id the app offers but model A's (the sidebar's)."""
    return [name for name in S.model_names() if name != st.session_state[S.MODEL]]


def model_b_name() -> str:
    """The chosen model B (kept while it is offered), else the first models-file model (a user's own
    checkpoint is what one compares), else the first other model whose weights are on this server."""
    ss = st.session_state
    offered = candidates()
    if ss[AGAINST] not in offered:
        own = [name for name in offered if S.catalog_entry(name) is not None]
        here = [name for name in offered if not S.model_title(name).endswith(S.UNAVAILABLE)]
        ss[AGAINST] = (own or here or offered)[0]
    return ss[AGAINST]


def load_model_b(name: str) -> tuple[xai_core.ModelHandle, str]:
    """(handle, cache key) of model `name` (`_state.get_model`, shared with the sidebar's cache);
    raises the loader's `XAIError`."""
    handle = S.get_model(name, S.catalog_entry(name))
    return handle, S.model_key(handle)


def target_choices(handle_a: xai_core.ModelHandle, handle_b: xai_core.ModelHandle) -> list[str]:
    """The target box's choices: model A's top class, each model's own, then every label both know
    (LABEL + label, in A's order); only each model's own when they share no label."""
    labels = shared_labels(handle_a, handle_b)
    if not labels:
        return [OWN_TOP]
    return [TOP_A, OWN_TOP] + [LABEL + label for label in labels]


def target_argument(choice: str):
    """The `target` of `compare_models` for a choice: None (A's top), "own" or the label."""
    if choice == TOP_A:
        return None
    if choice == OWN_TOP:
        return OWN
    return choice[len(LABEL):]


def link_target(handle_a: xai_core.ModelHandle, choices: list[str]) -> Optional[str]:
    """The link's `?target=N` (model A's class N) as a choice, when both models know that class; None
    otherwise (the link's target is taken once, by the first page that shows it)."""
    index = st.session_state.pop(S.QUERY_TARGET, None)
    if index is None or not 0 <= index < len(handle_a.categories):
        return None
    choice = LABEL + handle_a.categories[index]
    return choice if choice in choices else None


@st.cache_data(max_entries=16, show_spinner=False)
def compare(_handle_a, model_a: str, _handle_b, model_b: str, digest: str, _data: bytes, methods: tuple[str, ...],
            target: Optional[str], _progress=None) -> xai_core.Comparison:
    """`xai_core.compare_models` for these settings (each model at its default layer),
    cached. `_progress(stage, done, total)` as for `_state.explain`."""
    return xai_core.compare_models(_handle_a, _handle_b, _data, list(methods), target, progress=_progress)


def object_on_picture(comparison: xai_core.Comparison, digest: str) -> Optional[np.ndarray]:
    """The object marked for this image (the Faithfulness page's box, drawn or from a link's ?box=, in
    model A's picture's pixels; or its uploaded mask of the photo) on model A's picture, bool; None
    when none is marked. Raises `InvalidGroundTruthError` for a box outside the picture or an
    unreadable mask."""
    ss = st.session_state
    if ss[S.LOC_FOR] not in (None, digest) or (ss[S.LOC_BOX] is None and ss[S.LOC_MASK] is None):
        return None
    explanation = comparison.explanation_a
    if ss[S.LOC_BOX] is not None:
        height, width = explanation.image.shape[:2]
        return aligned_mask(Geometry.identity((width, height)), box=ss[S.LOC_BOX]).mask
    geometry = explanation.geometry or Geometry.identity(explanation.image.shape[1::-1])
    return aligned_mask(geometry, mask=ss[S.LOC_MASK][1]).mask
