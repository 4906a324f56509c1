"""The compiled build (perf/mypyc_build.py) against the pure-Python package: CPU time.

Separate processes, alternated (pure, compiled, compiled, pure, ...): a compiled module
and its source cannot both be imported in one process under the same name. Each
process builds a DAG from ``perf/graphs.py`` with ``wf.add``, compiles it and runs it
``--rounds`` times, and reports the CPU time (``time.process_time``) per node of each
phase; this script prints the medians over all processes of each side and the ratios,
with the load average beside them (docs/decisions/028-mypyc-compiled-engine.md).

    python perf/mypyc_build.py --modules engine,build,data
    python perf/mypyc_compare.py --sizes 10000,100000 --pairs 3 --rounds 5
    python perf/mypyc_compare.py --sizes 1000000 --pairs 2 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: what each process runs: argv = topology, n, rounds; prints one JSON line
CHILD = r"""
import gc, json, os, sys, time
import graphs
import flowrt
import flowrt._engine.supervisor as sup

async def noop(*args):
    return None

topology, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def build(graph):
    wf = flowrt.Workflow("bench")
    for node, deps in graph.items():
        wf.add(node, noop, deps=deps)
    return wf
def check(result, n):
    if not result.ok or len(result.outputs) != n:
        raise RuntimeError(f"incomplete run: {result.status}")
check(build(graphs.random_dag(50)).run_sync(), 50)  # warm-up
graph = graphs.TOPOLOGIES[topology](n)
cpu = time.process_time
rows = []
for _ in range(rounds):
    gc.collect()
    t0 = cpu(); wf = build(graph); t1 = cpu(); wf.compile(); t2 = cpu()
    result = wf.run_sync(); t3 = cpu()
    check(result, n)
    del result, wf
    rows.append([(t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6, (t3 - t2) / n * 1e6])
print(json.dumps({"compiled": sup.__file__.endswith(".so"), "rows": rows}))
"""

PHASES = ("build", "compile", "run")


def child(src: Path, topology: str, n: int, rounds: int) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=f"{src}{os.pathsep}{REPO / 'perf'}")
    # Not from the repository: `python -c` puts the current directory first on the path.
    out = subprocess.run([sys.executable, "-c", CHILD, topology, str(n), str(rounds)],
                         cwd=src, env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"the run under {src} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", type=Path, default=REPO / "build" / "mypyc" / "src",
                        help="the compiled tree (perf/mypyc_build.py's OUT/src)")
    parser.add_argument("--topology", default="random")
    parser.add_argument("--sizes", default="10000")
    parser.add_argument("--pairs", type=int, default=3, help="processes per side")
    parser.add_argument("--rounds", type=int, default=5, help="runs per process")
    args = parser.parse_args()
    sides = {"pure": REPO, "compiled": args.build.resolve()}
    for n in map(int, args.sizes.split(",")):
        values: dict[str, list[list[float]]] = {"pure": [], "compiled": []}
        loads = []
        for k in range(args.pairs):
            for side in (("pure", "compiled") if k % 2 == 0 else ("compiled", "pure")):
                loads.append(os.getloadavg()[0])
                got = child(sides[side], args.topology, n, args.rounds)
                if got["compiled"] != (side == "compiled"):
                    sys.exit(f"{side}: the {'pure' if got['compiled'] else 'compiled'} "
                             "supervisor was imported; is the build there?")
                values[side] += got["rows"]  # type: ignore[arg-type]
        med = {side: [statistics.median(r[i] for r in rows) for i in range(3)]
               for side, rows in values.items()}
        print(f"{args.topology} n={n:,} ({args.pairs} processes x {args.rounds} runs per side, "
              f"load {min(loads):.1f}-{max(loads):.1f}), CPU us/node, median:")
        for i, phase in enumerate(PHASES):
            p, c = med["pure"][i], med["compiled"][i]
            spread = [r[i] for r in values["compiled"]], [r[i] for r in values["pure"]]
            print(f"  {phase:8s} pure {p:7.2f} [{min(spread[1]):.2f}..{max(spread[1]):.2f}]"
                  f"  compiled {c:7.2f} [{min(spread[0]):.2f}..{max(spread[0]):.2f}]"
                  f"  compiled/pure {c / p:.3f}")


if __name__ == "__main__":
    main()
