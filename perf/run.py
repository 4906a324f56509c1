"""Run every benchmark family, then write perf/REPORT.md and the plots. One command.

    python perf/run.py --quick                  # every family, light settings (< 5 min)
    python perf/run.py                          # full mode: pyperf's default statistics
    python perf/run.py --only execution         # one family (repeatable); --list names them
    python perf/run.py --quick --compare perf/results/previous    # regressions vs a run
    python perf/run.py --report-only            # rebuild the report from perf/results

Each family is a harness in perf/ run as a subprocess (its output in
``perf/results/<family>.log``) that writes ``perf/results/<family>.json``: pyperf JSON
for the timing families (usable with ``python -m pyperf compare_to``), plain JSON for
``memory`` (tracemalloc) and ``executors`` (a timed script beside a Dask cluster). The
pyperf results of the run are also merged into ``perf/results/all.json``. The files of
an earlier run of the same family are moved to ``perf/results/previous/`` first.

``--quick`` passes pyperf ``-p 1 -n 3 -w 1 --min-time 0.01`` (one worker process and
three values per benchmark, after a calibration process) and the harnesses' own
``--quick`` (no 100,000-node sizes, fewer Dask sizes, 3 repeats of the I/O scaling and
executor loops); without it each harness runs in its full mode (pyperf's default 20
processes x 3 values, the 100,000-node sizes), which takes about an hour.

``--compare OLD`` (a pyperf JSON file, or a directory of them such as an earlier
``perf/results``) runs ``python -m pyperf compare_to OLD perf/results/all.json``, prints
it, and puts it and the flowrt benchmarks that got slower into the report.

The report holds only figures measured by the run that wrote it (read back from
perf/results, with the run's machine and Python), except the seed's Go column, which
is cited from the seed's benchmark analysis. The "why" notes on benchmarks where flowrt
is behind a Python baseline are analysis, kept in ``NOTES`` below.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import importlib.util
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
REPORT = HERE / "REPORT.md"
PLOTS = HERE / "plots"
SEED_FILE = "seed/flow-orchestrator-benchmark-analysis.md"

#: pyperf options for --quick: one worker process of 3 values (and one calibration run)
QUICK_PYPERF = ("--quick", "-p", "1", "-n", "3", "-w", "1", "--min-time", "0.01")


# -- the families ------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    name: str
    script: str
    title: str
    kind: str = "pyperf"  # "pyperf", "memory" or "executors"
    args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()

    def command(self, quick: bool, out: Path) -> list[str]:
        cmd = [sys.executable, str(HERE / self.script), *self.args]
        if self.kind == "pyperf":
            cmd += [*QUICK_PYPERF, *self.quick_args] if quick else []
            cmd += ["-o", str(out)]
        elif self.kind == "memory":
            cmd += ["--quick", *self.quick_args] if quick else []
            cmd += ["-o", str(out)]
        else:
            cmd += ["--quick", *self.quick_args] if quick else []
            cmd += ["--json", str(out)]
        return cmd


FAMILIES: tuple[Family, ...] = (
    Family("dag_construction", "bench_dag_construction.py", "DAG construction"),
    Family("execution", "bench_execution.py", "Execution and focused concurrency",
           args=("--no-scaling",)),
    Family("io_scaling", "bench_execution.py", "I/O scaling", args=("--select", "IOScaling"),
           quick_args=("--scaling-repeats", "3")),
    Family("dependency_resolution", "bench_dependency_resolution.py",
           "Dependency resolution"),
    Family("workflow_data", "bench_workflow_data.py", "WorkflowData"),
    Family("interning", "bench_interning.py", "String interning"),
    Family("status", "bench_status.py", "Node status"),
    Family("durable", "bench_durable.py", "Durable versus in-memory runs"),
    Family("scenarios", "bench_scenarios.py", "Real-world scenarios"),
    Family("memory", "bench_memory.py", "Memory per node", kind="memory"),
    Family("executors", "bench_executors.py", "Executors: threads, processes, Dask",
           kind="executors", requires=("distributed",)),
)
BY_NAME = {f.name: f for f in FAMILIES}


# -- results -----------------------------------------------------------------------------


@dataclass
class Stat:
    name: str
    values: list[float]
    unit: str = "second"  # "second" or "byte"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def stdev(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0


@dataclass
class Results:
    stats: dict[str, Stat]
    run: dict[str, Any]
    memory: dict[str, dict[str, Any]]
    executors: dict[str, Any] | None

    def get(self, name: str | None) -> Stat | None:
        return self.stats.get(name) if name else None

    def median(self, name: str | None) -> float | None:
        s = self.get(name)
        return s.median if s is not None else None

    def names(self, pattern: str) -> list[str]:
        return [n for n in self.stats if fnmatch.fnmatchcase(n, pattern)]


def load_pyperf(path: Path) -> dict[str, Stat]:
    import pyperf

    out: dict[str, Stat] = {}
    for bench in pyperf.BenchmarkSuite.load(str(path)).get_benchmarks():
        values = list(bench.get_values())
        if not values:
            continue
        out[bench.get_name()] = Stat(bench.get_name(), values, bench.get_unit(),
                                     dict(bench.get_metadata()))
    return out


def load_results(results: Path, run: dict[str, Any]) -> Results:
    stats: dict[str, Stat] = {}
    memory: dict[str, dict[str, Any]] = {}
    executors = None
    for name, info in run["families"].items():
        if info.get("status") != "ok":
            continue
        family = BY_NAME[name]
        path = results / f"{name}.json"
        if family.kind == "pyperf":
            stats.update(load_pyperf(path))
        elif family.kind == "memory":
            data = json.loads(path.read_text())
            for row in data["rows"]:
                memory[row["scenario"]] = row
                for what in ("peak", "retained"):
                    key = f"Memory/{row['scenario']}/{what}"
                    stats[key] = Stat(key, [row[f"{what}_per_node"]], "byte")
        else:
            executors = json.loads(path.read_text())
            for key, row in executors["rows"].items():
                times = row.get("times_s") or [row["median_s"]]
                nodes = row.get("nodes", 1)
                name_ = f"Executors/{key}"
                stats[name_] = Stat(name_, [t / nodes for t in times])
    return Results(stats, run, memory, executors)


def merge_pyperf(paths: Iterable[Path], out: Path) -> int:
    """One pyperf file holding every benchmark of ``paths`` (for compare_to)."""
    import pyperf

    suite = None
    count = 0
    for path in paths:
        try:
            loaded = pyperf.BenchmarkSuite.load(str(path))
        except Exception:  # not a pyperf file (memory.json, executors.json)
            continue
        for bench in loaded.get_benchmarks():
            if suite is None:
                suite = pyperf.BenchmarkSuite([bench])
            elif bench.get_name() not in suite.get_benchmark_names():
                suite.add_benchmark(bench)
            count += 1
    if suite is None:
        return 0
    if out.exists():
        out.unlink()
    suite.dump(str(out))
    return count


# -- the seed's Go figures (cited) -------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """A figure from the seed's analysis: its benchmark name and ns in the row's unit."""

    name: str
    ns: float | None  # in the unit of the row (per node, per op...); None: not comparable
    shown: str

    @property
    def comparable(self) -> bool:
        return self.ns is not None


SEED_DAG = {10: 3362, 100: 17930, 1_000: 173131, 10_000: 1943485}
SEED_TOPOLOGY = {"LinearDAG": 27808, "DiamondDAG": 50106, "BinaryTreeDAG": 29031,
                 "RandomDAG": 265029}
SEED_SCALABILITY = {10: 100200, 100: 1002000, 1_000: 10020000}
SEED_CONCURRENCY = {"Light_10": (125280, 361852), "Medium_100": (165986, 3027835),
                    "Heavy_1000": (603042, 32678541)}
SEED_WORKERS = {1: 10020000, 2: 5010000, 4: 2505000, 8: 1252500, 16: 626250, 32: 313125}
SEED_DEPS = {("Linear", 10): 6415, ("Linear", 100): 236719, ("Linear", 1_000): 15214251,
             ("Diamond", 10): 6621, ("Diamond", 100): 172992, ("Diamond", 1_000): 13545006}
SEED_SETGET = {10: 790.6, 100: 621.3, 1_000: 631.0}
SEED_RESET = {10: (149.6, 3640), 100: (1395, 5146), 1_000: (13857, 17592)}
SEED_ARENA = {10: {"Standard": 16929, "Arena": 18286, "ArenaCustomBlock": 17926},
              100: {"Standard": 171867, "Arena": 185446},
              1_000: {"Standard": 2859790, "Arena": 2482775}}
SEED_INTERN = {"IndividualIntern": 4006, "BatchIntern": 3537, "GlobalIntern": 3425,
               "GlobalBatchIntern": 3476}
SEED_INTERN_BATCH = 100  # assumed: see the footnote of the interning table
SEED_DAG_BYTES = 1993987 / 10_000  # DAGConstruction_10000_Nodes, B/op per node


# -- rows, targets, verdicts -------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A bar from the issues. ``kind``: ratio (to ``ref``), value, over_ideal, growth."""

    text: str
    limit: float
    kind: str = "ratio"
    ref: str | None = None
    ideal: float | None = None


