"""The report's tables: one builder per family, from the figures the run measured.

A builder takes the run's :class:`~.results.Results` and returns :class:`Table` objects:
rows of flowrt benchmarks, each with the baselines it is compared with (by column), the
seed's figure it is cited beside and the targets it is checked against. A row whose
benchmark the run did not measure is left out, and so is a column no row has, so the
same builder serves quick and full runs and ``--only``. report.py renders them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .fmt import fmt_spread, fmt_time, fmt_value
from .results import Results
from .seed import (
    SEED_ARENA,
    SEED_CONCURRENCY,
    SEED_DAG,
    SEED_DAG_BYTES,
    SEED_DEPS,
    SEED_INTERN,
    SEED_INTERN_BATCH,
    SEED_RESET,
    SEED_SCALABILITY,
    SEED_SETGET,
    SEED_TOPOLOGY,
    SEED_WORKERS,
    Seed,
)
from .targets import Target, evaluate_target, spec, target


@dataclass
class Row:
    """One flowrt benchmark (``key``) and what it is compared with."""

    label: str
    key: str
    baselines: dict[str, str] = field(default_factory=dict)  # column -> benchmark name
    seed: Seed | None = None
    targets: tuple[Target, ...] = ()
    reference_only: bool = False  # the columns are flowrt references, not alternatives
    info: str = ""


@dataclass
class Table:
    """Rows that share columns (the baselines), a unit and footnotes."""

    title: str
    columns: list[str]
    rows: list[Row]
    floors: frozenset[str] = frozenset()
    unit: str = "per node"
    seed_column: bool = True
    footnotes: list[str] = field(default_factory=list)


@dataclass
class Verdict:
    """A row's verdict text, the baselines flowrt is behind, and its target checks."""

    text: str
    behind: list[tuple[str, float]]
    targets: list[tuple[Target, float, bool, str]]


AHEAD, BEHIND = 0.95, 1.05  # ratios within these are "on par" (run-to-run noise)


def verdict(r: Results, table: Table, row: Row) -> Verdict:
    """Targets met or missed, then ahead / behind / on par against each baseline."""
    parts: list[str] = []
    targets = []
    for t in row.targets:
        ev = evaluate_target(r, row.key, t)
        if ev is None:
            continue
        value, met, shown = ev
        targets.append((t, value, met, shown))
        parts.append(f"**target {'met' if met else 'missed'}** ({t.text}: {shown})")
    ours = r.median(row.key)
    ratios = []
    for column, name in row.baselines.items():
        theirs = r.median(name)
        if ours is not None and theirs:
            ratios.append((column, ours / theirs))
    behind: list[tuple[str, float]] = []
    if row.reference_only:
        if ratios and not targets:
            parts.append("informative (" + ", ".join(f"{x:.2f}x {c}" for c, x in ratios)
                         + ")")
    elif ratios:
        behind = [(c, x) for c, x in ratios if x > BEHIND]
        ahead = [(c, x) for c, x in ratios if x < AHEAD]
        if behind:
            parts.append("behind " + ", ".join(
                f"{c}{' (floor)' if c in table.floors else ''} {x:.2f}x" for c, x in behind))
            if ahead:
                parts.append("ahead of " + ", ".join(c for c, _ in ahead))
        elif len(ahead) == len(ratios):
            parts.append("ahead" + (" of all" if len(ratios) > 1 else ""))
        elif ahead:
            parts.append("ahead of " + ", ".join(c for c, _ in ahead) + "; on par with "
                         + ", ".join(c for c, x in ratios if AHEAD <= x <= BEHIND))
        else:
            parts.append("on par")
    if row.info:
        parts.append(row.info)
    return Verdict("; ".join(parts) or "-", behind, targets)


# -- the tables, from what the run measured ------------------------------------------------


def sizes_of(r: Results, pattern: str, prefix: str, suffix: str) -> list[int]:
    """The sizes measured: the integers between ``prefix`` and ``suffix`` in the names."""
    out = set()
    for name in r.names(pattern):
        middle = name[len(prefix):len(name) - len(suffix)]
        if middle.isdigit():
            out.add(int(middle))
    return sorted(out)


def dag_tables(r: Results) -> list[Table]:
    rows = []
    from_nodes = spec("dag_construction", "build_compile")["from_nodes"]
    for n in sizes_of(r, "DAGConstruction/*_nodes/flowrt", "DAGConstruction/", "_nodes/flowrt"):
        base = f"DAGConstruction/{n}_nodes"
        seed = None
        if n in SEED_DAG:
            ns = SEED_DAG[n]
            seed = Seed(f"DAGConstruction_{n}_Nodes", ns / n,
                        f"{ns:,} ns/op = {ns / n:.0f} ns/node")
        targets: tuple[Target, ...] = ()
        if n >= from_nodes:
            targets = (target("dag_construction", "build_compile",
                              ref=f"{base}/graphlib_prepare"),)
        rows.append(Row(f"random DAG, {n:,} nodes: build + compile", f"{base}/flowrt",
                        {"graphlib prepare()": f"{base}/graphlib_prepare"}, seed, targets))
        if f"{base}/flowrt_add_only" in r.stats:
            rows.append(Row(f"random DAG, {n:,} nodes: `wf.add` only (no compile)",
                            f"{base}/flowrt_add_only",
                            {"graphlib prepare()": f"{base}/graphlib_prepare"},
                            info="breakdown of the row above"))
    for topo, ns in SEED_TOPOLOGY.items():
        base = f"DAGTopologyCreation/{topo}"
        rows.append(Row(f"{topo}, 100 nodes: build + compile", f"{base}/flowrt",
                        {"graphlib prepare()": f"{base}/graphlib_prepare"},
                        Seed(f"DAGTopologyCreation/{topo}", None, f"{ns:,} ns/op (size not "
                             "stated)")))
    return [Table("Build (`wf.add` per node) + `wf.compile()`, beside "
                  "`graphlib.TopologicalSorter(deps).prepare()` on the same mapping",
                  ["graphlib prepare()"], rows)]


