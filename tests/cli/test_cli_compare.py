"""`python -m xai_core compare`: the bundled EfficientNet-Lite0 against a user's checkpoint of another
architecture with its own labels (the main scenario, in a subprocess), a model against itself
(agreement 1, a white difference panel), `--json`, `--target own`, and the errors a user can cause:
one `error:` line, status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision.models as tvm
from PIL import Image

from conftest import IMAGES, ROOT
from xai_core import cli

CAT = str(IMAGES / "cat.png")
LITE = ["--model", "efficientnet_lite0"]
CATS = ["tabby", "tiger cat", "Egyptian cat"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict:
    """A 3-class ResNet-18 checkpoint (random, seeded) with cat labels, and a 1000-class one."""
    folder = tmp_path_factory.mktemp("compare_ckpt")
    torch.manual_seed(0)
    torch.save(tvm.resnet18(weights=None, num_classes=3).state_dict(), folder / "cats.pt")
    (folder / "cats.txt").write_text("\n".join(CATS) + "\n")
    torch.manual_seed(0)
    torch.save(tvm.resnet18(weights=None).state_dict(), folder / "imagenet.pt")
    return {"cats": ["--against", "torchvision:resnet18", "--against-weights", str(folder / "cats.pt"),
                     "--against-labels", str(folder / "cats.txt")],
            "imagenet": str(folder / "imagenet.pt")}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "XAI_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "xai_core", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def assert_usage_error(code: int, stderr: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr


def test_the_bundled_model_against_a_users_checkpoint(checkpoints, tmp_path):
    run = run_cli("compare", *LITE, *checkpoints["cats"], "--img", CAT, "--output-dir", tmp_path,
                  "--method", "gradcam,hirescam")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[:2] == ["A: efficientnet_lite0", "B: torchvision:resnet18"]
    # model A's top-1 (a cat class) is explained by both: B knows it by name
    prediction = lines[2]
    assert prediction.startswith("prediction: ") and " -> " in prediction
    said_a, said_b = prediction[len("prediction: "):].split(" -> ")
    label = said_a.rsplit(" ", 1)[0]
    assert label in CATS and said_b.rsplit(" ", 1)[0] == label
    for method, title in (("gradcam", "Grad-CAM"), ("hirescam", "HiResCAM")):
        assert any(line.startswith(f"{method}: Spearman ") and "top-20% IoU" in line for line in lines)
        assert any(line.startswith(f"  {title}'s maps ") for line in lines)
        path = tmp_path / f"cat_compare_{method}.png"
        assert f"wrote {path}" in lines
        with Image.open(path) as picture:
            assert picture.format == "PNG" and picture.width == 3 * 224 and picture.height > 224


def test_a_model_against_itself_as_json(checkpoints, tmp_path, capsys):
    same = ["--model", "torchvision:resnet18", "--weights", checkpoints["imagenet"],
            "--against", "torchvision:resnet18", "--against-weights", checkpoints["imagenet"]]
    assert cli.main(["compare", *same, "--img", CAT, "--output-dir", str(tmp_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary) == {"model_a", "model_b", "predictions", "agreement", "same_geometry", "region", "notes",
                            "outputs"}
    a, b = summary["predictions"]["a"], summary["predictions"]["b"]
    assert a == b and a["target"]["index"] == a["top"][0]["index"] and len(a["top"]) == 5
    agreement = summary["agreement"]["gradcam"]
    assert (agreement["spearman"], agreement["top_iou"], agreement["note"]) == (1.0, 1.0, None)
    assert agreement["verdict"].startswith("Grad-CAM's maps agree strongly (Spearman 1.00)")
    assert summary["same_geometry"] and summary["outputs"] == [str(tmp_path / "cat_compare_gradcam.png")]
    with Image.open(summary["outputs"][0]) as picture:
        pixels = np.asarray(picture.convert("RGB"))
    # the difference panel (the right third, under the titles) is one colour: 0 everywhere
    panel = pixels[60:200, 2 * 224 + 5:3 * 224 - 5].astype(int)
    grey_of_image = panel.max(axis=-1) - panel.min(axis=-1)
    assert (grey_of_image <= 2).all()  # white (0 on the scale) over a grey copy of the picture: no colour


def test_own_targets_in_plain_text(checkpoints, tmp_path, capsys):
    assert cli.main(["compare", *LITE, *checkpoints["cats"], "--img", CAT, "--output-dir", str(tmp_path),
                     "--target", "own"]) == 0
    out = capsys.readouterr().out
    assert "note: Each model explains its own top class (target='own')" in out


@pytest.mark.parametrize("extra, words", [
    (["--target", "goldfish"], "give a class both models know: 'tabby', 'tiger cat', 'Egyptian cat'"),
    (["--target", "sports car"], "give a class both models know"),
    (["--method", "rollout"], "applies to neither model"),
    (["--against-layer", "nosuchlayer"], "nosuchlayer"),
])
def test_errors_are_one_line(checkpoints, extra, words, tmp_path, capsys):
    code = cli.main(["compare", *LITE, *checkpoints["cats"], "--img", CAT, "--output-dir", str(tmp_path), *extra])
    err = capsys.readouterr().err
    assert_usage_error(code, err)
    assert words in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("args", [
    ["--against", "nosuchmodel"],
    ["--against", "torchvision:resnet18", "--against-weights", "/nonexistent/weights.pth"],
    [],  # no --against
])
def test_model_errors_are_the_loaders_line(args, tmp_path, capsys):
    try:
        code = cli.main(["compare", *LITE, *args, "--img", CAT, "--output-dir", str(tmp_path)])
    except SystemExit as exit_:  # argparse
        code = exit_.code
    assert_usage_error(code, capsys.readouterr().err)


def test_a_bad_image_fails_before_the_models_load(tmp_path, capsys):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    code = cli.main(["compare", *LITE, "--against", "efficientnet_lite0", "--img", str(text),
                     "--output-dir", str(tmp_path)])
    assert_usage_error(code, capsys.readouterr().err)
