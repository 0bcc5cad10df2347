"""`class_concepts`: what the model sees in a whole class (CRAFT-like): the activations of the
class's images at one layer factorised into concepts (NMF, as DFF on one image), each concept's
share of the class logit, what removing them does to the class probability, and where each is."""

from __future__ import annotations

import time
from typing import Callable, Optional, Sequence, Union

import numpy as np

from .._timing import elapsed, synchronize
from ..dataset import bootstrap_ci
from ..errors import InvalidOptionError
from ..explain import images_per_batch
from ..images import ImageSource
from ..models import ModelHandle
from .evidence import crops, labels
from .extract import Streamed, batches, fit_in_memory, streams
from .results import ClassConcepts, Concept
from .scoring import (exact_contributions, fidelity_summary, gradient_contributions, linear_layer, linear_votes,
                      removal_logits, removal_orders, removal_probabilities, softmax_at)

EXACT = "exact (linear head)"
FIRST_ORDER = "first-order estimate (gradient x coefficient)"
#: The most concepts one call factorises.
MAX_CONCEPTS = 64

TargetArg = Union[int, str, Sequence[Union[int, str]]]


def class_concepts(
    handle: ModelHandle,
    images: Sequence[ImageSource],
    target: TargetArg,
    n_concepts: int = 5,
    layer: Optional[str] = None,
    *,
    seed: int = 0,
    batch_size: Optional[int] = None,
    progress: Optional[Callable[[str, int, int], Optional[bool]]] = None,
    top_crops: int = 6,
    fidelity: bool = True,
) -> ClassConcepts:
    """The `n_concepts` concepts the model uses for class `target` across `images` (the caller's
    images of that class). `target`: an index or label, or a list of two (shared concepts: one
    factorisation, each image counted for the one of the two classes with the higher logit).
    Activations of `layer` (default: the model's) are stacked over all images and locations and
    factorised by scikit-learn NMF (on one image exactly pytorch-grad-cam's `dff`; many locations:
    MiniBatchNMF, streamed). Importance: exact on a global-average-pool + linear head, else a
    first-order estimate; `fidelity`: class probability as concepts are removed (by importance, and
    in a seeded random order). `progress(stage, done, total)` after each batch; False cancels.
    Raises `InvalidOptionError`, `UnknownNameError`, `InvalidImageError`, `Cancelled`."""
    synchronize(handle.device)
    started = time.perf_counter()
    name = handle.layer_name(layer)
    images = list(images)
    classes = _targets(handle, target)
    k, seed, top_crops = _checked(n_concepts, seed, top_crops, len(images))
    size = images_per_batch(handle, batch_size)
    first = _pass_one(handle, name, images, k, seed, size, progress)
    fit, logits = first["fit"], first["logits"]
    t_fit = elapsed(handle.device, started)
    assigned = np.argmax(logits[:, classes], axis=1)  # index into `classes` per image
    for i, c in enumerate(classes):
        if len(classes) > 1 and not np.any(assigned == i):
            other = handle.categories[classes[1 - i]]
            raise InvalidOptionError(f"None of the {len(images)} images scores {handle.categories[c]!r} above "
                                     f"{other!r}; give images of both classes.")
    image_classes = np.asarray(classes)[assigned]
    linear = linear_layer(handle, name)
    notes = list(first["notes"])
    if linear is not None:
        coefficients = fit.coefficients
        if coefficients is None:
            coefficients = np.concatenate([fit.transform(b.grid.cpu().numpy())
                                           for b in batches(handle, name, images, size, progress, "concepts")])
        votes, bias = linear_votes(linear, fit.directions)
        contributions = exact_contributions(coefficients, votes, image_classes)
        class_logits = logits[np.arange(len(images)), image_classes].astype(np.float64)
        residual = class_logits - bias[image_classes] - contributions.sum(axis=1)
        method = EXACT
    else:
        coefficients, contributions, class_logits = _gradient_pass(handle, name, images, fit, image_classes,
                                                                   size, progress)
        residual = class_logits - contributions.sum(axis=1)
        method = FIRST_ORDER
        notes.append(f"The head after {name} is not global average pooling + linear: importances are a "
                     "first-order estimate (gradient x coefficient), and the residual includes the head's bias.")
    order = np.argsort(-contributions.mean(axis=0), kind="stable")
    t_scores = elapsed(handle.device, started) - t_fit
    curves = {}
    if fidelity:
        curves = _fidelity(handle, name, images, fit, coefficients, logits, image_classes, order, seed, size,
                           progress, linear)
        if linear is not None:
            notes.append("The head is linear in the pooled activations, so removing a concept lowers every logit "
                         "by exactly its share: the tail was re-run in closed form.")
    t_fidelity = elapsed(handle.device, started) - t_fit - t_scores
    evidence = crops(handle, images, coefficients, top_crops, first["picture"])
    names = labels(handle, name, (fit.directions + fit.offset[None, :]).T, first["raw"], first["x"])
    concepts = []
    for i in range(k):
        overall = bootstrap_ci(contributions[:, i])
        by_class = {}
        for c in classes:
            entry = bootstrap_ci(contributions[image_classes == c, i])
            by_class[handle.categories[c]] = (entry["mean"], entry["low"], entry["high"])
        concepts.append(Concept(i, fit.directions[i], names[i], overall["mean"], overall["low"], overall["high"],
                                by_class, evidence[i] if evidence else [],
                                float(coefficients[:, i].mean(dtype=np.float64))))
    return ClassConcepts(
        concepts=tuple(concepts), targets=tuple(handle.categories[c] for c in classes), layer=name,
        model=handle.name, residual=float(residual.mean()), method=method, fidelity=curves, notes=tuple(notes),
        images=len(images), offset=fit.offset, coefficients=coefficients,
        image_targets=tuple(int(a) for a in assigned), contributions=contributions,
        logits=class_logits, residuals=residual,
        picture_size=first["picture"], solver=fit.solver, seed=seed,
        timings={"fit": t_fit, "nmf": fit.seconds() if fit.seconds is not None else first["nmf"], "scores": t_scores,
                 "fidelity": t_fidelity,
                 "total": elapsed(handle.device, started)},
    )