EXEC_COLUMNS = {"sequential_await": "sequential_await", "graphlib_wait": "graphlib_wait",
                "taskgroup_events": "taskgroup_events", "dask_get_sync": "dask_get_sync",
                "dask_threaded": "dask_threaded"}


def execution_tables(r: Results) -> list[Table]:
    rows = []
    random_10k = spec("execution", "random_10k")
    for topo in ("random", "linear", "fan_out", "binary_tree"):
        prefix = f"Execution/{topo}_"
        for n in sizes_of(r, f"{prefix}*/flowrt", prefix, "/flowrt"):
            base = f"{prefix}{n}"
            cols = {c: f"{base}/{b}" for c, b in EXEC_COLUMNS.items()}
            seed = None
            if n in SEED_SCALABILITY:
                ns = SEED_SCALABILITY[n]
                seed = Seed(f"Scalability/Nodes_{n}", ns / n,
                            f"{ns:,} ns/op = {ns / n:,.0f} ns/node")
            targets: tuple[Target, ...] = ()
            if (topo, n) == (random_10k["topology"], random_10k["nodes"]):
                targets = (target("execution", "random_10k", ref=f"{base}/graphlib_wait"),)
            rows.append(Row(f"{topo} {n:,}: `run_sync()`, compiled workflow", f"{base}/flowrt",
                            cols, seed, targets))
            if f"{base}/flowrt_cold" in r.stats:
                rows.append(Row(f"{topo} {n:,}: build + compile + run (cold)",
                                f"{base}/flowrt_cold", cols))
    t1 = Table("No-op async nodes, whole graph, each runner under its own event loop",
               list(EXEC_COLUMNS), rows, frozenset({"sequential_await"}),
               footnotes=["The seed's `Scalability/Nodes_N` does not say which topology or "
                          "node work it runs (10.02 us/node at every size); it is shown "
                          "beside each topology of the same size."])
    rows = []
    for label, (direct, limited) in SEED_CONCURRENCY.items():
        base = f"FocusedConcurrency/{label}"
        n = int(label.split("_")[1])
        rows.append(Row(f"{label}: {n} x sleep(0.1 ms), unlimited", f"{base}/flowrt",
                        {"asyncio.gather": f"{base}/gather"},
                        Seed(f"FocusedConcurrency/{label}/DirectGoroutines", None,
                             f"{direct:,} ns/op"),
                        (target("execution", "unlimited", ref=f"{base}/gather"),)))
        rows.append(Row(f"{label}: {n} x sleep(0.1 ms), max_concurrency=4",
                        f"{base}/flowrt_limit4", {"Semaphore(4)": f"{base}/semaphore4"},
                        Seed(f"FocusedConcurrency/{label}/LimitedConcurrency", None,
                             f"{limited:,} ns/op"),
                        (target("execution", "limited", ref=f"{base}/semaphore4"),)))
    t2 = Table("FocusedConcurrency: independent nodes that each `await anyio.sleep(0.0001)`",
               ["asyncio.gather", "Semaphore(4)"], rows, unit="per run",
               footnotes=["A 0.1 ms sleep takes about 1 ms on asyncio (its selector timeout "
                          "is in milliseconds), on both sides. The seed's node work is not "
                          "stated, so its figures are not comparable (n/c)."])
    return [t1, t2]


def io_scaling_tables(r: Results) -> list[Table]:
    rows = []
    up_to = spec("io_scaling", "within_ideal")["up_to_workers"]
    workers = sorted(int(n.split("/")[1][2:]) for n in r.names("IOScaling/W=*/flowrt"))
    for w in workers:
        base = f"IOScaling/W={w}"
        seed = None
        if w in SEED_WORKERS:
            seed = Seed(f"ConcurrencyScaling/Workers={w}", None,
                        f"{SEED_WORKERS[w]:,} ns/op (its ideal)")
        targets = (target("io_scaling", "within_ideal"),) if w <= up_to else ()
        rows.append(Row(f"W={w}: {32 * w:,} x sleep(10 ms)", f"{base}/flowrt",
                        {"Semaphore(W)": f"{base}/semaphore",
                         "floor: W bare tasks": f"{base}/floor"}, seed, targets))
        if r.get(f"{base}/flowrt_uvloop") is not None:
            rows.append(Row(f"W={w}, on uvloop", f"{base}/flowrt_uvloop",
                            {"floor: W bare tasks": f"{base}/floor_uvloop"}, None, targets))
    return [Table("32 x W independent nodes, each `await anyio.sleep(0.01)`, "
                  "`max_concurrency=W`; wall time per run (ideal 0.32 s at every W)",
                  ["Semaphore(W)", "floor: W bare tasks"], rows, unit="per run",
                  footnotes=["A plain timed loop (median of the repeats after one warm-up "
                             "run per W), not pyperf calibration. The seed's "
                             "ConcurrencyScaling halves its time with every doubling of "
                             "workers, exactly (10,020,000 ns / W): its work is not stated, "
                             "so only the shape compares: flowrt's figure should stay flat "
                             "at 0.32 s.",
                             "The floor is W plain asyncio tasks each awaiting the same "
                             "sleep 32 times in a row: no graph, no limit, no bookkeeping, "
                             "only what the event loop and anyio.sleep cost. flowrt cannot "
                             "be under it; the 15% target is only reachable where the floor "
                             "is well under it.",
                             "'on uvloop' rows: the same workflow run with "
                             "`wf.run_sync(..., backend_options={\"use_uvloop\": True})`, "
                             "beside the floor run by `uvloop.run` (the `perf` extra "
                             "installs uvloop; without it these rows are absent)."])]


