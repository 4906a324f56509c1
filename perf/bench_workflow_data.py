"""WorkflowData: set + get, by key and by id, reset versus new, snapshot and restore.

- ``SetGet/Size_{10,100,1000}/{config}``: a store holding N keys; for each key, one
  ``set(key, value)`` and one ``get(key)`` of that existing key. Time per pair (the
  seed's BenchmarkWorkflowDataSetGet, 621-790 ns/op in Go). Configurations: flowrt
  ``WorkflowData()`` (metrics off, the default), ``metrics=True``, ``metrics=0.1``
  (sampled; the seed's MetricsDisabled / MetricsSampled), beside
  ``perf/baselines.DictStore`` and a bare ``dict`` (``d[k] = v; d.get(k)``, a floor).
- ``SetGetById/Size_N/flowrt``: the same pairs with ``set_at(id, v)`` / ``get_at(id)``,
  ids from ``data.key(name)`` taken before timing.
- ``ArenaReset/Count_{10,100,1000}``: the seed's ArenaReset. One op = ``reset()`` and
  ``count`` sets (``ResetArena``), or a new ``WorkflowData()`` and ``count`` sets
  (``NewArena``); beside ``DictStore.reset()`` / ``DictStore()``. Time per op.
- ``ArenaComparison/Size_{10,100,1000}``: the seed's WorkflowDataArenaComparison
  (standard allocation versus its arena), as a run uses its store: one op = a new store,
  N ``set(key, output)`` then N ``get(key)``. ``Standard`` is ``DictStore``; ``Arena``
  is flowrt's slab (``WorkflowData()``, 64 slots to start, grown as needed);
  ``ArenaCustomBlock`` is ``WorkflowData(capacity=N)`` (the slab sized up front, the
  seed's custom block size). Time per op.
- ``Snapshot/Size_N``: ``data.snapshot()`` and ``WorkflowData.from_snapshot(snap)``
  beside copying a plain dict (``dict(d)``). Time per op.

    python perf/bench_workflow_data.py [--quick] [pyperf options]
"""

from __future__ import annotations

import functools
from typing import Any

from _common import Harness, clock, python_line
from baselines import DictStore

import flowrt

SIZES = (10, 100, 1_000)
CONFIGS = ("flowrt", "flowrt_metrics", "flowrt_sampled_0.1", "DictStore", "dict")
#: The seed's Go figures (ns/op), seed/flow-orchestrator-benchmark-analysis.md,
#: "WorkflowData Set/Get Performance" and "Arena Reset Performance".
SEED_SETGET_NS = {10: 790.6, 100: 621.3, 1_000: 631.0}
SEED_RESET_NS = {10: (149.6, 3640), 100: (1395, 5146), 1_000: (13857, 17592)}
#: "Arena vs. Standard Memory Management" (BenchmarkWorkflowDataArenaComparison), ns/op.
SEED_ARENA_NS = {10: {"Standard": 16929, "Arena": 18286, "ArenaCustomBlock": 17926},
                 100: {"Standard": 171867, "Arena": 185446},
                 1_000: {"Standard": 2859790, "Arena": 2482775}}
ARENA_VARIANTS = ("Standard", "Arena", "ArenaCustomBlock")


@functools.cache
def keys(n: int) -> tuple[str, ...]:
    return tuple(f"key_{i}" for i in range(n))


def make_store(config: str, n: int) -> Any:
    if config == "flowrt":
        store: Any = flowrt.WorkflowData()
    elif config == "flowrt_metrics":
        store = flowrt.WorkflowData(metrics=True)
    elif config == "flowrt_sampled_0.1":
        store = flowrt.WorkflowData(metrics=0.1)
    elif config == "DictStore":
        store = DictStore()
    elif config == "dict":
        return dict.fromkeys(keys(n), 0)
    else:
        raise ValueError(config)
    for k in keys(n):
        store.set(k, 0)
    return store


def time_set_get(loops: int, config: str, n: int) -> float:
    ks = keys(n)
    store = make_store(config, n)
    if config == "dict":
        d = store
        t0 = clock()
        for _ in range(loops):
            for k in ks:
                d[k] = 1
                d.get(k)
        return clock() - t0
    t0 = clock()
    for _ in range(loops):
        for k in ks:
            store.set(k, 1)
            store.get(k)
    return clock() - t0


def time_set_get_by_id(loops: int, n: int) -> float:
    data = make_store("flowrt", n)
    ids = [data.key(k) for k in keys(n)]
    t0 = clock()
    for _ in range(loops):
        for i in ids:
            data.set_at(i, 1)
            data.get_at(i)
    return clock() - t0


def time_reset(loops: int, config: str, count: int) -> float:
    ks = keys(count)
    store = make_store(config, count)
    t0 = clock()
    for _ in range(loops):
        store.reset()
        for k in ks:
            store.set(k, 1)
    return clock() - t0


def time_new(loops: int, config: str, count: int) -> float:
    ks = keys(count)
    cls = flowrt.WorkflowData if config == "flowrt" else DictStore
    t0 = clock()
    for _ in range(loops):
        store = cls()
        for k in ks:
            store.set(k, 1)
    return clock() - t0


def time_arena_comparison(loops: int, variant: str, n: int) -> float:
    ks = keys(n)
    if variant == "Standard":
        new: Any = DictStore
    elif variant == "Arena":
        new = flowrt.WorkflowData
    elif variant == "ArenaCustomBlock":
        new = functools.partial(flowrt.WorkflowData, n)
    else:
        raise ValueError(variant)
    check = new()
    for i, k in enumerate(ks):
        check.set(k, i)
    if [check.get(k) for k in ks] != list(range(n)):
        raise RuntimeError(f"{variant} lost a value")
    t0 = clock()
    for _ in range(loops):
        store = new()
        for i, k in enumerate(ks):
            store.set(k, i)
        for k in ks:
            store.get(k)
    return clock() - t0


