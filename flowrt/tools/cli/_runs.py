"""``flowrt runs --store PATH``: the runs a store keeps, oldest first."""

from __future__ import annotations

import argparse
from typing import Any

from .. import _format as fmt
from .._view import RunView
from ._common import (
    EXIT_OK,
    echo,
    format_table,
    nonempty,
    open_store,
    positive_int,
    print_json,
    resume_command,
)

__all__ = ["add_parser", "command"]


def add_parser(sub: Any) -> None:
    """Add ``runs`` to the subcommands ``sub``."""
    p = sub.add_parser("runs", help="list the runs of a store",
                       description="List the runs kept in a durable store.")
    p.add_argument("--store", metavar="PATH", required=True, type=nonempty,
                   help="an SQLite file, or a postgresql:// URL")
    p.add_argument("--workflow", help="only runs of this workflow")
    p.add_argument("--status", choices=["queued", "running", "interrupted", "waiting",
                                        "succeeded", "failed", "cancelled", "dead_letter"],
                   help="only runs with this status (running: runs a live process runs; "
                        "interrupted: runs stored as running whose process is gone; "
                        "waiting: parked until a signal or a timer)")
    p.add_argument("--last", type=positive_int, metavar="N", help="only the N latest runs")
    p.add_argument("--json", action="store_true", help="print the runs as JSON")
    p.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    """``flowrt runs``: one line per stored run."""
    store = open_store(args.store, must_exist=True)
    stored_status = "running" if args.status == "interrupted" else args.status
    try:
        records = store.runs(workflow=args.workflow, status=stored_status)
        runs = [r.to_dict() for r in sorted(records, key=lambda r: r.created)]
        for run in runs:  # what a run waits for is in its node records
            if run["status"] == "waiting" or (run["status"] == "running" and run["waits"]):
                stored = store.load(run["run_id"])
                run["waiting_for"] = ([w._asdict() for w in stored.waits()]
                                      if stored is not None else [])
    finally:
        store.close()
    if args.status in ("running", "interrupted"):
        runs = [d for d in runs if d["interrupted"] is (args.status == "interrupted")]
    if args.last is not None:
        runs = runs[-args.last:]
    if args.json:
        print_json(runs)
        return EXIT_OK
    if not runs:
        echo(f"no runs in {args.store}" if args.workflow is None and args.status is None
             else f"no such runs in {args.store}")
        return EXIT_OK
    views = [RunView.from_dict(d) for d in runs]
    rows = [[v.run_id, v.workflow, v.state, fmt.timestamp(v.created), fmt.duration(v.duration),
             d["node_count"], v.resumes] for v, d in zip(views, runs, strict=True)]
    echo(format_table(["run id", "workflow", "status", "started", "duration", "nodes",
                       "resumes"], rows, right=(4, 5, 6)))
    waiting = [d for d in runs if d["status"] == "waiting"]
    if waiting:
        echo("\nwaiting (parked: a signal, its timer or `flowrt resume` wakes it):")
        for d in waiting:
            echo(f"  {d['run_id']}: {_waits_text(d)}")
    held = [d for d in runs if d["status"] == "running" and d.get("waiting_for")]
    if held:
        echo("\nwaiting in the process that runs it (a signal reaches it there):")
        for d in held:
            echo(f"  {d['run_id']}: {_waits_text(d)}")
    letters = [d for d in runs if d["status"] == "dead_letter"]
    if letters:
        echo("\ndead letters (fix the cause, then `flowrt resume RUN --store ...`):")
        for d in letters:
            echo(f"  {d['run_id']}: {d.get('error') or 'no reason recorded'}")
    dead = [v for v, d in zip(views, runs, strict=True) if v.interrupted and not d.get("queue")]
    if any(v.interrupted for v in views) and not dead:
        echo("\ninterrupted runs of the work queue are taken over by the next worker")
    if dead:
        echo(f"\ninterrupted: stored as running, but the process that ran it is gone "
             f"(or stopped renewing its lease); resume with\n  "
             f"{resume_command('TARGET', args.store, dead[-1].run_id)}\n"
             "(TARGET: the workflow, as path/to/file.py:name or package.module:name)")
    return EXIT_OK


def _waits_text(run: dict[str, Any]) -> str:
    """What a parked run waits for, in one line."""
    parts = []
    for w in run.get("waiting_for") or ():
        what = f"{w['kind']} {w['node']!r}"
        if w["signalled"]:
            what += " (its signal came: a worker continues it)"
        elif w["due"] is not None:
            what += (f" (due {fmt.timestamp(w['due'])})" if w["kind"] == "timer"
                     else f" (times out {fmt.timestamp(w['due'])})")
        parts.append(what)
    return ", ".join(parts) or "nothing recorded"