def dependency_tables(r: Results) -> list[Table]:
    rows = []
    from_nodes = spec("dependency_resolution", "flat")["from_nodes"]
    for topo in ("Linear", "Diamond"):
        prefix = f"DependencyResolution/{topo}_Size_"
        sizes = sizes_of(r, f"{prefix}*/flowrt_async", prefix, "/flowrt_async")
        for n in sizes:
            base = f"{prefix}{n}"
            seed = None
            if (topo, n) in SEED_DEPS:
                ns = SEED_DEPS[(topo, n)]
                seed = Seed(f"WorkflowDataDependencyResolution/{topo}_Size_{n}", ns / n,
                            f"{ns:,} ns/op = {ns / n:,.0f} ns/node")
            for kind, label, cols in (
                    ("flowrt_sync_loop", "sync no-op nodes, `executor=\"loop\"`",
                     {"graphlib_sync": f"{base}/graphlib_sync",
                      "naive_scan": f"{base}/naive_scan"}),
                    ("flowrt_async", "async no-op nodes",
                     {"graphlib_wait": f"{base}/graphlib_wait",
                      "naive_scan": f"{base}/naive_scan"})):
                targets: tuple[Target, ...] = ()
                small = max((m for m in sizes if m < n and m >= from_nodes), default=None)
                if small is not None:
                    targets = (target("dependency_resolution", "flat", n=n, small=small,
                                      ref=f"{prefix}{small}/{kind}"),)
                rows.append(Row(f"{topo} {n:,}: {label}", f"{base}/{kind}", cols, seed,
                                targets))
    return [Table("A whole run of no-op nodes on one `flowrt.Runtime` (no event-loop start "
                  "counted), time per node; flat across sizes = O(1) per status change",
                  ["graphlib_sync", "graphlib_wait", "naive_scan"], rows,
                  footnotes=["The seed's figure is its dependency resolution alone; flowrt's "
                             "is a whole run (resolution, three status changes per node, "
                             "outputs, the run's result), so the ratio overstates flowrt's "
                             "resolution cost. `naive_scan` re-checks every pending node "
                             "after each round of finishes (the seed's O(n^2) approach), "
                             "for contrast."])]


def flatness_table(r: Results) -> list[str]:
    """Time per node by size for each runner: the O(1) line, visible."""
    lines = []
    for topo in ("Linear", "Diamond"):
        prefix = f"DependencyResolution/{topo}_Size_"
        sizes = sizes_of(r, f"{prefix}*/flowrt_async", prefix, "/flowrt_async")
        if len(sizes) < 2:
            continue
        lines += [f"**{topo}: time per node by graph size**", "",
                  "| runner | " + " | ".join(f"{n:,}" for n in sizes)
                  + f" | marginal per node, {sizes[-2]:,} -> {sizes[-1]:,} |",
                  "| --- | " + " | ".join("---:" for _ in sizes) + " | ---: |"]
        for runner in ("flowrt_sync_loop", "flowrt_async", "graphlib_sync", "graphlib_wait",
                       "naive_scan"):
            cells = [fmt_time(r.median(f"{prefix}{n}/{runner}")) for n in sizes]
            a, b = (r.median(f"{prefix}{n}/{runner}") for n in sizes[-2:])
            marginal = "-"
            if a is not None and b is not None:
                na, nb = sizes[-2:]
                marginal = fmt_time((b * nb - a * na) / (nb - na))
            lines.append(f"| {runner} | " + " | ".join(cells) + f" | {marginal} |")
        seed = [SEED_DEPS.get((topo, n)) for n in sizes]
        lines.append("| seed (Go, cited) | " + " | ".join(
            fmt_time(ns / n * 1e-9) if ns else "-" for ns, n in zip(seed, sizes, strict=True))
            + " | - |")
        lines.append("")
    return lines


