"""Dataset page: rank the methods over many images (uploaded photos, or a results folder of the batch
command): score means with their 95% intervals, win rates against the random map, and a gallery."""

from __future__ import annotations

from typing import Optional

import streamlit as st

import xai_core
from pages import _panels as P
from pages import _dataset_state as D
from pages import _state as S
from xai_core.report import dataset_figures as DF
from xai_core.report import pictures as R
from xai_core.report import (against_scores_note, against_scores_table, against_sentences, against_table, markdown_text,
                             with_agreement)

PER_PAGE = 12

S.ensure_entry_point()
P.page_header(
    "Dataset: rank the methods over many images",
    "Faithfulness measured on one image is mostly noise: a method that beats the random map on one photo may lose "
    "on the next. Here the maps of many images are scored together, each mean with a 95% bootstrap interval, "
    "with how often each method beats a random map on the same image (a 95% Wilson interval) "
    "([deletion and insertion, RISE arXiv 1806.07421](https://arxiv.org/abs/1806.07421); "
    "[ROAD, arXiv 2202.00449](https://arxiv.org/abs/2202.00449))."
)

ss = st.session_state
handle, model = P.active_model()


CANCELLED = "cancelled"  # DATA_PENDING after Cancel: the next run says so once


def _cancel() -> None:
    ss[D.DATA_PENDING] = CANCELLED


def _upload_controls() -> tuple[list[str], str, Optional[int], bool]:
    """Methods (the fast ones), layer (shared with the CAM page), target and faithfulness toggle."""
    if ss[S.CAM_LAYER] not in handle.layers:
        ss[S.CAM_LAYER] = S.cam_default_layer(handle)
    methods_slot = st.container()  # the methods (which depend on the layer's costs) go above the other controls
    layer_col, target_col, eval_col = P.control_row(handle, [1.2, 2, 1.3])
    layer = layer_col.selectbox("Target layer", list(handle.layers), **S.bind(S.CAM_LAYER),
                                help="Shared with the CAM and Faithfulness pages.")
    applicable = xai_core.methods_for(handle)
    costs = P.safe(S.costs, handle, model, tuple(applicable), layer, False)
    if costs is None:
        st.stop()
    offered = [m for m in applicable if not costs[m].slow]
    D.offer_dataset_methods(offered)
    with methods_slot:
        methods = P.method_picker("Methods", offered, D.DATA_METHODS,
                                  help="The methods that share one pass; Score-CAM and the other slow methods run "
                                  "over many images with the batch command.")
    if not D.TOP_CLASS <= ss[D.DATA_TARGET] < len(handle.categories):
        ss[D.DATA_TARGET] = D.TOP_CLASS
    choice = target_col.selectbox(
        "Explain which class?", [D.TOP_CLASS, *range(len(handle.categories))], **S.bind(D.DATA_TARGET),
        format_func=lambda i: "each photo's top class" if i == D.TOP_CLASS else f"{handle.categories[i]} (#{i})")
    target = None if choice == D.TOP_CLASS else int(choice)
    evaluate = eval_col.toggle("Faithfulness scores", **S.bind(D.DATA_EVAL),
                               help="Deletion, insertion and ROAD for each map and a random map, at the Faithfulness "
                               "page's curve step: slower, but it ranks the methods.")
    return methods, layer, target, evaluate


