"""`dataset.run(..., against=B, evaluate=True)` and `--against-layer`: model B's maps scored with
model B (`b_{method}_{score}` columns, equal to `evaluate_batch` on model B's own explanation), the
summary's paired change B − A (0 exactly for a model against itself; the entries are
`bootstrap_ci`'s), model B's target layer (its maps, the settings' digest, summary.json), the
refusals before any work, and the command line end to end."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

import xai_core
from conftest import IMAGES
from xai_core import cli, dataset, report
from xai_core.dataset.against_summary import faithfulness_change
from xai_core.errors import InvalidOptionError, UnknownNameError

PHOTOS = sorted(p for p in IMAGES.iterdir() if p.name != "rocket.jpg")[:4]
SCORES = tuple(dataset.EVAL_SCORES)
STEPS = 3  # deletion/insertion steps: enough to compare, small enough to stay fast


def _rows(out: Path) -> list[dict]:
    return pq.read_table(out / "results.parquet").to_pylist()


def resnet18(seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    return xai_core.load_model("torchvision:resnet18", weights=None, device="cpu", input_size=64, **kwargs)


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """An ImageFolder tree of two photos: tabby/ and espresso/ (ImageNet classes)."""
    root = tmp_path_factory.mktemp("against_eval") / "in"
    for folder, photo in (("tabby", PHOTOS[0]), ("espresso", PHOTOS[2])):
        (root / folder).mkdir(parents=True)
        shutil.copy(photo, root / folder / photo.name)
    return root


def test_model_b_scores_are_evaluate_batch_of_its_own_maps(two, tmp_path):
    a, b = resnet18(0), resnet18(1)
    out = tmp_path / "out"
    dataset.run(a, str(two), str(out), ["layercam"], against=b, evaluate=True, steps=STEPS)
    rows = _rows(out)
    assert len(rows) == 2
    for row in rows:
        assert row["b_note"] is None
        alone = xai_core.compare_models(a, b, two / row["path"], ("layercam",))
        (oracle,) = xai_core.evaluate_batch(b, [two / row["path"]], [alone.explanation_b], steps=STEPS)
        (own,) = xai_core.evaluate_batch(a, [two / row["path"]], [alone.explanation_a], steps=STEPS)
        for score in SCORES:
            assert row[f"b_layercam_{score}"] == pytest.approx(oracle.scores["layercam"][score], abs=1e-4)
            assert row[f"layercam_{score}"] == pytest.approx(own.scores["layercam"][score], abs=1e-4)
        assert "b_random_deletion_auc" not in row  # model B's maps only: the random map is model A's baseline
    summary = json.loads((out / "summary.json").read_text())
    entry = summary["against"]["faithfulness"]["layercam"]["deletion_auc"]
    a_values = [r["layercam_deletion_auc"] for r in rows]
    b_values = [r["b_layercam_deletion_auc"] for r in rows]
    # the project's interval helper, over the images both models' maps were scored on
    assert entry["a"] == {**dataset.bootstrap_ci(a_values), "interval": "bootstrap"}
    assert entry["b"] == {**dataset.bootstrap_ci(b_values), "interval": "bootstrap"}
    assert entry["change"] == {**dataset.bootstrap_ci(np.subtract(b_values, a_values)), "interval": "bootstrap"}
    assert entry["change"]["mean"] == pytest.approx(entry["b"]["mean"] - entry["a"]["mean"])
    dataset.check_summary(summary)


def test_a_model_against_itself_changes_no_score(two, tmp_path):
    a = resnet18(0)
    out = tmp_path / "out"
    dataset.run(a, str(two), str(out), ["gradcam", "layercam"], against=a, evaluate=True, steps=STEPS)
    for row in _rows(out):
        for method in ("gradcam", "layercam"):
            for score in SCORES:
                assert row[f"b_{method}_{score}"] == row[f"{method}_{score}"]
    block = json.loads((out / "summary.json").read_text())["against"]["faithfulness"]
    assert set(block) == {"gradcam", "layercam"}
    for method in block:
        for score in SCORES:
            entry = block[method][score]
            assert entry["a"] == entry["b"]
            assert (entry["change"]["mean"], entry["change"]["low"], entry["change"]["high"]) == (0.0, 0.0, 0.0)
            assert entry["change"]["n"] == 2


def test_rows_without_a_comparison_have_no_model_b_scores(lite, two, tmp_path):
    """Model B knows "tabby" only: the image model A calls something else has a b_note and no B scores,
    and the summary's change counts the compared images only."""
    few = resnet18(labels=["tabby"] + [f"thing {i}" for i in range(999)])
    out = tmp_path / "out"
    dataset.run(lite, str(two), str(out), ["gradcam"], target=None, against=few, evaluate=True, steps=STEPS)
    rows = _rows(out)
    assert any(r["b_note"] is not None for r in rows)
    for row in rows:
        assert (row["b_gradcam_deletion_auc"] is None) == (row["b_note"] is not None)
        assert row["gradcam_deletion_auc"] is not None  # model A is scored either way
    entry = json.loads((out / "summary.json").read_text())["against"]["faithfulness"]["gradcam"]["deletion_auc"]
    assert entry["change"]["n"] == sum(r["b_note"] is None for r in rows)


def test_faithfulness_change_pairs_the_images_both_scored():
    rows = [{"m_deletion_auc": 0.2, "b_m_deletion_auc": 0.5}, {"m_deletion_auc": 0.4, "b_m_deletion_auc": None},
            {"m_deletion_auc": 0.6, "b_m_deletion_auc": 0.7}, {"m_deletion_auc": float("nan"), "b_m_deletion_auc": 0.1}]
    entry = faithfulness_change(rows, ["m"])["m"]["deletion_auc"]
    assert entry["a"]["n"] == entry["b"]["n"] == entry["change"]["n"] == 2
    assert entry["a"]["mean"] == pytest.approx(0.4) and entry["b"]["mean"] == pytest.approx(0.6)
    assert entry["change"]["mean"] == pytest.approx(0.2)
    assert entry["change"]["low"] <= entry["change"]["mean"] <= entry["change"]["high"]


