"""Workflows and a worker driver for the worker-process tests (test_workers.py).

``python -m flowrt worker --workflows queue_worker ...`` (with this folder on
``PYTHONPATH``) serves the workflows below. Each node appends
``<event> <run_id> <node> <pid> <time>`` to the file named by ``$QUEUE_LOG`` (O_APPEND,
one write per line): ``start`` before it works, ``end`` after, and ``again`` when the
store already recorded it as succeeded when it started -- which must never happen (the
store is read with a connection of its own, ``$QUEUE_DB``).

    python queue_worker.py serve STORE CLOCK_FILE BACKEND TTL
        a worker whose clock is the number in CLOCK_FILE (the test moves it), for the
        schedule tests; serves until SIGTERM. STORE (and ``$QUEUE_DB``) is a store's
        spec (tests/stores.py): an SQLite path, or ``pg:<schema>:<url>``.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import sys
import time
from typing import Any

import anyio
from stores import open_spec

import flowrt


def log(event: str, run_id: str, node: str) -> None:
    path = os.environ.get("QUEUE_LOG")
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{event} {run_id} {node} {os.getpid()} {time.time():.6f}\n".encode())
    finally:
        os.close(fd)


_pg_connection: Any = None


def recorded_succeeded(run_id: str, node: str) -> bool:
    db = os.environ.get("QUEUE_DB")
    if not db:
        return False
    if db.startswith("pg:"):  # a PostgreSQL store's spec (tests/stores.py)
        global _pg_connection
        import psycopg

        _, schema, url = db.split(":", 2)
        deadline = time.monotonic() + 60
        while True:  # through a server restart: the check must not be skipped
            try:
                if _pg_connection is None or _pg_connection.closed or _pg_connection.broken:
                    _pg_connection = psycopg.connect(url, autocommit=True)
                # the node's last record: batches in write order, records in order
                row = _pg_connection.execute(
                    f'SELECT r.status FROM "{schema}".node_batches AS b, '
                    "unnest(b.nodes, b.statuses) WITH ORDINALITY AS r(node, status, k) "
                    "WHERE b.run_id = %s AND r.node = %s ORDER BY b.seq DESC, r.k DESC "
                    "LIMIT 1".encode(), (run_id, node)).fetchone()
                return row is not None and row[0] == "succeeded"
            except psycopg.OperationalError:
                _pg_connection = None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        row = conn.execute("SELECT status FROM nodes WHERE run_id = ? AND node = ?",
                           (run_id, node)).fetchone()
    finally:
        conn.close()
    return row is not None and row[0] == "succeeded"


def make_step(i: int) -> object:
    async def step(ctx: flowrt.Context, prev: int = 0) -> int:
        if recorded_succeeded(ctx.run_id, ctx.node):
            log("again", ctx.run_id, ctx.node)
        log("start", ctx.run_id, ctx.node)
        await anyio.sleep(random.Random(f"{ctx.run_id}/{ctx.node}").uniform(0, STEP))
        log("end", ctx.run_id, ctx.node)
        return prev + i

    return step


#: the longest a step sleeps (seconds): ``$QUEUE_STEP``, 20 ms by default
STEP = float(os.environ.get("QUEUE_STEP", "0.02"))

#: five nodes in a chain, each sleeping up to STEP
five = flowrt.Workflow("five")
for _i in range(5):
    five.add(f"n{_i}", make_step(_i), deps={"prev": f"n{_i - 1}"} if _i else {})


async def _slow_node(ctx: flowrt.Context) -> int:
    log("start", ctx.run_id, ctx.node)
    await anyio.sleep(float(os.environ.get("QUEUE_SLOW", "3")))
    log("end", ctx.run_id, ctx.node)
    return 1


#: one slow node, then a quick one
slow = flowrt.Workflow("slow")
slow.add("long", _slow_node)
slow.add("after", make_step(1), deps={"prev": "long"})


class FileClock:
    """A clock shared by processes: the time is the number in a file (a fake clock the
    test moves for every worker at once)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def now(self) -> float:
        with open(self.path) as f:
            return float(f.read().strip() or 0)

    async def sleep_until(self, when: float) -> None:
        while self.now() < when:
            await anyio.sleep(0.01)


async def serve(store_path: str, clock_path: str, ttl: float) -> None:
    store = open_spec(store_path, lease_ttl=ttl)
    try:
        async with flowrt.Runtime(store=store, workflows=[five, slow],
                                  clock=FileClock(clock_path)) as rt:
            with anyio.open_signal_receiver(signal.SIGTERM) as signals:
                async with anyio.create_task_group() as tg:
                    async def stop() -> None:
                        async for _ in signals:
                            tg.cancel_scope.cancel()
                            return

                    tg.start_soon(stop)
                    await rt.serve(poll=0.02)
    finally:
        store.close()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        anyio.run(serve, sys.argv[2], sys.argv[3], float(sys.argv[5]), backend=sys.argv[4])
