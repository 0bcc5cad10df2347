"""CAM comparison page: several class activation maps of one image, side by side, interactive."""

from __future__ import annotations

import streamlit as st

import xai_core
from pages import _panels as P
from pages import _state as S
from xai_core.report import figures, markdown_text

S.ensure_entry_point()
P.page_header(
    "Compare CAM methods",
    "A class activation map shows which regions of the photo raised the score of the chosen class: "
    "[Grad-CAM (arXiv 1610.02391)](https://arxiv.org/abs/1610.02391) weights each feature channel by its "
    "average gradient, [HiResCAM (arXiv 2011.08891)](https://arxiv.org/abs/2011.08891) multiplies features "
    "and gradients location by location, so its map shows exactly what the score used."
)

ss = st.session_state
handle, model = P.active_model()
digest, data, image_name = S.current_image()
target, predictions = P.prediction_panel(handle, model)


def _controls() -> tuple[list[str], str, bool, bool]:
    offered = xai_core.methods_for(handle)  # the attention methods only for transformers they apply to
    ss[S.CAM_METHODS] = [m for m in ss[S.CAM_METHODS] if m in offered]
    methods = P.method_picker(
        "Methods", offered, S.CAM_METHODS,
        help=("Gradient, activation and attention methods" if "legrad" in offered else
              "Gradient and activation methods") + " share one forward/backward pass. Score-CAM, Ablation-CAM and "
        "FullGrad cost many passes: they run after you confirm their estimated time."
        + (" LeGrad, attention rollout and gradient-weighted relevance read the transformer's attention."
           if "legrad" in offered else
           f" LeGrad, attention rollout and gradient-weighted relevance are not offered: "
           f"{markdown_text(xai_core.attention_unavailable(handle))}."),
    )
    layer_col, smoothing_col = P.control_row(handle, [1, 1.4])  # toggles stacked: labels never truncated
    if ss[S.CAM_LAYER] not in handle.layers:
        ss[S.CAM_LAYER] = S.cam_default_layer(handle)
    layers = list(handle.layers)
    layer = layer_col.selectbox(
        "Target layer", layers, **S.bind(S.CAM_LAYER),
        help=f"Default: {markdown_text(S.cam_default_layer(handle))}, the last layer before global pooling, where the "
        "methods differ (at the pooled layer Grad-CAM and HiResCAM are identical by construction).",
    )
    aug = smoothing_col.toggle("Augmentation smoothing", **S.bind(S.AUG_SMOOTH),
                               help="Average over 6 flipped / brightness-scaled copies: about 6x slower.")
    eig = smoothing_col.toggle("Eigen smoothing", **S.bind(S.EIGEN_SMOOTH),
                               help="Keep only the first principal component of the weighted activations.")
    return methods, layer, aug, eig


def _display_controls() -> tuple[float, str, int]:
    opacity_col, cmap_col, columns_col = st.columns([3.6, 1.2, 1.9], gap="medium")
    opacity = opacity_col.slider("Heatmap opacity", 0.0, 1.0, step=0.05, **S.bind(S.OPACITY))
    cmap = cmap_col.selectbox("Colormap", figures.COLORSCALES, **S.bind(S.COLORMAP))
    columns = columns_col.slider("Panels per row", 1, 5, **S.bind(S.COLUMNS))
    return opacity, cmap, columns


def _fast_maps(methods, layer, aug, eig, costs) -> xai_core.Explanation | None:
    """The cheap methods, in one shared pass (a progress bar when augmentation smoothing makes it slow)."""
    args = (handle, model, digest, data, tuple(methods), target, layer, aug, eig)
    if aug:
        estimate = sum(costs[m].seconds for m in ["shared pass", *methods])
        with P.progress(f"Augmentation smoothing ({costs['shared pass'].passes:g} passes)", estimate) as report:
            return P.safe(S.explain, *args, _progress=report)
    with st.spinner("Computing the maps...", show_time=True):
        return P.safe(S.explain, *args)


def _slow_maps(methods, layer, aug, eig, costs) -> tuple[list[xai_core.Explanation], list[str]]:
    """Slow methods, one progress bar each. Those estimated above CONFIRM_ABOVE_S show their cost and
    wait for a go-ahead button; the others are computed meanwhile (and the maps already computed stay
    on screen). Returns (the explanations, the methods still waiting)."""
    run = (digest, model, layer, target, aug, eig)
    pending = [m for m in methods if costs[m].seconds > S.CONFIRM_ABOVE_S and (run, m) not in ss[S.CAM_APPROVED]]
    if pending:
        total = sum(costs[m].seconds for m in pending)
        lines = "\n".join(f"- **{xai_core.get_method(m).title}** at {markdown_text(layer)}: {costs[m].detail}, "
                          f"about {S.duration(costs[m].seconds)}" for m in pending)
        ask = st.empty()
        with ask.container():
            st.warning(f"Slow methods are waiting for your go-ahead:\n{lines}", icon=":material/hourglass:")
            go = st.button(f"Compute them (about {S.duration(total)})", type="primary", key="run_slow")
        if go:
            ask.empty()
            ss[S.CAM_APPROVED] = ss[S.CAM_APPROVED] | {(run, m) for m in pending}
            pending = []
    ready = [m for m in methods if m not in pending]
    results = []
    for i, method in enumerate(ready):
        title = xai_core.get_method(method).title
        with P.progress(f"{title} ({i + 1} of {len(ready)})", costs[method].seconds) as report:
            result = P.safe(S.explain, handle, model, digest, data, (method,), target, layer, aug, eig,
                            _progress=report)
        if result is not None:
            results.append(result)
    return results, pending


