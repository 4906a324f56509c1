"""A run as one self-contained HTML page: the graph, a timeline and the node table.

``python -m flowrt report RUN_ID --store runs.db -o run.html`` writes one; from Python,
:func:`render` takes a stored run (``SQLiteStore(...).load(run_id)``) or a
:class:`~flowrt.RunResult`::

    from flowrt.tools.report import write
    write(result, "run.html")

The page has no script and loads nothing: styles and pictures (inline SVG) are in the
file, so it opens anywhere, offline, and can be mailed or kept as a CI artifact.

- **The graph**, layered by level (roots on top, each node one level below its deepest
  dependency), nodes coloured by status with :data:`flowrt.tools.viz.COLOURS`; hovering a
  node shows its status, attempts, time and error.
- **The timeline**: one bar per node from the start of its first attempt to its end,
  labelled with its attempts when it had more than one.
- **The node table**: status, attempts, start, duration and error (with the stored
  traceback) of every node.
- **Sub-workflows**, when the child runs are given (``children=``; ``flowrt report``
  reads them from the store): each sub-workflow node's child run drawn nested under
  the node's name -- its status, node counts and graph, and its own child runs in
  turn -- and, for a mapped sub-workflow, a table of its item runs with the first
  :data:`MAX_CHILD_GRAPHS` drawn. A sub-workflow node's box in the graph links to its
  section (a link inside the page).

Runs of more than ``max_nodes`` nodes (300 by default) are summarised so that the page
stays readable and small: the graph becomes one bar per level showing how its nodes
ended, the timeline shows how many nodes ran at once plus the longest nodes, and the
table lists the nodes that did not succeed and the slowest ones.
"""

from __future__ import annotations

import contextlib
import html
import itertools
import json
import math
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._engine.result import jsonable
from .._types import BY_NAME, Status
from ..durable import Store, StoredRun
from . import _format as fmt
from ._view import NodeView, RunView
from .viz import COLOURS

if TYPE_CHECKING:
    from .._engine.result import RunResult

__all__ = ["CSS", "NodeView", "RunPage", "RunView", "child_views", "render", "write"]

#: Runs with more nodes than this are summarised (see the module docs).
MAX_NODES = 300
#: At most this many bars on the timeline of a summarised run.
LONGEST = 50
#: At most this many rows of nodes that did not succeed in a summarised run's table.
MAX_UNSUCCESSFUL_ROWS = 500
#: At most this many child runs of one node are drawn nested (the rest are listed).
MAX_CHILD_GRAPHS = 12
#: At most this many child runs of one node are listed in its table.
MAX_CHILD_ROWS = 500
#: Report files are readable and writable by their owner only unless told otherwise:
#: they hold what the store holds (inputs, errors, tracebacks).
DEFAULT_MODE = 0o600

_DASH = "\u2013"  # what an empty cell shows
_DOT = " \u00b7 "  # between the parts of a label
_ORDER = ("succeeded", "cached", "failed", "cancelled", "skipped", "bypassed", "compensated",
          "compensation_failed", "waiting", "running", "pending")


def view_of_stored(stored: StoredRun) -> RunView:
    """The :class:`RunView` of a run read from a store (no workflow needed)."""
    return RunView.from_dict(stored.to_dict())


def view_of_result(result: RunResult) -> RunView:
    """The :class:`RunView` of a :class:`~flowrt.RunResult`."""
    return RunView.from_dict(result.to_dict(outputs=False))


def _view(run: StoredRun | RunResult | RunView) -> RunView:
    if isinstance(run, RunView):
        return run
    if isinstance(run, StoredRun):
        return view_of_stored(run)
    return view_of_result(run)


def child_views(store: Store, run_id: str) -> dict[str, RunView]:
    """The runs of ``store`` below ``run_id`` -- its sub-workflows' child runs
    (``run_id/node``), its mapped sub-workflows' item runs (``run_id/node/3``), theirs
    in turn -- by run id: what :func:`render`'s ``children=`` takes."""
    prefix = run_id + "/"
    views: dict[str, RunView] = {}
    for record in store.runs():
        if record.run_id.startswith(prefix):
            stored = store.load(record.run_id)
            if stored is not None:
                views[record.run_id] = view_of_stored(stored)
    return views


def render(run: StoredRun | RunResult | RunView, *, max_nodes: int = MAX_NODES,
           title: str | None = None,
           children: Mapping[str, StoredRun | RunResult | RunView] | None = None) -> str:
    """The HTML page of ``run`` (a stored run, a result, or a :class:`RunView`).

    Args:
        run: what to draw.
        max_nodes: runs of more nodes are summarised (see the module docs).
        title: the page's title (default: the workflow's name and the run id).
        children: the runs below ``run`` by run id (its sub-workflows' child runs and
            theirs: :func:`child_views` reads them from a store), drawn nested; runs
            that are not below ``run`` are ignored.
    """
    views = {rid: _view(child) for rid, child in (children or {}).items()}
    return RunPage(_view(run), max_nodes, children=views).html(title)


