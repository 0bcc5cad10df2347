"""What each map depends on is declared once, by the method registry (`MethodSpec.reads` and
`uses_target`), and every caption of a map states exactly that: the target layer only for the
methods that read it, the target only for the methods that are not class-agnostic."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from xai_core import Explanation
from xai_core.methods import (ACTIVATION, ALL_BLOCKS, ALL_LAYERS, ATTENTION, GRADIENT, LAST_BLOCKS, LAYER, OWN_PASS,
                              PERTURBATION, MethodSpec, get_method, list_methods)
from xai_core.report.pictures import cam_caption

LAYERS = ("features.6.0",)


def explanation(method: str, options: dict | None = None) -> Explanation:
    """A made-up explanation of one map, for the caption alone."""
    return Explanation(maps={method: np.zeros((8, 8), np.float32)}, target=281, target_label="tabby",
                       target_probability=0.5, layers=LAYERS, model="m", image=np.zeros((8, 8, 3), np.uint8),
                       timings={}, notes=(), options={"methods": options or {}})


@pytest.mark.parametrize("method", list_methods())
def test_every_method_declares_what_its_map_depends_on(method):
    spec = get_method(method)
    assert spec.reads in (LAYER, ALL_LAYERS, ALL_BLOCKS, LAST_BLOCKS) and isinstance(spec.uses_target, bool)
    # the declaration agrees with the kind: attention methods read blocks, never the target layer;
    # activation methods read the layer, never the target; gradient and perturbation methods both
    if spec.kind == ATTENTION:
        assert spec.reads in (ALL_BLOCKS, LAST_BLOCKS)
    elif spec.kind == ACTIVATION:
        assert spec.uses_layer and not spec.uses_target
    elif spec.kind in (GRADIENT, PERTURBATION):
        assert spec.uses_layer and spec.uses_target
    else:
        assert spec.kind == OWN_PASS and spec.reads == ALL_LAYERS  # FullGrad: every bias gradient
    # and with what the method's summary tells a person
    assert ("class-agnostic" in spec.summary) == (not spec.uses_target)


@pytest.mark.parametrize("method", list_methods())
def test_every_caption_follows_the_declaration(method):
    spec = get_method(method)
    title, line = cam_caption(explanation(method), method)
    assert title == spec.title
    assert ("features.6.0" in line) == spec.uses_layer and ("layer" in line) == (spec.reads in (LAYER, ALL_LAYERS))
    assert ("tabby" in line) == spec.uses_target and ("class-agnostic" in line) == (not spec.uses_target)
    assert ("blocks" in line) == (spec.reads in (ALL_BLOCKS, LAST_BLOCKS))


@pytest.mark.parametrize("method,line", [
    ("gradcam", "layer features.6.0 · target tabby (50.0%)"),
    ("scorecam", "layer features.6.0 · target tabby (50.0%)"),
    ("eigencam", "layer features.6.0 · class-agnostic"),
    ("kpcacam", "layer features.6.0 · class-agnostic"),
    ("fullgrad", "all layers · target tabby (50.0%)"),
    ("legrad", "last 4 blocks · target tabby (50.0%)"),
    ("rollout", "all blocks · class-agnostic"),
    ("relevance", "all blocks · target tabby (50.0%)"),
])
def test_the_captions_say_exactly_what_the_map_depends_on(method, line):
    assert cam_caption(explanation(method), method) == [get_method(method).title, line]


def test_legrads_caption_counts_the_blocks_it_read():
    """LeGrad averages its `blocks` option's last blocks, all of them when the model has fewer."""
    assert cam_caption(explanation("legrad", {"legrad": {"blocks": 2}}), "legrad")[1].startswith("last 2 blocks ·")
    assert cam_caption(explanation("legrad", {"legrad": {"blocks": 1}}), "legrad")[1].startswith("last block ·")
    assert cam_caption(explanation("legrad"), "legrad", model_blocks=3)[1].startswith("last 3 blocks ·")
    assert cam_caption(explanation("legrad"), "legrad", model_blocks=12)[1].startswith("last 4 blocks ·")


def test_a_method_cannot_be_registered_without_saying_what_it_depends_on():
    spec = get_method("gradcam")
    fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(MethodSpec)}
    for missing in ("reads", "uses_target"):
        with pytest.raises(TypeError):
            MethodSpec(**{k: v for k, v in fields.items() if k != missing})