def _targets(handle: ModelHandle, target: TargetArg) -> list:
    if isinstance(target, (str, int, np.integer)):
        target = [target]
    classes = list(dict.fromkeys(handle.class_index(t) for t in target))
    if not 1 <= len(classes) <= 2:
        raise InvalidOptionError(f"Give one class or two different classes, not {len(classes)}.")
    return classes


def _checked(n_concepts, seed, top_crops, count: int) -> tuple:
    for value, what in ((n_concepts, "n_concepts"), (seed, "seed"), (top_crops, "top_crops")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InvalidOptionError(f"{what} must be a whole number, not {value!r}.")
    if not 1 <= n_concepts <= MAX_CONCEPTS:
        raise InvalidOptionError(f"n_concepts must be between 1 and {MAX_CONCEPTS}, not {n_concepts}.")
    if count < n_concepts:
        raise InvalidOptionError(f"{n_concepts} concepts need at least {n_concepts} images; got {count}.")
    if seed < 0 or not 0 <= top_crops <= 64:
        raise InvalidOptionError("seed must be 0 or more and top_crops between 0 and 64.")
    return int(n_concepts), int(seed), int(top_crops)


def _pass_one(handle: ModelHandle, name: str, images: list, k: int, seed: int, size: int, progress) -> dict:
    """Forward every image once: the factorisation (in memory or streamed) and every logit."""
    out: dict = {"notes": []}
    matrix, stream, negative, logits = None, None, False, []
    for batch in batches(handle, name, images, size, progress, "activations"):
        grid = batch.grid.cpu().numpy()
        if batch.first == 0:
            n, (channels, height, width) = len(images), grid.shape[1:]
            if k > channels:
                raise InvalidOptionError(f"Layer {name} has {channels} channels: ask for at most {channels} concepts.")
            out.update(raw=batch.raw[:1], x=batch.prepared.x[:1], picture=tuple(batch.prepared.x.shape[-2:]),
                       shape=(n, height, width))
            if streams(n * height * width, channels):
                stream = Streamed(k, seed)
                out["notes"].append(f"{n * height * width} locations: factorised by MiniBatchNMF, streamed batch by "
                                    f"batch (one pass, seed {seed}) instead of NMF on all of them at once.")
            else:
                matrix = np.empty((channels, n * height * width), np.float32)
        negative = negative or bool(grid.min() < 0)
        if stream is not None:
            stream.add(grid)
        else:
            cells = grid.shape[2] * grid.shape[3]
            matrix[:, batch.first * cells:(batch.first + len(grid)) * cells] = \
                grid.transpose(1, 0, 2, 3).reshape(grid.shape[1], -1)
        logits.append(batch.logits.cpu().numpy())
    t0 = time.perf_counter()
    out["fit"] = stream.fit() if stream is not None else fit_in_memory(matrix, k, seed, out["shape"])
    out["nmf"] = time.perf_counter() - t0
    out["logits"] = np.concatenate(logits)
    if negative:
        out["notes"].append(f"Layer {name} has negative activations and NMF needs values >= 0: each channel was "
                            "shifted by its minimum (as DFF does); the shift's share of the logit is in the residual.")
    if out["fit"].clipped:
        out["notes"].append("Some activations fell below the first batch's minimum and were clipped at it for NMF.")
    return out


def _gradient_pass(handle, name, images, fit, image_classes, size, progress) -> tuple:
    coefficients, contributions, class_logits = [], [], []
    for batch in batches(handle, name, images, size, progress, "concepts"):
        end = batch.first + len(batch.grid)
        h = fit.coefficients[batch.first:end] if fit.coefficients is not None else fit.transform(batch.grid.cpu().numpy())
        c, lg = gradient_contributions(handle, name, batch, h, fit.directions, image_classes[batch.first:end])
        coefficients.append(h)
        contributions.append(c)
        class_logits.append(lg)
    return np.concatenate(coefficients), np.concatenate(contributions), np.concatenate(class_logits)


def _fidelity(handle, name, images, fit, coefficients, logits, image_classes, order, seed, size, progress,
              linear) -> dict:
    """Class probability against the number of concepts removed, by importance and in a random order
    (one seeded permutation per image), with the areas under both curves (95% bootstrap intervals)."""
    n = len(coefficients)
    orders = removal_orders(order, n, seed)
    curves, logit_curve = {}, None
    if linear is not None:
        votes, _ = linear_votes(linear, fit.directions)
        for key, o in orders.items():
            removed = removal_logits(logits.astype(np.float64), coefficients, votes, o)
            curves[key] = softmax_at(removed, image_classes)
            if key == "removed":
                logit_curve = removed[np.arange(n), :, image_classes].mean(axis=0)
    else:
        parts: dict = {key: [] for key in orders}
        for batch in batches(handle, name, images, size, progress, "fidelity"):
            end = batch.first + len(batch.grid)
            for key, o in orders.items():
                parts[key].append(removal_probabilities(handle, name, batch, coefficients[batch.first:end],
                                                        fit.directions, o[batch.first:end],
                                                        image_classes[batch.first:end]))
        curves = {key: np.concatenate(v) for key, v in parts.items()}
    return fidelity_summary(order, curves, logit_curve)