def workflow_data_tables(r: Results) -> list[Table]:
    rows = []
    for n in (10, 100, 1_000):
        base = f"SetGet/Size_{n}"
        cols = {"DictStore": f"{base}/DictStore", "dict": f"{base}/dict"}
        ns = SEED_SETGET[n]
        seed = Seed(f"WorkflowDataSetGet/Size_{n}", ns, f"{ns} ns/op")
        set_get = target("workflow_data", "set_get", limit=ns * 1e-9, seed_ns=ns)
        rows.append(Row(f"Size_{n}: `WorkflowData()` (metrics off, the default)",
                        f"{base}/flowrt", cols, seed, (set_get,)))
        rows.append(Row(f"Size_{n}: `WorkflowData(metrics=True)`", f"{base}/flowrt_metrics",
                        cols, seed, (set_get,)))
        rows.append(Row(f"Size_{n}: `WorkflowData(metrics=0.1)` (sampled)",
                        f"{base}/flowrt_sampled_0.1", cols, seed, (set_get,)))
        rows.append(Row(f"Size_{n}: `set_at(id)` / `get_at(id)`",
                        f"SetGetById/Size_{n}/flowrt", cols, seed))
    t1 = Table("Set + get of an existing key, time per pair", ["DictStore", "dict"], rows,
               frozenset({"dict"}), unit="per pair",
               footnotes=["`DictStore` is a class wrapping a dict with the same methods (the "
                          "alternative); `dict` is inline `d[k] = v; d.get(k)` with no method "
                          "call (a floor)."])
    rows = []
    for n in (10, 100, 1_000):
        base = f"ArenaReset/Count_{n}"
        reset, new = SEED_RESET[n]
        rows.append(Row(f"Count_{n}: `reset()` + {n} sets", f"{base}/flowrt_ResetArena",
                        {"DictStore": f"{base}/DictStore_ResetArena"},
                        Seed(f"ArenaReset/Count_{n}/ResetArena", reset, f"{reset:,} ns/op")))
        rows.append(Row(f"Count_{n}: new store + {n} sets", f"{base}/flowrt_NewArena",
                        {"DictStore": f"{base}/DictStore_NewArena"},
                        Seed(f"ArenaReset/Count_{n}/NewArena", new, f"{new:,} ns/op")))
    t2 = Table("ArenaReset: reset (or a new store) then `count` sets, time per op",
               ["DictStore"], rows, unit="per op")
    rows = []
    for n in (10, 100, 1_000):
        base = f"ArenaComparison/Size_{n}"
        for variant, label in (("Arena", "`WorkflowData()`"),
                               ("ArenaCustomBlock", f"`WorkflowData(capacity={n})`")):
            cited = SEED_ARENA[n].get(variant)
            arena_seed = Seed(f"WorkflowDataArenaComparison/Size_{n}/{variant}", cited,
                              f"{cited:,} ns/op") if cited else None
            rows.append(Row(f"Size_{n}: {label}: new, {n} sets, {n} gets", f"{base}/{variant}",
                            {"DictStore (Standard)": f"{base}/Standard"}, arena_seed))
    t3 = Table("Arena versus standard: a new store, N sets and N gets, time per op",
               ["DictStore (Standard)"], rows, unit="per op",
               footnotes=["The seed's op does more per key than set + get (16.9 us for 10 "
                          "keys in Go); the ratio is indicative."])
    rows = []
    for n in (10, 100, 1_000):
        base = f"Snapshot/Size_{n}"
        rows.append(Row(f"Size_{n}: `snapshot()`", f"{base}/flowrt_snapshot",
                        {"dict(d)": f"{base}/dict_copy"}))
        rows.append(Row(f"Size_{n}: `WorkflowData.from_snapshot()`",
                        f"{base}/flowrt_from_snapshot", {"dict(d)": f"{base}/dict_copy"}))
    t4 = Table("Snapshot and restore, time per op (the seed has no figure)", ["dict(d)"],
               rows, frozenset({"dict(d)"}), unit="per op", seed_column=False)
    return [t1, t2, t3, t4]


def interning_tables(r: Results) -> list[Table]:
    b = "FocusedStringInterning"
    ind, bat = f"{b}/IndividualIntern/DictInterner", f"{b}/BatchIntern/DictInterner"

    def seed(name: str) -> Seed:
        ns = SEED_INTERN[name]
        return Seed(f"FocusedStringInterning/{name}", ns / SEED_INTERN_BATCH,
                    f"{ns:,} ns/op = {ns / SEED_INTERN_BATCH:.0f} ns/key")

    rows = [
        Row("IndividualIntern: `Interner().intern(key)`", f"{b}/IndividualIntern/flowrt",
            {"DictInterner": ind}, seed("IndividualIntern")),
        Row("BatchIntern: `Interner().intern_many(keys)`", f"{b}/BatchIntern/flowrt",
            {"DictInterner": bat}, seed("BatchIntern")),
        Row("GlobalIntern: `flowrt.intern(key)`", f"{b}/GlobalIntern/flowrt",
            {"DictInterner": ind, "sys.intern": f"{b}/GlobalIntern/sys.intern"},
            seed("GlobalIntern")),
        Row("GlobalBatchIntern: `flowrt.intern_many(keys)`", f"{b}/GlobalBatchIntern/flowrt",
            {"DictInterner": bat}, seed("GlobalBatchIntern")),
        Row("ColdBatchIntern: new interner, 100 new keys", f"{b}/ColdBatchIntern/flowrt",
            {"DictInterner": f"{b}/ColdBatchIntern/DictInterner"}),
    ]
    return [Table("100 keys, already interned (the steady state) unless cold; time per key",
                  ["DictInterner", "sys.intern"], rows, frozenset({"sys.intern"}),
                  unit="per key",
                  footnotes=["The seed gives ns per op for a batch whose size it does not "
                             "state; its batch variants allocate 1,792 B/op, Go's size class "
                             "for 100 string headers of 16 B, so a batch of 100 keys is "
                             "assumed for the per-key figure. `sys.intern` returns a string, "
                             "not an id (a floor)."])]