def _uploads() -> Optional[dict]:
    files = st.file_uploader(f"Photos (up to {D.MAX_UPLOADS})", type=S.UPLOAD_TYPES, accept_multiple_files=True,
                             key=D.DATA_UPLOADS, help="JPEG, PNG, WebP, BMP, GIF or TIFF. They stay in this session.")
    files = list(files or [])
    if len(files) > D.MAX_UPLOADS:
        st.warning(f"You chose {len(files)} photos; only the first {D.MAX_UPLOADS} are explained.",
                   icon=":material/filter_list:")
        files = files[:D.MAX_UPLOADS]
    methods, layer, target, evaluate = _upload_controls()
    result = ss.get(D.DATA_RESULT)
    if not files:
        if result is None:
            st.info(f"Upload up to {D.MAX_UPLOADS} photos to explain them here, or choose *Results folder* above "
                    "to open what the batch command wrote.", icon=":material/upload:")
            return None
        st.caption("The photos explained earlier in this session; upload photos to explain others.")
        return _upload_view(result)
    if not methods:
        st.warning("Choose at least one method.", icon=":material/info:")
        return None
    steps = int(ss[S.EVAL_STEPS])
    request = (model, tuple(f.file_id for f in files), tuple(methods), layer, target, evaluate, steps if evaluate else 0)
    if result is None or result["request"] != request:
        label = f"Explain {len(files)} photo{'s' * (len(files) != 1)}" + (" and score the maps" if evaluate else "")
        if ss.get(D.DATA_PENDING) == CANCELLED:
            ss[D.DATA_PENDING] = None
            st.info("Cancelled: nothing was kept. Press the button to start again.", icon=":material/cancel:")
        start = st.empty()
        if start.button(label, type="primary", icon=":material/play_arrow:", key="dataset.run"):
            ss[D.DATA_PENDING] = request
        if ss.get(D.DATA_PENDING) != request:
            return None
        start.empty()
        result = _explain(files, request, methods, layer, target, evaluate, steps)
        if result is None:
            return None
    return _upload_view(result)


def _upload_view(result: dict) -> dict:
    """The gallery's view of explained uploads: its settings are those the photos were explained with."""
    _, file_ids, methods, layer, target, _, _ = result["request"]
    pictures = result["pictures"]
    ids = dict(zip((row["key"] for row in result["rows"]), file_ids))
    return dict(result, id="upload", methods=list(methods), layer=layer, model=None,
                picture=lambda row, method=None: pictures.get(row["key"], {}).get(method),
                original=lambda row: _uploaded_bytes(ids.get(row["key"])),  # (bytes, None) or (None, why)
                target_of=lambda row: target)


def _uploaded_bytes(file_id: Optional[str]) -> tuple[Optional[bytes], Optional[str]]:
    for file in ss.get(D.DATA_UPLOADS) or []:
        if file.file_id == file_id:
            return file.getvalue(), None
    return None, "is no longer among the uploaded photos"


def _explain(files, request, methods, layer, target, evaluate, steps) -> Optional[dict]:
    """Explain the uploads with a progress bar and a Cancel button; keeps and returns the result."""
    costs = S.costs(handle, model, tuple(methods), layer, False)
    estimate = len(files) * sum(costs[m].seconds for m in ["shared pass", *methods]) * (4 if evaluate else 1)
    cancel = st.empty()
    cancel.button("Cancel", icon=":material/cancel:", key="dataset.cancel", on_click=_cancel)
    label = f"Explaining {len(files)} photos" + (" and scoring their maps" if evaluate else "")
    try:
        with P.progress(label, estimate) as report:
            result = D.explain_uploads(handle, [(f.name, f.getvalue()) for f in files], methods, layer, target,
                                       evaluate, steps, progress=report)
    except xai_core.Cancelled:
        st.stop()  # a control changed or Cancel was pressed: the next run starts at once
    except xai_core.XAIError as err:
        ss[D.DATA_PENDING] = None
        st.error(markdown_text(err), icon=":material/error:")
        return None
    finally:
        cancel.empty()
    ss[D.DATA_PENDING], ss[D.DATA_RESULT] = None, dict(result, request=request)
    return ss[D.DATA_RESULT]


def _folder() -> Optional[dict]:
    root = D.results_root()
    if root is None or not root.is_dir():
        why = "is not set" if root is None else "names no folder"
        st.info(f"This server offers no results folders: its {D.RESULTS_ROOT_ENV} setting {why}; a results folder "
                "is made with the batch command, for example:", icon=":material/folder_off:")
        st.code(D.BATCH_COMMAND, language="bash")
        return None
    names = D.results_folders()
    if not names:
        st.info("The server's results root holds no results folder yet; make one with the batch command, for "
                "example:", icon=":material/folder_open:")
        st.code(D.BATCH_COMMAND, language="bash")
        return None
    if ss[D.DATA_FOLDER] not in names:
        ss[D.DATA_FOLDER] = names[0]
    name = st.selectbox("Results folder", names, **S.bind(D.DATA_FOLDER),
                        help=f"The folders under the server's {D.RESULTS_ROOT_ENV} that hold a batch run's results.")
    data = P.safe(D.read_results, name, D.results_stamp(name))
    if data is None:
        return None
    settings = data["summary"]["settings"]
    methods = [m for m in settings.get("methods", []) if m in xai_core.list_methods()]
    layers = settings.get("layers") or [handle.default_layer]
    fixed = settings.get("target") is not None or settings.get("ground_truth") is not None  # a label's class
    # whichever pictures were written: the overlays, else drawn from the raw maps, else none
    against = bool(data["summary"].get("against"))  # a run against a model B: sortable by agreement
    rows = with_agreement(data["rows"], methods) if against else data["rows"]
    return dict(data, rows=rows, id=f"folder.{name}", name=name, methods=methods, layer=layers[0],
                model=settings.get("model"), against=against,
                picture=lambda row, method=None: D.results_picture(name, row, method),
                picture_b=lambda row, method: D.results_picture(name, row, method, model="b"),
                original=lambda row: D.results_original(name, row),
                target_of=lambda row: row["target"] if fixed else None)


