"""The DFF page's "Across a class" mode: the concepts the model uses for a whole class (a results
folder's class, or uploaded photos), each with its importance and 95% interval, an atlas of where
each is strongest, its map over one chosen image, and what removing the concepts does to the class
probability. Widgets and layout only: the run comes from `_concepts_state`, the figures from
`xai_core.report.concept_figures`."""

from __future__ import annotations

from typing import Callable, Optional

import streamlit as st

import xai_core
from pages import _concepts_state as C
from pages import _dataset_state as D
from pages import _panels as P
from pages import _state as S
from xai_core.report import concept_figures as CF
from xai_core.report import markdown_text

Images = list  # [(file name, bytes)]


def _uploads() -> Optional[tuple[Callable[[list[str]], tuple[Images, int]], Optional[str]]]:
    files = st.file_uploader(f"Photos of the class (up to {C.MAX_IMAGES})", type=S.UPLOAD_TYPES,
                             accept_multiple_files=True, key=C.CON_UPLOADS,
                             help="JPEG, PNG, WebP, BMP, GIF or TIFF; with a second class, photos of both. "
                             "They stay in this session.")
    files = list(files or [])
    if not files:
        st.info("Upload photos of one class (at least as many as the concepts you ask for), or choose *Results "
                "folder* above to take a class of a batch run.", icon=":material/upload:")
        return None
    if len(files) > C.MAX_IMAGES:
        st.warning(f"You chose {len(files)} photos; only the first {C.MAX_IMAGES} are analysed.",
                   icon=":material/filter_list:")
        files = files[:C.MAX_IMAGES]
    images = [(f.name, f.getvalue()) for f in files]
    return (lambda classes: (images, 0)), None


def _folder() -> Optional[tuple[Callable[[list[str]], tuple[Images, int]], Optional[str]]]:
    ss = st.session_state
    names = D.results_folders()
    if not names:
        root = D.results_root()
        where = f"its {D.RESULTS_ROOT_ENV} setting is not set" if root is None else "its results root holds none yet"
        st.info(f"This server offers no results folders ({where}); a results folder is made with the batch "
                "command, for example:", icon=":material/folder_off:")
        st.code(D.BATCH_COMMAND, language="bash")
        return None
    if ss[C.CON_FOLDER] not in names:
        ss[C.CON_FOLDER] = names[0]
    folder_col, kind_col = st.columns([3, 2], gap="medium")
    name = folder_col.selectbox("Results folder", names, **S.bind(C.CON_FOLDER),
                                help=f"The folders under the server's {D.RESULTS_ROOT_ENV} that hold a batch run.")
    data = P.safe(D.read_results, name, D.results_stamp(name))
    if data is None:
        return None
    rows = data["rows"]
    kinds = [k for k in C.KINDS if C.folder_classes(rows, k)]
    if not kinds:
        st.error("This results folder holds no explained photo; run the batch command on photos first.",
                 icon=":material/error:")
        return None
    if ss[C.CON_KIND] not in kinds:
        ss[C.CON_KIND] = kinds[0]
    kind = kind_col.selectbox("Classes by", kinds, **S.bind(C.CON_KIND),
                              help="The class each photo was predicted as, or its folder's name where the run's "
                              "input had one folder per class.")
    classes = C.folder_classes(rows, kind)
    if ss[C.CON_CLASS] not in classes:
        ss[C.CON_CLASS] = next(iter(classes))
    chosen = st.selectbox("Class", list(classes), **S.bind(C.CON_CLASS),
                          format_func=lambda c: f"{c} ({classes[c]} photo{'s' * (classes[c] != 1)})")
    return (lambda wanted: C.folder_images(name, rows, kind, wanted)), chosen


def _controls(handle: xai_core.ModelHandle) -> tuple[int, int, int, str]:
    """(target class, second class or NO_CLASS, number of concepts, layer)."""
    ss = st.session_state
    n_classes = len(handle.categories)
    for key in (C.CON_TARGET, C.CON_SECOND):
        if not C.NO_CLASS <= ss[key] < n_classes or (key == C.CON_TARGET and ss[key] == C.NO_CLASS):
            ss[key] = 0 if key == C.CON_TARGET else C.NO_CLASS
    target_col, second_col = st.columns(2, gap="medium")
    target = target_col.selectbox(f"Class to explain ({n_classes} classes)", range(n_classes),
                                  **S.bind(C.CON_TARGET), format_func=lambda i: f"{handle.categories[i]} (#{i})")
    second = second_col.selectbox(
        "Shared with a second class", [C.NO_CLASS, *range(n_classes)], **S.bind(C.CON_SECOND),
        format_func=lambda i: "none" if i == C.NO_CLASS else f"{handle.categories[i]} (#{i})",
        help="Concepts shared by two classes: one factorisation of both classes' images, each image counted for "
        "the one of the two it scores higher, with each concept's importance for either.")
    if ss[C.CON_LAYER] not in handle.layers:
        ss[C.CON_LAYER] = handle.default_layer
    layer_col, n_col = P.control_row(handle, [1, 1])
    layer = layer_col.selectbox("Layer", list(handle.layers), **S.bind(C.CON_LAYER),
                                help="Deeper layers give more semantic concepts; earlier ones, textures and parts.")
    k = n_col.slider("Number of concepts", 2, 10, **S.bind(C.CON_N))
    return int(target), int(second), int(k), layer


