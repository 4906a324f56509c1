"""``flowrt run TARGET``: run a workflow, with progress, and print its result."""

from __future__ import annotations

import argparse
import difflib
import logging
import signal
import sys
import traceback as tb_module
import uuid
from collections.abc import Sequence
from typing import Any

from ..._engine.result import RunResult
from ..._types import Event, EventKind
from ...errors import FlowError, MissingInputError
from ...workflow import Plan
from .. import _format as fmt
from .._progress import Display, make_display
from .._view import latest_start
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    compile_or_fail,
    echo,
    err,
    format_table,
    load_workflow,
    nonempty,
    open_store,
    parse_inputs,
    positive_float,
    positive_int,
    print_json,
    prog,
    resume_command,
)
from ._running import (
    Interrupted,
    exit_now_if_threads_left,
    progress_options,
    run_interruptible,
    setup_logging,
)

__all__ = ["add_parser", "command", "parse_limits", "print_result"]

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
    p.add_argument("--store", metavar="PATH", type=nonempty,
                   help="a durable store, an SQLite file (created if missing) or a "
                        "postgresql:// URL: the run can be resumed")
    p.add_argument("--run-id", metavar="ID", type=nonempty,
                   help="the run's id; with --store, an id the store knows resumes that run")
    p.add_argument("--max-concurrency", type=positive_int, metavar="N",
                   help="at most N nodes running at once")
    p.add_argument("--limit", action="append", metavar="NAME=N",
                   help="at most N nodes under the limit NAME (a node's limit=) running at "
                        "once (repeatable)")
    p.add_argument("--fail-fast", action="store_true",
                   help="cancel the running nodes at the first failure")
    p.add_argument("--executor", choices=["thread", "process", "loop"],
                   help="where sync nodes run unless they say otherwise: worker threads "
                        "(the default), worker processes, or the event loop itself")
    p.add_argument("--timeout", type=positive_float, metavar="S",
                   help="cancel the run after S seconds (it then ends cancelled, exit 1)")
    p.add_argument("--json", action="store_true",
                   help="print the result as JSON on stdout (no progress)")
    p.add_argument("--traceback", action="store_true",
                   help="print the traceback of each failed node")
    progress_options(p)
    p.set_defaults(func=command)


def parse_limits(pairs: Sequence[str], plan: Plan) -> dict[str, int]:
    """``--limit NAME=N`` options as ``limits=``; a name that no node of ``plan`` uses is
    an error (a typo would otherwise limit nothing), with the near match."""
    limits: dict[str, int] = {}
    for item in pairs:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--limit takes NAME=N, got {item!r}")
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            raise UsageError(f"--limit {item!r}: N must be a whole number >= 1, got {raw!r}")
        if name not in plan.limit_names:
            used = plan.limit_names
            near = difflib.get_close_matches(name, used, n=1)
            hint = (f"; did you mean {near[0]!r}?" if near
                    else f"; its limits: {', '.join(used)}" if used
                    else "; none of its nodes has a limit=")
            raise UsageError(f"--limit {item!r}: no node of {plan.workflow!r} uses a limit "
                             f"named {name!r}{hint}")
        limits[name] = value
    return limits


class _ResumeNote:
    """The run's hook: says "resuming run ..." when the resumed run has started.

    Not before: the store may still refuse the resume (other inputs, a changed
    workflow, a live holder), and then nothing resumes.
    """

    def __init__(self, display: Display, run_id: str, restored: int, text: str | None) -> None:
        self.display = display
        self.run_id = run_id
        self.restored = restored
        self.text = text

    def __call__(self, event: Event) -> None:
        if (event.kind is EventKind.RUN_STARTED and event.run_id == self.run_id
                and self.restored >= 0):
            self.display.restored(self.run_id, self.restored)
            if self.text is not None:
                self.display.note(self.text)
            self.restored = -1  # said once
        self.display(event)