def _summary(view: dict) -> None:
    summary = view["summary"]
    settings = summary.get("settings", {})
    st.subheader("Summary")
    facts = [f"{summary.get('explained', 0)} of {summary.get('files', 0)} files explained",
             f"{summary.get('refused', 0)} refused", f"model {settings.get('model', '?')}",
             f"layer {', '.join(settings.get('layers', []))}", DF.target_fact(summary)]
    if summary.get("fingerprint"):
        facts.append(f"model fingerprint {summary['fingerprint']}")
    st.markdown(" · ".join(markdown_text(fact) for fact in facts))  # read from the folder: text
    if "accuracy" in summary:
        st.metric("Top-1 accuracy (against the folder names)", DF.interval_text(summary["accuracy"], percent=True),
                  help="The share of images whose top class is their folder's name, with its 95% Wilson interval.")
    if summary.get("accuracy_note"):
        st.caption(markdown_text(summary["accuracy_note"][0].upper() + summary["accuracy_note"][1:] + "."))
    if summary.get("duplicates_note"):  # copies count once in the figures below
        st.caption(markdown_text(summary["duplicates_note"] + "."))
    if not summary.get("explained"):
        return
    scored = bool(DF.scores_in(summary))
    # one chart under the other: side by side they are too narrow on a 1024 px window
    P.show_chart(DF.build_score_intervals(summary), "dataset_scores", key="dataset_scores")
    if scored:
        P.show_chart(DF.build_win_rates(summary), "dataset_win_rates", key="dataset_win_rates")
        table = DF.win_rate_table(summary)  # a static table wraps its cells: it fits any width; cells are Markdown
        st.table({markdown_text(c): [markdown_text(v) for v in values] for c, values in table.items()})
        st.caption("A win: the method's map scores better than the random map on the same image (deletion: lower; "
                   "insertion and ROAD: higher). Near 50% is no better than chance.")
    else:
        st.caption("Without faithfulness scores only the time per image is compared; turn them on (or run the batch "
                   "command with --eval) to rank the methods.")
    located = DF.localisation_table(summary)
    if located:  # a run with ground truth (batch --ground-truth): the localisation means beside
        block = summary["localisation"]
        st.markdown("**Does the map point at the object?**")
        st.table({markdown_text(c): [markdown_text(v) for v in values] for c, values in located.items()})
        st.caption(markdown_text(f"{block.get('note', '')} {block.get('counts_note', '')}".strip()))
    compared = against_table(summary)
    if compared:  # a run against a model B (batch --against): how much the two models' maps agree
        st.markdown("**Model A against model B**")
        st.table({markdown_text(c): [markdown_text(v) for v in values] for c, values in compared.items()})
        st.caption(" ".join(markdown_text(s) for s in against_sentences(summary)) + " Agreement of the two models' "
                   "maps of the same class: Spearman's rank correlation and the IoU of each map's top 20%, means "
                   "with 95% bootstrap intervals.")
    scored = against_scores_table(summary)
    if scored:  # with --eval: are model B's maps more faithful than model A's?
        st.table({markdown_text(c): [markdown_text(v) for v in values] for c, values in scored.items()})
        st.caption(markdown_text(against_scores_note(summary)))


