"""The report's plots: one :class:`Plot` per PNG, each drawn from the run's figures.

A plot belongs to a family (registry.py lists it there) and is linked from that family's
section of the report. Its ``draw`` returns a matplotlib figure, or None when the run
measured nothing it shows (``--only`` another family, a quick run without those sizes);
:func:`plot_all` saves the figures. matplotlib is imported only when plots are drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .results import Results
from .seed import SEED_DAG, SEED_DEPS
from .targets import spec

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
    # scaling (issue 18): flowrt's build and compile beside its run
    "flowrt_build": dict(color="#d62728", marker=".", lw=1.0, ls=":", zorder=4),
    "flowrt_compile": dict(color="#d62728", marker="x", lw=1.0, ls="-.", zorder=4),
}

DPI = 110


@dataclass(frozen=True)
class Plot:
    """A PNG of the report: ``name`` is its alt text, ``file`` its name under --plots."""

    name: str
    file: str
    draw: Callable[[Results, str], Any]  # (results, stamp) -> a Figure, or None


#: why the report has no plots when matplotlib cannot be imported
NO_MATPLOTLIB = ("matplotlib is not installed (`pip install matplotlib`, or the `perf` "
                 "extra); the tables are complete. Draw them later with `python "
                 "perf/run.py --report-only`")


def missing_plotter() -> str | None:
    """Why plots cannot be drawn here (:data:`NO_MATPLOTLIB`), or None when they can."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return NO_MATPLOTLIB
    return None


def plot_all(r: Results, out_dir: Path, plots: Iterable[Plot]) -> dict[str, Path]:
    """Draw ``plots`` into ``out_dir``; the PNGs written, by plot name (none when
    matplotlib is not installed: :func:`missing_plotter` says so, and the report too)."""
    if missing_plotter() is not None:
        return {}
    pyplot()  # the Agg backend, before anything draws
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    stamp = (f"{r.run['machine']['python']}, {r.run['machine']['cpu_model']} x"
             f"{r.run['machine']['cpus']}, {r.run['started'][:10]}, {r.run['mode']} run")
    for plot in plots:
        fig = plot.draw(r, stamp)
        if fig is None:
            continue
        written[plot.name] = out_dir / plot.file
        fig.savefig(written[plot.name], dpi=DPI)
        plt.close(fig)
    return written


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plain(value: float, _pos: int) -> str:
    """Tick labels as plain numbers (0.5, 2, 10, 100) rather than 2 x 10^0."""
    return f"{value:g}"


def per_node_axes(ax: Any, series: dict[str, list[tuple[int, float]]], title: str,
                  seed: list[tuple[int, float]] | None = None) -> None:
    """Time per node (us) against nodes, log-log, one line per runner (and the seed's)."""
    from matplotlib.ticker import FuncFormatter, LogLocator

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


def topology_panels(topologies: list[str], draw: Callable[[Any, str], None]) -> Any:
    """A figure of one panel per topology side by side, each filled by ``draw(ax, topology)``;
    returns ``(figure, axes)``."""
    fig, axes = pyplot().subplots(1, len(topologies), figsize=(4.6 * len(topologies), 4.4),
                                  squeeze=False)
    for ax, topo in zip(axes[0], topologies, strict=True):
        draw(ax, topo)
    return fig, axes


def execution_per_node(r: Results, stamp: str) -> Any:
    """Execution: time per node against node count, one panel per topology."""
    topologies = [t for t in ("linear", "fan_out", "binary_tree", "random")
                  if r.names(f"Execution/{t}_*/flowrt")]
    if not topologies:
        return None

    def draw(ax: Any, topo: str) -> None:
        series: dict[str, list[tuple[int, float]]] = {}
        for name in r.names(f"Execution/{topo}_*/*"):
            _, size, runner = name.split("/")
            n = int(size.rsplit("_", 1)[1])
            series.setdefault(runner, []).append((n, r.stats[name].median))
        per_node_axes(ax, {k: series[k] for k in RUNNER_STYLE if k in series},
                      f"{topo}: no-op async nodes")

    fig, axes = topology_panels(topologies, draw)
    labels: dict[str, Any] = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            labels.setdefault(label, handle)
    fig.legend(list(labels.values()), list(labels), fontsize=8, loc="center right")
    fig.suptitle(f"Execution: time per node against node count (log-log) - {stamp}",
                 fontsize=9)
    fig.tight_layout(rect=(0, 0, 0.89, 1))
    return fig


def dependency_resolution_per_node(r: Results, stamp: str) -> Any:
    """Dependency resolution: the flat line (and the seed's quadratic one)."""
    if not r.names("DependencyResolution/*"):
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), squeeze=False)
    for ax, topo in zip(axes[0], ("Linear", "Diamond"), strict=True):
        series: dict[str, list[tuple[int, float]]] = {}
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
    return fig


def dag_construction_per_node(r: Results, stamp: str) -> Any:
    """DAG construction: time per node of build + compile against node count."""
    if not r.names("DAGConstruction/*"):
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.4))
    series: dict[str, list[tuple[int, float]]] = {}
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
    return fig


def io_scaling_wall(r: Results, stamp: str) -> Any:
    """I/O scaling: wall time against workers, with the ideal and the target's line."""
    names = r.names("IOScaling/W=*/flowrt")
    if not names:
        return None
    plt = pyplot()
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
    bar = spec("io_scaling", "within_ideal")
    ideal, over = bar["ideal"], bar["limit"]
    ax.axhline(ideal, color="k", lw=1, label=f"ideal: 32 x 10 ms = {ideal} s")
    ax.axhline(ideal * (1 + over), color="k", lw=1, ls="--",
               label=f"target: ideal + {over:.0%}")
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
    return fig


EXECUTION_PER_NODE = Plot("execution_per_node", "execution_per_node.png",
                          execution_per_node)
DEPENDENCY_RESOLUTION = Plot("dependency_resolution_per_node", "dependency_resolution.png",
                             dependency_resolution_per_node)
DAG_CONSTRUCTION = Plot("dag_construction_per_node", "dag_construction.png",
                        dag_construction_per_node)
IO_SCALING = Plot("io_scaling_wall", "io_scaling.png", io_scaling_wall)


# scaling (issue 18)
def scaling_per_node(r: Results, stamp: str) -> Any:
    """Scaling: run time per node against nodes (1k..1M), one panel per topology."""
    topologies = [t for t in ("random", "linear", "fan_out", "binary_tree")
                  if r.names(f"Scaling/{t}/*/flowrt")]
    if not topologies:
        return None

    def draw(ax: Any, topo: str) -> None:
        series: dict[str, list[tuple[int, float]]] = {}
        for runner in ("flowrt", "graphlib_wait", "flowrt_compile", "flowrt_build"):
            for name in r.names(f"Scaling/{topo}/*/{runner}"):
                n = int(name.split("/")[2])
                series.setdefault(runner, []).append((n, r.stats[name].median))
        per_node_axes(ax, series, f"{topo}: CPU time per node")

    fig, axes = topology_panels(topologies, draw)
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Scaling: time per node against node count (log-log; flat = O(1) per "
                 f"node) - {stamp}", fontsize=9)
    fig.tight_layout()
    return fig


SCALING = Plot("scaling_per_node", "scaling.png", scaling_per_node)
