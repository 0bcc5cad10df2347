"""The parser of `python -m xai_core`: its subcommands and options, with the model and method choices
taken from the registries. Usage errors are one `error: ...` line (status 2, as argparse's)."""

from __future__ import annotations

import argparse
import inspect
from typing import Optional

from .._names import split_names
from ..dataset import PICTURES, check_pictures
from ..errors import XAIError
from ..factorize import MAX_COMPONENTS, factorize
from ..methods import list_methods
from ..models import AUTO, is_source, list_models
from .localise_command import add_ground_truth_arguments

USAGE_ERROR = 2
DEFAULT_COMPONENTS = inspect.signature(factorize).parameters["n_components"].default


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one `error: ...` line (status 2, as argparse's)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(USAGE_ERROR, f"error: {message} (see `{self.prog} --help`).\n")


class AllMethods(list):
    """`--method all`: every method id; the commands keep those that apply to the model loaded
    (`methods_for`: the attention methods only for transformers)."""


def _methods(text: str) -> list[str]:
    """argparse type of --method: one id, a comma list, or `all`, checked against `list_methods()`."""
    ids = split_names(text, lower=True)
    if ids == ["all"]:
        return AllMethods(list_methods())
    unknown = [i for i in ids if i not in list_methods()]
    if unknown or not ids:
        raise argparse.ArgumentTypeError(
            f"unknown method {(unknown or [text])[0]!r}; choose all, or one or more of: {', '.join(list_methods())}"
        )
    return ids


def _model(text: str) -> str:
    """argparse type of --model: auto, a registered model, or a source torchvision:NAME / timm:NAME / hf:FOLDER
    (whose NAME is checked when it is loaded)."""
    name = text.strip()
    if name == AUTO or name in list_models(models_file=False) or is_source(name):
        return name
    try:
        known = list_models()  # the models file's names too
    except XAIError as err:
        raise argparse.ArgumentTypeError(str(err).rstrip(".")) from None
    if name in known:
        return name
    raise argparse.ArgumentTypeError(
        f"unknown model {text!r}; choose {', '.join([AUTO] + known)}, torchvision:NAME, timm:NAME or hf:FOLDER"
    )


def _pictures(text: str) -> str:
    """argparse type of --pictures: all, maps or none (`dataset.check_pictures`'s sentence otherwise)."""
    try:
        return check_pictures(text)
    except XAIError as err:
        raise argparse.ArgumentTypeError(str(err).rstrip(".")) from None


def _weights(text: str) -> Optional[str]:
    """argparse type of --weights: a tag, a file, or `none` for random weights."""
    return None if text.strip().lower() == "none" else text


_MODEL_HELP = f"{AUTO}, {', '.join(list_models(models_file=False))}, a name from the models file ($XAI_MODELS " \
              "or models.toml), torchvision:NAME (any torchvision classifier), timm:NAME or hf:FOLDER (a Hugging Face " \
              "classifier saved with save_pretrained, or a hub id in the local cache) (default: %(default)s)"
_WEIGHTS_HELP = "weights tag (e.g. DEFAULT, IMAGENET1K_V1; torchvision only), a state-dict file, or none for random"
_LABELS_HELP = "class labels of a torchvision:/timm:/hf: model: a text file (one a line) or a JSON list"
_TARGET_HELP = "class index or one of the model's class names (default: the top-1 class)"


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=AUTO, type=_model, help=_MODEL_HELP)
    parser.add_argument("--weights", default="DEFAULT", type=_weights, help=_WEIGHTS_HELP)
    parser.add_argument("--labels", help=_LABELS_HELP)


def _concepts_parser(sub) -> None:
    """The `concepts` subcommand's options."""
    p = sub.add_parser("concepts", help="what the model sees in a whole class: concepts across a folder of its "
                       "images, into a results folder with an HTML atlas")
    p.add_argument("--input", required=True, help="the class's images: a folder, a glob, or a .txt list of paths")
    p.add_argument("--target", required=True, help="the class (index or name), or two separated by a comma for the "
                   "concepts they share (each image counts for the one of the two it scores higher)")
    p.add_argument("--n-concepts", "--n_concepts", dest="n_concepts", type=int, default=5,
                   help="number of concepts (default: %(default)s)")
    p.add_argument("--output", required=True, help="results folder: concepts.json, crops/, index.html")
    p.add_argument("--layer", help="layer to factorise (default: the model's)")
    _model_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="seed of NMF and of the random removal order (default: 0)")
    p.add_argument("--top-crops", type=int, default=6, help="crops shown per concept (default: %(default)s)")
    p.add_argument("--no-fidelity", action="store_true", help="skip the removal curves")
    p.add_argument("--batch-size", type=int, help="images per batch (default: 16 on a CPU, 64 on a GPU)")
    p.add_argument("--device", help="torch device, e.g. cpu or cuda (default: best available)")


