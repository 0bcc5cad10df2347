"""Concepts per class at the end of a dataset run (`dataset.run(..., concepts=K)`): for every
predicted class, and every true class (class folders), with at least `MIN_IMAGES` images, the
activations the run kept (`dataset.kept`: the maps' own forward, no second pass) factorised as
`class_concepts` does (same NMF, or MiniBatchNMF streamed for many locations; same seed), scored
exactly through the linear head, each class written as a results folder OUT/concepts/<class>/
(`write_concept_results`), and summary.json's "concepts" block."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..dataset import bootstrap_ci
from ..dataset.kept import kept_index, load_kept, register_concepts_step
from ..images import load_image
from ..models import ModelHandle
from ..predict import label_key
from .atlas import write_concept_results
from .evidence import crops, labels
from .extract import Streamed, fit_in_memory, streams
from .results import ClassConcepts, Concept
from .run import EXACT
from .scoring import (exact_contributions, fidelity_summary, linear_layer, linear_votes, removal_logits,
                      removal_orders, softmax_at)

#: The fewest images (distinct contents) a class needs for its concepts.
MIN_IMAGES = 8
_CHUNK = 64  # images loaded from the kept files at a time


def class_folder(kind: str, index: int, label: str) -> str:
    """The class's folder under OUT/concepts: e.g. predicted-0281-tabby."""
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40] or "class"
    return f"{kind}-{index:04d}-{slug}"


@register_concepts_step
def dataset_concepts(handle: ModelHandle, out: Path, rows: Sequence[dict], root: str, k: int, seed: int) -> dict:
    """summary.json's "concepts" block for the finished `rows` of results folder `out` (input `root`),
    writing OUT/concepts/<class>/ for every class with at least `MIN_IMAGES` images (see the module
    docstring). Raises `OSError` when a folder cannot be written."""
    started = time.perf_counter()
    layer = handle.default_layer
    index = kept_index(out, layer)
    by_name = {label_key(c): i for i, c in reversed(list(enumerate(handle.categories)))}
    groups: dict = {}
    missing, unnamed = 0, set()
    for row in rows:
        if row["error"] is not None:
            continue
        place = index.get(row["key"]) or index.get(row.get("content_key"))
        if place is None:
            missing += 1
            continue
        content = row.get("content_key") or row["key"]
        predicted = row["target"] if row["target_label"] == row["label"] else by_name.get(label_key(row["label"]))
        found = [("predicted", predicted)]
        if row.get("true_label") is not None:
            truth = by_name.get(label_key(row["true_label"]))
            if truth is None:
                unnamed.add(row["true_label"])
            found.append(("true", truth))
        for kind, cls in found:
            if cls is not None:
                groups.setdefault((kind, int(cls)), {}).setdefault(content, (place, row["path"]))
    linear = linear_layer(handle, layer)
    classes, skipped, notes = [], {"predicted": 0, "true": 0}, []
    for (kind, cls), members in sorted(groups.items(), key=lambda kv: (kv[0][0] != "predicted", kv[0][1])):
        if len(members) < max(MIN_IMAGES, k):
            skipped[kind] += 1
            continue
        places, paths = zip(*members.values())
        folder = class_folder(kind, cls, handle.categories[cls])
        result = extract(handle, layer, linear, list(places), [str(Path(root) / p) for p in paths], cls, k, seed)
        written = write_concept_results(result, str(Path(out) / "concepts" / folder), list(paths))
        classes.append(_entry(kind, cls, folder, written))
    if missing:
        notes.append(f"{missing} explained image{'s' * (missing != 1)} had no kept activations (explained by a run "
                     "without --concepts) and {} left out of the concepts; explain them into a new results folder "
                     "to include them.".format("were" if missing != 1 else "was"))
    if unnamed:
        notes.append(f"{len(unnamed)} true label{'s' * (len(unnamed) != 1)} name{'s' * (len(unnamed) == 1)} no class "
                     "of the model: no concepts by true class for them.")
    return {"k": k, "layer": layer, "seed": seed, "min_images": MIN_IMAGES, "method": EXACT, "classes": classes,
            "skipped": skipped, "missing": missing, "notes": notes, "seconds": time.perf_counter() - started}


def _entry(kind: str, cls: int, folder: str, written: dict) -> dict:
    f = written["fidelity"]
    return {"kind": kind, "label": written["targets"][0], "index": cls, "images": written["images"],
            "folder": f"concepts/{folder}", "residual": written["residual"], "solver": written["solver"],
            "concepts": [{key: c[key] for key in ("index", "labels", "importance", "importance_low", "importance_high")}
                         | {"crops": [crop["file"] for crop in c["crops"]]} for c in written["concepts"]],
            "fidelity": {key: f.get(key) for key in ("auc", "auc_low", "auc_high", "random_auc", "random_auc_low",
                                                      "random_auc_high")},
            "notes": written["notes"]}


