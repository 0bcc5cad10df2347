"""Faithfulness page: which map can be trusted? Deletion/insertion curves, a sortable score table with a
random baseline, the model-randomization sanity check, the agreement between the methods, and whether
each map points at the object the user marks (`_localisation`)."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

import xai_core
from pages import _live as L
from pages import _localisation
from pages import _panels as P
from pages import _state as S
from xai_core.report import eval_figures, markdown_text

S.ensure_entry_point()
P.page_header(
    "Faithfulness: which map can I trust?",
    "Maps that look convincing are not necessarily faithful to the model. This page tests each map against "
    "the model itself: remove or keep the pixels a map calls important and watch the class probability, compare "
    "with a random map, and check whether the map changes at all when the model's learned weights are "
    "destroyed ([sanity checks, arXiv 1810.03292](https://arxiv.org/abs/1810.03292); "
    "[ROAD, arXiv 2202.00449](https://arxiv.org/abs/2202.00449))."
)

st.page_link("pages/dataset.py", label="One image is mostly noise: rank the methods over many images",
             icon=":material/photo_library:")

ss = st.session_state
handle, model = P.active_model()
digest, data, image_name = S.current_image()
target, predictions = P.prediction_panel(handle, model)

if ss[S.CAM_LAYER] not in handle.layers:
    ss[S.CAM_LAYER] = S.cam_default_layer(handle)
methods_slot = st.container()  # the methods (offered by the layer's costs) go above the other controls
layer_col, steps_col, sanity_col = P.control_row(handle, [1.1, 1.2, 1.2])  # the toggle's label whole at 1024 px
layer = layer_col.selectbox("Target layer", list(handle.layers), **S.bind(S.CAM_LAYER),
                            help="Shared with the CAM page. At a layer that feeds global pooling + a linear "
                            "layer, Grad-CAM, HiResCAM and XGrad-CAM are identical by construction.")
applicable = xai_core.methods_for(handle)
costs = P.safe(S.costs, handle, model, tuple(applicable), layer, False)
if costs is None:
    st.stop()
# Methods estimated above the go-ahead threshold are left to the CLI (`python -m xai_core eval`).
offered = [m for m in applicable if costs[m].seconds <= S.CONFIRM_ABOVE_S]
ss[S.EVAL_METHODS] = [m for m in ss[S.EVAL_METHODS] if m in offered]
with methods_slot:
    methods = P.method_picker(
        "Methods", offered, S.EVAL_METHODS,
        help="Methods estimated above 10 s at this layer (e.g. Score-CAM, FullGrad) are scored from the command "
        "line: python -m xai_core eval --img IMG --method scorecam.",
    )
steps = steps_col.select_slider("Curve step", [10, 20, 50], **S.bind(S.EVAL_STEPS),
                                format_func=lambda n: f"{100 / n:g}% of the pixels",
                                help="Pixels removed or inserted per step of the deletion and insertion curves.")
sanity = sanity_col.toggle("Sanity check", **S.bind(S.EVAL_SANITY),
                           help="Recompute each map on a copy of the model whose target layer and head are "
                           "re-initialised with random weights (Adebayo et al. 2018).")
if not methods:
    st.warning("Choose at least one method.", icon=":material/info:")
    st.stop()

key = (handle, model, digest, data, tuple(methods), target, layer)
with st.spinner("Computing the maps...", show_time=True):
    explanation = P.safe(S.explain, *key, False, False)
if explanation is None:
    st.stop()
titles = S.method_titles(methods)
estimate = xai_core.estimate_evaluation_seconds(handle, explanation, steps=int(steps), sanity=bool(sanity))
label = f"Scoring {len(methods)} map{'s' * (len(methods) > 1)} and a random baseline"
plan = (f"{label}: about {S.duration(estimate)} on this server. Each map's scores appear as soon as they are "
        "computed, then ROAD's" + (", then the sanity check." if sanity else "."))


def show_results(evaluation: xai_core.Evaluation, live: int = 0) -> list:
    """The headline, notes, score table, curves and sanity check of `evaluation` (a partial one while
    `live` counts the partial results: element keys must differ from the final ones); returns the
    figures for the report."""
    key_of = (lambda name: f"live{live}_{name}") if live else (lambda name: name)
    pending = evaluation.pending
    st.subheader(f"How faithful are the maps of “{markdown_text(evaluation.target_label)}” "
                 f"({S.percent(evaluation.target_probability)}) at {markdown_text(layer)}?")
    if live:
        st.caption(plan)
    if "deletion_insertion" not in pending:
        st.markdown(eval_figures.headline(evaluation, titles))
    for note in evaluation.named_notes(titles):
        st.info(markdown_text(note), icon=":material/lightbulb:")

    st.subheader("Scores")
    table = eval_figures.score_table(evaluation, titles)
    _score_frame(table, MAIN_SCORES + ("sanity check",), key_of("score_table"))
    with st.expander("More scores: ROAD's two orders, the confidence change, the sanity check's correlation"):
        _score_frame(table, MORE_SCORES, key_of("more_scores"))
    shown = len(table["method"]) - 1
    waiting = [titles[m] for m in methods if "deletion_auc" not in evaluation.scores[m]]
    st.caption(f"{shown} map{'s' * (shown != 1)} and the random baseline" + (
        f"; still scoring {', '.join(waiting)}" if waiting else "") + (
        f"; {eval_figures.PENDING_MARK} marks the ROAD scores still being computed" if "road" in pending else "") + ". "
        "Click a column header to sort. ↓ lower is better, ↑ higher is better. Hover a header for its meaning.")

    deletion_col, insertion_col = st.columns(2, gap="medium")
    curves = {kind: eval_figures.build_curves(evaluation, kind, titles) for kind in ("deletion", "insertion")}
    for column, kind in ((deletion_col, "deletion"), (insertion_col, "insertion")):
        with column:
            P.show_chart(curves[kind], f"{kind}_{image_name.rsplit('.', 1)[0]}", key=key_of(f"{kind}_curves"))

    figs = [("Deletion", curves["deletion"]), ("Insertion", curves["insertion"])]
    if sanity:
        st.subheader("Sanity check: does the map depend on what the model learned?")
        if "sanity" in pending:
            st.caption(f"{eval_figures.PENDING_MARK} The maps are recomputed on a randomized model once ROAD's "
                       "scores are in.")
        else:
            figs.append(("Sanity check", show_sanity(evaluation, key_of)))
    return figs


#: The score table's columns (score keys), and the rest, shown in a second table: side by side they
#: would not fit the page on a 1024 px window. Headers are short; hovering one tells the score.
MAIN_SCORES, MORE_SCORES = ("deletion_auc", "insertion_auc", "road_combined"), (
    "road_morf", "road_lerf", "confidence_change", "sanity_spearman")
SHORT = {"deletion_auc": "Deletion ↓", "insertion_auc": "Insertion ↑", "road_combined": "ROAD ↑",
         "road_morf": "ROAD MoRF ↓", "road_lerf": "ROAD LeRF ↑", "confidence_change": "Confidence ↑",
         "sanity_spearman": "Sanity ρ ↓", "sanity check": "sanity"}
LABELS = {key: label for key, label, _, _ in eval_figures.SCORE_COLUMNS}
HELPS = {key: f"{label}: {help_text}" for key, label, _, help_text in eval_figures.SCORE_COLUMNS}


def _score_frame(table: dict, keys: tuple, key: str) -> None:
    """The columns `keys` of the score table (method pinned first) as a sortable data frame that fits
    a narrow window; a score not computed (the random map's sanity check) reads "–", never "None"."""
    columns = [LABELS.get(k, k) for k in keys if LABELS.get(k, k) in table]
    frame = pd.DataFrame({c: table[c] for c in ["method", *columns]})
    numbers = [c for c in columns if c != "sanity check"]
    config = {LABELS.get(k, k): st.column_config.Column(
        SHORT[k], help=HELPS.get(k, "Whether the map fails the sanity check (passed / failed)."), width=88)
        for k in keys if LABELS.get(k, k) in table}
    config["method"] = st.column_config.TextColumn(
        "method", help="The random map is the baseline a map must beat.", pinned=True, width=130)
    styled = frame.style.format({c: "{:.3g}" for c in numbers}, na_rep="–")  # sorting stays numeric
    st.dataframe(styled, column_config=config, hide_index=True, width="content", key=key)


def show_agreement(evaluation: xai_core.Evaluation) -> list:
    """The agreement matrices (known from the maps alone: drawn once); returns the figures."""
    figs = []
    st.subheader("Do the methods agree?")
    tabs = st.tabs(["Rank correlation (Spearman)", "Top-20% overlap (IoU)"])
    for tab, metric in zip(tabs, ("spearman", "iou")):
        with tab:
            agreement = eval_figures.build_agreement(evaluation, metric, titles)
            P.show_chart(agreement, f"agreement_{metric}", key=f"agreement_{metric}")
            figs.append((f"Agreement ({metric})", agreement))
    st.caption("Two methods that agree closely add little to each other; a pair marked ≡ is identical by "
               "construction at this layer.")
    return figs


def show_sanity(evaluation: xai_core.Evaluation, key_of):
    """The sanity check's bars and verdict; returns the figure."""
    threshold = evaluation.settings["sanity_threshold"]
    failed = [m for m, s in evaluation.scores.items() if s["sanity_passed"] is False]
    sanity_fig = eval_figures.build_sanity(evaluation, threshold, titles)
    P.show_chart(sanity_fig, "sanity_check", key=key_of("sanity_chart"))
    if failed:
        st.warning(
            f"A red bar is a map that barely changed when {markdown_text(layer)} and every layer after it were given "
            "random "
            f"weights (Spearman above {threshold:g}). This is a finding about the method at this layer, not a "
            "bug: such maps follow the strength of the activations (edges, textures, the object's outline) more "
            "than the class the model learned, as Adebayo et al. found for several popular methods. Trust them "
            "for *where the network looked*, not for *why it chose this class*.",
            icon=":material/report:",
        )
    else:
        st.success(f"Every checked map changed when {markdown_text(layer)} and the layers after it were randomized "
                   f"(Spearman at most {threshold:g}): they depend on the learned weights.", icon=":material/check:")
    return sanity_fig


results, agreement_slot = st.empty(), st.empty()  # partial results while scoring, then the complete ones
results.caption(plan)
agreement_figs: list = []


def show_partial(evaluation: xai_core.Evaluation, n: int) -> None:
    """Drawn by `L.live`'s helper thread for each partial result: the scores so far, and the
    agreement once (it does not change)."""
    with results.container():
        show_results(evaluation, live=n)
    if not agreement_figs:
        with agreement_slot.container():
            agreement_figs.extend(show_agreement(evaluation))


with P.progress(label, estimate) as report, L.live(show_partial) as show:
    evaluation = P.safe(S.evaluate_progressively, *key, int(steps), bool(sanity), _explanation=explanation,
                        _progress=report, _on_partial=lambda partial: partial.pending and show(partial))
if evaluation is None:
    st.stop()
with results.container():
    figs = show_results(evaluation)
if not agreement_figs:  # a cache hit, or the scores came faster than the drawing
    with agreement_slot.container():
        agreement_figs.extend(show_agreement(evaluation))
figs += agreement_figs
localisation_figs, localisation_sections = _localisation.show_localisation(handle, model, digest, methods, target,
                                                                          layer, explanation, titles)
figs += localisation_figs

with st.expander("What the scores mean", expanded=False):
    for _, label, better, help_text in eval_figures.SCORE_COLUMNS:
        st.markdown(f"**{label}** ({better} is better): {help_text}")
    st.markdown(
        "**Random baseline**: a smooth random map scored the same way. A map that does not beat it on deletion "
        "and insertion tells you no more about this prediction than chance. Deletion fills removed pixels with "
        "the mean colour, and insertion starts from a blurred copy; ROAD imputes instead, because a hole's shape "
        "alone can change the prediction."
    )

seconds = evaluation.timings
st.caption(f"Scored in {S.duration(seconds['total'])} (deletion/insertion {S.duration(seconds['deletion_insertion'])}, "
           f"ROAD {S.duration(seconds['road'])}" + (f", sanity check {S.duration(seconds['sanity'])}" if "sanity" in
                                                     seconds else "") + f"), {steps} steps per curve.")
settings = {
    "model": handle.spec.title, "image": image_name,
    "target class": f"{evaluation.target_label} (#{evaluation.target}, p = {S.percent(evaluation.target_probability)})",
    "layer": layer, "methods": ", ".join(titles[m] for m in methods), **evaluation.settings,
}
sections = (("Headline", eval_figures.headline_html(evaluation, titles)),
            ("Scores", eval_figures.score_table_html(evaluation, titles))) + localisation_sections
report_col, json_col = st.columns(2)
with report_col:
    P.report_button(f"Faithfulness: {image_name}", figs, settings,
                    tuple(S.model_notices(handle) + list(evaluation.named_notes(titles))),
                    file_name=f"faithfulness_report_{image_name.rsplit('.', 1)[0]}.html", key="eval_report",
                    sections=sections)
with json_col:
    st.download_button("Download the scores (JSON)", data=json.dumps(evaluation.summary(), indent=2),
                       file_name=f"faithfulness_{image_name.rsplit('.', 1)[0]}.json", mime="application/json",
                       on_click="ignore", icon=":material/data_object:", key="eval_json")
