"""The dashboard's pages as HTML text: the runs list, a run, schedules, workers, the
login form. Pure functions of what was read from the store (no I/O, no web framework),
so that they are tested and timed on their own.

Every text that comes from a store, a workflow or a request is escaped here
(``html.escape``, quotes too) and every link is built with ``urllib.parse.quote``: a
node called ``<script>`` is shown as text (docs/decisions/009-what-tools-show.md). The
run page reuses the report's sections (:class:`flowrt.tools.report.RunPage`): the graph,
the timeline and the node table. Parts of a page that change while a run goes on are
marked ``data-live="name"``; the page's script asks the server for them again
(``/live/...``) and replaces those whose HTML changed.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from ..._engine.result import jsonable
from ..._types import BY_NAME, Status
from .. import _format as fmt
from .._view import RunView
from ..report import RunPage
from ..viz import COLOURS
from ._data import (
    PAGE_SIZE,
    SINCE,
    STATES,
    UNDONE,
    Children,
    Holder,
    RunFilter,
    Snapshot,
    rolled_back,
    state_of,
)

__all__ = ["Layout", "RunForms", "Waits", "colour", "e", "login_page", "run_form_sections",
           "run_heavy_sections", "run_light_sections", "runs_sections", "schedules_sections",
           "workers_sections"]

#: colours of run states that are no node status (node statuses use viz.COLOURS)
RUN_COLOURS = {
    "queued": "#fff3b0",
    "waiting": "#d8b9ff",
    "interrupted": "#ffc078",
    "dead_letter": "#e5534b",
}
#: how many child runs of one node the run page lists
MAX_CHILDREN = 50
#: how many items of a map node the run page lists
MAX_ITEMS = 500
_ON = ' class="on"'
_LATE = ' class="late"'
#: states after which a run is not taken up again unless resumed
_FINAL = ("succeeded", "failed", "cancelled", "dead_letter")


def e(value: Any) -> str:
    """``value`` as HTML text (quotes escaped too: safe in attributes)."""
    return html.escape(str(value), quote=True)


def colour(state: str) -> str:
    """The fill colour of a run state or a node status."""
    status = BY_NAME.get(state)
    if status is not None:
        return COLOURS[status]
    return RUN_COLOURS.get(state) or COLOURS[Status.PENDING]


def badge(state: str) -> str:
    """A run's or node's state as a coloured badge."""
    return (f'<span class="badge" data-state="{e(state)}" style="background:{colour(state)}">'
            f"{e(state.replace('_', ' '))}</span>")


def chip(state: str) -> str:
    """A small square of the state's colour."""
    return f'<i class="chip" style="background:{colour(state)}"></i>'


def _time(t: float | None) -> str:
    return e(fmt.timestamp(t))


def _json_text(value: Any, limit: int = 4000) -> str:
    try:
        text = json.dumps(jsonable(value), indent=2, ensure_ascii=False)
    except Exception:  # odd values: still a page
        text = fmt.short_repr(value, limit)
    return text if len(text) <= limit else text[:limit] + "\n\u2026"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


class Layout:
    """What every page shares: where the dashboard is mounted (``base``), the store's
    ``label``, the browser session's ``csrf`` token for forms, and whether to offer a
    log-out button (``logout``: the dashboard has a token)."""

    def __init__(self, base: str, label: str, csrf: str, *, logout: bool = False) -> None:
        self.base = base
        self.label = label
        self.csrf = csrf
        self.logout = logout

    def url(self, path: str, params: Mapping[str, str] | None = None) -> str:
        """The address of ``path`` of the dashboard, with ``params`` (not escaped for
        HTML: pass it through :func:`e`)."""
        query = urlencode({k: v for k, v in (params or {}).items() if v != ""})
        return self.base + path + ("?" + query if query else "")

    def run_url(self, run_id: str) -> str:
        """The address of a run's page."""
        return f"{self.base}/run?id={quote(run_id, safe='')}"

    def run_link(self, run_id: str, text: str | None = None) -> str:
        """A link to a run's page."""
        return f'<a href="{e(self.run_url(run_id))}">{e(run_id if text is None else text)}</a>'

    def form(self, action: str, fields: Mapping[str, str], inner: str, *,
             cls: str = "action") -> str:
        """A POST form to ``/actions/<action>`` with hidden ``fields`` and the CSRF token."""
        hidden = "".join(f'<input type="hidden" name="{e(k)}" value="{e(v)}">'
                         for k, v in {**fields, "csrf": self.csrf}.items())
        return (f'<form class="{e(cls)}" method="post" action="{e(self.url("/actions/" + action))}"'
                f' data-action="{e(action)}">{hidden}{inner}</form>')

    def page(self, title: str, nav: str, body: str, *, live: str | None = None,
             version: str = "", every: int = 1500) -> str:
        """A whole page: ``title``, the navigation with ``nav`` marked, ``body``; ``live``
        is the address of its live parts (see the module docs)."""
        b = self.base
        links = "".join(
            f'<a href="{e(b + path)}"{_ON if key == nav else ""}>{name}</a>'
            for key, path, name in (("runs", "/", "Runs"), ("schedules", "/schedules",
                                                           "Schedules"),
                                    ("workers", "/workers", "Workers")))
        logout = ""
        if self.logout:
            logout = (f'<form class="logout" method="post" action="{e(b + "/logout")}">'
                      f'<input type="hidden" name="csrf" value="{e(self.csrf)}">'
                      '<button type="submit">log out</button></form>')
        live_attrs = (f' data-live-url="{e(live)}" data-version="{e(version)}" '
                      f'data-every="{every}"' if live else "")
        return "\n".join([
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{e(title)} \u00b7 flowrt</title>",
            f'<link rel="icon" href="{e(b)}/static/favicon.svg" type="image/svg+xml">',
            f'<link rel="stylesheet" href="{e(b)}/static/report.css">',
            f'<link rel="stylesheet" href="{e(b)}/static/dashboard.css">',
            f'<script src="{e(b)}/static/dashboard.js" defer></script>',
            "</head><body>",
            f'<header class="top"><a class="brand" href="{e(b)}/">flowrt</a>'
            f'<nav>{links}</nav><span class="store" title="the store">{e(self.label)}</span>'
            f'<span id="live" class="live" data-state="{"on" if live else "off"}" '
            f'title="{"live: updated as the store changes" if live else ""}"></span>'
            f"{logout}</header>",
            f"<main{live_attrs}>",
            body,
            "</main></body></html>",
        ]) + "\n"


