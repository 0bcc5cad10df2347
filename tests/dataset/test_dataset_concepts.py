"""`batch --concepts K` / `dataset.run(..., concepts=K)` (issue 30, dataset mode): concepts per class at
the end of the run from the activations kept during it. Oracles: `class_concepts` run directly on the
same images (same seed), a forward counter on the model, and the summary's schema."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import xai_core
from _tabby import tabby_folder
from conftest import IMAGES, no_hooks_left
from xai_core import InvalidOptionError, class_concepts, dataset
from xai_core.cli import main
from xai_core.dataset.kept import keeping
from xai_core.report.concepts_section import concepts_section

#: The tolerance on the importances and areas against `class_concepts` on the same images, in units of
#: the largest importance (and absolute on the fidelity area): the run keeps float16 activations,
#: `class_concepts` factorises float32 ones.
TOLERANCE = 1e-3  # measured: 7e-6 on the importances, 1e-7 on the area


@pytest.fixture(scope="module")
def ran(lite, tmp_path_factory):
    """One run with --concepts 3, its summary, and how many forwards the model ran."""
    root = tabby_folder(tmp_path_factory.mktemp("in"))
    out = tmp_path_factory.mktemp("out")
    forwards = []
    hook = lite.module.register_forward_hook(lambda m, i, o: forwards.append(o.shape[0]))
    try:
        result = dataset.run(lite, str(root), str(out), ["gradcam"], batch_size=4, pictures="none", concepts=3)
    finally:
        hook.remove()
    return root, out, result, json.loads((out / "summary.json").read_text()), forwards


def test_one_forward_per_batch_and_no_hook_left(lite, ran):
    _, _, result, _, forwards = ran
    assert result.explained == 12
    assert forwards == [4, 4, 4]  # the maps' own forward: no second pass for the concepts
    assert no_hooks_left(lite.module)


def test_the_true_class_concepts_equal_class_concepts_on_the_same_images(lite, ran):
    root, out, _, summary, _ = ran
    block = summary["concepts"]
    assert block["k"] == 3 and block["min_images"] == 8 and block["layer"] == lite.default_layer
    entry = next(c for c in block["classes"] if c["kind"] == "true")
    assert entry["label"] == "tabby" and entry["images"] == 9
    direct = class_concepts(lite, sorted(str(p) for p in (root / "tabby").iterdir()), "tabby", n_concepts=3, seed=0)
    scale = max(abs(c.importance) for c in direct.concepts)
    got = [c["importance"] for c in entry["concepts"]]
    want = [c.importance for c in direct.concepts]
    assert np.abs(np.array(got) - np.array(want)).max() <= TOLERANCE * scale
    assert [c["labels"][0]["label"] for c in entry["concepts"]] == [c.labels[0][0] for c in direct.concepts]
    assert abs(entry["fidelity"]["auc"] - direct.fidelity["auc"]) <= TOLERANCE
    for c in entry["concepts"]:
        assert c["importance_low"] <= c["importance"] <= c["importance_high"]
    folder = out / entry["folder"]
    assert (folder / "index.html").is_file() and (folder / "concepts.json").is_file()
    assert all((folder / crop).is_file() for c in entry["concepts"] for crop in c["crops"])


def test_classes_with_fewer_than_eight_images_are_counted_as_skipped(ran):
    _, _, _, summary, _ = ran
    block = summary["concepts"]
    assert block["skipped"]["true"] == 1  # espresso: 3 images
    assert sum(c["images"] for c in block["classes"] if c["kind"] == "predicted") + 0 <= 12
    assert dataset.check_summary(summary) is summary
    html = (ran[1] / "index.html").read_text()
    assert "Concepts per class" in html and "concepts/true-0281-tabby/index.html" in html


def test_a_resumed_run_keeps_the_concepts_without_explaining_again(lite, ran, tmp_path):
    root, out, _, before, _ = ran
    forwards = []
    hook = lite.module.register_forward_hook(lambda m, i, o: forwards.append(o.shape[0]))
    try:
        result = dataset.run(lite, str(root), str(out), ["gradcam"], batch_size=4, pictures="none", concepts=3)
    finally:
        hook.remove()
    after = json.loads((out / "summary.json").read_text())
    assert result.skipped == 12 and forwards == []
    assert after["concepts"]["classes"] == before["concepts"]["classes"]


def test_rows_done_without_concepts_are_left_out_with_a_note(lite, tmp_path):
    root = tabby_folder(tmp_path / "in", count=8, others=0)
    out = tmp_path / "out"
    dataset.run(lite, str(root), str(out), ["gradcam"], pictures="none")
    for i in range(8, 10):  # two more files, explained with --concepts
        Image.open(root / "tabby" / "00.jpg").rotate(5 * i).save(root / "tabby" / f"{i:02d}.jpg")
    result = dataset.run(lite, str(root), str(out), ["gradcam"], pictures="none", concepts=2)
    block = json.loads((out / "summary.json").read_text())["concepts"]
    assert result.skipped == 8 and block["missing"] == 8
    assert any("8 explained images had no kept activations" in n for n in block["notes"])
    assert block["classes"] == [] and block["skipped"]["true"] == 1


def test_summaries_without_concepts_still_pass_the_schema(lite, tmp_path):
    root = tabby_folder(tmp_path / "in", count=2, others=0)
    dataset.run(lite, str(root), str(tmp_path / "out"), ["gradcam"], pictures="none")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert "concepts" not in summary and dataset.check_summary(summary) is summary
    with pytest.raises(InvalidOptionError, match="concepts"):
        dataset.check_summary({**summary, "concepts": {"classes": "nope"}})


@pytest.mark.parametrize("k,words", [(1, "2 or more"), (5000, "at most 1280 concepts"), ("3", "whole number")])
def test_bad_concept_counts_are_one_sentence(lite, tmp_path, k, words):
    with pytest.raises(InvalidOptionError, match=words):
        dataset.run(lite, str(IMAGES), str(tmp_path / "out"), ["gradcam"], concepts=k)
    assert not (tmp_path / "out").exists()


def test_the_cli_takes_concepts(tmp_path, capsys):
    code = main(["batch", "--model", "efficientnet_lite0", "--device", "cpu", "--input", str(IMAGES), "--output",
                 str(tmp_path / "out"), "--method", "gradcam", "--pictures", "none", "--concepts", "1"])
    assert code == 2
    assert "--concepts must be a whole number of concepts per class, 2 or more" in capsys.readouterr().err


def test_the_cli_says_what_concepts_it_wrote(tmp_path, capsys):
    root = tabby_folder(tmp_path / "in", count=8, others=1)
    code = main(["batch", "--model", "efficientnet_lite0", "--device", "cpu", "--input", str(root), "--output",
                 str(tmp_path / "out"), "--method", "gradcam", "--pictures", "none", "--concepts", "2"])
    out = capsys.readouterr().out
    block = json.loads((tmp_path / "out" / "summary.json").read_text())["concepts"]
    predicted = sum(c["kind"] == "predicted" for c in block["classes"])
    assert code == 0
    assert f"concepts: 2 per class for {predicted} predicted and 1 true classes in {tmp_path / 'out'}/concepts/" in out
    assert f"(skipped for fewer than 8 images: {block['skipped']['predicted']} predicted, 1 true)" in out


def test_the_keeping_hook_is_removed_after_a_failure(lite):
    with pytest.raises(RuntimeError):
        with keeping(lite, lite.default_layer, 1):
            raise RuntimeError("boom")
    assert no_hooks_left(lite.module)


def test_the_index_section_escapes_every_string():
    hostile = "<b>x</b> & <script>alert(1)</script>"
    concept = {"index": 0, "labels": [{"label": hostile, "probability": 0.5}], "importance": 1.0,
               "importance_low": 0.5, "importance_high": 1.5, "crops": ["crops/concept_00_00.jpg"]}
    block = {"k": 2, "layer": hostile, "min_images": 8, "method": hostile, "notes": [hostile],
             "skipped": {"predicted": 1, "true": 0},
             "classes": [{"kind": "true", "label": hostile, "index": 1, "images": 8, "folder": "concepts/true-0001-x",
                          "concepts": [concept], "fidelity": {"auc": 0.2, "auc_low": 0.1, "auc_high": 0.3}}]}
    html = concepts_section({"concepts": block})
    assert "<b>" not in html and "<script>" not in html and "&lt;b&gt;x&lt;/b&gt; &amp;" in html
    assert "href='concepts/true-0001-x/index.html'" in html and "0.200 [0.100, 0.300]" in html
    assert concepts_section({}) == ""
