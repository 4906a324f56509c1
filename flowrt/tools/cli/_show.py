"""``flowrt show RUN_ID --store PATH``: one stored run, node by node."""

from __future__ import annotations

import argparse
from typing import Any

from .. import _format as fmt
from .._view import RunView
from ._common import (
    EXIT_OK,
    echo,
    format_table,
    load_run,
    nonempty,
    open_store,
    print_json,
    resume_command,
)

__all__ = ["add_parser", "command"]


def add_parser(sub: Any) -> None:
    """Add ``show`` to the subcommands ``sub``."""
    p = sub.add_parser("show", help="show one stored run, node by node",
                       description="Show a stored run: per node its status, attempts, "
                                   "duration and error.")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--store", metavar="PATH", required=True, type=nonempty,
                   help="an SQLite file, or a postgresql:// URL")
    p.add_argument("--json", action="store_true", help="print the run as JSON")
    p.add_argument("--traceback", action="store_true",
                   help="print the stored traceback of each failed node")
    p.set_defaults(func=command)


def _child_part(rest: str, nodes: Any) -> bool:
    """Whether ``rest`` (a run id after "RUN_ID/") names a child run of one of
    ``nodes``: "node", or "node/index" for an item of a mapped sub-workflow."""
    head, _, tail = rest.rpartition("/")
    return (head if head and tail.isdigit() else rest) in nodes


def command(args: argparse.Namespace) -> int:
    """``flowrt show``: the run's facts, then one line per node."""
    store = open_store(args.store, must_exist=True)
    try:
        stored = load_run(store, args.run_id, args.store)
        data = stored.to_dict()
        # sub-workflows: the child runs of its nodes are runs "RUN_ID/node[/index]"
        prefix = f"{args.run_id}/"
        children = [(r.run_id, r.workflow, r.status) for r in store.runs()
                    if r.run_id.startswith(prefix)
                    and _child_part(r.run_id[len(prefix):], data.get("nodes", {}))]
    finally:
        store.close()
    if args.json:
        print_json(data)
        return EXIT_OK
    run = RunView.from_dict(data)
    resumes = run.resumes
    state = run.state
    if run.interrupted:
        state += f" (stored as running, but {run.why_interrupted()})"
    elif run.status == "running" and run.owner is not None:
        state += f" (by process {run.owner[1]} on {run.owner[0]})"
    echo(f"run {run.run_id} of {run.workflow!r}: {state}")
    echo(f"  started  {fmt.timestamp(run.created)}")
    echo(f"  finished {fmt.timestamp(run.finished)}  duration {fmt.duration(run.duration)}"
         + ("  (since the last resume)" if resumes else ""))
    echo("  resumed  " + (f"{resumes} time{'s' if resumes > 1 else ''}, last at "
                          f"{fmt.timestamp(run.started)}" if resumes else "never"))
    restored = (f" ({run.restored} restored from the store by the latest start, not run "
                "again)" if run.restored else "")
    echo("  nodes    " + ", ".join(f"{c} {s}" for s, c in run.counts().items()) + restored)
    # A resumed run says, per node, whether its latest start ran it or read it back.
    headers = ["node", "status", "attempts", "duration",
               *(["latest start"] if resumes else []), "error"]
    rows = [[n.name, n.status + (f" (items: {n.items_text})" if n.items is not None else ""),
             n.attempts, fmt.duration(n.duration),
             *([n.latest_start] if resumes else []), fmt.one_line(n.error or "", 100)]
            for n in run.nodes]
    echo()
    echo(format_table(headers, rows, right=(2, 3)))
    if children:
        echo()
        echo(format_table(["child run", "workflow", "status"], [list(c) for c in children]))
    if args.traceback:
        for n in run.nodes:
            if n.traceback:
                echo(f"\n--- {n.name} ---\n{n.traceback.rstrip()}")
    if run.interrupted:
        echo(f"\nresume it with: {resume_command('TARGET', args.store, run.run_id)}\n"
             f"(TARGET: the workflow, as path/to/file.py:name or package.module:name)")
    return EXIT_OK