def _concepts(view: dict) -> None:
    """A run with --concepts: per class (a selectbox) its concepts, importance intervals and crops."""
    block = view["summary"].get("concepts")
    if not isinstance(block, dict) or "name" not in view:
        return
    st.subheader("Concepts per class")
    skipped = block.get("skipped", {})
    st.caption(markdown_text(
        f"{block.get('k')} concepts per class with at least {block.get('min_images')} images, at layer "
        f"{block.get('layer')}, from the activations kept during the run; importance: {block.get('method')}, the "
        f"mean share of the class logit with its 95% bootstrap interval. Skipped for having fewer images: "
        f"{skipped.get('predicted', 0)} predicted and {skipped.get('true', 0)} true classes."))
    for note in block.get("notes", []):
        st.caption(markdown_text(note))
    classes = block.get("classes") or []
    if not classes:
        st.info("No class has enough images for concepts.", icon=":material/category:")
        return
    if not 0 <= ss[D.DATA_CONCEPTS] < len(classes):
        ss[D.DATA_CONCEPTS] = 0
    names = [f"{'predicted as' if c['kind'] == 'predicted' else 'true class'} {c['label']} ({c['images']} images)"
             for c in classes]
    chosen = classes[st.selectbox("Class", range(len(classes)), format_func=lambda i: markdown_text(names[i]),
                                  **S.bind(D.DATA_CONCEPTS))]
    concepts = chosen["concepts"]
    rows = {"concept": [str(c["index"]) for c in concepts],
            "labels": [", ".join(f"{x['label']} ({x['probability']:.2f})" for x in c["labels"]) for c in concepts],
            "importance (95% CI)": [DF.interval_text({"mean": c.get("importance"), "low": c.get("importance_low"),
                                                     "high": c.get("importance_high")}) for c in concepts]}
    st.table({markdown_text(k): [markdown_text(v) for v in values] for k, values in rows.items()})
    f = chosen.get("fidelity") or {}
    area = DF.interval_text({"mean": f.get("auc"), "low": f.get("auc_low"), "high": f.get("auc_high")})
    chance = DF.interval_text({"mean": f.get("random_auc"), "low": f.get("random_auc_low"),
                               "high": f.get("random_auc_high")})
    st.caption(markdown_text(f"Fidelity: class probability area {area} removing the concepts by importance, "
                             f"{chance} in a random order (lower: the concepts carry the decision)."))
    for c in concepts:
        crops = [D.concept_crop(view["name"], chosen["folder"], file) for file in c.get("crops", [])]
        crops = [data for data in crops if data]
        if crops:
            st.image(crops, width=96, caption=[markdown_text(f"concept {c['index']}")] * len(crops))


def _gallery(view: dict) -> None:
    rows, vid = view["rows"], view["id"]
    st.subheader("Gallery")
    outcomes = DF.outcome_choices(rows)  # only the filters that apply, as in the dataset report
    cls_col, outcome_col, sort_col = st.columns([1.5, 1.2, 1.6], gap="small")
    cls = cls_col.selectbox("Class", ["all", *DF.classes(rows)], key=f"dataset.cls.{vid}")
    want = (outcome_col.selectbox("Prediction", list(outcomes), key=f"dataset.outcome.{vid}")
            if len(outcomes) > 1 else "all")
    sorts = DF.sort_choices(rows, DF.method_titles(view["summary"]))  # labels shown, column ids kept
    sort = sort_col.selectbox("Sort by", list(sorts), format_func=sorts.get, key=f"dataset.sort.{vid}")
    low_col, desc_col = st.columns(2, gap="small")  # toggles in wide columns: their labels never cut
    low = DF.has_predictions(rows) and low_col.toggle(
        "Low confidence only", key=f"dataset.low.{vid}",
        help=f"Only the images whose top-1 probability is below {DF.LOW_CONFIDENCE:.0%}.")
    desc = desc_col.toggle("Sort descending", key=f"dataset.desc.{vid}")
    shown = DF.sort_rows(DF.filter_rows(rows, None if cls == "all" else cls, outcomes[want], low), sort, desc)
    number = st.number_input("Page", min_value=1, step=1, key=f"dataset.page.{vid}") if len(shown) > PER_PAGE else 1
    page, pages = DF.page_of(shown, number, PER_PAGE)
    st.caption(f"{len(shown)} of {len(rows)} files" + (f" · page {min(number, pages)} of {pages}" if pages > 1 else ""))
    if rows and all(xai_core.dataset.pictures_written(r) == "none" for r in rows):
        st.info("This results folder holds no pictures (the batch command ran with --pictures none), so the gallery "
                "lists its files without images; rerun it with --pictures maps or all to see them.",
                icon=":material/hide_image:")
    titles = S.method_titles(view["methods"])
    if any(row.get("ground_truth_outline") for row in page):
        st.caption("The magenta line on each map is the object's outline from the run's ground truth.")
    for row in page:
        _item(view, row, titles)


