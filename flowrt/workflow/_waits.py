"""Wait nodes: a signal, an approval or a timer, as a node of its own.

``wf.signal(name)``, ``wf.approval(name)`` and ``wf.timer(name, delay=...)`` add a node
whose callable is a :class:`WaitSpec`: the engine never calls it, it waits instead
(status WAITING) -- for a signal sent to the run under the node's name, or for the
runtime's clock to reach the timer's due time -- and the node then succeeds with the
signal's payload (a timer's output is None). Because the wait is a node, nothing of the
user's code runs again when a run that waited wakes up: the nodes before it succeeded
and are read back, the wait node takes its signal, the nodes after it run.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

import attrs

from ..errors import GraphError, Rejected, SignalRefused

__all__ = ["APPROVAL", "SIGNAL", "TIMER", "WAIT_KINDS", "WaitSpec", "approval_payload",
           "approved", "seconds", "signal_refused", "wait_spec"]

SIGNAL: Final = "signal"
APPROVAL: Final = "approval"
TIMER: Final = "timer"
#: what a wait node waits for (the kinds a store keeps in a run's ``waits``)
WAIT_KINDS: Final = (SIGNAL, APPROVAL, TIMER)


@attrs.frozen
class WaitSpec:
    """What a wait node waits for: ``wf.nodes[name].fn`` of a signal, approval or timer.

    ``timeout`` (signal, approval): seconds from when the node begins waiting to when it
    fails with :class:`~flowrt.SignalTimeout` (None: no limit). ``delay`` (timer): seconds
    from when it begins waiting; ``until`` (timer): a wall-clock time, seconds since the
    epoch. Times are read on the runtime's clock (``Runtime(clock=...)``).
    """

    kind: str  #: "signal", "approval" or "timer"
    timeout: float | None = None
    delay: float | None = None
    until: float | None = None

    def due(self, since: float) -> float | None:
        """When a wait that began at ``since`` fires (a timer) or times out (a signal)."""
        if self.kind == TIMER:
            return self.until if self.until is not None else since + (self.delay or 0.0)
        return None if self.timeout is None else since + self.timeout

    def __call__(self) -> None:
        raise TypeError(f"a {self.kind} node is not called: the runtime waits for it")


def seconds(value: Any, what: str, node: str) -> float:
    """``value`` (seconds or a ``timedelta``) as seconds >= 0; raises ``GraphError``."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
        raise GraphError(f"node {node!r}: {what}= takes seconds (a number >= 0) or a "
                         f"timedelta, got {value!r}")
    return float(value)


def wait_spec(kind: str, node: str, *, timeout: Any = None, delay: Any = None,
              until: Any = None) -> WaitSpec:
    """The checked :class:`WaitSpec` of wait node ``node``; raises ``GraphError``."""
    if kind != TIMER:
        return WaitSpec(kind, None if timeout is None else seconds(timeout, "timeout", node))
    if (delay is None) == (until is None):
        raise GraphError(f"timer {node!r}: give delay= (seconds or a timedelta) or until= "
                         "(an aware datetime), exactly one of them")
    if until is None:
        return WaitSpec(kind, delay=seconds(delay, "delay", node))
    if not isinstance(until, datetime) or until.utcoffset() is None:
        raise GraphError(f"timer {node!r}: until= takes an aware datetime (with a tzinfo, "
                         f"such as datetime(2025, 1, 1, 2, tzinfo=timezone.utc)), got "
                         f"{until!r}")
    return WaitSpec(kind, until=until.timestamp())


def signal_refused(run_id: str, workflow: str, waits: Mapping[str, str], name: str,
                   succeeded: bool = False) -> SignalRefused | None:
    """Why signal ``name`` cannot go to run ``run_id`` of ``workflow`` whose wait nodes
    are ``waits`` (node -> kind), naming the near match and the signals it has; None
    when it can (a signal or approval node ``name``, and the run has not succeeded)."""
    kind = waits.get(name)
    if kind is not None and kind != TIMER:
        if succeeded:
            return SignalRefused(f"run {run_id!r} has succeeded: none of its nodes waits "
                                 f"for signal {name!r} any more")
        return None
    names = [n for n, k in waits.items() if k != TIMER]
    if kind == TIMER:
        message = f"node {name!r} of run {run_id!r} is a timer: it takes no signal"
    else:
        message = f"run {run_id!r} has no signal {name!r}"
        near = difflib.get_close_matches(name, names, n=1)
        if near:
            message += f"; did you mean {near[0]!r}?"
    if names:
        message += f" (its signal and approval nodes: {', '.join(map(repr, names))})"
    else:
        message += f" (workflow {workflow!r} has no signal or approval node)"
    return SignalRefused(message)


def approval_payload(payload: Any, name: str = "approval") -> tuple[bool, str | None,
                                                                     str | None]:
    """``(approved, by, comment)`` of an approval's payload.

    Raises:
        SignalRefused: the payload is not a mapping with ``"approved"`` True or False.
    """
    if not isinstance(payload, Mapping) or not isinstance(payload.get("approved"), bool):
        raise SignalRefused(f"node {name!r} is an approval: its payload must be a mapping "
                            "with 'approved' true or false (and optionally 'by' and "
                            f"'comment'), got {payload!r}")
    by, comment = payload.get("by"), payload.get("comment")
    return (payload["approved"], None if by is None else str(by),
            None if comment is None else str(comment))


def approved(payload: Any, name: str) -> Any:
    """The output of approval node ``name`` given ``payload``: the payload when it
    approves. Raises :class:`~flowrt.Rejected` when it rejects (or says neither)."""
    try:
        ok, by, comment = approval_payload(payload, name)
    except SignalRefused as error:  # stored by an older sender: a rejection, explained
        raise Rejected(name, None, str(error)) from None
    if not ok:
        raise Rejected(name, by, comment)
    return payload
