"""Compare two models on one question (what changed when I fine-tuned?). Open `run.py` first
(`compare_models`, `compare_models_batch`); `comparison.py` holds the results and the verdict in words,
`targets.py` matches the class by label, `grid.py` puts both maps on the part of the image both models
see, `agreement.py` the numbers (Spearman, top-20% IoU, difference, centre of mass)."""

from .agreement import TOP_SHARE, centre_of_mass, difference, mean_ranks, spearman, top_iou, top_mask
from .comparison import AGREEMENT_BANDS, STILL, Comparison, MethodComparison, agreement_words, verdict
from .grid import Grid, common_grid, footprint, image_on_grid, on_grid, picture_grid
from .run import compare_models, compare_models_batch
from .targets import OWN, TargetArg, in_b, is_own, label_indices, resolve, shared_labels

__all__ = ["AGREEMENT_BANDS", "Comparison", "Grid", "MethodComparison", "OWN", "STILL", "TOP_SHARE", "TargetArg",
           "agreement_words", "centre_of_mass", "common_grid", "compare_models", "compare_models_batch",
           "difference", "footprint", "mean_ranks", "image_on_grid", "in_b", "is_own", "label_indices", "on_grid", "picture_grid",
           "resolve", "shared_labels", "spearman", "top_iou", "top_mask", "verdict"]
