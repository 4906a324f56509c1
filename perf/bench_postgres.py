"""Durable runs on PostgreSQL versus in memory, beside SQLite (issue 15's figures).

pyperf harness: ``python perf/bench_postgres.py [--quick] [pyperf options]``. Needs the
``postgres`` extra and a server: ``FLOWRT_PERF_PG_URL`` (or ``FLOWRT_TEST_PG_URL``), else
a throwaway one with fsync on (``tests/pgserver.py start --durable``) is started for the
run and stopped after it. Without psycopg or PostgreSQL it prints a note and measures
nothing.

- ``postgres/sleep1ms-1000/{memory,postgres,sqlite}``: 1,000 independent nodes that each
  ``await anyio.sleep(0.001)`` under ``max_concurrency=50``, in memory and with a store
  kept open by a ``flowrt.Runtime`` (a service): PostgreSQL, SQLite. Per run; the run
  returns once every record is committed. Target: durable <= 1.15x in memory.
- ``postgres/noop-10000/{memory,postgres,sqlite}``: 10,000 no-op async nodes (random
  DAG): the time per committed node.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import anyio
from _common import Harness, build_workflow, clock, noop
from graphs import independent, random_dag

import flowrt

URL_VARIABLE = "FLOWRT_PERF_PG_URL"
REPO = Path(__file__).resolve().parent.parent


async def nap(*_: Any) -> None:
    await anyio.sleep(0.001)


def server_url(worker: bool) -> str | None:
    """The server to measure on; the manager process starts one when none is given."""
    url = os.environ.get(URL_VARIABLE) or os.environ.get("FLOWRT_TEST_PG_URL")
    if url or worker:
        return url
    sys.path.insert(0, str(REPO / "tests"))
    import pgserver

    try:
        server = pgserver.start(durable=True)
    except RuntimeError as error:
        print(f"note: no PostgreSQL server ({error}); nothing measured")
        return None
    atexit.register(pgserver.stop, server.dir)
    return server.url


@functools.cache
def workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="flowrt-bench-postgres-"))
    atexit.register(shutil.rmtree, path, True)
    return path


@functools.cache
def sleepy() -> flowrt.Workflow:
    wf = build_workflow(independent(1000), nap, "sleepy")
    wf.compile()
    return wf


@functools.cache
def noops() -> flowrt.Workflow:
    wf = build_workflow(random_dag(10_000), noop, "noops")
    wf.compile()
    return wf


@functools.cache
def schema() -> str:
    """This worker process's own schema (dropped when it exits)."""
    name = f"bench_{os.getpid()}"
    url = os.environ[URL_VARIABLE]

    def drop() -> None:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'.encode())

    atexit.register(drop)
    return name


def make_store(mode: str) -> flowrt.Store | None:
    if mode == "memory":
        return None
    if mode == "sqlite":
        return flowrt.SQLiteStore(workdir() / f"{uuid.uuid4().hex}.db")
    return flowrt.PostgresStore(os.environ[URL_VARIABLE], schema=schema())


def time_runs(loops: int, wf: flowrt.Workflow, mode: str, **options: Any) -> float:
    store = make_store(mode)

    async def main() -> float:
        total = 0.0
        async with flowrt.Runtime(store=store) as rt:
            for _ in range(loops):
                t0 = clock()
                result = await rt.run(wf, run_id=uuid.uuid4().hex, **options)
                total += clock() - t0
                assert result.ok
        return total

    try:
        return anyio.run(main)
    finally:
        if store is not None:
            store.close()


def main() -> None:
    worker = "--worker" in sys.argv
    try:
        import psycopg  # noqa: F401
    except ImportError:
        print("note: psycopg is not installed (pip install -e '.[postgres]'); nothing measured")
        return
    url = server_url(worker)
    if url is None:
        return
    os.environ[URL_VARIABLE] = url
    if not worker:
        sys.argv.append(f"--inherit-environ={URL_VARIABLE}")
    h = Harness(__doc__.splitlines()[0])
    cap = {"max_concurrency": 50}
    for mode in ("memory", "postgres", "sqlite"):
        h.bench(f"postgres/sleep1ms-1000/{mode}",
                functools.partial(time_runs, wf=sleepy(), mode=mode, **cap))
    for mode in ("memory", "postgres", "sqlite"):
        h.bench(f"postgres/noop-10000/{mode}",
                functools.partial(time_runs, wf=noops(), mode=mode))
    h.summary("durable on PostgreSQL vs in memory, 1,000 nodes x 1 ms, max_concurrency=50", [
        ("in memory", "postgres/sleep1ms-1000/memory", None),
        ("PostgresStore (Runtime)", "postgres/sleep1ms-1000/postgres",
         "postgres/sleep1ms-1000/memory"),
        ("SQLiteStore (Runtime)", "postgres/sleep1ms-1000/sqlite",
         "postgres/sleep1ms-1000/memory"),
    ], unit="ms", note="target: at most 1.15x in memory")
    h.summary("durable vs in memory, 10,000 no-op nodes", [
        ("in memory", "postgres/noop-10000/memory", None),
        ("PostgresStore (Runtime)", "postgres/noop-10000/postgres", "postgres/noop-10000/memory"),
        ("SQLiteStore (Runtime)", "postgres/noop-10000/sqlite", "postgres/noop-10000/memory"),
    ], unit="ms")
    memory = h.median("postgres/noop-10000/memory")
    for label in ("postgres", "sqlite"):
        per = h.median(f"postgres/noop-10000/{label}")
        if per is not None and not worker:
            extra = f" ({(per - memory) / 10_000 * 1e6:.2f} us over memory)" if memory else ""
            print(f"   time per committed node, {label}: {per / 10_000 * 1e6:.2f} us{extra}")


if __name__ == "__main__":
    main()
