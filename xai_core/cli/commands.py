"""The commands of `python -m xai_core`: `cam` and `dff`, the successors of the original project's
`cam.py` and `dff.py`, `eval` (faithfulness scores; with `--box` or `--mask` the localisation scores
too, `localise_command.py`), `batch` (the dataset job), `grid` (the grid pointing game,
`grid_command.py`), `concepts` (concepts across a class, `concepts_command.py`) and `bench`.

Errors a user can cause print one `error: ...` line on stderr and exit with status 2. With `--json`
the only thing on stdout is one JSON object (library prints are sent to stderr)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

import torch

from .. import dataset
from ..errors import JobFailed, XAIError
from ..evaluate import evaluate
from ..explain import explain
from ..factorize import factorize
from ..faithfulness import RANDOM
from ..images import load_image
from ..methods import LAST_BLOCKS, attention_layout, get_method, methods_for
from ..models import load_model
from ..predict import predict
from ..report import against_scores_table, against_sentences, against_table, pictures
from . import bench
from .compare_command import run_compare
from .concepts_command import batch_concepts_lines, run_concepts
from .grid_command import run_grid
from .localise_command import ground_truth, localisation_table, localise_summary
from .parser import USAGE_ERROR, AllMethods, build_parser
from .progress import MethodBar, RateBar


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI on `argv` (default: `sys.argv[1:]`); returns the exit status (0, or 2 after one
    `error:` line on stderr). Usage errors and --help raise `SystemExit` from argparse, as usual."""
    args = build_parser().parse_args(argv)
    if args.command == "bench":
        bench.run(model=args.model, layer=args.layer, quick=args.quick, image=args.img or str(bench.SAMPLE))
        return 0
    if args.command == "batch":
        return _run_batch(args)
    if args.command == "grid":
        return run_grid(args)
    if args.command == "compare":
        return run_compare(args)
    if args.command == "concepts":
        return run_concepts(args)
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
        if "localisation" in summary:
            print("\n" + localisation_table(summary["localisation"]))
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
    if isinstance(getattr(args, "method", None), AllMethods):
        args.method = methods_for(handle)
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
                     aug_smooth=args.aug_smooth, eigen_smooth=args.eigen_smooth, progress=MethodBar())
    paths = _output_paths(args, args.method)
    # how many blocks the model has, for the methods that read the last few (LeGrad)
    blocks = len(attention_layout(handle).sites) if any(get_method(m).reads == LAST_BLOCKS for m in args.method) \
        else None
    outputs = [_save(pictures.build_cam_picture(result, m, blocks), paths[m]) for m in args.method]
    return {
        **summary,
        "target": {"index": result.target, "label": result.target_label, "score": result.target_probability},
        "methods": list(args.method),
        "layers": list(result.layers),
        "timings": result.timings,
        "notes": list(result.notes),
        "outputs": outputs,
        # each picture's caption: the method's title, and what its map depends on
        "captions": {m: pictures.cam_caption(result, m, blocks) for m in args.method},
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
    truth = ground_truth(args)  # --box / --mask: a bad one fails before the model loads
    image, handle, summary = _load(args)
    result = explain(handle, image, args.method, target=args.target, layer=args.layer, progress=MethodBar())
    # scored before the (slower) faithfulness scores, so a box outside the image fails at once
    localisation = None if truth is None else localise_summary(result, truth)
    scores = evaluate(handle, image, result, steps=args.steps, sanity=not args.no_sanity, progress=MethodBar())
    return {**summary, **scores.summary(), "methods": list(args.method),
            **({} if localisation is None else {"localisation": localisation})}


def _run_batch(args: argparse.Namespace) -> int:
    """`batch`: the dataset job; its last line says how many files were explained and refused.
    Exit status 0 when every readable file was explained, 1 when some were not, 2 for bad options."""
    if not 2 <= args.steps <= 100:
        return _fail(f"--steps must be 2 to 100, not {args.steps}.")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            handle = load_model(args.model, weights=args.weights, labels=args.labels, device=args.device)
            if handle.notice:
                print("note: " + " ".join(handle.notice.split()))
            against = None
            if args.against is not None:  # model B on the same device as model A
                try:
                    against = load_model(args.against, weights=args.against_weights, labels=args.against_labels,
                                         device=args.device)
                except XAIError as err:  # say which of the two models it is
                    return _fail(f"Model B ({args.against}) cannot be loaded: {err}")
                if against.notice:
                    print("note: model B: " + " ".join(against.notice.split()))
            if isinstance(args.method, AllMethods):
                args.method = methods_for(handle)
            result = dataset.run(handle, args.input, args.output, args.method, target=args.target, layer=args.layer,
                                 evaluate=args.eval, steps=args.steps, batch_size=args.batch_size,
                                 progress=RateBar(), engine=args.engine, address=args.address,
                                 pictures=args.pictures, refresh=args.refresh,
                                 ground_truth=args.ground_truth, against=against,
                                 against_layer=args.against_layer, concepts=args.concepts)
    except JobFailed as err:  # the job ran and failed partway: not a bad option
        _fail(str(err))
        return 1
    except XAIError as err:
        return _fail(str(err))
    except (torch.OutOfMemoryError, MemoryError):  # e.g. loading the model (a batch retries at half size)
        _fail("The machine ran out of memory; rerun with a smaller --batch-size or on a device with more memory "
              "(the finished batches are kept).")
        return 1
    except OSError as err:  # the results folder: disk full, permissions
        _fail(f"The results could not be written ({type(err).__name__}: {err.strerror or err}); free some space or "
              "give --output a writable folder, then rerun the same command to go on.")
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: the finished batches are kept; rerun the same command to go on.", file=sys.stderr)
        return 130
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if result.ground_truth:  # the counts of files without ground truth and ground truth without a file
        print(result.ground_truth)
    if args.against is not None:  # how much the two models agree, from summary.json (`against_summary`)
        print(_agreement_lines(Path(result.output) / "summary.json"))
    for line in batch_concepts_lines(args.output) if args.concepts else ():
        print(line, file=sys.stderr if line.startswith("note: ") else sys.stdout)
    print(result.line())
    return 1 if result.failed else 0


def _agreement_lines(path: Path) -> str:
    """The against block of summary.json at `path` in a few lines: which model B, each method's mean
    Spearman and top-20% IoU with their intervals, the accuracy change, and with --eval each
    method's scores of both models' maps and the change B − A."""
    summary = json.loads(path.read_text(encoding="utf-8"))
    table = against_table(summary)
    lines = against_sentences(summary)
    lines += [f"{method}: Spearman {rho}, top-20% IoU {iou}" for method, rho, iou in
              zip(*(table[c] for c in list(table)[:3]))]
    scored = against_scores_table(summary)  # with --eval: each model's maps scored, and B − A
    lines += [f"{method} {score}: A {a}, B {b}, B − A {change}" for method, score, a, b, change in
              zip(*(scored[c] for c in list(scored)[:5]))]
    return "\n".join(lines)


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
