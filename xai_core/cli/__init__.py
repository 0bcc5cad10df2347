"""The command line, `python -m xai_core {cam,dff,eval,batch,bench}` (`commands.py`)."""

from .commands import build_parser, main

__all__ = ["build_parser", "main"]
