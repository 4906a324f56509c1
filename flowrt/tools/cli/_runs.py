"""``flowrt runs --store PATH``: the runs a store keeps, oldest first."""

from __future__ import annotations

import argparse
from typing import Any

from .. import _format as fmt
from ._common import EXIT_OK, format_table, open_store, positive_int, print_json

__all__ = ["add_parser", "command"]


def add_parser(sub: Any) -> None:
    """Add ``runs`` to the subcommands ``sub``."""
    p = sub.add_parser("runs", help="list the runs of a store",
                       description="List the runs kept in a durable store.")
    p.add_argument("--store", metavar="PATH", required=True,
                   help="an SQLite file, or a postgresql:// URL")
    p.add_argument("--workflow", help="only runs of this workflow")
    p.add_argument("--status", choices=["running", "succeeded", "failed", "cancelled"],
                   help="only runs with this status")
    p.add_argument("--last", type=positive_int, metavar="N", help="only the N latest runs")
    p.add_argument("--json", action="store_true", help="print the runs as JSON")
    p.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    """``flowrt runs``: one line per stored run."""
    store = open_store(args.store, must_exist=True)
    try:
        records = store.runs(workflow=args.workflow, status=args.status)
    finally:
        store.close()
    records = sorted(records, key=lambda r: r.created)
    if args.last is not None:
        records = records[-args.last:]
    if args.json:
        print_json([r.to_dict() for r in records])
        return EXIT_OK
    if not records:
        print(f"no runs in {args.store}")
        return EXIT_OK
    rows = [[r.run_id, r.workflow, r.status, fmt.timestamp(r.created), fmt.duration(r.duration),
             len(r.structure), r.resumes] for r in records]
    print(format_table(["run id", "workflow", "status", "started", "duration", "nodes",
                        "resumes"], rows, right=(4, 5, 6)))
    return EXIT_OK
