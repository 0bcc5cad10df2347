"""`batch --concepts K --engine ray`: each Ray actor keeps the activations of the batches it explains
in their own forward and writes them to the results folder (one file per run and batch), the driver
extracts the concepts at the end, and summary.json's "concepts" block is the local engine's on the
same folder and seed; a resumed run finds the activations of the rows it skips. One Ray job run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _deps import need
from _tabby import tabby_folder
from xai_core import dataset
from xai_core.concepts import dataset_mode
from xai_core.concepts.scoring import linear_layer
from xai_core.dataset.kept import ACTIVATIONS, kept_index, load_kept

ray = need("ray", reason="Ray is optional: pip install -r requirements-ray.txt (CI installs it)")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: In units of the largest importance (absolute on the fidelity area) and of the largest direction weight: the actor
#: loads the model again and runs it with its own threads, so the sums may differ in the last bits.
TOLERANCE = 1e-4  # measured: 5e-7 on the importances, 5e-8 on the area


@pytest.fixture(scope="module")
def runs(lite, tmp_path_factory):
    """The same 8 tabby photos explained with --concepts 2 by the local engine and by Ray (batches of 4)."""
    root = tabby_folder(tmp_path_factory.mktemp("in"), count=8, others=0)
    out = tmp_path_factory.mktemp("out")
    options = dict(batch_size=4, pictures="none", concepts=2)
    local = dataset.run(lite, str(root), str(out / "local"), ["gradcam"], **options)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = dataset.run(lite, str(root), str(out / "ray"), ["gradcam"], engine="ray", **options)
    finally:
        ray.shutdown()
    return root, out, local, on_ray, options


def _block(out) -> dict:
    return json.loads((out / "summary.json").read_text())["concepts"]


def test_the_actors_keep_the_activations_of_their_batches(lite, runs):
    _, out, local, on_ray, _ = runs
    assert (local.explained, on_ray.explained, on_ray.failed) == (8, 8, 0)
    metas = [json.loads(p.read_text()) for p in sorted((out / "ray" / ACTIVATIONS).glob("*.json"))]
    assert sorted(len(m["keys"]) for m in metas) == [4, 4]  # one file per batch, written by its actor
    assert len({m["run"] for m in metas}) == 1
    ours, theirs = kept_index(out / "local", lite.default_layer), kept_index(out / "ray", lite.default_layer)
    keys = sorted(k for k in ours if k in theirs)
    assert len(keys) == 16  # 8 row keys and 8 content keys: the same rows
    a, b = load_kept([ours[k] for k in keys]), load_kept([theirs[k] for k in keys])
    # the same forward up to float32 rounding (other threads; measured: 2.5e-6 of the largest activation),
    # kept as float16: at most one float16 step apart, or 1e-5 of the largest activation near zero
    assert (np.abs(a - b) <= np.maximum(np.abs(a), np.abs(b)) * 2.0 ** -10 + 1e-5 * np.abs(a).max()).all()
    assert np.abs(a - b).sum() <= 1e-5 * np.abs(a).sum()  # measured: 1.4e-6


def test_ray_gives_the_local_engines_concepts(lite, runs):
    root, out, _, _, _ = runs
    local, on_ray = _block(out / "local"), _block(out / "ray")
    assert [(c["kind"], c["label"], c["index"], c["images"]) for c in on_ray["classes"]] == \
        [(c["kind"], c["label"], c["index"], c["images"]) for c in local["classes"]]
    assert any(c["kind"] == "true" and c["label"] == "tabby" and c["images"] == 8 for c in local["classes"])
    assert on_ray["missing"] == local["missing"] == 0 and on_ray["skipped"] == local["skipped"]
    for want, got in zip(local["classes"], on_ray["classes"]):
        scale = max(abs(c["importance"]) for c in want["concepts"])
        for a, b in zip(want["concepts"], got["concepts"]):
            for key in ("importance", "importance_low", "importance_high"):
                assert abs(a[key] - b[key]) <= TOLERANCE * scale, (key, a, b)
            assert [x["label"] for x in a["labels"]] == [x["label"] for x in b["labels"]]
        assert abs(want["fidelity"]["auc"] - got["fidelity"]["auc"]) <= TOLERANCE
    # the directions (not in summary.json): the same factorisation of each folder's kept activations
    entry = next(c for c in local["classes"] if c["kind"] == "true")
    layer = lite.default_layer
    files = sorted(str(p) for p in (root / "tabby").iterdir())
    directions = []
    for folder in ("local", "ray"):
        index = kept_index(out / folder, layer)
        rows = sorted(dataset.read_rows(out / folder), key=lambda r: r["path"])
        places = [index[r["key"]] for r in rows]
        result = dataset_mode.extract(lite, layer, linear_layer(lite, layer), places, files, entry["index"], 2, 0)
        directions.append(np.stack([c.direction for c in result.concepts]))
    assert np.abs(directions[0] - directions[1]).max() <= TOLERANCE * np.abs(directions[0]).max()


def test_a_resumed_ray_run_finds_the_activations_of_the_rows_it_skips(lite, runs):
    root, out, _, _, options = runs
    before, kept = _block(out / "ray"), sorted((out / "ray" / ACTIVATIONS).iterdir())
    again = dataset.run(lite, str(root), str(out / "ray"), ["gradcam"], engine="ray", **options)
    assert (again.skipped, again.explained_now) == (8, 0)
    after = _block(out / "ray")
    assert after["missing"] == 0 and after["classes"] == before["classes"]
    assert sorted((out / "ray" / ACTIVATIONS).iterdir()) == kept