@dataclass
class Row:
    label: str
    key: str
    baselines: dict[str, str] = field(default_factory=dict)  # column -> benchmark name
    seed: Seed | None = None
    targets: tuple[Target, ...] = ()
    reference_only: bool = False  # the columns are flowrt references, not alternatives
    info: str = ""


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[Row]
    floors: frozenset[str] = frozenset()
    unit: str = "per node"
    seed_column: bool = True
    footnotes: list[str] = field(default_factory=list)


@dataclass
class Verdict:
    text: str
    behind: list[tuple[str, float]]
    targets: list[tuple[Target, float, bool, str]]


AHEAD, BEHIND = 0.95, 1.05  # ratios within these are "on par" (run-to-run noise)


def fmt_time(s: float | None) -> str:
    if s is None or math.isnan(s):
        return "-"
    a = abs(s)
    if a < 1e-6:
        return f"{s * 1e9:.3g} ns" if a < 1e-7 else f"{s * 1e9:.0f} ns"
    if a < 1e-3:
        return f"{s * 1e6:.3g} us"
    if a < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "byte":
        return f"{value:,.0f} B"
    return fmt_time(value)


def fmt_spread(stat: Stat) -> str:
    if len(stat.values) < 2:
        return f"{fmt_value(stat.median, stat.unit)} (1 value)"
    if stat.unit == "byte":
        return f"{stat.median:,.0f} B +- {stat.stdev:,.0f}"
    med, sd = stat.median, stat.stdev
    return f"{fmt_time(med)} +- {100 * sd / med:.1f}%" if med else fmt_time(med)


def evaluate_target(r: Results, row: Row, t: Target) -> tuple[float, bool, str] | None:
    value = r.median(row.key)
    if value is None:
        return None
    if t.kind == "ratio":
        ref = r.median(t.ref)
        if not ref:
            return None
        measured = value / ref
        return measured, measured <= t.limit, f"{measured:.3f}x"
    if t.kind == "value":
        shown = fmt_value(value, r.stats[row.key].unit)
        return value, value <= t.limit, shown
    if t.kind == "over_ideal":
        assert t.ideal is not None
        over = value / t.ideal - 1
        return over, over <= t.limit, f"{100 * over:+.1f}% of ideal"
    if t.kind == "growth":  # time per node at this size / at the reference size
        ref = r.median(t.ref)
        if not ref:
            return None
        growth = value / ref
        return growth, growth <= t.limit, f"{growth:.3f}x per node"
    raise ValueError(t.kind)


def verdict(r: Results, table: Table, row: Row) -> Verdict:
    parts: list[str] = []
    targets = []
    for t in row.targets:
        ev = evaluate_target(r, row, t)
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
    out = set()
    for name in r.names(pattern):
        middle = name[len(prefix):len(name) - len(suffix)]
        if middle.isdigit():
            out.add(int(middle))
    return sorted(out)


def dag_tables(r: Results) -> list[Table]:
    rows = []
    for n in sizes_of(r, "DAGConstruction/*_nodes/flowrt", "DAGConstruction/", "_nodes/flowrt"):
        base = f"DAGConstruction/{n}_nodes"
        seed = None
        if n in SEED_DAG:
            ns = SEED_DAG[n]
            seed = Seed(f"DAGConstruction_{n}_Nodes", ns / n,
                        f"{ns:,} ns/op = {ns / n:.0f} ns/node")
        targets = ()
        if n >= 10_000:
            targets = (Target("build+compile <= 0.8x graphlib prepare", 0.8,
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
            targets = ()
            if (topo, n) == ("random", 10_000):
                targets = (Target("run random 10k <= 0.35x graphlib_wait", 0.35,
                                  ref=f"{base}/graphlib_wait"),)
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
                        (Target("unlimited <= 1.5x gather", 1.5, ref=f"{base}/gather"),)))
        rows.append(Row(f"{label}: {n} x sleep(0.1 ms), max_concurrency=4",
                        f"{base}/flowrt_limit4", {"Semaphore(4)": f"{base}/semaphore4"},
                        Seed(f"FocusedConcurrency/{label}/LimitedConcurrency", None,
                             f"{limited:,} ns/op"),
                        (Target("limited <= 1.2x semaphore", 1.2, ref=f"{base}/semaphore4"),)))
    t2 = Table("FocusedConcurrency: independent nodes that each `await anyio.sleep(0.0001)`",
               ["asyncio.gather", "Semaphore(4)"], rows, unit="per run",
               footnotes=["A 0.1 ms sleep takes about 1 ms on asyncio (its selector timeout "
                          "is in milliseconds), on both sides. The seed's node work is not "
                          "stated, so its figures are not comparable (n/c)."])
    return [t1, t2]


