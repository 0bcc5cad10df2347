"""Command-line interface: `python -m xai_core cam ...` and `python -m xai_core dff ...`, the
successors of the original project's `cam.py` and `dff.py`, and `eval` (faithfulness scores).

Errors a user can cause print one `error: ...` line on stderr and exit with status 2. With `--json`
the only thing on stdout is one JSON object (library prints are sent to stderr)."""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from ..report import pictures
from .._names import split_names
from ..factorize import MAX_COMPONENTS, factorize
from ..errors import XAIError
from ..evaluate import evaluate
from ..faithfulness import RANDOM
from ..explain import explain
from ..images import load_image
from ..methods import list_methods
from ..models import AUTO, list_models, load_model
from ..models import is_source
from ..predict import predict

USAGE_ERROR = 2
DEFAULT_COMPONENTS = inspect.signature(factorize).parameters["n_components"].default


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one `error: ...` line (status 2, as argparse's)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(USAGE_ERROR, f"error: {message} (see `{self.prog} --help`).\n")


def _methods(text: str) -> list[str]:
    """argparse type of --method: one id, a comma list, or `all`, checked against `list_methods()`."""
    ids = split_names(text, lower=True)
    if ids == ["all"]:
        return list_methods()
    unknown = [i for i in ids if i not in list_methods()]
    if unknown or not ids:
        raise argparse.ArgumentTypeError(
            f"unknown method {(unknown or [text])[0]!r}; choose all, or one or more of: {', '.join(list_methods())}"
        )
    return ids


def _model(text: str) -> str:
    """argparse type of --model: auto, a registered model, or a source torchvision:NAME / timm:NAME
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
        f"unknown model {text!r}; choose {', '.join([AUTO] + known)}, torchvision:NAME or timm:NAME"
    )


def _weights(text: str) -> Optional[str]:
    """argparse type of --weights: a tag, a file, or `none` for random weights."""
    return None if text.strip().lower() == "none" else text


_MODEL_HELP = f"{AUTO}, {', '.join(list_models(models_file=False))}, a name from the models file ($XAI_MODELS " \
              "or models.toml), torchvision:NAME (any torchvision classifier) or timm:NAME (default: %(default)s)"
_WEIGHTS_HELP = "weights tag (e.g. DEFAULT, IMAGENET1K_V1; torchvision only), a state-dict file, or none for random"
_LABELS_HELP = "class labels of a torchvision:/timm: model's checkpoint: a text file (one a line) or a JSON list"
_TARGET_HELP = "class index or one of the model's class names (default: the top-1 class)"


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=AUTO, type=_model, help=_MODEL_HELP)
    parser.add_argument("--weights", default="DEFAULT", type=_weights, help=_WEIGHTS_HELP)
    parser.add_argument("--labels", help=_LABELS_HELP)


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

    parser = _Parser(prog="python -m xai_core", description="Explain image classifiers' decisions.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{cam,dff,eval,batch,bench}", parser_class=_Parser)
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
    _model_arguments(ev)
    ev.add_argument("--device", help="torch device, e.g. cpu or cuda (default: best available)")
    ev.add_argument("--json", action="store_true", help="print the scores as JSON on stdout (and nothing else)")
    batch = sub.add_parser("batch", help="explain a folder, glob or list of images into a results folder (resumable)")
    batch.add_argument("--input", required=True, help="a folder (an ImageFolder tree gives true labels), a glob, "
                       "or a .txt list of paths")
    batch.add_argument("--output", required=True, help="results folder: results.parquet, maps/, summary.json, "
                       "index.html")
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
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI on `argv` (default: `sys.argv[1:]`); returns the exit status (0, or 2 after one
    `error:` line on stderr). Usage errors and --help raise `SystemExit` from argparse, as usual."""
    args = build_parser().parse_args(argv)
    if args.command == "bench":
        from . import bench

        bench.run(model=args.model, layer=args.layer, quick=args.quick, image=args.img or str(bench.SAMPLE))
        return 0
    if args.command == "batch":
        return _run_batch(args)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # pytorch-grad-cam warns with print()
            summary = {"cam": _run_cam, "dff": _run_dff, "eval": _run_eval}[args.command](args)
    except XAIError as err:
        return _fail(str(err))
    except KeyboardInterrupt:
        return 130
    if args.json:
        print(json.dumps(summary, indent=2))
    elif args.command == "eval":
        print(_eval_table(summary))
    else:
        for path in summary["outputs"]:
            print(f"wrote {path}")
    return 0


def _fail(message: str) -> int:
    print("error: " + " ".join(message.split()), file=sys.stderr)
    return USAGE_ERROR


def _load(args: argparse.Namespace):
    image = load_image(args.img)  # a bad image fails before the (slower) model load
    handle = load_model(args.model, weights=args.weights, labels=args.labels, device=args.device)
    if handle.notice:
        print("note: " + " ".join(handle.notice.split()), file=sys.stderr)
    top = predict(handle, image, top_k=1)[0]
    return image, handle, {
        "model": handle.name,
        "title": handle.title,
        "weights_source": handle.weights_source,
        "notice": handle.notice,
        "prediction": {"index": top.index, "label": top.label, "score": top.probability},
    }


def _run_cam(args: argparse.Namespace) -> dict:
    image, handle, summary = _load(args)
    result = explain(handle, image, args.method, target=args.target, layer=args.layer,
                     aug_smooth=args.aug_smooth, eigen_smooth=args.eigen_smooth, progress=_ProgressBar())
    paths = _output_paths(args, args.method)
    outputs = [_save(pictures.build_cam_picture(result, m), paths[m]) for m in args.method]
    return {
        **summary,
        "target": {"index": result.target, "label": result.target_label, "score": result.target_probability},
        "methods": list(args.method),
        "layers": list(result.layers),
        "timings": result.timings,
        "notes": list(result.notes),
        "outputs": outputs,
    }


def _run_dff(args: argparse.Namespace) -> dict:
    image, handle, summary = _load(args)
    result = factorize(handle, image, n_components=args.n_components, layer=args.layer, top_k=args.top_k)
    output = _save(pictures.build_dff_picture(result), _output_paths(args, ["dff"])["dff"])
    components = [
        [{"index": int(i), "label": label, "score": score} for i, (label, score) in zip(indices, labels)]
        for indices, labels in zip(result.label_indices, result.labels)
    ]
    return {
        **summary,
        "target": None,  # DFF is class-agnostic
        "methods": ["dff"],
        "layers": [result.layer],
        "timings": result.timings,
        "components": components,
        "outputs": [output],
    }


def _run_eval(args: argparse.Namespace) -> dict:
    image, handle, summary = _load(args)
    result = explain(handle, image, args.method, target=args.target, layer=args.layer, progress=_ProgressBar())
    scores = evaluate(handle, image, result, steps=args.steps, sanity=not args.no_sanity, progress=_ProgressBar())
    return {**summary, **scores.summary(), "methods": list(args.method)}


def _run_batch(args: argparse.Namespace) -> int:
    """`batch`: the dataset job; its last line says how many files were explained and refused.
    Exit status 0 when every readable file was explained, 1 when some were not, 2 for bad options."""
    from .. import dataset

    if not 2 <= args.steps <= 100:
        return _fail(f"--steps must be 2 to 100, not {args.steps}.")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            handle = load_model(args.model, weights=args.weights, labels=args.labels, device=args.device)
            if handle.notice:
                print("note: " + " ".join(handle.notice.split()))
            result = dataset.run(handle, args.input, args.output, args.method, target=args.target, layer=args.layer,
                                 evaluate=args.eval, steps=args.steps, batch_size=args.batch_size,
                                 progress=_RateBar(), engine=args.engine, address=args.address)
    except XAIError as err:
        return _fail(str(err))
    except KeyboardInterrupt:
        print("\ninterrupted: the finished batches are kept; rerun the same command to go on.", file=sys.stderr)
        return 130
    print(result.line())
    return 1 if result.failed else 0


class _RateBar:
    """progress(done, total) callback: a text bar with the rate and the time left, on stderr."""

    WIDTH = 30

    def __init__(self) -> None:
        self._started = None

    def __call__(self, done: int, total: int) -> None:
        import time

        now = time.perf_counter()
        if self._started is None:
            self._started = now
        elapsed = now - self._started
        rate = done / elapsed if elapsed > 0 and done else 0.0
        left = f"{(total - done) / rate:.0f} s left" if rate else "starting"
        step = int(self.WIDTH * done / max(total, 1))
        bar = "#" * step + "-" * (self.WIDTH - step)
        sys.stderr.write(f"\r  images [{bar}] {done}/{total}  {rate:.1f} images/s, {left}   "
                         + ("\n" if done >= total else ""))
        sys.stderr.flush()


_COLUMNS = (("deletion_auc", "deletion"), ("insertion_auc", "insertion"), ("road_morf", "ROAD MoRF"),
            ("road_lerf", "ROAD LeRF"), ("road_combined", "ROAD comb."), ("confidence_change", "conf. chg"),
            ("sanity_spearman", "sanity rho"))


def _eval_table(summary: dict) -> str:
    """The `eval` scores as a plain-text table, then the agreement matrices and the notes."""
    target = summary["target"]
    lines = [f"{summary['model']} at {', '.join(summary['layers'])}: target {target['index']} "
             f"{target['label']} (p={target['score']:.3f})", "",
             f"{'method':<18}" + "".join(f"{title:>11}" for _, title in _COLUMNS) + "  sanity"]
    for method, score in summary["scores"].items():
        cells = "".join("{:>11}".format("-" if score[key] is None else f"{score[key]:.3f}") for key, _ in _COLUMNS)
        passed = {None: "-", True: "passed", False: "FAILED"}[score["sanity_passed"]]
        lines.append(f"{method:<18}{cells}  {passed}")
    lines += ["better:   deletion, ROAD MoRF lower; insertion, ROAD LeRF, combined, confidence change higher; "
              f"compare with {RANDOM!r}."]
    agreement = summary["agreement"]
    for key, title in (("spearman", "Spearman rank correlation"), ("iou", "top-20% IoU")):
        lines += ["", f"agreement, {title}:", " " * 18 + "".join(f"{m[:10]:>11}" for m in agreement["methods"])]
        rows = zip(agreement["methods"], agreement[key])
        lines += [f"{m:<18}" + "".join(f"{v:>11.2f}" for v in row) for m, row in rows]
    for pair in agreement["identical_by_construction"]:
        lines.append(f"identical by construction: {' = '.join(pair['methods'])} ({pair['reason']})")
    return "\n".join(lines + [f"note: {n}" for n in summary["notes"]])


class _ProgressBar:
    """progress(method, done, total) callback drawing one text bar per slow method on stderr."""

    WIDTH = 30

    def __init__(self) -> None:
        self._last: tuple[str, int] = ("", -1)

    def __call__(self, method: str, done: int, total: int) -> None:
        step = int(self.WIDTH * done / max(total, 1))
        if (method, step) == self._last and done < total:
            return
        self._last = (method, step)
        bar = "#" * step + "-" * (self.WIDTH - step)
        sys.stderr.write(f"\r{method:>14} [{bar}] {done}/{total}" + ("\n" if done >= total else ""))
        sys.stderr.flush()


def _output_paths(args: argparse.Namespace, names: Sequence[str]) -> dict[str, str]:
    """One output path per method: `--output` for a single method (moved into `--output-dir` if
    given), else `<dir>/<stem>_<method>.png` (dir: --output-dir, or --output's folder, or the
    current one; stem: --output's, or the image's)."""
    if len(names) == 1 and args.output:
        return {names[0]: str(Path(args.output_dir) / Path(args.output).name) if args.output_dir else args.output}
    output = Path(args.output) if args.output else None
    folder = Path(args.output_dir) if args.output_dir else (output.parent if output else Path("."))
    stem = output.stem if output else Path(args.img).stem
    return {name: str(folder / f"{stem}_{name}.png") for name in names}


def _save(picture, path: str) -> str:
    try:
        return pictures.save(picture, path)
    except (OSError, ValueError) as err:
        raise _OutputError(f"Cannot write {path!r} ({err}); choose a writable .png path.") from None


class _OutputError(XAIError):
    """The output picture could not be written."""
