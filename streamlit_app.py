"""The dashboard's entry point: page router (st.navigation) and the shared sidebar (image + model).

    XAI_OFFLINE=1 streamlit run streamlit_app.py
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import xai_core
from pages import _compare_state as C
from pages import _panels as P
from pages import _state as S
from pages._streamlit_internals import forget_unknown_page
from xai_core.report import markdown_text

#: The browser tab's icon: a local file the app serves itself (an emoji or :material: icon would be
#: fetched from the internet, and a server offline would show none).
FAVICON = Path(__file__).resolve().parent / "assets" / "favicon.png"

st.set_page_config(page_title="Why did the classifier decide that?", page_icon=str(FAVICON), layout="wide")
S.init_state()
S.read_models_file()
S.apply_query_params()
C.init_state()
C.apply_query_params()  # ?against=B: the Compare models page's model B

PAGES = [
    st.Page("pages/home.py", title="Start", icon=":material/home:", default=True),
    st.Page("pages/cam.py", title="Compare CAM methods", icon=":material/compare:"),
    st.Page("pages/dff.py", title="Concepts (DFF)", icon=":material/category:"),
    st.Page("pages/faithfulness.py", title="Faithfulness", icon=":material/verified:"),
    st.Page("pages/compare.py", title="Compare models", icon=":material/difference:"),
    st.Page("pages/dataset.py", title="Dataset", icon=":material/photo_library:"),
]
forget_unknown_page(p.url_path for p in PAGES)  # /home, /nope...: the Start page, not "Page not found"
page = st.navigation(PAGES)


#: More models than this and the model list scrolls in a box of its own.
MANY_MODELS = 8


def _model_picker() -> None:
    """Auto, the built-ins and the models file's models, by title (ids only: never a file)."""
    ss = st.session_state
    titles = {name: S.model_title(name) for name in S.model_names()}
    if ss[S.MODEL] not in titles:  # a models-file model no longer offered (file edited or broken)
        ss[S.MODEL] = S.AUTO
    # radio buttons, not a select box: a select box cuts a title longer than the sidebar on one line,
    # a radio option wraps it (options are Markdown: titles go through markdown_text); a long list scrolls
    with st.container(height=320) if len(titles) > MANY_MODELS else st.container():
        st.radio(
            "Model", list(titles), **S.bind(S.MODEL), format_func=lambda name: markdown_text(titles[name]),
            help="auto uses ResNet-50 when its weights are available, else the bundled EfficientNet-Lite0. "
            "The server's models file (the README's *Explain your own model*) can offer more.",
        )
    if S.models_file_error():
        st.error(f"{markdown_text(S.models_file_error())} Only the built-in models are offered.",
                 icon=":material/error:")
    notice = ss.pop(S.QUERY_NOTICE, None)
    if notice:
        st.warning(markdown_text(notice), icon=":material/link_off:")


def _take_new_file(file, source: str) -> None:
    """Validate an uploaded or camera file once (per file id) and make it the current image."""
    ss = st.session_state
    if file is None:  # nothing (left) in the widget: no error to show
        ss[S.UPLOAD_ERROR] = None
        return
    if ss[S.UPLOAD_SEEN] == (source, file.file_id):
        return
    ss[S.UPLOAD_SEEN] = (source, file.file_id)
    data = file.getvalue()
    try:
        S.thumbnail(S.digest_of(data), data)
    except xai_core.XAIError as err:
        ss[S.UPLOAD_ERROR] = f"{file.name}: {err}"
        return
    ss[S.UPLOAD_ERROR] = None
    S.set_image(data, file.name)


def _image_picker() -> None:
    ss = st.session_state
    source = st.segmented_control("Image", S.SOURCES, **S.bind(S.SOURCE), required=True) or ss[S.SOURCE]
    samples, upload, _camera = S.SOURCES
    if source == samples:
        names = S.sample_names()
        sample = st.selectbox("Sample photo", names, **S.bind(S.SAMPLE))
        data = S.sample_bytes(sample)
        if S.digest_of(data) != ss[S.IMAGE_DIGEST]:
            S.set_image(data, sample)
    elif source == upload:
        file = st.file_uploader("Upload a photo", type=S.UPLOAD_TYPES, key="w:upload",
                                help="JPEG, PNG, WebP, BMP, GIF or TIFF, up to 20 MB.")
        _take_new_file(file, "upload")
    else:
        _take_new_file(st.camera_input("Take a photo", key="w:camera"), "camera")
    if ss[S.UPLOAD_ERROR] and source != samples:
        st.error(markdown_text(ss[S.UPLOAD_ERROR]) + " The previous image is still in use.", icon=":material/error:")
    digest, data, name = S.current_image()
    try:
        st.image(S.thumbnail(digest, data), caption=f"Current image: {markdown_text(name)}", width="stretch")
        for notice in S.image_notices(digest, data):
            st.info(notice, icon=":material/photo_size_select_large:")
    except xai_core.XAIError as err:  # cannot happen for a validated image, but never show a traceback
        st.error(markdown_text(err))


active = P.load_active_model()  # first: a model that cannot be loaded puts the Model box back on auto
with st.sidebar:
    _model_picker()
    _image_picker()
if active is None:  # not even auto can be loaded (its one sentence is shown): another model can be picked
    st.stop()
P.model_banner(active[0])
S.mark_entry_point()
page.run()
