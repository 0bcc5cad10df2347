"""`compare_models` and `compare_models_batch`: each model's shared pass (`explain` /
`explain_batch`), the class matched by label, both maps brought onto the common grid and compared."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from ..errors import Cancelled, InvalidImageError, InvalidOptionError
from ..explain import TOP_K, Explanation, explain, explain_batch, images_per_batch
from ..images import ImageSource, load_image
from ..methods import MethodsArg, attention_unavailable, method_specs, methods_for
from ..models import Geometry, LayerArg, ModelHandle, guard
from ..predict import Prediction
from .agreement import difference, spearman, top_iou
from .comparison import Comparison, MethodComparison
from .grid import Grid, common_grid, footprint, image_on_grid, on_grid
from .targets import TargetArg, in_b, is_own, resolve

Progress = Optional[Callable[[str, int, int], Optional[bool]]]


def compare_models(handle_a: ModelHandle, handle_b: ModelHandle, image: ImageSource,
                   methods: MethodsArg = ("gradcam",), target: TargetArg = None, *, layer_a: LayerArg = None,
                   layer_b: LayerArg = None, options: Optional[dict] = None, progress: Progress = None) -> Comparison:
    """Ask two models the same question about `image`: one `explain` per model (its shared pass),
    for the same class (`target`: None = model A's top-1, an int = model A's index, a str = a label
    both know, matched by label in B; "own" = each model's top-1), then each method's maps compared
    on the part of the original image both models see (`Comparison`). A method that applies to one
    model only runs on that one (the other map None, with a note). `progress(stage, done, total)`
    gets each `explain`'s calls, the stage suffixed " (model A)" / " (model B)"; False cancels.
    Raises `InvalidImageError`, `UnknownNameError`, `InvalidOptionError`, `Cancelled`."""
    ids_a, ids_b = _methods(handle_a, handle_b, methods)
    picture = load_image(image)
    target_a, target_b = resolve(handle_a, handle_b, target)
    explanation_a = _explain(handle_a, picture, ids_a, target_a, layer_a, options, _suffixed(progress, "A"))
    if target_b is None and not is_own(target):
        target_b = in_b(handle_a, handle_b, explanation_a.target)
    explanation_b = _explain(handle_b, picture, ids_b, target_b, layer_b, options, _suffixed(progress, "B"))
    return _compared(handle_a, handle_b, method_specs(methods), explanation_a, explanation_b, picture,
                     _target_notes(target, explanation_a, explanation_b))


def compare_models_batch(handle_a: ModelHandle, handle_b: ModelHandle, images: Sequence[ImageSource],
                         methods: MethodsArg = ("gradcam",), targets=None, batch_size: Optional[int] = None,
                         progress: Progress = None, *, layer_a: LayerArg = None, layer_b: LayerArg = None,
                         options: Optional[dict] = None) -> list[Comparison]:
    """`compare_models` for many images, one `Comparison` per image in order, each equal to what
    `compare_models` gives that image: `batch_size` images at a time (default as `explain_batch`'s
    for model A) are decoded once and go through `explain_batch` on each model. `targets`: None,
    "own" or one target for every image, or a sequence with one per image (each as
    `compare_models`' `target`). `progress("images", done, total)` after each batch; False cancels.
    Raises `InvalidImageError` (naming the image), `UnknownNameError`, `InvalidOptionError`, `Cancelled`."""
    ids_a, ids_b = _methods(handle_a, handle_b, methods)
    specs = method_specs(methods)
    images = list(images)
    chosen = _per_image(targets, len(images))
    resolved = [resolve(handle_a, handle_b, t) for t in chosen]
    size = images_per_batch(handle_a, batch_size)
    results: list[Comparison] = []
    for first in range(0, len(images), size):
        end = min(first + size, len(images))
        pictures = [_decoded(images, i) for i in range(first, end)]
        part = resolved[first:end]
        explained_a = _explain_many(handle_a, pictures, ids_a, [r[0] for r in part], layer_a, options, batch_size)
        targets_b = [tb if tb is not None or is_own(t) else in_b(handle_a, handle_b, ea.target)
                     for (_, tb), t, ea in zip(part, chosen[first:end], explained_a)]
        explained_b = _explain_many(handle_b, pictures, ids_b, targets_b, layer_b, options, batch_size)
        for picture, t, ea, eb in zip(pictures, chosen[first:end], explained_a, explained_b):
            results.append(_compared(handle_a, handle_b, specs, ea, eb, picture, _target_notes(t, ea, eb)))
        if progress is not None and progress("images", len(results), len(images)) is False:
            raise Cancelled("The computation was cancelled.")
    return results


def _methods(handle_a: ModelHandle, handle_b: ModelHandle, methods: MethodsArg) -> tuple[list, list]:
    """The method ids each model runs (those `methods_for` offers it). Raises
    `InvalidOptionError` for a method that applies to neither."""
    specs = method_specs(methods)
    offered_a, offered_b = set(methods_for(handle_a)), set(methods_for(handle_b))
    ids_a = [s.id for s in specs if s.id in offered_a]
    ids_b = [s.id for s in specs if s.id in offered_b]
    for spec in specs:
        if spec.id not in offered_a and spec.id not in offered_b:
            raise InvalidOptionError(f"{spec.title} applies to neither model: {attention_unavailable(handle_a)}; "
                                     f"{attention_unavailable(handle_b)}.")
    return ids_a, ids_b


def _one_side_note(spec, handle_a: ModelHandle, handle_b: ModelHandle, on_a: bool) -> str:
    missing = handle_b if on_a else handle_a
    return (f"{spec.title} ran on model {'A' if on_a else 'B'} only: it does not apply to model "
            f"{'B' if on_a else 'A'} ({attention_unavailable(missing) or 'not offered for it'}).")


def _explain(handle: ModelHandle, picture: Image.Image, ids: list, target, layer, options, progress) -> Explanation:
    if not ids:
        return _predicted(handle, [picture], [target])[0]
    return explain(handle, picture, ids, target, layer, options=options, progress=progress)


def _explain_many(handle: ModelHandle, pictures: list, ids: list, targets: list, layer, options,
                  batch_size: Optional[int]) -> list[Explanation]:
    if not ids:
        return _predicted(handle, pictures, targets)
    return explain_batch(handle, pictures, ids, targets, layer, batch_size=batch_size, options=options)


def _predicted(handle: ModelHandle, pictures: list, targets: list) -> list[Explanation]:
    """Explanations without maps (no requested method applies to this model): its predictions, from
    the one forward pass they need."""
    prepared = handle.prepare(pictures)
    with guard(handle), torch.inference_mode():
        probabilities = handle.module(prepared.x).float().softmax(-1).cpu()
    best = probabilities.topk(min(TOP_K, probabilities.shape[-1]), dim=-1)
    pixels = prepared.pixels.cpu().numpy()
    results = []
    for i, target in enumerate(targets):
        chosen = int(best.indices[i, 0]) if target is None else int(target)
        top = tuple(Prediction(int(k), handle.categories[int(k)], float(p))
                    for k, p in zip(best.indices[i], best.values[i]))
        results.append(Explanation(maps={}, target=chosen, target_label=handle.categories[chosen],
                                   target_probability=float(probabilities[i, chosen]), layers=(), model=handle.name,
                                   image=pixels[i], timings={}, notes=(), options={}, top=top,
                                   geometry=prepared.geometries[i] if prepared.geometries else None))
    return results


def _compared(handle_a: ModelHandle, handle_b: ModelHandle, specs: list, explanation_a: Explanation,
              explanation_b: Explanation, picture: Image.Image, notes: list) -> Comparison:
    geometry_a, geometry_b = _geometry(explanation_a), _geometry(explanation_b)
    same = geometry_a == geometry_b
    grid: Optional[Grid] = None if same else common_grid(geometry_a, geometry_b)
    notes = list(notes)
    if not same:
        notes.append(_grid_note(explanation_a, explanation_b, grid))
    if handle_a.device != handle_b.device:
        notes.append(f"Model A runs on {handle_a.device} and model B on {handle_b.device}; their maps are compared "
                     "as numpy arrays.")
    compared = {}
    for spec in specs:
        map_a = _on(explanation_a.maps.get(spec.id), geometry_a, grid)
        map_b = _on(explanation_b.maps.get(spec.id), geometry_b, grid)
        if map_a is None or map_b is None:
            note = _one_side_note(spec, handle_a, handle_b, on_a=map_a is not None)
            notes.append(note)
            compared[spec.id] = MethodComparison(spec.id, spec.title, map_a, map_b, None, None, None, note)
        else:
            compared[spec.id] = MethodComparison(spec.id, spec.title, map_a, map_b, difference(map_a, map_b),
                                                 spearman(map_a, map_b), top_iou(map_a, map_b))
    return Comparison(
        model_a=handle_a.name, model_b=handle_b.name, top_a=tuple(explanation_a.top), top_b=tuple(explanation_b.top),
        target_label_a=explanation_a.target_label, target_label_b=explanation_b.target_label,
        target_a=explanation_a.target, target_b=explanation_b.target,
        probability_a=explanation_a.target_probability, probability_b=explanation_b.target_probability,
        image=explanation_a.image if grid is None else image_on_grid(picture, geometry_a, grid),
        methods=compared, explanation_a=explanation_a, explanation_b=explanation_b, notes=tuple(notes),
        same_geometry=same, region=footprint(geometry_a) if grid is None else grid.region)


def _geometry(explanation: Explanation) -> Geometry:
    if explanation.geometry is not None:
        return explanation.geometry
    return Geometry.identity((explanation.image.shape[1], explanation.image.shape[0]))


def _on(picture_map: Optional[np.ndarray], geometry: Geometry, grid: Optional[Grid]) -> Optional[np.ndarray]:
    if picture_map is None or grid is None:
        return picture_map
    return np.clip(on_grid(picture_map, geometry, grid), 0.0, 1.0)


def _grid_note(explanation_a: Explanation, explanation_b: Explanation, grid: Grid) -> str:
    (ha, wa), (hb, wb) = explanation_a.image.shape[:2], explanation_b.image.shape[:2]
    x0, y0, x1, y1 = grid.region
    h, w = grid.shape
    return (f"The models see the image differently ({wa} x {ha} and {wb} x {hb} pictures): the maps are compared "
            f"on the part both see, {x1 - x0:.0f} x {y1 - y0:.0f} pixels of the original, resampled onto one "
            f"{w} x {h} grid.")


def _target_notes(target: TargetArg, explanation_a: Explanation, explanation_b: Explanation) -> list[str]:
    if is_own(target):
        return [f"Each model explains its own top class (target='own'): model A {explanation_a.target_label!r}, "
                f"model B {explanation_b.target_label!r}."]
    if explanation_a.target != explanation_b.target:
        return [f"{explanation_a.target_label!r} is class {explanation_a.target} of model A and class "
                f"{explanation_b.target} of model B: the models are matched by label."]
    return []


def _suffixed(progress: Progress, side: str) -> Progress:
    return None if progress is None else (lambda stage, done, total: progress(f"{stage} (model {side})", done, total))


def _per_image(targets, count: int) -> list:
    if targets is None or isinstance(targets, (int, np.integer, str)):
        return [targets] * count
    targets = list(targets)
    if len(targets) != count:
        raise InvalidOptionError(f"Give one target per image ({count}), not {len(targets)}; or one target for all.")
    return targets


def _decoded(images: list, i: int) -> Image.Image:
    try:
        return load_image(images[i])
    except InvalidImageError as err:
        raise InvalidImageError(f"Image {i + 1} of {len(images)}: {err}") from None


__all__ = ["compare_models", "compare_models_batch"]
