"""The command line: ``python -m flowrt`` (or the ``flowrt`` script).

::

    flowrt examples [NAME ...] [--list]
    flowrt run TARGET [-i KEY=VALUE ...] [--inputs-json FILE] [--store PATH] [--run-id ID]
                      [--max-concurrency N] [--timeout S] [--json]
    flowrt graph TARGET [--format mermaid|dot]
    flowrt runs --store PATH
    flowrt show RUN_ID --store PATH
    flowrt report RUN_ID --store PATH -o FILE.html
    flowrt submit TARGET [-i KEY=VALUE ...] --store PATH [--run-id ID] [--queue NAME]
    flowrt worker --store PATH --workflows MODULE [--concurrency N] [--lease-ttl S]
    flowrt signal RUN NAME --store PATH [--data JSON] [--id ID]
    flowrt approve|reject RUN NAME --store PATH --by WHO [--comment TEXT]
    flowrt cancel RUN --store PATH
    flowrt resume RUN --store PATH
    flowrt schedules --store PATH
    flowrt cache prune|clear --store PATH
    flowrt ui --store PATH [--host 127.0.0.1] [--port 8080] [--token TOKEN]

TARGET is ``path/to/file.py:name`` or ``package.module:name`` (``:name`` may be left
out when the module holds exactly one workflow). Exit status: 0 the run succeeded, 1 it
failed or was cancelled, 2 a usage or input error (a message, never a traceback), 130
interrupted by Ctrl-C (143 by SIGTERM). See docs/cli.md.

One module per command (``_run``, ``_graph``, ``_runs``, ``_show``, ``_report``,
``_examples``, ``_cache``, ``_ui``), each with ``add_parser(sub)`` and ``command(args)``;
what they share is in ``_common`` (errors, exit codes, targets, inputs, stores, output)
and ``_running`` (Ctrl-C, progress and logging while work runs).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from ... import __version__
from ...errors import StoreError
from . import _cache, _examples, _graph, _queue, _report, _run, _runs, _show, _ui
from ._common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, UsageError, err, prog

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # exit 2, as argparse does, with a hint
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n"
                              f"(try: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (each command module adds its own)."""
    parser = _Parser(
        prog=prog(),
        description="flowrt: run workflows (DAGs of Python functions) and look at their runs.",
        epilog="Exit status: 0 the run succeeded, 1 it failed or was cancelled, 2 usage or "
               "input error, 130 interrupted (Ctrl-C). Docs: docs/cli.md.")
    parser.add_argument("--version", action="version", version=f"flowrt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in (_examples, _run, _graph, _runs, _show, _report, _cache, _ui):
        module.add_parser(sub)
    _queue.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit
    status (0 ok, 1 the run failed, 2 usage error, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except (UsageError, StoreError) as error:  # a store that cannot be read is bad input
        err(f"error: {error}")
        return EXIT_USAGE
    except KeyboardInterrupt:  # before the run's own handler was installed, or after
        err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (| head): not our error
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return EXIT_FAILED
