"""The real-world scenarios as paired runs in one process: flowrt beside its asyncio twin.

``python perf/ab_scenarios.py [SCENARIO ...] [--pairs N]`` (scenarios: checkout, etl,
api, approval; all by default). Each pair runs one op of the scenario with flowrt and
one with the hand-written asyncio equivalent of ``perf/bench_scenarios.py`` (the same
set-up, the same node functions, the same checks), in turn and in one event loop, the
order swapped every pair. It prints per scenario the median wall time per op of each
side, the median of the per-pair ratios (a machine loaded by others moves both sides of
a pair alike) and the CPU time per op of each side.

Not a pyperf harness: the scenarios family's headline figure (flowrt / asyncio) taken
so that two versions of flowrt can be compared run after run. To compare two commits,
run it from each tree in turn: ``cd TREE && PYTHONPATH=TREE python perf/ab_scenarios.py``
(copy this file into an older tree's ``perf/`` first: it uses that tree's scenarios).
The API scenario spends most of its CPU in its server's request signing (PBKDF2 in
threads of the same process), so its pyperf figure has a large spread on two cores;
paired, its ratio is stable to a few per cent.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import bench_scenarios as scenarios


async def pairs(scenario: str, n: int, warmup: int = 3) -> dict[str, list[float]]:
    """Wall and CPU seconds of ``n`` ops per side (after ``warmup`` pairs)."""
    setup, check = scenarios.SETUP[scenario], scenarios.CHECK[scenario]
    out: dict[str, list[float]] = {"flowrt": [], "asyncio": [], "flowrt cpu": [],
                                   "asyncio cpu": []}
    for i in range(n + warmup):
        for runner in ("flowrt", "asyncio") if i % 2 else ("asyncio", "flowrt"):
            env = setup()
            c0, t0 = time.process_time(), time.perf_counter()
            result = await scenarios.RUN[(scenario, runner)](env)
            t1, c1 = time.perf_counter(), time.process_time()
            check(runner, result, env)
            if i >= warmup:
                out[runner].append(t1 - t0)
                out[f"{runner} cpu"].append(c1 - c0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help="checkout, etl, api, approval (default: all)")
    parser.add_argument("--pairs", type=int, default=40, help="pairs per scenario (40)")
    args = parser.parse_args()
    for name in args.scenarios:
        if name not in scenarios.SCENARIOS:
            parser.error(f"no scenario {name!r}: choose from "
                         f"{', '.join(scenarios.SCENARIOS)}")
    for scenario in args.scenarios or scenarios.SCENARIOS:
        t = asyncio.run(pairs(scenario, args.pairs))
        ratio = statistics.median(f / a for f, a in zip(t["flowrt"], t["asyncio"],
                                                         strict=True))
        print(f"{scenario:9s} flowrt {statistics.median(t['flowrt']) * 1e3:7.1f} ms   "
              f"asyncio {statistics.median(t['asyncio']) * 1e3:7.1f} ms   "
              f"paired ratio {ratio:.3f}x   CPU per op flowrt "
              f"{statistics.mean(t['flowrt cpu']) * 1e3:6.1f} ms, asyncio "
              f"{statistics.mean(t['asyncio cpu']) * 1e3:6.1f} ms", flush=True)


if __name__ == "__main__":
    main()
