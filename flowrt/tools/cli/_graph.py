"""``flowrt graph TARGET``: print a workflow's graph as Mermaid or DOT."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._common import EXIT_OK, compile_or_fail, load_workflow

__all__ = ["add_parser", "command"]


def add_parser(sub: Any) -> None:
    """Add ``graph`` to the subcommands ``sub``."""
    p = sub.add_parser("graph", help="print a workflow's graph (Mermaid or DOT)",
                       description="Print the graph of workflow TARGET.")
    p.add_argument("target", metavar="TARGET")
    p.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")
    p.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    """``flowrt graph``: the workflow as a Mermaid flowchart or a Graphviz digraph."""
    wf = load_workflow(args.target)
    compile_or_fail(wf)
    text = wf.to_dot() if args.format == "dot" else wf.to_mermaid()
    sys.stdout.write(text)
    sys.stdout.flush()
    return EXIT_OK
