"""The benchmark families: what runs each one, how its output is read, where it is reported.

One :class:`Family` entry per harness run (a harness may serve two families with other
arguments: ``execution`` and ``io_scaling``). The order of :data:`FAMILIES` is the order
of the runs and of the report's sections. To add a family, see "Adding a family" in
perf/README.md.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import plots, tables
from .paths import PERF
from .plots import Plot
from .results import Reader, Results, read_memory, read_pyperf, read_scaling, timed_reader
from .tables import Table

#: pyperf options for --quick: one worker process of 3 values (and one calibration run)
QUICK_PYPERF = ("--quick", "-p", "1", "-n", "3", "-w", "1", "--min-time", "0.01")


@dataclass(frozen=True)
class Kind:
    """How a harness is driven: the options ``--quick`` adds, the one naming its output."""

    name: str
    quick: tuple[str, ...]
    output: str


#: a pyperf ``Runner`` script (takes pyperf's options; writes pyperf JSON with ``-o``)
PYPERF = Kind("pyperf", QUICK_PYPERF, "-o")
#: a plain script with its own ``--quick``, writing JSON with ``-o``
SCRIPT = Kind("script", ("--quick",), "-o")
#: the same, writing JSON with ``--json``
SCRIPT_JSON = Kind("script", ("--quick",), "--json")


@dataclass(frozen=True)
class Family:
    """A harness run and its part of the report.

    ``name`` is what ``--only`` takes and names ``results/<name>.json`` and ``.log``;
    ``script`` the harness in perf/, run as ``script *args`` (plus the kind's quick
    options and ``quick_args`` with ``--quick``, then the kind's output option);
    ``title`` what ``--list`` shows. The report's section for it is headed ``section``,
    cites the seed's ``seed_ref``, holds the tables ``tables`` builds from the run's
    figures, then the Markdown lines ``more`` returns, then ``plots``. ``read`` turns
    the result file into figures. A family whose ``requires`` modules are missing is
    skipped with a note naming them and the pip ``extra`` that installs them.
    ``flowrt_names``: fnmatch patterns of benchmarks that measure flowrt although their
    last part does not start with "flowrt" (``--compare`` lists those first when they
    get slower).
    """

    name: str
    script: str
    title: str
    section: str
    seed_ref: str
    tables: Callable[[Results], list[Table]]
    kind: Kind = PYPERF
    read: Reader = read_pyperf
    args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    extra: str = ""
    more: Callable[[Results], list[str]] | None = None
    plots: tuple[Plot, ...] = ()
    flowrt_names: tuple[str, ...] = ()

    def command(self, quick: bool, out: Path) -> list[str]:
        cmd = [sys.executable, str(PERF / self.script), *self.args]
        if quick:
            cmd += [*self.kind.quick, *self.quick_args]
        return [*cmd, self.kind.output, str(out)]


FAMILIES: tuple[Family, ...] = (
    Family("dag_construction", "bench_dag_construction.py", "DAG construction",
           "DAG construction", "DAG Construction Performance; DAG Topology Performance",
           tables.dag_tables, plots=(plots.DAG_CONSTRUCTION,)),
    Family("execution", "bench_execution.py", "Execution and focused concurrency",
           "Execution: no-op DAGs and focused concurrency",
           "Scalability with Node Count; Parallel Execution Performance",
           tables.execution_tables, args=("--no-scaling",),
           plots=(plots.EXECUTION_PER_NODE,)),
    Family("io_scaling", "bench_execution.py", "I/O scaling", "I/O scaling with workers",
           "Concurrency Scaling", tables.io_scaling_tables, args=("--select", "IOScaling"),
           quick_args=("--scaling-repeats", "3"), plots=(plots.IO_SCALING,)),
    Family("dependency_resolution", "bench_dependency_resolution.py",
           "Dependency resolution", "Dependency resolution",
           "Dependency Resolution Performance", tables.dependency_tables,
           more=tables.flatness_table, plots=(plots.DEPENDENCY_RESOLUTION,)),
    Family("workflow_data", "bench_workflow_data.py", "WorkflowData", "WorkflowData",
           "WorkflowData Set/Get; Arena Reset; Arena vs. Standard Memory Management",
           tables.workflow_data_tables, flowrt_names=("*/Arena", "*/ArenaCustomBlock")),
    Family("interning", "bench_interning.py", "String interning", "String interning",
           "String Interning Performance", tables.interning_tables),
    Family("status", "bench_status.py", "Node status", "Node status",
           "Core Component Benchmarks: Node Status (no figures)", tables.status_tables,
           flowrt_names=("*/StatusBoard",)),
    Family("durable", "bench_durable.py", "Durable versus in-memory runs",
           "Durable versus in-memory runs", "(not in the seed; issue 4's target)",
           tables.durable_tables, flowrt_names=("durable/*",)),
    Family("maps", "bench_maps.py", "Dynamic maps: items versus nodes and peers",
           "Dynamic maps: per-item overhead, peers, durable items",
           "(not in the seed; issue 13's figures)", tables.maps_tables,
           requires=("dask",), extra="dask", flowrt_names=("maps/*/map", "maps/*/sqlite")),
    Family("scenarios", "bench_scenarios.py", "Real-world scenarios",
           "Real-world scenarios end to end", "Overview: real-world scenarios (no figures)",
           tables.scenario_tables),
    Family("memory", "bench_memory.py", "Memory per node", "Memory per node",
           "DAG Construction Performance (B/op)", tables.memory_tables, kind=SCRIPT,
           read=read_memory, flowrt_names=("Memory/flowrt*",)),
    Family("executors", "bench_executors.py", "Executors: threads, processes, Dask",
           "Executors: processes and Dask", "(not in the seed; issue 7's target)",
           tables.executor_tables, kind=SCRIPT_JSON, read=timed_reader("Executors"),
           requires=("distributed",), extra="dask"),
    Family("queue", "bench_queue.py", "The work queue: workers, latency, DBOS",
           "The work queue: worker processes on SQLite, beside DBOS",
           "(not in the seed; issue 14's figures)", tables.queue_tables, kind=SCRIPT_JSON,
           read=timed_reader("Queue"), flowrt_names=("Queue/*/flowrt",)),
    Family("waits", "bench_waits.py", "Park and wake: signal to successor",
           "Park and wake: from `rt.signal` to the waiting node's successor starting",
           "(not in the seed; issue 14's figure)", tables.waits_tables, kind=SCRIPT_JSON,
           read=timed_reader("Waits"), flowrt_names=("Waits/*",)),
    Family("postgres", "bench_postgres.py", "Durable runs on PostgreSQL",
           "Durable runs on PostgreSQL versus in memory, beside SQLite",
           "(not in the seed; issue 15's figures)", tables.postgres_tables,
           requires=("psycopg",), extra="postgres",
           flowrt_names=("postgres/*/postgres", "postgres/*/sqlite")),
    Family("fleet", "bench_fleet.py", "The work queue on PostgreSQL: workers, NOTIFY, DBOS",
           "The work queue on PostgreSQL: worker processes, beside SQLite and DBOS on the "
           "same server", "(not in the seed; issue 15's figures)", tables.fleet_tables,
           kind=SCRIPT_JSON, read=timed_reader("Fleet"), requires=("psycopg",),
           extra="postgres", flowrt_names=("Fleet/*/flowrt_*",)),
    # -- caching --
    Family("cache", "bench_cache.py", "Cached nodes: a hit against running the node",
           "Cached nodes: a hit's cost per node against running it",
           "(not in the seed; issue 16's figures)", tables.cache_tables,
           flowrt_names=("cache/*",)),
    Family("otel", "bench_otel.py", "OpenTelemetry's cost per node",
           "OpenTelemetry: off, installed without an SDK, and with the SDK",
           "(not in the seed; issue 16's figures)", tables.otel_tables,
           flowrt_names=("otel/*",)),
)
# branches (issue 13)
FAMILIES += (
    Family("branch", "bench_branch.py", "Branch overhead", "Branch overhead: bypassed nodes",
           "(not in the seed; issue 13's figure)", tables.branch_tables,
           flowrt_names=("Branch/*",)),
)
# scaling (issue 18)
FAMILIES += (
    Family("scaling", "bench_scaling.py", "Scaling: 1k to 1M nodes",
           "Scaling: build, compile, run and peak RSS from 1,000 to 1,000,000 nodes",
           "(not in the seed; issue 18's figures)", tables.scaling_tables, kind=SCRIPT_JSON,
           read=read_scaling, more=tables.scaling_by_size, plots=(plots.SCALING,)),
)
BY_NAME = {f.name: f for f in FAMILIES}
READERS = {f.name: f.read for f in FAMILIES}
#: every family's flowrt_names
FLOWRT_NAMES = tuple(p for f in FAMILIES for p in f.flowrt_names)


#: optional peers a user might pick instead: module -> (name, where the report uses it)
PEERS = {
    "distributed": ("Dask distributed (LocalCluster)",
                    "measured in Executors (CPU-bound nodes, and the per-node hop with "
                    "no-op nodes)"),
    "pydantic_graph": ("pydantic-graph", "no harness yet"),
    "hamilton": ("Hamilton (sf-hamilton)", "no harness yet"),
    "prefect": ("Prefect", "no harness yet (a local server costs ms per task)"),
    "dbos": ("DBOS (on SQLite and on PostgreSQL)", "measured in The work queue and The work "
             "queue on PostgreSQL (per-step durable overhead, queue throughput with 1, 2, 4 "
             "worker processes)"),
}
