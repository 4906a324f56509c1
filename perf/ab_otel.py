"""OpenTelemetry installed but not configured against not installed: paired, in one process.

``python perf/ab_otel.py [PAIRS]`` (default 100). Each pair runs issue 16's workflow --
10,000 no-op async nodes, a random DAG, on a ``flowrt.Runtime`` kept open -- once as if
the ``otel`` extra were absent (flowrt's telemetry module told the API does not import)
and once with the API importable and no SDK configured (the API's proxy providers), in
turn, and prints each side's minimum and median per node and the median of the per-pair
ratios. Pairs run back to back in one process, so a machine loaded by others moves both
sides of a pair alike: the per-pair ratio resolves the target (at most 1.03x) where
``perf/bench_otel.py``'s pyperf medians, taken minutes apart in separate processes, do
not. Not a pyperf harness: the figure's cross-check beside ``perf/bench_otel.py``.
"""

from __future__ import annotations

import statistics
import sys
import time

import anyio
from bench_otel import NODES, noops

import flowrt
from flowrt._engine import telemetry


async def per_node(wf: flowrt.Workflow) -> float:
    """One run on a fresh runtime, in microseconds per node."""
    async with flowrt.Runtime() as rt:
        t0 = time.perf_counter()
        result = await rt.run(wf)
        elapsed = time.perf_counter() - t0
    assert result.ok
    return elapsed / NODES * 1e6


def main() -> None:
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    wf = noops()
    telemetry._load_api()
    api = telemetry._api
    if not api:
        sys.exit("the OpenTelemetry API is not installed: pip install -e '.[otel]'")
    absent: list[float] = []
    no_sdk: list[float] = []
    for _ in range(pairs):
        telemetry._api = False  # as after an ImportError: the runtime takes that path
        absent.append(anyio.run(per_node, wf))
        telemetry._api = api
        no_sdk.append(anyio.run(per_node, wf))
    for name, times in (("absent", absent), ("no_sdk", no_sdk)):
        print(f"{name:8} min {min(times):6.2f} us/node  median {statistics.median(times):6.2f}")
    ratio = statistics.median(n / a for n, a in zip(no_sdk, absent, strict=True))
    print(f"no_sdk / absent, median of {pairs} paired ratios: {ratio:.3f}x (target <= 1.03x)")


if __name__ == "__main__":
    main()
