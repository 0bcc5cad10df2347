"""The command line: `python -m xai_core cam|dff`. The main scenarios run in a subprocess (each one
pays torch's import time, so they are few and shared); the error matrix runs `cli.main` in-process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from PIL import Image

import xai_core
from xai_core import cli
from xai_core.report import pictures

from conftest import IMAGES, ROOT

LITE = ["--model", "efficientnet_lite0"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "XAI_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "xai_core", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def assert_usage_error(code: int, stderr: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def cam_run(out):
    """HiResCAM with eigen smoothing (pytorch-grad-cam then print()s a warning) in --json mode."""
    return run_cli("cam", "--img", IMAGES / "coffee.png", "--output", out / "coffee.png", "--method", "hirescam",
                   "--eigen-smooth", "--target", "tabby", "--json")


def test_cam_writes_input_and_overlay_side_by_side(cam_run, out):
    assert cam_run.returncode == 0, cam_run.stderr
    with Image.open(out / "coffee.png") as picture:
        width, height = picture.size
    assert 1.5 * height < width <= 2 * height  # two square panels over a caption


def test_cam_json_is_alone_on_stdout_with_the_documented_keys(cam_run, out):
    summary = json.loads(cam_run.stdout)  # the library's print() went to stderr
    assert {"model", "weights_source", "prediction", "target", "methods", "timings", "outputs", "notes"} <= set(summary)
    assert summary["model"] in xai_core.list_models()
    assert summary["prediction"]["label"] == "espresso"
    assert 0.5 < summary["prediction"]["score"] <= 1.0
    assert summary["target"]["index"] == 281 and summary["target"]["label"] == "tabby"
    assert summary["methods"] == ["hirescam"]
    assert summary["outputs"] == [str(out / "coffee.png")]
    assert summary["timings"]["total"] > 0 and isinstance(summary["notes"], list)


def test_offline_notice_is_one_stderr_line(cam_run):
    notes = [line for line in cam_run.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and "EfficientNet-Lite0" in notes[0]
    assert "torch hub cache" in notes[0] and "server" not in notes[0]  # a CLI user has a cache, not a server


def test_several_methods_write_one_file_each(out):
    run = run_cli("cam", "--img", IMAGES / "cat.png", "--method", "gradcam,layercam", "--output-dir", out / "multi",
                  "--target", "281", "--json", *LITE)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    expected = [str(out / "multi" / f"cat_{m}.png") for m in ("gradcam", "layercam")]
    assert summary["outputs"] == expected and all(os.path.isfile(p) for p in expected)
    assert (summary["target"]["index"], summary["target"]["label"]) == (281, "tabby")


def test_cam_captions_say_what_each_map_depends_on(tmp_path, capsys, monkeypatch):
    """Grad-CAM's caption names the layer and the target, EigenCAM's the layer only (it is
    class-agnostic); the pictures carry the captions the JSON reports."""
    drawn = []
    draw = pictures._with_caption
    monkeypatch.setattr(pictures, "_with_caption", lambda picture, lines: drawn.append(list(lines)) or draw(picture,
                                                                                                           lines))
    assert cli.main(["cam", "--img", str(IMAGES / "cat.png"), "--method", "gradcam,eigencam", "--target", "tabby",
                     "--output-dir", str(tmp_path), "--json", *LITE]) == 0
    summary = json.loads(capsys.readouterr().out)
    layer, score = ", ".join(summary["layers"]), summary["target"]["score"]
    assert summary["captions"] == {"gradcam": ["Grad-CAM", f"layer {layer} · target tabby ({score:.1%})"],
                                   "eigencam": ["EigenCAM", f"layer {layer} · class-agnostic"]}
    assert drawn == list(summary["captions"].values())


def test_dff_with_the_seed_spelling(out):
    run = run_cli("dff", "--img", IMAGES / "cat.png", "--output", out / "cat_dff.png", "--n_components", "2", "--json")
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert [len(labels) for labels in summary["components"]] == [2, 2]  # two concepts, top-2 labels each
    assert all(0 <= label["score"] <= 1 and label["label"] for labels in summary["components"] for label in labels)
    assert summary["outputs"] == [str(out / "cat_dff.png")]
    with Image.open(out / "cat_dff.png") as picture:
        assert picture.width > 2 * picture.height  # input, components, legend


def test_bad_image_is_one_error_line(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    run = run_cli("cam", "--img", text, "--output", tmp_path / "x.png")
    assert_usage_error(run.returncode, run.stderr)


@pytest.mark.parametrize(
    "args",
    [
        ["cam", "--method", "gradcam,nosuchcam"],
        ["cam", "--layer", "nosuchlayer"],
        ["cam", "--target", "not a class"],
        ["cam", "--target", "1000"],
        ["cam", "--weights", "/nonexistent/weights.pth"],
        ["dff", "--weights", "/nonexistent/weights.pth"],
        ["dff", "--n-components", "0"],
        ["dff", "--n_components", "two"],
        ["dff", "--layer", "nosuchlayer"],
        ["cam", "--model", "nosuchmodel"],
    ],
)
def test_usage_errors_in_process(args, tmp_path, capsys):
    argv = [*args, "--img", str(IMAGES / "cat.png"), "--output", str(tmp_path / "x.png")]
    try:
        code = cli.main(argv if "--model" in args else argv + LITE)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    assert_usage_error(code, capsys.readouterr().err)
    assert not (tmp_path / "x.png").exists()


def test_target_by_name_and_index_agree(tmp_path, capsys):
    indices = []
    for target in ("tabby", "281"):
        assert cli.main(["cam", "--img", str(IMAGES / "cat.png"), "--target", target, "--json",
                         "--output", str(tmp_path / f"{target}.png"), *LITE]) == 0
        indices.append(json.loads(capsys.readouterr().out)["target"]["index"])
    assert indices == [281, 281]


def test_plain_mode_reports_the_written_file(tmp_path, capsys):
    assert cli.main(["dff", "--img", str(IMAGES / "coffee.png"), "--output-dir", str(tmp_path), *LITE]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'coffee_dff.png'}"


def test_choices_come_from_the_registries():
    parser = cli.build_parser()
    assert parser.parse_args(["cam", "--img", "x", "--method", "all"]).method == xai_core.list_methods()
    assert parser.parse_args(["cam", "--img", "x", "--method", "LayerCAM, gradcam"]).method == ["layercam", "gradcam"]
    assert parser.parse_args(["dff", "--img", "x", "--n-components", "3"]).n_components == 3
    for model in ["auto"] + xai_core.list_models():
        assert parser.parse_args(["dff", "--img", "x", "--model", model]).model == model


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    assert "cam" in help_text and "dff" in help_text


@pytest.fixture(scope="module")
def three_class(tmp_path_factory):
    """A 3-class torchvision ResNet-18 checkpoint (DataParallel prefixes) and its labels file."""
    import torch
    import torchvision.models as tvm

    folder = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    model = tvm.resnet18(weights=None, num_classes=3)
    torch.save({"module." + k: v for k, v in model.state_dict().items()}, folder / "three.pt")
    (folder / "labels.txt").write_text("cat\ndog\nbird\n")
    return folder / "three.pt", folder / "labels.txt"


def test_cam_and_dff_on_a_users_checkpoint_with_its_labels(three_class, tmp_path, capsys):
    weights, labels = three_class
    source = ["--model", "torchvision:resnet18", "--weights", str(weights), "--labels", str(labels)]
    assert cli.main(["cam", "--img", str(IMAGES / "cat.png"), "--target", "dog", "--json",
                     "--output", str(tmp_path / "c.png"), *source]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "torchvision:resnet18" and summary["title"] == "resnet18 (torchvision)"
    assert summary["target"]["index"] == 1 and summary["target"]["label"] == "dog"
    assert summary["prediction"]["label"] in ("cat", "dog", "bird")
    assert cli.main(["dff", "--img", str(IMAGES / "cat.png"), "--json", "--n-components", "2",
                     "--output", str(tmp_path / "d.png"), *source]) == 0
    components = json.loads(capsys.readouterr().out)["components"]
    assert {c["label"] for row in components for c in row} <= {"cat", "dog", "bird"}


@pytest.mark.parametrize("args", [
    ["--model", "torchvision:nonet", "--weights", "none"],
    ["--model", "timm:resnet18"],  # DEFAULT weights: the hub cannot be reached offline
    ["--model", "torchvision:resnet18", "--weights", "none", "--labels", "/nonexistent/labels.txt"],
    ["--model", "efficientnet_lite0", "--labels", "/nonexistent/labels.txt"],
    ["--model", "nosuch:thing"],
])
def test_model_source_errors_are_one_line(args, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XAI_OFFLINE", "1")
    argv = ["cam", "--img", str(IMAGES / "cat.png"), "--output", str(tmp_path / "x.png"), *args]
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    assert_usage_error(code, capsys.readouterr().err)


def test_labels_mismatch_is_one_line(three_class, tmp_path, capsys):
    weights, _ = three_class
    labels = tmp_path / "two.json"
    labels.write_text('["a", "b"]')
    for command in (["cam"], ["eval", "--no-sanity", "--steps", "2"]):
        code = cli.main([*command, "--img", str(IMAGES / "cat.png"), "--model", "torchvision:resnet18",
                         "--weights", str(weights), "--labels", str(labels)])
        assert_usage_error(code, capsys.readouterr().err)


def test_batch_pictures_says_what_was_written_and_what_a_rerun_kept(tmp_path, capsys):
    """--pictures none writes the table only; a rerun with --pictures maps explains the files again
    to write their pictures and says so in its last line."""
    root = tmp_path / "in"
    root.mkdir()
    for name in ("cat.png", "rocket.jpg"):
        shutil.copy(IMAGES / name, root / name)
    args = ["batch", "--input", str(root), "--output", str(tmp_path / "out"), *LITE]
    assert cli.main([*args, "--pictures", "none"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("Explained 2 files") and "no pictures, the table only (--pictures none)" in last
    assert not (tmp_path / "out" / "maps").exists()
    assert cli.main([*args, "--pictures", "MAPS"]) == 0  # any case
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "2 done before with fewer pictures than --pictures maps were explained again to write them" in last
    assert len(list((tmp_path / "out" / "maps").glob("*.jpg"))) == 2
