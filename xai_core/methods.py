"""The method registry: thin adapters mapping pytorch-grad-cam's method ids to its classes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from pytorch_grad_cam import (
    FullGrad,
    GradCAM,
    GradCAMElementWise,
    GradCAMPlusPlus,
    HiResCAM,
    KPCA_CAM,
    LayerCAM,
    ShapleyCAM,
    XGradCAM,
)

from ._registry import Registry
from .cam_classes import BatchedScoreCAM, FastEigenCAM, FastEigenGradCAM, HeadAblationCAM

#: What a method needs from the shared pass.
GRADIENT, ACTIVATION, PERTURBATION, OWN_PASS = "gradient", "activation", "perturbation", "own pass"


@dataclass(frozen=True)
class MethodSpec:
    """One CAM method. `cam_class` is pytorch-grad-cam's class whose formulas compute the map."""

    id: str
    title: str
    cam_class: type
    kind: str
    paper: str
    summary: str
    #: Which target's gradients the method weights with: None (no gradients), "logit"
    #: (ClassifierOutputTarget), "finer" (FinerWeightedTarget) or "rest" (ClassifierOutputReST,
    #: with a second-order graph for the Hessian-vector product).
    grads: Optional[str] = None
    #: Attributes pytorch-grad-cam's constructor would set (its defaults).
    attrs: dict[str, Any] = field(default_factory=dict)
    #: Cost beyond the shared pass, in forward-pass equivalents of the full network (measured on
    #: ResNet-50, 2-core CPU: `python -m xai_core bench`).
    extra_passes: float = 0.0
    #: Cost per channel: "network" (a full forward per target-layer channel), "head" (a pass through
    #: the layers after the target layer per channel), "bias" (a map rescaled per bias channel of the
    #: whole network: FullGrad), or None.
    per_channel: Optional[str] = None

    @property
    def shares_pass(self) -> bool:
        """True when the method is computed from the one shared forward/backward pass."""
        return self.kind != OWN_PASS


_METHODS: Registry[MethodSpec] = Registry("method")


def register_method(spec: MethodSpec) -> MethodSpec:
    """Add `spec` to the registry; duplicate ids are rejected."""
    return _METHODS.register(spec.id, spec)


def list_methods(kind: Optional[str] = None) -> list[str]:
    """Registered method ids (in pytorch-grad-cam's `cam.py` spelling), optionally of one kind."""
    return [m for m in _METHODS.names() if kind is None or _METHODS.get(m).kind == kind]


def get_method(method_id: str) -> MethodSpec:
    """The `MethodSpec` for `method_id`; raises `UnknownNameError`."""
    return _METHODS.get(method_id)


_ARXIV = "https://arxiv.org/abs/"
for _spec in (
    MethodSpec("gradcam", "Grad-CAM", GradCAM, GRADIENT, _ARXIV + "1610.02391",
               "Weights each channel by its average gradient.", grads="logit"),
    MethodSpec("hirescam", "HiResCAM", HiResCAM, GRADIENT, _ARXIV + "2011.08891",
               "Multiplies activations by gradients element-wise, so the map shows what the score used.", grads="logit"),
    MethodSpec("gradcam++", "Grad-CAM++", GradCAMPlusPlus, GRADIENT, _ARXIV + "1710.11063",
               "Grad-CAM with higher-order gradient weights, better for several instances.", grads="logit"),
    MethodSpec("xgradcam", "XGrad-CAM", XGradCAM, GRADIENT, _ARXIV + "2008.02312",
               "Grad-CAM with gradients weighted by the normalised activations.", grads="logit"),
    MethodSpec("layercam", "LayerCAM", LayerCAM, GRADIENT, "https://ieeexplore.ieee.org/document/9462463",
               "Weights every location by its positive gradient; sharper at early layers.", grads="logit"),
    MethodSpec("eigencam", "EigenCAM", FastEigenCAM, ACTIVATION, _ARXIV + "2008.00299",
               "First principal component of the activations; class-agnostic.", grads=None),
    MethodSpec("eigengradcam", "EigenGrad-CAM", FastEigenGradCAM, GRADIENT, _ARXIV + "2008.00299",
               "First principal component of activations x gradients.", grads="logit"),
    MethodSpec("gradcamelementwise", "Grad-CAM element-wise", GradCAMElementWise, GRADIENT, _ARXIV + "2011.08891",
               "Like HiResCAM, with a ReLU on each activation x gradient term.", grads="logit"),
    MethodSpec("kpcacam", "KPCA-CAM", KPCA_CAM, ACTIVATION, _ARXIV + "2410.00267",
               "Kernel-PCA projection of the activations; class-agnostic.", grads=None,
               attrs={"kernel": "sigmoid", "gamma": None}, extra_passes=0.1),
    MethodSpec("scorecam", "Score-CAM", BatchedScoreCAM, PERTURBATION, _ARXIV + "1910.01279",
               "Weights each channel by the score of the image masked with it (one forward pass per channel).",
               grads=None, per_channel="network"),
    MethodSpec("ablationcam", "Ablation-CAM", HeadAblationCAM, PERTURBATION,
               "https://openaccess.thecvf.com/content_WACV_2020/papers/Desai_Ablation-CAM_Visual_Explanations_for_Deep_Convolutional_Network_via_Gradient-free_Localization_WACV_2020_paper.pdf",
               "Weights each channel by the score drop when it is removed.", grads=None, per_channel="head"),
    MethodSpec("fullgrad", "FullGrad", FullGrad, OWN_PASS, _ARXIV + "1905.00780",
               "Input gradients plus every bias gradient in the network (ignores the target layer).", grads=None,
               extra_passes=3.0, per_channel="bias"),
    MethodSpec("shapleycam", "ShapleyCAM", ShapleyCAM, GRADIENT, _ARXIV + "2501.06261",
               "Gradient minus half the Hessian-vector product, on the ReST target (logit minus cross-entropy).",
               grads="rest", extra_passes=0.5),
    MethodSpec("finercam", "Finer-CAM", GradCAM, GRADIENT, _ARXIV + "2501.11309",
               "Grad-CAM of the target's score minus the 3 most similar classes': what tells them apart.",
               grads="finer", extra_passes=0.1),
    MethodSpec("fastscorecam", "Faster Score-CAM", BatchedScoreCAM, PERTURBATION, _ARXIV + "2010.00672",
               "Score-CAM on only the 64 channels with the highest activation variance.", grads=None,
               attrs={"top_k": 64}, per_channel="network"),
):
    register_method(_spec)
