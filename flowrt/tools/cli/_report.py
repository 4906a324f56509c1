"""``flowrt report RUN_ID --store PATH -o FILE.html``: a stored run as one HTML page."""

from __future__ import annotations

import argparse
from typing import Any

from ..report import write as write_report
from ._common import EXIT_OK, UsageError, load_run, open_store

__all__ = ["add_parser", "command"]


def add_parser(sub: Any) -> None:
    """Add ``report`` to the subcommands ``sub``."""
    p = sub.add_parser("report", help="write a stored run as a self-contained HTML page",
                       description="Write the HTML report of a stored run: the graph "
                                   "coloured by status, a timeline and the node table.")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--store", metavar="PATH", required=True,
                   help="an SQLite file, or a postgresql:// URL")
    p.add_argument("-o", "--output", metavar="FILE.html",
                   help="where to write it (default: RUN_ID.html)")
    p.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    """``flowrt report``: write the page, say where."""
    store = open_store(args.store, must_exist=True)
    try:
        stored = load_run(store, args.run_id, args.store)
    finally:
        store.close()
    out = args.output or f"{args.run_id}.html"
    try:
        path = write_report(stored, out)
    except OSError as error:
        raise UsageError(f"cannot write {out}: {error.strerror or error}") from None
    print(f"wrote {path} (run {stored.record.run_id} of {stored.record.workflow!r}, "
          f"{stored.record.status}, {len(stored.record.structure)} nodes)")
    return EXIT_OK
