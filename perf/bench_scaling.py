"""Scaling: build, compile, run and peak RSS from 1,000 to 1,000,000 nodes (issue 18).

Not a pyperf script: one fresh Python process per topology and size (``--child``), so
that the peak RSS of a size is its own and a 1M-node run does not share a heap with the
next size. In that process: the dependency mapping is generated (``perf/graphs.py``; not
timed, its memory is reported as ``rss_graph``), then, ``--repeats`` times over,
flowrt's ``build`` (``wf.add`` per node), ``compile`` (``wf.compile()``) and ``run``
(``wf.run_sync()`` of no-op async nodes), each followed by the graphlib + asyncio
executor (``baselines.graphlib_wait``) on the same mapping -- interleaved, so that a
burst of load from the other users of a shared machine hits both sides alike. Peak RSS
(``ru_maxrss``) is taken after flowrt's first build + compile + run, before the baseline
has run at all, so it is flowrt's own peak (with the mapping it was given).

Times are CPU time of the process (``time.process_time``), not wall time: on a loaded
machine a descheduled process pays wall time it did not use. Every figure is divided
by the node count (the report's unit is time per node).

Rows (``--json FILE``, read by ``timed_reader("Scaling")``):
``<topology>/<n>/{flowrt_build,flowrt_compile,flowrt,graphlib_wait}`` with their times,
and ``<topology>/<n>/rss`` with ``peak_mb`` and ``graph_mb`` (the mapping alone).

    python perf/bench_scaling.py [--quick] [--sizes 1000,10000] [--topology random]
                                 [--json FILE]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
TOPOLOGIES = ("random", "linear", "fan_out", "binary_tree")
SIZES = (1_000, 10_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 10_000, 100_000)
#: repetitions per size: enough values for a median where a run is short, one at 1M
#: (a 1M-node repetition of all four steps costs ~15 s of CPU)
REPEATS = {1_000: 15, 10_000: 5, 100_000: 3, 1_000_000: 1}
QUICK_REPEATS = {1_000: 5, 10_000: 3, 100_000: 1}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(topology: str, n: int, repeats: int) -> dict[str, Any]:
    """Measure one topology and size in this (fresh) process."""
    import asyncio

    sys.path.insert(0, HERE)
    import baselines
    import graphs
    from _common import build_workflow, check_outputs, check_result, noop

    # Warm up on a small graph: imports and one-time setup are not per node.
    small = graphs.TOPOLOGIES[topology](50)
    check_result(build_workflow(small).run_sync(), 50)
    asyncio.run(baselines.graphlib_wait(small, noop))

    graph = graphs.TOPOLOGIES[topology](n)
    gc.collect()
    graph_mb = _peak_mb()
    clock = time.process_time
    times: dict[str, list[float]] = {"flowrt_build": [], "flowrt_compile": [], "flowrt": [],
                                     "graphlib_wait": []}
    peak_mb = 0.0
    for rep in range(repeats):
        t0 = clock()
        wf = build_workflow(graph)
        t1 = clock()
        wf.compile()
        t2 = clock()
        result = wf.run_sync()
        t3 = clock()
        check_result(result, n)
        times["flowrt_build"].append(t1 - t0)
        times["flowrt_compile"].append(t2 - t1)
        times["flowrt"].append(t3 - t2)
        if rep == 0:
            peak_mb = _peak_mb()
        del wf, result
        gc.collect()
        t0 = clock()
        out = asyncio.run(baselines.graphlib_wait(graph, noop))
        t1 = clock()
        check_outputs(out, n, "graphlib_wait")
        times["graphlib_wait"].append(t1 - t0)
        del out
        gc.collect()
    return {"topology": topology, "nodes": n, "times": times, "peak_mb": peak_mb,
            "graph_mb": graph_mb, "baseline_peak_mb": _peak_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="sizes up to 100,000 and fewer repetitions")
    parser.add_argument("--sizes", help="comma-separated node counts (default: 1k..1M)")
    parser.add_argument("--topology", action="append", choices=TOPOLOGIES,
                        help="only this topology (repeatable)")
    parser.add_argument("--repeats", type=int, help="repetitions per size (default: by size)")
    parser.add_argument("--json", "-o", dest="output",
                        default=os.path.join(HERE, "results", "scaling.json"),
                        help="JSON file to write (default: perf/results/scaling.json)")
    parser.add_argument("--child", nargs=3, metavar=("TOPOLOGY", "N", "REPEATS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        topo, n, reps = args.child
        print(json.dumps(child(topo, int(n), int(reps))))
        return

    sys.path.insert(0, HERE)
    from _common import python_line

    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
             else QUICK_SIZES if args.quick else SIZES)
    repeats = QUICK_REPEATS if args.quick else REPEATS
    rows: dict[str, dict[str, Any]] = {}
    print(f"scaling: CPU time per node, one fresh process per topology and size\n"
          f"{python_line()}, load {os.getloadavg()[0]:.1f}\n")
    print(f"{'topology':<12} {'nodes':>9} {'build':>7} {'compile':>8} {'run':>7} "
          f"{'graphlib':>9} {'ratio':>6} {'peak MB':>8} {'graph MB':>9}   (us/node)")
    for topo in args.topology or TOPOLOGIES:
        for n in sizes:
            reps = args.repeats or repeats.get(n, 1)
            proc = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--child", topo, str(n),
                 str(reps)], capture_output=True, text=True, check=False)
            if proc.returncode:
                tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
                print(f"{topo:<12} {n:>9,} FAILED:\n{tail}", file=sys.stderr)
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            med = {k: sorted(v)[len(v) // 2] / n for k, v in row["times"].items()}
            for runner, values in row["times"].items():
                rows[f"{topo}/{n}/{runner}"] = {
                    "times_s": values, "median_s": sorted(values)[len(values) // 2],
                    "nodes": n}
            rows[f"{topo}/{n}/rss"] = {"peak_mb": row["peak_mb"], "graph_mb": row["graph_mb"],
                                       "nodes": n}
            print(f"{topo:<12} {n:>9,} {med['flowrt_build'] * 1e6:>7.2f} "
                  f"{med['flowrt_compile'] * 1e6:>8.2f} {med['flowrt'] * 1e6:>7.2f} "
                  f"{med['graphlib_wait'] * 1e6:>9.2f} "
                  f"{med['flowrt'] / med['graphlib_wait']:>6.3f} {row['peak_mb']:>8.0f} "
                  f"{row['graph_mb']:>9.0f}", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump({"benchmark": "scaling", "clock": "process_time", "python": python_line(),
                   "load": os.getloadavg()[0], "rows": rows}, f, indent=1)
    print(f"written: {args.output}")


if __name__ == "__main__":
    main()
