"""`python -m xai_core grid`: the grid pointing game into a results folder (`dataset.write_grid_results`),
with `batch`'s conventions: progress on stderr, one `error: ...` line for what a user can cause, the
summary table on stdout. Exit status 0, 1 when the run failed partway (memory, disk), 2 for bad options."""

from __future__ import annotations

import argparse
import contextlib
import sys

import torch

from ..dataset import write_grid_results
from ..dataset.grid_report import grid_table
from ..errors import XAIError
from ..methods import methods_for
from ..models import load_model
from .parser import USAGE_ERROR, AllMethods
from .progress import MethodBar


def _fail(message: str, status: int = USAGE_ERROR) -> int:
    print("error: " + " ".join(message.split()), file=sys.stderr)
    return status


def run_grid(args: argparse.Namespace) -> int:
    """Run `grid` with the parsed `args`; prints the summary table and the folder written."""
    try:
        with contextlib.redirect_stdout(sys.stderr):  # pytorch-grad-cam warns with print()
            handle = load_model(args.model, weights=args.weights, labels=args.labels, device=args.device)
            if handle.notice:
                print("note: " + " ".join(handle.notice.split()))
            if isinstance(args.method, AllMethods):
                args.method = methods_for(handle)
            game = write_grid_results(handle, args.input, args.output, args.method, grids=args.grids,
                                      min_confidence=args.min_confidence, seed=args.seed, layer=args.layer,
                                      progress=MethodBar())
    except XAIError as err:
        return _fail(str(err))
    except (torch.OutOfMemoryError, MemoryError):
        return _fail("The machine ran out of memory; rerun with fewer methods or on a device with more memory.", 1)
    except OSError as err:  # the results folder: disk full, permissions
        return _fail(f"The results could not be written ({type(err).__name__}: {err.strerror or err}); free some "
                     "space or give --output a writable folder.", 1)
    except KeyboardInterrupt:
        return 130
    for note in game.notes:
        print("note: " + " ".join(note.split()), file=sys.stderr)
    print(grid_table(game.summary))
    print(f"wrote {args.output}/index.html, summary.json, results.csv and grids/")
    return 0


__all__ = ["run_grid"]
