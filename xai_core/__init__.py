"""xai_core: explain the decisions of image classifiers (built-ins, any torchvision or timm classifier, a
user's checkpoint with its labels; CAM family, DFF) with pytorch-grad-cam's formulas. Plain Python: no
Streamlit; numpy out, torch kept inside."""

from .models import catalog  # the deployment's models file: catalog.entries(), catalog.load_entry(name)
from . import dataset  # dataset mode: dataset.run(handle, input, output, methods, ...), as `batch` runs it
from .factorize import Factorization, factorize
from .compare import Comparison, MethodComparison, compare_models, compare_models_batch
from .concepts import ClassConcepts, Concept, class_concepts
from .evaluate import evaluate, evaluate_batch
from .faithfulness import Agreement, Evaluation, estimate_evaluation_seconds
from .errors import (
    Cancelled,
    InvalidGroundTruthError,
    InvalidImageError,
    InvalidOptionError,
    InvalidWeightsError,
    JobFailed,
    UnknownNameError,
    WeightsUnavailableError,
    XAIError,
)
from .explain import Explanation, explain, explain_batch
from .images import load_image
from . import localisation  # ground truth readers and the scores: localisation.read_ground_truth(path), ...
from .localisation import GroundTruth, Localisation, localise, read_ground_truth
from .methods import (Cost, MethodSpec, OptionSpec, attention_unavailable, estimate_cost, get_method, list_methods,
                      methods_for)
from .models import ModelHandle, default_device, list_models, load_model
from .predict import Prediction, predict
from .models import ModelSpec, get_model_spec
from .versions import RESULTS_VERSION  # bumped by any change to a map or a score (see versions.py)

__all__ = [
    "catalog",
    "dataset",
    "Agreement",
    "Cancelled",
    "Comparison",
    "compare_models",
    "compare_models_batch",
    "MethodComparison",
    "ClassConcepts",
    "class_concepts",
    "Concept",
    "Cost",
    "estimate_cost",
    "estimate_evaluation_seconds",
    "evaluate",
    "evaluate_batch",
    "Evaluation",
    "Explanation",
    "Factorization",
    "GroundTruth",
    "InvalidGroundTruthError",
    "InvalidImageError",
    "InvalidOptionError",
    "InvalidWeightsError",
    "JobFailed",
    "MethodSpec",
    "ModelHandle",
    "ModelSpec",
    "OptionSpec",
    "Prediction",
    "UnknownNameError",
    "WeightsUnavailableError",
    "XAIError",
    "attention_unavailable",
    "default_device",
    "explain",
    "explain_batch",
    "factorize",
    "get_method",
    "get_model_spec",
    "list_methods",
    "methods_for",
    "list_models",
    "load_image",
    "load_model",
    "localisation",
    "localise",
    "Localisation",
    "predict",
    "read_ground_truth",
    "RESULTS_VERSION",
]
