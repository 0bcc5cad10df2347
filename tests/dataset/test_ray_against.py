"""`run(..., against=B, engine="ray")`: every actor loads model B too (its `model_args`, checked by
its fingerprint) and writes the local engine's rows, model B's columns and pictures included; a
model B another process cannot load (random weights) is refused in one sentence before any work."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import xai_core
from _deps import need
from conftest import IMAGES
from xai_core import dataset
from xai_core.errors import InvalidOptionError

ray = need("ray", reason="Ray is optional: pip install -r requirements-ray.txt (CI installs it)")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _rows(out: Path) -> list[dict]:
    rows = pq.read_table(out / "results.parquet").to_pylist()
    return [{k: v for k, v in row.items() if k != "seconds" and not k.endswith("_seconds")} for row in rows]


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=0, abs_tol=1e-5)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_ray_actors_load_model_b_and_write_the_local_rows(ray_session, lite, tmp_path, monkeypatch):
    """Model B: torchvision:resnet18 with the DEFAULT tag (a random state dict under the hub cache's
    name, so the actors load the same weights through TORCH_HOME) and ImageNet labels, as model A's."""
    import torch
    import torchvision

    photos = tmp_path / "photos"
    photos.mkdir()
    for photo in sorted(IMAGES.iterdir())[:3]:
        shutil.copy2(photo, photos / photo.name)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(),
               cache / Path(torchvision.models.ResNet18_Weights.DEFAULT.url).name)
    other = xai_core.load_model("torchvision:resnet18", weights="DEFAULT", device="cpu", input_size=64)
    local = dataset.run(lite, str(photos), str(tmp_path / "local"), ["gradcam"], batch_size=2, against=other)
    on_ray = dataset.run(lite, str(photos), str(tmp_path / "ray"), ["gradcam"], batch_size=2, engine="ray",
                         against=other)
    assert (local.explained, on_ray.explained, on_ray.failed) == (3, 3, 0)
    expected, got = _rows(tmp_path / "local"), _rows(tmp_path / "ray")
    assert [r["path"] for r in got] == [r["path"] for r in expected]
    for want, row in zip(expected, got):
        assert row["b_label"] is not None and all(_same(want[c], row[c]) for c in want if c not in
                                                  ("maps_file", "b_maps_file", "maps_index", "b_maps_index")), (want, row)
        assert (tmp_path / "ray" / "maps" / f"{row['key']}_b_gradcam.jpg").is_file()
    again = dataset.run(lite, str(photos), str(tmp_path / "ray"), ["gradcam"], batch_size=2, engine="ray",
                        against=other)
    assert again.line().startswith("Nothing to do")


def test_model_b_layer_and_scores_travel_to_the_actors(ray_session, lite, tmp_path):
    """--against-layer and --eval on Ray: the actors explain model B at the settings' layer and score
    its maps, the local engine's rows (model B is model A here: a bundled model every actor loads)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for photo in sorted(IMAGES.iterdir())[:2]:
        shutil.copy2(photo, photos / photo.name)
    kwargs = dict(batch_size=2, against=lite, against_layer="stage7", evaluate=True, steps=3)
    dataset.run(lite, str(photos), str(tmp_path / "local"), ["gradcam"], **kwargs)
    on_ray = dataset.run(lite, str(photos), str(tmp_path / "ray"), ["gradcam"], engine="ray", **kwargs)
    assert (on_ray.explained, on_ray.failed) == (2, 0)
    expected, got = _rows(tmp_path / "local"), _rows(tmp_path / "ray")
    for want, row in zip(expected, got):
        assert row["gradcam_spearman"] < 1.0  # model B at stage7, model A at its default layer
        assert isinstance(row["b_gradcam_deletion_auc"], float)
        assert all(_same(want[c], row[c]) for c in want if c not in
                   ("maps_file", "b_maps_file", "maps_index", "b_maps_index")), (want, row)


def test_a_model_b_with_random_weights_is_refused_on_ray(lite, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy2(IMAGES / "cat.png", photos / "cat.png")
    random = xai_core.load_model("torchvision:resnet18", weights=None, device="cpu", input_size=64)
    with pytest.raises(InvalidOptionError, match="random weights") as refused:
        dataset.run(lite, str(photos), str(tmp_path / "out"), ["gradcam"], engine="ray", against=random)
    assert "\n" not in str(refused.value)
