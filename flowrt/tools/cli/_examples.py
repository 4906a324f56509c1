"""``flowrt examples [NAME ...]``: run the bundled examples with progress."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
import traceback
import types
from typing import Any

from ...workflow import Workflow
from .. import _format as fmt
from .._progress import make_display
from ._common import EXIT_FAILED, EXIT_OK, UsageError, err, format_table, prog
from ._running import (
    Interrupted,
    exit_now_if_threads_left,
    progress_options,
    run_interruptible,
    setup_logging,
)

__all__ = ["add_parser", "command", "examples_package"]


def add_parser(sub: Any) -> None:
    """Add ``examples`` to the subcommands ``sub``."""
    p = sub.add_parser("examples", help="run the bundled examples",
                       description="Run the bundled examples (all by default) with live "
                                   "progress, then print a summary.")
    p.add_argument("names", nargs="*", metavar="NAME", help="examples to run (default: all)")
    p.add_argument("--list", action="store_true", help="list the examples and exit")
    progress_options(p)
    p.set_defaults(func=command)


def examples_package() -> types.ModuleType:
    """``flowrt.examples``, installed with flowrt (packaged from the repository's examples/)."""
    return importlib.import_module("flowrt.examples")


class _Outcome:
    def __init__(self, name: str) -> None:
        self.name = name
        self.status = "not run"
        self.runs: list[Any] = []
        self.wall = 0.0
        self.error: str | None = None


def command(args: argparse.Namespace) -> int:
    """``flowrt examples``: run the bundled examples, then print a summary."""
    package = examples_package()
    registry: dict[str, str] = dict(package.EXAMPLES)
    if args.list:
        rows = [[name, text] for name, text in registry.items()]
        print(format_table(["example", "what it shows"], rows))
        print(f"\nrun them: {prog()} examples [NAME ...]; each is also a script: "
              "python examples/NAME.py in a checkout")
        return EXIT_OK
    names = args.names or list(registry)
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise UsageError(f"no example named {', '.join(map(repr, unknown))}; the examples "
                         f"are: {', '.join(registry)}")
    display = make_display("off" if args.quiet else args.progress)
    handler = setup_logging(args.log_level, display)
    outcomes = [_Outcome(n) for n in names]

    async def run_all() -> None:
        for outcome in outcomes:
            name = outcome.name
            module = importlib.import_module(f"{package.__name__}.{name}")
            for obj in vars(module).values():
                if isinstance(obj, Workflow):
                    display.expect(obj.name, len(obj))
            display.say(f"\n== {name}: {registry[name]}")
            outcome.status = "running"
            started = time.perf_counter()
            try:
                outcome.runs = list(await module.demo(on_event=display, say=display.say))
                outcome.status = "succeeded"
            except Exception as error:
                outcome.status = "failed"
                outcome.error = fmt.error_text(error, 300)
                display.say(f"example {name} failed: {outcome.error}")
                traceback.print_exception(type(error), error, error.__traceback__,
                                          file=sys.stderr)
            finally:
                outcome.wall = time.perf_counter() - started

    interrupted: Interrupted | None = None
    try:
        run_interruptible(run_all)
    except Interrupted as stop:
        interrupted = stop
        for o in outcomes:
            if o.status == "running":
                o.status = "interrupted"
    finally:
        display.close()
        logging.getLogger().removeHandler(handler)

    table: list[list[Any]] = []
    for o in outcomes:
        nodes = sum(len(r.plan) for r in o.runs)
        retries = sum(r.metrics.retries for r in o.runs)
        table.append([o.name, o.status, len(o.runs), nodes, retries,
                      fmt.duration(o.wall) if o.status != "not run" else "-"])
    print()
    print(format_table(["example", "status", "runs", "nodes", "retries", "wall time"], table,
                       right=(2, 3, 4, 5)))
    ok = sum(1 for o in outcomes if o.status == "succeeded")
    print(f"\n{ok} of {len(outcomes)} example{'s' if len(outcomes) != 1 else ''} succeeded.")
    sys.stdout.flush()
    if interrupted is not None:
        err("interrupted")
        exit_now_if_threads_left(interrupted.exit_code)
        return interrupted.exit_code
    return EXIT_OK if ok == len(outcomes) else EXIT_FAILED
