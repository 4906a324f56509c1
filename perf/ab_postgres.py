"""Where the time of a durable run on PostgreSQL goes: one process, runs in turn.

``python perf/ab_postgres.py [ROUNDS]`` (``FLOWRT_PERF_PG_URL`` or
``FLOWRT_TEST_PG_URL`` names the server). Each round runs issue 15's workflow --
1,000 independent nodes that each sleep 1 ms, ``max_concurrency=50`` -- once in
memory, once on PostgreSQL and once on SQLite, each through a ``flowrt.Runtime`` kept
open, and prints per store: the median wall time, the median of the per-round ratios
to the run in memory (paired, so a machine loaded by others moves both sides), this
process's CPU time a run, and the CPU time a run of the server backends that serve
the store (read from ``/proc``, so the server must run on this machine; 0 otherwise).
Not a pyperf harness: a diagnostic beside ``perf/bench_postgres.py``, which measures
the figure itself.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import psycopg
from _common import build_workflow
from graphs import independent

import flowrt

MODES = ("memory", "postgres", "sqlite")
TICKS = os.sysconf("SC_CLK_TCK")
backends: list[int] = []  # the pids of the server processes serving this one


def _note_backend(connect: Any) -> Any:
    def note(cls: type[psycopg.Connection[Any]], *args: Any, **kwargs: Any) -> Any:
        conn = connect(cls, *args, **kwargs)
        backends.append(conn.info.backend_pid)
        return conn
    return classmethod(note)


psycopg.Connection.connect = _note_backend(psycopg.Connection.connect.__func__)  # type: ignore[method-assign]
psycopg.connect = psycopg.Connection.connect  # type: ignore[assignment]


def server_cpu() -> float:
    """CPU seconds (user + system) of the backends serving this process."""
    total = 0
    for pid in backends:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


async def nap(*_: Any) -> None:
    await anyio.sleep(0.001)


async def main(rounds: int, url: str) -> None:
    wf = build_workflow(independent(1000), nap, "sleepy")
    wf.compile()
    stores: dict[str, flowrt.Store | None] = {
        "memory": None,
        "postgres": flowrt.PostgresStore(url, schema=f"ab_{os.getpid()}"),
        "sqlite": flowrt.SQLiteStore(Path(tempfile.mkdtemp()) / "ab.db")}
    wall: dict[str, list[float]] = {m: [] for m in MODES}
    cpu: dict[str, list[float]] = {m: [] for m in MODES}
    server: dict[str, list[float]] = {m: [] for m in MODES}
    runtimes = {m: flowrt.Runtime(store=stores[m]) for m in MODES}
    for m in MODES:
        await runtimes[m].__aenter__()
        await runtimes[m].run(wf, run_id=uuid.uuid4().hex, max_concurrency=50)  # warm up
    try:
        for _ in range(rounds):
            for m in MODES:
                s0, c0, t0 = server_cpu(), time.process_time(), time.perf_counter()
                result = await runtimes[m].run(wf, run_id=uuid.uuid4().hex,
                                               max_concurrency=50)
                wall[m].append(time.perf_counter() - t0)
                cpu[m].append(time.process_time() - c0)
                server[m].append(server_cpu() - s0)
                assert result.ok
    finally:
        for m in MODES:
            await runtimes[m].__aexit__(None, None, None)
        postgres = stores["postgres"]
        assert isinstance(postgres, flowrt.PostgresStore)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{postgres.schema}" CASCADE'.encode())
        postgres.close()
    for m in MODES:
        ratio = statistics.median(a / b for a, b in zip(wall[m], wall["memory"], strict=True))
        print(f"{m:9s} wall {statistics.median(wall[m]) * 1e3:6.1f} ms   paired ratio "
              f"{ratio:.2f}x   client cpu {statistics.mean(cpu[m]) * 1e3:5.1f} ms   "
              f"server cpu {statistics.mean(server[m]) * 1e3:5.1f} ms")


if __name__ == "__main__":
    pg_url = os.environ.get("FLOWRT_PERF_PG_URL") or os.environ.get("FLOWRT_TEST_PG_URL")
    if not pg_url:
        sys.exit("set FLOWRT_PERF_PG_URL (or FLOWRT_TEST_PG_URL) to a PostgreSQL server")
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 10, pg_url)
