"""The method registry: thin adapters mapping pytorch-grad-cam's method ids to its classes, with
the options each method declares and the one validator that checks them."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Union

from pytorch_grad_cam import (
    AblationCAM,
    EigenCAM,
    EigenGradCAM,
    FinerCAM,
    FullGrad,
    GradCAM,
    GradCAMElementWise,
    GradCAMPlusPlus,
    HiResCAM,
    KPCA_CAM,
    LayerCAM,
    ScoreCAM,
    ShapleyCAM,
    XGradCAM,
)

from .._names import split_names
from .._registry import Registry
from ..models import ModelHandle
from .attention import HEAD_FUSIONS, AttentionRollout, GradientRelevance, LeGrad
from .attention_capture import attention_layout
from .cam_classes import BatchedScoreCAM, FastEigenCAM, FastEigenGradCAM, HeadAblationCAM, ReshapingShapleyCAM
from ..errors import InvalidOptionError

#: What a method needs from the shared pass.
GRADIENT, ACTIVATION, PERTURBATION, OWN_PASS = "gradient", "activation", "perturbation", "own pass"
#: Methods made for vision transformers, computed from the attention the shared forward recorded.
ATTENTION = "attention"

#: What a map is computed from (`MethodSpec.reads`): the chosen target layer(s), every layer of the
#: network (FullGrad's bias gradients), the attention of all the transformer's blocks, or of its
#: last `blocks` blocks (LeGrad's option).
LAYER, ALL_LAYERS, ALL_BLOCKS, LAST_BLOCKS = "layer", "all layers", "all blocks", "last blocks"

#: The eight CAMs one `explain` computes from one forward and one backward pass, their formulas on
#: the model's device (`device_cams`).
GRADIENT8 = ("gradcam", "hirescam", "gradcam++", "xgradcam", "layercam", "eigencam", "eigengradcam",
             "gradcamelementwise")
#: Maps that are equal by construction when the target layer's head is global-average-pool + linear:
#: the gradient is then the same at every location, so HiResCAM's element-wise product equals
#: Grad-CAM's channel weighting, and XGrad-CAM's normalised weights reduce to the same gradient.
GAP_IDENTICAL = ("gradcam", "hirescam", "xgradcam")

#: scikit-learn KernelPCA kernels that pytorch-grad-cam's KPCA_CAM can use ("precomputed" needs a
#: kernel matrix instead of activations, so it is left out).
KPCA_KERNELS = ("linear", "poly", "rbf", "sigmoid", "cosine")


@dataclass(frozen=True)
class OptionSpec:
    """One user option of a method: a keyword argument of its CAM class's constructor."""

    name: str
    type: type  # int, float, str or bool
    default: Any
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    choices: tuple = ()
    help: str = ""
    #: None is a valid value (e.g. KPCA's gamma: scikit-learn then picks 1 / n_features).
    nullable: bool = False
    #: The minimum itself is out of range (gamma > 0).
    exclusive_minimum: bool = False

    def describe(self) -> str:
        """E.g. "top_k (int >= 1, default 64)"."""
        if self.choices:
            allowed = ", ".join(map(str, self.choices[:-1])) + f" or {self.choices[-1]}"
        elif self.minimum is not None and self.maximum is not None:
            allowed = f"{self.type.__name__} from {self.minimum:g} to {self.maximum:g}"
        elif self.minimum is not None:
            allowed = f"{self.type.__name__} {'>' if self.exclusive_minimum else '>='} {self.minimum:g}"
        else:
            allowed = self.type.__name__ + (f" <= {self.maximum:g}" if self.maximum is not None else "")
        return f"{self.name} ({allowed}{' or None' if self.nullable else ''}, default {self.default})"

    def check(self, value: Any) -> tuple[Any, Optional[str]]:
        """(the value as `type`, None), or (None, why it is not valid)."""
        if value is None:
            return (None, None) if self.nullable else (None, "must not be None")
        if self.type is bool:
            ok = isinstance(value, bool)
        elif self.type is int:
            ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        elif self.type is float:
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        else:
            ok = isinstance(value, self.type)
        if not ok:
            kind = {int: "an int", float: "a finite float"}.get(self.type, f"a {self.type.__name__}")
            return None, f"must be {kind}, not {value!r}"
        typed = self.type(value)
        low = self.minimum is not None and (typed <= self.minimum if self.exclusive_minimum else typed < self.minimum)
        high = self.maximum is not None and typed > self.maximum
        if low or high or (self.choices and typed not in self.choices):
            return None, f"cannot be {value!r}"
        return typed, None


