"""Whether a run stored as ``running`` still has a live owner.

A process that died (SIGKILL, power cut) leaves its runs ``running`` in the store; they
are *interrupted*: resumable by running them again. A run is interrupted when its
lease ran out (its process stopped renewing it) or its process is gone on this host.

This reads the lease the store keeps beside each run; the store's records will say it
themselves (``RunRecord.owner``, ``lease_expires``, ``is_interrupted()``), and then this
module goes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from ...durable import Lease, SQLiteStore

__all__ = ["add_liveness"]


def _leases(store: SQLiteStore, run_ids: list[str]) -> dict[str, tuple[Any, Any]]:
    try:
        conn = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error:
        return {}
    try:
        found: dict[str, tuple[Any, Any]] = {}
        for i in range(0, len(run_ids), 500):
            chunk = run_ids[i:i + 500]
            rows = conn.execute(
                "SELECT run_id, lease, lease_expires FROM runs WHERE run_id IN "
                f"({','.join('?' * len(chunk))})", chunk)
            found.update((r[0], (r[1], r[2])) for r in rows)
        return found
    except sqlite3.Error:
        return {}
    finally:
        conn.close()


def add_liveness(store: SQLiteStore, runs: list[dict[str, Any]]) -> None:
    """Add ``interrupted``, ``owner`` (``{"host", "pid"}`` or None) and
    ``lease_expires`` to each ``to_dict()`` of ``runs`` (read from ``store``)."""
    running = [d["run_id"] for d in runs if d.get("status") == "running"]
    leases = _leases(store, running) if running else {}
    now = time.time()
    for d in runs:
        d["interrupted"] = False
        d["owner"] = d["lease_expires"] = None
        if d.get("status") != "running":
            continue
        text, expires = leases.get(d["run_id"], (None, None))
        owner = None
        try:
            fields = json.loads(text) if isinstance(text, str) else None
            if isinstance(fields, dict):
                owner = Lease(str(fields["host"]), int(fields["pid"]), str(fields["token"]))
        except (KeyError, TypeError, ValueError):
            owner = None
        expires = float(expires) if isinstance(expires, int | float) else None
        d["owner"] = None if owner is None else {"host": owner.host, "pid": owner.pid}
        d["lease_expires"] = expires
        d["interrupted"] = owner is None or owner.is_stale(expires or 0.0, now)
