"""Start page: what the dashboard shows, the sample gallery, the image and the model's prediction."""

from __future__ import annotations

import streamlit as st

from pages import _panels as P
from pages import _state as S
from xai_core.report import markdown_text

S.ensure_entry_point()
P.page_header(
    "Why did the classifier decide that?",
    "This dashboard shows which parts of a photo an image classifier relied on: class activation maps "
    "such as [Grad-CAM (arXiv 1610.02391)](https://arxiv.org/abs/1610.02391) highlight the regions that raised "
    "the score of a class, and [Deep Feature Factorization (arXiv 1806.10206)](https://arxiv.org/abs/1806.10206) "
    "splits the network's features into concepts."
)


#: The width of a sample's card in the gallery.
SAMPLE_CARD_PX = 140


def _use_sample(name: str) -> None:
    """Gallery button callback: the sidebar shows this sample from the next render on."""
    ss = st.session_state
    ss[S.SOURCE], ss[S.SAMPLE] = S.SOURCES[0], name
    ss[S.UPLOAD_ERROR] = None
    S.set_image(S.sample_bytes(name), name)


st.subheader("1. Pick a photo")
st.caption("Use a sample below, or upload a photo or take one with the camera in the sidebar.")
names = S.sample_names()
digest, data, name = S.current_image()
with st.container(horizontal=True, gap="medium"):  # cards of a fixed width that wrap on a narrow window
    for i, sample in enumerate(names):
        with st.container(width=SAMPLE_CARD_PX, key=f"sample_card_{i}"):
            sample_data = S.sample_bytes(sample)
            st.image(S.thumbnail(S.digest_of(sample_data), sample_data), width="stretch")
            P.fitted_caption(sample)
            in_use = S.digest_of(sample_data) == digest
            st.button("In use" if in_use else "Use this", key=f"use:{sample}", on_click=_use_sample, args=(sample,),
                      type="primary" if in_use else "secondary", disabled=in_use, width="stretch")

handle, model = P.active_model()
st.subheader("2. What the model sees and predicts")
image_col, panel_col = st.columns([1, 3], gap="large")
with image_col:
    image = P.safe(S.display_image, handle, model, digest, data)
    if image is not None:
        st.image(image, caption=f"{markdown_text(name)}, as the model sees it ({image.shape[1]}x{image.shape[0]} crop)",
                 width="stretch")
with panel_col:
    P.prediction_panel(handle, model, stacked=True)

st.subheader("3. Explain it")
# one link a line: a link's label never wraps, so side by side they would be cut on a narrow window
st.page_link("pages/cam.py", label="Compare CAM methods side by side", icon=":material/compare:")
st.page_link("pages/dff.py", label="Find the concepts with DFF", icon=":material/category:")
st.page_link("pages/faithfulness.py", label="Check which map to trust", icon=":material/verified:")