def status_tables(r: Results) -> list[Table]:
    rows = []
    for n in (10, 100, 1_000):
        base = f"NodeStatus/Move/{n}"
        rows.append(Row(f"Move, {n} nodes: `board.move(id, s)` (checked)",
                        f"{base}/StatusBoard", {"dict": f"{base}/dict",
                                                "dict + check": f"{base}/dict_checked"}))
        rows.append(Row(f"Get, {n} nodes: `board[id]`", f"NodeStatus/Get/{n}/StatusBoard",
                        {"dict": f"NodeStatus/Get/{n}/dict"}))
        rows.append(Row(f"Count, {n} nodes: `board.count(SUCCEEDED)`",
                        f"NodeStatus/Count/{n}/StatusBoard",
                        {"dict": f"NodeStatus/Count/{n}/dict"}))
    return [Table("`flowrt.StatusBoard` beside a dict of name -> `Status` (the seed lists "
                  "node status benchmarks but publishes no figure); time per move / read / "
                  "count", ["dict", "dict + check"], rows, unit="per op", seed_column=False,
                  footnotes=["`dict` stores without checking that a move is legal; `dict + "
                             "check` makes the check the board makes."])]


def durable_tables(r: Results) -> list[Table]:
    d = "durable"
    sleep = target("durable", "sleep", ref=f"{d}/sleep1ms-1000/memory")
    rows = [
        Row("1,000 x sleep(1 ms), max_concurrency=50: SQLite store kept open (Runtime)",
            f"{d}/sleep1ms-1000/runtime-store", {"in memory": f"{d}/sleep1ms-1000/memory"},
            targets=(sleep,), reference_only=True),
        Row("1,000 x sleep(1 ms), max_concurrency=50: `store=path` per run",
            f"{d}/sleep1ms-1000/run-store", {"in memory": f"{d}/sleep1ms-1000/memory"},
            targets=(sleep,), reference_only=True),
        Row("10,000 no-op nodes: SQLite store kept open", f"{d}/noop-10000/runtime-store",
            {"in memory": f"{d}/noop-10000/memory"}, reference_only=True),
        Row("10,000-node chain stopped half way: resume (restore 5,000, run 5,000)",
            f"{d}/resume-10000/resume", {"from scratch": f"{d}/resume-10000/from-scratch"},
            reference_only=True),
        Row("the same: read the stored run and restore 5,000 nodes only (internals)",
            f"{d}/resume-10000/load", {"from scratch": f"{d}/resume-10000/from-scratch"},
            reference_only=True),
    ]
    return [Table("Durable (SQLite) versus in-memory runs; time per run. The columns are "
                  "flowrt's own reference runs, not alternatives", ["in memory",
                                                                    "from scratch"],
                  rows, unit="per run", seed_column=False)]


def maps_tables(r: Results) -> list[Table]:
    m = "maps"
    per_item = target("maps", "per_item", ref=f"{m}/noop-10000/static")
    durable = target("maps", "durable", ref=f"{m}/sleep1ms-1000/memory")
    peers = {"static nodes": f"{m}/noop-10000/static",
             "asyncio.gather": f"{m}/noop-10000/gather",
             "dask.bag (sync)": f"{m}/noop-10000/dask-bag",
             "dask.delayed (sync)": f"{m}/noop-10000/dask-delayed",
             "dask client.map (LocalCluster, 1,000)": f"{m}/noop-1000/dask-client-map"}
    return [
        Table("Dynamic maps: no-op items, root -> items -> sink; time per item", list(peers),
              [Row("a map of 10,000 no-op async items", f"{m}/noop-10000/map", peers,
                   targets=(per_item,))],
              floors=frozenset({"asyncio.gather"}), unit="per item", seed_column=False),
        Table("Durable map (SQLite store kept open) versus in memory; time per run",
              ["in memory"],
              [Row("1,000 items x sleep(1 ms), concurrency=50", f"{m}/sleep1ms-1000/sqlite",
                   {"in memory": f"{m}/sleep1ms-1000/memory"}, targets=(durable,),
                   reference_only=True)],
              unit="per run", seed_column=False),
    ]


def scenario_tables(r: Results) -> list[Table]:
    what = {
        "checkout": "e-commerce checkout (examples/checkout.py), 2 orders: retry + "
                    "compensation",
        "etl": "ETL (examples/etl.py): 20,000 CSV rows -> SQLite -> report",
        "api": "API orchestration (examples/api.py): 12 HTTP calls, 3 retried, limit 3",
        "approval": "approval: 16 requests, parallel checks -> approve/reject -> notify",
    }
    rows = [Row(text, f"Scenario/{name}/flowrt", {"asyncio by hand": f"Scenario/{name}/asyncio"})
            for name, text in what.items()]
    return [Table("End to end, time per op; beside a hand-written asyncio equivalent calling "
                  "the same node functions (the seed names these scenarios but publishes no "
                  "figure for them)", ["asyncio by hand"], rows, unit="per op",
                  seed_column=False)]


