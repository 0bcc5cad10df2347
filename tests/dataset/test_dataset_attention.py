"""Dataset mode (`xai_core.dataset.run`) with the attention methods: on a tiny random Hugging Face
ViT, LeGrad and attention rollout run next to Grad-CAM over a folder of photos, with faithfulness
scores, one row per photo and the three methods in summary.json; on a CNN they are refused before
anything is written."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

import xai_core
from _hf import save_tiny_vit
from _deps import need
from conftest import IMAGES
from xai_core import dataset
from xai_core.errors import InvalidOptionError

transformers = need("transformers", reason="Hugging Face models are optional: "
                                                          "pip install -r requirements-hf.txt (CI installs it)")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

METHODS = ["gradcam", "legrad", "rollout"]
PHOTOS = [IMAGES / "cat.png", IMAGES / "coffee.png", IMAGES / "rocket.jpg"]



@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    """A tiny random ViT (5 classes, 3 blocks, 4x4 patches of 8 pixels), saved and loaded as hf:FOLDER."""
    folder = tmp_path_factory.mktemp("hf") / "tiny-vit"
    save_tiny_vit(folder, blocks=3, classes=5, initializer_range=0.2)
    return xai_core.load_model(f"hf:{folder}", device="cpu")


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in PHOTOS:
        shutil.copy(photo, folder / photo.name)
    return folder


def test_attention_methods_over_a_folder_with_scores(vit, photos, tmp_path):
    out = tmp_path / "out"
    result = dataset.run(vit, str(photos), str(out), METHODS, evaluate=True, steps=5, batch_size=2)
    assert (result.explained, result.refused, result.failed) == (3, 0, 0)
    rows = pq.read_table(out / "results.parquet").to_pylist()
    assert sorted(r["path"] for r in rows) == sorted(p.name for p in PHOTOS)
    assert list(rows[0]) == dataset.columns(METHODS, True)
    for row in rows:
        assert row["error"] is None and row["label"] in vit.categories and row["seconds"] > 0
        single = xai_core.explain(vit, photos / row["path"], METHODS)
        assert row["target"] == single.target
        for method in METHODS:
            assert row[f"{method}_seconds"] >= 0, method
            for score in ("deletion_auc", "insertion_auc"):
                assert 0 <= row[f"{method}_{score}"] <= 1, (method, score)
            assert np.isfinite(row[f"{method}_road_combined"]), method
            assert (out / "maps" / f"{row['key']}_{method}.jpg").is_file(), method
            stored = dataset.read_map(out, row, method)  # float16
            assert stored.shape == (32, 32)
            np.testing.assert_allclose(stored, single.maps[method], atol=1e-3, err_msg=method)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["explained"] == 3 and set(METHODS) <= set(summary["methods"])
    for method in METHODS:
        insertion = summary["methods"][method]["insertion_auc"]
        assert insertion["n"] == 3 and insertion["low"] <= insertion["mean"] <= insertion["high"], method
        assert insertion["mean"] == pytest.approx(np.mean([r[f"{method}_insertion_auc"] for r in rows])), method
        assert "insertion_auc_win_rate" in summary["methods"][method], method
    # the maps differ: LeGrad and rollout are not Grad-CAM under another name
    first = rows[0]
    maps = {m: dataset.read_map(out, first, m) for m in METHODS}
    assert np.abs(maps["legrad"] - maps["rollout"]).max() > 0.05
    assert np.abs(maps["legrad"] - maps["gradcam"]).max() > 0.05


@pytest.mark.parametrize("existing", [False, True])
def test_attention_methods_on_a_cnn_are_refused_before_anything_is_written(lite, photos, tmp_path, existing):
    out = tmp_path / "out"
    if existing:
        out.mkdir()
    with pytest.raises(InvalidOptionError) as err:
        dataset.run(lite, str(photos), str(out), ["gradcam", "legrad"])
    message = str(err.value)
    assert "LeGrad" in message and "convolutional" in message and "\n" not in message and message.endswith(".")
    assert (list(out.iterdir()) == []) if existing else not out.exists()
    assert sorted(p.name for p in photos.iterdir()) == sorted(p.name for p in PHOTOS)  # nothing written there
