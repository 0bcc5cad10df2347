"""Reports: what people see of the results. Pure Plotly figure builders (`figures.py` for one image's
maps, concepts and predictions, open it first; `eval_figures.py` for an `Evaluation`;
`dataset_figures.py` for a dataset run's summary and gallery), pictures drawn with Pillow and
pytorch-grad-cam's overlays (`pictures.py`: the CLI's PNGs, the dataset job's maps), and the
HTML reports (`html_reports.py`; a dataset run's gallery beyond its first page is in sidecar files
next to index.html, `gallery.py`). Nothing here calls Streamlit."""

from . import dataset_figures, eval_figures, figures, pictures
from .html_reports import dataset_report_html, image_report_html, write_dataset_report
from .pictures import build_cam_picture, build_dff_picture, overlay_cam

__all__ = ["build_cam_picture", "build_dff_picture", "dataset_figures", "dataset_report_html", "eval_figures",
           "figures", "image_report_html", "overlay_cam", "pictures", "write_dataset_report"]
