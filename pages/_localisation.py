"""The Faithfulness page's section "Does the map point at the object?": the user drags a box on the
model's picture or uploads a mask, and sees the object's outline on every map and the four
localisation scores beside the random map and the centre prior. Widgets and layout only: the scores
come from `_state.localise`, the figures from `xai_core.report`."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import xai_core
from pages import _panels as P
from pages import _state as S
from xai_core.localisation import read_mask
from xai_core.report import figures, markdown_text
from xai_core.report.localisation_figures import (CENTRE_PRIOR_NOTE, LOCALISATION_COLUMNS, box_from_selection,
                                                  build_box_picker, localisation_table, localisation_table_html)

#: Short headers (a 1024 px window): hovering one gives the score's meaning.
_SHORT = {"pointing": "Pointing ↑", "energy": "Energy ↑", "rank": "Rank ↑", "iou": "IoU ↑"}


#: The picker's toolbar: box selection (on from the start) and reset; no zoom or pan to drag by mistake.
_PICKER_CONFIG = dict(P.PLOTLY_CONFIG, displayModeBar=True, modeBarButtonsToRemove=[
    "zoom2d", "pan2d", "lasso2d", "zoomIn2d", "zoomOut2d", "autoScale2d", "toImage"])


def _clear() -> None:
    """Forget the box and the mask; a new round of widget keys empties the picker and the uploader."""
    ss = st.session_state
    ss[S.LOC_BOX] = ss[S.LOC_MASK] = ss[S.LOC_SEEN] = None
    ss[S.LOC_ROUND] += 1


def _take_box(key: str) -> None:
    """The picker's callback: its last box selection becomes the object (an empty selection, after a
    double click, leaves the object as it was: Clear removes it)."""
    box = box_from_selection(st.session_state[key].selection)
    if box is not None:
        st.session_state[S.LOC_BOX], st.session_state[S.LOC_MASK] = box, None


def _take_mask(file) -> None:
    """A newly uploaded mask becomes the object once it reads as an image with an object in it; a bad
    one gets one sentence (kept while the uploader holds it) and the previous object stays."""
    ss = st.session_state
    if file is None or (ss[S.LOC_SEEN] or (None,))[0] == file.file_id:
        return
    data, error = file.getvalue(), None
    try:
        if not (read_mask(data) > 0).any():
            error = "The mask is all background (no pixel above 0), so there is no object to point at."
    except xai_core.XAIError as err:
        error = str(err)
    ss[S.LOC_SEEN] = (file.file_id, error and f"{file.name}: {error}")
    if error is None:
        ss[S.LOC_MASK], ss[S.LOC_BOX] = (file.name, data), None


def show_localisation(handle: xai_core.ModelHandle, model: str, digest: str, methods: list[str], target: int,
                      layer: str, explanation: xai_core.Explanation, titles: dict) -> tuple[list, tuple]:
    """The section; returns its (figures, sections) for the report (none until an object is marked)."""
    ss = st.session_state
    if ss[S.LOC_FOR] != digest:  # another image: its object is another
        ss[S.LOC_BOX] = ss[S.LOC_MASK] = ss[S.LOC_SEEN] = None
        ss[S.LOC_FOR] = digest
    st.subheader("Does the map point at the object?")
    st.markdown("Mark the object: drag a box around it on the picture the model sees, or upload a mask of the "
                "photo (a PNG where every pixel above 0 is the object; any size: it is scaled to the photo). "
                "Each map is then scored by how well it points at the object, beside a random map and a centre "
                "prior.")
    height, width = explanation.image.shape[:2]
    picker_col, input_col = st.columns(2, gap="large")
    with input_col:
        file = st.file_uploader("Upload a mask (PNG)", type=["png"], key=f"loc.upload{ss[S.LOC_ROUND]}",
                                help="The mask covers the whole original photo, whatever its size: it goes "
                                "through the same resize and crop as the photo.")
        _take_mask(file)
        if ss[S.LOC_SEEN] and ss[S.LOC_SEEN][1]:
            kept = ss[S.LOC_BOX] is not None or ss[S.LOC_MASK] is not None
            st.error(markdown_text(ss[S.LOC_SEEN][1]) + (" The previous object is still in use." if kept else ""),
                     icon=":material/error:")
        st.caption(_marked(width, height))
        st.button("Clear", on_click=_clear, icon=":material/close:", key="loc.clear",
                  disabled=ss[S.LOC_BOX] is None and ss[S.LOC_MASK] is None)
    with picker_col:
        key = f"loc.pick{ss[S.LOC_ROUND]}"
        st.plotly_chart(build_box_picker(explanation.image, ss[S.LOC_BOX], height=300), key=key,
                        on_select=lambda: _take_box(key), selection_mode="box", theme=None, config=_PICKER_CONFIG)
    if ss[S.LOC_BOX] is None and ss[S.LOC_MASK] is None:
        return [], ()
    name, data = ss[S.LOC_MASK] or (None, None)
    mask_digest = S.digest_of(data) if data is not None else None
    localisation = P.safe(S.localise, model, digest, tuple(methods), target, layer, ss[S.LOC_BOX], mask_digest,
                          _explanation=explanation, _mask=data)
    if localisation is None:
        return [], ()
    notes = [markdown_text(f"{name}: {n}" if name and n.startswith("The mask") else n) for n in localisation.notes]
    if not localisation.mask.any():
        st.warning(" ".join(notes) or "The object covers no pixel of the picture.", icon=":material/warning:")
        return [], ()
    return _show_scores(explanation, localisation, methods, titles, notes)


def _marked(width: int, height: int) -> str:
    """A caption saying which object is in use (Markdown)."""
    ss = st.session_state
    if ss[S.LOC_BOX] is not None:
        x0, y0, x1, y1 = ss[S.LOC_BOX]
        return f"The object: the box from ({x0:g}, {y0:g}) to ({x1:g}, {y1:g}) on the {width}x{height} picture."
    if ss[S.LOC_MASK] is not None:
        return f"The object: the mask {markdown_text(ss[S.LOC_MASK][0])}."
    return "No object yet: drag a box on the picture (the toolbar's box tool is on), or upload a mask."


def _show_scores(explanation: xai_core.Explanation, localisation: xai_core.Localisation, methods: list[str],
                 titles: dict, notes: list[str]) -> list:
    """The outline on every map, the scores' table beside the baselines, and the notes."""
    ss = st.session_state
    scores = localisation.scores
    captions = {titles[m]: f"energy {scores[m].energy:.2f} · {'hit' if scores[m].pointing == 1 else 'miss'}"
                for m in methods}
    grid = figures.build_heatmap_grid(explanation.image, {titles[m]: explanation.maps[m] for m in methods},
                                      captions=captions, opacity=ss[S.OPACITY], colorscale=ss[S.COLORMAP],
                                      columns=min(3, len(methods)), panel_height=240, outline=localisation.mask)
    P.show_chart(grid, "localisation", key="loc.grid")
    st.caption("The magenta line is the object's outline on the picture the model sees; under each map, its "
               "energy inside the object and whether its maximum hits the object.")
    table = localisation_table(localisation, titles)
    headers = [header for _, header, _ in LOCALISATION_COLUMNS]
    config = {header: st.column_config.NumberColumn(_SHORT[field], help=f"{header}: {meaning}", width=84)
              for field, header, meaning in LOCALISATION_COLUMNS}
    config["method"] = st.column_config.TextColumn(
        "method", help="The random map and the centre prior are the baselines a map must beat.", pinned=True,
        width=170)
    styled = pd.DataFrame(table).style.format({h: "{:.3g}" for h in headers}, na_rep="–")
    st.dataframe(styled, column_config=config, hide_index=True, width="content", key="loc.scores")
    st.markdown(CENTRE_PRIOR_NOTE)
    for note in notes:
        st.info(note, icon=":material/lightbulb:")
    return [("Does the map point at the object?", grid)], (
        ("Does the map point at the object?", localisation_table_html(localisation, titles)),)
