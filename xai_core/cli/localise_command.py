"""`eval --box` / `eval --mask`: does the map point at the object? The options (`add_ground_truth_arguments`),
the scores of each map and of the two baselines (`localise_summary`, from `xai_core.localise`) and
their plain-text table (`localisation_table`)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Optional

from ..explain import Explanation
from ..faithfulness import RANDOM
from ..localisation import CENTRE, localise, read_mask

#: The sentence under every localisation table: why the centre prior is the baseline to beat.
CENTRE_SENTENCE = ("Objects sit near the centre of most photos: a map that does not beat the centre prior shows "
                   "nothing about the model.")
_SCORES = (("pointing", "pointing"), ("energy", "energy"), ("rank", "rank acc."), ("iou", "IoU"))


def _boxes(text: str) -> list[tuple[float, float, float, float]]:
    """argparse type of --box: `x0,y0,x1,y1`, or several such boxes separated by ';' (their union)."""
    boxes = []
    for part in text.split(";"):
        if not part.strip():
            continue
        cells = part.split(",")  # not split_names: it drops repeats, and a box may repeat a number
        try:
            values = [float(c) for c in cells]
        except ValueError:
            values = []
        if len(values) != 4 or not all(math.isfinite(v) for v in values):
            raise argparse.ArgumentTypeError(f"a box is four numbers x0,y0,x1,y1 in the image's pixels, not {part!r}")
        x0, y0, x1, y1 = values
        if not (x1 > x0 and y1 > y0):
            raise argparse.ArgumentTypeError(f"the box {part.strip()!r} is empty: x1 must exceed x0 and y1 exceed y0")
        boxes.append((x0, y0, x1, y1))
    if not boxes:
        raise argparse.ArgumentTypeError(f"a box is four numbers x0,y0,x1,y1 in the image's pixels, not {text!r}")
    return boxes


def add_ground_truth_arguments(parser: argparse.ArgumentParser) -> None:
    """`--box` (repeatable; ';' separates several boxes: their union) and `--mask`, mutually exclusive."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--box", type=_boxes, action="append", metavar="X0,Y0,X1,Y1",
                       help="the object's box in the original image's pixels (right and bottom exclusive); "
                       "repeat it or separate boxes with ';' for their union: also prints the localisation scores")
    group.add_argument("--mask", metavar="FILE", help="the object's mask, an image of any size (scaled to the "
                       "image; > 0 is the object): also prints the localisation scores")


def ground_truth(args: argparse.Namespace) -> Optional[dict]:
    """The object the user gave ({"box": [[x0, y0, x1, y1], ...]} or {"mask": path}), or None. An
    unreadable mask raises `InvalidGroundTruthError` here, before the model is loaded."""
    if getattr(args, "box", None):
        return {"box": [list(b) for boxes in args.box for b in boxes]}
    if getattr(args, "mask", None):
        read_mask(args.mask)  # fails fast with one sentence; `localise` reads it again (cheap)
        return {"mask": str(Path(args.mask))}
    return None


def localise_summary(explanation: Explanation, truth: dict) -> dict:
    """`xai_core.localise` of `explanation` against `truth` (from `ground_truth`) as JSON-ready
    Python: the object's pixels on the picture, the pointing tolerance, the scores of each map and
    of the baselines ("random", "centre"; None where undefined), the notes. Raises
    `InvalidGroundTruthError` (e.g. a box outside the image)."""
    if "box" in truth:
        result = localise(explanation, box=[tuple(b) for b in truth["box"]])
    else:
        result = localise(explanation, mask=truth["mask"])
    return {
        "ground_truth": truth,
        "object_pixels": int(result.mask.sum()),
        "picture_pixels": int(result.mask.size),
        "radius": result.radius,
        "outside": result.outside,
        "scores": {name: {key: (None if math.isnan(value) else value)
                          for key, value in (("pointing", s.pointing), ("energy", s.energy), ("rank", s.rank),
                                             ("iou", s.iou))}
                   for name, s in result.scores.items()},
        "baselines": [RANDOM, CENTRE],
        "notes": list(result.notes),
    }


def localisation_table(summary: dict) -> str:
    """The localisation scores as a plain-text table: one row per map, then the two baselines, the
    centre-prior sentence and the notes."""
    share = summary["object_pixels"] / summary["picture_pixels"]
    lines = [f"does the map point at the object? (object: {share:.0%} of the picture; pointing tolerance "
             f"{summary['radius']:.1f} px)",
             f"{'map':<18}" + "".join(f"{title:>11}" for _, title in _SCORES)]
    for name, scores in summary["scores"].items():
        cells = [_cell(key, scores[key]) for key, _ in _SCORES]
        label = f"{name} (baseline)" if name in summary["baselines"] else name
        lines.append(f"{label:<18}" + "".join(f"{c:>11}" for c in cells))
    lines += ["better: higher (pointing: a hit when the map's maximum lies in the object).", CENTRE_SENTENCE]
    return "\n".join(lines + [f"note: {' '.join(n.split())}" for n in summary["notes"]])


def _cell(key: str, value: Optional[float]) -> str:
    if value is None:
        return "-"
    if key == "pointing":
        return "hit" if value else "miss"
    return f"{value:.3f}"


__all__ = ["CENTRE_SENTENCE", "add_ground_truth_arguments", "ground_truth", "localisation_table", "localise_summary"]
