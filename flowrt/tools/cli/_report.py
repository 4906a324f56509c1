"""``flowrt report RUN_ID --store PATH -o FILE.html``: a stored run as one HTML page."""

from __future__ import annotations

import argparse
import os
import stat
from typing import Any

from .._view import RunView
from ..report import child_views
from ..report import write as write_report
from ._common import EXIT_OK, UsageError, echo, load_run, nonempty, open_store

__all__ = ["add_parser", "command"]


def add_parser(sub: Any) -> None:
    """Add ``report`` to the subcommands ``sub``."""
    p = sub.add_parser("report", help="write a stored run as a self-contained HTML page",
                       description="Write the HTML report of a stored run: the graph "
                                   "coloured by status, a timeline and the node table. "
                                   "The file gets the store's permissions.")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--store", metavar="PATH", required=True, type=nonempty,
                   help="an SQLite file, or a postgresql:// URL")
    p.add_argument("-o", "--output", metavar="FILE.html", type=nonempty,
                   help="where to write it (default: RUN_ID.html)")
    p.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    """``flowrt report``: write the page, with the store's permissions; say where."""
    store = open_store(args.store, must_exist=True)
    try:
        stored = load_run(store, args.run_id, args.store)
        data = stored.to_dict()
        children = child_views(store, args.run_id)  # drawn nested: sub-workflows
        # The page shows what the store holds: whoever may not read the store may not
        # read the page either (a database has no file mode: the owner's only).
        path = getattr(store, "path", None)
        mode = stat.S_IMODE(os.stat(path).st_mode) & 0o666 if path is not None else 0o600
    finally:
        store.close()
    view = RunView.from_dict(data)
    out = args.output or f"{args.run_id}.html"
    try:
        path = write_report(view, out, mode=mode, children=children)
    except OSError as error:
        raise UsageError(f"cannot write {out}: {error.strerror or error}") from None
    nested = f", {len(children)} child runs" if children else ""
    echo(f"wrote {path} (run {view.run_id} of {view.workflow!r}, {view.state}, "
         f"{len(view.nodes)} nodes{nested})")
    return EXIT_OK
