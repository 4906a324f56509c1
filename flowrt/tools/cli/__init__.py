"""The command line: ``python -m flowrt`` (or the ``flowrt`` script). See docs/cli.md."""

from ._main import main

__all__ = ["main"]