def _run(handle, model, images: Images, targets: tuple, k: int, layer: str) -> Optional[xai_core.ClassConcepts]:
    """The concepts of these settings: the kept run, else (after the Run button) a new one."""
    ss = st.session_state
    digests = tuple(S.digest_of(data) for _, data in images)
    request = (model, digests, targets, k, layer)
    kept = ss.get(C.CON_RESULT)
    if kept is not None and kept["request"] == request:
        return kept["result"]
    start = st.empty()
    if start.button(f"Find {k} concepts in {len(images)} image{'s' * (len(images) != 1)}", type="primary",
                    icon=":material/play_arrow:", key="concepts.run"):
        ss[C.CON_PENDING] = request
    if ss.get(C.CON_PENDING) != request:
        return None
    start.empty()
    label = f"Finding {k} concepts in {len(images)} images"
    try:
        with P.progress(label, C.estimate_s(handle, model, len(images), layer)) as report:
            result = C.class_concepts(handle, model, digests, tuple(d for _, d in images), targets, k, layer,
                                      _progress=report)
    except xai_core.Cancelled:
        st.stop()  # a control changed: the next run starts at once
    except xai_core.XAIError as err:
        ss[C.CON_PENDING] = None
        st.error(markdown_text(err), icon=":material/error:")
        return None
    ss[C.CON_PENDING], ss[C.CON_RESULT] = None, {"request": request, "result": result}
    return result


def _atlas(summary: dict, result: xai_core.ClassConcepts, names: list[str]) -> None:
    st.subheader("Atlas: where each concept is strongest")
    st.caption("Each row is one concept, most important first; its crops are the places of the class's images "
               "where the concept's coefficient is highest, each under the name of its image.")
    for entry in CF.by_importance(summary):
        concept = result.concepts[int(entry["index"])]
        with st.container(border=True, key=f"concepts_atlas_{entry['index']}"):
            title_col, *crop_cols = st.columns([1.6] + [1] * max(len(concept.crops), 1), gap="small")
            title_col.markdown(f"**{markdown_text(CF.concept_title(entry, labels=3))}**  \n"
                               + markdown_text(CF.interval(entry.get('importance'), entry.get('importance_low'),
                                                           entry.get('importance_high'))))
            for col, (image, _, _, crop) in zip(crop_cols, concept.crops):
                with col:
                    st.image(crop, width="stretch")
                    P.fitted_caption(names[image])


def _maps(handle, model, summary: dict, result: xai_core.ClassConcepts, images: Images) -> None:
    ss = st.session_state
    st.subheader("Each concept's map over one image")
    if not 0 <= ss[C.CON_IMAGE] < len(images):
        ss[C.CON_IMAGE] = 0
    index = st.selectbox("Image", range(len(images)), **S.bind(C.CON_IMAGE),
                         format_func=lambda i: f"{i + 1}: {images[i][0]}")
    name, data = images[index]
    picture = P.safe(S.display_image, handle, model, S.digest_of(data), data)
    maps = P.safe(result.maps, int(index))
    if picture is None or maps is None:
        return
    fig = CF.build_concept_maps(picture, maps, summary, opacity=ss[S.OPACITY], colorscale=ss[S.COLORMAP],
                                columns=min(3, len(maps)))  # three a row: each title on its panel at 1024 px
    P.show_chart(fig, f"concepts_{name.rsplit('.', 1)[0]}_maps", key="concepts_maps")


def class_view(handle: xai_core.ModelHandle, model: str) -> None:
    """The whole mode, under the page's header and mode switch."""
    C.init_concepts_state()
    source = st.segmented_control("Images", C.CON_SOURCES, **S.bind(C.CON_SOURCE), required=True) \
        or st.session_state[C.CON_SOURCE]
    picked = _uploads() if source == C.CON_SOURCES[0] else _folder()
    if picked is None:
        return
    gather, chosen = picked
    first, _ = gather([chosen] if chosen is not None else [])
    if not P.safe(C.default_target, handle, model, first, chosen):
        return
    target, second, k, layer = _controls(handle)
    targets = (target,) if second in (C.NO_CLASS, target) else (target, second)
    wanted = [chosen] + ([handle.categories[second]] if len(targets) == 2 else [])
    images, stand_ins = gather(wanted) if chosen is not None else (first, 0)
    result = _run(handle, model, images, targets, k, layer)
    if result is None:
        return
    names = [n for n, _ in images]
    summary = C.summary_of(result, names)
    st.subheader("How much each concept counts")  # full width: each concept's name beside its bar
    P.show_chart(CF.build_concept_importance(summary), "concepts_importance", key="concepts_importance")
    notes = [CF.method_caption(summary), *result.notes]
    if stand_ins:
        notes.append(f"{stand_ins} of the photos are no longer in the run's input: their pictures in the results "
                     "folder (the model's input, saved as JPEG) were used.")
    st.caption(" ".join(markdown_text(n) for n in notes))
    if result.fidelity:
        st.subheader("Removing the concepts")
        curve_col, text_col = st.columns([3, 2], gap="large")
        with curve_col:
            P.show_chart(CF.build_fidelity_curves(summary), "concepts_fidelity", key="concepts_fidelity")
        text_col.caption("The class probability (mean over the images) as the concepts are taken out of the layer's "
                         "activations, most important first and in a random order: the faster it falls, the more the "
                         "model's decision rests on these concepts. AUC: the area under each curve, with its 95% "
                         "bootstrap interval.")
    _atlas(summary, result, names)
    _maps(handle, model, summary, result, images)
