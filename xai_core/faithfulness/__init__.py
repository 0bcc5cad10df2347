"""Faithfulness: which map can be trusted? The pieces `evaluate` and `evaluate_batch` assemble:
deletion / insertion curves and the confidence change (`curves.py`, open it first), ROAD (`road.py`;
its batched imputation solver: `imputation.py`), the random-map baseline and equal-map detection
(`baseline.py`), the sanity check and the agreement between maps (`sanity.py`), the results and
their partial assembly (`results.py`), and the time estimate (`estimate.py`)."""

from .baseline import RANDOM, identical_pairs, random_map, same_map_groups
from .curves import (
    BLUR_SIGMA,
    Scorer,
    assemble_curves,
    batch_count,
    chunk_curves,
    chunks,
    confidence_images,
    curve_makers,
    curve_rows,
    default_batch_size,
    deletion_insertion,
    forward_seconds,
    probabilities,
    rank_map,
    ranks,
    score_queue,
)
from .estimate import estimate_evaluation_seconds, observe_evaluation
from .results import HIGHER_IS_BETTER, Agreement, Evaluation, Results, Ticker, evaluation_settings
from .road import ROAD_PERCENTILES, FastImputer, RoadJobs, impute_together
from .sanity import SANITY_THRESHOLD, agreement_matrices, randomized_handle, sanity_scores

__all__ = ["BLUR_SIGMA", "HIGHER_IS_BETTER", "RANDOM", "ROAD_PERCENTILES", "SANITY_THRESHOLD", "Agreement",
           "Evaluation", "FastImputer", "Results", "RoadJobs", "Scorer", "Ticker", "agreement_matrices",
           "assemble_curves", "batch_count", "chunk_curves", "chunks", "confidence_images", "curve_makers", "curve_rows",
           "default_batch_size", "deletion_insertion", "estimate_evaluation_seconds", "evaluation_settings",
           "forward_seconds", "identical_pairs", "impute_together", "observe_evaluation", "probabilities", "random_map", "rank_map",
           "ranks", "randomized_handle", "same_map_groups", "sanity_scores", "score_queue"]
