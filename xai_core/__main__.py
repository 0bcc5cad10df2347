"""`python -m xai_core`: see `xai_core.cli`."""

from .cli import main

raise SystemExit(main())
