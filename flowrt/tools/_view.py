"""A run as the tools show it: one shape for a stored run and a live result.

:class:`RunView` is what ``flowrt show``, the HTML report (and a live page later) draw.
It is made from ``to_dict()`` data (:meth:`flowrt.RunResult.to_dict`,
:meth:`flowrt.StoredRun.to_dict`), checking every value's type on the way in: a store
is a file that anyone with access may have written, so here a count is an int, a time
a finite float or None, a text a str -- whatever the file holds. Texts still need
escaping on the way out (HTML, terminal): see ``_format.for_terminal``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import attrs

from . import _format as fmt

__all__ = ["NodeView", "RunView", "latest_start"]


def _number(value: Any) -> float | None:
    """A time or duration read from a store: a finite float, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _count(value: Any) -> int:
    """A count read from a store: a non-negative int, else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@attrs.frozen
class NodeView:
    """One node as the tools show it: its ``name``, ``status``, ``attempts``, the
    wall-clock times it ``started`` (its first attempt) and ``finished``, its ``error``
    ("Type: message") and ``traceback`` when it failed, its ``deps`` (the names of its
    dependencies) and whether it was ``restored``."""

    name: str
    status: str  #: a Status name; "pending" for a node with no record
    attempts: int
    started: float | None
    finished: float | None
    error: str | None
    traceback: str | None
    deps: tuple[str, ...]
    #: read back from the store by the latest start of the run, not run by it
    restored: bool = False
    #: a mapped node's items per status ("succeeded": 8, "failed": 1, ...); None for
    #: other nodes
    items: Mapping[str, int] | None = None

    @property
    def items_text(self) -> str:
        """A mapped node's item counts as the tools write them: "8 ok / 1 failed /
        0 running" (other statuses appended when there are some); "" for other nodes."""
        return items_text(self.items)

    @property
    def items_brief(self) -> str:
        """:attr:`items_text` short enough for a graph's box (:func:`items_brief`)."""
        return items_brief(self.items)

    @property
    def duration(self) -> float | None:
        """Seconds from the first attempt's start to the end, or None."""
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    @property
    def latest_start(self) -> str:
        """What the run's latest start did with the node (see :func:`latest_start`)."""
        return latest_start(self.status, self.attempts, self.restored)


def items_text(counts: Mapping[str, int] | None) -> str:
    """Item counts as "8 ok / 1 failed / 0 running" (plus any other status that has
    items: skipped, cancelled, pending); "" for None."""
    if counts is None:
        return ""
    running = counts.get("running", 0) + counts.get("ready", 0)
    parts = [f"{counts.get('succeeded', 0)} ok", f"{counts.get('failed', 0)} failed",
             f"{running} running"]
    parts += [f"{c} {s}" for s, c in counts.items()
              if c and s not in ("succeeded", "failed", "running", "ready")]
    return " / ".join(parts)


def items_brief(counts: Mapping[str, int] | None) -> str:
    """Item counts short enough for a node's box in a graph: "11/12 ok, 1 failed" --
    the items that succeeded out of all, then only the other statuses that have items
    (failed first, running last); "no items" for an empty map, "" for None. After a
    rollback, "undone 3/4, 1 failed": of the 4 items whose compensation ran, 3 were
    undone (the "ok" part goes when none is left succeeded)."""
    if counts is None:
        return ""
    total = sum(counts.values())
    if not total:
        return "no items"
    succeeded = counts.get("succeeded", 0)
    undone = counts.get("compensated", 0)
    undo = undone + counts.get("compensation_failed", 0)
    parts = [f"{succeeded}/{total} ok"] if succeeded or not undo else []
    if undo:
        parts.append(f"undone {undone}/{undo}")
    if counts.get("failed"):
        parts.append(f"{counts['failed']} failed")
    parts += [f"{c} {s}" for s, c in counts.items()
              if c and s not in ("succeeded", "failed", "running", "ready", "compensated",
                                 "compensation_failed")]
    running = counts.get("running", 0) + counts.get("ready", 0)
    if running:
        parts.append(f"{running} running")
    return ", ".join(parts)


def latest_start(status: str, attempts: int, restored: bool) -> str:
    """What the latest start of a resumed run did with a node, for a table:
    ``"restored"`` (it succeeded in an earlier start and was read back, not run again),
    ``"earlier"`` (it ended otherwise in an earlier start and this one did not reach
    it), ``"ran"`` (it ran in this start), ``"cached"`` (this start read its output from
    the cache), ``"-"`` (it did not run)."""
    if status == "cached" and not restored:
        return "cached"
    if restored:
        return "restored" if status == "succeeded" else "earlier"
    return "ran" if attempts and status != "pending" else "-"