def command(args: argparse.Namespace) -> int:
    """``flowrt run``: run a workflow and print its result."""
    wf = load_workflow(args.target)
    plan = compile_or_fail(wf)
    inputs = parse_inputs(args.input or [], args.inputs_json)
    limits = parse_limits(args.limit or [], plan)
    store = open_store(args.store, must_exist=False) if args.store is not None else None
    run_id = args.run_id or uuid.uuid4().hex[:12]
    display = make_display("off" if args.quiet or args.json else args.progress)
    handler = setup_logging(args.log_level, display)
    display.expect(wf.name, len(plan))
    hook: Display | _ResumeNote = display
    stored_status = None
    try:
        if store is not None:
            stored = store.load(run_id)
            if stored is not None:
                stored_status = stored.record.status
                done = sum(1 for r in stored.nodes.values() if r.status == "succeeded")
                # Said once the run has started: a run stored as running whose holder
                # lives is refused, so one that starts was interrupted.
                was = "interrupted" if stored_status == "running" else stored_status
                text = (f"{prog()}: resuming run {run_id} ({was}): {done} of "
                        f"{len(stored.record.structure)} nodes already succeeded and are "
                        "not run again")
                hook = _ResumeNote(display, run_id, done, None if args.json else text)
        try:
            result = run_interruptible(lambda: wf.run(
                inputs or None, run_id=run_id, store=store,
                max_concurrency=args.max_concurrency, limits=limits or None,
                fail_fast=args.fail_fast, executor=args.executor, timeout=args.timeout,
                on_event=hook))
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
                    f"{resume_command(args.target, args.store, run_id)}")
        err(f"{how}: run {run_id} of {wf.name!r} cancelled{hint}")
        exit_now_if_threads_left(stop.exit_code)
        return stop.exit_code
    finally:
        if store is not None:
            store.close()
        logging.getLogger().removeHandler(handler)

    if stored_status == "succeeded" and not args.json and not (
            isinstance(hook, _ResumeNote) and hook.restored < 0):
        err(f"run {run_id} already succeeded: its stored result, nothing ran")
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
    metrics = result.metrics
    counts = ", ".join(f"{c} {k}" for k, c in result.counts().items())
    retries = (f"; {metrics.retries} retr{'y' if metrics.retries == 1 else 'ies'}"
               if metrics.retries else "")
    n = len(result.plan)
    nodes = result.nodes
    restored = sum(1 for name in nodes if nodes[name].restored)
    from_store = f"; {restored} restored from the store" if restored else ""
    echo(f"run {result.run_id} of {result.workflow!r} {result.status} in "
         f"{fmt.duration(result.duration)} ({n} node{'s' if n != 1 else ''}: "
         f"{counts}{retries}{from_store})")
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
            node = nodes[name]
            status = str(node.status)
            rows.append([name, status, node.attempts, fmt.duration(node.duration),
                         *([latest_start(status, node.attempts, node.restored)]
                           if restored else []),
                         fmt.error_text(node.error, 100)])
        echo()
        echo(format_table(["node", "status", "attempts", "duration",
                           *(["latest start"] if restored else []), "error"], rows,
                          right=(2, 3)))
    if note:
        echo(note)
    if result.errors and traceback:
        for name, error in result.errors.items():
            text = getattr(error, "traceback_text", None) or "".join(
                tb_module.format_exception(type(error), error, error.__traceback__))
            echo(f"\n--- {name} ---\n{text.rstrip()}")
    elif result.errors:
        plural = "s" if len(result.errors) > 1 else ""
        echo(f"\n(--traceback shows where the failed node{plural} raised)")
    sinks = [n for n in names if not result.plan.dependents(n) and n in result.outputs]
    if sinks and len(sinks) <= 10:
        echo()
        for name in sinks:
            echo(f"{name} = {fmt.short_repr(result.outputs[name])}")
    if store_path:
        echo(f"\nstored in {store_path} as run {result.run_id}: "
             f"{prog()} show {result.run_id} --store {store_path}; "
             f"{prog()} report {result.run_id} --store {store_path} -o {result.run_id}.html")
    sys.stdout.flush()