def memory_tables(r: Results) -> list[Table]:
    rows = []
    seed = Seed("DAGConstruction_10000_Nodes (B/op)", None,
                f"{SEED_DAG_BYTES:,.0f} B/node allocated")
    for scenario, label, bar, cols in (
            ("flowrt_build_compile", "build + compile", "build_compile",
             {"graphlib prepare()": "graphlib_prepare"}),
            ("flowrt_build_compile_run", "build + compile + run", "build_compile_run",
             {"graphlib_wait": "graphlib_wait", "sequential_await": "sequential_await"}),
            ("flowrt_run", "run of a compiled workflow", None,
             {"graphlib_wait": "graphlib_wait", "sequential_await": "sequential_await"})):
        targets = (target("memory", bar),) if bar else ()
        retained = r.median(f"Memory/{scenario}/retained")
        info = f"retained after it: {retained:,.0f} B/node" if retained is not None else ""
        rows.append(Row(f"100,000 nodes, {label}: peak", f"Memory/{scenario}/peak",
                        {c: f"Memory/{b}/peak" for c, b in cols.items()},
                        seed if scenario == "flowrt_build_compile" else None, targets,
                        info=info))
    return [Table("tracemalloc, peak bytes per node of a 100,000-node random DAG (the most "
                  "traced at once), one fresh process per scenario",
                  ["graphlib prepare()", "graphlib_wait", "sequential_await"], rows,
                  frozenset({"sequential_await"}), unit="bytes per node",
                  footnotes=["*Retained* is what is left while the user holds what they "
                             "would hold (flowrt: the workflow, its plan and the run's "
                             "result; the baselines: their outputs only), so only the peaks "
                             "are compared. The seed's Go figure is bytes allocated per op, "
                             "not a peak: for orientation, n/c. One measurement per scenario "
                             "(tracemalloc counts repeat), so no spread."])]


def executor_tables(r: Results) -> list[Table]:
    e = "Executors"
    dask = {"Dask client.get": f"{e}/cpu64/dask client.get"}
    rows = [
        Row("64 x 50 ms CPU nodes: flowrt on Dask (`DaskExecutor`)", f"{e}/cpu64/flowrt+dask",
            dask, targets=(target("executors", "dask", ref=f"{e}/cpu64/dask client.get"),)),
        Row("64 x 50 ms CPU nodes: flowrt, `ProcessExecutor(2)`", f"{e}/cpu64/process", dask),
        Row("64 x 50 ms CPU nodes: flowrt, worker threads (default)", f"{e}/cpu64/threads",
            dask),
        Row("200 no-op nodes: flowrt on Dask", f"{e}/noop200/flowrt+dask",
            {"Dask client.get": f"{e}/noop200/dask client.get"}),
    ]
    return [Table("CPU-bound nodes beyond one core: a 2-worker `LocalCluster` (processes), "
                  "random DAG; time per node (wall time / nodes)", ["Dask client.get"], rows,
                  seed_column=False,
                  footnotes=["A plain timed script (`bench_executors.py`), a few repeats; "
                             "the spread is over those repeats."])]


def queue_tables(r: Results) -> list[Table]:
    q = "Queue/queue"
    rows = [Row(f"runs of 5 no-op nodes through the queue, {w} worker process"
                + ("es" if w > 1 else ""), f"{q}/throughput-W{w}/flowrt",
                {"DBOS": f"{q}/throughput-W{w}/dbos"}) for w in (1, 2, 4)]
    rows += [Row(f"one durable run of {n:,} sequential no-op nodes (steps), per step",
                 f"{q}/steps-{n}/flowrt", {"DBOS": f"{q}/steps-{n}/dbos"})
             for n in (200, 1000)]
    rows.append(Row("submit to first node start, one idle worker (`--poll 0.01`)",
                    f"{q}/latency/flowrt", {}))
    return [Table("The work queue on one SQLite file: seconds per run (throughput is its "
                  "inverse), per step, per submit", ["DBOS"], rows, seed_column=False,
                  footnotes=["A plain timed script (`bench_queue.py`); workers are real "
                             "processes (`flowrt worker`; DBOS processes with a queue "
                             "of worker_concurrency 8 polled every 10 ms)."])]


def waits_tables(r: Results) -> list[Table]:
    w = "Waits/waits"
    rows = [
        Row("in-process, no store: `rt.signal` to a run waiting in `rt.run`",
            f"{w}/in-process/memory", {}),
        Row("in-process, SQLite store: the wait recorded, the signal stored and read back",
            f"{w}/in-process/sqlite", {}),
        Row("through a worker process on SQLite (`--poll 0.01`): parked run woken, "
            "claimed, resumed", f"{w}/worker/sqlite", {}),
        Row("through a worker process on PostgreSQL, woken by NOTIFY (`--poll 1`)",
            f"{w}/worker/postgres", {}),
    ]
    return [Table("Park and wake: seconds from `rt.signal` to the start of the waiting "
                  "node's successor (median)", [], rows, unit="per signal",
                  seed_column=False,
                  footnotes=["A plain timed script (`bench_waits.py`): `start -> go "
                             "(signal) -> after`; `after` records `time.time()` as it "
                             "starts. The PostgreSQL row needs `FLOWRT_BENCH_PG_URL`."])]


def postgres_tables(r: Results) -> list[Table]:
    d = "postgres"
    sleep = target("durable", "sleep", ref=f"{d}/sleep1ms-1000/memory")
    rows = [
        Row("1,000 x sleep(1 ms), max_concurrency=50: PostgresStore kept open (Runtime)",
            f"{d}/sleep1ms-1000/postgres", {"in memory": f"{d}/sleep1ms-1000/memory",
                                            "SQLite": f"{d}/sleep1ms-1000/sqlite"},
            targets=(sleep,), reference_only=True),
        Row("1,000 x sleep(1 ms), max_concurrency=50: SQLiteStore kept open (Runtime)",
            f"{d}/sleep1ms-1000/sqlite", {"in memory": f"{d}/sleep1ms-1000/memory"},
            targets=(sleep,), reference_only=True),
        Row("10,000 no-op nodes: PostgresStore kept open (time per committed node: / 10,000)",
            f"{d}/noop-10000/postgres", {"in memory": f"{d}/noop-10000/memory",
                                         "SQLite": f"{d}/noop-10000/sqlite"},
            reference_only=True),
    ]
    return [Table("Durable runs on PostgreSQL (a local server, fsync on) versus in memory "
                  "and SQLite; time per run. The columns are flowrt's own reference runs, "
                  "not alternatives", ["in memory", "SQLite"], rows, unit="per run",
                  seed_column=False)]


