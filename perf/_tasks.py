"""Node functions the executor benchmarks send to other processes (importable there)."""

from __future__ import annotations

import time


def burn(iterations: int) -> int:
    """A fixed amount of pure-Python CPU work (it holds the GIL throughout)."""
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return total


def _calibrate(ms: float) -> int:
    n = 100_000
    start = time.perf_counter()
    burn(n)
    took = time.perf_counter() - start
    return max(1, int(n * (ms / 1000) / took))


#: iterations of burn() that take about 50 ms on this machine, measured at import
ITERATIONS_50MS = _calibrate(50.0)


def burn50(*deps: object) -> int:
    """About 50 ms of CPU work, the same amount wherever it runs."""
    return burn(ITERATIONS_50MS)


def nothing(*deps: object) -> None:
    return None
