"""The results version (issue 26): `xai_core.versions.RESULTS_VERSION` is bumped by every change that
changes a map or a score. This test computes a fixed set of them (Grad-CAM, HiResCAM and EigenCAM on
a seeded random ResNet-50 at 128 pixels, attention rollout on a seeded tiny random ViT, and the
deletion, insertion and ROAD scores of each and of the random map, on two sample photos, through
`explain_batch` and `evaluate_batch` as a dataset job computes them), hashes them, and compares
with the (version, hash) pair recorded in `tests/results_version.json`: a changed hash under the
same version fails and tells the developer to bump the version and record the new pair.

Float noise (another thread count, another CPU's vector units) must not flip the hash, while a
real change must: each map is averaged over 8x8 blocks and rounded to 3 decimals (maps are in
[0, 1]: steps of 0.001), each score rounded to 4 significant digits. A value within float noise
of a rounding boundary can still round the other way; the record keeps the rounded values too, so
a hash that differs only by such one-step roundings (every value within 1.5 steps of the
recorded one) counts as the same results. Record a new pair with

    XAI_RECORD_RESULTS=1 .venv/bin/python -m pytest tests/test_results_version.py

(refused while the results changed under the recorded version: bump the version first)."""

from __future__ import annotations

import hashlib
import json
import math
import os

import numpy as np
import pytest
import torch

import xai_core
from _hf import save_tiny_vit
from conftest import IMAGES, small_input
from xai_core import versions

RECORD = IMAGES.parents[1] / "tests" / "results_version.json"
PHOTOS = [IMAGES / "cat.png", IMAGES / "coffee.png"]
#: The map's blocks (maps averaged over BLOCK x BLOCK blocks), its rounding, the scores' digits.
BLOCK, MAP_DECIMALS, SCORE_DIGITS = 8, 3, 4
SCORES = ("deletion_auc", "insertion_auc", "road_combined")
HOW_TO_RECORD = "XAI_RECORD_RESULTS=1 .venv/bin/python -m pytest tests/test_results_version.py"


def _cnn() -> xai_core.ModelHandle:
    torch.manual_seed(0)
    return small_input(xai_core.load_model("resnet50", weights=None, device="cpu"), 128)


def _vit(folder) -> xai_core.ModelHandle:
    """A tiny random ViT (5 classes, 3 blocks, 4x4 patches of 8 pixels), saved and loaded as hf:FOLDER."""
    save_tiny_vit(folder, blocks=3, classes=5, initializer_range=0.2)
    return xai_core.load_model(f"hf:{folder}", device="cpu")


def _round_map(cam: np.ndarray) -> list[float]:
    h, w = (cam.shape[0] // BLOCK) * BLOCK, (cam.shape[1] // BLOCK) * BLOCK
    blocks = np.float64(cam[:h, :w]).reshape(BLOCK, h // BLOCK, BLOCK, w // BLOCK).mean(axis=(1, 3))
    return [round(float(v), MAP_DECIMALS) for v in blocks.ravel()]


def _round_score(value: float) -> float:
    return float(f"{value:.{SCORE_DIGITS - 1}e}") if math.isfinite(value) else value


def _results(handle, name: str, methods: list[str], target: int) -> dict[str, object]:
    explanations = xai_core.explain_batch(handle, PHOTOS, methods, targets=target)
    evaluations = xai_core.evaluate_batch(handle, PHOTOS, explanations, steps=5)
    values: dict[str, object] = {}
    for n, (explanation, evaluation) in enumerate(zip(explanations, evaluations)):
        for method in methods:
            values[f"{name}/{n}/{method}/map"] = _round_map(explanation.maps[method])
        for method in [*methods, "random"]:
            for score in SCORES:
                values[f"{name}/{n}/{method}/{score}"] = _round_score(float(evaluation.scores[method][score]))
    return values


def _digest(values: dict) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def _step(key: str, value: float) -> float:
    """The rounding step of `value`: 10^-3 for a map, its 4th significant digit for a score."""
    if key.endswith("/map"):
        return 10.0 ** -MAP_DECIMALS
    return 10.0 ** (math.floor(math.log10(abs(value))) - SCORE_DIGITS + 1) if value else 0.0


def _changed(values: dict, recorded: dict) -> list[str]:
    """The values that moved by more than a rounding step from the recorded ones."""
    changed = sorted(set(values) ^ set(recorded))
    for key in sorted(set(values) & set(recorded)):
        new, old = np.atleast_1d(values[key]).astype(float), np.atleast_1d(recorded[key]).astype(float)
        steps = np.array([_step(key, v) for v in old])
        if new.shape != old.shape or not np.all((np.abs(new - old) <= 1.5 * steps) | (np.isnan(new) & np.isnan(old))):
            changed.append(key)
    return changed


@pytest.fixture(scope="module")
def values(tmp_path_factory) -> dict:
    return {**_results(_cnn(), "resnet50", ["gradcam", "hirescam", "eigencam"], 713),
            **_results(_vit(tmp_path_factory.mktemp("hf") / "tiny-vit"), "tiny-vit", ["rollout"], 1)}


def test_a_change_of_the_results_bumps_the_results_version(values):
    digest, version = _digest(values), versions.RESULTS_VERSION
    recording = bool(os.environ.get("XAI_RECORD_RESULTS"))
    assert RECORD.is_file() or recording, f"No recorded results: record them with {HOW_TO_RECORD}."
    record = (json.loads(RECORD.read_text()) if RECORD.is_file()
              else {"results_version": version, "hash": digest, "values": values})  # the first record
    changed = _changed(values, record["values"]) if digest != record["hash"] else []
    if recording:
        assert not changed or version != record["results_version"], (
            f"The maps or scores changed ({len(changed)} values, e.g. {changed[0]}) under the recorded results "
            f"version {version}: bump RESULTS_VERSION in xai_core/versions.py before recording.")
        lines = ",\n".join(f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in sorted(values.items()))
        RECORD.write_text(f'{{"results_version": {version}, "hash": "{digest}", "values": {{\n{lines}\n}}}}\n')
        return
    assert not changed or version != record["results_version"], (
        f"The maps or scores changed ({len(changed)} values, e.g. {changed[0]}; hash {digest}, recorded "
        f"{record['hash']}) but RESULTS_VERSION is still {version}: bump it in xai_core/versions.py (a rerun "
        f"then tells the user which rows are of the old version) and record the new hash: {HOW_TO_RECORD}.")
    assert version == record["results_version"], (
        f"RESULTS_VERSION is {version} but tests/results_version.json records version "
        f"{record['results_version']}: record the new (version, hash) pair: {HOW_TO_RECORD}.")
