"""The work queue on PostgreSQL: throughput with worker processes beside SQLite, the
latency LISTEN/NOTIFY gives, the per-step durable overhead -- beside DBOS on the same
PostgreSQL server (issue 15's figures).

Not a pyperf script: every figure involves several processes and one database. Needs
the ``postgres`` extra and a server: ``FLOWRT_PERF_PG_URL`` (or ``FLOWRT_TEST_PG_URL``;
its user must be allowed to create databases for DBOS), else a throwaway one with fsync
on (``tests/pgserver.py start --durable``) is started and stopped after. DBOS comes
with the ``perf`` extra; ``--no-dbos`` skips it.

- ``fleet/throughput-W{1,2,4}/{flowrt_pg,flowrt_sqlite,dbos_pg}``: W worker processes
  are started and idle -- ``flowrt worker --concurrency 8`` on PostgreSQL (``--poll 1``:
  woken by NOTIFY) or on SQLite (``--poll 0.01``), DBOS processes with a
  ``Queue(worker_concurrency=8)`` polled every 10 ms on their own database of the same
  server -- then N runs of 5 no-op nodes (steps) are submitted (enqueued) one by one from
  this process, and the clock stops when the store says all of them succeeded. Seconds
  per run (and runs per second).
- ``fleet/latency/flowrt_pg``: one idle worker polling every second; a run is submitted,
  its first node records ``time.time()``: submit-to-start through NOTIFY, median and p99.
- ``fleet/steps-1000/{flowrt_pg,flowrt_memory,dbos_pg}``: one durable run of 1,000
  sequential no-op nodes (steps), seconds per step: flowrt with a ``PostgresStore``
  kept open by a ``Runtime`` and in memory (the difference is the durable overhead per
  step), DBOS's workflow calling a ``@DBOS.step`` 1,000 times.

``--quick``: N = 60 runs per worker count, 200 steps, 20 latency samples, one repeat;
otherwise N = 300, 1,000 steps, 50 samples, 3 repeats. ``--json FILE`` writes the times
(``{"rows": {name: {"times_s": [...], "median_s": s, "nodes": 1}}}``).
"""

from __future__ import annotations

import argparse
import atexit
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
from bench_queue import _env, _noop, _stop, five, latency

import flowrt

PERF = Path(__file__).resolve().parent
REPO = PERF.parent


def server_url() -> str | None:
    url = os.environ.get("FLOWRT_PERF_PG_URL") or os.environ.get("FLOWRT_TEST_PG_URL")
    if url:
        return url
    sys.path.insert(0, str(REPO / "tests"))
    import pgserver

    try:
        server = pgserver.start(durable=True)
    except RuntimeError as error:
        print(f"no PostgreSQL server ({error}): nothing measured")
        return None
    atexit.register(pgserver.stop, server.dir)
    return server.url


def _sql(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement.encode())