def write(run: StoredRun | RunResult | RunView, path: str | os.PathLike[str], *,
          max_nodes: int = MAX_NODES, mode: int = DEFAULT_MODE,
          children: Mapping[str, StoredRun | RunResult | RunView] | None = None) -> Path:
    """Write the HTML page of ``run`` to ``path`` (see :func:`render`); return the path.

    The page is written to a new temporary file beside ``path`` (a fresh random name,
    created exclusively and never through a symbolic link) which then replaces
    ``path`` in one step: a reader never sees half a page, and a link planted where
    the page or its temporary file goes is replaced, never written through.

    Args:
        run: what to draw (a stored run, a result, or a :class:`RunView`).
        path: where the page goes.
        max_nodes: runs of more nodes are summarised (see the module docs).
        mode: the file's permission bits (default 0o600: readable by its owner only,
            like a store; ``flowrt report`` gives the page its store's mode).
        children: the runs below ``run``, drawn nested (see :func:`render`).

    Raises:
        OSError: the directory is missing or not writable (nothing is left behind).
    """
    out = Path(path)
    text = render(run, max_nodes=max_nodes, children=children)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        # backslashreplace: a lone surrogate (a name decoded with surrogateescape) is
        # shown as \\udcXX rather than failing the page
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode & 0o777)
            f.write(text)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return out


# -- helpers ----------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _colour(status: str) -> str:
    s = BY_NAME.get(status)
    if s is not None:
        return COLOURS[s]
    return COLOURS[Status.PENDING]  # a status this flowrt does not know


def _in_order(present: Iterable[str]) -> list[str]:
    """The statuses ``present``, in the order of the legends (unknown ones last)."""
    present = set(present)
    return [s for s in _ORDER if s in present] + sorted(present.difference(_ORDER))


def _fit(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: max(1, chars - 1)] + "\u2026"


def _levels(nodes: Iterable[NodeView]) -> dict[str, int]:
    """Per node, the length of the longest dependency chain above it (roots: 0)."""
    nodes = list(nodes)
    deps = {n.name: [d for d in n.deps if d != n.name] for n in nodes}
    known = set(deps)
    dependents: dict[str, list[str]] = {n: [] for n in deps}
    indegree = dict.fromkeys(deps, 0)
    for name, ds in deps.items():
        for d in ds:
            if d in known:
                dependents[d].append(name)
                indegree[name] += 1
    level = dict.fromkeys(deps, 0)
    queue = [n for n, k in indegree.items() if k == 0]
    while queue:
        nxt: list[str] = []
        for name in queue:
            for s in dependents[name]:
                if level[s] < level[name] + 1:
                    level[s] = level[name] + 1
                indegree[s] -= 1
                if indegree[s] == 0:
                    nxt.append(s)
        queue = nxt
    return level  # nodes on a cycle (a damaged store) keep what they reached


def _nice_step(span: float, ticks: int = 8) -> float:
    if span <= 0:
        return 1.0
    raw = span / ticks
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _tick_label(t: float, step: float) -> str:
    if step >= 1:
        return f"{t:.0f}s" if t < 120 else f"{t / 60:.1f}m"
    digits = max(0, -math.floor(math.log10(step)))
    if step < 0.001:
        return f"{t * 1000:.{max(0, digits - 3)}f}ms"
    return f"{t:.{digits}f}s"


#: The page's style sheet (a live page that reuses the sections reuses it too).
CSS = """
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #ffffff; --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; font: 14px/1.45 system-ui, -apple-system,
  "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg);
  background: var(--bg); }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; padding-bottom: 4px;
  border-bottom: 1px solid var(--line); }
.sub { color: var(--muted); margin: 0 0 12px; }
.badge { display: inline-block; padding: 1px 10px; border-radius: 12px; font-weight: 600;
  border: 1px solid rgba(0,0,0,.15); vertical-align: 2px; font-size: 13px; }
.facts { display: flex; flex-wrap: wrap; gap: 8px 28px; margin: 12px 0; }
.facts div { min-width: 120px; }
.facts b { display: block; font-size: 11px; text-transform: uppercase; letter-spacing: .04em;
  color: var(--muted); font-weight: 600; }
.chips span { display: inline-block; margin: 0 10px 4px 0; }
.chip { display: inline-block; width: 12px; height: 12px; border-radius: 3px;
  border: 1px solid rgba(0,0,0,.25); vertical-align: -1px; margin-right: 4px; }
.scroll { overflow: auto; border: 1px solid var(--line); border-radius: 6px;
  background: var(--soft); max-height: 80vh; }
.scroll svg { display: block; margin: 0 auto; }
.note { color: var(--muted); font-size: 13px; margin: 6px 0; }
table.nodes { border-collapse: collapse; width: 100%; font-size: 13px; }
table.nodes th { text-align: left; font-weight: 600; background: var(--soft);
  position: sticky; top: 0; }
table.nodes th, table.nodes td { padding: 4px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
table.nodes .num { text-align: right; font-variant-numeric: tabular-nums;
  white-space: nowrap; }
table.nodes td.name { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  word-break: break-all; }
.err { color: #b42318; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 12px; word-break: break-word; }
details pre { white-space: pre-wrap; font-size: 11.5px; background: var(--soft);
  padding: 8px; border-radius: 4px; max-height: 320px; overflow: auto; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
.footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.child { margin: 8px 0 20px; }
.nested { border-left: 3px solid var(--line); padding-left: 12px; margin: 6px 0 12px; }
.tag { font-size: 11px; color: #8250df; border: 1px solid #d8b9ff; border-radius: 8px;
  padding: 0 6px; margin-left: 4px; }
"""


