"""A run's figures, read back from its result files.

Every family's file becomes a set of :class:`Stat` (a benchmark name and its values):
pyperf files as they are, the other kinds through their readers (registry.py names the
reader of each family). :func:`merge_pyperf` writes one pyperf file of a whole run (what
``--compare`` compares).
"""

from __future__ import annotations

import fnmatch
import json
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
    """Every figure of one run (``stats``, by benchmark name) and the run's record."""

    stats: dict[str, Stat]
    run: dict[str, Any]  # run.json: mode, command, families, machine, source...

    def get(self, name: str | None) -> Stat | None:
        return self.stats.get(name) if name else None

    def median(self, name: str | None) -> float | None:
        s = self.get(name)
        return s.median if s is not None else None

    def names(self, pattern: str) -> list[str]:
        return [n for n in self.stats if fnmatch.fnmatchcase(n, pattern)]


#: reads one family's result file into its benchmarks
Reader = Callable[[Path], dict[str, Stat]]


def read_pyperf(path: Path) -> dict[str, Stat]:
    """A pyperf JSON file (``-o``): every benchmark with values, with its metadata."""
    import pyperf

    out: dict[str, Stat] = {}
    for bench in pyperf.BenchmarkSuite.load(str(path)).get_benchmarks():
        values = list(bench.get_values())
        if not values:
            continue
        out[bench.get_name()] = Stat(bench.get_name(), values, bench.get_unit(),
                                     dict(bench.get_metadata()))
    return out


def read_memory(path: Path) -> dict[str, Stat]:
    """``bench_memory.py``'s JSON: ``Memory/<scenario>/{peak,retained}``, bytes per node."""
    stats: dict[str, Stat] = {}
    for row in json.loads(path.read_text())["rows"]:
        for what in ("peak", "retained"):
            key = f"Memory/{row['scenario']}/{what}"
            stats[key] = Stat(key, [row[f"{what}_per_node"]], "byte")
    return stats


def timed_reader(prefix: str) -> Reader:
    """A plain timed script's JSON (``bench_executors.py``'s ``--json``).

    ``{"rows": {name: {"times_s": [...], "median_s": s, "nodes": n}}}``: each row becomes
    ``<prefix>/<name>``, time per node (``times_s`` if present, else the median alone;
    ``nodes`` defaults to 1, time per run).
    """

    def read(path: Path) -> dict[str, Stat]:
        stats: dict[str, Stat] = {}
        for key, row in json.loads(path.read_text())["rows"].items():
            times = row.get("times_s") or [row["median_s"]]
            nodes = row.get("nodes", 1)
            name = f"{prefix}/{key}"
            stats[name] = Stat(name, [t / nodes for t in times])
        return stats

    return read


def load_results(results: Path, run: dict[str, Any], readers: Mapping[str, Reader]) -> Results:
    """The figures of every family that ran to the end in ``run`` (run.json).

    ``readers``: each family's reader, by family name (``registry.READERS``).
    """
    stats: dict[str, Stat] = {}
    for name, info in run["families"].items():
        if info.get("status") != "ok":
            continue
        stats.update(readers[name](results / f"{name}.json"))
    return Results(stats, run)


def merge_pyperf(paths: Iterable[Path], out: Path) -> int:
    """One pyperf file holding every benchmark of ``paths`` (for compare_to)."""
    paths = list(paths)
    if not paths:  # nothing ran to the end: no need for pyperf to say so
        return 0
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


# scaling (issue 18)
def read_scaling(path: Path) -> dict[str, Stat]:
    """``bench_scaling.py``'s JSON: ``Scaling/<topology>/<n>/<runner>`` time per node
    (CPU time), and ``Scaling/<topology>/<n>/peak_rss``, megabytes (in ``meta``, the
    mapping's own share as ``graph_mb``)."""
    stats: dict[str, Stat] = {}
    for key, row in json.loads(path.read_text())["rows"].items():
        name = f"Scaling/{key}"
        if key.endswith("/rss"):
            name = name[:-len("rss")] + "peak_rss"
            stats[name] = Stat(name, [row["peak_mb"]], "megabyte",
                               {"graph_mb": row["graph_mb"]})
            continue
        stats[name] = Stat(name, [t / row["nodes"] for t in row["times_s"]])
    return stats