def _workers(store: str, count: int, poll: float) -> list[subprocess.Popen[str]]:
    workers = [subprocess.Popen(
        [sys.executable, "-m", "flowrt", "worker", "--store", store, "--workflows",
         "bench_queue", "--poll", str(poll), "--concurrency", "8", "--log-level", "info"],
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(count)]
    for w in workers:  # wait until each is serving
        assert w.stderr is not None
        for line in w.stderr:
            if "worker started" in line:
                break
    return workers


def _drain(store: flowrt.Store, runs: int) -> float:
    async def main() -> float:
        async with flowrt.Runtime(store=store) as rt:
            t0 = time.perf_counter()
            for k in range(runs):
                await rt.submit(five, run_id=f"r{k}")
            while len(store.runs(status="succeeded")) < runs:
                await anyio.sleep(0.02)
            return time.perf_counter() - t0

    return anyio.run(main)


def flowrt_pg_throughput(url: str, workers: int, runs: int) -> float:
    schema = f"fleet_{uuid.uuid4().hex[:8]}"
    store = flowrt.PostgresStore(url, schema=schema)
    procs = _workers(f"{url}?schema={schema}", workers, poll=1.0)
    try:
        return _drain(store, runs)
    finally:
        _stop(procs)
        store.close()
        _sql(url, f'DROP SCHEMA "{schema}" CASCADE')


def flowrt_sqlite_throughput(tmp: Path, workers: int, runs: int) -> float:
    db = tmp / f"fleet-{uuid.uuid4().hex[:8]}.db"
    store = flowrt.SQLiteStore(db)
    procs = _workers(str(db), workers, poll=0.01)
    try:
        return _drain(store, runs)
    finally:
        _stop(procs)
        store.close()


def flowrt_pg_latency(url: str, samples: int) -> list[float]:
    schema = f"fleet_{uuid.uuid4().hex[:8]}"
    store = flowrt.PostgresStore(url, schema=schema)
    procs = _workers(f"{url}?schema={schema}", 1, poll=1.0)
    out: list[float] = []
    try:
        async def main() -> None:
            async with flowrt.Runtime(store=store) as rt:
                await anyio.sleep(1.5)  # the worker's first look is over: it waits now
                for k in range(samples):
                    t0 = time.time()
                    run_id = await rt.submit(latency, run_id=f"l{k}")
                    while True:
                        stored = store.load(run_id)
                        if stored is not None and stored.record.status == "succeeded":
                            break
                        await anyio.sleep(0.002)
                    out.append(stored.outputs()["first"] - t0)
                    await anyio.sleep(0.05)

        anyio.run(main)
    finally:
        _stop(procs)
        store.close()
        _sql(url, f'DROP SCHEMA "{schema}" CASCADE')
    return out


def flowrt_steps(url: str | None, n: int) -> float:
    wf = flowrt.Workflow("steps")
    for i in range(n):
        wf.add(f"s{i}", _noop, deps={"prev": f"s{i - 1}"} if i else {})
    schema = f"fleet_{uuid.uuid4().hex[:8]}"
    store = flowrt.PostgresStore(url, schema=schema) if url else None

    async def main() -> float:
        async with flowrt.Runtime(store=store) as rt:  # opened before, as DBOS launched
            t0 = time.perf_counter()
            result = await rt.run(wf, run_id="steps")
            elapsed = time.perf_counter() - t0
        assert result.ok
        return elapsed / n

    try:
        return anyio.run(main)
    finally:
        if store is not None:
            store.close()
            _sql(url, f'DROP SCHEMA "{schema}" CASCADE')  # type: ignore[arg-type]


def _dbos_database(url: str) -> tuple[str, str]:
    """A new database on the server for one DBOS measurement: (its URL, its name)."""
    from urllib.parse import quote

    from psycopg.conninfo import conninfo_to_dict

    name = f"dbos_{uuid.uuid4().hex[:8]}"
    _sql(url, f'CREATE DATABASE "{name}"')
    info = conninfo_to_dict(url)
    auth = quote(str(info.get("user", "")))
    if info.get("password"):
        auth += ":" + quote(str(info["password"]))
    host, port = info.get("host", "localhost"), info.get("port", "5432")
    return f"postgresql://{auth}@{host}:{port}/{name}", name


def dbos_throughput(url: str, workers: int, runs: int) -> float:
    from dbos import DBOSClient

    db_url, name = _dbos_database(url)
    procs = [subprocess.Popen([sys.executable, str(PERF / "_dbos_app.py"), "worker", db_url],
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True) for _ in range(workers)]
    try:
        for p in procs:
            assert p.stdout is not None
            for line in p.stdout:
                if line.strip() == "ready":
                    break
        client = DBOSClient(system_database_url=db_url)
        t0 = time.perf_counter()
        for k in range(runs):
            client.enqueue({"queue_name": "flowrt_bench", "workflow_name": "five",
                            "workflow_id": f"r{k}", "app_version": "flowrt-bench"})
        while len(client.list_workflows(status="SUCCESS")) < runs:
            time.sleep(0.02)
        elapsed = time.perf_counter() - t0
        client.destroy()
        return elapsed
    finally:
        _stop(procs)
        _sql(url, f'DROP DATABASE "{name}" WITH (FORCE)')


def dbos_steps(url: str, n: int) -> float:
    db_url, name = _dbos_database(url)
    try:
        out = subprocess.run([sys.executable, str(PERF / "_dbos_app.py"), "steps", db_url,
                              str(n)], env=_env(), capture_output=True, text=True, check=True,
                             timeout=3600)
        return float(out.stdout.strip().splitlines()[-1]) / n
    finally:
        _sql(url, f'DROP DATABASE "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", "-o", metavar="FILE")
    parser.add_argument("--no-dbos", action="store_true")
    args = parser.parse_args()
    runs, steps, samples, repeats = (60, 200, 20, 1) if args.quick else (300, 1000, 50, 3)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        print("psycopg is not installed (pip install -e '.[postgres]'): nothing measured")
        return
    url = server_url()
    if url is None:
        return
    try:
        import dbos  # noqa: F401

        with_dbos = not args.no_dbos
    except ImportError:
        with_dbos = False
        print("dbos is not installed (pip install 'flowrt[perf]'): its figures are skipped")
    tmp = Path(tempfile.mkdtemp(prefix="flowrt-bench-fleet-"))
    rows: dict[str, dict[str, Any]] = {}

    def record(name: str, times: list[float], unit: str) -> None:
        median = statistics.median(times)
        rows[name] = {"times_s": times, "median_s": median, "nodes": 1}
        line = f"{name:34} {median * 1e3:10.3f} ms/{unit}"
        if unit == "run":
            line += f"   ({1 / median:8.1f} runs/s)"
        print(line, flush=True)

    try:
        for w in (1, 2, 4):
            record(f"fleet/throughput-W{w}/flowrt_pg",
                   [flowrt_pg_throughput(url, w, runs) / runs for _ in range(repeats)], "run")
            record(f"fleet/throughput-W{w}/flowrt_sqlite",
                   [flowrt_sqlite_throughput(tmp, w, runs) / runs for _ in range(repeats)],
                   "run")
            if with_dbos:
                record(f"fleet/throughput-W{w}/dbos_pg",
                       [dbos_throughput(url, w, runs) / runs for _ in range(repeats)], "run")
        lat = flowrt_pg_latency(url, samples)
        p99 = sorted(lat)[min(len(lat) - 1, int(0.99 * len(lat)))]
        rows["fleet/latency/flowrt_pg"] = {"times_s": lat, "median_s": statistics.median(lat),
                                           "nodes": 1, "p99_s": p99}
        print(f"{'fleet/latency/flowrt_pg':34} median {statistics.median(lat) * 1e3:.1f} ms, "
              f"p99 {p99 * 1e3:.1f} ms (poll 1 s: woken by NOTIFY)", flush=True)
        record(f"fleet/steps-{steps}/flowrt_pg",
               [flowrt_steps(url, steps) for _ in range(repeats)], "step")
        record(f"fleet/steps-{steps}/flowrt_memory",
               [flowrt_steps(None, steps) for _ in range(repeats)], "step")
        ours = rows[f"fleet/steps-{steps}/flowrt_pg"]["median_s"]
        base = rows[f"fleet/steps-{steps}/flowrt_memory"]["median_s"]
        print(f"flowrt's durable overhead per step on PostgreSQL: {(ours - base) * 1e6:.1f} us",
              flush=True)
        if with_dbos:
            record(f"fleet/steps-{steps}/dbos_pg",
                   [dbos_steps(url, steps) for _ in range(repeats)], "step")
            theirs = rows[f"fleet/steps-{steps}/dbos_pg"]["median_s"]
            print(f"per-step time: DBOS / flowrt = {theirs / ours:.0f}x; per-step durable "
                  f"overhead: DBOS / flowrt = {theirs / max(ours - base, 1e-9):.0f}x",
                  flush=True)
            for w in (1, 2, 4):
                ours_w, theirs_w = (rows[f"fleet/throughput-W{w}/{k}"]["median_s"]
                                    for k in ("flowrt_pg", "dbos_pg"))
                print(f"throughput W={w}: flowrt / DBOS on PostgreSQL = "
                      f"{theirs_w / ours_w:.1f}x", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=2))


if __name__ == "__main__":
    main()