def cache_tables(r: Results) -> list[Table]:
    c = "cache/noop-10000"
    rows = [
        Row("10,000 cached no-op nodes, all hits, runtime's memory cache (no store)",
            f"{c}/hit-memory", {"the nodes run": f"{c}/run-memory"}, reference_only=True),
        Row("10,000 cached no-op nodes, all hits, SQLite store's cache (durable run)",
            f"{c}/hit-sqlite", {"the nodes run": f"{c}/run-sqlite"}, reference_only=True),
    ]
    return [Table("Cached nodes: a run whose every node is read from the cache versus the "
                  "same run without cache= (per run; / 10,000 for per node). The column is "
                  "flowrt's own reference run, not an alternative", ["the nodes run"],
                  rows, unit="per run", seed_column=False)]


def fleet_tables(r: Results) -> list[Table]:
    f = "Fleet/fleet"
    rows = [Row(f"runs of 5 no-op nodes through the queue, {w} worker process"
                + ("es" if w > 1 else ""), f"{f}/throughput-W{w}/flowrt_pg",
                {"flowrt on SQLite": f"{f}/throughput-W{w}/flowrt_sqlite",
                 "DBOS on PostgreSQL": f"{f}/throughput-W{w}/dbos_pg"}) for w in (1, 2, 4)]
    rows += [Row(f"one durable run of {n:,} sequential no-op nodes (steps), per step",
                 f"{f}/steps-{n}/flowrt_pg", {"in memory": f"{f}/steps-{n}/flowrt_memory",
                                              "DBOS on PostgreSQL": f"{f}/steps-{n}/dbos_pg"})
             for n in (200, 1000)]
    rows.append(Row("submit to first node start, one idle worker woken by NOTIFY "
                    "(`--poll 1`)", f"{f}/latency/flowrt_pg", {}))
    return [Table("The work queue on PostgreSQL (a local server, fsync on): seconds per "
                  "run (throughput is its inverse), per step, per submit",
                  ["flowrt on SQLite", "in memory", "DBOS on PostgreSQL"], rows,
                  seed_column=False,
                  footnotes=["A plain timed script (`bench_fleet.py`); workers are real "
                             "processes (`flowrt worker --concurrency 8`, `--poll 1` on "
                             "PostgreSQL, `--poll 0.01` on SQLite; DBOS processes with a "
                             "queue of worker_concurrency 8 polled every 10 ms, each "
                             "measurement on a new database of the same server)."])]


# -- rendering -----------------------------------------------------------------------------


def render_table(r: Results, table: Table, behind_out: list[tuple[Row, Verdict]],
                 targets_out: list[tuple[Row, Target, bool, str]]) -> list[str]:
    """The table in Markdown (nothing if the run measured none of its rows).

    Rows where flowrt is behind go to ``behind_out``, target checks to ``targets_out``
    (the report's "Targets" table and its "why" section).
    """
    rows = [row for row in table.rows if row.key in r.stats]
    if not rows:
        return []
    columns = [c for c in table.columns if any(c in row.baselines
                                               and row.baselines[c] in r.stats
                                               for row in rows)]
    head = ["benchmark", f"flowrt ({table.unit}), median +- stdev"]
    if table.seed_column:
        head += ["seed Go (cited)", "flowrt / seed"]
    head += [f"{c}{' (floor)' if c in table.floors else ''}" for c in columns]
    head.append("verdict")
    lines = [f"*{table.title}*", "", "| " + " | ".join(head) + " |",
             "| --- | " + " | ".join("---:" for _ in head[1:-1]) + " | --- |"]
    for row in rows:
        stat = r.stats[row.key]
        cells = [row.label, fmt_spread(stat)]
        if table.seed_column:
            if row.seed is None:
                cells += ["-", "-"]
            else:
                cells.append(f"{row.seed.name}: {row.seed.shown}")
                cells.append(f"{stat.median / (row.seed.ns * 1e-9):.2f}x"
                             if row.seed.ns is not None else "n/c")
        for c in columns:
            name = row.baselines.get(c)
            theirs = r.median(name)
            if theirs is None:
                cells.append("")
            else:
                cells.append(f"{fmt_value(theirs, stat.unit)} ({stat.median / theirs:.2f}x)")
        v = verdict(r, table, row)
        cells.append(v.text)
        lines.append("| " + " | ".join(cells) + " |")
        if v.behind:
            behind_out.append((row, v))
        for t, _, met, shown in v.targets:
            targets_out.append((row, t, met, shown))
    lines.append("")
    for note in table.footnotes:
        lines += [f"> {note}", ""]
    return lines


def otel_tables(r: Results) -> list[Table]:
    o = "otel/noop-10000"
    absent = {"without the otel extra": f"{o}/absent"}
    rows = [
        Row("10,000 no-op nodes: the otel extra installed, no SDK configured",
            f"{o}/no_sdk", absent, reference_only=True,
            info="target: at most 1.03x without the extra"),
        Row("10,000 no-op nodes: the SDK's spans, a no-op exporter", f"{o}/sdk_spans",
            absent, reference_only=True),
        Row("10,000 no-op nodes: the SDK's metrics (never collected)", f"{o}/sdk_metrics",
            absent, reference_only=True),
    ]
    return [Table("OpenTelemetry per node (one run of 10,000 no-op async nodes on an open "
                  "Runtime). The column is flowrt's own run without the extra, not an "
                  "alternative", ["without the otel extra"], rows, seed_column=False,
                  footnotes=["Without a provider a runtime has no telemetry object, and "
                             "the supervisor's per-node path is the same as without the "
                             "extra (docs/decisions/022-otel-switch.md): the no-SDK ratio "
                             "is noise."])]


