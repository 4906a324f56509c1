"""Park and wake: the time from ``rt.signal`` to the waiting node's successor starting
(issue 14's figure), in-process and through a worker.

Not a pyperf script: the worker figures involve another process and a shared store.
The workflow is ``start -> go (a signal node) -> after``; ``after`` returns
``time.time()`` as it starts, and a sample is that minus the time just before
``rt.signal`` was called.

- ``waits/in-process/memory``: ``await rt.run(...)`` without a store waits at ``go``;
  ``rt.signal`` from the same runtime (the in-process inbox).
- ``waits/in-process/sqlite``: the same run with an SQLite store (the wait recorded,
  the signal stored, then the waiting node is woken by its own runtime and reads it).
- ``waits/worker/sqlite``: a worker process (``flowrt worker --poll 0.01``) took the
  submitted run and parked it; this process sends the signal through the store; the
  worker finds the run due at its next look, claims it, reads back ``start``, takes
  the signal and starts ``after``. About half the poll interval plus a claim.
- ``waits/worker/postgres``: the same on PostgreSQL with ``--poll 1``: the worker is
  woken by ``NOTIFY`` (only with ``FLOWRT_BENCH_PG_URL`` or ``FLOWRT_TEST_PG_URL`` set).

``--quick``: 20 samples each; otherwise 100. ``--json FILE`` writes
``{"rows": {name: {"times_s": [...], "median_s": s, "p99_s": s, "nodes": 1}}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import anyio

import flowrt

PERF = Path(__file__).resolve().parent
REPO = PERF.parent

wake = flowrt.Workflow("wake")


@wake.node
async def start() -> int:
    return 1


wake.signal("go", after=[start])


@wake.node(after=["go"])
async def after(go: int) -> float:
    return time.time()


def in_process(samples: int, store: str | None) -> list[float]:
    """Signal a run waiting in this process; seconds to its successor's start."""
    out: list[float] = []

    async def main() -> None:
        async with flowrt.Runtime(store=store) as rt:
            for k in range(samples):
                waiting = anyio.Event()
                results: list[flowrt.RunResult] = []

                def hook(event: flowrt.Event, waiting: anyio.Event = waiting) -> None:
                    if str(event.kind) == "waiting":
                        waiting.set()

                async def run(k: int = k, results: list[Any] = results,
                              hook: Any = hook) -> None:
                    results.append(await rt.run(wake, run_id=f"w{k}", on_event=hook))

                async with anyio.create_task_group() as tg:
                    tg.start_soon(run)
                    await waiting.wait()
                    await anyio.sleep(0.005)  # let it look once and go to sleep
                    t0 = time.time()
                    await rt.signal(f"w{k}", "go", k)
                out.append(results[0]["after"] - t0)

    anyio.run(main)
    return out


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(PERF), str(REPO)])}


def through_worker(samples: int, store_arg: str, poll: float,
                   schema: str | None = None) -> list[float]:
    """Signal a run a worker process parked; seconds to its successor's start there."""
    if schema:
        store_arg += ("&" if "?" in store_arg else "?") + f"schema={schema}"
    worker = subprocess.Popen(
        [sys.executable, "-m", "flowrt", "worker", "--store", store_arg, "--workflows",
         "bench_waits", "--poll", str(poll), "--log-level", "info"],
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert worker.stderr is not None
    for line in worker.stderr:
        if "worker started" in line:
            break
    out: list[float] = []
    try:
        async def main() -> None:
            async with flowrt.Runtime(store=store_arg) as rt:
                s = rt.store
                assert s is not None
                for k in range(samples):
                    run_id = await rt.submit(wake, run_id=f"p{k}")
                    while s.get_run(run_id).status != "waiting":  # type: ignore[union-attr]
                        await anyio.sleep(0.002)
                    t0 = time.time()
                    await rt.signal(run_id, "go", k)
                    while True:
                        stored = s.load(run_id)
                        if stored is not None and stored.record.status == "succeeded":
                            break
                        await anyio.sleep(0.002)
                    out.append(stored.outputs()["after"] - t0)

        anyio.run(main)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", "-o", metavar="FILE")
    args = parser.parse_args()
    samples = 20 if args.quick else 100
    tmp = Path(tempfile.mkdtemp(prefix="flowrt-bench-waits-"))
    rows: dict[str, dict[str, Any]] = {}

    def record(name: str, times: list[float], note: str) -> None:
        ordered = sorted(times)
        median = statistics.median(times)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        rows[name] = {"times_s": times, "median_s": median, "p99_s": p99, "nodes": 1}
        print(f"{name:26} median {median * 1e3:8.3f} ms   p99 {p99 * 1e3:8.3f} ms   {note}",
              flush=True)

    pg_url = os.environ.get("FLOWRT_BENCH_PG_URL") or os.environ.get("FLOWRT_TEST_PG_URL")
    try:
        record("waits/in-process/memory", in_process(samples, None), "no store")
        record("waits/in-process/sqlite", in_process(samples, str(tmp / "in.db")),
               "SQLite store, signalled through the same runtime")
        record("waits/worker/sqlite", through_worker(samples, str(tmp / "w.db"), 0.01),
               "worker process, --poll 0.01")
        if pg_url:
            schema = f"bench_waits_{uuid.uuid4().hex[:8]}"
            try:
                record("waits/worker/postgres",
                       through_worker(samples, pg_url, 1.0, schema=schema),
                       "worker process woken by NOTIFY, --poll 1")
            finally:
                _drop_schema(pg_url, schema)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=2))


def _drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
