"""The command line with the attention methods (LeGrad, attention rollout, gradient-weighted
relevance): on a tiny random Hugging Face ViT (`--model hf:FOLDER`) they write one picture each;
`--method all` keeps them for a transformer and leaves them out for a CNN; asking for one on a CNN is
one `error:` line. The main scenario runs `python -m xai_core` in a subprocess, the others
`cli.main` in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from _deps import need
from conftest import IMAGES, ROOT
from xai_core import cli
from xai_core.cli import commands
from xai_core.errors import XAIError
from xai_core.methods import methods_for

transformers = need("transformers", reason="Hugging Face models are optional: "
                                                          "pip install -r requirements-hf.txt (CI installs it)")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ATTENTION = ["legrad", "rollout", "relevance"]
LABELS = ["ant", "bee", "cat", "dog", "eel"]  # 5 classes: Finer-CAM (in `all`) compares with 3 others
CAT = str(IMAGES / "cat.png")



@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict:
    """A tiny random ViT (3 blocks, 4x4 patches) and a tiny random ConvNeXt, saved with save_pretrained."""
    t = transformers
    root = tmp_path_factory.mktemp("hf_cli")
    labels = dict(num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
                  label2id={name: i for i, name in enumerate(LABELS)})
    torch.manual_seed(0)
    vit = t.ViTForImageClassification(t.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=3,
                                                  num_attention_heads=2, intermediate_size=64,
                                                  initializer_range=0.2, **labels))
    vit.save_pretrained(root / "tiny-vit")
    t.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(root / "tiny-vit")
    convnext = t.ConvNextForImageClassification(t.ConvNextConfig(num_stages=2, hidden_sizes=[8, 16], depths=[1, 1],
                                                                 **labels))
    convnext.save_pretrained(root / "tiny-convnext")
    t.ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875).save_pretrained(root / "tiny-convnext")
    return {"vit": root / "tiny-vit", "convnext": root / "tiny-convnext"}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "XAI_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "xai_core", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def in_process(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_pictures(paths: list[str], size: int = 32) -> None:
    """Each picture: the model's input and its method's overlay, side by side over a caption; the
    input panel is the same in all of them, the overlays differ."""
    panels = []
    for path in paths:
        with Image.open(path) as picture:
            assert picture.format == "PNG" and picture.width == 2 * size and picture.height > size, picture.size
            panels.append(np.asarray(picture.convert("RGB"))[:size])
    assert all(np.array_equal(p[:, :size], panels[0][:, :size]) for p in panels)
    for i in range(len(panels)):
        for j in range(i + 1, len(panels)):
            assert not np.array_equal(panels[i][:, size:], panels[j][:, size:]), (paths[i], paths[j])


def test_the_three_methods_write_one_picture_each(folders, tmp_path):
    run = run_cli("cam", "--model", f"hf:{folders['vit']}", "--img", CAT, "--output", tmp_path / "vit.png",
                  "--method", "legrad,rollout,relevance", "--target", "bee", "--json")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    summary = json.loads(run.stdout)  # the JSON alone on stdout
    assert summary["methods"] == ATTENTION
    expected = [str(tmp_path / f"vit_{m}.png") for m in ATTENTION]
    assert summary["outputs"] == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(os.path.basename(p) for p in expected)
    assert_pictures(expected)
    assert summary["title"] == "tiny-vit (Hugging Face, vit)"
    assert summary["target"]["label"] == "bee" and summary["target"]["index"] == 1
    assert {"legrad", "rollout", "relevance"} <= set(summary["timings"])
    assert any("LeGrad, Attention rollout and Gradient-weighted relevance read the attention" in n
               for n in summary["notes"]), summary["notes"]
    # each caption says what its map depends on: never the target layer; rollout is class-agnostic;
    # LeGrad's last 4 blocks are all 3 of this model's
    bee = f"target bee ({summary['target']['score']:.1%})"
    assert summary["captions"] == {"legrad": ["LeGrad", f"last 3 blocks · {bee}"],
                                   "rollout": ["Attention rollout", "all blocks · class-agnostic"],
                                   "relevance": ["Gradient-weighted relevance", f"all blocks · {bee}"]}
    assert summary["layers"] and not any(layer in " ".join(lines) for layer in summary["layers"] for lines in summary["captions"].values())


def test_all_on_a_transformer_includes_the_attention_methods(folders, tmp_path, capsys):
    code, out, err = in_process(["cam", "--model", f"hf:{folders['vit']}", "--img", CAT, "--method", "all",
                                 "--output-dir", str(tmp_path), "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert set(ATTENTION) <= set(summary["methods"]) and "gradcam" in summary["methods"]
    assert summary["outputs"] == [str(tmp_path / f"cat_{m}.png") for m in summary["methods"]]
    assert all(os.path.isfile(p) for p in summary["outputs"])


def test_all_on_a_cnn_leaves_the_attention_methods_out(folders, tmp_path, capsys):
    code, out, err = in_process(["cam", "--model", f"hf:{folders['convnext']}", "--img", CAT, "--method", "all",
                                 "--output-dir", str(tmp_path), "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert "gradcam" in summary["methods"] and not set(ATTENTION) & set(summary["methods"])
    assert len(summary["outputs"]) == len(summary["methods"]) and all(os.path.isfile(p) for p in summary["outputs"])
    assert not any(f"_{m}.png" in p for m in ATTENTION for p in os.listdir(tmp_path))


def test_all_on_the_bundled_cnn_asks_for_no_attention_method(lite, tmp_path, capsys, monkeypatch):
    """`--method all` on EfficientNet-Lite0 would run Score-CAM and Ablation-CAM over 1280 channels
    (over a minute here): the methods the command asks `explain` for are recorded, then it stops."""
    asked = []

    def stop(handle, image, methods, **kwargs):
        asked.append(list(methods))
        raise XAIError("Stopped by the test.")

    monkeypatch.setattr(commands, "explain", stop)
    code, _, err = in_process(["cam", "--model", "efficientnet_lite0", "--img", CAT, "--method", "all",
                               "--output-dir", str(tmp_path), "--json"], capsys)
    assert code == 2 and err.strip() == "error: Stopped by the test."
    assert asked == [methods_for(lite)]
    assert "gradcam" in asked[0] and "scorecam" in asked[0] and not set(ATTENTION) & set(asked[0])


@pytest.mark.parametrize("methods,words", [("legrad", ["LeGrad needs"]),
                                           ("gradcam,rollout,relevance", ["Attention rollout and Gradient-weighted "
                                                                          "relevance need"])])
def test_an_attention_method_on_a_cnn_is_one_error_line(tmp_path, capsys, methods, words):
    code, out, err = in_process(["cam", "--model", "efficientnet_lite0", "--img", CAT, "--method", methods,
                                 "--output", str(tmp_path / "x.png")], capsys)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("note: ")]
    assert code == 2 and out == ""
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert all(w in lines[0] for w in words) and "convolutional" in lines[0], lines[0]
    assert not list(tmp_path.iterdir())  # no picture written