# -- branches (issue 13) ------------------------------------------------------------------


def branch_tables(r: Results) -> list[Table]:
    rows = [Row("10,001 no-op nodes, a branch bypassing 5,000 of them",
                "Branch/bypassed-5000/flowrt",
                {"the 5,000 removed": "Branch/removed-5000/flowrt"}, reference_only=True)]
    return [Table("Branch overhead: a workflow whose half a branch bypasses, beside the "
                  "same workflow with that half removed; time per run", ["the 5,000 removed"],
                  rows, unit="per run", seed_column=False,
                  footnotes=["Issue 13's target: at most 0.3 us per bypassed node over the "
                             "workflow without them. The difference (~0.5 ms) is below what "
                             "wall-time medians taken apart resolve on a shared machine; "
                             "`results/branch.log` ends with the paired figure (the two "
                             "runs alternated, CPU time), which is the one to read."])]


# scaling (issue 18)
SCALING_TOPOLOGIES = ("random", "linear", "fan_out", "binary_tree")


def scaling_tables(r: Results) -> list[Table]:
    rows = []
    for topo in SCALING_TOPOLOGIES:
        prefix = f"Scaling/{topo}/"
        sizes = sizes_of(r, f"{prefix}*/flowrt", prefix, "/flowrt")
        for n in sizes:
            base = f"{prefix}{n}"
            targets: tuple[Target, ...] = ()
            if topo == "random" and n == 10_000:
                targets = (target("scaling", "ratio", ref=f"{base}/graphlib_wait"),)
            elif topo == "random" and n > 10_000 and 10_000 in sizes:
                targets = (target("scaling", "flat", n=n, ref=f"{prefix}10000/flowrt"),)
            rows.append(Row(f"{topo} {n:,}: run", f"{base}/flowrt",
                            {"graphlib_wait": f"{base}/graphlib_wait"}, targets=targets))
    return [Table("A no-op DAG from 1,000 to 1,000,000 nodes, `wf.run_sync()` of the "
                  "compiled workflow beside the graphlib + asyncio executor on the same "
                  "mapping, CPU time per node, one fresh process per topology and size",
                  ["graphlib_wait"], rows, seed_column=False,
                  footnotes=["CPU time (`time.process_time`), not wall time: the machine "
                             "is shared and a descheduled process is charged no CPU. The "
                             "two runners alternate in the same process. Build, compile "
                             "and peak RSS are in the table below."])]


def scaling_by_size(r: Results) -> list[str]:
    """Build / compile / run per node and peak RSS by size, and the growth from 10k."""
    lines: list[str] = []
    for topo in SCALING_TOPOLOGIES:
        prefix = f"Scaling/{topo}/"
        sizes = sizes_of(r, f"{prefix}*/flowrt", prefix, "/flowrt")
        if not sizes:
            continue
        lines += [f"**{topo}: per node by graph size (CPU time), and peak RSS**", "",
                  "| | " + " | ".join(f"{n:,}" for n in sizes) + " |",
                  "| --- | " + " | ".join("---:" for _ in sizes) + " |"]
        for runner, label in (("flowrt_build", "flowrt build (`wf.add`)"),
                              ("flowrt_compile", "flowrt compile"),
                              ("flowrt", "flowrt run"),
                              ("graphlib_wait", "graphlib_wait run")):
            cells = [fmt_time(r.median(f"{prefix}{n}/{runner}")) for n in sizes]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        for runner in ("flowrt", "graphlib_wait"):
            ref = r.median(f"{prefix}10000/{runner}")
            cells = []
            for n in sizes:
                v = r.median(f"{prefix}{n}/{runner}")
                cells.append(f"{v / ref:.2f}x" if v is not None and ref else "-")
            lines.append(f"| {runner} per node / its 10,000 value | " + " | ".join(cells)
                         + " |")
        totals = []
        for n in sizes:
            parts = [r.median(f"{prefix}{n}/{k}")
                     for k in ("flowrt_build", "flowrt_compile", "flowrt")]
            totals.append("-" if None in parts else
                          f"{sum(p for p in parts if p is not None) * n:.3g} s")
        lines.append("| flowrt build + compile + run, total | " + " | ".join(totals) + " |")
        rss = [r.get(f"{prefix}{n}/peak_rss") for n in sizes]
        lines.append("| peak RSS (the mapping's share) | " + " | ".join(
            f"{s.median:,.0f} MB ({s.meta.get('graph_mb', 0):,.0f})" if s else "-"
            for s in rss) + " |")
        lines.append("")
    if lines:
        lines += ["Issue 18's bars for the 1,000,000-node random DAG: build + compile + run "
                  "under 6 s in total, peak RSS under 600 MB, run per node within 1.5x of "
                  "its 10,000 value. Peak RSS is the process's (`ru_maxrss`) after flowrt's "
                  "first build + compile + run, so it includes the interpreter and the "
                  "input mapping (in brackets: the process after generating it).", ""]
    return lines
