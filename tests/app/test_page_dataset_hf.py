"""A results folder made by `python -m xai_core batch --model hf:/absolute/folder` names its model by
the folder's own name: summary.json, index.html, the Dataset page and the CAM page it hands an image
to show no server path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from xai_core import cli
from _hf import save_tiny_vit
from _deps import need
from _apptest import errors as _errors, new_app, page as _page, run as _run
from _no_paths import forbidden_strings, leaks
from test_app_no_paths import all_text

transformers = need("transformers", reason="Hugging Face models are optional: "
                                                          "pip install -r requirements-hf.txt (CI installs it)")
IMAGES = Path(__file__).resolve().parents[2] / "assets" / "images"


@pytest.fixture(scope="module")
def hf_results(tmp_path_factory) -> tuple[Path, Path]:
    """(results root, the model's folder): a tiny random ViT saved under an absolute path, and its
    batch run over two photos, "vit-run"."""
    base = tmp_path_factory.mktemp("hfdata")
    folder = base / "models" / "tiny-vit"
    save_tiny_vit(folder, labels=["cat", "coffee", "flower"])
    photos = base / "photos"
    photos.mkdir()
    for name in ("cat.png", "coffee.png"):
        shutil.copy(IMAGES / name, photos / name)
    root = base / "results"
    assert cli.main(["batch", "--model", f"hf:{folder.resolve()}", "--input", str(photos), "--output",
                     str(root / "vit-run"), "--method", "gradcam", "--pictures", "maps", "--device", "cpu"]) == 0
    return root, folder


def test_summary_and_index_name_the_model_by_its_folders_name(hf_results):
    root, folder = hf_results
    forbidden = forbidden_strings(folder, root)
    summary = json.loads((root / "vit-run" / "summary.json").read_text())
    assert summary.pop("input_root").startswith("/")  # the server's own record of its input (never shown)
    index = (root / "vit-run" / "index.html").read_text()
    for name, text in (("summary.json", json.dumps(summary)), ("index.html", index)):
        assert "hf:tiny-vit" in text and not leaks(text, forbidden), name


def test_the_dataset_page_and_the_cam_page_show_no_server_path(monkeypatch, hf_results):
    root, folder = hf_results
    monkeypatch.setenv("XAI_RESULTS_ROOT", str(root))
    app = _page(_run(new_app(monkeypatch)), "dataset")
    app.segmented_control(key="w:dataset.source").set_value("Results folder")
    app = _run(app)
    assert not _errors(app) and app.selectbox(key="w:dataset.folder").value == "vit-run"
    forbidden = forbidden_strings(folder, root)
    assert not leaks(all_text(app), forbidden)
    buttons = [b for b in app.button if str(b.key).startswith("open.")]
    buttons[0].click()
    app = _run(app)  # the CAM page: the results' model is not offered there, which a notice says
    assert app.title[0].value == "Compare CAM methods" and not _errors(app)
    text = all_text(app)
    assert "hf:tiny-vit" in text.replace("\u2060", "")  # as read: the notice escapes the name (a word joiner)
    assert not leaks(text, forbidden)