def test_against_layer_changes_model_b_maps_and_the_digest(lite, two, tmp_path):
    default, other, named = tmp_path / "default", tmp_path / "stage7", tmp_path / "named"
    dataset.run(lite, str(two), str(default), ["gradcam"], against=lite)
    dataset.run(lite, str(two), str(other), ["gradcam"], against=lite, against_layer="stage7")
    dataset.run(lite, str(two), str(named), ["gradcam"], against=lite, against_layer=lite.default_layer)
    rows_default, rows_other, rows_named = _rows(default), _rows(other), _rows(named)
    # another layer is other settings: other keys; naming the default layer is the default's settings
    assert {r["key"] for r in rows_default}.isdisjoint(r["key"] for r in rows_other)
    assert [r["key"] for r in rows_named] == [r["key"] for r in rows_default]
    for d, o in zip(rows_default, rows_other):
        np.testing.assert_array_equal(dataset.read_map(default, d, "gradcam"), dataset.read_map(other, o, "gradcam"))
        assert not np.allclose(dataset.read_map(default, d, "gradcam", model="b"),
                               dataset.read_map(other, o, "gradcam", model="b"), atol=1e-2)
        assert o["gradcam_spearman"] < 1.0  # model A at its default layer, model B at stage7
    summary = json.loads((other / "summary.json").read_text())
    assert summary["against"]["layers"] == ["stage7"] and summary["settings"]["against_layers"] == ["stage7"]
    assert json.loads((default / "summary.json").read_text())["against"]["layers"] == [lite.default_layer]
    assert "Model B's target layer: stage7." in report.against_sentences(summary)
    again = dataset.run(lite, str(two), str(other), ["gradcam"], against=lite, against_layer="stage7")
    assert again.explained_now == 0 and again.line().startswith("Nothing to do")


def test_a_bad_model_b_layer_is_refused_before_any_work(lite, two, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(UnknownNameError) as refused:
        dataset.run(lite, str(two), str(out), ["gradcam"], against=resnet18(), against_layer="stage7")
    message = str(refused.value)
    assert message.startswith("Unknown layer 'stage7' for torchvision:resnet18;") and message.count(". ") == 0
    with pytest.raises(InvalidOptionError, match="needs a model B"):
        dataset.run(lite, str(two), str(out), ["gradcam"], against_layer="stage7")
    assert not out.exists()


def test_batch_against_layer_and_eval_on_the_command_line(two, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["batch", "--input", str(two), "--output", str(out), "--model", "efficientnet_lite0", "--device", "cpu",
            "--against", "efficientnet_lite0"]
    assert cli.main(base + ["--against-layer", "nosuch"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: Unknown layer 'nosuch' for efficientnet_lite0;") and "Traceback" not in error
    assert not out.exists()
    args = base + ["--against-layer", "stage7", "--eval", "--steps", str(STEPS)]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "Model B's target layer: stage7." in printed
    assert "Grad-CAM deletion (lower is better): A " in printed and ", B − A " in printed
    rows = _rows(out)
    assert len(rows) == 2 and all(isinstance(r["b_gradcam_insertion_auc"], float) for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["against"]["layers"] == ["stage7"]
    assert summary["against"]["faithfulness"]["gradcam"]["insertion_auc"]["change"]["n"] == 2
    page = (out / "index.html").read_text()
    assert "B − A (mean, 95% CI)" in page and "Faithfulness of each model" in page
    assert cli.main(args) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("Nothing to do")


def _digest_before(settings: dataset.Settings) -> str:
    """`Settings.digest` as written before model B's layers and scores were settings (its formula then)."""
    content = {k: v for k, v in dataclasses.asdict(settings).items()
               if k not in ("model", "ground_truth", "against", "against_layers", "against_default_layers")
               and not (k in ("ground_truth_digest", "against_fingerprint") and v is None)}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def test_older_results_folders_resume_unless_they_lack_model_b_scores():
    """A folder written before --against-layer existed keeps its rows (model B at its default layer:
    the same digest); one written with --eval before model B's maps were scored lacks their
    columns, so its rows are explained again (another digest), as another model B's would be."""
    base = dataset.Settings("a", "f" * 64, ("gradcam",), None, ("layer4",), against="b", against_fingerprint="e" * 64,
                            against_layers=("layer4",), against_default_layers=("layer4",))
    assert base.digest() == _digest_before(base)
    plain = dataset.Settings("a", "f" * 64, ("gradcam",), None, ("layer4",), evaluate=True)
    assert plain.digest() == _digest_before(plain)  # without model B nothing changed
    scored = dataclasses.replace(base, evaluate=True)
    assert scored.digest() != _digest_before(scored)
    assert dataclasses.replace(base, against_layers=("layer3",)).digest() != base.digest()
    assert "b_gradcam_deletion_auc" in dataset.columns(("gradcam",), True, compares=True)
    assert "b_gradcam_deletion_auc" not in dataset.columns(("gradcam",), False, compares=True)


def test_model_b_scores_are_offered_as_sorts_by_their_words():
    label = report.dataset_figures.column_label
    assert label("b_gradcam_deletion_auc", {"gradcam": "Grad-CAM"}) == "model B · Grad-CAM · deletion"
    assert label("b_probability", {}) is None and label("b_maps_index", {}) is None
