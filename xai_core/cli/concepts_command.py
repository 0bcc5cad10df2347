"""`python -m xai_core concepts`: what the model sees in a whole class (`xai_core.class_concepts`) on a
folder, glob or list of the class's images, written as a results folder (concepts.json, crops/,
index.html: `concepts.write_concept_results`). Exit status 0, 1 when the run failed partway (memory,
disk), 2 for bad options; one `error: ...` line for what a user can cause."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections import Counter
from pathlib import Path

import torch

from .._names import split_names
from ..concepts import class_concepts, write_concept_results
from ..dataset import list_inputs
from ..errors import XAIError
from ..models import load_model
from .parser import USAGE_ERROR
from .progress import MethodBar


def _fail(message: str, status: int = USAGE_ERROR) -> int:
    print("error: " + " ".join(message.split()), file=sys.stderr)
    return status


def run_concepts(args: argparse.Namespace) -> int:
    """Run `concepts` with the parsed `args`; prints each concept's line and the folder written."""
    try:
        with contextlib.redirect_stdout(sys.stderr):  # library prints go to stderr
            targets = split_names(args.target)
            _, sources = list_inputs(args.input, exclude=Path(args.output).resolve())
            handle = load_model(args.model, weights=args.weights, labels=args.labels, device=args.device)
            if handle.notice:
                print("note: " + " ".join(handle.notice.split()))
            result = class_concepts(handle, [s.file for s in sources], targets, n_concepts=args.n_concepts,
                                    layer=args.layer, seed=args.seed, batch_size=args.batch_size,
                                    progress=MethodBar(), top_crops=args.top_crops, fidelity=not args.no_fidelity)
            write_concept_results(result, args.output, [s.path for s in sources])
    except XAIError as err:
        return _fail(str(err))
    except (torch.OutOfMemoryError, MemoryError):
        return _fail("The machine ran out of memory; rerun with a smaller --batch-size, fewer images or on a device "
                     "with more memory.", 1)
    except OSError as err:  # the results folder: disk full, permissions
        return _fail(f"The results could not be written ({type(err).__name__}: {err.strerror or err}); free some "
                     "space or give --output a writable folder.", 1)
    except KeyboardInterrupt:
        return 130
    for note in result.notes:
        print("note: " + " ".join(note.split()), file=sys.stderr)
    print(f"{result.model} at {result.layer}: {result.images} images of {' and '.join(result.targets)}, "
          f"importance {result.method}, mean residual {result.residual:.3f}")
    for c in result.concepts:
        labels = ", ".join(label for label, _ in c.labels)
        print(f"concept {c.index}: {c.importance:8.3f} [{c.importance_low:.3f}, {c.importance_high:.3f}]  {labels}")
    if result.fidelity:
        f = result.fidelity
        print(f"fidelity: area {f['auc']:.4f} [{f['auc_low']:.4f}, {f['auc_high']:.4f}] removing by importance, "
              f"{f['random_auc']:.4f} in a random order")
    print(f"wrote {args.output}/index.html, concepts.json and crops/")
    return 0


def batch_concepts_lines(output: str) -> list:
    """`batch --concepts`: the lines saying what summary.json's "concepts" block holds (the classes
    done, those skipped, its notes); [] when it has none."""
    try:
        block = json.loads((Path(output) / "summary.json").read_text(encoding="utf-8")).get("concepts")
    except (OSError, ValueError):
        return []
    if not isinstance(block, dict):
        return []
    done = Counter(c["kind"] for c in block.get("classes", []))
    skipped = block.get("skipped", {})
    lines = [f"note: {' '.join(str(n).split())}" for n in block.get("notes", [])]
    lines.append(f"concepts: {block['k']} per class for {done['predicted']} predicted and {done['true']} true classes "
                 f"in {output}/concepts/ (skipped for fewer than {block.get('min_images')} images: "
                 f"{skipped.get('predicted', 0)} predicted, {skipped.get('true', 0)} true)")
    return lines


__all__ = ["batch_concepts_lines", "run_concepts"]