def io_scaling_tables(r: Results) -> list[Table]:
    rows = []
    workers = sorted(int(n.split("/")[1][2:]) for n in r.names("IOScaling/W=*/flowrt"))
    for w in workers:
        base = f"IOScaling/W={w}"
        seed = None
        if w in SEED_WORKERS:
            seed = Seed(f"ConcurrencyScaling/Workers={w}", None,
                        f"{SEED_WORKERS[w]:,} ns/op (its ideal)")
        target = (Target("I/O scaling within 15% of ideal (0.32 s) up to W=256", 0.15,
                         kind="over_ideal", ideal=0.32),) if w <= 256 else ()
        rows.append(Row(f"W={w}: {32 * w:,} x sleep(10 ms)", f"{base}/flowrt",
                        {"Semaphore(W)": f"{base}/semaphore",
                         "floor: W bare tasks": f"{base}/floor"}, seed, target))
        if r.get(f"{base}/flowrt_uvloop") is not None:
            rows.append(Row(f"W={w}, on uvloop", f"{base}/flowrt_uvloop",
                            {"floor: W bare tasks": f"{base}/floor_uvloop"}, None, target))
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
                small = max((m for m in sizes if m < n and m >= 1_000), default=None)
                if small is not None:
                    targets = (Target(f"O(1) per status change: time per node at {n:,} "
                                      f"<= 1.25x that at {small:,}", 1.25, kind="growth",
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
        target = Target(f"set+get faster than the seed ({ns} ns)", ns * 1e-9, kind="value")
        rows.append(Row(f"Size_{n}: `WorkflowData()` (metrics off, the default)",
                        f"{base}/flowrt", cols, seed, (target,)))
        rows.append(Row(f"Size_{n}: `WorkflowData(metrics=True)`", f"{base}/flowrt_metrics",
                        cols, seed, (target,)))
        rows.append(Row(f"Size_{n}: `WorkflowData(metrics=0.1)` (sampled)",
                        f"{base}/flowrt_sampled_0.1", cols, seed, (target,)))
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
            ns = SEED_ARENA[n].get(variant)
            seed = Seed(f"WorkflowDataArenaComparison/Size_{n}/{variant}", ns,
                        f"{ns:,} ns/op") if ns else None
            rows.append(Row(f"Size_{n}: {label}: new, {n} sets, {n} gets", f"{base}/{variant}",
                            {"DictStore (Standard)": f"{base}/Standard"}, seed))
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
    target = Target("durable <= 1.15x in memory (1,000 x 1 ms, max_concurrency=50)", 1.15,
                    ref=f"{d}/sleep1ms-1000/memory")
    rows = [
        Row("1,000 x sleep(1 ms), max_concurrency=50: SQLite store kept open (Runtime)",
            f"{d}/sleep1ms-1000/runtime-store", {"in memory": f"{d}/sleep1ms-1000/memory"},
            targets=(target,), reference_only=True),
        Row("1,000 x sleep(1 ms), max_concurrency=50: `store=path` per run",
            f"{d}/sleep1ms-1000/run-store", {"in memory": f"{d}/sleep1ms-1000/memory"},
            targets=(target,), reference_only=True),
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
    for scenario, label, target, cols in (
            ("flowrt_build_compile", "build + compile", 600,
             {"graphlib prepare()": "graphlib_prepare"}),
            ("flowrt_build_compile_run", "build + compile + run", 1_000,
             {"graphlib_wait": "graphlib_wait", "sequential_await": "sequential_await"}),
            ("flowrt_run", "run of a compiled workflow", None,
             {"graphlib_wait": "graphlib_wait", "sequential_await": "sequential_await"})):
        targets: tuple[Target, ...] = ()
        if target:
            targets = (Target(f"100k memory <= {target:,} B/node ({label})", target,
                              kind="value"),)
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
            dask, targets=(Target("flowrt on Dask <= 1.2x plain Dask", 1.2,
                                  ref=f"{e}/cpu64/dask client.get"),)),
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


@dataclass(frozen=True)
class Section:
    family: str
    title: str
    seed_ref: str
    build: Callable[[Results], list[Table]]


SECTIONS: tuple[Section, ...] = (
    Section("dag_construction", "DAG construction",
            "DAG Construction Performance; DAG Topology Performance", dag_tables),
    Section("execution", "Execution: no-op DAGs and focused concurrency",
            "Scalability with Node Count; Parallel Execution Performance", execution_tables),
    Section("io_scaling", "I/O scaling with workers", "Concurrency Scaling", io_scaling_tables),
    Section("dependency_resolution", "Dependency resolution",
            "Dependency Resolution Performance", dependency_tables),
    Section("workflow_data", "WorkflowData",
            "WorkflowData Set/Get; Arena Reset; Arena vs. Standard Memory Management",
            workflow_data_tables),
    Section("interning", "String interning", "String Interning Performance",
            interning_tables),
    Section("status", "Node status", "Core Component Benchmarks: Node Status (no figures)",
            status_tables),
    Section("durable", "Durable versus in-memory runs", "(not in the seed; issue 4's target)",
            durable_tables),
    Section("scenarios", "Real-world scenarios end to end",
            "Overview: real-world scenarios (no figures)", scenario_tables),
    Section("memory", "Memory per node", "DAG Construction Performance (B/op)",
            memory_tables),
    Section("executors", "Executors: processes and Dask", "(not in the seed; issue 7's target)",
            executor_tables),
)


# -- why flowrt is behind: analysis, not figures -------------------------------------------


@dataclass(frozen=True)
class Note:
    """Why flowrt is behind (or misses a target) on the benchmarks ``patterns`` match."""

    patterns: tuple[str, ...]
    title: str
    why: str
    close: str


#: Analysis written from the code and the figures of quick runs on the 2-core dev machine;
#: the report prints each note beside the figures of the run that wrote it.
NOTES: tuple[Note, ...] = (
    Note(("DAGConstruction/*", "DAGTopologyCreation/*"), "Build + compile",
         "Per node, `wf.add` validates the call (name, deps, the cached signature and its "
         "arity, options) and appends to flat lists: the callable, the number of deps and "
         "the dep names; no object per node. `compile()` then resolves every name in one "
         "C-level pass, checks with one comparison per edge that each dependency came "
         "first (so the order is topological and there is no cycle) and counts the "
         "dependents out into CSR arrays (docs/decisions/002). `graphlib` builds a "
         "`_NodeInfo` and a list per node and walks the graph for cycles. Behind only at "
         "10 nodes, where the fixed cost of a `Workflow` and a `Plan` (~10 us) dominates.",
         "A smaller `Plan` constructor for tiny graphs (most of its fixed cost is arrays "
         "and dicts sized for the general case)."),
    Note(("Execution/*",), "Running small graphs; building every time",
         "`sequential_await` is a floor: one coroutine after another, no concurrency, no "
         "statuses, no result object. A `run_sync()` has a fixed cost (an anyio event "
         "loop, the supervisor's arrays, a new `WorkflowData` with its interner and status "
         "board, the run's metrics, the `RunResult`) that a 100-node graph spreads over "
         "only 100 nodes; from 1,000 nodes on flowrt is near the floor or below it, "
         "because a node that does not suspend costs neither a task nor a trip through "
         "the loop (docs/decisions/003). The cold row adds build + compile (see that "
         "section).",
         "A smaller fixed cost per run: reuse the per-plan arrays and a reset "
         "`WorkflowData` between runs of the same plan instead of allocating them (resets "
         "are O(used)), and build the `RunResult` views on first access."),
    Note(("FocusedConcurrency/*",), "Many short sleeps (FocusedConcurrency)",
         "A node that suspends stays with its runner, which awaits the rest of it through "
         "`actor.Resume`, a Python-level trampoline that forwards every step inside the "
         "node's own context copy (`Context.run` per step), while a new runner task is "
         "started for the rest of the queue (docs/decisions/003); each node also pays for "
         "its status changes, timing and result slot, and the run for its fixed cost. "
         "`asyncio.gather` wraps each coroutine in a C task and does nothing else. The "
         "whole run lasts about one sleep (asyncio rounds the 0.1 ms sleep up to its "
         "millisecond timer), so flowrt's per-node costs are a large share of it, most "
         "at 100 nodes; these figures also have the widest spread of the suite. With a "
         "limit, blocked nodes wait in the limit's queue without a task, and the same "
         "costs are small next to the queueing.",
         "Hand a suspended node's coroutine to `loop.create_task(..., context=ctx)` "
         "behind a one-step prologue (a `types.coroutine` generator that yields the "
         "pending future once, then `yield from` the coroutine, so the forwarding is done "
         "in C), instead of forwarding each step through `Resume` in Python; and the "
         "smaller fixed cost per run (see Execution)."),
    Note(("IOScaling/*",), "I/O scaling at the largest worker counts",
         "At W = 256, 8,192 nodes sleep 10 ms each in 32 waves of 256. Every wave wakes "
         "256 timers; the loop's own work (a `TimerHandle` pushed on a heap whose "
         "comparisons are a Python `__lt__`, the callbacks, anyio's sleep) and flowrt's "
         "per-node work (settle, hand the freed slot over, start the next node) run on one "
         "thread between waves, so each wave ends a little late, and 32 waves add that "
         "up. The floor column -- W bare asyncio tasks doing the same sleeps, nothing else "
         "-- is itself about 15% over the ideal on the standard loop here: the target is "
         "below what the loop alone costs, and flowrt adds 1-5% to the floor. On uvloop "
         "(the 'on uvloop' rows, `backend_options={\"use_uvloop\": True}`) the loop's part "
         "is done in C and flowrt stays well inside the target (docs/decisions/007). "
         "The hand-written `Semaphore(W)` pays more (all 8,192 tasks exist from the start "
         "and queue on the semaphore).",
         "On the standard loop nothing above the floor is left to gain but flowrt's few "
         "percent: settle all the nodes that finished in one loop turn in one pass, and "
         "skip the limit hand-over when only `max_concurrency` applies."),
    Note(("DependencyResolution/*",), "Dependency resolution on small graphs",
         "The time per node is flat from 1,000 to 10,000 nodes (O(1) per status change, "
         "as the growth check shows); what makes 10 and 100 nodes cost more per node is "
         "the fixed cost of a run (the supervisor's arrays, a new `WorkflowData`, the "
         "run's metrics, the result), which `graphlib_sync` and `naive_scan` do not have: "
         "they keep no statuses, no timings and no result. `naive_scan` is O(n^2) and "
         "only cheap at 10 nodes. A sync node on `executor=\"loop\"` costs a little more "
         "than an async no-op because it is wrapped in a coroutine (`actor.in_loop`) that "
         "the runner then steps.",
         "The smaller fixed cost per run (see Execution); for `executor=\"loop\"`, call "
         "the function in the runner and settle it directly, without the `in_loop` "
         "coroutine."),
    Note(("SetGet/*", "SetGetById/*"), "WorkflowData set + get",
         "A `set` resolves the key through two dicts (the plan's node names, then the "
         "store's own keys) to a slot id, stores into the slab list, moves the high-water "
         "mark and bumps a version counter that checkpoints read; a `get` does the two "
         "lookups and checks for the empty-slot sentinel. `DictStore` is one dict "
         "operation per call, `dict` not even a call (a floor). By id skips the lookups "
         "but keeps two method calls with their checks. Metrics on times every operation "
         "(two `perf_counter_ns` calls each); sampled keeps a tick counter per operation.",
         "One lookup instead of two (a single key -> id dict shared by the plan and the "
         "store's own keys, copied on write), drop the version counter from `set` (a "
         "checkpoint can compare the slab instead), and count operations without timing "
         "them unless sampled; a C implementation (mypyc) of the slab would bring "
         "set + get near `DictStore`."),
    Note(("ArenaReset/*", "ArenaComparison/*"), "Reset and new stores",
         "A new `WorkflowData` creates its own `Interner`, a 64-slot slab and a "
         "`StatusBoard`; `reset()` refills the used slots with the sentinel and resets "
         "the status board; every `set` is the two-lookup path above. A `DictStore` "
         "is one dict, and clearing it is `dict.clear()`. (The slab's point is the "
         "runtime's id-indexed path and memory per node, not a faster `set` by name.)",
         "Create the interner and the status board lazily (on the first set and on "
         "attaching to a plan), and the cheaper `set` above."),
    Note(("Snapshot/*",), "Snapshot and restore",
         "`snapshot()` walks the slab and maps each id back to its name through the "
         "interner, builds a values dict and a statuses dict (node statuses as strings) "
         "inside a versioned, JSON-ready envelope; `from_snapshot()` checks the version "
         "and `set`s every key. `dict(d)` is one C-level copy and is only a floor.",
         "Build the values dict with one `zip` over the interner's key list and the slab "
         "(no per-item generator), and restore with one bulk intern plus a slice "
         "assignment into the slab instead of a `set` per key."),
    Note(("FocusedStringInterning/*",), "Interning",
         "Steady state, flowrt is on par with a dict of key -> id (one dict lookup each; "
         "the batch call adds a list of ids). Cold, `Interner()` sets up its base, offset "
         "and frozen flag and interns each new key through a method call that checks the "
         "type and the frozen flag and appends to a key list (ids map back to names); "
         "`DictInterner` only stores `len(d)`. `sys.intern` returns the canonical string, "
         "not an id: a floor.",
         "A cold `intern_many` that checks the frozen flag and the types once per batch "
         "and extends the id dict and the key list in bulk."),
    Note(("NodeStatus/*",), "Status board",
         "`board.move` checks the move against the legal-transition table (index "
         "arithmetic on a bytes table) before it stores into the `bytearray`, a method "
         "call each time; `board[id]` turns the stored byte back into a `Status` member. "
         "A plain dict stores and reads the enum members without a check or a call. "
         "Counting is where the board wins (`bytearray.count`, C speed). The runtime "
         "itself does not go through `move`: it writes the board's bytes directly.",
         "Nothing needed for the runtime; for users, a `moves(ids, status)` batch method "
         "and a `raw(id)` read returning the int would cut the per-call cost."),
    Note(("Scenario/*",), "Real-world scenarios",
         "Where the work is real (SQLite, files, HTTP, retries) the orchestration is small "
         "next to it and the two sides are close; checkout's time includes a jittered "
         "~50 ms retry delay drawn at random on both sides, and a quick run takes one op "
         "per value, so a gap of a few percent either way there is noise. In the approval "
         "scenario the work is 1 ms sleeps and 16 runs of 7 nodes share the loop: each "
         "flowrt run spends several times the CPU of the hand-written coroutines (the "
         "run's fixed cost plus seven nodes' statuses, trigger rules, contexts and "
         "results), and the other runs' timers fire that much later.",
         "The smaller fixed cost per run (see Execution); a `Runtime.run_many` that shares "
         "one supervisor's arrays among runs of the same plan."),
    Note(("Memory/*",), "Memory per node",
         "flowrt keeps what a workflow needs later: per node its name in the index, its "
         "callable, its dep count and dep names in flat lists (docs/decisions/002), and the "
         "compiled `Plan`'s CSR arrays (dependencies and dependents), per-node option "
         "arrays and modes; a run adds the status board, counters, output slots and "
         "timings. `graphlib`'s `prepare()` keeps one `_NodeInfo` and a successor list per "
         "node; `graphlib_wait` keeps the outputs dict, and its tasks only while they run.",
         "Share the plan's dependency ids with the workflow instead of keeping the dep "
         "names twice; `array('l')` for the arrays a run reads rarely."),
    Note(("Executors/*",), "Executors",
         "With threads, 64 pure-Python CPU nodes run one at a time under the GIL; plain "
         "Dask uses two processes. On Dask, each flowrt node is one `client.submit` and "
         "its completion comes back through flowrt's event loop, while `client.get` ships "
         "the whole graph to the scheduler at once: a round trip per node, visible with "
         "no-op nodes (the 200-node row) and small next to 50 ms of real work.",
         "Use `ProcessExecutor` or `DaskExecutor` for CPU-bound nodes (the rows show it); "
         "for Dask, submit each ready wave in one `client.map`/graph submission and keep "
         "intermediate results on the cluster (already done for outputs, "
         "docs/decisions/006)."),
    Note(("durable/*",), "Durable runs",
         "Every finished node's output is serialized (JSON) on the loop thread and handed "
         "to the store's writer thread, which commits what has arrived every 5 ms in one "
         "transaction (docs/decisions/005). Per run there is also a fixed cost: a trip to "
         "a worker thread to open the run and take its lease, and one to wait for the "
         "final commit, noticeable on a run this short. On two cores the writer thread's "
         "Python work competes with the loop for the GIL. `store=path` on `wf.run` also "
         "opens the file, checks the schema and starts a writer thread on every run; a "
         "`Runtime` holding the store pays that once.",
         "Open the run through the store's writer thread already running (no extra "
         "to-thread trip), let `store=path` reuse one open store per path in the process, "
         "and serialize outputs in the writer thread when they are immutable values."),
)


def note_for(key: str) -> Note | None:
    for note in NOTES:
        if any(fnmatch.fnmatchcase(key, p) for p in note.patterns):
            return note
    return None


# -- the report ---------------------------------------------------------------------------


def render_table(r: Results, table: Table, behind_out: list[tuple[Row, Verdict]],
                 targets_out: list[tuple[Row, Target, bool, str]]) -> list[str]:
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


def machine_lines(r: Results) -> list[str]:
    run = r.run
    m = run["machine"]
    hosts = {s.meta.get("hostname") for s in r.stats.values() if s.meta.get("hostname")}
    cpus = {s.meta.get("cpu_model_name") for s in r.stats.values() if s.meta.get("cpu_model_name")}
    pythons = {s.meta.get("python_version") for s in r.stats.values()
               if s.meta.get("python_version")}
    lines = [f"- Machine: {m['cpu_model']}, {m['cpus']} CPUs, {m['platform']} (host "
             f"`{m['hostname']}`)",
             f"- Python: {m['python']} (`{m['executable']}`)",
             f"- Date: {run['started']} to {run['finished']} (local time {run['tz']})",
             f"- Command: `{run['command']}` ({run['mode']} mode); wall time of the "
             f"benchmark runs: {run['wall_s'] / 60:.1f} min ({run['wall_s']:.0f} s)"]
    src = run.get("source")
    if src:
        changed = src.get("flowrt_changed") or []
        lines.append(f"- flowrt measured: commit `{src['commit']}` ({src.get('subject', '')})"
                     + (f", with uncommitted changes in {', '.join(f'`{c}`' for c in changed)}"
                        if changed else ", no uncommitted change in `flowrt/`"))
        if run.get("source_changed_during_run"):
            before = run.get("source_before", {})
            lines.append(f"- **flowrt changed during the run** (commit `{before.get('commit')}` "
                         f"at the start, `{src['commit']}` at the end): families run early "
                         "and late may have measured different code.")
    if len(hosts) > 1 or len(cpus) > 1 or len(pythons) > 1:
        lines.append(f"- **WARNING: the pyperf files name more than one machine or Python "
                     f"({sorted(map(str, hosts | cpus | pythons))}); do not read them "
                     "together.**")
    else:
        lines.append("- Every figure below was measured in this run, on this machine "
                     "(the pyperf metadata of every benchmark names the same host, CPU and "
                     "Python), except the seed's Go column, cited from the seed's "
                     f"analysis (`{SEED_FILE}` in the design repository; Go, its own "
                     "machine, which it does not describe: for orientation only).")
    return lines


def write_report(r: Results, path: Path, plots: dict[str, Path],
                 comparison: dict[str, Any] | None) -> None:
    run = r.run
    quick = run["mode"] == "quick"
    out = ["# flowrt benchmark report", "",
           "Written by `perf/run.py` from the results of one run; regenerate with `python "
           "perf/run.py --quick` (or without `--quick` for the full run). See "
           "[README.md](README.md) for what each benchmark measures.", ""]
    out += machine_lines(r)
    out.append("")
    if quick:
        out += ["Quick mode: pyperf with one worker process and 3 values per benchmark "
                "(`" + " ".join(QUICK_PYPERF[1:]) + "`), no 100,000-node sizes. The "
                "figures are rough (absolute times on a shared machine drift from run to "
                "run); the ratios, measured side by side in the same run, are what to "
                "read.", ""]
    out += ["How to read a table: *flowrt* is the median of the pyperf values with their "
            "standard deviation; each baseline cell is the baseline's median and, in "
            "brackets, flowrt's median divided by it (below 1: flowrt is faster). A "
            "*floor* is not an alternative a user would pick but the least work possible "
            "(no concurrency, no method call). Verdicts: *ahead* / *behind* a baseline "
            f"when the ratio is below {AHEAD} / above {BEHIND} (in between: on par); "
            "*target met* / *missed* for the bars set in the issues.", ""]

    families = run["families"]
    not_ok = {n: i for n, i in families.items() if i.get("status") != "ok"}
    behind: list[tuple[Row, Verdict]] = []
    targets: list[tuple[Row, Target, bool, str]] = []
    body: list[str] = []
    for section in SECTIONS:
        info = families.get(section.family)
        if info is None:
            continue
        body += [f"## {section.title}", "",
                 f"Seed: {section.seed_ref}. Harness: `perf/{BY_NAME[section.family].script}`"
                 f" ({info.get('seconds', 0):.0f} s in this run).", ""]
        if info.get("status") != "ok":
            body += [f"**Not measured in this run: {info.get('why', info.get('status'))}.**",
                     ""]
            continue
        for table in section.build(r):
            body += render_table(r, table, behind, targets)
        if section.family == "dependency_resolution":
            body += flatness_table(r)
        for name, png in plots.items():
            if name.startswith(section.family):
                rel = os.path.relpath(png, path.parent)
                body += [f"![{name}]({rel})", ""]

    out += ["## Targets", "", "| target | benchmark | measured | verdict |",
            "| --- | --- | ---: | --- |"]
    for row, t, met, shown in targets:
        out.append(f"| {t.text} | {row.label} (`{row.key}`) | {shown} | "
                   f"{'met' if met else '**missed**'} |")
    out.append("")
    missed = [(row, t) for row, t, met, _ in targets if not met]
    out.append(f"{len(targets) - len(missed)} of {len(targets)} target checks met."
               + (" Missed: " + "; ".join(f"{t.text} at {row.label}" for row, t in missed)
                  + "." if missed else ""))
    out.append("")
    if not_ok:
        out += ["Families not measured in this run: " + ", ".join(
            f"`{n}` ({i.get('why', i.get('status'))})" for n, i in not_ok.items()) + ".", ""]
    skipped = [f.name for f in FAMILIES if f.name not in families]
    if skipped:
        out += ["Families not run (`--only`): " + ", ".join(f"`{n}`" for n in skipped)
                + ". Their figures are not carried over from other runs.", ""]
    out += body
    out += behind_lines(behind, [(row, t, shown) for row, t, met, shown in targets
                                 if not met])
    out += ["## The seed's figures not reproduced", "",
            "- `BenchmarkArenaAllocation/Size_*/{Standard,Arena}`: Go's allocator against "
            "an arena for raw byte blocks. Python has no user-level allocation to compare; "
            "flowrt's arena is the `WorkflowData` slab, measured above (ArenaReset, "
            "ArenaComparison) and in Memory per node.",
            "- `FocusedStringInterning/ArenaStringPool*`: an arena-backed string pool. "
            "Python strings are already shared objects (`sys.intern`, in the interning "
            "table as a floor); flowrt interns to dense ids instead.",
            "- `WorkflowDataConfigurations/{ReadOptimized,HighConcurrency}_Size_10`: "
            "lock-tuning configurations that have no meaning for an asyncio store; the "
            "metrics variants (Default / MetricsDisabled / MetricsSampled) are the SetGet "
            "configurations above.",
            "- Memory pooling and lock contention: listed among the seed's categories "
            "without figures.", ""]
    installed = run.get("peers")
    if installed is not None:
        out += ["## Optional peers", ""]
        for module, (name, where) in PEERS.items():
            if installed.get(module):
                out.append(f"- {name}: installed; {where}.")
            else:
                out.append(f"- {name}: not installed in this environment (`{module}`), "
                           "skipped.")
        out.append("")
    if comparison is not None:
        out += comparison_lines(comparison)
    out += ["## Families in this run", "", "| family | harness | status | seconds | log |",
            "| --- | --- | --- | ---: | --- |"]
    for name, info in families.items():
        out.append(f"| {name} | `perf/{BY_NAME[name].script}` | {info.get('status')} | "
                   f"{info.get('seconds', 0):.0f} | `{run.get('results', 'perf/results')}/"
                   f"{name}.log` |")
    out.append("")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def behind_lines(behind: list[tuple[Row, Verdict]],
                 missed: list[tuple[Row, Target, str]]) -> list[str]:
    """The rows where flowrt is behind a baseline or misses a target, grouped by note."""
    out = ["## Where flowrt is behind a Python baseline (or misses a target), and why", "",
           "Grouped by cause. Each group lists this run's rows, then why and what would "
           "close the gap (analysis, kept in `perf/run.py`'s `NOTES`).", ""]
    if not behind and not missed:
        return [*out, "Nowhere in this run.", ""]
    groups: dict[str, list[str]] = {}
    notes: dict[str, Note | None] = {}
    for row, v in behind:
        note = note_for(row.key)
        title = note.title if note else "Not analysed yet"
        notes[title] = note
        groups.setdefault(title, []).append(
            f"{row.label}: behind " + ", ".join(f"{c} {x:.2f}x" for c, x in v.behind))
    for row, t, shown in missed:
        note = note_for(row.key)
        title = note.title if note else "Not analysed yet"
        notes[title] = note
        groups.setdefault(title, []).append(f"{row.label}: **target missed** ({t.text}: "
                                            f"{shown})")
    for title, items in groups.items():
        note = notes[title]
        out += [f"### {title}", ""]
        out += [f"- {item}" for item in items]
        out.append("")
        if note is None:
            out += ["*No note yet: analyse before relying on these figures.*", ""]
        else:
            out += [f"**Why.** {note.why}", "", f"**What would close it.** {note.close}", ""]
    return out


# -- plots -------------------------------------------------------------------------------

#: one colour and marker per runner, the same in every plot (flowrt: red, thick)
RUNNER_STYLE: dict[str, dict[str, Any]] = {
    "flowrt": dict(color="#d62728", marker="o", lw=2.4, zorder=5),
    "flowrt_cold": dict(color="#d62728", marker="o", lw=1.4, ls="--", zorder=5),
    "flowrt_sync_loop": dict(color="#d62728", marker="o", lw=2.4, zorder=5),
    "flowrt_async": dict(color="#8c1515", marker="D", lw=2.4, ls="--", zorder=5),
    "graphlib_prepare": dict(color="#1f77b4", marker="s"),
    "sequential_await": dict(color="#7f7f7f", marker="v"),
    "graphlib_wait": dict(color="#ff7f0e", marker="s"),
    "graphlib_sync": dict(color="#1f77b4", marker="s"),
    "taskgroup_events": dict(color="#2ca02c", marker="^"),
    "dask_get_sync": dict(color="#9467bd", marker="P"),
    "dask_threaded": dict(color="#8c564b", marker="X"),
    "naive_scan": dict(color="#17becf", marker="^"),
}


def _plain(value: float, _pos: int) -> str:
    """Tick labels as plain numbers (0.5, 2, 10, 100) rather than 2 x 10^0."""
    return f"{value:g}"


def plot_all(r: Results, out_dir: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator

    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    stamp = (f"{r.run['machine']['python']}, {r.run['machine']['cpu_model']} x"
             f"{r.run['machine']['cpus']}, {r.run['started'][:10]}, {r.run['mode']} run")

    def per_node_axes(ax: Any, series: dict[str, list[tuple[int, float]]], title: str,
                      seed: list[tuple[int, float]] | None = None) -> None:
        for runner, points in series.items():
            if not points:
                continue
            xs, ys = zip(*sorted(points), strict=True)
            style = RUNNER_STYLE.get(runner, dict(marker="."))
            ax.plot(xs, [y * 1e6 for y in ys], label=runner, **style)
        if seed:
            xs, ys = zip(*seed, strict=True)
            ax.plot(xs, [y * 1e6 for y in ys], label="seed Go (cited; its own machine)",
                    color="black", ls=":", marker="x")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(_plain))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, p: ""))
        ax.set_xlabel("nodes")
        ax.set_ylabel("time per node (us)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)

    # 1. execution: time per node against node count, one panel per topology
    topologies = [t for t in ("linear", "fan_out", "binary_tree", "random")
                  if r.names(f"Execution/{t}_*/flowrt")]
    if topologies:
        fig, axes = plt.subplots(1, len(topologies), figsize=(4.6 * len(topologies), 4.4),
                                 squeeze=False)
        for ax, topo in zip(axes[0], topologies, strict=True):
            series: dict[str, list[tuple[int, float]]] = {}
            for name in r.names(f"Execution/{topo}_*/*"):
                _, size, runner = name.split("/")
                n = int(size.rsplit("_", 1)[1])
                series.setdefault(runner, []).append((n, r.stats[name].median))
            per_node_axes(ax, {k: series[k] for k in RUNNER_STYLE if k in series},
                          f"{topo}: no-op async nodes")
        labels: dict[str, Any] = {}
        for ax in axes[0]:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                labels.setdefault(label, handle)
        fig.legend(list(labels.values()), list(labels), fontsize=8, loc="center right")
        fig.suptitle(f"Execution: time per node against node count (log-log) - {stamp}",
                     fontsize=9)
        fig.tight_layout(rect=(0, 0, 0.89, 1))
        written["execution_per_node"] = out_dir / "execution_per_node.png"
        fig.savefig(written["execution_per_node"], dpi=110)
        plt.close(fig)

    # 2. dependency resolution: the flat line (and the seed's quadratic one)
    if r.names("DependencyResolution/*"):
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), squeeze=False)
        for ax, topo in zip(axes[0], ("Linear", "Diamond"), strict=True):
            series = {}
            for name in r.names(f"DependencyResolution/{topo}_Size_*/*"):
                _, size, runner = name.split("/")
                n = int(size.rsplit("_", 1)[1])
                series.setdefault(runner, []).append((n, r.stats[name].median))
            seed = [(n, ns / n * 1e-9) for (t, n), ns in SEED_DEPS.items() if t == topo]
            per_node_axes(ax, {k: series[k] for k in RUNNER_STYLE if k in series},
                          f"{topo}: a whole run of no-op nodes", seed)
        axes[0][0].legend(fontsize=7, loc="upper left")
        fig.suptitle(f"Dependency resolution: time per node (flat = O(1) per status change)"
                     f" - {stamp}", fontsize=9)
        fig.tight_layout()
        written["dependency_resolution_per_node"] = out_dir / "dependency_resolution.png"
        fig.savefig(written["dependency_resolution_per_node"], dpi=110)
        plt.close(fig)

    # 3. DAG construction per node
    if r.names("DAGConstruction/*"):
        fig, ax = plt.subplots(figsize=(6, 4.4))
        series = {}
        for name in r.names("DAGConstruction/*_nodes/*"):
            _, size, runner = name.split("/")
            if runner == "flowrt_add_only":
                continue
            series.setdefault(runner, []).append((int(size.split("_")[0]),
                                                  r.stats[name].median))
        seed = [(n, ns / n * 1e-9) for n, ns in SEED_DAG.items()]
        per_node_axes(ax, series, "random DAG: build + compile", seed)
        ax.legend(fontsize=7)
        fig.suptitle(f"DAG construction: time per node - {stamp}", fontsize=8)
        fig.tight_layout()
        written["dag_construction_per_node"] = out_dir / "dag_construction.png"
        fig.savefig(written["dag_construction_per_node"], dpi=110)
        plt.close(fig)

    # 4. I/O scaling: wall time against workers, with the ideal
    names = r.names("IOScaling/W=*/flowrt")
    if names:
        ws = sorted(int(n.split("/")[1][2:]) for n in names)
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for runner, label, style in (("flowrt", "flowrt max_concurrency=W",
                                      dict(color="C3", marker="o", lw=2.2)),
                                     ("semaphore", "asyncio.Semaphore(W)",
                                      dict(color="C0", marker="s")),
                                     ("floor", "floor: W bare asyncio tasks",
                                      dict(color="C7", marker="^", ls=":")),
                                     ("flowrt_uvloop", "flowrt on uvloop",
                                      dict(color="C1", marker="o")),
                                     ("floor_uvloop", "floor on uvloop",
                                      dict(color="C1", marker="^", ls=":"))):
            ys = [r.median(f"IOScaling/W={w}/{runner}") for w in ws]
            if all(y is not None for y in ys):
                ax.plot(ws, ys, label=label, **style)
        ax.axhline(0.32, color="k", lw=1, label="ideal: 32 x 10 ms = 0.32 s")
        ax.axhline(0.32 * 1.15, color="k", lw=1, ls="--", label="target: ideal + 15%")
        ax.set_xscale("log", base=2)
        ax.set_xticks(ws)
        ax.set_xticklabels([str(w) for w in ws])
        ax.set_ylim(0, max(0.5, max(r.median(n) or 0 for n in names) * 1.1))
        ax.set_xlabel("workers W (max_concurrency); 32 x W nodes of 10 ms I/O")
        ax.set_ylabel("wall time per run (s)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        ax.set_title(f"I/O scaling - {stamp}", fontsize=8)
        fig.tight_layout()
        written["io_scaling_wall"] = out_dir / "io_scaling.png"
        fig.savefig(written["io_scaling_wall"], dpi=110)
        plt.close(fig)
    return written


# -- comparing with an earlier run -------------------------------------------------------


def is_flowrt_side(name: str) -> bool:
    last = name.rsplit("/", 1)[-1]
    return (last.startswith("flowrt") or name.startswith(("durable/", "Memory/flowrt"))
            or last in ("StatusBoard", "Arena", "ArenaCustomBlock"))


def compare(old: Path, new_all: Path, results: Path, shown_old: str) -> dict[str, Any]:
    """``python -m pyperf compare_to`` OLD against this run's merged file."""
    old_file = old
    if old.is_dir():
        old_file = results / "compare-old.json"
        merged = old / "all.json" if (old / "all.json").exists() else None
        if merged is not None:
            shutil.copyfile(merged, old_file)
        elif not merge_pyperf(sorted(old.glob("*.json")), old_file):
            return {"old": str(old), "error": "no pyperf JSON in that directory"}
    cmd = [sys.executable, "-m", "pyperf", "compare_to", str(old_file), str(new_all), "-G",
           "--min-speed", "5"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    text = proc.stdout + (proc.stderr if proc.returncode else "")
    slower: list[str] = []
    section = None
    for line in text.splitlines():
        if line.startswith(("Slower", "Faster", "Benchmark hidden", "Geometric")):
            section = line.split()[0]
        elif section == "Slower" and line.startswith("- "):
            slower.append(line[2:])
    regressions = [s for s in slower if is_flowrt_side(s.split(":", 1)[0])]
    machines = set()
    for path in (old_file, new_all):
        try:
            for stat in load_pyperf(path).values():
                machines.add((stat.meta.get("hostname"), stat.meta.get("cpu_model_name"),
                              stat.meta.get("python_version")))
                break
        except Exception:
            pass
    shown_new = os.path.relpath(new_all, ROOT) if new_all.is_relative_to(ROOT) else new_all
    return {"old": shown_old, "command": " ".join(["python -m pyperf compare_to", shown_old,
                                                  str(shown_new), *cmd[6:]]),
            "output": text, "slower": slower, "regressions": regressions,
            "same_machine": len(machines) <= 1, "machines": sorted(map(str, machines))}


def comparison_lines(c: dict[str, Any]) -> list[str]:
    lines = [f"## Regressions against `{c['old']}`", ""]
    if "error" in c:
        return [*lines, f"Not compared: {c['error']}.", ""]
    if not c["same_machine"]:
        lines += ["**The earlier run was made on another machine or Python "
                  f"({'; '.join(c['machines'])}): the comparison says little.**", ""]
    lines += [f"`{c['command']}` (pyperf's comparison of the means, significance tested; "
              "changes under 5% not shown). A quick run takes its values from one worker "
              "process per benchmark, so sizeable changes between two quick runs of the "
              "same code are common; confirm a regression with the family's full run "
              "(`python perf/run.py --only FAMILY`) before acting on it.", ""]
    if c["regressions"]:
        lines += ["flowrt benchmarks that got slower:", ""]
        lines += [f"- {s}" for s in c["regressions"]]
    else:
        lines.append("No flowrt benchmark got significantly slower.")
    others = [s for s in c["slower"] if s not in c["regressions"]]
    if others:
        lines += ["", f"Baselines that got slower too ({len(others)}; when they move with "
                  "flowrt's, the machine moved):", ""]
        lines += [f"- {s}" for s in others[:20]]
        if len(others) > 20:
            lines.append(f"- ... and {len(others) - 20} more")
    lines += ["", "<details><summary>full compare_to output</summary>", "", "```",
              c["output"].rstrip(), "```", "", "</details>", ""]
    return lines


# -- main ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu_model": cpu, "cpus": os.cpu_count(), "platform": platform.platform(),
            "hostname": platform.node(),
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "executable": sys.executable}


#: optional peers a user might pick instead: module -> (name, where the report uses it)
PEERS = {
    "distributed": ("Dask distributed (LocalCluster)",
                    "measured in Executors (CPU-bound nodes, and the per-node hop with "
                    "no-op nodes)"),
    "pydantic_graph": ("pydantic-graph", "no harness yet"),
    "hamilton": ("Hamilton (sf-hamilton)", "no harness yet"),
    "prefect": ("Prefect", "no harness yet (a local server costs ms per task)"),
}


def peers() -> dict[str, bool]:
    return {module: importlib.util.find_spec(module) is not None for module in PEERS}


def provenance() -> dict[str, Any]:
    """Which flowrt was measured: the commit, and the files of flowrt/ changed on top."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  check=False, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    changed = [line[3:] for line in git("status", "--porcelain", "--", "flowrt").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD") or "unknown",
            "subject": git("log", "-1", "--format=%s"), "flowrt_changed": changed}


def run_family(family: Family, quick: bool, results: Path, verbose: bool) -> dict[str, Any]:
    missing = [m for m in family.requires if importlib.util.find_spec(m) is None]
    if missing:
        return {"status": "skipped", "why": f"needs {', '.join(missing)}, not installed "
                "(the `dask` extra)", "seconds": 0.0}
    out = results / f"{family.name}.json"
    log = results / f"{family.name}.log"
    cmd = family.command(quick, out)
    t0 = time.monotonic()
    with log.open("w", encoding="utf-8") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        assert proc.stdout is not None
        for line in proc.stdout:
            fh.write(line)
            if verbose:
                sys.stdout.write(line)
        rc = proc.wait()
    seconds = time.monotonic() - t0
    if rc != 0 or not out.exists():
        tail = log.read_text(encoding="utf-8").strip().splitlines()[-3:]
        return {"status": "failed", "why": f"exit status {rc}, see perf/results/"
                f"{family.name}.log: {' / '.join(tail)[:300]}", "seconds": seconds,
                "command": cmd}
    return {"status": "ok", "seconds": seconds, "command": cmd}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="families: " + ", ".join(BY_NAME))
    parser.add_argument("--quick", action="store_true",
                        help="light settings: every family in under 5 minutes on 2 cores")
    parser.add_argument("--only", action="append", choices=list(BY_NAME), metavar="FAMILY",
                        help="run only this family (repeatable); see --list")
    parser.add_argument("--compare", metavar="OLD", type=Path,
                        help="an earlier pyperf JSON file or results directory: show "
                             "regressions (pyperf compare_to) and put them in the report")
    parser.add_argument("--list", action="store_true", help="list the families and exit")
    parser.add_argument("--report-only", action="store_true",
                        help="do not run anything: rebuild the report and the plots from "
                             "the run recorded in the results directory")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="where the JSON and logs go (default: perf/results)")
    parser.add_argument("--report", type=Path, default=REPORT,
                        help="the report to write (default: perf/REPORT.md)")
    parser.add_argument("--plots", type=Path, default=PLOTS,
                        help="where the PNG plots go (default: perf/plots)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="stream the harnesses' output (it always goes to the logs)")
    args = parser.parse_args(argv)

    if args.list:
        for f in FAMILIES:
            print(f"{f.name:<22} perf/{f.script:<32} {f.title}")
        return 0
    results: Path = args.results
    results.mkdir(parents=True, exist_ok=True)
    run_file = results / "run.json"

    # keep the file to compare with before this run replaces anything
    compare_src: Path | None = None
    tmp = Path(tempfile.mkdtemp(prefix="flowrt-perf-compare-"))
    try:
        if args.compare is not None:
            if not args.compare.exists():
                parser.error(f"--compare: {args.compare} does not exist")
            if args.compare.is_dir():
                compare_src = tmp / "old"
                compare_src.mkdir()
                for p in args.compare.glob("*.json"):
                    shutil.copy2(p, compare_src / p.name)
            else:
                compare_src = tmp / args.compare.name
                shutil.copy2(args.compare, compare_src)

        if args.report_only:
            if not run_file.exists():
                parser.error(f"--report-only: no {run_file}; run the benchmarks first")
            run = json.loads(run_file.read_text())
        else:
            run = run_all(args, results)
            run_file.write_text(json.dumps(run, indent=1))

        r = load_results(results, run)
        all_json = results / "all.json"
        count = merge_pyperf([results / f"{n}.json" for n, i in run["families"].items()
                              if i.get("status") == "ok"], all_json)
        comparison = None
        if compare_src is not None and count:
            comparison = compare(compare_src, all_json, results, str(args.compare))
            print("\n== pyperf compare_to " + str(args.compare) + " -> this run")
            text = comparison.get("output") or comparison.get("error") or ""
            for line in text.splitlines():  # the long list of unchanged names: counted
                print(line.split(":", 1)[0] if line.startswith("Benchmark hidden") else line)
            if comparison.get("regressions"):
                print("flowrt benchmarks that got slower:")
                for s in comparison["regressions"]:
                    print("  - " + s)
        plots = plot_all(r, args.plots)
        write_report(r, args.report, plots, comparison)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    failed = [n for n, i in run["families"].items() if i.get("status") == "failed"]
    print(f"\nreport: {args.report}")
    for png in plots.values():
        print(f"plot:   {png}")
    print(f"pyperf: {all_json} ({count} benchmarks; python -m pyperf compare_to OLD.json "
          f"{all_json})")
    if not args.report_only:
        print(f"wall time: {run['wall_s']:.0f} s ({run['wall_s'] / 60:.1f} min)")
    if failed:
        print(f"FAILED families: {', '.join(failed)} (see their logs)", file=sys.stderr)
        return 1
    return 0


def run_all(args: argparse.Namespace, results: Path) -> dict[str, Any]:
    families = [BY_NAME[n] for n in args.only] if args.only else list(FAMILIES)
    previous = results / "previous"
    previous.mkdir(exist_ok=True)
    for f in families:  # the earlier run's files of these families, kept one generation
        for suffix in (".json", ".log"):
            p = results / f"{f.name}{suffix}"
            if p.exists():
                shutil.move(str(p), str(previous / p.name))
    mode = "quick" if args.quick else "full"
    source_before = provenance()
    started = dt.datetime.now().astimezone()
    t0 = time.monotonic()
    info: dict[str, dict[str, Any]] = {}
    for i, f in enumerate(families, 1):
        print(f"[{i}/{len(families)}] {f.name}: perf/{f.script} ({mode}) ...", flush=True)
        info[f.name] = run_family(f, args.quick, results, args.verbose)
        status = info[f.name]["status"]
        extra = f": {info[f.name]['why']}" if status != "ok" else ""
        print(f"      {status} in {info[f.name]['seconds']:.0f} s "
              f"(total {time.monotonic() - t0:.0f} s){extra}", flush=True)
    wall = time.monotonic() - t0
    finished = dt.datetime.now().astimezone()
    source = provenance()
    command = "python perf/run.py" + (" --quick" if args.quick else "") + "".join(
        f" --only {n}" for n in args.only or ()) + (
        f" --compare {args.compare}" if args.compare else "")
    try:
        where = str(results.resolve().relative_to(ROOT))
    except ValueError:
        where = str(results)
    return {"mode": mode, "command": command, "families": info, "wall_s": wall,
            "results": where,
            "started": started.strftime("%Y-%m-%d %H:%M:%S"),
            "finished": finished.strftime("%Y-%m-%d %H:%M:%S"),
            "tz": started.strftime("%Z %z"), "machine": machine(), "source": source,
            "source_changed_during_run": source != source_before, "peers": peers(),
            "source_before": source_before}


if __name__ == "__main__":
    sys.exit(main())
