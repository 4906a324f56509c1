"""``flowrt show RUN_ID --store PATH``: one stored run, node by node."""

from __future__ import annotations

import argparse
from typing import Any

from .._progress import seconds
from ._common import EXIT_OK, format_table, load_run, open_store, print_json, when

__all__ = ["add_parser", "command"]


def add_parser(sub: Any) -> None:
    """Add ``show`` to the subcommands ``sub``."""
    p = sub.add_parser("show", help="show one stored run, node by node",
                       description="Show a stored run: per node its status, attempts, "
                                   "duration and error.")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--store", metavar="PATH", required=True)
    p.add_argument("--json", action="store_true", help="print the run as JSON")
    p.add_argument("--traceback", action="store_true",
                   help="print the stored traceback of each failed node")
    p.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    """``flowrt show``: the run's facts, then one line per node."""
    store = open_store(args.store, must_exist=True)
    try:
        stored = load_run(store, args.run_id, args.store)
    finally:
        store.close()
    record = stored.record
    names = list(record.structure) + [n for n in stored.nodes if n not in record.structure]
    if args.json:
        nodes = {}
        for name in names:
            rec = stored.nodes.get(name)
            nodes[name] = {
                "status": rec.status if rec else "pending",
                "attempts": rec.attempts if rec else 0,
                "started": rec.started if rec else None,
                "finished": rec.finished if rec else None,
                "duration": (rec.finished - rec.started) if rec and rec.started is not None
                and rec.finished is not None else None,
                "error": rec.error if rec else None,
                "deps": record.structure.get(name, []),
            }
        print_json({"run_id": record.run_id, "workflow": record.workflow,
                     "status": record.status, "created": record.created,
                     "started": record.started, "finished": record.finished,
                     "duration": record.duration, "resumes": record.resumes,
                     "nodes": nodes})
        return EXIT_OK
    counts: dict[str, int] = {}
    for name in names:
        rec = stored.nodes.get(name)
        status = rec.status if rec else "pending"
        counts[status] = counts.get(status, 0) + 1
    print(f"run {record.run_id} of {record.workflow!r}: {record.status}")
    print(f"  created  {when(record.created)}")
    print(f"  started  {when(record.started)}"
          + (f"  (resumed {record.resumes} time{'s' if record.resumes > 1 else ''})"
             if record.resumes else ""))
    print(f"  finished {when(record.finished)}  duration {seconds(record.duration)}")
    print("  nodes    " + ", ".join(f"{c} {s}" for s, c in counts.items()))
    rows = []
    for name in names:
        rec = stored.nodes.get(name)
        if rec is None:
            rows.append([name, "pending", 0, "-", ""])
            continue
        duration = (rec.finished - rec.started if rec.started is not None
                    and rec.finished is not None else None)
        error = rec.error or ""
        error = " ".join(error.split())
        if len(error) > 100:
            error = error[:97] + "..."
        rows.append([name, rec.status, rec.attempts, seconds(duration), error])
    print()
    print(format_table(["node", "status", "attempts", "duration", "error"], rows,
                       right=(2, 3)))
    if args.traceback:
        for name in names:
            rec = stored.nodes.get(name)
            if rec is not None and rec.traceback:
                print(f"\n--- {name} ---\n{rec.traceback.rstrip()}")
    return EXIT_OK