def extract(handle: ModelHandle, layer: str, linear, places: list, files: list, cls: int, k: int, seed: int,
            top_crops: int = 6) -> ClassConcepts:
    """`class_concepts(handle, files, cls, k, seed=seed)` for a global-average-pool + `linear` head,
    from the kept activations at `places` instead of a forward: the same factorisation, exact
    importance, fidelity in closed form, crops and labels. Raises `InvalidImageError` (a crop's file)."""
    started = time.perf_counter()
    n, notes = len(places), []
    grid = load_kept(places[:1])
    channels, height, width = grid.shape[1:]
    stream = Streamed(k, seed) if streams(n * height * width, channels) else None
    matrix = None if stream is not None else np.empty((channels, n * height * width), np.float32)
    pooled, negative, cells = [], False, height * width
    for first in range(0, n, _CHUNK):
        grid = load_kept(places[first:first + _CHUNK])
        pooled.append(grid.mean(axis=(2, 3), dtype=np.float64))
        negative = negative or bool(grid.min() < 0)
        if stream is not None:
            stream.add(grid)
        else:
            matrix[:, first * cells:(first + len(grid)) * cells] = grid.transpose(1, 0, 2, 3).reshape(channels, -1)
    t0 = time.perf_counter()
    fit = stream.fit() if stream is not None else fit_in_memory(matrix, k, seed, (n, height, width))
    nmf = time.perf_counter() - t0
    coefficients = fit.coefficients
    if coefficients is None:
        notes.append(f"{n * cells} locations: factorised by MiniBatchNMF, streamed batch by batch (one pass, seed "
                     f"{seed}) instead of NMF on all of them at once.")
        coefficients = np.concatenate([fit.transform(load_kept(places[a:a + _CHUNK])) for a in range(0, n, _CHUNK)])
    if negative:
        notes.append(f"Layer {layer} has negative activations and NMF needs values >= 0: each channel was shifted by "
                     "its minimum (as DFF does); the shift's share of the logit is in the residual.")
    if fit.clipped:
        notes.append("Some activations fell below the first batch's minimum and were clipped at it for NMF.")
    weight = linear.weight.detach().double().cpu().numpy()
    votes, bias = linear_votes(linear, fit.directions)
    logits = np.concatenate(pooled) @ weight.T + bias  # the linear head on the pooled activations: the logits
    classes = np.full(n, cls)
    contributions = exact_contributions(coefficients, votes, classes)
    residual = logits[:, cls] - bias[cls] - contributions.sum(axis=1)
    order = np.argsort(-contributions.mean(axis=0), kind="stable")
    t_scores = time.perf_counter() - t0 - nmf
    curves = _fidelity(logits, coefficients, votes, classes, order, seed)
    notes.append("The head is linear in the pooled activations, so removing a concept lowers every logit by exactly "
                 "its share: the tail was re-run in closed form.")
    prepared = handle.prepare([load_image(files[0])])
    picture = tuple(prepared.x.shape[-2:])
    evidence = crops(handle, files, coefficients, top_crops, picture)
    raw = torch.from_numpy(load_kept(places[:1])).to(handle.device)
    names = labels(handle, layer, (fit.directions + fit.offset[None, :]).T, raw, prepared.x)
    concepts = []
    for i in range(k):
        ci = bootstrap_ci(contributions[:, i])
        concepts.append(Concept(i, fit.directions[i], names[i], ci["mean"], ci["low"], ci["high"],
                                {handle.categories[cls]: (ci["mean"], ci["low"], ci["high"])},
                                evidence[i] if evidence else [], float(coefficients[:, i].mean(dtype=np.float64))))
    return ClassConcepts(
        concepts=tuple(concepts), targets=(handle.categories[cls],), layer=layer, model=handle.name,
        residual=float(residual.mean()), method=EXACT, fidelity=curves, notes=tuple(notes), images=n,
        offset=fit.offset, coefficients=coefficients, image_targets=(0,) * n, contributions=contributions,
        logits=logits[:, cls], residuals=residual, picture_size=picture, solver=fit.solver, seed=seed,
        timings={"nmf": nmf, "scores": t_scores, "total": time.perf_counter() - started})


def _fidelity(logits: np.ndarray, coefficients: np.ndarray, votes: np.ndarray, classes: np.ndarray,
              order: np.ndarray, seed: int) -> dict:
    """As `class_concepts`' fidelity on a linear head: class probability as the concepts are removed
    by importance and in a seeded random order per image, with the areas (95% bootstrap)."""
    n = len(coefficients)
    removed = {key: removal_logits(logits, coefficients, votes, o) for key, o in removal_orders(order, n, seed).items()}
    curves = {key: softmax_at(r, classes) for key, r in removed.items()}
    return fidelity_summary(order, curves, removed["removed"][np.arange(n), :, classes].mean(axis=0))


__all__ = ["MIN_IMAGES", "class_folder", "dataset_concepts", "extract"]
