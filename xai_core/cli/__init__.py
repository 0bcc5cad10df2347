"""The command line, `python -m xai_core {cam,dff,eval,batch,grid,compare,concepts,bench}`: `commands.py` (open it
first: `main` and each command), `parser.py` (the options, their choices from the registries),
`progress.py` (the progress bars on stderr), `grid_command.py` (`grid`), `compare_command.py` (`compare`),
`concepts_command.py` (`concepts`), `localise_command.py` (`eval --box/--mask`), `bench.py` (xai_core
against pytorch-grad-cam)."""

from .commands import main
from .parser import build_parser

__all__ = ["build_parser", "main"]