def _collect(explanations: list[xai_core.Explanation], methods: list[str]) -> tuple[dict, dict, list[str]]:
    """Maps and compute times by method title (in the chosen order), and the notes, de-duplicated.
    A method computed alone is timed by its whole call; in the shared pass, by its own work."""
    maps, seconds, notes = {}, {}, []
    for exp in explanations:
        for method, cam in exp.maps.items():
            title = xai_core.get_method(method).title
            maps[title] = cam
            seconds[title] = exp.timings["total"] if len(exp.maps) == 1 else exp.timings[method]
        notes += [n for n in exp.notes if n not in notes]
    order = [xai_core.get_method(m).title for m in methods]
    return {t: maps[t] for t in order if t in maps}, seconds, notes


methods, layer, aug, eig = _controls()
opacity, cmap, columns = _display_controls()
if not methods:
    st.warning("Choose at least one method.", icon=":material/info:")
    st.stop()

costs = P.safe(S.costs, handle, model, tuple(methods), layer, aug)
if costs is None:
    st.stop()
fast = [m for m in methods if not costs[m].slow]
slow = [m for m in methods if costs[m].slow]
shared_pass = _fast_maps(fast, layer, aug, eig, costs) if fast else None
slow_results, waiting = _slow_maps(slow, layer, aug, eig, costs) if slow else ([], [])
explanations = ([shared_pass] if shared_pass else []) + slow_results
if not explanations:
    st.stop()

maps, seconds, notes = _collect(explanations, methods)
first = explanations[0]
later = f" ({len(waiting)} more waiting for your go-ahead above)" if waiting else ""
st.subheader(f"Why “{markdown_text(first.target_label)}” ({S.percent(first.target_probability)})? "
             f"{len(maps)} method{'s' * (len(maps) != 1)} at {markdown_text(layer)}{later}")
empty = [t for t, cam in maps.items() if float(cam.max()) == 0.0]
if empty:
    notes.append(f"Empty maps ({', '.join(empty)}): at {layer}, no region raised the score of "
                 f"“{first.target_label}”.")
for note in notes:  # sentences naming layers and classes: text
    st.info(markdown_text(note), icon=":material/lightbulb:")
fig = figures.build_cam_grid(first.image, maps, seconds, opacity=opacity, colorscale=cmap, columns=columns)
P.show_chart(fig, f"cam_{image_name.rsplit('.', 1)[0]}_{layer}", key="cam_grid")
if shared_pass is not None and len(shared_pass.maps) > 1:  # counts the maps shown, not those asked for
    shared = shared_pass.timings.get("forward", 0) + shared_pass.timings.get("backward", 0)
    attention = any(xai_core.get_method(m).kind == "attention" for m in shared_pass.maps)
    kinds = "gradient/activation/attention" if attention else "gradient/activation"
    st.caption(f"Times under the maps are each method's own work; the {len(shared_pass.maps)} {kinds} "
               f"maps share one forward + backward pass of {S.duration(shared)}.")

with st.expander("About these methods"):
    for m in methods:
        spec = xai_core.get_method(m)
        st.markdown(f"**{spec.title}** ({spec.kind}): {spec.summary} [paper]({spec.paper})")

top = [p[0] for p in predictions]
prediction_fig = figures.build_prediction_bars([(p[1], p[2]) for p in predictions],
                                               highlight=top.index(first.target) if first.target in top else None)
image_fig = figures.build_image(first.image, title=f"{image_name}, as the model sees it")
settings = {
    "model": P.model_description(handle), "image": image_name,
    "target class": f"{first.target_label} (#{first.target}, p = {S.percent(first.target_probability)})",
    "layer": layer, "methods": ", ".join(maps), "augmentation smoothing": aug, "eigen smoothing": eig,
    "colormap": cmap, "opacity": opacity,
}
P.report_button(f"CAM comparison: {image_name}",
                [("Image", image_fig), (f"Prediction (top {len(predictions)})", prediction_fig), ("Maps", fig)],
                settings, tuple(S.model_notices(handle) + notes),
                file_name=f"cam_report_{image_name.rsplit('.', 1)[0]}.html", key="cam_report")
