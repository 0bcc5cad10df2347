"""`python -m xai_core compare`: two models, one question (`compare_models`). Writes one picture per
method (A | B | difference), prints the predictions ("tabby 62% -> tabby 91%"), each method's agreement
and its verdict; with `--json` one JSON object instead. A user error is one `error: ...` line (status 2)."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from pathlib import Path
from typing import Optional

from ..compare import Comparison, compare_models
from ..errors import XAIError
from ..images import load_image
from ..methods import list_methods, methods_for
from ..models import load_model
from ..report import build_comparison_picture, pictures
from .parser import USAGE_ERROR, AllMethods
from .progress import MethodBar


def _fail(message: str) -> int:
    print("error: " + " ".join(message.split()), file=sys.stderr)
    return USAGE_ERROR


def run_compare(args: argparse.Namespace) -> int:
    """Run `compare` with the parsed `args`; returns the exit status."""
    try:
        with contextlib.redirect_stdout(sys.stderr):  # pytorch-grad-cam warns with print()
            image = load_image(args.img)  # a bad image fails before the (slower) model loads
            handle_a = load_model(args.model, weights=args.weights, labels=args.labels, device=args.device)
            handle_b = load_model(args.against, weights=args.against_weights, labels=args.against_labels,
                                  device=args.against_device or args.device)
            for handle in (handle_a, handle_b):
                if handle.notice:
                    print("note: " + " ".join(handle.notice.split()))
            methods = args.method
            if isinstance(methods, AllMethods):  # those that apply to either model
                offered = set(methods_for(handle_a)) | set(methods_for(handle_b))
                methods = [m for m in list_methods() if m in offered]
            result = compare_models(handle_a, handle_b, image, methods, target=args.target, layer_a=args.layer,
                                    layer_b=args.against_layer, progress=MethodBar())
            outputs = [_save(build_comparison_picture(result, m), _path(args, m)) for m in result.methods]
    except XAIError as err:
        return _fail(str(err))
    except KeyboardInterrupt:
        return 130
    summary = comparison_summary(result, outputs)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(comparison_text(summary))
    return 0


def comparison_summary(result: Comparison, outputs: list[str]) -> dict:
    """The JSON of `compare --json`: both models' predictions, each method's agreement and verdict,
    the notes and the pictures written (NaN agreement: null)."""
    def side(top, index, label, probability) -> dict:
        return {"target": {"index": index, "label": label, "score": probability},
                "top": [{"index": i, "label": name, "score": p} for i, name, p in top]}

    return {
        "model_a": result.model_a,
        "model_b": result.model_b,
        "predictions": {"a": side(result.top_a, result.target_a, result.target_label_a, result.probability_a),
                        "b": side(result.top_b, result.target_b, result.target_label_b, result.probability_b)},
        "agreement": {m: {"spearman": _number(c.spearman), "top_iou": _number(c.top_iou), "note": c.note,
                          "verdict": result.verdict(m)} for m, c in result.methods.items()},
        "same_geometry": result.same_geometry,
        "region": [round(v, 2) for v in result.region],
        "notes": list(result.notes),
        "outputs": outputs,
    }


def comparison_text(summary: dict) -> str:
    """`compare`'s plain-text report from `comparison_summary`."""
    a, b = summary["predictions"]["a"], summary["predictions"]["b"]
    lines = [f"A: {summary['model_a']}", f"B: {summary['model_b']}",
             f"prediction: {_said(a['target'])} -> {_said(b['target'])}"]
    for name, side in (("A", a), ("B", b)):
        if side["top"] and side["top"][0]["index"] != side["target"]["index"]:
            lines.append(f"top-1 of {name}: {_said(side['top'][0])}")
    for method, agreement in summary["agreement"].items():
        numbers = ", ".join(f"{title} {'-' if agreement[key] is None else format(agreement[key], '.2f')}"
                            for key, title in (("spearman", "Spearman"), ("top_iou", "top-20% IoU")))
        lines += [f"{method}: {numbers}", f"  {agreement['verdict']}"]
    lines += [f"wrote {path}" for path in summary["outputs"]]
    return "\n".join(lines + [f"note: {n}" for n in summary["notes"]])


def _said(prediction: dict) -> str:
    score = prediction["score"]
    return f"{prediction['label']} {score:.0%}" if score >= 0.01 else f"{prediction['label']} {score:.2%}"


def _number(value: Optional[float]) -> Optional[float]:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def _path(args: argparse.Namespace, method: str) -> str:
    return str(Path(args.output_dir) / f"{Path(args.img).stem}_compare_{method}.png")


def _save(picture, path: str) -> str:
    try:
        return pictures.save(picture, path)
    except (OSError, ValueError) as err:
        raise _OutputError(f"Cannot write {path!r} ({err}); give --output-dir a writable folder.") from None


class _OutputError(XAIError):
    """The comparison picture could not be written."""


__all__ = ["comparison_summary", "comparison_text", "run_compare"]
