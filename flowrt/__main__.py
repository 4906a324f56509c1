"""``python -m flowrt``: the command line (see :mod:`flowrt.cli`)."""

from .cli import main

raise SystemExit(main())
