"""The work queue from the command line: ``submit``, ``worker``, ``signal``, ``approve``,
``reject``, ``cancel``, ``resume``, ``schedules``.

Everything but ``worker`` changes the store and returns: a worker (any number of them,
sharing the store) does the rest. The controls go through
:mod:`flowrt.durable.control`, as the dashboard's do.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import types
from collections.abc import Callable
from typing import Any

import anyio

from ... import _schedule
from ...durable import PostgresStore, SQLiteStore, Store, control
from ...durable._open import POSTGRES_SCHEMES
from ...errors import (
    FlowError,
    MissingInputError,
    RunLeased,
    RunRolledBack,
    SignalRefused,
    StoreError,
)
from ...runtime import Runtime
from ...workflow import Workflow
from .. import _format as fmt
from ._common import (
    EXIT_OK,
    UsageError,
    _import_file,
    _import_module,
    _looks_like_file,
    compile_or_fail,
    echo,
    format_table,
    load_workflow,
    nonempty,
    open_store,
    parse_inputs,
    positive_float,
    positive_int,
    print_json,
)
from ._running import _Formatter, _SkipLifecycle

__all__ = ["add_parsers"]


def add_parsers(sub: Any) -> None:
    """Add the queue's commands to the subcommands ``sub``."""
    p = sub.add_parser("submit", help="put a run in a store's queue for a worker",
                       description="Submit a run of TARGET to the queue of a store; a "
                                   "worker (flowrt worker) runs it. Prints the run id.")
    p.add_argument("target", metavar="TARGET")
    p.add_argument("-i", "--input", action="append", metavar="KEY=VALUE",
                   help="a run input; VALUE is parsed as JSON when it parses (repeatable)")
    p.add_argument("--inputs-json", metavar="FILE", help="run inputs from a JSON object")
    p.add_argument("--store", metavar="PATH", required=True, type=nonempty,
                   help="the store (created if missing): an SQLite file, or a "
                        "postgresql:// URL")
    p.add_argument("--run-id", metavar="ID", type=nonempty,
                   help="the run's id (a run id the store has is not submitted again)")
    p.add_argument("--queue", default="default", type=nonempty, help="the queue (default)")
    p.set_defaults(func=submit_command)

    p = sub.add_parser("worker", help="run runs from a store's queue",
                       description="Be a worker: run the queued, woken and abandoned runs of "
                                   "the workflows in MODULE, and fire their schedules, until "
                                   "Ctrl-C or SIGTERM (its runs then go back to the queue).")
    p.add_argument("--store", metavar="PATH", required=True, type=nonempty,
                   help="the store (created if missing): an SQLite file, or a "
                        "postgresql:// URL")
    p.add_argument("--workflows", metavar="MODULE", action="append", required=True,
                   help="an importable module (or a .py file) whose module-level workflows "
                        "this worker runs (repeatable)")
    p.add_argument("--concurrency", type=positive_int, default=8, metavar="N",
                   help="runs held at once (8)")
    p.add_argument("--lease-ttl", type=positive_float, default=60.0, metavar="S",
                   help="seconds after which a dead worker's runs are taken over (60)")
    p.add_argument("--poll", type=positive_float, default=1.0, metavar="S",
                   help="seconds between looks at the store when idle (1)")
    p.add_argument("--queue", action="append", metavar="NAME",
                   help="a queue to take runs from (repeatable; default: default)")
    p.add_argument("--max-recoveries", type=positive_int, default=5, metavar="N",
                   help="a run whose workers died N times ends dead_letter (5)")
    p.add_argument("--until-idle", action="store_true",
                   help="exit once nothing is due and nothing runs")
    p.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    p.add_argument("--log-level", default="info",
                   choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=worker_command)

    p = sub.add_parser("signal", help="send a signal to a run",
                       description="Send signal NAME to run RUN: its signal node NAME "
                                   "outputs the payload and the run goes on.")
    _run_args(p)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--data", metavar="JSON", default="null",
                   help="the payload, as JSON (default: null)")
    p.add_argument("--id", metavar="ID", help="dedupes: an id sent before is not sent again")
    p.set_defaults(func=signal_command)

    for verb, approved in (("approve", True), ("reject", False)):
        p = sub.add_parser(verb, help=f"{verb} a run's approval node",
                           description=f"{verb.capitalize()} approval node NAME of run RUN.")
        _run_args(p)
        p.add_argument("name", metavar="NAME")
        p.add_argument("--by", required=True, type=nonempty, metavar="WHO",
                       help="who decides (recorded in the payload)")
        p.add_argument("--comment", help="why")
        p.add_argument("--id", metavar="ID", help="dedupes, as for signal")
        p.set_defaults(func=approve_command, approved=approved)

    p = sub.add_parser("cancel", help="cancel a run through its store",
                       description="Cancel run RUN: a queued or parked run at once, a "
                                   "running one at its holder's next checkpoint.")
    _run_args(p)
    p.set_defaults(func=cancel_command)

    p = sub.add_parser("resume", help="resume a run through the queue",
                       description="Resume run RUN: wake a parked run, or queue a failed, "
                                   "cancelled, dead-lettered or abandoned one again; a "
                                   "worker runs what is left.")
    _run_args(p)
    p.set_defaults(func=resume_command)

    p = sub.add_parser("schedules", help="list a store's schedules",
                       description="List the schedules kept in a store.")
    p.add_argument("--store", metavar="PATH", required=True, type=nonempty)
    p.add_argument("--json", action="store_true", help="print them as JSON")
    p.set_defaults(func=schedules_command)


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", metavar="RUN")
    p.add_argument("--store", metavar="PATH", required=True, type=nonempty,
                   help="the store that keeps the run (must exist)")


