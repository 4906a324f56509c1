"""The DBOS side of perf/bench_queue.py: the same workflows, as DBOS writes them.

    python perf/_dbos_app.py worker SQLITE_URL    a queue worker (prints "ready")
    python perf/_dbos_app.py steps SQLITE_URL N   one workflow of N sequential steps;
                                                  prints its seconds
"""

from __future__ import annotations

import signal
import sys
import threading
import time

from dbos import DBOS, DBOSConfig

VERSION = "flowrt-bench"


def start(url: str) -> None:
    config: DBOSConfig = {"name": "flowrt_bench", "system_database_url": url,
                          "application_version": VERSION}
    DBOS(config=config)


@DBOS.step()
def noop(i: int) -> int:
    return i


@DBOS.workflow()
def five() -> int:
    """5 no-op steps, as the flowrt side's 5 no-op nodes."""
    return sum(noop(i) for i in range(5))


@DBOS.workflow()
def steps(n: int) -> int:
    """``n`` sequential no-op steps: the per-step durable overhead."""
    total = 0
    for i in range(n):
        total += noop(i)
    return total


def main() -> None:
    command, url = sys.argv[1], sys.argv[2]
    start(url)
    DBOS.launch()
    if command == "worker":
        # polled as often as the flowrt workers poll their store (--poll 0.01)
        DBOS.register_queue("flowrt_bench", worker_concurrency=8, polling_interval_sec=0.01)
    if command == "worker":
        print("ready", flush=True)
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        done.wait()
    else:
        n = int(sys.argv[3])
        t0 = time.perf_counter()
        steps(n)
        print(time.perf_counter() - t0, flush=True)
    DBOS.destroy()


if __name__ == "__main__":
    main()
