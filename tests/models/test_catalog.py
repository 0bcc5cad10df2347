"""xai_core.catalog: the deployment's models file (XAI_MODELS or models.toml), its one-sentence
errors, and loading its entries, titled and named by the entry, without any server path."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

import xai_core
from xai_core import catalog
from xai_core.models import load_entry
from xai_core.errors import InvalidOptionError, UnknownNameError, WeightsUnavailableError
from _deps import need

ROOT = Path(__file__).resolve().parents[2]


def _models_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, name: str = "models.toml") -> Path:
    path = tmp_path / "deploy" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv(catalog.ENV, str(path))
    return path


LITE = """
[[model]]
name = "my-lite"
source = "efficientnet_lite0"
weights = "DEFAULT"
title = "My Lite model"

[[model]]
name = "mine.v2"
source = "torchvision:resnet18"
weights = "ckpt/model.pt"
labels = "/somewhere/else/labels.txt"
"""


def test_no_models_file_means_no_extra_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(catalog.ENV, raising=False)
    monkeypatch.setattr(catalog, "DEFAULT_FILE", tmp_path / "models.toml")
    assert catalog.models_file() is None and catalog.entries() == []
    (tmp_path / "models.toml").write_text(LITE)  # models.toml at the project root is read without XAI_MODELS
    assert [e.name for e in catalog.entries()] == ["my-lite", "mine.v2"]


def test_entries_resolve_paths_from_the_files_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _models_file(tmp_path, monkeypatch, LITE)
    lite, mine = catalog.entries()
    assert (lite.name, lite.source, lite.weights, lite.labels, lite.title) == (
        "my-lite", "efficientnet_lite0", "DEFAULT", None, "My Lite model")  # a tag stays a tag
    assert mine.weights == str(path.parent / "ckpt" / "model.pt") and mine.labels == "/somewhere/else/labels.txt"
    assert mine.title == "mine.v2"  # no title: the name
    assert mine.public(f"read {mine.weights} and {mine.labels}") == "read ckpt/model.pt and labels.txt"
    assert catalog.get_entry("mine.v2") == mine
    with pytest.raises(UnknownNameError, match="offers no model 'nope'; its models: my-lite, mine.v2"):
        catalog.get_entry("nope")


BAD = {
    "not TOML": ("[[model]\nname = 1", "is not valid TOML"),
    "no source": ('[[model]]\nname = "a"', "model 1 ('a') has no source"),
    "bad name": ('[[model]]\nname = "My Model"\nsource = "timm:vit_small_patch16_224"', "may hold only lowercase"),
    "path as name": ('[[model]]\nname = "../x"\nsource = "timm:x"', "may hold only lowercase"),
    "built-in name": ('[[model]]\nname = "resnet50"\nsource = "timm:resnet50"', "taken by a built-in"),
    "auto": ('[[model]]\nname = "auto"\nsource = "timm:resnet50"', "taken by a built-in"),
    "twice": ('[[model]]\nname = "a"\nsource = "timm:x"\n[[model]]\nname = "a"\nsource = "timm:y"',
              "model 2 ('a') repeats the name 'a'"),
    "unknown key": ('[[model]]\nname = "a"\nsource = "timm:x"\nweight = "x.pt"', "unknown keys (weight)"),
    "bad source": ('[[model]]\nname = "a"\nsource = "hub:x"', "source 'hub:x' is none of"),
    "not a string": ('[[model]]\nname = "a"\nsource = "timm:x"\nlabels = 3', "labels must be a non-empty string"),
    "top-level key": ('models = []', "unknown top-level keys (models)"),
    "not tables": ('model = ["a"]', "must list its models as [[model]] tables"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_file_gets_one_sentence_naming_file_and_entry(case: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    text, expected = BAD[case]
    _models_file(tmp_path, monkeypatch, text, name="shop.toml")
    with pytest.raises(InvalidOptionError) as info:
        catalog.entries()
    message = str(info.value)
    assert expected in message and message.startswith("The models file shop.toml ($XAI_MODELS)")
    assert "\n" not in message and str(tmp_path) not in message  # one line, no server folder


def test_a_missing_xai_models_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(catalog.ENV, str(tmp_path / "gone.toml"))
    with pytest.raises(InvalidOptionError, match=r"gone.toml \(\$XAI_MODELS\) does not exist"):
        catalog.entries()


def test_load_entry_names_and_titles_the_handle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _models_file(tmp_path, monkeypatch, LITE)
    handle = load_entry("my-lite", device="cpu")
    assert handle.name == "my-lite" and handle.spec.title == "My Lite model"
    assert handle.spec.name == "efficientnet_lite0" and len(handle.categories) == 1000
    top = xai_core.predict(handle, ROOT / "assets" / "images" / "cat.png", top_k=1)[0]
    assert "cat" in top.label
    assert xai_core.explain(handle, ROOT / "assets" / "images" / "cat.png", ["gradcam"]).model == "my-lite"


def test_models_file_names_are_model_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A models file's names join `list_models()` and load by name with `load_model`, as in links."""
    _models_file(tmp_path, monkeypatch, LITE)
    assert xai_core.list_models() == ["resnet50", "efficientnet_lite0", "my-lite", "mine.v2"]
    assert xai_core.list_models(models_file=False) == ["resnet50", "efficientnet_lite0"]
    handle = xai_core.load_model("my-lite", device="cpu")
    assert handle.name == "my-lite" and handle.spec.title == "My Lite model"
    with pytest.raises(InvalidOptionError, match="comes from the models file"):
        xai_core.load_model("my-lite", weights=None)
    with pytest.raises(UnknownNameError, match="Unknown model 'nope'; choose auto, resnet50, efficientnet_lite0, "
                                               "my-lite, mine.v2, torchvision:NAME"):
        xai_core.load_model("nope")


