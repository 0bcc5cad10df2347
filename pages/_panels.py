"""UI pieces shared by the pages: the model banner, error handling around `xai_core` calls, the
prediction panel with the target choice, a progress bar for slow methods and the report download.
Widgets and layout only; computing goes through the cached wrappers in `_state`."""

from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

import plotly.graph_objects as go
import streamlit as st

import xai_core
from pages import _state as S
from pages import _streamlit_internals as internals
from xai_core.report import figures, html_text, image_report_html, markdown_text
from xai_core.models import PREFERRED, how_to_get

PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": figures.PNG_EXPORT}


def safe(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`call(*args, **kwargs)`, or None after showing an `xai_core` error's sentence with st.error."""
    try:
        return call(*args, **kwargs)
    except xai_core.XAIError as err:
        st.error(markdown_text(err), icon=":material/error:")
        return None


def load_active_model() -> Optional[tuple[xai_core.ModelHandle, str]]:
    """(handle, cache key) of the chosen model, also kept for this run's page (`active_model`).
    A model that cannot be loaded (e.g. ResNet-50 offline) is reported with st.error and replaced
    by `auto`, and the Model box is put back on auto (draw it after this); None (after its error)
    when even auto fails: draw the sidebar, then stop."""
    name = st.session_state[S.MODEL]
    try:
        handle = S.get_model(name, S.catalog_entry(name))
    except xai_core.XAIError as err:
        if name == S.AUTO:
            st.error(markdown_text(err), icon=":material/error:")
            return None
        handle = safe(S.get_model, S.AUTO)
        if handle is None:
            return None
        st.session_state[S.MODEL] = S.AUTO  # the Model box shows the model really loaded (draw it after this)
        st.error(_fallback_message(name, err), icon=":material/error:")
    st.session_state[S.ACTIVE] = (handle, S.model_key(handle))
    return st.session_state[S.ACTIVE]


def _fallback_message(name: str, err: xai_core.XAIError) -> str:
    """One sentence (Markdown): why model `name` could not be loaded and what the dashboard shows
    instead; for a built-in without its weights, how to get them on the server (no CLI flag)."""
    auto = S.model_title(S.AUTO)
    if isinstance(err, xai_core.WeightsUnavailableError) and name in xai_core.list_models(models_file=False):
        spec = xai_core.get_model_spec(name)
        return markdown_text(f"{spec.title} cannot be loaded because its weights are not on this server, so the "
                             f"Model box is back on {auto}; "
                             + how_to_get(spec, spec.weights_record(), for_dashboard=True) + ".")
    return f"{markdown_text(err)} Showing the automatic choice instead ({markdown_text(auto)})."


def active_model() -> tuple[xai_core.ModelHandle, str]:
    """(handle, cache key) loaded by the entry point in this run."""
    return st.session_state[S.ACTIVE]


def model_banner(handle: xai_core.ModelHandle) -> None:
    """One line naming the model and where its weights came from; why this model, and how to get
    ResNet-50, behind it (an expander). Shows no server path: `weights_source` and `notice` have none."""
    with st.expander(f"Model: {markdown_text(model_description(handle))}", icon=":material/memory:"):
        entry = S.catalog_entry(handle.name)
        if S.model_notices(handle):
            st.markdown(f"**Why this model:** {markdown_text(S.model_notices(handle)[0])}")
        elif entry is not None:  # the models file's strings as text (no code span: a ` in them would end it)
            st.markdown(f"**Why this model:** {markdown_text(entry.title)} was chosen in the sidebar; this server's "
                        f"models file offers it (id “{markdown_text(entry.name)}”, source "
                        f"“{markdown_text(entry.source)}”, {len(handle.categories)} classes).")
        elif handle.name == PREFERRED:
            st.markdown(f"**Why this model:** {handle.spec.title} is the default: torchvision's ImageNet-pretrained "
                        "weights, found on the server.")
        else:
            st.markdown(f"**Why this model:** {handle.spec.title} was chosen in the sidebar; its pretrained weights "
                        "ship inside a Python package, so it works offline.")
        st.markdown("The sidebar's **Model** box picks another model. *auto* uses ResNet-50 when its weights are on "
                    "the server (or can be downloaded), else the bundled EfficientNet-Lite0; the README's "
                    "*Models and weights* section says where the server keeps them.")


def model_description(handle: xai_core.ModelHandle) -> str:
    """'<title> · weights: <source>' (no server path): the banner's line and the reports' model setting."""
    return f"{handle.spec.title} · weights: {handle.weights_source}"


def page_header(title: str, intro: str) -> None:
    """The page's title and opening sentence, then the slot where `progress` draws its bar: right
    under the title, so a long computation's bar is visible without scrolling."""
    st.title(title)
    st.markdown(intro)
    st.session_state[S.PROGRESS_SLOT] = st.empty()


def method_picker(label: str, options: list[str], key: str, help: str) -> list[str]:
    """Methods as pills (every option and every selected one fully visible, wrapped onto lines:
    a multiselect truncates long chips), by title; returns the selected ids in the options' order."""
    chosen = st.pills(label, options, selection_mode="multi", format_func=lambda m: xai_core.get_method(m).title,
                      help=help, **S.bind(key)) or []
    return [m for m in options if m in chosen]


def fitted_caption(text: str) -> None:
    """A small centred caption that wraps where a file name allows it (after "_", "-", "." or "/"),
    and inside a long word only where nothing else fits (Streamlit's captions break a file name
    anywhere in a narrow column, and an ellipsis would hide its end); the whole text on hover too."""
    escaped = html_text(text, quote=True)  # one line: a blank line would end the HTML block
    breakable = re.sub(r"([_\-./])", r"\1<wbr>", escaped)
    st.markdown(f'<div class="xai-fit" title="{escaped}" style="overflow-wrap:anywhere;font-size:0.8rem;'
                f'color:rgba(49,51,63,0.6);text-align:center">{breakable}</div>', unsafe_allow_html=True)


#: A layer select box shares its row with other controls only when every layer name of the model is at
#: most this long: a select box shows its value on one line and cuts a longer one (a Hugging Face
#: ViT's model.vit.layers.3.layernorm_before) in a column at 1024 px.
SHORT_LAYER_NAME = 12


def control_row(handle: xai_core.ModelHandle, widths: list[float], gap: str = "medium") -> list:
    """`st.columns(widths)`, whose first column holds the layer select box; where a layer name of the
    model is longer than SHORT_LAYER_NAME, that first "column" is a full-width row above the others."""
    if max(map(len, handle.layers), default=0) <= SHORT_LAYER_NAME:
        return list(st.columns(widths, gap=gap))
    first = st.container()
    return [first, *(st.columns(widths[1:], gap=gap) if len(widths) > 2 else [st.container()])]


def show_chart(fig: go.Figure, name: str, key: str) -> None:
    """An interactive Plotly chart whose toolbar camera saves `name`.png."""
    config = dict(PLOTLY_CONFIG, toImageButtonOptions=dict(figures.PNG_EXPORT, filename=name))
    st.plotly_chart(fig, config=config, key=key, theme=None)


def prediction_panel(handle: xai_core.ModelHandle, model: str, stacked: bool = False) -> tuple[int, list]:
    """Top-5 bars (fewer for a model with fewer classes) and the target choice (one of them, or
    any class of the model: "why not X?"), side by side, or the choice under the bars (`stacked`:
    in a narrow column). Returns (target class index, the top predictions); stops the page on a bad
    image."""
    digest, data, _ = S.current_image()
    result = safe(S.predict, handle, model, digest, data)
    if result is None:
        st.stop()
    predictions, _ = result
    ss = st.session_state
    n_classes = len(handle.categories)
    if ss[S.TARGET_FOR] != (digest, model):  # a new image or model: explain its top-1 again
        ss[S.TARGET_FOR], ss[S.TARGET_RANK] = (digest, model), 0
    if not 0 <= ss[S.TARGET_OTHER] < n_classes:  # chosen for a model with more classes
        ss[S.TARGET_OTHER] = 0
    query_target = ss.pop(S.QUERY_TARGET, None)
    if query_target is not None and query_target < n_classes:  # ?target=N in the link
        ss[S.TARGET_RANK], ss[S.TARGET_OTHER] = S.OTHER, query_target
    elif query_target is not None:
        st.warning(f"The link's class {query_target} is out of range for this model (0 to {n_classes - 1}); "
                   "explaining its top class.", icon=":material/link_off:")
    left, right = (st.container(), st.container()) if stacked else st.columns([3, 2], gap="large")
    with right:
        options = list(range(len(predictions))) + [S.OTHER]
        rank = st.radio(
            "Explain which class?", options, **S.bind(S.TARGET_RANK),
            format_func=lambda r: "Another class (why not X?)" if r == S.OTHER
            else f"{markdown_text(predictions[r][1])} ({S.percent(predictions[r][2])})",  # radio options: Markdown
        )
        if rank == S.OTHER:
            other = st.selectbox(  # its options are plain text (no Markdown)
                f"Search all {n_classes} classes", range(n_classes), **S.bind(S.TARGET_OTHER),
                format_func=lambda i: f"{handle.categories[i]} (#{i})",
            )
            target = int(other)
        else:
            target = int(predictions[rank][0])
    with left:
        highlight = rank if rank != S.OTHER else None
        fig = figures.build_prediction_bars([(p[1], p[2]) for p in predictions], highlight=highlight)
        show_chart(fig, "prediction", key="prediction_chart")
    return target, predictions


@contextmanager
def progress(label: str, estimate_s: float) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar while the body runs; yields the `progress(method, done, total)` callback to
    hand to xai_core. The callback cancels the computation when the user has changed a control or
    pressed Stop meanwhile (Streamlit acts on that only at the script's next st call, which a long
    computation would delay by its whole duration), so the new run starts at once. A helper thread
    draws the bar twice a second from the last report (or, until one arrives, from the elapsed time
    against `estimate_s`), so the callback itself never calls st inside a cached function (whose st
    calls would be replayed on every cache hit)."""
    slot = st.session_state.get(S.PROGRESS_SLOT)
    bar = (slot.container() if slot is not None else st.container()).progress(
        0.0, text=f"{label}: about {S.duration(estimate_s)}")
    reported: list[tuple[int, int]] = []
    stop = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        while not stop.wait(0.5):
            elapsed = time.monotonic() - started
            if reported and reported[-1][1]:
                done, total = reported[-1]
                share, text = done / total, f"{label}: {done} of {total} ({elapsed:.0f} s)"
            else:
                share = min(0.97, elapsed / max(estimate_s, 0.1))
                text = f"{label}: {elapsed:.0f} s of about {S.duration(estimate_s)}"
            bar.progress(min(share, 1.0), text=text)

    def report(method: str, done: int, total: int) -> bool:
        reported.append((int(done), int(total)))
        return not internals.rerun_requested()  # False cancels: xai_core raises Cancelled

    thread = internals.attach_to_this_run(threading.Thread(target=tick, daemon=True))
    thread.start()
    try:
        yield report
    finally:
        stop.set()
        thread.join()
        bar.empty()


def report_button(title: str, figs: list[tuple[str, go.Figure]], settings: dict, notes: tuple = (),
                  file_name: str = "report.html", key: Optional[str] = None,
                  sections: tuple[tuple[str, str], ...] = ()) -> None:
    """A download button for a self-contained HTML report (`sections`: (heading, HTML fragment)
    placed before the figures); it is built only when clicked."""
    st.download_button(
        "Download HTML report", data=lambda: image_report_html(title, figs, settings, notes, sections),
        file_name=file_name, mime="text/html", on_click="ignore", key=key,
        icon=":material/download:", help="One self-contained HTML file (opens offline) with the image, "
        "prediction, maps, settings and model. Each chart's camera icon saves it as PNG.",
    )
