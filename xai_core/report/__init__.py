"""Reports: what people see of the results. Pure Plotly figure builders (`figures.py` for one image's
maps, concepts and predictions, open it first; `eval_figures.py` for an `Evaluation`; `localisation_figures.py`
for a `Localisation`; `dataset_figures.py` for a dataset run's summary; `concept_figures.py` for concepts across
a class), pictures drawn with Pillow (`pictures.py`), the HTML reports (`html_reports.py`; a dataset run's gallery
beyond its first page in sidecar files, `gallery.py`), and `escaping.py`: a string from a user, a model or a file
shown as text, never markup (`markdown_text` for Streamlit, `html_text` for HTML and Plotly). No Streamlit here."""

from . import concept_figures, dataset_figures, eval_figures, figures, localisation_figures, pictures
from .escaping import html_text, markdown_text
from .html_reports import dataset_report_html, image_report_html, write_dataset_report
from .pictures import build_cam_picture, build_dff_picture, overlay_cam

__all__ = ["build_cam_picture", "build_dff_picture", "concept_figures", "dataset_figures", "dataset_report_html",
           "eval_figures", "figures", "html_text", "image_report_html", "localisation_figures", "markdown_text", "overlay_cam",
           "pictures", "write_dataset_report"]