def flash(message: str | None, error: str | None) -> str:
    """The message of an action that was done, or of one that was refused."""
    out = ""
    if message:
        out += f'<p class="flash ok" role="status">{e(message)}</p>'
    if error:
        out += f'<p class="flash error" role="alert">{e(error)}</p>'
    return out


# -- the runs list --------------------------------------------------------------------------


def runs_sections(layout: Layout, snap: Snapshot, flt: RunFilter) -> dict[str, str]:
    """The live parts of the runs list: ``counts`` (runs per state, each a filter) and
    ``runs`` (the table of the page's runs, newest first, and the pager)."""
    chosen, counts = snap.select(flt)
    total = sum(counts.values())
    chips = [f'<a class="count{" on" if not flt.state else ""}" data-state="" '
             f'href="{e(layout.url("/", flt.params(state="", page=1)))}">all '
             f"<b>{total:,}</b></a>"]
    for state in STATES:
        k = counts.get(state, 0)
        if not k and state != flt.state:
            continue
        chips.append(f'<a class="count{" on" if state == flt.state else ""}" '
                     f'data-state="{e(state)}" '
                     f'href="{e(layout.url("/", flt.params(state=state, page=1)))}">'
                     f'{chip(state)}{e(state.replace("_", " "))} <b>{k:,}</b></a>')
    count_html = '<div class="counts">' + "".join(chips) + "</div>"

    pages = max(1, -(-len(chosen) // PAGE_SIZE))
    page = min(flt.page, pages)
    first = (page - 1) * PAGE_SIZE
    shown = chosen[first:first + PAGE_SIZE]
    if not shown:
        what = ("no runs match these filters" if flt.active or snap.runs
                else "the store has no runs yet")
        return {"counts": count_html, "runs": f'<p class="empty">{e(what)}.</p>'}
    rows = [_run_row(layout, run) for run in shown]
    pager = [f'<span class="note">{first + 1:,}\u2013{first + len(shown):,} of '
             f"{len(chosen):,}</span>"]
    if page > 1:
        pager.append(f'<a rel="prev" href="{e(layout.url("/", flt.params(page=page - 1)))}">'
                     "\u2190 newer</a>")
    if page < pages:
        pager.append(f'<a rel="next" href="{e(layout.url("/", flt.params(page=page + 1)))}">'
                     "older \u2192</a>")
    table = ('<table class="nodes runs"><thead><tr><th>run</th><th>workflow</th>'
             '<th>status</th><th>started</th><th class="num">duration</th>'
             '<th class="num">nodes</th><th class="num">resumes</th><th>note</th></tr></thead>'
             "<tbody>" + "".join(rows) + "</tbody></table>")
    return {"counts": count_html,
            "runs": table + '<p class="pager">' + " \u00b7 ".join(pager) + "</p>"}


def _duration_cell(view: RunView, state: str) -> str:
    if view.finished is not None:
        return e(fmt.duration(view.duration))
    if state in ("running", "queued", "waiting"):
        # the running clock is kept by the page's script (no request a second)
        return (f'<span class="clock" data-since="{view.started!r}">'
                f"{e(fmt.duration(None))}</span>")
    return e(fmt.duration(None))


def _run_note(run: Mapping[str, Any], view: RunView, state: str) -> str:
    if state == "interrupted":
        return f'<span class="note">{e(view.why_interrupted())}</span>'
    error = run.get("error")
    if error:
        return f'<span class="err">{e(fmt.one_line(str(error), 160))}</span>'
    if state in ("waiting", "queued"):
        due = _number(run.get("due"))
        return (f'<span class="note">due {_time(due)}</span>' if due is not None else
                '<span class="note">until a signal or a resume</span>'
                if state == "waiting" else "")
    return ""


def _run_row(layout: Layout, run: Mapping[str, Any]) -> str:
    view = RunView.from_dict(run)
    state = state_of(run)
    wf = layout.url("/", {"workflow": view.workflow})
    return (f'<tr data-run="{e(view.run_id)}" data-state="{e(state)}">'
            f'<td class="name">{layout.run_link(view.run_id)}</td>'
            f'<td><a href="{e(wf)}">{e(view.workflow)}</a></td>'
            f"<td>{badge(state)}</td><td>{_time(view.created)}</td>"
            f'<td class="num">{_duration_cell(view, state)}</td>'
            f'<td class="num">{_count(run.get("node_count")):,}</td>'
            f'<td class="num">{view.resumes}</td><td>{_run_note(run, view, state)}</td></tr>')


def runs_body(layout: Layout, snap: Snapshot, flt: RunFilter, sections: Mapping[str, str],
              message: str | None = None, error: str | None = None) -> str:
    """The runs list: the filters, then its live parts."""
    def option(value: str, label: str, current: str) -> str:
        sel = " selected" if value == current else ""
        return f'<option value="{e(value)}"{sel}>{e(label)}</option>'

    workflows = snap.workflows()
    if flt.workflow and flt.workflow not in workflows:
        workflows.append(flt.workflow)
    form = (
        f'<form class="filters" method="get" action="{e(layout.url("/"))}">'
        '<label>workflow <select name="workflow">' + option("", "all", flt.workflow)
        + "".join(option(w, w, flt.workflow) for w in workflows) + "</select></label>"
        '<label>status <select name="status">' + option("", "all", flt.state)
        + "".join(option(s, s.replace("_", " "), flt.state) for s in STATES)
        + "</select></label>"
        '<label>started in <select name="since">' + option("", "any time", flt.since)
        + "".join(option(k, label, flt.since) for k, (label, _) in SINCE.items())
        + "</select></label>"
        f'<label>from <input type="datetime-local" name="from" value="{e(flt.start)}"></label>'
        f'<label>to <input type="datetime-local" name="to" value="{e(flt.end)}"></label>'
        f'<label>run id <input type="search" name="q" value="{e(flt.text)}" '
        'placeholder="contains"></label>'
        f'<label class="check"><input type="checkbox" name="top" value="1"'
        f'{" checked" if flt.top else ""}> top-level runs only</label>'
        '<button type="submit">filter</button>'
        + (f'<a class="reset" href="{e(layout.url("/"))}">reset</a>' if flt.active else "")
        + "</form>")
    return (f'<h1>Runs <span class="sub">{len(snap.runs):,} in the store</span></h1>'
            + flash(message, error) + form
            + f'<div data-live="counts">{sections["counts"]}</div>'
            + f'<div data-live="runs">{sections["runs"]}</div>')


# -- a run ----------------------------------------------------------------------------------


class Waits:
    """What a run's wait nodes wait for: ``kinds`` (node -> "signal", "approval" or
    "timer": every wait node of the run) and ``waiting`` (the nodes waiting now: dicts
    with ``node``, ``kind``, ``since``, ``due``, ``signalled``)."""

    def __init__(self, kinds: Mapping[str, str], waiting: Sequence[Mapping[str, Any]]) -> None:
        self.kinds = {str(k): str(v) for k, v in kinds.items()}
        self.waiting = list(waiting)


def run_links(layout: Layout, run_id: str, children: Children) -> dict[str, str]:
    """Per node with child runs, where its box and name lead: the child run of a
    sub-workflow, or the runs list of a map's items."""
    links = {}
    for node, runs in children.by_node.items():
        if len(runs) == 1 and runs[0][0] == "":
            links[node] = layout.run_url(runs[0][1].get("run_id", ""))
        else:
            links[node] = layout.url("/", {"q": f"{run_id}/{node}/"})
    return links


def run_heavy_sections(view: RunView, data: Mapping[str, Any], links: Mapping[str, str],
                       max_nodes: int) -> dict[str, str]:
    """The parts of a run page that depend on its nodes only (worth caching): ``graph``,
    ``timeline``, ``nodes`` (the table), ``compensation`` and ``items``."""
    page = RunPage(view, max_nodes, links)
    return {"graph": page.graph(), "timeline": page.timeline(), "nodes": page.table(),
            "compensation": _compensation(view, data, page.level),
            "items": _items(data)}


def _plural(count: int, what: str) -> str:
    return f"{count:,} {what}{'s' if count != 1 else ''}"


def _compensation(view: RunView, data: Mapping[str, Any], level: Mapping[str, int]) -> str:
    """What the rollback undid, in its order: deepest level first, a map's items last
    first (decision 026), a node's own row before its items'. A map that failed keeps
    its status, so its undone items are what says it was compensated."""
    item_lists = _item_lists(data)
    rows: list[tuple[int, str]] = []  # (level, the node's rows)
    #: (node or item, compensated or compensation_failed) -> how many
    counts: dict[tuple[str, str], int] = {}
    shown = 0
    for n in view.nodes:
        cells = []
        if n.status in UNDONE:
            counts["node", n.status] = counts.get(("node", n.status), 0) + 1
            cells.append(_undone_row(n.name, None, n.status, n.error, n.traceback,
                                     n.finished))
        undone = [(i, item) for i, item in enumerate(item_lists.get(n.name, ()))
                  if item.get("status") in UNDONE]
        for i, item in reversed(undone):
            status, error = str(item.get("status")), item.get("error")
            counts["item", status] = counts.get(("item", status), 0) + 1
            if shown < MAX_ITEMS:
                shown += 1
                cells.append(_undone_row(n.name, i, status,
                                         error if isinstance(error, str) else None))
        if cells:
            rows.append((level.get(n.name, 0), "".join(cells)))
    if not rows:
        return ""
    rows.sort(key=lambda row: -row[0])  # stable: the nodes' order within a level
    nodes, items = counts.get(("node", "compensated"), 0), counts.get(("item", "compensated"), 0)
    failed = counts.get(("node", "compensation_failed"), 0) + counts.get(
        ("item", "compensation_failed"), 0)
    listed = items + counts.get(("item", "compensation_failed"), 0)
    what = [_plural(nodes, "node")] if nodes or not items else []
    if items:
        what.append(_plural(items, "map item"))
    more = (f'<p class="note">The first {MAX_ITEMS:,} of {listed:,} map items are listed.'
            "</p>" if listed > MAX_ITEMS else "")
    return ('<h2 id="compensation">Compensation</h2>'
            f'<p class="note">The run was rolled back: {" and ".join(what)} undone'
            + (f", {_plural(failed, 'compensation')} failed" if failed else "")
            + ", deepest first" + (", a map's items last first" if listed else "")
            + f".</p>{more}"
            '<table class="nodes compensation"><thead><tr><th>node</th>'
            '<th class="num">item</th><th>status</th><th>ended</th><th>error</th></tr>'
            f"</thead><tbody>{''.join(row for _, row in rows)}</tbody></table>")


def _undone_row(node: str, item: int | None, status: str, error: str | None,
                traceback: str | None = None, finished: float | None = None) -> str:
    """A row of the compensation table: a node (``item`` None) or one of its items."""
    return (f'<tr data-node="{e(node)}"' + (f' data-item="{item}"' if item is not None else "")
            + f' data-status="{e(status)}"><td class="name">{e(node)}</td>'
            f'<td class="num">{"" if item is None else item}</td>'
            f"<td>{chip(status)}{e(status.replace('_', ' '))}</td>"
            f"<td>{_time(finished) if item is None else ''}</td><td>"
            + (f'<div class="err">{e(error)}</div>' if error else "")
            + (f"<details><summary>traceback</summary><pre>{e(traceback)}</pre></details>"
               if traceback else "") + "</td></tr>")


def _item_lists(data: Mapping[str, Any]) -> dict[str, list[Mapping[str, Any]]]:
    """Each map node's items, by index: ``nodes[name]["item_list"]`` of ``to_dict()``
    (or a list under ``"items"``), dicts with ``status``, ``attempts``, ``error`` (what
    ``result.items(name)`` gives); an entry that is no mapping reads as an empty one."""
    nodes = data.get("nodes")
    if not isinstance(nodes, Mapping):
        return {}
    out = {}
    for name, node in nodes.items():
        items = (node.get("item_list") or node.get("items")) if isinstance(node, Mapping) \
            else None
        if isinstance(items, list):
            out[str(name)] = [item if isinstance(item, Mapping) else {} for item in items]
    return out


def _items(data: Mapping[str, Any]) -> str:
    """The items of each map node (:func:`_item_lists`), with a row per item."""
    out = []
    for name, items in _item_lists(data).items():
        counts: dict[str, int] = {}
        rows = []
        for i, item in enumerate(items):
            status = str(item.get("status", "pending"))
            counts[status] = counts.get(status, 0) + 1
            if i < MAX_ITEMS:
                error = item.get("error")
                rows.append(f'<tr data-item="{i}" data-status="{e(status)}"><td class="num">{i}'
                            f"</td><td>{chip(status)}{e(status)}</td>"
                            f'<td class="num">{_count(item.get("attempts"))}</td><td>'
                            + (f'<div class="err">{e(error)}</div>' if error else "")
                            + "</td></tr>")
        summary = ", ".join(f"{k:,} {e(s)}" for s, k in counts.items()) or "no items yet"
        more = (f'<p class="note">The first {MAX_ITEMS:,} of {len(items):,} items.</p>'
                if len(items) > MAX_ITEMS else "")
        out.append(f'<h3 data-node="{e(name)}">{e(name)} <span class="sub">{len(items):,} '
                   f"items: {summary}</span></h3>{more}"
                   '<table class="nodes items"><thead><tr><th class="num">item</th>'
                   '<th>status</th><th class="num">attempts</th><th>error</th></tr></thead>'
                   "<tbody>" + "".join(rows) + "</tbody></table>")
    return '<h2 id="items">Map items</h2>' + "".join(out) if out else ""


class RunForms:
    """What a run's forms depend on, kept small so that a page cache can hold it:
    ``run_id``, ``state``, its :class:`Waits`, the status of each of its wait nodes
    (``statuses``), and whether it was rolled back to the end (``rolled_back``)."""

    def __init__(self, run_id: str, state: str, waits: Waits,
                 statuses: Mapping[str, str], *, rolled_back: bool = False) -> None:
        self.run_id = run_id
        self.state = state
        self.waits = waits
        self.statuses = dict(statuses)
        #: the run was rolled back to the end: it is over, no Resume
        self.rolled_back = rolled_back


def run_light_sections(layout: Layout, view: RunView, data: Mapping[str, Any], waits: Waits,
                       children: Children, parent: str | None) -> tuple[dict[str, str],
                                                                        RunForms]:
    """The parts of a run page that are cheap to draw and hold no form: ``header``
    (status, facts, counts, inputs) and ``children`` (its sub-workflow runs and map
    items); and what its forms need (:func:`run_form_sections`)."""
    state = state_of(data)
    statuses = {n.name: n.status for n in view.nodes if n.name in waits.kinds}
    return ({"header": _run_header(layout, view, data, state, parent),
             "children": _children(layout, view, children)},
            RunForms(view.run_id, state, waits, statuses,
                     rolled_back=rolled_back(state, _statuses(view))))


def _statuses(view: RunView) -> Iterator[str]:
    """The statuses of a run's nodes and of its map nodes' items."""
    for n in view.nodes:
        yield n.status
        yield from n.items or ()


def run_form_sections(layout: Layout, forms: RunForms, *, actions: bool = True
                      ) -> dict[str, str]:
    """The parts of a run page with forms (drawn for each browser session: they carry
    its CSRF token): ``actions`` (cancel, resume) and ``waits`` (what a waiting run
    waits for, with the forms that signal, approve or reject it). Without ``actions``
    the page offers no form."""
    return {"actions": _run_actions(layout, forms.run_id, forms.state, forms.rolled_back)
            if actions else "",
            "waits": _waits(layout, forms, actions)}


def _run_header(layout: Layout, view: RunView, data: Mapping[str, Any], state: str,
                parent: str | None) -> str:
    counts = view.counts()
    resumes = view.resumes
    facts: list[tuple[str, str]] = [
        ("workflow", f'<a href="{e(layout.url("/", {"workflow": view.workflow}))}">'
                     f"{e(view.workflow)}</a>"),
        ("nodes", f"{len(view.nodes):,}"),
        ("attempts", f"{view.attempts:,}"),
        ("retries", f"{view.retries:,}"),
        ("started", e(fmt.timestamp(view.created, millis=True))),
        ("finished", e(fmt.timestamp(view.finished, millis=True))),
        ("duration" + (" (since the last resume)" if resumes else ""),
         _duration_cell(view, state)),
        ("resumed", e(f"{resumes} time{'s' if resumes > 1 else ''}, last at "
                      f"{fmt.timestamp(view.started, millis=True)}" if resumes else "never")),
    ]
    if view.restored:
        facts.append(("restored from the store", f"{view.restored:,}"))
    if view.status == "running" and view.owner is not None:
        host, pid = view.owner
        facts.append(("held by", f"process {pid} on {e(host)}"))
        facts.append(("lease until", _time(view.lease_expires)))
    queue = data.get("queue")
    if isinstance(queue, str) and queue:
        facts.append(("queue", e(queue)))
    due = _number(data.get("due"))
    if due is not None and state in ("queued", "waiting"):
        facts.append(("due", e(fmt.timestamp(due))))
    recoveries = _count(data.get("recoveries"))
    if recoveries:
        facts.append(("recoveries", f"{recoveries}"))
    chips = "".join(f"<span>{chip(s)}{e(s)} {k:,}</span>" for s, k in counts.items())
    out = [f'<h1 data-run="{e(view.run_id)}" data-state="{e(state)}">{e(view.workflow)} '
           f"{badge(state)}</h1>",
           f'<p class="sub">run <code>{e(view.run_id)}</code>'
           + (f" \u00b7 part of run {layout.run_link(parent)}" if parent else "") + "</p>",
           '<div class="facts">' + "".join(f"<div><b>{k}</b>{v}</div>" for k, v in facts)
           + "</div>",
           f'<div class="chips">{chips}</div>']
    if state == "interrupted":
        out.append(f'<p class="note"><b>Interrupted</b>: stored as running, but '
                   f"{e(view.why_interrupted())}. Resume it to run what is left: the nodes "
                   "that succeeded are not run again.</p>")
    error = data.get("error")
    if error:
        out.append(f'<p class="flash error">{e(error)}</p>')
    if view.inputs is not None:
        out.append(f"<details><summary>Run inputs</summary><pre>{e(_json_text(view.inputs))}"
                   "</pre></details>")
    return "\n".join(out)


def _run_actions(layout: Layout, run_id: str, state: str, undone: bool = False) -> str:
    forms = []
    fields = {"run_id": run_id}
    if state in ("queued", "running", "waiting", "interrupted"):
        forms.append(layout.form("cancel", fields,
                                 '<button type="submit" class="danger">Cancel the run</button>'))
    if undone:  # rolled back to the end: resuming would run nothing (decision 020)
        return ('<div class="actions"><span class="note">Rolled back: what succeeded was '
                "undone, so the run is over and there is nothing to resume. Start a new "
                "run to try again.</span></div>")
    if state in ("waiting", "interrupted", "failed", "cancelled", "dead_letter"):
        label = "Wake it now" if state == "waiting" else "Resume"
        forms.append(layout.form("resume", fields,
                                 f'<button type="submit">{label}</button>'))
    if not forms:
        return ""
    what = {
        "running": "Cancelling fences its process out: it stops at its next checkpoint.",
        "queued": "Cancelling takes it out of the queue.",
        "waiting": "Waking has a worker check its waits now; cancelling ends it.",
        "interrupted": "Resuming queues it for a worker, which runs what is left.",
    }.get(state, "Resuming queues it for a worker, which runs what is left (the nodes "
                 "that succeeded are not run again).")
    return f'<div class="actions">{"".join(forms)}<span class="note">{e(what)}</span></div>'


def _waits(layout: Layout, forms: RunForms, actions: bool) -> str:
    waits, state, statuses, run_id = forms.waits, forms.state, forms.statuses, forms.run_id
    if not waits.kinds and not waits.waiting:
        return ""
    out = ['<h2 id="waits">Waits</h2>']
    if waits.waiting:
        rows = []
        for w in waits.waiting:
            node, kind = str(w.get("node", "")), str(w.get("kind", "signal"))
            due = _number(w.get("due"))
            until = ("fires at " if kind == "timer" else "times out at ") + fmt.timestamp(due) \
                if due is not None else "no timeout"
            got = " \u00b7 a signal is stored: the run wakes to take it" \
                if w.get("signalled") is True else ""
            form = _wait_form(layout, run_id, node, kind) if actions else ""
            rows.append(f'<div class="wait" data-node="{e(node)}" data-kind="{e(kind)}">'
                        f'<p><b>{e(node)}</b> <span class="tag">{e(kind)}</span> waiting '
                        f"since {_time(_number(w.get('since')))}, {e(until)}{got}</p>"
                        f"{form}</div>")
        out.append("".join(rows))
    elif state == "waiting":
        out.append('<p class="note">The run is parked, but no node of it is recorded as '
                   "waiting.</p>")
    ahead = [n for n, kind in waits.kinds.items() if kind in ("signal", "approval")
             and statuses.get(n, "pending") == "pending"
             and not any(w.get("node") == n for w in waits.waiting)]
    if ahead and actions and state not in _FINAL:
        out.append('<details class="ahead"><summary>Signal a wait node that is not waiting '
                   "yet (the signal is kept until it waits)</summary>"
                   + "".join(f'<div class="wait" data-node="{e(n)}"><p><b>{e(n)}</b> '
                             f'<span class="tag">{e(waits.kinds[n])}</span></p>'
                             f"{_wait_form(layout, run_id, n, waits.kinds[n])}</div>"
                             for n in ahead) + "</details>")
    return "".join(out) if len(out) > 1 else ""


def _wait_form(layout: Layout, run_id: str, node: str, kind: str) -> str:
    fields = {"run_id": run_id, "name": node}
    if kind == "approval":
        reject = e(layout.url("/actions/reject"))
        return layout.form("approve", fields, (
            '<label>by <input name="by" required autocomplete="name" '
            'placeholder="who decides"></label>'
            '<label>comment <input name="comment" placeholder="optional"></label>'
            '<button type="submit" class="ok">Approve</button>'
            f'<button type="submit" class="danger" formaction="{reject}">Reject</button>'))
    if kind == "signal":
        return layout.form("signal", fields, (
            '<label>payload (JSON) <textarea name="payload" rows="2" '
            'placeholder="{&quot;ok&quot;: true}"></textarea></label>'
            '<label>id <input name="signal_id" placeholder="optional: dedupes"></label>'
            '<button type="submit">Send the signal</button>'))
    return ""


def _children(layout: Layout, view: RunView, children: Children) -> str:
    if not children.count:
        return ""
    out = ['<h2 id="children">Sub-workflows and map items</h2>']
    for node, runs in children.by_node.items():
        counts: dict[str, int] = {}
        for _, run in runs:
            s = state_of(run)
            counts[s] = counts.get(s, 0) + 1
        summary = ", ".join(f"{k:,} {e(s)}" for s, k in counts.items())
        rows = "".join(
            f'<tr data-run="{e(run.get("run_id", ""))}" data-state="{e(state_of(run))}">'
            f'<td class="name">{layout.run_link(str(run.get("run_id", "")), rest or "(the run)")}'
            f"</td><td>{badge(state_of(run))}</td>"
            f"<td>{_time(_number(run.get('created')))}</td>"
            f'<td class="num">{_duration_cell(RunView.from_dict(run), state_of(run))}</td></tr>'
            for rest, run in runs[:MAX_CHILDREN])
        more = ""
        if len(runs) > MAX_CHILDREN:
            more = (f'<p class="note">{len(runs) - MAX_CHILDREN:,} more: '
                    f'<a href="{e(layout.url("/", {"q": f"{view.run_id}/{node}/"}))}">'
                    "all of them in the runs list</a></p>")
        out.append(f'<h3 data-node="{e(node)}">{e(node)} <span class="sub">{len(runs):,} '
                   f"run{'s' if len(runs) != 1 else ''}: {summary}</span></h3>"
                   '<table class="nodes"><thead><tr><th>run</th><th>status</th>'
                   '<th>started</th><th class="num">duration</th></tr></thead>'
                   f"<tbody>{rows}</tbody></table>{more}")
    return "".join(out)


def run_body(sections: Mapping[str, str], message: str | None = None,
             error: str | None = None) -> str:
    """A run's page: its live parts in order."""
    def part(name: str, title: str = "") -> str:
        head = f'<h2 id="{name}">{title}</h2>' if title else ""
        return f'{head}<div data-live="{name}">{sections.get(name, "")}</div>'

    return "".join([
        part("header"), flash(message, error), part("actions"), part("waits"),
        part("graph", "Graph"), part("timeline", "Timeline"), part("nodes", "Nodes"),
        part("children"), part("items"), part("compensation")])


def missing_run(layout: Layout, run_id: str, near: Iterable[str]) -> str:
    """The page of a run id the store does not have (with the near ones)."""
    near = list(near)
    hint = ("Did you mean " + ", ".join(layout.run_link(n) for n in near) + "?") if near else ""
    return (f"<h1>No such run</h1><p>The store has no run <code>{e(run_id)}</code>. {hint}</p>"
            f'<p><a href="{e(layout.url("/"))}">All runs</a></p>')


# -- schedules and workers ------------------------------------------------------------------


def schedules_sections(layout: Layout, schedules: Sequence[Mapping[str, Any]],
                       runs_by_schedule: Mapping[str, int], now: float) -> dict[str, str]:
    """The live part of the schedules page: ``schedules``, one row per schedule (what
    ``ScheduleRecord.to_dict()`` gives), with how many runs of it the store keeps."""
    if not schedules:
        return {"schedules": '<p class="empty">The store has no schedules. '
                             "<code>rt.schedule(wf, cron=..., name=...)</code> adds one.</p>"}
    rows = []
    for s in schedules:
        name = str(s.get("name", ""))
        cron, every = s.get("cron"), _number(s.get("every"))
        when = (f"<code>{e(cron)}</code> ({e(s.get('timezone', 'UTC'))})" if cron else
                f"every {e(fmt.duration(every))}" if every is not None else "-")
        next_due = _number(s.get("next_due"))
        late = next_due is not None and next_due < now
        runs = runs_by_schedule.get(name, 0)
        inputs = s.get("inputs")
        rows.append(
            f'<tr data-schedule="{e(name)}"><td class="name">{e(name)}</td>'
            f'<td><a href="{e(layout.url("/", {"workflow": str(s.get("workflow", ""))}))}">'
            f"{e(s.get('workflow', ''))}</a></td><td>{when}</td>"
            f'<td{_LATE if late else ""}>{_time(next_due)}'
            + (' <span class="tag">due: a worker fires it</span>' if late else "") + "</td>"
            f"<td>{e(s.get('last_slot') or '-')}</td><td>{e(s.get('queue', ''))}</td>"
            f"<td>{'every missed slot' if s.get('catch_up') is True else 'the latest'}</td>"
            f'<td class="num"><a href="{e(layout.url("/", {"q": f"sched:{name}:"}))}">'
            f"{runs:,}</a></td><td>"
            + (f"<details><summary>inputs</summary><pre>{e(inputs)}</pre></details>"
               if inputs not in (None, "", "{}", "null") else "") + "</td></tr>")
    return {"schedules": (
        '<table class="nodes"><thead><tr><th>schedule</th><th>workflow</th><th>when</th>'
        "<th>next slot</th><th>last slot</th><th>queue</th><th>missed slots run</th>"
        '<th class="num">runs</th><th></th></tr></thead><tbody>' + "".join(rows)
        + "</tbody></table>")}


def workers_sections(layout: Layout, holders: Sequence[Holder], snap: Snapshot,
                     now: float) -> dict[str, str]:
    """The live parts of the workers page: ``holders`` (each process that holds leases
    on running runs, with those runs and when its leases end) and ``queues`` (how many
    runs wait in each queue, due now or later, and how many are parked)."""
    if holders:
        rows = []
        for h in holders:
            state = "gone" if h.gone else "live"
            why = ""
            if h.gone:
                view = RunView.from_dict(h.runs[0])
                why = f'<div class="note">{e(view.why_interrupted(now))}</div>'
            runs = ", ".join(layout.run_link(str(r.get("run_id", ""))) for r in h.runs[:20])
            if len(h.runs) > 20:
                runs += f" and {len(h.runs) - 20:,} more"
            who = (f"process {h.pid} on {e(h.host)}" if h.host else "no holder recorded")
            shown = badge("running" if state == "live" else "interrupted")
            rows.append(f'<tr data-holder="{e(h.host)}:{h.pid}" data-state="{state}">'
                        f"<td>{who}</td><td>{shown}{why}</td>"
                        f'<td class="num">{len(h.runs):,}</td>'
                        f"<td>{_time(h.lease_expires)}</td><td>{runs}</td></tr>")
        held = ('<table class="nodes"><thead><tr><th>process</th><th>state</th>'
                '<th class="num">runs held</th><th>earliest lease end</th><th>runs</th></tr>'
                "</thead><tbody>" + "".join(rows) + "</tbody></table>")
    else:
        held = '<p class="empty">No process holds a run now.</p>'
    queues: dict[str, dict[str, int]] = {}
    for run in snap.runs:
        status = run.get("status")
        if status not in ("queued", "waiting"):
            continue
        name = run.get("queue")
        q = queues.setdefault(str(name) if name else "(none: its caller resumes it)", {})
        due = _number(run.get("due"))
        key = status if status == "waiting" else "due" if due is not None and due <= now \
            else "later"
        q[key] = q.get(key, 0) + 1
    if queues:
        qrows = "".join(
            f'<tr data-queue="{e(name)}"><td class="name">{e(name)}</td>'
            f'<td class="num">{c.get("due", 0):,}</td><td class="num">{c.get("later", 0):,}</td>'
            f'<td class="num">{c.get("waiting", 0):,}</td></tr>'
            for name, c in sorted(queues.items()))
        queue_html = ('<table class="nodes"><thead><tr><th>queue</th>'
                      '<th class="num">queued, due</th><th class="num">queued, later</th>'
                      '<th class="num">parked (waiting)</th></tr></thead><tbody>' + qrows
                      + "</tbody></table>")
    else:
        queue_html = '<p class="empty">No run is queued or parked.</p>'
    return {"holders": held, "queues": queue_html}


# -- login and errors -----------------------------------------------------------------------


def login_page(base: str, target: str, error: str | None) -> str:
    """The login form (the page every request without the token gets): self-contained,
    since the dashboard's style sheets need the token too."""
    msg = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>log in \u00b7 flowrt</title><style>"
        "body{font:15px/1.5 system-ui,sans-serif;color:#1f2328;display:flex;"
        "justify-content:center;padding-top:12vh;margin:0}"
        "form{border:1px solid #d0d7de;border-radius:8px;padding:24px 28px;width:360px}"
        "h1{font-size:20px;margin:0 0 8px}p{color:#656d76;margin:0 0 16px}"
        "input{width:100%;font:inherit;padding:6px 8px;margin:4px 0 14px;"
        "border:1px solid #d0d7de;border-radius:6px;box-sizing:border-box}"
        "button{font:inherit;padding:6px 16px;border-radius:6px;border:1px solid #1f883d;"
        "background:#1f883d;color:#fff;cursor:pointer}.error{color:#b42318}"
        "</style></head><body>"
        f'<form method="post" action="{e(base)}/login"><h1>flowrt</h1>'
        "<p>This dashboard needs the token it was started with (<code>--token</code>).</p>"
        f"{msg}"
        '<label>token <input type="password" name="token" autocomplete="current-password" '
        'required autofocus></label>'
        f'<input type="hidden" name="next" value="{e(target)}">'
        '<button type="submit">log in</button></form></body></html>\n')


def error_body(layout: Layout, title: str, message: str) -> str:
    """A page that says what went wrong."""
    return (f"<h1>{e(title)}</h1>{flash(None, message)}"
            f'<p><a href="{e(layout.url("/"))}">All runs</a></p>')
