"""Where the time of a durable run on PostgreSQL goes: one process, runs in turn.

``python perf/ab_postgres.py [ROUNDS] [--base REV ...]`` (``FLOWRT_PERF_PG_URL`` or
``FLOWRT_TEST_PG_URL`` names the server). Each round runs issue 15's workflow --
1,000 independent nodes that each sleep 1 ms, ``max_concurrency=50`` -- once in
memory, once on PostgreSQL and once on SQLite, each through a ``flowrt.Runtime`` kept
open, and prints per store: the median wall time, the median of the per-round ratios
to the run in memory (paired, so a machine loaded by others moves both sides), this
process's CPU time a run, and the CPU time a run of the server backends that serve
the store (read from ``/proc``, so the server must run on this machine; 0 otherwise).
Not a pyperf harness: a diagnostic beside ``perf/bench_postgres.py``, which measures
the figure itself.

``--noop`` runs the other figure of issue 15 instead: 10,000 no-op nodes (a random
DAG, no concurrency cap), and prints the time per committed node too.

``--block N`` runs each store N times back to back in its turn (as pyperf's loops
do), and prints per-run figures: what one run leaves for the next in the same store
(its WAL, flushed by the next claim on a server that syncs) then shows.

``--fresh`` opens new stores for each round and measures their first run: what a
service pays for its first run after it starts (the store is opened before the clock
starts, as a service opens it before it takes work).

``--base REV`` (repeatable) adds a PostgreSQL store from another commit of flowrt,
``postgres@REV``, run in the same rounds: a paired A/B of a change to the store in one
process, both sides on the same runtime (only the store's package differs: it is
``git archive``d into a temporary directory and imported as ``flowrt_REV``).
"""

from __future__ import annotations

import importlib
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import psycopg
from _common import build_workflow, noop
from graphs import independent, random_dag

import flowrt

REPO = Path(__file__).resolve().parent.parent
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


def store_class_at(rev: str) -> Any:
    """PostgresStore as flowrt was at commit ``rev``, imported as package ``flowrt_REV``."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "flowrt"],
                             check=True, capture_output=True).stdout
    where = Path(tempfile.mkdtemp(prefix="flowrt-ab-"))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(where, filter="data")
    name = f"flowrt_{rev.replace('-', '_').replace('.', '_')}"
    (where / "flowrt").rename(where / name)
    sys.path.insert(0, str(where))
    return importlib.import_module(f"{name}.durable._postgres").PostgresStore


def open_stores(url: str, classes: dict[str, Any]) -> dict[str, Any]:
    """One store per mode: None (in memory), SQLite, PostgreSQL at each revision."""
    stores: dict[str, Any] = {"memory": None, "sqlite": flowrt.SQLiteStore(
        Path(tempfile.mkdtemp()) / "ab.db")}
    for i, (mode, cls) in enumerate(classes.items()):
        stores[mode] = cls(url, schema=f"ab_{os.getpid()}_{i}")
    return stores


async def main(rounds: int, url: str, bases: list[str], noops: bool, block: int,
               fresh: bool) -> None:
    if noops:
        wf = build_workflow(random_dag(10_000), noop, "noops")
        options: dict[str, Any] = {}
    else:
        wf = build_workflow(independent(1000), nap, "sleepy")
        options = {"max_concurrency": 50}
    wf.compile()
    classes = {"postgres": flowrt.PostgresStore}
    for rev in bases:
        classes[f"postgres@{rev}"] = store_class_at(rev)
    stores = open_stores(url, classes)
    modes = list(stores)
    wall: dict[str, list[float]] = {m: [] for m in modes}
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    server: dict[str, list[float]] = {m: [] for m in modes}

    async def enter(stores: dict[str, Any]) -> dict[str, flowrt.Runtime]:
        runtimes = {m: flowrt.Runtime(store=stores[m]) for m in modes}
        for m in modes:
            await runtimes[m].__aenter__()
        return runtimes

    async def leave(runtimes: dict[str, flowrt.Runtime], stores: dict[str, Any]) -> None:
        for m in modes:
            await runtimes[m].__aexit__(None, None, None)
        for m in modes:
            if m.startswith("postgres"):
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{stores[m].schema}" CASCADE'.encode())
                stores[m].close()

    runtimes = await enter(stores)
    for m in modes:
        await runtimes[m].run(wf, run_id=uuid.uuid4().hex, **options)  # warm up
    try:
        for r in range(rounds):
            if fresh:  # (the stores of the warm-up too: each round's are new)
                await leave(runtimes, stores)
                stores = open_stores(url, classes)
                runtimes = await enter(stores)
            for m in modes[r % len(modes):] + modes[:r % len(modes)]:  # turns rotate
                s0, c0, t0 = server_cpu(), time.process_time(), time.perf_counter()
                for _ in range(block):
                    result = await runtimes[m].run(wf, run_id=uuid.uuid4().hex, **options)
                    assert result.ok
                wall[m].append((time.perf_counter() - t0) / block)
                cpu[m].append((time.process_time() - c0) / block)
                server[m].append((server_cpu() - s0) / block)
    finally:
        await leave(runtimes, stores)
    width = max(map(len, modes))
    for m in modes:
        ratio = statistics.median(a / b for a, b in zip(wall[m], wall["memory"], strict=True))
        print(f"{m:{width}s} wall {statistics.median(wall[m]) * 1e3:6.1f} ms   paired ratio "
              f"{ratio:.3f}x   client cpu {statistics.mean(cpu[m]) * 1e3:5.1f} ms   "
              f"server cpu {statistics.mean(server[m]) * 1e3:5.1f} ms"
              + (f"   {statistics.median(wall[m]) / 10_000 * 1e6:5.1f} us a node"
                 if noops else ""))


if __name__ == "__main__":
    pg_url = os.environ.get("FLOWRT_PERF_PG_URL") or os.environ.get("FLOWRT_TEST_PG_URL")
    if not pg_url:
        sys.exit("set FLOWRT_PERF_PG_URL (or FLOWRT_TEST_PG_URL) to a PostgreSQL server")
    args = sys.argv[1:]
    base_revs = [args[i + 1] for i, a in enumerate(args) if a == "--base"]
    blocks = [int(args[i + 1]) for i, a in enumerate(args) if a == "--block"]
    plain = [a for i, a in enumerate(args) if not a.startswith("--")
             and (i == 0 or args[i - 1] not in ("--base", "--block"))]
    anyio.run(main, int(plain[0]) if plain else 10, pg_url, base_revs, "--noop" in args,
              blocks[-1] if blocks else 1, "--fresh" in args)
