"""Processes that contend for runs, for the lease and fencing tests
(tests/test_store_conformance.py).

Every node appends ``<event> <run_id> <node> <pid> <time>`` lines to a log file opened
with O_APPEND (one ``write`` per line, so lines from several processes never mix):
``start`` before it works, ``end`` after. The tests count executions from them.

STORE is a store's spec (tests/stores.py: a path, or ``pg:<schema>:<url>``).

    python lease_worker.py run STORE RUN_ID LOG BACKEND TTL NODES SLEEP
        one run of a chain of NODES nodes that each sleep SLEEP seconds; prints
        "succeeded", "leased" (refused: another process holds it) or
        "lost <time.time() when the run stopped>" (LeaseLost); exit 0, 4, 3.
    python lease_worker.py race STORE LOG BACKEND KIND TRIALS T0 PERIOD SEED
        run ids KIND-0 .. KIND-(TRIALS-1), trial k starting at T0 + k * PERIOD (plus a
        jitter of up to 3 ms) so that two processes started alike race for each; one
        line per trial: "<k> ran <nodes run>", "<k> leased".
"""

from __future__ import annotations

import os
import random
import sys
import time

import anyio
from stores import open_spec

import flowrt


def log_line(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{text} {os.getpid()} {time.time():.6f}\n".encode())
    finally:
        os.close(fd)


def build(log: str, nodes: int, sleep: float, fail_at: str | None = None) -> flowrt.Workflow:
    """A chain n0 -> n1 -> ... plus a side branch n0 -> b; node n<i> returns i."""
    wf = flowrt.Workflow("leased")

    def make(i: int) -> object:
        async def node(ctx: flowrt.Context, prev: int | None = None) -> int:
            log_line(log, f"start {ctx.run_id} {ctx.node}")
            if sleep:
                await anyio.sleep(sleep)
            if ctx.node == fail_at:
                raise RuntimeError(f"{ctx.node} fails this time")
            log_line(log, f"end {ctx.run_id} {ctx.node}")
            return i

        return node

    for i in range(nodes):
        wf.add(f"n{i}", make(i), deps={"prev": f"n{i - 1}"} if i else {})
    wf.add("b", make(-1), deps={"prev": "n0"})
    return wf


async def one_run(store_path: str, run_id: str, log: str, ttl: float, nodes: int,
                  sleep: float) -> int:
    store = open_spec(store_path, lease_ttl=ttl)
    try:
        async with flowrt.Runtime(store=store) as rt:
            try:
                result = await rt.run(build(log, nodes, sleep), run_id=run_id)
            except flowrt.LeaseLost:
                print(f"lost {time.time():.6f}", flush=True)
                return 3
            except flowrt.RunLeased:
                print("leased", flush=True)
                return 4
    finally:
        store.close()
    print(result.status, flush=True)
    return 0 if result.ok else 1


async def race(store_path: str, log: str, kind: str, trials: int, t0: float, period: float,
               seed: int) -> None:
    rng = random.Random(seed)
    wf = build(log, 4, 0.0)
    store = open_spec(store_path)
    async with flowrt.Runtime(store=store) as rt:
        for k in range(trials):
            delay = t0 + k * period + rng.uniform(0, 0.003) - time.time()
            if delay > 0:
                await anyio.sleep(delay)
            try:
                result = await rt.run(wf, run_id=f"{kind}-{k}")
            except flowrt.RunLeased:
                print(f"{k} leased", flush=True)
                continue
            assert result.ok, result.errors
            ran = sum(1 for n in result.nodes.values() if not n.restored)
            print(f"{k} ran {ran}", flush=True)
    store.close()


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "run":
        store, run_id, log, backend, ttl, n, sleep = args
        sys.exit(anyio.run(one_run, store, run_id, log, float(ttl), int(n), float(sleep),
                           backend=backend))
    store, log, backend, kind, trials, t0, period, seed = args
    anyio.run(race, store, log, kind, int(trials), float(t0), float(period), int(seed),
              backend=backend)
