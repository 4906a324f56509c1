"""``flowrt show RUN_ID --store PATH``: one stored run, node by node."""

from __future__ import annotations

import argparse
from typing import Any

from .. import _format as fmt
from ._common import EXIT_OK, format_table, load_run, open_store, print_json

__all__ = ["add_parser", "command"]


def add_parser(sub: Any) -> None:
    """Add ``show`` to the subcommands ``sub``."""
    p = sub.add_parser("show", help="show one stored run, node by node",
                       description="Show a stored run: per node its status, attempts, "
                                   "duration and error.")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--store", metavar="PATH", required=True,
                   help="an SQLite file, or a postgresql:// URL")
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
    run = stored.to_dict()
    if args.json:
        print_json(run)
        return EXIT_OK
    nodes = run["nodes"]
    counts = ", ".join(f"{c} {s}" for s, c in run["counts"].items())
    resumes = run["resumes"]
    print(f"run {run['run_id']} of {run['workflow']!r}: {run['status']}")
    print(f"  started  {fmt.timestamp(run['created'])}")
    print(f"  finished {fmt.timestamp(run['finished'])}  duration "
          f"{fmt.duration(run['duration'])}"
          + ("  (since the last resume)" if resumes else ""))
    print("  resumed  " + (f"{resumes} time{'s' if resumes > 1 else ''}, last at "
                           f"{fmt.timestamp(run['started'])}" if resumes else "never"))
    print(f"  nodes    {counts}")
    rows = [[name, node["status"], node["attempts"], fmt.duration(node["duration"]),
             fmt.one_line(node["error"] or "", 100)] for name, node in nodes.items()]
    print()
    print(format_table(["node", "status", "attempts", "duration", "error"], rows,
                       right=(2, 3)))
    if args.traceback:
        for name, node in nodes.items():
            if node["traceback"]:
                print(f"\n--- {name} ---\n{node['traceback'].rstrip()}")
    return EXIT_OK