@dataclass(frozen=True)
class MethodSpec:
    """One CAM method. `cam_class` is the class whose formulas compute the map (pytorch-grad-cam's,
    or one of ours in `cam_classes` that changes how, never what, it computes); `library_class` is
    pytorch-grad-cam's original class, the reference our maps must equal (None: not in the library)."""

    id: str
    title: str
    cam_class: type
    library_class: Optional[type]
    kind: str
    paper: str
    summary: str
    #: Which target's gradients the method weights with: None (no gradients), "logit"
    #: (ClassifierOutputTarget), "finer" (FinerWeightedTarget) or "rest" (ClassifierOutputReST,
    #: with a second-order graph for the Hessian-vector product).
    grads: Optional[str] = None
    #: The options a user may set, passed to `cam_class`'s constructor (nothing else can be set).
    options: tuple[OptionSpec, ...] = ()
    #: Cost beyond the shared pass, in forward-pass equivalents of the full network (measured on
    #: ResNet-50, 2-core CPU: `python -m xai_core bench`).
    extra_passes: float = 0.0
    #: Cost per channel: "network" (a full forward per target-layer channel), "head" (a pass through
    #: the layers after the target layer per channel), "bias" (a map rescaled per bias channel of the
    #: whole network: FullGrad), or None.
    per_channel: Optional[str] = None
    #: What the map depends on, declared by every method (no default: a new method must say), and
    #: what every caption states (`depends_on`): `reads` is LAYER, ALL_LAYERS, ALL_BLOCKS or
    #: LAST_BLOCKS; `uses_target` is False for a class-agnostic map (the same whatever the target).
    reads: str = field(kw_only=True)
    uses_target: bool = field(kw_only=True)

    @property
    def uses_layer(self) -> bool:
        """True when the map depends on the chosen target layer(s)."""
        return self.reads == LAYER

    def depends_on(self, layers: Sequence[str], target: str, options: Optional[Mapping] = None,
                   model_blocks: Optional[int] = None) -> str:
        """What this method's map depends on, as a caption line: e.g. "layer layer4 · target tabby",
        "layer layer4 · class-agnostic", "last 4 blocks · target tabby", "all blocks · class-agnostic".
        `layers`: the target layer(s) of the explanation; `target`: the target as it should read;
        `options`: this method's options (LeGrad's `blocks`, default the declared one);
        `model_blocks`: how many blocks the model has (caps the last blocks), None if unknown."""
        if self.reads == LAYER:
            source = f"layer {', '.join(layers)}"
        elif self.reads == LAST_BLOCKS:
            count = int({**self.defaults, **(options or {})}["blocks"])
            if model_blocks is not None:
                count = min(count, model_blocks)
            source = "last block" if count == 1 else f"last {count} blocks"
        else:
            source = self.reads
        return f"{source} · {f'target {target}' if self.uses_target else 'class-agnostic'}"

    @property
    def defaults(self) -> dict[str, Any]:
        """{option name: default} of the declared options."""
        return {o.name: o.default for o in self.options}

    @property
    def shares_pass(self) -> bool:
        """True when the method is computed from the one shared forward/backward pass."""
        return self.kind != OWN_PASS


#: Methods argument: one id, a comma list or a sequence of ids.
MethodsArg = Union[str, Sequence[str]]

_METHODS: Registry[MethodSpec] = Registry("method")


def register_method(spec: MethodSpec) -> MethodSpec:
    """Add `spec` to the registry; duplicate ids are rejected."""
    return _METHODS.register(spec.id, spec)


def list_methods(kind: Optional[str] = None) -> list[str]:
    """Registered method ids (in pytorch-grad-cam's `cam.py` spelling), optionally of one kind."""
    return [m for m in _METHODS.names() if kind is None or _METHODS.get(m).kind == kind]


def methods_for(handle: ModelHandle) -> list[str]:
    """The method ids that apply to `handle`'s model: all of them, less the attention methods where
    `attention_unavailable` gives a reason (a CNN, Swin's windows, a probe that failed): what a method
    picker offers. Never raises for the model's sake."""
    applies = attention_unavailable(handle) is None
    return [m for m in list_methods() if applies or _METHODS.get(m).kind != ATTENTION]


def attention_unavailable(handle: ModelHandle) -> Optional[str]:
    """Why the attention methods are not offered for `handle`'s model (one sentence about the model,
    without the final period), or None when they are. Never raises: any failure of the probe is the
    reason."""
    try:
        return attention_layout(handle).reason
    except Exception as err:  # noqa: BLE001 - the picker must open whatever the model does
        first = (str(err).splitlines() or [""])[0].strip().rstrip(".") or type(err).__name__
        return f"probing {handle.title}'s attention failed ({first})"


def get_method(method_id: str) -> MethodSpec:
    """The `MethodSpec` for `method_id`; raises `UnknownNameError`."""
    return _METHODS.get(method_id)


