"""DFF page: the image's features split into concepts, where each concept is, and what it means; or, in
its "Across a class" mode (`_concepts_class`), the concepts of a whole class of images."""

from __future__ import annotations

import streamlit as st

from pages import _concepts_state as C
from pages import _panels as P
from pages import _state as S
from pages._concepts_class import class_view
from xai_core.report import figures, markdown_text

S.ensure_entry_point()
C.init_concepts_state()
if st.session_state[C.CON_MODE] == C.MODES[1]:
    P.page_header(
        "Concepts across a class",
        "The concepts the model uses for a whole class (CRAFT-like, "
        "[arXiv 2211.10154](https://arxiv.org/abs/2211.10154)): the features of many images of the class "
        "factorized together into a few concepts (as DFF does for one image), each with its share of the class "
        "score and a 95% interval, where it is strongest, and how the class probability falls as the concepts "
        "are removed."
    )
else:
    P.page_header(
        "Concepts in the image (DFF)",
        "[Deep Feature Factorization (arXiv 1806.10206)](https://arxiv.org/abs/1806.10206) splits the network's "
        "features into a few concepts with non-negative matrix factorization and shows where each concept is in "
        "the photo; each concept is labelled by the classes the model's head gives it."
    )
mode = st.segmented_control("Concepts of", C.MODES, **S.bind(C.CON_MODE), required=True) or C.MODES[0]
if mode == C.MODES[1]:
    class_view(*P.active_model())
    st.stop()

ss = st.session_state
handle, model = P.active_model()
digest, data, image_name = S.current_image()

n_col, opacity_col = st.columns(2, gap="medium")  # two rows of two: one row of four cuts a layer's name at 1024 px
layer_col, cmap_col = P.control_row(handle, [1, 1])
n_components = n_col.slider("Number of concepts", 2, 10, **S.bind(S.DFF_N))
if ss[S.DFF_LAYER] not in handle.layers:
    ss[S.DFF_LAYER] = handle.default_layer
layers = list(handle.layers)
layer = layer_col.selectbox("Layer", layers, **S.bind(S.DFF_LAYER),
                            help="Deeper layers give more semantic concepts; earlier ones, textures and parts.")
opacity = opacity_col.slider("Heatmap opacity", 0.0, 1.0, step=0.05, **S.bind(S.OPACITY))
cmap = cmap_col.selectbox("Colormap", figures.COLORSCALES, **S.bind(S.COLORMAP))

with st.spinner("Factorizing the features...", show_time=True):
    result = P.safe(S.factorize, handle, model, digest, data, int(n_components), layer)
if result is None:
    st.stop()

colors = figures.concept_colors(result.image, result.heatmaps)  # each in contrast with the image beneath it
# halves (the bars keep room for their labels at 1024 px); the headings in a row of their own, so
# the charts start level even where one heading wraps onto two lines
overview_head, bars_head = st.columns(2, gap="large")
overview_head.subheader("Dominant concept per pixel")
bars_head.subheader("What each concept means")
overview_col, bars_col = st.columns(2, gap="large")
with overview_col:
    overview = figures.build_dff_overview(result.image, result.heatmaps, result.labels, opacity=max(opacity, 0.3),
                                          colors=colors)
    P.show_chart(overview, f"dff_{image_name.rsplit('.', 1)[0]}_overview", key="dff_overview")
with bars_col:
    bars = figures.build_concept_bars(result.labels, colors)
    P.show_chart(bars, "dff_concepts", key="dff_bars")
    st.caption(f"{len(result.labels)} concepts at {markdown_text(layer)}, computed in "
               f"{S.duration(result.timings['total'])} "
               f"(NMF {S.duration(result.timings['nmf'])}).")

st.subheader("Each concept's heatmap")
components = figures.build_dff_components(result.image, result.heatmaps, result.labels, opacity=opacity,
                                          colorscale=cmap, columns=min(5, n_components))
P.show_chart(components, f"dff_{image_name.rsplit('.', 1)[0]}_components", key="dff_components")

settings = {"model": P.model_description(handle), "image": image_name,
            "layer": layer, "concepts": len(result.labels), "colormap": cmap, "opacity": opacity}
P.report_button(f"DFF concepts: {image_name}", [("Dominant concept per pixel", overview),
                ("What each concept means", bars), ("Each concept's heatmap", components)], settings,
                tuple(S.model_notices(handle)),
                file_name=f"dff_report_{image_name.rsplit('.', 1)[0]}.html", key="dff_report")