@attrs.frozen
class RunView:
    """A run as the tools show it (see the module docs); made by :meth:`from_dict`.

    ``workflow`` and ``run_id`` name it; ``created`` is when the run was first started,
    ``started`` its latest start (the same unless it was resumed), ``finished`` its end
    (None while it runs), ``resumes`` how many times it was started again; ``inputs``
    are its run inputs as JSON-ready data (None when unknown) and ``nodes`` its
    :class:`NodeView` in the workflow's order.
    """

    workflow: str
    run_id: str
    status: str  #: as stored: "running", "succeeded", "failed" or "cancelled"
    created: float
    started: float
    finished: float | None
    resumes: int
    inputs: Any
    nodes: tuple[NodeView, ...]
    #: stored as running, but nobody runs it any more (its lease ran out or its
    #: process is gone): it can be resumed
    interrupted: bool = False
    #: who holds a running run: (host, pid)
    owner: tuple[str, int] | None = None
    #: until when the holder's lease lasts unless renewed (wall-clock seconds)
    lease_expires: float | None = None

    def why_interrupted(self, now: float | None = None) -> str:
        """Why an interrupted run is (``""`` for another): ``"process 41 on web-1, which
        ran it, is gone"``, or that its lease ran out before ``now`` (default: the
        current time)."""
        if not self.interrupted:
            return ""
        if self.owner is None:
            return "no process holds it"
        host, pid = self.owner
        now = time.time() if now is None else now
        if self.lease_expires is not None and self.lease_expires < now:
            return (f"process {pid} on {host} stopped renewing its lease, which ran out "
                    f"at {fmt.timestamp(self.lease_expires)}")
        return f"process {pid} on {host}, which ran it, is gone"

    @property
    def state(self) -> str:
        """The status to show: ``"interrupted"`` for an interrupted run, else ``status``."""
        return "interrupted" if self.interrupted else self.status

    @property
    def duration(self) -> float | None:
        """Seconds from the latest start to the end, or None while running."""
        return None if self.finished is None else self.finished - self.started

    @property
    def restored(self) -> int:
        """Nodes read back from the store by the latest start, not run again."""
        return sum(1 for n in self.nodes if n.restored and n.status == "succeeded")

    def counts(self) -> dict[str, int]:
        """Nodes per status, in the order statuses first appear."""
        counts: dict[str, int] = {}
        for n in self.nodes:
            counts[n.status] = counts.get(n.status, 0) + 1
        return counts

    @property
    def attempts(self) -> int:
        """Attempts of every node, retries included."""
        return sum(n.attempts for n in self.nodes)

    @property
    def retries(self) -> int:
        """Attempts after a node's first."""
        return self.attempts - sum(1 for n in self.nodes if n.attempts)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunView:
        """The view of a run given as ``to_dict()`` data (of a result or a stored run)."""
        raw_nodes = data.get("nodes")
        nodes = []
        for name, node in (raw_nodes.items() if isinstance(raw_nodes, Mapping) else ()):
            node = node if isinstance(node, Mapping) else {}
            deps = node.get("deps")
            items = node.get("items")
            nodes.append(NodeView(
                str(name), str(node.get("status", "pending")), _count(node.get("attempts")),
                _number(node.get("started")), _number(node.get("finished")),
                _text(node.get("error")), _text(node.get("traceback")),
                tuple(str(d) for d in deps) if isinstance(deps, list | tuple) else (),
                node.get("restored") is True,
                {str(k): _count(v) for k, v in items.items()}
                if isinstance(items, Mapping) else None))
        started = _number(data.get("started"))
        created = _number(data.get("created"))
        if started is None:
            started = created if created is not None else 0.0
        owner = data.get("owner")
        holder = None
        if isinstance(owner, Mapping):
            holder = (str(owner.get("host", "?")), _count(owner.get("pid")))
        return cls(str(data.get("workflow", "")), str(data.get("run_id", "")),
                   str(data.get("status", "")), started if created is None else created,
                   started, _number(data.get("finished")), _count(data.get("resumes")),
                   data.get("inputs"), tuple(nodes), data.get("interrupted") is True,
                   holder, _number(data.get("lease_expires")))
