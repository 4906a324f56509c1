"""``flowrt run TARGET``: run a workflow, with progress, and print its result."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import traceback as tb_module
import uuid
from typing import Any

from ..._engine.result import RunResult
from ...errors import FlowError, MissingInputError
from .. import _format as fmt
from .._progress import make_display
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    compile_or_fail,
    err,
    format_table,
    load_workflow,
    open_store,
    parse_inputs,
    positive_float,
    positive_int,
    print_json,
    prog,
)
from ._running import (
    Interrupted,
    exit_now_if_threads_left,
    progress_options,
    run_interruptible,
    setup_logging,
)

__all__ = ["add_parser", "command", "print_result"]

#: Node tables longer than this show only the nodes that did not succeed.
TABLE_ROWS = 60


def add_parser(sub: Any) -> None:
    """Add ``run`` to the subcommands ``sub``."""
    p = sub.add_parser("run", help="run a workflow",
                       description="Run the workflow TARGET (path/to/file.py:name or "
                                   "package.module:name) and print its result.")
    p.add_argument("target", metavar="TARGET")
    p.add_argument("-i", "--input", action="append", metavar="KEY=VALUE",
                   help="a run input; VALUE is parsed as JSON when it parses, else kept as "
                        "a string (repeatable)")
    p.add_argument("--inputs-json", metavar="FILE",
                   help="run inputs from a JSON object in FILE ('-' reads stdin); -i wins")
    p.add_argument("--store", metavar="PATH", help="a durable store, an SQLite file (created "
                                                   "if missing) or a postgresql:// URL: the "
                                                   "run can be resumed")
    p.add_argument("--run-id", metavar="ID", help="the run's id; with --store, an id the "
                                                  "store knows resumes that run")
    p.add_argument("--max-concurrency", type=positive_int, metavar="N",
                   help="at most N nodes running at once")
    p.add_argument("--timeout", type=positive_float, metavar="S",
                   help="cancel the run after S seconds (it then ends cancelled, exit 1)")
    p.add_argument("--json", action="store_true",
                   help="print the result as JSON on stdout (no progress)")
    p.add_argument("--traceback", action="store_true",
                   help="print the traceback of each failed node")
    progress_options(p)
    p.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    """``flowrt run``: run a workflow and print its result."""
    wf = load_workflow(args.target)
    plan = compile_or_fail(wf)
    inputs = parse_inputs(args.input or [], args.inputs_json)
    known = set(plan.required_inputs) | set(plan.optional_inputs)
    for key in inputs:
        if key not in known and key not in plan.index:
            err(f"warning: input {key!r} is not a parameter of any node of {wf.name!r}")
    store = open_store(args.store, must_exist=False) if args.store else None
    run_id = args.run_id or uuid.uuid4().hex[:12]
    display = make_display("off" if args.quiet or args.json else args.progress)
    handler = setup_logging(args.log_level, display)
    display.expect(wf.name, len(plan))
    try:
        if store is not None:
            stored = store.load(run_id)
            if stored is not None:
                done = sum(1 for r in stored.nodes.values() if r.status == "succeeded")
                if stored.record.status == "succeeded":
                    msg = f"run {run_id} already succeeded: its stored result, nothing runs"
                else:
                    msg = (f"resuming run {run_id} ({stored.record.status}): {done} of "
                           f"{len(stored.record.structure)} nodes already succeeded and are "
                           "not run again")
                    display.restored(run_id, done)
                if not args.json:
                    err(msg)
        try:
            result = run_interruptible(lambda: wf.run(
                inputs or None, run_id=run_id, store=store,
                max_concurrency=args.max_concurrency, timeout=args.timeout,
                on_event=display))
        except MissingInputError as error:
            names = " ".join(f"-i {k}=VALUE" for k in error.missing)
            raise UsageError(f"{error}; give {'it' if len(error.missing) == 1 else 'them'} "
                             f"with {names}") from None
        except (FlowError, ValueError) as error:
            raise UsageError(str(error)) from None
        finally:
            display.close()
    except Interrupted as stop:
        how = "interrupted" if stop.signum == signal.SIGINT else f"stopped by {stop}"
        hint = ""
        if store is not None:
            hint = (f"; the run is recorded as cancelled in {args.store}: resume it with "
                    f"{prog()} run {args.target} --store {args.store} --run-id {run_id}")
        err(f"{how}: run {run_id} of {wf.name!r} cancelled{hint}")
        exit_now_if_threads_left(stop.exit_code)
        return stop.exit_code
    finally:
        if store is not None:
            store.close()
        logging.getLogger().removeHandler(handler)

    if args.json:
        print_json(result.to_dict())
    else:
        print_result(result, store_path=args.store, target=args.target, traceback=args.traceback)
    code = EXIT_OK if result.ok else EXIT_FAILED
    if str(result.status) == "cancelled":  # its timeout may have abandoned sync nodes
        exit_now_if_threads_left(code)
    return code


def print_result(result: RunResult, *, store_path: str | None, target: str,
                 traceback: bool) -> None:
    """The result for people: a status line, the node table, the final outputs."""
    out = sys.stdout
    metrics = result.metrics
    counts = ", ".join(f"{c} {k}" for k, c in result.counts().items())
    retries = (f"; {metrics.retries} retr{'y' if metrics.retries == 1 else 'ies'}"
               if metrics.retries else "")
    n = len(result.plan)
    print(f"run {result.run_id} of {result.workflow!r} {result.status} in "
          f"{fmt.duration(result.duration)} ({n} node{'s' if n != 1 else ''}: {counts}{retries})",
          file=out)
    names = list(result.nodes)
    if len(names) > TABLE_ROWS:
        shown = [n for n in names if str(result.nodes[n].status) != "succeeded"][:TABLE_ROWS]
        left = len(names) - len(shown)
        note = (f"({left} {'more ' if shown else ''}nodes not listed: --json lists every "
                "node)")
    else:
        shown, note = names, ""
    if shown:
        rows = []
        for name in shown:
            node = result.nodes[name]
            rows.append([name, str(node.status), node.attempts, fmt.duration(node.duration),
                         fmt.error_text(node.error, 100)])
        print("", file=out)
        print(format_table(["node", "status", "attempts", "duration", "error"], rows,
                           right=(2, 3)), file=out)
    if note:
        print(note, file=out)
    if result.errors and traceback:
        for name, error in result.errors.items():
            text = getattr(error, "traceback_text", None) or "".join(
                tb_module.format_exception(type(error), error, error.__traceback__))
            print(f"\n--- {name} ---\n{text.rstrip()}", file=out)
    elif result.errors:
        print(f"\n(--traceback shows where the failed node{'s' if len(result.errors) > 1 else ''}"
              " raised)", file=out)
    sinks = [n for n in names if not result.plan.dependents(n) and n in result.outputs]
    if sinks and len(sinks) <= 10:
        print("", file=out)
        for name in sinks:
            print(f"{name} = {fmt.one_line(repr(result.outputs[name]), 160)}", file=out)
    if store_path:
        print(f"\nstored in {store_path} as run {result.run_id}: "
              f"{prog()} show {result.run_id} --store {store_path}; "
              f"{prog()} report {result.run_id} --store {store_path} -o {result.run_id}.html",
              file=out)
    out.flush()
