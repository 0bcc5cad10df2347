"""Reports: what people see of the results. Pure Plotly builders (`figures.py` for one image, open it
first; `eval_figures.py`, `localisation_figures.py`, `dataset_figures.py`, `concept_figures.py`,
`compare_figures.py`), pictures drawn with Pillow (`pictures.py`, `compare_pictures.py`), the HTML
reports (`html_reports.py`, `gallery.py`, `against_report.py`, `concepts_section.py`) and `escaping.py`:
a string from a user, a model or a file shown as text, never markup (`markdown_text` for Streamlit,
`html_text` for HTML and Plotly). No Streamlit here."""

from . import compare_pictures, concept_figures, dataset_figures, eval_figures, figures, localisation_figures, pictures
from .escaping import html_text, markdown_text
from .against_report import (against_scores_note, against_scores_table, against_section_html, against_sentences,
                             against_table, mean_agreement, with_agreement)
from .compare_pictures import build_comparison_picture
from .concepts_section import importance_bars
from .html_reports import dataset_report_html, image_report_html, write_dataset_report
from .pictures import build_cam_picture, build_dff_picture, overlay_cam

__all__ = ["against_scores_note", "against_scores_table", "against_section_html", "against_sentences", "against_table", "build_cam_picture", "build_comparison_picture",
           "build_dff_picture", "compare_pictures", "concept_figures", "dataset_figures", "dataset_report_html", "eval_figures",
           "figures", "html_text", "image_report_html", "importance_bars", "localisation_figures", "markdown_text", "mean_agreement", "overlay_cam",
           "pictures", "with_agreement", "write_dataset_report"]
