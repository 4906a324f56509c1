"""Execution: no-op async DAGs run with ``wf.run_sync()``, beside hand-written executors.

1. 10,000 no-op async nodes, random topology (``perf/graphs.py: random_dag``): flowrt's
   ``wf.run_sync()`` on the built and compiled workflow, beside every runner of
   ``perf/baselines.py`` on the same mapping -- ``sequential_await`` (the floor),
   ``graphlib_wait``, ``taskgroup_events`` (each under its own ``asyncio.run``, so each
   side pays for its own event loop, as ``run_sync`` does), ``dask_get_sync`` and
   ``dask_threaded`` (with the sync no-op: Dask does not await coroutines). Also
   ``flowrt_cold``: build + compile + run, for the user who builds every time.
2. The topologies linear, fan_out, binary_tree at 100 / 1,000 / 10,000 nodes (and
   100,000 in full mode), same runners; Dask only up to 10,000 nodes (1,000 in
   --quick mode; one Dask run of 100,000 nodes takes seconds). Times are per node.
3. The seed's FocusedConcurrency: 10 / 100 / 1,000 independent nodes that each
   ``await anyio.sleep(0.0001)``: flowrt unlimited beside ``baselines.gather`` and
   flowrt ``max_concurrency=4`` beside ``baselines.semaphore(limit=4)``. Times per run.
4. I/O scaling (the seed's ConcurrencyScaling): ``32 * W`` independent nodes that each
   ``await anyio.sleep(0.01)`` under ``max_concurrency=W``, W = 1, 2, 4, ..., 256. The
   ideal is 0.32 s at every W. A plain timed loop (a few repeats, median), not a pyperf
   run: each run takes ~0.35 s of mostly sleeping. Beside it, ``baselines.semaphore``,
   the floor (``baselines.workers_floor``: W bare tasks doing the same sleeps) and, when
   uvloop is installed, flowrt and the floor again on uvloop
   (``backend_options={"use_uvloop": True}``).
   Its runs go into the ``-o``/``--append`` pyperf file as ``IOScaling/W=*/...`` and, with
   the medians, into ``perf/results/io_scaling_rows.json``.

    python perf/bench_execution.py [--quick] [--no-scaling] [--scaling-repeats N]
                                   [pyperf options]
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import statistics
import sys
from collections.abc import Callable
from typing import Any

import anyio
import baselines
import graphs
import pyperf
from _common import (
    CALIBRATING,
    Harness,
    build_workflow,
    check_outputs,
    check_result,
    clock,
    noop,
    noop_sync,
    python_line,
)

import flowrt

HEADLINE = ("random", 10_000)
TOPOLOGIES = ("linear", "fan_out", "binary_tree")
SIZES = (100, 1_000, 10_000)
FULL_SIZES = (100_000,)
DASK_MAX = 10_000  # Dask baselines only up to this many nodes (full mode)
DASK_MAX_QUICK = 1_000  # in --quick mode, except for the headline graph
ASYNC_BASELINES = ("sequential_await", "graphlib_wait", "taskgroup_events")
DASK_BASELINES = ("dask_get_sync", "dask_threaded")

CONCURRENCY = {"Light_10": 10, "Medium_100": 100, "Heavy_1000": 1_000}
LIMIT = 4
#: The seed's Go figures (ns/op per run), seed/flow-orchestrator-benchmark-analysis.md,
#: "Parallel Execution Performance" (DirectGoroutines / LimitedConcurrency).
SEED_CONCURRENCY_NS = {
    "Light_10": (125280, 361852),
    "Medium_100": (165986, 3027835),
    "Heavy_1000": (603042, 32678541),
}

SCALING_WORKERS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
SCALING_SLEEP = 0.01
SCALING_PER_WORKER = 32


# -- setup (cached per worker process; never timed) -----------------------------------


@functools.cache
def graph(topology: str, n: int) -> graphs.Graph:
    return graphs.TOPOLOGIES[topology](n) if topology != "independent" else \
        graphs.independent(n)


@functools.cache
def workflow(topology: str, n: int) -> flowrt.Workflow:
    wf = build_workflow(graph(topology, n))
    wf.compile()
    check_result(wf.run_sync(), n)
    return wf


async def sleepy() -> None:
    await anyio.sleep(0.0001)


async def sleepy_10ms() -> None:
    await anyio.sleep(SCALING_SLEEP)


@functools.cache
def sleepy_workflow(n: int, fn: object = sleepy) -> flowrt.Workflow:
    wf = build_workflow(graphs.independent(n), fn)  # type: ignore[arg-type]
    wf.compile()
    return wf


# -- time functions -------------------------------------------------------------------


def time_flowrt(loops: int, topology: str, n: int) -> float:
    wf = workflow(topology, n)
    t0 = clock()
    for _ in range(loops):
        wf.run_sync()
    return clock() - t0


@functools.cache
def checked(runner: str, topology: str, n: int) -> bool:
    """Run ``runner`` once on the graph and check it ran every node (once per process).

    Not in pyperf's calibration worker: a Dask run of 10,000 nodes takes a second, and
    the worker that takes the values checks anyway.
    """
    if CALIBRATING:
        return True
    g = graph(topology, n)
    if runner == "flowrt_cold":
        check_result(build_workflow(g).run_sync(), n)
    elif runner in DASK_BASELINES:
        check_outputs(getattr(baselines, runner)(g, noop_sync), n, runner)
    else:
        check_outputs(asyncio.run(getattr(baselines, runner)(g, noop)), n, runner)
    return True


def time_flowrt_cold(loops: int, topology: str, n: int) -> float:
    g = graph(topology, n)
    checked("flowrt_cold", topology, n)
    t0 = clock()
    for _ in range(loops):
        wf = flowrt.Workflow("bench")
        for name, deps in g.items():
            wf.add(name, noop, deps=deps)
        wf.run_sync()
    return clock() - t0


def time_async_baseline(loops: int, which: str, topology: str, n: int) -> float:
    g = graph(topology, n)
    fn = getattr(baselines, which)
    checked(which, topology, n)
    t0 = clock()
    for _ in range(loops):
        asyncio.run(fn(g, noop))
    return clock() - t0


def time_dask_baseline(loops: int, which: str, topology: str, n: int) -> float:
    g = graph(topology, n)
    fn = getattr(baselines, which)
    checked(which, topology, n)
    t0 = clock()
    for _ in range(loops):
        fn(g, noop_sync)
    return clock() - t0


@functools.cache
def sleepy_checked(n: int, limit: int | None) -> flowrt.Workflow:
    wf = sleepy_workflow(n)
    check_result(wf.run_sync(max_concurrency=limit), n)
    return wf


def time_flowrt_sleepy(loops: int, n: int, limit: int | None) -> float:
    wf = sleepy_checked(n, limit)
    t0 = clock()
    for _ in range(loops):
        wf.run_sync(max_concurrency=limit)
    return clock() - t0


@functools.cache
def sleepy_baseline_checked(n: int, limit: int | None) -> bool:
    """Run the baseline once and check it ran every call, as flowrt's side does."""
    if limit is None:
        out = asyncio.run(baselines.gather(n, sleepy))
    else:
        out = asyncio.run(baselines.semaphore(n, sleepy, limit))
    check_outputs(out, n, "gather" if limit is None else "semaphore")
    return True


