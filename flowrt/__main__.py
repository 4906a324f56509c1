"""``python -m flowrt``: the command line (see :mod:`flowrt.tools.cli`)."""

from .tools.cli import main

raise SystemExit(main())
