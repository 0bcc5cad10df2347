"""Compare models page: the sidebar's model (A) and another model the app offers (B) asked the same
question about the current image: both predictions, then per method A's map | B's map | the difference
B - A, how well the maps agree (Spearman, top-20% IoU) and a verdict in words. `?model=A&against=B`."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import xai_core
from pages import _compare_state as C
from pages import _panels as P
from pages import _state as S
from xai_core.report import figures, markdown_text
from xai_core.report.compare_figures import (AGREEMENT_COLUMNS, agreement_table, build_comparison_row,
                                             build_predictions, object_on_grid, prediction_line, target_line)

S.ensure_entry_point()
P.page_header(
    "Compare models",
    "What changed between two models, say before and after fine-tuning? Both are asked the same question "
    "about the sidebar's image: the same class, the same methods. Each method's maps are compared on the part "
    "of the photo both models see, with the difference B − A, two agreement scores and a verdict in words."
)

ss = st.session_state
handle_a, key_a = P.active_model()
digest, data, image_name = S.current_image()
MANY_MODELS = 8  # more choices than this and model B's list scrolls in a box of its own

a_col, b_col = st.columns(2, gap="large")
with a_col:
    st.markdown(f"**Model A**, the sidebar's model:  \n{markdown_text(S.model_title(ss[S.MODEL]))}")
    st.caption("Pick model A in the sidebar's Model box.")
with b_col:
    offered = C.candidates()
    if not offered:
        st.warning("This server offers only one model, so there is nothing to compare it with.", icon=":material/info:")
        st.stop()
    C.model_b_name()
    with st.container(height=260) if len(offered) > MANY_MODELS else st.container():
        titles = {name: markdown_text(S.model_title(name)) for name in offered}  # radio options: Markdown
        name_b = st.radio("Model B", offered, **S.bind(C.AGAINST), format_func=titles.get,
                          help="Any other model this server offers: a built-in, or a model of the models file (two "
                          "checkpoints of one architecture, say).")
loaded = P.safe(C.load_model_b, name_b)  # a model that cannot be loaded: its one sentence, the page stops here
if loaded is None:
    st.stop()
handle_b, key_b = loaded


def _methods() -> list[str]:
    """The methods that apply to either model and are quick on it (the slow ones are left to the CLI)."""
    on_a, on_b = set(xai_core.methods_for(handle_a)), set(xai_core.methods_for(handle_b))
    either = [m for m in xai_core.list_methods() if m in on_a | on_b]
    costs_a = P.safe(S.costs, handle_a, key_a, tuple(m for m in either if m in on_a), None, False)
    costs_b = P.safe(S.costs, handle_b, key_b, tuple(m for m in either if m in on_b), None, False)
    if costs_a is None or costs_b is None:
        st.stop()
    quick = [m for m in either if max(costs_a[m].seconds if m in on_a else 0.0,
                                      costs_b[m].seconds if m in on_b else 0.0) <= S.CONFIRM_ABOVE_S]
    if ss[C.METHODS] and not any(m in quick for m in ss[C.METHODS]):  # a choice none of which applies here
        ss[C.METHODS] = [m for m in C.DEFAULT_METHODS if m in quick] or quick[:1]
    ss[C.METHODS] = [m for m in ss[C.METHODS] if m in quick]
    one_only = [xai_core.get_method(m).title for m in quick if (m in on_a) != (m in on_b)]
    return P.method_picker(
        "Methods", quick, C.METHODS,
        help="The methods that apply to model A or model B, each at the model's default layer. "
        + (f"{', '.join(one_only)} apply to one model only: they run on that one, and the page says so. "
           if one_only else "")
        + "Methods estimated above 10 s (Score-CAM, FullGrad...) are compared from the command line: "
        "python -m xai_core compare --model A --against B --img IMG --method scorecam.",
    )


TARGET_WORDS = {C.TOP_A: "model A's top class", C.OWN_TOP: "each model's own top class"}


def _target() -> str:
    choices = C.target_choices(handle_a, handle_b)
    linked = C.link_target(handle_a, choices)
    if linked is not None:
        ss[C.TARGET] = linked
    if ss[C.TARGET] not in choices:
        ss[C.TARGET] = choices[0]
    return st.selectbox(  # its options are plain text (no Markdown)
        "Explain which class?", choices, **S.bind(C.TARGET),
        format_func=lambda c: TARGET_WORDS.get(c) or c[len(C.LABEL):],
        help="Model A's top class is matched by its label in model B. Any class both models know can be chosen"
        + ("." if len(choices) > 1 else "; these two models share no label, so each explains its own top class."),
    )


methods = _methods()
with st.columns([3, 2], gap="medium")[0]:  # a label or "each model's own top class" whole at 1024 px
    choice = _target()
opacity_col, cmap_col, _ = st.columns([3.6, 1.2, 1.9], gap="medium")
opacity = opacity_col.slider("Heatmap opacity", 0.0, 1.0, step=0.05, **S.bind(S.OPACITY))
cmap = cmap_col.selectbox("Colormap", figures.COLORSCALES, **S.bind(S.COLORMAP))
if not methods:
    st.warning("Choose at least one method.", icon=":material/info:")
    st.stop()

estimate = 0.0
for handle, key in ((handle_a, key_a), (handle_b, key_b)):
    ran = tuple(m for m in methods if m in xai_core.methods_for(handle))
    estimate += sum(c.seconds for c in (P.safe(S.costs, handle, key, ran, None, False) or {}).values()) if ran else 0.0
with P.progress(f"Explaining with both models ({len(methods)} method{'s' * (len(methods) != 1)})", estimate) as report:
    comparison = P.safe(C.compare, handle_a, key_a, handle_b, key_b, digest, data, tuple(methods),
                        C.target_argument(choice), _progress=report)
if comparison is None:
    st.stop()

title_a, title_b = S.model_title(ss[S.MODEL]), S.model_title(name_b)
st.subheader(markdown_text(prediction_line(comparison)))
st.markdown(markdown_text(target_line(comparison)))
figure_a, figure_b = build_predictions(comparison, "a", "Model A"), build_predictions(comparison, "b", "Model B")
figure_a.layout.height = figure_b.layout.height = max(figure_a.layout.height, figure_b.layout.height)  # level captions
bars_a, bars_b = st.columns(2, gap="medium")
with bars_a:
    P.show_chart(figure_a, "prediction_a", key="cmp_prediction_a")
    st.caption(markdown_text(title_a))
with bars_b:
    P.show_chart(figure_b, "prediction_b", key="cmp_prediction_b")
    st.caption(markdown_text(title_b))
method_notes = {c.note for c in comparison.methods.values() if c.note}
notes = [n for n in comparison.notes if n not in method_notes]
for note in notes:  # sentences naming models and classes: text
    st.info(markdown_text(note), icon=":material/lightbulb:")

marked = P.safe(C.object_on_picture, comparison, digest)
mask = object_on_grid(comparison, marked) if marked is not None else None
if mask is not None and not mask.any():
    st.warning("The object marked on the Faithfulness page lies outside the part of the photo both models see, "
               "so the verdicts say where the maps' mass moved.", icon=":material/warning:")
    mask = None

st.subheader("Do the maps agree?")
table = agreement_table(comparison, methods)
config = {header: st.column_config.NumberColumn(header, help=f"{header}: {meaning}", width=110)
          for _, header, meaning in AGREEMENT_COLUMNS}
config["method"] = st.column_config.TextColumn("method", pinned=True, width=170)
headers = [header for _, header, _ in AGREEMENT_COLUMNS]
st.dataframe(pd.DataFrame(table).style.format({h: "{:.2f}" for h in headers}, na_rep="–"), column_config=config,
             hide_index=True, width="content", key="cmp_agreement")
verdicts = {m: comparison.verdict(m, mask=mask) for m in methods}
st.markdown("\n".join(f"- {markdown_text(v)}" for v in verdicts.values()))
st.caption(("The magenta line is the object marked on the Faithfulness page; the verdicts weigh each map's mass "
            "inside it." if mask is not None else "The verdicts say where model B's map moved (its centre of "
            "mass); mark the object on the Faithfulness page and they weigh each map's mass inside it instead.")
           + " Hover a column header for its meaning.")

rows = []
for method in methods:
    compared = comparison.methods[method]
    st.subheader(markdown_text(compared.title))
    row = build_comparison_row(comparison, method, opacity=opacity, colorscale=cmap, outline=mask)
    P.show_chart(row, f"compare_{method}_{image_name.rsplit('.', 1)[0]}", key=f"cmp_row_{method}")
    st.markdown(markdown_text(verdicts[method]))
    rows.append((compared.title, row))
layers = [markdown_text(", ".join(e.layers) or "none") for e in (comparison.explanation_a, comparison.explanation_b)]
st.caption("In the difference, red is where model B's map is higher, blue where model A's is, white: no change; "
           f"its scale reaches the largest change of the row. Each model's map is at its default layer (A: {layers[0]}; "
           f"B: {layers[1]}).")
st.caption(markdown_text(f"Link to this comparison: add ?model={ss[S.MODEL]}&against={name_b} to the page's address."))

settings = {"model A": P.model_description(handle_a), "model B": P.model_description(handle_b), "image": image_name,
            "explained class": target_line(comparison), "methods": ", ".join(c for c, _ in rows)}
P.report_button(f"Model comparison: {image_name}",
                [("Model A's prediction", figure_a), ("Model B's prediction", figure_b), *rows], settings,
                tuple(comparison.notes) + tuple(verdicts.values()),
                file_name=f"compare_report_{image_name.rsplit('.', 1)[0]}.html", key="cmp_report")