def time_gather(loops: int, n: int) -> float:
    sleepy_baseline_checked(n, None)
    t0 = clock()
    for _ in range(loops):
        asyncio.run(baselines.gather(n, sleepy))
    return clock() - t0


def time_semaphore(loops: int, n: int, limit: int) -> float:
    sleepy_baseline_checked(n, limit)
    t0 = clock()
    for _ in range(loops):
        asyncio.run(baselines.semaphore(n, sleepy, limit))
    return clock() - t0


# -- registering ----------------------------------------------------------------------


def dag_benchmarks(h: Harness, topology: str, n: int, headline: bool = False) -> list[str]:
    base = f"Execution/{topology}_{n}"
    heavy = n >= 100_000
    names = []

    def add(runner: str, func: object, *args: object) -> None:
        name = f"{base}/{runner}"
        h.bench(name, func, *args, inner_loops=n, heavy=heavy)  # type: ignore[arg-type]
        names.append(name)

    add("flowrt", time_flowrt, topology, n)
    if headline:
        add("flowrt_cold", time_flowrt_cold, topology, n)
    for which in ASYNC_BASELINES:
        add(which, time_async_baseline, which, topology, n)
    if headline or n <= (DASK_MAX_QUICK if h.quick else DASK_MAX):
        for which in DASK_BASELINES:
            add(which, time_dask_baseline, which, topology, n)
    return names


def dag_rows(topology: str, n: int, names: list[str]) -> list[tuple[str, str, str | None]]:
    ref = f"Execution/{topology}_{n}/graphlib_wait"
    return [(f"{topology} {n:>6} {name.rsplit('/', 1)[1]}", name,
             None if name == ref else ref) for name in names]


# -- I/O scaling: a plain timed loop ---------------------------------------------------