def method_specs(methods: MethodsArg) -> list[MethodSpec]:
    """The `MethodSpec`s of a method id, a comma list or a sequence of ids, without repeats.
    Raises `UnknownNameError`, and `InvalidOptionError` when no method is named."""
    specs = [get_method(method_id) for method_id in split_names(methods, lower=True)]
    if not specs:
        raise InvalidOptionError("Choose at least one method.")
    return specs


def resolve_options(method_ids: Sequence[str], options: Optional[Mapping] = None) -> dict[str, dict[str, Any]]:
    """The options of every method in `method_ids` that declares any, with the values of `options`
    ({method id: {option: value}}) checked against the declarations and the defaults filled in.
    Entries for registered methods outside `method_ids` are checked too, then left out (so one
    options dict serves calls with fewer methods). Raises `InvalidOptionError` (one sentence that
    lists the valid options)."""
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise InvalidOptionError(f"options must map method ids to option dicts, e.g. "
                                 f"{{'fastscorecam': {{'top_k': 32}}}}, not {options!r}.")
    given: dict[str, dict[str, Any]] = {}
    for key, values in options.items():
        method_id = str(key).strip().lower()
        if method_id not in _METHODS.names():
            raise InvalidOptionError(f"options name {key!r}, which is not a method; methods with options are: "
                                     f"{_methods_with_options()}.")
        given[method_id] = _check(get_method(method_id), values)
    resolved = {}
    for method_id in method_ids:
        spec = get_method(method_id)
        if spec.options:
            resolved[spec.id] = spec.defaults | given.get(spec.id, {})
    return resolved


def _check(spec: MethodSpec, values: Any) -> dict[str, Any]:
    valid = ("its options are: " + ", ".join(o.describe() for o in spec.options)) if spec.options \
        else "it takes no options"
    if not isinstance(values, Mapping):
        raise InvalidOptionError(f"options for {spec.id} must be a dict of option values, not {values!r}; {valid}.")
    declared = {o.name: o for o in spec.options}
    checked = {}
    for name, value in values.items():
        if name not in declared:
            raise InvalidOptionError(f"{spec.id} has no option {name!r}; {valid}.")
        checked[name], why = declared[name].check(value)
        if why:
            raise InvalidOptionError(f"{spec.id} option {name} {why}; {valid}.")
    return checked


def _methods_with_options() -> str:
    return ", ".join(f"{s.id} ({', '.join(o.name for o in s.options)})"
                     for s in map(get_method, list_methods()) if s.options)


_ARXIV = "https://arxiv.org/abs/"
_BLOCKS = OptionSpec("blocks", int, 4, minimum=1,
                     help="the last blocks whose maps are averaged (more than the model has: all)")
_FUSION = OptionSpec("head_fusion", str, "mean", choices=HEAD_FUSIONS, help="how each block's heads are fused")
_DISCARD = OptionSpec("discard_ratio", float, 0.0, minimum=0.0, maximum=0.99,
                      help="share of each block's weakest fused attention weights dropped (vit-explain uses 0.9)")
_TOP_K = OptionSpec("top_k", int, 64, minimum=1,
                    help="channels scored: the ones with the highest activation variance (more than the layer has: all)")
_KERNEL = OptionSpec("kernel", str, "sigmoid", choices=KPCA_KERNELS, help="scikit-learn KernelPCA kernel")
_GAMMA = OptionSpec("gamma", float, None, minimum=0.0, exclusive_minimum=True, nullable=True,
                    help="kernel coefficient of rbf, poly and sigmoid (None: 1 / channels)")