def _controlled(store_path: str, action: Callable[[Store], Any]) -> Any:
    """``action(store)`` on an existing store; its refusals become usage errors."""
    store = open_store(store_path, must_exist=True)
    try:
        return action(store)
    except (LookupError, SignalRefused, RunLeased, RunRolledBack, TypeError) as error:
        raise UsageError(str(error)) from None
    finally:
        store.close()


def submit_command(args: argparse.Namespace) -> int:
    """``flowrt submit``: print the id of the queued run."""
    wf = load_workflow(args.target)
    compile_or_fail(wf)
    inputs = parse_inputs(args.input or [], args.inputs_json)
    store = open_store(args.store, must_exist=False)

    async def main() -> str:
        async with Runtime(store=store) as rt:
            return await rt.submit(wf, inputs, run_id=args.run_id, queue=args.queue)

    try:
        run_id = anyio.run(main)
    except (MissingInputError, ValueError, FlowError) as error:
        raise UsageError(str(error)) from None
    finally:
        store.close()
    echo(run_id)
    return EXIT_OK


def _workflows_of(spec: str) -> list[Workflow]:
    module: types.ModuleType = (_import_file(spec) if _looks_like_file(spec)
                                else _import_module(spec))
    found = [v for v in vars(module).values() if isinstance(v, Workflow)]
    if not found:
        raise UsageError(f"{spec} defines no flowrt.Workflow at module level")
    return found