def _uvloop_run() -> Any:
    """``uvloop.run`` when uvloop is installed (the ``perf`` extra has it), else None."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.run


def _io_runners(wf: flowrt.Workflow, w: int, uv_run: Any) -> dict[str, Callable[[], object]]:
    """One I/O-scaling run of each runner at ``w`` workers, by name."""
    n = SCALING_PER_WORKER * w
    calls: dict[str, Callable[[], object]] = {
        "flowrt": lambda: wf.run_sync(max_concurrency=w),
        "semaphore": lambda: asyncio.run(baselines.semaphore(n, sleepy_10ms, w)),
        "floor": lambda: asyncio.run(
            baselines.workers_floor(w, SCALING_PER_WORKER, sleepy_10ms)),
    }
    if uv_run is not None:
        calls["flowrt_uvloop"] = lambda: wf.run_sync(
            max_concurrency=w, backend_options={"use_uvloop": True})
        calls["floor_uvloop"] = lambda: uv_run(
            baselines.workers_floor(w, SCALING_PER_WORKER, sleepy_10ms))
    return calls


def io_scaling(h: Harness, repeats: int | None = None) -> None:
    repeats = repeats or (3 if h.quick else 5)
    ideal = SCALING_PER_WORKER * SCALING_SLEEP
    uv_run = _uvloop_run()
    runners = ["flowrt", "semaphore", "floor"] + (["flowrt_uvloop", "floor_uvloop"]
                                                  if uv_run is not None else [])
    print(f"\n== I/O scaling: 32*W nodes, each `await anyio.sleep({SCALING_SLEEP})`, "
          f"max_concurrency=W; ideal {ideal:.2f} s")
    print(f"   plain timed loop, not pyperf: median of {repeats} runs after one warm-up "
          "run per W; the workflow is built before timing. Per runner: seconds and % over "
          "ideal")
    print("   floor = W bare tasks doing the same sleeps; *_uvloop = the same on uvloop"
          + ("" if uv_run is not None else " (not installed: skipped)"))
    print(f"   {'W':>4} {'nodes':>6} " + " ".join(f"{r:>21}" for r in runners))
    rows: list[dict[str, Any]] = []
    for w in SCALING_WORKERS:
        n = SCALING_PER_WORKER * w
        wf = build_workflow(graphs.independent(n), sleepy_10ms)
        wf.compile()
        check_result(wf.run_sync(max_concurrency=w), n)
        if uv_run is not None:
            check_result(wf.run_sync(max_concurrency=w,
                                     backend_options={"use_uvloop": True}), n)
        calls = _io_runners(wf, w, uv_run)
        times: dict[str, list[float]] = {r: [] for r in runners}
        for _ in range(repeats):
            for r in runners:  # interleaved, so that a slow moment hits every runner
                t0 = clock()
                calls[r]()
                times[r].append(clock() - t0)
        row: dict[str, Any] = {"workers": w, "nodes": n, "ideal_s": ideal}
        for r in runners:
            row[f"{r}_s"] = times[r]
            row[f"{r}_median_s"] = statistics.median(times[r])
        rows.append(row)
        print(f"   {w:>4} {n:>6} " + " ".join(
            f"{row[f'{r}_median_s']:>12.4f} {100 * (row[f'{r}_median_s'] / ideal - 1):>7.1f}%"
            for r in runners))
        del wf
    for r in ("flowrt", "flowrt_uvloop"):
        if r not in runners:
            continue
        worst = max(row[f"{r}_median_s"] / ideal - 1 for row in rows)
        floor = "floor" if r == "flowrt" else "floor_uvloop"
        worst_floor = max(row[f"{floor}_median_s"] / ideal - 1 for row in rows)
        print(f"   worst {r} overhead over ideal: {100 * worst:.1f}% (target <= 15%): "
              f"{'met' if worst <= 0.15 else 'NOT met'}; its floor's worst: "
              f"{100 * worst_floor:.1f}%")

    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "io_scaling_rows.json")
    with open(path, "w") as f:
        json.dump({"benchmark": "io_scaling", "method": f"plain timed loop, {repeats} "
                   "repeats, not pyperf", "python": python_line(), "rows": rows}, f, indent=1)
    print(f"   written: {path}")
    output = h.args.output or h.args.append
    if output:  # also into the pyperf JSON, so that compare_to sees it
        for row in rows:
            for r in runners:
                run = pyperf.Run(row[f"{r}_s"], metadata={
                    "name": f"IOScaling/W={row['workers']}/{r}", "loops": 1,
                    "unit": "second", "description": "plain timed loop, not a pyperf run"})
                pyperf.add_runs(output, pyperf.Benchmark([run]))


def main() -> None:
    no_scaling = "--no-scaling" in sys.argv
    if no_scaling:
        sys.argv.remove("--no-scaling")
    scaling_repeats = None
    if "--scaling-repeats" in sys.argv:
        i = sys.argv.index("--scaling-repeats")
        scaling_repeats = int(sys.argv[i + 1])
        del sys.argv[i:i + 2]
    h = Harness(__doc__.split("\n\n")[0])
    sizes = SIZES + (() if h.quick else FULL_SIZES)

    groups: list[tuple[str, int, list[str]]] = []
    groups.append((*HEADLINE, dag_benchmarks(h, *HEADLINE, headline=True)))
    if not h.quick:
        groups.append(("random", 100_000, dag_benchmarks(h, "random", 100_000)))
    for topology in TOPOLOGIES:
        for n in sizes:
            groups.append((topology, n, dag_benchmarks(h, topology, n)))

    for label, n in CONCURRENCY.items():
        base = f"FocusedConcurrency/{label}"
        h.bench(f"{base}/flowrt", time_flowrt_sleepy, n, None)
        h.bench(f"{base}/gather", time_gather, n)
        h.bench(f"{base}/flowrt_limit{LIMIT}", time_flowrt_sleepy, n, LIMIT)
        h.bench(f"{base}/semaphore{LIMIT}", time_semaphore, n, LIMIT)

    if h.worker:
        return
    print(f"\n{python_line()}")
    for topology, n, names in groups:
        h.summary(f"Execution, {topology} {n}: time per node", dag_rows(topology, n, names),
                  note="ratio against graphlib_wait (target for flowrt <= 0.35)")
    rows = []
    for label in CONCURRENCY:
        base = f"FocusedConcurrency/{label}"
        rows += [(f"{label} flowrt", f"{base}/flowrt", f"{base}/gather"),
                 (f"{label} gather", f"{base}/gather", None),
                 (f"{label} flowrt limit {LIMIT}", f"{base}/flowrt_limit{LIMIT}",
                  f"{base}/semaphore{LIMIT}"),
                 (f"{label} semaphore({LIMIT})", f"{base}/semaphore{LIMIT}", None)]
    h.summary("FocusedConcurrency: each node awaits anyio.sleep(0.0001); time per run", rows,
              unit="ms", note="targets: flowrt <= 1.5x gather; flowrt limit 4 <= 1.2x "
                              "semaphore(4)")
    if any(k.startswith("FocusedConcurrency") for k in h.results):
        print("   the seed's Go figures per run (direct / limited): " + ", ".join(
            f"{k}: {a / 1e6:.3f} / {b / 1e6:.3f} ms"
            for k, (a, b) in SEED_CONCURRENCY_NS.items()))

    if h.results:
        print("\n== headline ratios (flowrt / baseline, medians)")
    for topology, n, _ in groups:
        base = f"Execution/{topology}_{n}"
        parts = []
        for ref in ("sequential_await", "graphlib_wait", "taskgroup_events", *DASK_BASELINES):
            r = h.ratio(f"{base}/flowrt", f"{base}/{ref}")
            if r is not None:
                parts.append(f"{ref} {r:.3f}")
        us = h.median(f"{base}/flowrt")
        if us is not None:
            print(f"   {topology:>11} {n:>6}: flowrt {us * 1e6:.2f} us/node; " + ", ".join(parts))
    r = h.ratio("Execution/random_10000/flowrt", "Execution/random_10000/graphlib_wait")
    if r is not None:
        print(f"   random 10,000 flowrt / graphlib_wait = {r:.3f} (target <= 0.35): "
              f"{'met' if r <= 0.35 else 'NOT met'}")
    for label in CONCURRENCY:
        base = f"FocusedConcurrency/{label}"
        a = h.ratio(f"{base}/flowrt", f"{base}/gather")
        b = h.ratio(f"{base}/flowrt_limit{LIMIT}", f"{base}/semaphore{LIMIT}")
        if a is not None and b is not None:
            print(f"   {label}: flowrt / gather = {a:.3f} "
                  f"(<= 1.5 {'met' if a <= 1.5 else 'NOT met'}), "
                  f"flowrt limit {LIMIT} / semaphore = {b:.3f} "
                  f"(<= 1.2 {'met' if b <= 1.2 else 'NOT met'})")

    if not no_scaling and h.selected("IOScaling"):
        io_scaling(h, scaling_repeats)


if __name__ == "__main__":
    main()