def test_the_cli_takes_a_models_file_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture) -> None:
    from xai_core import cli

    _models_file(tmp_path, monkeypatch, LITE)
    assert cli.main(["cam", "--img", str(ROOT / "assets" / "images" / "cat.png"), "--output", str(tmp_path / "o.png"),
                     "--method", "gradcam", "--model", "my-lite"]) == 0
    with pytest.raises(SystemExit) as info:
        cli.main(["cam", "--img", "x.png", "--output", str(tmp_path / "p.png"), "--model", "nope"])
    assert info.value.code == 2 and "my-lite, mine.v2" in capsys.readouterr().err


def test_a_missing_weights_file_names_it_as_the_file_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _models_file(tmp_path, monkeypatch, '[[model]]\nname = "gone"\nsource = "efficientnet_lite0"\n'
                                        'weights = "ckpt/missing.pt"')
    with pytest.raises(WeightsUnavailableError) as info:
        load_entry("gone")
    message = str(info.value)
    assert "model 1 ('gone')" in message and "ckpt/missing.pt" in message and str(tmp_path) not in message


def test_a_load_error_hides_the_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _models_file(tmp_path, monkeypatch, '[[model]]\nname = "junk"\nsource = "efficientnet_lite0"\n'
                                               'weights = "junk.pt"')
    (path.parent / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(xai_core.InvalidWeightsError) as info:
        load_entry("junk")
    assert "model 1 ('junk')" in str(info.value) and str(tmp_path) not in str(info.value)


def test_the_worked_example_checkpoint_loads_with_its_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """README's "Explain your own model": examples/make_checkpoint.py out/ and examples/models.toml."""
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from make_checkpoint import CLASSES, make_checkpoint, make_vit
    finally:
        sys.path.remove(str(ROOT / "examples"))
    (tmp_path / "examples").mkdir()
    shutil.copy(ROOT / "examples" / "models.toml", tmp_path / "examples" / "models.toml")
    make_checkpoint(tmp_path / "out")
    need("transformers")
    make_vit(tmp_path / "out")
    monkeypatch.setenv(catalog.ENV, str(tmp_path / "examples" / "models.toml"))
    entry, vit_entry = catalog.entries()
    vit = load_entry(vit_entry.name, device="cpu")  # the hf: example: a folder next to the checkpoint
    assert vit.name == "tiny_vit_3class" and vit.categories == CLASSES and vit.spec.title == vit_entry.title
    assert "rollout" in xai_core.methods_for(vit) and str(tmp_path) not in vit.weights_source
    handle = load_entry(entry.name, device="cpu")
    assert handle.name == "resnet18_3class" and handle.categories == CLASSES
    assert handle.spec.title == entry.title and str(tmp_path) not in handle.weights_source
    predictions = xai_core.predict(handle, ROOT / "assets" / "images" / "cat.png", top_k=3)
    assert sorted(p.label for p in predictions) == sorted(CLASSES)
    result = xai_core.explain(handle, ROOT / "assets" / "images" / "cat.png", ["gradcam"], target="flower")
    assert result.target_label == "flower" and result.maps["gradcam"].shape