def worker_command(args: argparse.Namespace) -> int:
    """``flowrt worker``: serve until interrupted (or idle, with --until-idle)."""
    workflows: list[Workflow] = []
    for spec in args.workflows:
        for wf in _workflows_of(spec):
            compile_or_fail(wf)
            if wf not in workflows:
                workflows.append(wf)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    handler.addFilter(_SkipLifecycle())  # the worker says "run ended" itself
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(getattr(logging, args.log_level.upper()))
    try:
        store: Store = (PostgresStore(args.store, lease_ttl=args.lease_ttl)
                        if args.store.startswith(POSTGRES_SCHEMES)
                        else SQLiteStore(args.store, lease_ttl=args.lease_ttl))
    except (StoreError, ValueError, ImportError) as error:
        raise UsageError(str(error)) from None
    stopped: list[int] = []

    async def main() -> int:
        try:
            rt = Runtime(store=store, workflows=workflows, max_recoveries=args.max_recoveries)
        except ValueError as error:
            raise UsageError(str(error)) from None
        async with rt, anyio.create_task_group() as tg:

            async def on_signals() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for signum in signals:
                        stopped.append(signum)
                        tg.cancel_scope.cancel()
                        return

            tg.start_soon(on_signals)
            ran = await rt.serve(concurrency=args.concurrency, poll=args.poll,
                                 queues=args.queue or ["default"], until_idle=args.until_idle)
            tg.cancel_scope.cancel()
            return ran
        return 0  # not reached: the block returns

    try:
        anyio.run(main, backend=args.backend)
    finally:
        store.close()
        root.removeHandler(handler)
    if stopped:
        return 128 + stopped[0]
    return EXIT_OK


def _payload(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise UsageError(f"--data is not JSON ({error}): {text[:80]!r} (a string must be "
                         "quoted: --data '\"yes\"')") from None


def _say(stored: bool, what: str, run_id: str) -> None:
    echo(f"{what} to {run_id}" if stored else
         f"{what} was sent to {run_id} before with this id: nothing changed")


def signal_command(args: argparse.Namespace) -> int:
    """``flowrt signal``."""
    payload = _payload(args.data)
    stored = _controlled(args.store, lambda s: control.send_signal(
        s, args.run_id, args.name, payload, signal_id=args.id))
    _say(stored, f"signal {args.name!r} sent", args.run_id)
    return EXIT_OK


def approve_command(args: argparse.Namespace) -> int:
    """``flowrt approve`` / ``flowrt reject``."""
    act = control.approve if args.approved else control.reject
    stored = _controlled(args.store, lambda s: act(s, args.run_id, args.name, by=args.by,
                                                   comment=args.comment, signal_id=args.id))
    _say(stored, f"{args.name!r} {'approved' if args.approved else 'rejected'} by "
                 f"{args.by}, sent", args.run_id)
    return EXIT_OK


def cancel_command(args: argparse.Namespace) -> int:
    """``flowrt cancel``."""
    before = _controlled(args.store, lambda s: control.cancel(s, args.run_id))
    if before.status in ("succeeded", "failed", "cancelled", "dead_letter"):
        echo(f"run {args.run_id} had ended ({before.status}): nothing to cancel")
    elif before.status == "running":
        echo(f"run {args.run_id} cancelled; the process running it stops at its next "
             "checkpoint")
    else:
        echo(f"run {args.run_id} cancelled (it was {before.status})")
    return EXIT_OK


def resume_command(args: argparse.Namespace) -> int:
    """``flowrt resume``."""
    before = _controlled(args.store, lambda s: control.resume(s, args.run_id))
    if before.status == "succeeded":
        echo(f"run {args.run_id} has succeeded: nothing to resume")
    elif before.status == "waiting":
        echo(f"run {args.run_id} woken: a worker checks what it waits for")
    else:
        echo(f"run {args.run_id} queued again (it was {before.status}); a worker runs "
             "what is left")
    return EXIT_OK


def schedules_command(args: argparse.Namespace) -> int:
    """``flowrt schedules``."""
    store = open_store(args.store, must_exist=True)
    try:
        schedules = store.schedules()
    finally:
        store.close()
    if args.json:
        print_json([_schedule.describe(s) for s in schedules])
        return EXIT_OK
    if not schedules:
        echo(f"no schedules in {args.store}")
        return EXIT_OK
    rows = [[s.name, s.workflow, s.cron or f"every {fmt.duration(s.every)}", s.timezone,
             fmt.timestamp(s.next_due), s.last_slot or "-",
             "catch up" if s.catch_up else "coalesce"] for s in schedules]
    echo(format_table(["schedule", "workflow", "when", "time zone", "next", "last slot",
                       "missed slots"], rows))
    return EXIT_OK