def _item(view: dict, row: dict, titles: dict) -> None:
    with st.container(border=True):
        if row.get("error"):
            st.warning(markdown_text(f"{row['path']}: {row['error']}"), icon=":material/block:")
            return
        both = view.get("against") and row.get("b_label") is not None  # model B's map beside A's
        shown = [(m, t, view["picture"]) for m, t in titles.items()]
        if both:
            shown = [entry for m, t in titles.items() for entry in
                     ((m, f"A · {t}", view["picture"]), (m, f"B · {t}", view["picture_b"]))]
        columns = st.columns([1] * (1 + len(shown)) + [1.6 + 0.25 * len(shown)], gap="small")
        picture = view["picture"]
        image = picture(row)
        with columns[0]:
            if image:
                st.image(image, width="stretch")
            P.fitted_caption(row["path"])
        for column, (method, title, draw) in zip(columns[1:], shown):
            data = draw(row, method)
            if draw is picture:  # the object's outline (ground truth), on model A's picture only
                data = R.draw_outline(data, row.get("ground_truth_outline"))
            if data:
                with column:
                    st.image(data, width="stretch")
                    P.fitted_caption(title)
        with columns[-1]:
            _meta(view, row, titles)


def _meta(view: dict, row: dict, titles: dict) -> None:
    truth = DF.outcome(row)
    lines = [f"**{markdown_text(row['label'])}** {S.percent(row['probability'])}"]
    if row.get("true_label"):
        lines.append(f"true: {markdown_text(row['true_label'])} " + ("✓" if truth == "right" else "✗ wrong"))
    lines.append(f"target: {markdown_text(row['target_label'])}")
    for method, title in titles.items():
        scores = [f"{DF.SCORE_WORDS[s]} {row[f'{method}_{s}']:.3f}"
                  for s in DF.SCORE_WORDS if row.get(f"{method}_{s}") is not None]
        if scores:
            lines.append(f"{title}: {', '.join(scores)}")
    if row.get("b_label") is not None:  # a run against a model B
        lines.append(f"model B: **{markdown_text(row['b_label'])}** {S.percent(row['b_probability'])}")
        agree = [f"{title} Spearman {row[f'{method}_spearman']:.2f}" for method, title in titles.items()
                 if row.get(f"{method}_spearman") is not None]
        if agree:
            lines.append("agreement: " + ", ".join(agree))
        if row.get("b_note"):
            lines.append(markdown_text(row["b_note"]))
    st.markdown("  \n".join(lines))
    if st.button("Open", key=f"open.{view['id']}.{row['key']}", icon=":material/compare:",  # fits a narrow column
                 help="Open this photo on the CAM page with this run's methods, layer and class."):
        _open(view, row)


def _open(view: dict, row: dict) -> None:
    """The photo the row explained, else its picture (the model's input) with a notice saying why."""
    data, why = view["original"](row)
    notice = None
    if data is None:
        data = view["picture"](row)
        notice = D.stand_in_notice(why)
    if not data:
        st.error("This image is no longer available; explain it again.", icon=":material/error:")
        return
    D.open_on_cam(data, row["path"].rsplit("/", 1)[-1], view["methods"], view["layer"], view["target_of"](row),
                  model=view["model"], notice=notice)
    st.switch_page("pages/cam.py")


D.init_dataset_state()
source = st.segmented_control("Images", D.DATA_SOURCES, **S.bind(D.DATA_SOURCE), required=True) or ss[D.DATA_SOURCE]
view = _uploads() if source == D.DATA_SOURCES[0] else _folder()
if view is None:
    st.stop()
_summary(view)
_concepts(view)
_gallery(view)
