"""Helpers the ``perf/bench_*.py`` harnesses share.

Every harness is a pyperf script: ``python perf/bench_X.py [pyperf options]``. On top
of pyperf's own options each one takes:

``--quick``
    pyperf's ``--fast`` with at most ``QUICK_PROCESSES`` worker processes, and no
    100,000-node sizes. When pyperf's statistics are given explicitly (``-p``, ``-n``,
    ``-w``, ``-l``, ``--min-time``, ``--fast``, ...), they are kept and ``--quick`` only
    drops the large sizes (``perf/run.py --quick`` does so). Without it a harness runs
    in *full* mode: pyperf's default statistics and the 100,000-node sizes too.
``--select SUBSTR``
    only the benchmarks whose name contains SUBSTR (repeatable).

pyperf runs every benchmark in fresh worker processes, and each worker re-executes the
script up to the benchmark it was asked for. So nothing is built at import time: the
time functions build what they need on first use, through ``functools.cache``d setup
functions, outside the timed region.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyperf

import flowrt

#: Worker processes per benchmark in --quick mode (pyperf's --fast alone uses 10; 3 is its minimum).
QUICK_PROCESSES = 3
#: Worker processes for the slowest benchmarks (100,000 nodes) in full mode.
HEAVY_PROCESSES = 6

clock = time.perf_counter

#: This process is pyperf's loop-calibration worker: its runs are not kept as values, so
#: a harness may skip its once-per-process result checks here (the value workers check).
CALIBRATING = "--calibrate-loops" in sys.argv


async def noop(*args: Any) -> None:
    """The no-op async node: takes its dependencies' outputs positionally."""
    return None


def noop_sync(*args: Any) -> None:
    """The no-op sync node, for the Dask baselines (Dask does not await coroutines)."""
    return None


def build_workflow(
    graph: Mapping[str, Sequence[str]], fn: Callable[..., Any] = noop, name: str = "bench"
) -> flowrt.Workflow:
    """The public builder path: ``wf.add(name, fn, deps=deps)`` for every item, in order."""
    wf = flowrt.Workflow(name)
    for node, deps in graph.items():
        wf.add(node, fn, deps=deps)
    return wf


def check_result(result: flowrt.RunResult, n: int) -> None:
    """Fail loudly if a run did not run every node (a benchmark must do the work)."""
    if not result.ok or len(result.outputs) != n:
        raise RuntimeError(f"flowrt run incomplete: {result.status}, "
                           f"{len(result.outputs)} of {n} outputs")


def check_outputs(out: Mapping[str, Any] | Sequence[Any], n: int, who: str) -> None:
    if len(out) != n:
        raise RuntimeError(f"{who} produced {len(out)} outputs, expected {n}")


#: pyperf options that choose how many values are taken; given, --quick adds no --fast
STATISTICS_OPTIONS = ("--fast", "--rigorous", "--debug-single-value", "-p", "--processes",
                      "-n", "--values", "-w", "--warmups", "-l", "--loops", "--min-time")


def _explicit_statistics(argv: Sequence[str]) -> bool:
    for a in argv:
        opt = a.split("=", 1)[0]
        if opt in STATISTICS_OPTIONS or (len(a) > 2 and a[:2] in ("-p", "-n", "-w", "-l")
                                         and a[2:].isdigit()):
            return True
    return False


class Harness:
    """A pyperf ``Runner`` with ``--quick``/``--select``, result collection and a summary."""

    def __init__(self, description: str) -> None:
        argv = sys.argv
        self.worker = "--worker" in argv
        quick = "--quick" in argv
        # --quick means pyperf's --fast, unless the caller chose the statistics itself
        # (perf/run.py passes -p/-n/-w/--min-time for its lighter quick mode).
        if quick and not self.worker and not _explicit_statistics(argv):
            argv.append("--fast")
        self.runner = pyperf.Runner(add_cmdline_args=self._worker_args)
        parser = self.runner.argparser
        parser.description = description
        parser.add_argument("--quick", action="store_true",
                            help="pyperf --fast with fewer processes; no 100,000-node sizes")
        parser.add_argument("--select", action="append", default=[], metavar="SUBSTR",
                            help="only benchmarks whose name contains SUBSTR (repeatable)")
        self.args = self.runner.parse_args()
        self.quick: bool = self.args.quick
        explicit_p = any(a in ("-p", "--processes") or a.startswith("--processes=")
                         or (a.startswith("-p") and a[2:].isdigit()) for a in argv)
        self._explicit_processes = explicit_p
        if self.quick and not self.worker and not explicit_p:
            self.args.processes = min(self.args.processes, QUICK_PROCESSES)
        self.results: dict[str, pyperf.Benchmark] = {}

    @staticmethod
    def _worker_args(cmd: list[str], args: Any) -> None:
        if args.quick:
            cmd.append("--quick")
        for s in args.select:
            cmd.extend(("--select", s))

    @property
    def full(self) -> bool:
        return not self.quick

    def selected(self, name: str) -> bool:
        return not self.args.select or any(s in name for s in self.args.select)

    def bench(self, name: str, time_func: Callable[..., float], *args: Any,
              inner_loops: int | None = None, heavy: bool = False,
              metadata: dict[str, Any] | None = None) -> pyperf.Benchmark | None:
        """``runner.bench_time_func``; ``heavy`` caps the worker processes (100k nodes)."""
        if not self.selected(name):
            return None
        saved = self.args.processes
        if heavy and not self._explicit_processes:
            self.args.processes = min(saved, HEAVY_PROCESSES)
        try:
            bench = self.runner.bench_time_func(name, time_func, *args,
                                                inner_loops=inner_loops, metadata=metadata)
        finally:
            self.args.processes = saved
        if bench is not None and not self.worker:
            self.results[name] = bench
        return bench

    # -- the summary, printed by the manager process only -------------------------

    def median(self, name: str) -> float | None:
        bench = self.results.get(name)
        return bench.median() if bench is not None else None

    def summary(self, title: str, rows: Sequence[tuple[str, str, str | None]],
                unit: str = "us", note: str = "") -> None:
        """Print ``label, median, spread, ratio`` for ``(label, bench name, reference)`` rows.

        ``reference`` is the bench name the ratio is taken against (None: no ratio).
        """
        if self.worker or not any(name in self.results for _, name, _ in rows):
            return
        scale = {"ns": 1e9, "us": 1e6, "ms": 1e3, "s": 1.0}[unit]
        print()
        print(f"== {title}")
        if note:
            print(f"   {note}")
        width = max(len(label) for label, _, _ in rows)
        for label, name, ref in rows:
            bench = self.results.get(name)
            if bench is None:
                continue
            values = bench.get_values()
            med = statistics.median(values)
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            line = f"   {label:<{width}}  {med * scale:12.3f} {unit} +- {spread * scale:9.3f}"
            ref_med = self.median(ref) if ref else None
            if ref_med:
                line += f"   {med / ref_med:7.3f}x {ref.rsplit('/', 1)[-1]}"  # type: ignore[union-attr]
            print(line)

    def ratio(self, name: str, ref: str) -> float | None:
        a, b = self.median(name), self.median(ref)
        return a / b if a is not None and b else None


def timeit_loop(loops: int, fn: Callable[[], Any]) -> float:
    """Seconds for ``loops`` calls of ``fn`` (one call of pyperf's outer loop each)."""
    t0 = clock()
    for _ in range(loops):
        fn()
    return clock() - t0


def python_line() -> str:
    """Which Python and machine produced a figure."""
    import os
    import platform

    return (f"{platform.python_implementation()} {platform.python_version()} on "
            f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform(terse=True)}")
