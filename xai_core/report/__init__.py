"""Reports: what people see of the results. Pure Plotly figure builders (`figures.py` for one image's
maps, concepts and predictions, open it first; `eval_figures.py` for an `Evaluation`; `localisation_figures.py`
for a `Localisation`; `dataset_figures.py` for a dataset run's summary; `concept_figures.py` for concepts
across a class), pictures drawn with Pillow (`pictures.py`; `compare_pictures.py`: two models' maps side by
side; `against_report.py`: a dataset run against a model B), the HTML reports (`html_reports.py`; a dataset
run's gallery beyond its first page is in sidecar files, `gallery.py`), and `escaping.py`: a string from a
user, a model or a file shown as text, never markup (`markdown_text` for Streamlit, `html_text` for HTML and
Plotly). No Streamlit here."""

from . import compare_pictures, concept_figures, dataset_figures, eval_figures, figures, localisation_figures, pictures
from .escaping import html_text, markdown_text
from .against_report import against_section_html, against_sentences, against_table, mean_agreement, with_agreement
from .compare_pictures import build_comparison_picture
from .html_reports import dataset_report_html, image_report_html, write_dataset_report
from .pictures import build_cam_picture, build_dff_picture, overlay_cam

__all__ = ["against_section_html", "against_sentences", "against_table", "build_cam_picture", "build_comparison_picture",
           "build_dff_picture", "compare_pictures", "concept_figures", "dataset_figures", "dataset_report_html", "eval_figures",
           "figures", "html_text", "image_report_html", "localisation_figures", "markdown_text", "mean_agreement", "overlay_cam",
           "pictures", "with_agreement", "write_dataset_report"]
