"""The command line on a Hugging Face classifier (`--model hf:FOLDER`): a tiny random ViT saved with
`save_pretrained` is explained with its own labels, the JSON summary alone on stdout; a folder that
is not there is one error line."""

from __future__ import annotations

import json

import pytest

from xai_core import cli

from _hf import save_tiny_vit
from _deps import need
from conftest import IMAGES

transformers = need("transformers", reason="Hugging Face models are optional: "
                                                          "pip install -r requirements-hf.txt (CI installs it)")


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf") / "tiny-vit"
    return save_tiny_vit(folder, labels=["cat", "dog", "bird"])


def test_cam_on_a_hugging_face_folder(tiny_vit, tmp_path, capsys):
    assert cli.main(["cam", "--img", str(IMAGES / "cat.png"), "--model", f"hf:{tiny_vit}", "--method", "gradcam",
                     "--target", "dog", "--json", "--output", str(tmp_path / "c.png")]) == 0
    summary = json.loads(capsys.readouterr().out)  # nothing else on stdout (no progress bar, no load report)
    # the model is named by its folder's own name, never by the folder's path
    assert summary["model"] == "hf:tiny-vit" and summary["title"] == "tiny-vit (Hugging Face, vit)"
    assert summary["weights_source"] == "the Hugging Face folder tiny-vit"
    assert summary["target"]["label"] == "dog" and summary["prediction"]["label"] in ("cat", "dog", "bird")
    assert (tmp_path / "c.png").is_file()


def test_a_missing_folder_is_one_error_line(tmp_path, capsys):
    code = cli.main(["cam", "--img", str(IMAGES / "cat.png"), "--model", "hf:./no-such-model",
                     "--output", str(tmp_path / "x.png")])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "not on this machine" in lines[0]