class RunPage:
    """The sections of a run's page, each a piece of HTML: :meth:`header`,
    :meth:`graph` (an SVG), :meth:`timeline` (an SVG) and :meth:`table`; :meth:`html`
    puts them in one self-contained page. A live page can draw the same sections
    (with :data:`CSS`) and redraw them as the run goes on: each node's elements carry
    ``data-node`` (its name) and ``data-status``.

    Args:
        run: the run to draw.
        max_nodes: runs of more nodes are summarised (see the module docs).
        links: node name -> a URL to open from its box in the graph and its name in the
            table (the dashboard links a sub-workflow node to its child run); none by
            default, which keeps the page self-contained.
        children: the runs below this one by run id (see :func:`render`): the
            sub-workflows section draws them, and a node with child runs that has no
            link of its own links to its part of that section.
    """

    def __init__(self, run: RunView, max_nodes: int = MAX_NODES,
                 links: Mapping[str, str] | None = None,
                 children: Mapping[str, RunView] | None = None) -> None:
        self.run = run
        self.max_nodes = max_nodes
        #: node name -> its child runs: (the rest of the run id after the node's name,
        #: e.g. "" for a sub-workflow's run or "3" for item 3 of a mapped one, the view)
        self.children = _by_node(run, children or {})
        self._below = children or {}
        links = dict(links or {})
        for name in self.children:
            links.setdefault(name, f"#{_anchor(run.run_id, name)}")
        self.links: Mapping[str, str] = links
        self.big = len(run.nodes) > max_nodes
        self.level = _levels(run.nodes)
        timed = [n for n in run.nodes if n.started is not None]
        starts = [n.started for n in timed if n.started is not None]
        ends = [n.finished for n in timed if n.finished is not None]
        self.t0 = min([run.created, run.started, *starts])
        end = run.finished if run.finished is not None else max([self.t0, *ends, *starts])
        self.t1 = max([end, *ends]) if ends else end
        self.timed = timed

    # -- the page ---------------------------------------------------------------------

    def html(self, title: str | None = None) -> str:
        """The whole page (``title`` defaults to the workflow's name and the run id)."""
        run = self.run
        title = title or f"{run.workflow} \u00b7 run {run.run_id}"
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="generator" content="flowrt">',
            f"<title>{_e(title)} \u00b7 flowrt</title>",
            f"<style>{CSS}</style></head><body>",
            self.header(),
            '<h2 id="graph">Graph</h2>',
            self.graph(),
            '<h2 id="timeline">Timeline</h2>',
            self.timeline(),
            '<h2 id="nodes">Nodes</h2>',
            self.table(),
            *(['<h2 id="sub-workflows">Sub-workflows</h2>', self.subworkflows()]
              if self.children else []),
            f'<p class="footer">Written by flowrt on {_e(fmt.timestamp(time.time()))}. '
            "This page is self-contained: no scripts, nothing loaded from elsewhere.</p>",
            "</body></html>",
        ]
        return "\n".join(parts) + "\n"

    def header(self) -> str:
        """The run's name, status, facts, node counts and inputs."""
        run = self.run
        counts = Counter(n.status for n in run.nodes)
        status = run.state
        badge = (f'<span class="badge" style="background:{_colour(status)}">{_e(status)}</span>'
                 if status in BY_NAME else
                 f'<span class="badge" style="background:#fff3b0">{_e(status)}</span>')
        facts = [
            ("run id", _e(run.run_id)),
            ("status", _e(status)),
            ("nodes", f"{len(run.nodes):,}"),
            ("levels", f"{max(self.level.values(), default=-1) + 1:,}"),
            ("attempts", f"{run.attempts:,}"),
            ("retries", f"{run.retries:,}"),
            *([("restored from the store", f"{run.restored:,}")] if run.restored else []),
            ("started", _e(fmt.timestamp(run.created, millis=True))),
            ("finished", _e(fmt.timestamp(run.finished, millis=True))),
            ("duration" + (" (since the last resume)" if run.resumes else ""),
             _e(fmt.duration(run.duration))),
            ("resumed", _e(f"{run.resumes} time{'s' if run.resumes > 1 else ''}, last at "
                           f"{fmt.timestamp(run.started, millis=True)}"
                           if run.resumes else "never")),
        ]
        chips = "".join(
            f'<span><i class="chip" style="background:{_colour(s)}"></i>'
            f"{_e(s)} {counts[s]:,}</span>"
            for s in _in_order(counts))
        out = [f"<h1>{_e(run.workflow)} {badge}</h1>",
               f'<p class="sub">flowrt run report \u00b7 run <code>{_e(run.run_id)}</code></p>',
               '<div class="facts">'
               + "".join(f"<div><b>{k}</b>{v}</div>" for k, v in facts) + "</div>",
               f'<div class="chips">{chips}</div>']
        if run.interrupted:
            out.append(f'<p class="note"><b>Interrupted</b>: stored as running, but '
                       f"{_e(run.why_interrupted())}. Run it again with the same store and "
                       f"run id (<code>--run-id {_e(run.run_id)}</code>) to resume it: the "
                       "nodes that succeeded are not run again.</p>")
        if run.inputs is not None:
            try:
                text = json.dumps(jsonable(run.inputs), indent=2, ensure_ascii=False)
            except Exception:  # inputs of odd types: still a page
                text = fmt.short_repr(run.inputs, 4000)
            if len(text) > 4000:
                text = text[:4000] + "\n\u2026"
            out.append(f"<details><summary>Run inputs</summary><pre>{_e(text)}</pre></details>")
        return "\n".join(out)

    # -- the graph --------------------------------------------------------------------

    def graph(self) -> str:
        """The graph: one box per node (or one bar per level for a big run), an SVG."""
        if not self.run.nodes:
            return '<p class="note">The workflow has no nodes.</p>'
        if self.big:
            return self._level_summary()
        return self._dag()

    def _layout(self) -> tuple[list[list[str]], dict[str, list[str]]]:
        """Layers of node names (and of ``"\\0k"`` waypoints that carry edges spanning
        several levels), each ordered to cross few edges; and each edge's path of names."""
        names = [n.name for n in self.run.nodes]
        depth = max(self.level.values(), default=0) + 1
        layers: list[list[str]] = [[] for _ in range(depth)]
        for name in names:
            layers[self.level[name]].append(name)
        preds: dict[str, list[str]] = {name: [] for name in names}
        succs: dict[str, list[str]] = {name: [] for name in names}
        paths: dict[str, list[str]] = {}  # "dep\0node" -> [dep, waypoints..., node]
        waypoints = 0
        for n in self.run.nodes:
            for d in dict.fromkeys(n.deps):
                if d not in preds or d == n.name:
                    continue
                a, b = self.level[d], self.level[n.name]
                chain = [d]
                if b - a > 1 and waypoints < 3000:
                    for level in range(a + 1, b):
                        w = f"\0{waypoints}"
                        waypoints += 1
                        layers[level].append(w)
                        preds[w], succs[w] = [], []
                        chain.append(w)
                chain.append(n.name)
                for x, y in itertools.pairwise(chain):
                    succs[x].append(y)
                    preds[y].append(x)
                paths[f"{d}\0{n.name}"] = chain
        # Order each layer by the mean position of its neighbours (barycentre sweeps).
        pos: dict[str, float] = {}

        def place() -> None:
            for layer in layers:
                k = len(layer)
                for i, item in enumerate(layer):
                    pos[item] = (i + 0.5) / k

        place()
        for _ in range(6):
            for layer in layers[1:]:
                layer.sort(key=lambda v: _mean([pos[p] for p in preds[v]], pos[v]))
                place()
            for layer in reversed(layers[:-1]):
                layer.sort(key=lambda v: _mean([pos[s] for s in succs[v]], pos[v]))
                place()
        return layers, paths

    def _dag(self) -> str:
        layers, paths = self._layout()
        by_name = {n.name: n for n in self.run.nodes}
        widest_real = max(sum(1 for v in layer if v in by_name) for layer in layers)
        box_w = 168 if widest_real <= 8 else 132 if widest_real <= 20 else 104
        way_w = 10
        box_h, gap_x, gap_y, margin = 44, 22, 58, 24
        chars = int((box_w - 16) / 7)

        def span(layer: list[str]) -> float:
            return sum(box_w if v in by_name else way_w for v in layer) + gap_x * (
                len(layer) - 1)

        width = max(span(layer) for layer in layers) + 2 * margin
        height = len(layers) * (box_h + gap_y) - gap_y + 2 * margin
        centre: dict[str, float] = {}
        top: dict[str, float] = {}
        for li, layer in enumerate(layers):
            x = (width - span(layer)) / 2
            y: float = margin + li * (box_h + gap_y)
            for v in layer:
                w = box_w if v in by_name else way_w
                centre[v] = x + w / 2
                top[v] = y
                x += w + gap_x
        edges = []
        for chain in paths.values():
            x0, y0 = centre[chain[0]], top[chain[0]] + box_h
            d = [f"M{x0:.1f},{y0:.1f}"]
            for v in chain[1:]:
                x1, y1 = centre[v], top[v] - (2 if v in by_name else 0)
                mid = (y1 - y0) / 2
                d.append(f"C{x0:.1f},{y0 + mid:.1f} {x1:.1f},{y1 - mid:.1f} {x1:.1f},{y1:.1f}")
                if v not in by_name:  # a waypoint: straight down through its level
                    y1 = top[v] + box_h
                    d.append(f"L{x1:.1f},{y1:.1f}")
                x0, y0 = x1, y1
            # branches: nothing went down an edge into or out of a bypassed node
            untaken = "bypassed" in (by_name[chain[0]].status, by_name[chain[-1]].status)
            edges.append(f'<path d="{" ".join(d)}"'
                         + (' stroke-dasharray="5 4" class="untaken"' if untaken else "")
                         + " />")
        boxes = []
        for n in self.run.nodes:
            x, y = centre[n.name] - box_w / 2, top[n.name]
            detail = [n.status if n.latest_start != "restored" else "restored"]
            if n.attempts > 1:
                detail.append(f"\u00d7{n.attempts}")
            if n.duration is not None:
                detail.append(fmt.duration(n.duration))
            tip = f"{n.name}\n{n.status}"
            if n.latest_start == "restored":
                tip += " (restored from the store: the latest start did not run it)"
            if n.attempts:
                tip += f", {n.attempts} attempt{'s' if n.attempts > 1 else ''}"
            if n.duration is not None:
                tip += f", {fmt.duration(n.duration)}"
            if n.error:
                tip += f"\n{n.error}"
            stroke = "#b42318" if n.status == "failed" else "#57606a"
            dash = (' stroke-dasharray="4 3"' if n.status in ("skipped", "pending", "bypassed")
                    else "")
            link = self.links.get(n.name)
            stack = ""
            if n.items is not None:  # a mapped node: one box, drawn as a stack of items
                detail = [n.items_brief]  # the full counts are in the tooltip
                tip += f"\nitems: {n.items_text}"
                stack = (f'<rect x="{x + 4:.1f}" y="{y + 4:.1f}" width="{box_w}" '
                         f'height="{box_h}" rx="7" fill="#ffffff" stroke="{stroke}" '
                         'stroke-width="1" />')
            boxes.append(
                (f'<a href="{_e(link)}">' if link else "")
                + f'<g class="node" data-node="{_e(n.name)}" data-status="{_e(n.status)}">'
                f"<title>{_e(tip)}</title>" + stack
                + f'<rect x="{x:.1f}" y="{y:.1f}" width="{box_w}" height="{box_h}" rx="7" '
                f'fill="{_colour(n.status)}" stroke="{stroke}" stroke-width="1.3"{dash} />'
                f'<text x="{x + box_w / 2:.1f}" y="{y + 18:.1f}" text-anchor="middle" '
                f'font-size="12.5" font-weight="600" fill="#1f2328">{_e(_fit(n.name, chars))}'
                f"</text>"
                f'<text x="{x + box_w / 2:.1f}" y="{y + 34:.1f}" text-anchor="middle" '
                f'font-size="10.5" fill="#424a53">{_e(_fit(_DOT.join(detail), chars + 4))}'
                f"</text></g>" + ("</a>" if link else ""))
        svg = (f'<svg width="{width:.0f}" height="{height:.0f}" '
               f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
               f'aria-label="graph of workflow {_e(self.run.workflow)}">'
               '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" '
               'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
               '<path d="M0,0 L10,5 L0,10 z" fill="#8c959f" /></marker></defs>'
               '<g fill="none" stroke="#8c959f" stroke-width="1.3" marker-end="url(#arrow)">'
               + "".join(edges) + "</g>" + "".join(boxes) + "</svg>")
        return (self._legend()
                + f'<div class="scroll" id="dag">{svg}</div>'
                + '<p class="note">Roots on top; each node sits one level below its deepest '
                "dependency. Hover a node for its details.</p>")

    def _legend(self) -> str:
        present = {n.status for n in self.run.nodes}
        return '<div class="chips">' + "".join(
            f'<span><i class="chip" style="background:{_colour(s)}"></i>{_e(s)}</span>'
            for s in _in_order(present)) + "</div>"

    def _level_summary(self) -> str:
        depth = max(self.level.values(), default=0) + 1
        per = max(1, math.ceil(depth / 200))  # at most 200 rows: group levels if deeper
        rows: list[tuple[str, Counter[str]]] = []
        counts: list[Counter[str]] = [Counter() for _ in range(depth)]
        for n in self.run.nodes:
            counts[self.level[n.name]][n.status] += 1
        for start in range(0, depth, per):
            c: Counter[str] = Counter()
            for k in range(start, min(depth, start + per)):
                c.update(counts[k])
            last = min(depth, start + per) - 1
            label = f"level {start}" if per == 1 else f"levels {start}{_DASH}{last}"
            rows.append((label, c))
        widest = max(sum(c.values()) for _, c in rows)
        label_w, bar_w, row_h, margin = 190, 720, 22, 16
        width = label_w + bar_w + 2 * margin + 60
        height = len(rows) * row_h + 2 * margin
        parts = []
        for i, (label, c) in enumerate(rows):
            y = margin + i * row_h
            total = sum(c.values())
            parts.append(f'<text x="{margin}" y="{y + 15}" font-size="12" fill="#1f2328">'
                         f"{_e(label)} \u00b7 {total:,}</text>")
            x: float = margin + label_w
            scale = bar_w / widest
            for s in _in_order(c):
                k = c.get(s, 0)
                if not k:
                    continue
                w = max(1.0, k * scale)
                parts.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
                             f'fill="{_colour(s)}" stroke="#57606a" stroke-width="0.6">'
                             f"<title>{_e(label)}: {k:,} {_e(s)}</title></rect>")
                x += w
        svg = (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
               f'role="img" aria-label="nodes per level">' + "".join(parts) + "</svg>")
        return (f'<p class="note">{len(self.run.nodes):,} nodes are too many to draw one by one '
                f"(more than {self.max_nodes:,}): each bar is one level of the graph (roots "
                "first), as wide as its number of nodes, coloured by how they ended.</p>"
                + self._legend() + f'<div class="scroll" id="dag">{svg}</div>')

    # -- the timeline -----------------------------------------------------------------

    def timeline(self) -> str:
        """One bar per node over time (plus how many ran at once, for a big run)."""
        timed = sorted(self.timed, key=lambda n: (n.started or 0.0, n.name))
        if not timed:
            return '<p class="note">No node was timed in this run.</p>'
        note = ""
        profile = ""
        if len(timed) > self.max_nodes:
            profile = self._concurrency(timed)
            longest = sorted(timed, key=lambda n: -(n.duration or 0.0))[:LONGEST]
            timed = sorted(longest, key=lambda n: (n.started or 0.0, n.name))
            note = (f'<p class="note">{len(self.timed):,} timed nodes: above, how many ran at '
                    f"once; below, the {len(timed)} longest.</p>")
        label_w, plot_w, row_h, top, margin = 200, 760, 20, 30, 12
        t0, t1 = self.t0, max(self.t1, self.t0 + 1e-6)
        scale = plot_w / (t1 - t0)
        width = label_w + plot_w + 2 * margin + 90
        bottom = top + len(timed) * row_h + 4
        height = bottom + margin + (14 if self.run.resumes else 0)
        parts = self._axis(t0, t1, scale, label_w + margin, top, bottom)
        for i, n in enumerate(timed):
            y = top + i * row_h
            assert n.started is not None
            x = label_w + margin + (n.started - t0) * scale
            end = n.finished if n.finished is not None else t1
            w = max(2.0, (end - n.started) * scale)
            tip = f"{n.name}: {n.status}, {fmt.duration(n.duration)}"
            if n.attempts > 1:
                tip += f", {n.attempts} attempts"
            if n.error:
                tip += f"\n{n.error}"
            parts.append(f'<text x="{label_w + margin - 6}" y="{y + 14}" text-anchor="end" '
                         f'font-size="11.5" fill="#1f2328">{_e(_fit(n.name, 30))}</text>')
            dash = ' stroke-dasharray="3 2"' if n.finished is None else ""
            parts.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
                         f'rx="2" fill="{_colour(n.status)}" stroke="#57606a" '
                         f'stroke-width="0.8"{dash}><title>{_e(tip)}</title></rect>')
            label = fmt.duration(n.duration) if n.duration is not None else n.status
            if n.attempts > 1:
                label = f"\u00d7{n.attempts} \u00b7 {label}"
            parts.append(f'<text x="{x + w + 4:.1f}" y="{y + 14}" font-size="10.5" '
                         f'fill="#57606a">{_e(label)}</text>')
        svg = (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
               f'role="img" aria-label="timeline of the nodes">' + "".join(parts) + "</svg>")
        return (profile + note + f'<div class="scroll" id="gantt">{svg}</div>'
                + '<p class="note">A bar runs from the start of a node\'s first attempt to its '
                "end; \u00d7n marks a node that took n attempts. Times are from the start of the "
                "run" + (" (its first start: the run was resumed)" if self.run.resumes else "")
                + ".</p>")

    def _axis(self, t0: float, t1: float, scale: float, x0: float, top: float,
              bottom: float) -> list[str]:
        step = _nice_step(t1 - t0)
        parts = []
        k = 0
        while True:
            t = k * step
            if t > (t1 - t0) + 1e-9 or k > 100:
                break
            x = x0 + t * scale
            parts.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{bottom}" '
                         'stroke="#d0d7de" stroke-width="1" />')
            parts.append(f'<text x="{x:.1f}" y="{top - 10}" text-anchor="middle" '
                         f'font-size="10.5" fill="#656d76">{_tick_label(t, step)}</text>')
            k += 1
        run = self.run
        if run.resumes and run.started > t0:
            x = x0 + (run.started - t0) * scale
            parts.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{bottom}" '
                         'stroke="#8250df" stroke-width="1.5" stroke-dasharray="5 3" />')
            parts.append(f'<text x="{x:.1f}" y="{bottom + 13}" font-size="10.5" '
                         'text-anchor="middle" fill="#8250df">resumed</text>')
        return parts

    def _concurrency(self, timed: list[NodeView]) -> str:
        """A step chart of how many nodes were running at each moment."""
        t0, t1 = self.t0, max(self.t1, self.t0 + 1e-6)
        buckets = 600
        width_s = (t1 - t0) / buckets
        # Sweep the starts and ends in time order; each bucket gets the most nodes that
        # were running at once during it.
        moves: list[tuple[float, int]] = []
        for n in timed:
            assert n.started is not None
            moves.append((n.started, 1))
            moves.append((n.finished if n.finished is not None else t1, -1))
        moves.sort()  # at equal times an end (-1) comes before a start
        running = [0] * buckets
        current = i = 0
        for b in range(buckets):
            end = t0 + (b + 1) * width_s
            most = current
            while i < len(moves) and (moves[i][0] < end or b == buckets - 1):
                current += moves[i][1]
                most = max(most, current)
                i += 1
            running[b] = most
        peak = max(running) or 1
        plot_w, plot_h, left, top = 760, 120, 212, 24
        width, height = left + plot_w + 100, top + plot_h + 12
        points = [f"{left},{top + plot_h}"]
        for i, k in enumerate(running):
            x = left + i * plot_w / buckets
            y = top + plot_h - k / peak * plot_h
            points.append(f"{x:.1f},{y:.1f} {x + plot_w / buckets:.1f},{y:.1f}")
        points.append(f"{left + plot_w},{top + plot_h}")
        parts = self._axis(t0, t1, plot_w / (t1 - t0), left, top, top + plot_h)
        parts.append(f'<polygon points="{" ".join(points)}" fill="{COLOURS[Status.RUNNING]}" '
                     'stroke="#0969da" stroke-width="1" />')
        parts.append(f'<text x="{left - 8}" y="{top + 10}" text-anchor="end" font-size="11" '
                     f'fill="#1f2328">{peak:,} running</text>')
        parts.append(f'<text x="{left - 8}" y="{top + plot_h}" text-anchor="end" '
                     'font-size="11" fill="#1f2328">0</text>')
        return (f'<div class="scroll" id="running"><svg width="{width}" height="{height}" '
                f'viewBox="0 0 {width} {height}" role="img" aria-label="nodes running over '
                f'time">{"".join(parts)}</svg></div>')

    # -- the table --------------------------------------------------------------------

    def table(self) -> str:
        """The node table: level, status, attempts, start, duration, error, traceback."""
        nodes = list(self.run.nodes)
        note = ""
        if self.big:
            bad = [n for n in nodes if n.status != "succeeded"]
            good = [n for n in nodes if n.status == "succeeded"]
            shown_bad = bad[:MAX_UNSUCCESSFUL_ROWS]
            slowest = sorted(good, key=lambda n: -(n.duration or 0.0))[:LONGEST]
            nodes = shown_bad + slowest
            left_out = len(self.run.nodes) - len(nodes)
            note = (f'<p class="note">{len(self.run.nodes):,} nodes: listed here are the '
                    f"{len(shown_bad):,} that did not succeed"
                    + (f" (of {len(bad):,})" if len(bad) > len(shown_bad) else "")
                    + f" and the {len(slowest)} slowest that did; {left_out:,} more are "
                    "not listed.</p>")
        rows = []
        for i, n in enumerate(nodes, 1):
            offset = None if n.started is None else n.started - self.t0
            error = ""
            if n.error:
                error = f'<div class="err">{_e(n.error)}</div>'
                if n.traceback:
                    error += (f"<details><summary>traceback</summary>"
                              f"<pre>{_e(n.traceback)}</pre></details>")
            link = self.links.get(n.name)
            name = (f'<a href="{_e(link)}">{_e(n.name)}</a>' if link else _e(n.name))
            resumed = ""
            if n.restored:
                resumed = (' <span class="tag" title="ended in an earlier start of the run; '
                           f'the latest start did not run it">{n.latest_start}</span>')
            rows.append(
                f'<tr><td class="num">{i}</td>'
                f'<td class="name" data-node="{_e(n.name)}">{name}</td>'
                f'<td class="num">{self.level.get(n.name, 0)}</td>'
                f'<td><i class="chip" style="background:{_colour(n.status)}"></i>'
                f"{_e(n.status)}{resumed}</td><td class=\"num\">{_e(n.attempts)}</td>"
                f'<td class="num">{"-" if offset is None else "+" + _e(fmt.duration(offset))}</td>'
                f'<td class="num">{_e(fmt.duration(n.duration))}</td><td>{error}</td></tr>')
        return (note + '<table class="nodes"><thead><tr><th class="num">#</th><th>node</th>'
                '<th class="num">level</th><th>status</th><th class="num">attempts</th>'
                '<th class="num">start</th><th class="num">duration</th><th>error</th></tr>'
                "</thead><tbody>" + "".join(rows) + "</tbody></table>")

    # -- sub-workflows ----------------------------------------------------------------

    def subworkflows(self) -> str:
        """The child runs of the run's nodes, nested: a sub-workflow's run drawn under
        its node's name; a mapped sub-workflow's item runs in a table, the first
        :data:`MAX_CHILD_GRAPHS` of them drawn too. Empty without child runs."""
        out = []
        for name, runs in self.children.items():
            out.append(f'<section class="child" id="{_anchor(self.run.run_id, name)}">')
            if len(runs) == 1 and not runs[0][0]:
                out.append(f"<h3>{_e(name)} <span class=\"tag\">sub-workflow "
                           f"{_e(runs[0][1].workflow)}</span></h3>")
                out.append(self._child(runs[0][1]))
            else:
                workflows = ", ".join(sorted({_e(v.workflow) for _, v in runs}))
                out.append(f"<h3>{_e(name)} <span class=\"tag\">mapped sub-workflow "
                           f"{workflows}: {len(runs):,} item runs</span></h3>")
                out.append(self._child_table(runs))
                for k, (rest, view) in enumerate(runs[:MAX_CHILD_GRAPHS]):
                    out.append(f"<details{' open' if k == 0 else ''}><summary>item {_e(rest)}"
                               f" \u00b7 run <code>{_e(view.run_id)}</code> \u00b7 "
                               f"{_e(view.state)}</summary>{self._child(view)}</details>")
                if len(runs) > MAX_CHILD_GRAPHS:
                    out.append(f'<p class="note">The first {MAX_CHILD_GRAPHS} item runs are '
                               f"drawn; the table lists {min(len(runs), MAX_CHILD_ROWS):,} "
                               f"of {len(runs):,}.</p>")
            out.append("</section>")
        return "\n".join(out)

    def _child(self, view: RunView) -> str:
        """One child run: its status, node counts and graph, and its own child runs."""
        page = RunPage(view, self.max_nodes, children=self._below)
        counts = Counter(n.status for n in view.nodes)
        text = ", ".join(f"{counts[s]:,} {s}" for s in _in_order(counts))
        head = (f'<p class="sub">run <code>{_e(view.run_id)}</code> of '
                f"<b>{_e(view.workflow)}</b>: {_e(view.state)} in "
                f"{_e(fmt.duration(view.duration))} \u00b7 nodes: {_e(text)}</p>")
        nested = page.subworkflows() if page.children else ""
        return f'<div class="nested">{head}{page.graph()}{nested}</div>'

    def _child_table(self, runs: list[tuple[str, RunView]]) -> str:
        rows = []
        for rest, view in runs[:MAX_CHILD_ROWS]:
            counts = Counter(n.status for n in view.nodes)
            text = ", ".join(f"{counts[s]} {s}" for s in _in_order(counts))
            rows.append(f'<tr><td class="num">{_e(rest)}</td>'
                        f'<td class="name">{_e(view.run_id)}</td>'
                        f'<td><i class="chip" style="background:{_colour(view.state)}"></i>'
                        f"{_e(view.state)}</td><td>{_e(text)}</td>"
                        f'<td class="num">{_e(fmt.duration(view.duration))}</td></tr>')
        return ('<table class="nodes"><thead><tr><th class="num">item</th><th>run</th>'
                "<th>status</th><th>nodes</th><th class=\"num\">duration</th></tr></thead>"
                "<tbody>" + "".join(rows) + "</tbody></table>")


def _by_node(run: RunView, below: Mapping[str, RunView]
             ) -> dict[str, list[tuple[str, RunView]]]:
    """The runs of ``below`` that are child runs of ``run``'s nodes (``run/node`` or
    ``run/node/i``, not deeper), by node, items in index order."""
    prefix = run.run_id + "/"
    names = sorted((n.name for n in run.nodes), key=len, reverse=True)
    by_node: dict[str, list[tuple[str, RunView]]] = {}
    for rid, view in below.items():
        if not rid.startswith(prefix):
            continue
        rest = rid[len(prefix):]
        for name in names:  # a node name may contain "/": the longest that fits wins
            if rest == name:
                by_node.setdefault(name, []).append(("", view))
                break
            tail = rest[len(name) + 1:]
            if rest.startswith(name + "/") and tail.isdigit():
                by_node.setdefault(name, []).append((tail, view))
                break
    for runs in by_node.values():
        runs.sort(key=lambda kv: int(kv[0]) if kv[0] else -1)
    return {n.name: by_node[n.name] for n in run.nodes if n.name in by_node}


def _anchor(run_id: str, node: str) -> str:
    """The id of the part of the page that draws ``node``'s child runs."""
    return "sub-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{run_id}-{node}")


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default