def build_parser() -> argparse.ArgumentParser:
    """The parser of `python -m xai_core` with its `cam` and `dff` subcommands (model and method
    choices come from the registries)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--img", required=True, help="input image (PNG, JPEG, WebP, ...)")
    common.add_argument("--output", help="output PNG (default: <image stem>_<method>.png)")
    common.add_argument("--output-dir", help="folder for the output PNGs")
    _model_arguments(common)
    common.add_argument("--device", help="torch device, e.g. cpu or cuda (default: best available)")
    common.add_argument("--json", action="store_true", help="print a JSON summary on stdout (and nothing else)")

    parser = Parser(prog="python -m xai_core", description="Explain image classifiers' decisions.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{cam,dff,eval,batch,grid,compare,concepts,bench}", parser_class=Parser)
    cam = sub.add_parser("cam", parents=[common], help="class activation maps (Grad-CAM, HiResCAM, ...)")
    cam.add_argument("--method", type=_methods, default=["gradcam"], metavar="METHOD",
                     help=f"one id, a comma list, or all; ids: {', '.join(list_methods())} (default: gradcam)")
    cam.add_argument("--layer", help="target layer, or a comma list of layers to fuse (default: the model's)")
    cam.add_argument("--target", help=_TARGET_HELP)
    cam.add_argument("--aug-smooth", action="store_true", help="average over flipped/scaled copies")
    cam.add_argument("--eigen-smooth", action="store_true", help="keep the first principal component")
    dff = sub.add_parser("dff", parents=[common], help="deep feature factorization into labelled concepts")
    dff.add_argument("--n-components", "--n_components", dest="n_components", type=int, default=DEFAULT_COMPONENTS,
                     help=f"number of concepts, 1 to {MAX_COMPONENTS} (default: %(default)s)")
    dff.add_argument("--layer", help="layer to factorize (default: the model's)")
    dff.add_argument("--top-k", type=int, default=2, help="labels shown per concept (default: %(default)s)")
    bench = sub.add_parser("bench", help="time xai_core against pytorch-grad-cam and print a table")
    bench.add_argument("--model", default="resnet50", choices=list_models(models_file=False))
    bench.add_argument("--layer", help="target layer (default: the model's)")
    bench.add_argument("--img", default=None, help="image (default: the cat sample)")
    bench.add_argument("--quick", action="store_true", help="perturbation methods on a 48 px input (under a minute)")
    ev = sub.add_parser("eval", help="faithfulness scores, sanity check and agreement of CAM maps")
    ev.add_argument("--img", required=True, help="input image (PNG, JPEG, WebP, ...)")
    ev.add_argument("--method", type=_methods, default=["gradcam"], metavar="METHOD",
                    help=f"one id, a comma list, or all; ids: {', '.join(list_methods())} (default: gradcam)")
    ev.add_argument("--layer", help="target layer, or a comma list of layers to fuse (default: the model's)")
    ev.add_argument("--target", help=_TARGET_HELP)
    ev.add_argument("--steps", type=int, default=20, help="deletion/insertion steps (default: %(default)s)")
    ev.add_argument("--no-sanity", action="store_true", help="skip the model-randomization sanity check")
    add_ground_truth_arguments(ev)  # --box / --mask: the localisation scores too
    _model_arguments(ev)
    ev.add_argument("--device", help="torch device, e.g. cpu or cuda (default: best available)")
    ev.add_argument("--json", action="store_true", help="print the scores as JSON on stdout (and nothing else)")
    batch = sub.add_parser("batch", help="explain a folder, glob or list of images into a results folder (resumable)")
    batch.add_argument("--input", required=True, help="a folder (an ImageFolder tree gives true labels), a glob, "
                       "or a .txt list of paths")
    batch.add_argument("--output", required=True, help="results folder: results.parquet, maps/, summary.json, "
                       "index.html and its gallery/")
    batch.add_argument("--method", type=_methods, default=["gradcam"], metavar="METHOD",
                       help=f"one id, a comma list, or all; ids: {', '.join(list_methods())} (default: gradcam)")
    batch.add_argument("--target", help=_TARGET_HELP)
    batch.add_argument("--layer", help="target layer, or a comma list of layers to fuse (default: the model's)")
    _model_arguments(batch)
    batch.add_argument("--eval", action="store_true", help="also deletion, insertion and ROAD scores (and the "
                       "random map's), with confidence intervals in summary.json")
    batch.add_argument("--steps", type=int, default=20, help="deletion/insertion steps with --eval (default: %(default)s)")
    batch.add_argument("--batch-size", type=int, help="images per batch (default: 16 on a CPU, 64 on a GPU)")
    batch.add_argument("--device", help="torch device, e.g. cpu or cuda (default: best available)")
    batch.add_argument("--engine", choices=["local", "ray"], default="local",
                       help="local: this process; ray: Ray Data actors (pip install -r requirements-ray.txt)")
    batch.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
    batch.add_argument("--pictures", type=_pictures, default=PICTURES[0], metavar="|".join(PICTURES),
                       help="what maps/ gets: all (each picture, its maps over it as JPEG, the raw maps), maps "
                       "(the picture and the raw maps; overlays are drawn from them when shown) or none (the "
                       "table only); a rerun asking for more explains the files again to write them "
                       "(default: %(default)s)")
    batch.add_argument("--refresh", action="store_true", help="explain again the files done before by another "
                       "results version of xai_core (whose maps or scores may differ); without it a rerun keeps "
                       "their rows and says how many it kept")
    batch.add_argument("--against", type=_model, metavar="MODEL", help="model B: explain every file with it "
                       "too and compare the two models' maps (Spearman, top-20%% IoU) and predictions; the same "
                       "choices as --model")
    batch.add_argument("--against-weights", default="DEFAULT", type=_weights, help=f"model B's {_WEIGHTS_HELP}")
    batch.add_argument("--against-labels", help=f"model B's {_LABELS_HELP}")
    batch.add_argument("--against-layer", metavar="LAYER", help="model B's target layer, or a comma list of layers "
                       "to fuse (default: model B's); with --eval model B's maps are scored too")
    batch.add_argument("--ground-truth", metavar="PATH", help="score whether each map points at the object: a CSV "
                       "path,x0,y0,x1,y1[,label] (pixels of the original image), a COCO JSON, or a folder of PNG masks "
                       "or Pascal VOC XML files mirroring the input's paths; a label naming a class makes it the target")
    batch.add_argument("--concepts", type=int, metavar="K", help="at the end, K concepts per class (predicted, and "
                       "true where folders are classes) with at least 8 images, from the activations kept during the "
                       "run (no second pass; with either engine, on Ray by the actors): OUT/concepts/<class>/ and "
                       "summary.json's \"concepts\"")
    grid = sub.add_parser("grid", help="the grid pointing game: does each map point at its cell of a 2x2 grid of "
                          "confidently classified photos?")
    grid.add_argument("--input", required=True, help="a folder of photos, a glob, or a .txt list of paths")
    grid.add_argument("--output", required=True, help="results folder: grids/, results.csv, summary.json, index.html")
    grid.add_argument("--method", type=_methods, default=["gradcam"], metavar="METHOD",
                      help=f"one id, a comma list, or all; ids: {', '.join(list_methods())} (default: gradcam)")
    grid.add_argument("--grids", type=int, default=10, help="how many 2x2 grids (default: %(default)s)")
    grid.add_argument("--min-confidence", type=float, default=0.5,
                      help="a photo takes part when its top-1 probability reaches this (default: %(default)s)")
    grid.add_argument("--seed", type=int, default=0, help="seed of the grids' draw (default: %(default)s)")
    grid.add_argument("--layer", help="target layer, or a comma list of layers to fuse (default: the model's)")
    _model_arguments(grid)
    grid.add_argument("--device", help="torch device, e.g. cpu or cuda (default: best available)")
    _compare_arguments(sub)
    _concepts_parser(sub)
    return parser


def _compare_arguments(sub) -> None:
    compare = sub.add_parser("compare", help="two models, one question: both models' maps of one image side by "
                             "side, their difference and how much they agree")
    compare.add_argument("--img", required=True, help="input image (PNG, JPEG, WebP, ...)")
    _model_arguments(compare)
    compare.add_argument("--against", required=True, type=_model, metavar="MODEL",
                         help="model B, compared with --model (A); the same choices as --model")
    compare.add_argument("--against-weights", default="DEFAULT", type=_weights, help=f"model B's {_WEIGHTS_HELP}")
    compare.add_argument("--against-labels", help=f"model B's {_LABELS_HELP}")
    compare.add_argument("--output-dir", default=".", help="folder for the pictures, one per method: "
                         "<image stem>_compare_<method>.png (default: the current one)")
    compare.add_argument("--method", type=_methods, default=["gradcam"], metavar="METHOD",
                         help=f"one id, a comma list, or all; ids: {', '.join(list_methods())} (default: gradcam)")
    compare.add_argument("--target", help="class index of model A or a class name both models know, matched by "
                         "name in B; own: each model its own top-1 (default: model A's top-1 class)")
    compare.add_argument("--layer", help="model A's target layer (default: the model's)")
    compare.add_argument("--against-layer", help="model B's target layer (default: the model's)")
    compare.add_argument("--device", help="torch device, e.g. cpu or cuda (default: best available)")
    compare.add_argument("--against-device", help="model B's device (default: --device)")
    compare.add_argument("--json", action="store_true", help="print the predictions and the agreement as JSON on "
                         "stdout (and nothing else)")


__all__ = ["DEFAULT_COMPONENTS", "USAGE_ERROR", "Parser", "build_parser"]