for _spec in (
    MethodSpec("gradcam", "Grad-CAM", GradCAM, GradCAM, GRADIENT, _ARXIV + "1610.02391",
               "Weights each channel by its average gradient.", grads="logit", reads=LAYER, uses_target=True),
    MethodSpec("hirescam", "HiResCAM", HiResCAM, HiResCAM, GRADIENT, _ARXIV + "2011.08891",
               "Multiplies activations by gradients element-wise, so the map shows what the score used.", grads="logit",
               reads=LAYER, uses_target=True),
    MethodSpec("gradcam++", "Grad-CAM++", GradCAMPlusPlus, GradCAMPlusPlus, GRADIENT, _ARXIV + "1710.11063",
               "Grad-CAM with higher-order gradient weights, better for several instances.", grads="logit",
               reads=LAYER, uses_target=True),
    MethodSpec("xgradcam", "XGrad-CAM", XGradCAM, XGradCAM, GRADIENT, _ARXIV + "2008.02312",
               "Grad-CAM with gradients weighted by the normalised activations.", grads="logit",
               reads=LAYER, uses_target=True),
    MethodSpec("layercam", "LayerCAM", LayerCAM, LayerCAM, GRADIENT, "https://ieeexplore.ieee.org/document/9462463",
               "Weights every location by its positive gradient; sharper at early layers.", grads="logit",
               reads=LAYER, uses_target=True),
    MethodSpec("eigencam", "EigenCAM", FastEigenCAM, EigenCAM, ACTIVATION, _ARXIV + "2008.00299",
               "First principal component of the activations; class-agnostic.", grads=None,
               reads=LAYER, uses_target=False),
    MethodSpec("eigengradcam", "EigenGrad-CAM", FastEigenGradCAM, EigenGradCAM, GRADIENT, _ARXIV + "2008.00299",
               "First principal component of activations x gradients.", grads="logit", reads=LAYER, uses_target=True),
    MethodSpec("gradcamelementwise", "Grad-CAM element-wise", GradCAMElementWise, GradCAMElementWise, GRADIENT,
               _ARXIV + "2011.08891", "Like HiResCAM, with a ReLU on each activation x gradient term.", grads="logit",
               reads=LAYER, uses_target=True),
    MethodSpec("kpcacam", "KPCA-CAM", KPCA_CAM, KPCA_CAM, ACTIVATION, _ARXIV + "2410.00267",
               "Kernel-PCA projection of the activations; class-agnostic.", grads=None,
               options=(_KERNEL, _GAMMA), extra_passes=0.1, reads=LAYER, uses_target=False),
    MethodSpec("scorecam", "Score-CAM", BatchedScoreCAM, ScoreCAM, PERTURBATION, _ARXIV + "1910.01279",
               "Weights each channel by the score of the image masked with it (one forward pass per channel).",
               grads=None, per_channel="network", reads=LAYER, uses_target=True),
    MethodSpec("ablationcam", "Ablation-CAM", HeadAblationCAM, AblationCAM, PERTURBATION,
               "https://openaccess.thecvf.com/content_WACV_2020/papers/Desai_Ablation-CAM_Visual_Explanations_for_Deep_Convolutional_Network_via_Gradient-free_Localization_WACV_2020_paper.pdf",
               "Weights each channel by the score drop when it is removed.", grads=None, per_channel="head",
               reads=LAYER, uses_target=True),
    MethodSpec("fullgrad", "FullGrad", FullGrad, FullGrad, OWN_PASS, _ARXIV + "1905.00780",
               "Input gradients plus every bias gradient in the network (ignores the target layer).", grads=None,
               extra_passes=3.0, per_channel="bias", reads=ALL_LAYERS, uses_target=True),
    MethodSpec("shapleycam", "ShapleyCAM", ReshapingShapleyCAM, ShapleyCAM, GRADIENT, _ARXIV + "2501.06261",
               "Gradient minus half the Hessian-vector product, on the ReST target (logit minus cross-entropy).",
               grads="rest", extra_passes=0.5, reads=LAYER, uses_target=True),
    MethodSpec("finercam", "Finer-CAM", GradCAM, FinerCAM, GRADIENT, _ARXIV + "2501.11309",
               "Grad-CAM of the target's score minus the 3 most similar classes': what tells them apart.",
               grads="finer", extra_passes=0.1, reads=LAYER, uses_target=True),
    MethodSpec("fastscorecam", "Faster Score-CAM", BatchedScoreCAM, None, PERTURBATION, _ARXIV + "2010.00672",
               "Score-CAM on only the channels with the highest activation variance (64 by default).", grads=None,
               options=(_TOP_K,), per_channel="network", reads=LAYER, uses_target=True),
    MethodSpec("legrad", "LeGrad", LeGrad, None, ATTENTION, _ARXIV + "2404.03214",
               "How much each patch's attention moves each of the last blocks' own class score (positive "
               "gradients with respect to attention, averaged over heads and blocks).", grads=None,
               options=(_BLOCKS,), extra_passes=0.3, reads=LAST_BLOCKS, uses_target=True),
    MethodSpec("rollout", "Attention rollout", AttentionRollout, None, ATTENTION, _ARXIV + "2005.00928",
               "Where the class token's information comes from: attention multiplied through all blocks, with "
               "the residual path; class-agnostic.", grads=None, options=(_FUSION, _DISCARD),
               reads=ALL_BLOCKS, uses_target=False),
    MethodSpec("relevance", "Gradient-weighted relevance", GradientRelevance, None, ATTENTION, _ARXIV + "2103.15679",
               "Chefer et al.'s relevance: attention weighted by the target's gradient, positive parts kept, "
               "propagated through all blocks.", grads=None, extra_passes=1.0, reads=ALL_BLOCKS, uses_target=True),
):
    register_method(_spec)