def time_snapshot(loops: int, n: int) -> float:
    data = make_store("flowrt", n)
    t0 = clock()
    for _ in range(loops):
        data.snapshot()
    return clock() - t0


def time_from_snapshot(loops: int, n: int) -> float:
    snap = make_store("flowrt", n).snapshot()
    from_snapshot = flowrt.WorkflowData.from_snapshot
    t0 = clock()
    for _ in range(loops):
        from_snapshot(snap)
    return clock() - t0


def time_dict_copy(loops: int, n: int) -> float:
    d = make_store("dict", n)
    t0 = clock()
    for _ in range(loops):
        dict(d)
    return clock() - t0


def main() -> None:
    h = Harness(__doc__.split("\n\n")[0])
    for n in SIZES:
        for config in CONFIGS:
            h.bench(f"SetGet/Size_{n}/{config}", time_set_get, config, n, inner_loops=n)
        h.bench(f"SetGetById/Size_{n}/flowrt", time_set_get_by_id, n, inner_loops=n)
    for n in SIZES:
        for config in ("flowrt", "DictStore"):
            h.bench(f"ArenaReset/Count_{n}/{config}_ResetArena", time_reset, config, n)
            h.bench(f"ArenaReset/Count_{n}/{config}_NewArena", time_new, config, n)
    for n in SIZES:
        for variant in ARENA_VARIANTS:
            h.bench(f"ArenaComparison/Size_{n}/{variant}", time_arena_comparison, variant, n)
    for n in SIZES:
        h.bench(f"Snapshot/Size_{n}/flowrt_snapshot", time_snapshot, n)
        h.bench(f"Snapshot/Size_{n}/flowrt_from_snapshot", time_from_snapshot, n)
        h.bench(f"Snapshot/Size_{n}/dict_copy", time_dict_copy, n)
    if h.worker:
        return

    print(f"\n{python_line()}")
    rows = []
    for n in SIZES:
        ref = f"SetGet/Size_{n}/DictStore"
        rows += [(f"Size_{n:<5} {c}", f"SetGet/Size_{n}/{c}", None if c == "DictStore" else ref)
                 for c in CONFIGS]
        rows.append((f"Size_{n:<5} flowrt by id", f"SetGetById/Size_{n}/flowrt", ref))
    h.summary("WorkflowData set + get of an existing key, time per pair", rows, unit="ns",
              note="ratio against DictStore; the seed's Go: " + ", ".join(
                  f"Size_{k} {v:.0f} ns" for k, v in SEED_SETGET_NS.items()))
    rows = []
    for n in SIZES:
        base = f"ArenaReset/Count_{n}"
        rows += [(f"Count_{n:<5} flowrt reset+fill", f"{base}/flowrt_ResetArena",
                  f"{base}/flowrt_NewArena"),
                 (f"Count_{n:<5} flowrt new+fill", f"{base}/flowrt_NewArena", None),
                 (f"Count_{n:<5} DictStore reset+fill", f"{base}/DictStore_ResetArena",
                  f"{base}/flowrt_ResetArena"),
                 (f"Count_{n:<5} DictStore new+fill", f"{base}/DictStore_NewArena",
                  f"{base}/flowrt_NewArena")]
    h.summary("ArenaReset: reset (or new) then `count` sets, time per op", rows,
              note="ratios: flowrt reset / flowrt new; DictStore / the same flowrt op. "
                   "The seed's Go (reset / new): " + ", ".join(
                       f"Count_{k} {a:.0f} / {b:.0f} ns" for k, (a, b) in SEED_RESET_NS.items()))
    rows = []
    for n in SIZES:
        base = f"ArenaComparison/Size_{n}"
        rows += [(f"Size_{n:<5} {v}", f"{base}/{v}", None if v == "Standard" else
                  f"{base}/Standard") for v in ARENA_VARIANTS]
    h.summary("ArenaComparison: new store, N sets, N gets; time per op", rows,
              note="Standard = DictStore, Arena = WorkflowData(), ArenaCustomBlock = "
                   "WorkflowData(capacity=N); ratio against Standard. The seed's Go: " +
                   "; ".join(f"Size_{k} " + ", ".join(f"{v} {ns:,} ns" for v, ns in d.items())
                             for k, d in SEED_ARENA_NS.items()))
    rows = []
    for n in SIZES:
        base = f"Snapshot/Size_{n}"
        rows += [(f"Size_{n:<5} snapshot", f"{base}/flowrt_snapshot", f"{base}/dict_copy"),
                 (f"Size_{n:<5} from_snapshot", f"{base}/flowrt_from_snapshot",
                  f"{base}/dict_copy"),
                 (f"Size_{n:<5} dict(d)", f"{base}/dict_copy", None)]
    h.summary("Snapshot and restore, time per op", rows, note="ratio against dict(d)")
    if any(k.startswith("SetGet/") for k in h.results):
        print("\n== headline: set+get pair, flowrt (metrics off / on / sampled) vs the seed's "
              "Go 621-790 ns")
        for n in SIZES:
            meds = [h.median(f"SetGet/Size_{n}/{c}") for c in CONFIGS[:3]]
            if all(m is not None for m in meds):
                print(f"   Size_{n}: " + " / ".join(f"{m * 1e9:.0f} ns" for m in meds)  # type: ignore[operator]
                      + f"  (seed {SEED_SETGET_NS[n]:.0f} ns)")


if __name__ == "__main__":
    main()
