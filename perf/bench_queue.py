"""The work queue: throughput with worker processes, latency from submit to start, and
the per-step durable overhead -- flowrt beside DBOS, both on SQLite (issue 14's figures).

Not a pyperf script: every figure involves several processes and one SQLite file.

- ``queue/throughput-W{1,2,4}/{flowrt,dbos}``: W worker processes (``flowrt worker
  --poll 0.01 --concurrency 8``; DBOS processes with a ``Queue(worker_concurrency=8)``)
  are started and idle; then N runs of 5 no-op nodes (steps) are submitted (enqueued)
  one by one from this process, and the clock stops when the store says all of them
  succeeded. Seconds per run (and runs per second).
- ``queue/latency/flowrt``: one idle worker (``--poll 0.01``); a run is submitted, its
  first node records ``time.time()``: submit-to-start, 50 times, median and p99. The
  worker looks at the store every ``poll`` seconds, so the latency is about half of it
  plus the claim.
- ``queue/steps-1000/{flowrt,dbos}``: one durable run of 1,000 sequential no-op nodes
  (steps), seconds per node: flowrt's ``wf.run(store="steps.db")``, DBOS's workflow
  calling a ``@DBOS.step`` 1,000 times.

``--quick``: N = 60 runs per worker count, 200 steps, 20 latency samples, one repeat;
otherwise N = 300, 1,000 steps, 50 samples, 3 repeats. ``--json FILE`` writes the times
(``{"rows": {name: {"times_s": [...], "median_s": s, "nodes": 1}}}``: seconds per run,
per sample or per step); ``--no-dbos``
skips DBOS (also skipped when it is not installed).
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
from pathlib import Path
from typing import Any

import anyio

import flowrt

PERF = Path(__file__).resolve().parent
REPO = PERF.parent

five = flowrt.Workflow("five")


async def _noop(prev: int = 0) -> int:
    return prev + 1


for _i in range(5):
    five.add(f"n{_i}", _noop, deps={"prev": f"n{_i - 1}"} if _i else {})

latency = flowrt.Workflow("latency")


@latency.node
async def first(ctx: flowrt.Context) -> float:
    return time.time()


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(PERF), str(REPO)])}


def _flowrt_workers(db: Path, count: int, poll: float = 0.01) -> list[subprocess.Popen[str]]:
    workers = [subprocess.Popen(
        [sys.executable, "-m", "flowrt", "worker", "--store", str(db), "--workflows",
         "bench_queue", "--poll", str(poll), "--concurrency", "8", "--log-level", "info"],
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(count)]
    for w in workers:  # wait until each is serving
        assert w.stderr is not None
        for line in w.stderr:
            if "worker started" in line:
                break
    return workers


def _stop(workers: list[subprocess.Popen[str]]) -> None:
    for w in workers:
        w.terminate()
    for w in workers:
        w.wait(timeout=60)


def flowrt_throughput(tmp: Path, workers: int, runs: int) -> float:
    db = tmp / f"flowrt-w{workers}.db"
    flowrt.SQLiteStore(db).close()
    procs = _flowrt_workers(db, workers)
    try:
        async def main() -> float:
            async with flowrt.Runtime(store=str(db)) as rt:
                t0 = time.perf_counter()
                for k in range(runs):
                    await rt.submit(five, run_id=f"r{k}")
                assert rt.store is not None
                while len(rt.store.runs(status="succeeded")) < runs:
                    await anyio.sleep(0.005)
                return time.perf_counter() - t0

        return anyio.run(main)
    finally:
        _stop(procs)


def flowrt_latency(tmp: Path, samples: int) -> list[float]:
    db = tmp / "flowrt-latency.db"
    flowrt.SQLiteStore(db).close()
    procs = _flowrt_workers(db, 1)
    out = []
    try:
        async def main() -> None:
            async with flowrt.Runtime(store=str(db)) as rt:
                assert rt.store is not None
                for k in range(samples):
                    t0 = time.time()
                    run_id = await rt.submit(latency, run_id=f"l{k}")
                    while True:
                        stored = rt.store.load(run_id)
                        if stored is not None and stored.record.status == "succeeded":
                            break
                        await anyio.sleep(0.002)
                    out.append(stored.outputs()["first"] - t0)

        anyio.run(main)
    finally:
        _stop(procs)
    return out


def flowrt_steps(tmp: Path, n: int) -> float:
    wf = flowrt.Workflow("steps")
    for i in range(n):
        wf.add(f"s{i}", _noop, deps={"prev": f"s{i - 1}"} if i else {})
    db = tmp / f"steps-{time.monotonic_ns()}.db"

    async def main() -> float:
        async with flowrt.Runtime(store=str(db)) as rt:  # opened before, as DBOS launched
            t0 = time.perf_counter()
            result = await rt.run(wf, run_id="steps")
            elapsed = time.perf_counter() - t0
        assert result.ok
        return elapsed / n

    return anyio.run(main)


def dbos_throughput(tmp: Path, workers: int, runs: int) -> float:
    from dbos import DBOSClient

    url = f"sqlite:///{tmp}/dbos-w{workers}.sqlite"
    procs = [subprocess.Popen([sys.executable, str(PERF / "_dbos_app.py"), "worker", url],
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True) for _ in range(workers)]
    try:
        for p in procs:
            assert p.stdout is not None
            for line in p.stdout:  # DBOS logs to stdout first
                if line.strip() == "ready":
                    break
        client = DBOSClient(system_database_url=url)
        t0 = time.perf_counter()
        for k in range(runs):
            client.enqueue({"queue_name": "flowrt_bench", "workflow_name": "five",
                            "workflow_id": f"r{k}", "app_version": "flowrt-bench"})
        while len(client.list_workflows(status="SUCCESS")) < runs:
            time.sleep(0.005)
        elapsed = time.perf_counter() - t0
        client.destroy()
        return elapsed
    finally:
        _stop(procs)


def dbos_steps(tmp: Path, n: int) -> float:
    url = f"sqlite:///{tmp}/dbos-steps-{time.monotonic_ns()}.sqlite"
    out = subprocess.run([sys.executable, str(PERF / "_dbos_app.py"), "steps", url, str(n)],
                         env=_env(), capture_output=True, text=True, check=True, timeout=3600)
    return float(out.stdout.strip().splitlines()[-1]) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", "-o", metavar="FILE")
    parser.add_argument("--no-dbos", action="store_true")
    args = parser.parse_args()
    runs, steps, samples, repeats = (60, 200, 20, 1) if args.quick else (300, 1000, 50, 3)
    try:
        import dbos  # noqa: F401

        with_dbos = not args.no_dbos
    except ImportError:
        with_dbos = False
        print("dbos is not installed (pip install 'flowrt[perf]'): its figures are skipped")
    tmp = Path(tempfile.mkdtemp(prefix="flowrt-bench-queue-"))
    rows: dict[str, dict[str, Any]] = {}

    def record(name: str, times: list[float], nodes: int, unit: str, per: float = 1.0) -> None:
        median = statistics.median(times)
        rows[name] = {"times_s": times, "median_s": median, "nodes": 1, "of": nodes}
        print(f"{name:34} {median / per * 1e3:10.3f} ms/{unit}"
              + (f"   ({per / median:8.1f} {unit}s/s)" if unit == "run" else ""), flush=True)

    try:
        for w in (1, 2, 4):
            times = [flowrt_throughput(tmp, w, runs) / runs for _ in range(repeats)]
            record(f"queue/throughput-W{w}/flowrt", times, 5, "run")
            if with_dbos:
                times = [dbos_throughput(tmp, w, runs) / runs for _ in range(repeats)]
                record(f"queue/throughput-W{w}/dbos", times, 5, "run")
        lat = flowrt_latency(tmp, samples)
        rows["queue/latency/flowrt"] = {"times_s": lat, "median_s": statistics.median(lat),
                                        "nodes": 1, "p99_s": sorted(lat)[
                                            min(len(lat) - 1, int(0.99 * len(lat)))]}
        p99 = sorted(lat)[min(len(lat) - 1, int(0.99 * len(lat)))]
        print(f"{'queue/latency/flowrt':34} median {statistics.median(lat) * 1e3:.1f} ms, "
              f"p99 {p99 * 1e3:.1f} ms (poll 0.01 s)", flush=True)
        record(f"queue/steps-{steps}/flowrt",
               [flowrt_steps(tmp, steps) for _ in range(repeats)], steps, "step")
        if with_dbos:
            record(f"queue/steps-{steps}/dbos",
                   [dbos_steps(tmp, steps) for _ in range(repeats)], steps, "step")
            ours, theirs = (rows[f"queue/steps-{steps}/{k}"]["median_s"]
                            for k in ("flowrt", "dbos"))
            print(f"per-step overhead: DBOS / flowrt = {theirs / ours:.0f}x", flush=True)
            for w in (1, 2, 4):
                ours, theirs = (rows[f"queue/throughput-W{w}/{k}"]["median_s"]
                                for k in ("flowrt", "dbos"))
                print(f"throughput W={w}: flowrt / DBOS = {theirs / ours:.1f}x", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=2))


if __name__ == "__main__":
    main()
