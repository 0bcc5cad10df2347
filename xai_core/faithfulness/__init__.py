"""Faithfulness: which map can be trusted? The pieces `evaluate` and `evaluate_batch` assemble:
deletion / insertion curves and the confidence change (`curves.py`, open it first), ROAD (`road.py`;
its batched imputation solver: `imputation.py`), the random-map baseline and equal-map detection
(`baseline.py`), the sanity check and the agreement between maps (`sanity.py`), the results and
their partial assembly (`results.py`), and the time estimate (`estimate.py`)."""

# Only what other packages use: `evaluate.py`, which assembles these pieces, opens the modules.
from .baseline import RANDOM
from .estimate import estimate_evaluation_seconds
from .results import HIGHER_IS_BETTER, Agreement, Evaluation
from .road import ROAD_PERCENTILES

__all__ = ["HIGHER_IS_BETTER", "RANDOM", "ROAD_PERCENTILES", "Agreement", "Evaluation", "estimate_evaluation_seconds"]
