"""``flowrt cache prune|clear --store PATH``: the cached node outputs a store keeps.

Expired entries are never returned but stay in the store's ``cache`` table until they
are replaced or swept; ``prune`` sweeps them (run it from cron or a schedule), ``clear``
deletes every entry (docs/caching.md).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from ._common import EXIT_OK, echo, nonempty, open_store

__all__ = ["add_parser", "command"]


def add_parser(sub: Any) -> None:
    """Add ``cache`` (``prune``, ``clear``) to the subcommands ``sub``."""
    p = sub.add_parser("cache", help="sweep or clear a store's cached node outputs",
                       description="The cached node outputs kept in a store: 'prune' "
                                   "deletes the expired ones, 'clear' every one.")
    p.add_argument("action", choices=("prune", "clear"),
                   help="prune: delete the entries whose ttl ran out; clear: delete all")
    p.add_argument("--store", metavar="PATH", required=True, type=nonempty,
                   help="an SQLite file, or a postgresql:// URL")
    p.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    """``flowrt cache``: print how many entries went."""
    store = open_store(args.store, must_exist=True)
    try:
        if args.action == "prune":
            gone = store.prune_cache(time.time())
            echo(f"{gone} expired cache entr{'y' if gone == 1 else 'ies'} deleted")
        else:
            gone = store.clear_cache()
            echo(f"{gone} cache entr{'y' if gone == 1 else 'ies'} deleted")
    finally:
        store.close()
    return EXIT_OK
