"""Beyond one machine: threads, a process pool and a Dask cluster for CPU-bound nodes.

A plain timed script, not a pyperf harness: one run of the CPU-bound graph takes a
second or more and needs a cluster running beside it. Every side runs the same graph
(perf/graphs.random_dag) in the same process, on the same 2-worker LocalCluster:

- threads: flowrt, sync nodes in worker threads (the default; the GIL serialises them);
- process: flowrt with ``executor=flowrt.ProcessExecutor(2)``;
- flowrt+dask: flowrt with ``executor=flowrt.DaskExecutor(client)``;
- dask: plain ``client.get(graph, keys)`` of the equivalent task graph.

Usage: ``python perf/bench_executors.py [--quick] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import anyio
from _tasks import burn50, nothing
from graphs import random_dag

import flowrt


def flowrt_workflow(graph: dict[str, list[str]], fn: Any) -> flowrt.Workflow:
    wf = flowrt.Workflow("executors")
    for name, deps in graph.items():
        wf.add(name, fn, deps=deps)
    return wf


def time_flowrt(wf: flowrt.Workflow, executor: Any, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = wf.run_sync(executor=executor)
        times.append(time.perf_counter() - start)
        assert result.ok, result.errors
    return times


def time_dask(client: Any, graph: dict[str, list[str]], fn: Any, repeat: int) -> list[float]:
    times = []
    for k in range(repeat):
        # fresh keys each time: the cluster must not answer from an earlier run
        dsk = {f"r{k}-{name}": (fn, *(f"r{k}-{d}" for d in deps)) for name, deps in graph.items()}
        keys = list(dsk)
        start = time.perf_counter()
        client.get(dsk, keys)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    from distributed import Client, LocalCluster

    cpu_graph = random_dag(64, seed=3)
    noop_graph = random_dag(200, seed=4)
    rows: dict[str, dict[str, float]] = {}

    def record(name: str, times: list[float], nodes: int) -> None:
        rows[name] = {"median_s": statistics.median(times), "min_s": min(times),
                      "per_node_ms": statistics.median(times) / nodes * 1e3,
                      "times_s": times, "nodes": nodes}
        print(f"{name:34s} median {statistics.median(times):8.3f} s   "
              f"min {min(times):8.3f} s   {rows[name]['per_node_ms']:7.2f} ms/node", flush=True)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.run(lambda: sys.path.insert(0, str(Path(__file__).parent)))
        # the same amount of work per node everywhere: calibrated here, shipped as is
        import _tasks

        iterations = _tasks.ITERATIONS_50MS
        client.run(lambda: setattr(__import__("_tasks"), "ITERATIONS_50MS", iterations))
        dask_ex = flowrt.DaskExecutor(client)
        cpu_wf = flowrt_workflow(cpu_graph, burn50)
        noop_wf = flowrt_workflow(noop_graph, nothing)
        # warm up every path once (imports, worker caches)
        time_dask(client, cpu_graph, burn50, 1)
        time_flowrt(cpu_wf, dask_ex, 1)

        record("cpu64/threads", time_flowrt(cpu_wf, None, max(1, repeat // 2)), 64)

        async def with_pool() -> list[float]:
            async with flowrt.ProcessExecutor(2) as pool:
                times = []
                await flowrt.Workflow("warm").run()  # nothing: the pool starts lazily
                for k in range(repeat + 1):
                    start = time.perf_counter()
                    result = await cpu_wf.run(executor=pool)
                    assert result.ok, result.errors
                    if k:  # the first run starts the pool's processes
                        times.append(time.perf_counter() - start)
                return times

        record("cpu64/process", anyio.run(with_pool), 64)
        record("cpu64/flowrt+dask", time_flowrt(cpu_wf, dask_ex, repeat), 64)
        record("cpu64/dask client.get", time_dask(client, cpu_graph, burn50, repeat), 64)
        record("noop200/flowrt+dask", time_flowrt(noop_wf, dask_ex, repeat), 200)
        record("noop200/dask client.get", time_dask(client, noop_graph, nothing, repeat), 200)

    ratio = rows["cpu64/flowrt+dask"]["median_s"] / rows["cpu64/dask client.get"]["median_s"]
    speedup = rows["cpu64/threads"]["median_s"] / rows["cpu64/flowrt+dask"]["median_s"]
    hop = (rows["noop200/flowrt+dask"]["per_node_ms"]
           - rows["noop200/dask client.get"]["per_node_ms"])
    print(f"\nflowrt on Dask / plain Dask (CPU-bound, 64 nodes): {ratio:.2f}x (target <= 1.2x)")
    print(f"speed-up of flowrt on Dask over threads (2 workers): {speedup:.2f}x")
    print(f"remote hop overhead per no-op node, flowrt+Dask minus plain Dask: {hop:.2f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                        "platform": platform.platform()},
            "rows": rows, "ratio_flowrt_dask_over_dask": ratio,
            "speedup_over_threads": speedup, "hop_overhead_ms": hop}, indent=2))


if __name__ == "__main__":
    main()
