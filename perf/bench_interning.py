"""String interning: the seed's FocusedStringInterning, per string.

100 node-like keys (``node_0`` .. ``node_99``), interned again and again (the steady
state: every key already has an id), the seed's four variants:

- ``IndividualIntern``: ``interner.intern(key)`` per key on a per-store ``flowrt.Interner()``
- ``BatchIntern``: ``interner.intern_many(keys)`` on the same per-store interner
- ``GlobalIntern``: ``flowrt.intern(key)`` per key (the process-wide interner)
- ``GlobalBatchIntern``: ``flowrt.intern_many(keys)``

beside ``perf/baselines.DictInterner`` (a dict of key -> next id, per key and batch) and
``sys.intern`` (which maps a string to its canonical string, not to an id: a floor).
``ColdBatchIntern``: a new per-store interner and ``intern_many`` of 100 new keys (first
sight), beside a new ``DictInterner``. Times are per key.

    python perf/bench_interning.py [--quick] [pyperf options]
"""

from __future__ import annotations

import sys

from _common import Harness, clock, python_line
from baselines import DictInterner

import flowrt

N = 100
KEYS = tuple(f"node_{i}" for i in range(N))
#: The seed's Go figures (ns/op, for its batch of strings),
#: seed/flow-orchestrator-benchmark-analysis.md, "String Interning Performance".
SEED_NS = {"IndividualIntern": 4006, "BatchIntern": 3537, "GlobalIntern": 3425,
           "GlobalBatchIntern": 3476}


def time_individual(loops: int, which: str) -> float:
    if which == "flowrt":
        intern = flowrt.Interner(KEYS).intern
    elif which == "flowrt_global":
        intern = flowrt.intern
        flowrt.intern_many(KEYS)
    elif which == "DictInterner":
        d = DictInterner()
        d.intern_many(KEYS)
        intern = d.intern
    elif which == "sys.intern":
        intern = sys.intern
    else:
        raise ValueError(which)
    keys = KEYS
    t0 = clock()
    for _ in range(loops):
        for k in keys:
            intern(k)
    return clock() - t0


def time_batch(loops: int, which: str) -> float:
    if which == "flowrt":
        intern_many = flowrt.Interner(KEYS).intern_many
    elif which == "flowrt_global":
        intern_many = flowrt.intern_many
        intern_many(KEYS)
    elif which == "DictInterner":
        d = DictInterner()
        d.intern_many(KEYS)
        intern_many = d.intern_many
    else:
        raise ValueError(which)
    keys = KEYS
    t0 = clock()
    for _ in range(loops):
        intern_many(keys)
    return clock() - t0


def time_cold(loops: int, which: str) -> float:
    cls = flowrt.Interner if which == "flowrt" else DictInterner
    keys = KEYS
    t0 = clock()
    for _ in range(loops):
        cls().intern_many(keys)
    return clock() - t0


def main() -> None:
    h = Harness(__doc__.split("\n\n")[0])
    b = "FocusedStringInterning"
    h.bench(f"{b}/IndividualIntern/flowrt", time_individual, "flowrt", inner_loops=N)
    h.bench(f"{b}/IndividualIntern/DictInterner", time_individual, "DictInterner",
            inner_loops=N)
    h.bench(f"{b}/BatchIntern/flowrt", time_batch, "flowrt", inner_loops=N)
    h.bench(f"{b}/BatchIntern/DictInterner", time_batch, "DictInterner", inner_loops=N)
    h.bench(f"{b}/GlobalIntern/flowrt", time_individual, "flowrt_global", inner_loops=N)
    h.bench(f"{b}/GlobalIntern/sys.intern", time_individual, "sys.intern", inner_loops=N)
    h.bench(f"{b}/GlobalBatchIntern/flowrt", time_batch, "flowrt_global", inner_loops=N)
    h.bench(f"{b}/ColdBatchIntern/flowrt", time_cold, "flowrt", inner_loops=N)
    h.bench(f"{b}/ColdBatchIntern/DictInterner", time_cold, "DictInterner", inner_loops=N)
    if h.worker:
        return
    print(f"\n{python_line()}")
    ind = f"{b}/IndividualIntern/DictInterner"
    bat = f"{b}/BatchIntern/DictInterner"
    rows = [
        ("IndividualIntern flowrt.Interner", f"{b}/IndividualIntern/flowrt", ind),
        ("IndividualIntern DictInterner", ind, None),
        ("BatchIntern flowrt.Interner", f"{b}/BatchIntern/flowrt", bat),
        ("BatchIntern DictInterner", bat, None),
        ("GlobalIntern flowrt.intern", f"{b}/GlobalIntern/flowrt", ind),
        ("GlobalIntern sys.intern", f"{b}/GlobalIntern/sys.intern", ind),
        ("GlobalBatchIntern flowrt.intern_many", f"{b}/GlobalBatchIntern/flowrt", bat),
        ("ColdBatchIntern flowrt.Interner", f"{b}/ColdBatchIntern/flowrt",
         f"{b}/ColdBatchIntern/DictInterner"),
        ("ColdBatchIntern DictInterner", f"{b}/ColdBatchIntern/DictInterner", None),
    ]
    h.summary(f"String interning of {N} keys, time per key", rows, unit="ns",
              note="ratio against the DictInterner doing the same (individual or batch)")
    print("   the seed's Go figures (its whole batch per op): " + ", ".join(
        f"{k} {v} ns" for k, v in SEED_NS.items()))


if __name__ == "__main__":
    main()
