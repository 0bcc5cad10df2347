"""Methods: the CAM method registry (thin adapters to pytorch-grad-cam's classes, with the options
each declares) and how their maps are computed. Open `registry.py` first; `shared_pass.py` is the
one forward/backward every method shares, `device_cams.py` the classic formulas as torch ops on the
model's device, `cam_classes.py` our subclasses of the library's classes (faster, same maps),
`cost.py` the cost model, `reference.py` the library's own maps (the oracle of tests and benchmarks)."""

from .cost import Cost, estimate_cost
from .attention import check_applies
from .attention_capture import attention_layout
from .registry import (
    ACTIVATION,
    ALL_BLOCKS,
    ALL_LAYERS,
    ATTENTION,
    GAP_IDENTICAL,
    GRADIENT,
    GRADIENT8,
    KPCA_KERNELS,
    LAST_BLOCKS,
    LAYER,
    OWN_PASS,
    PERTURBATION,
    MethodSpec,
    MethodsArg,
    OptionSpec,
    get_method,
    list_methods,
    method_specs,
    attention_unavailable,
    methods_for,
    register_method,
    resolve_options,
)

__all__ = ["ACTIVATION", "ALL_BLOCKS", "ALL_LAYERS", "ATTENTION", "attention_layout", "attention_unavailable", "check_applies", "Cost", "GAP_IDENTICAL", "GRADIENT", "GRADIENT8", "KPCA_KERNELS", "LAST_BLOCKS", "LAYER", "MethodSpec", "MethodsArg",
           "OWN_PASS", "OptionSpec", "PERTURBATION", "estimate_cost", "get_method", "list_methods", "method_specs", "methods_for",
           "register_method", "resolve_options"]
