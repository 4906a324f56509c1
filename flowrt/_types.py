"""The plain value types of flowrt: statuses, trigger rules, retry policy, events.

Everything here is data with a little behaviour of its own and no dependency on the
rest of the package, so that every layer may use it.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable
from typing import Any, Literal, Protocol, runtime_checkable

import attrs

__all__ = ["BY_NAME", "BY_VALUE", "FINAL", "NAMES", "Cache", "Event", "EventKind", "Executor",
           "ExecutorChoice", "Hook", "RemoteExecutor", "Retry", "RunStatus", "Status",
           "Trigger", "holds"]


# -- node and run statuses -----------------------------------------------------------


class Status(enum.IntEnum):
    """Where a node is in its life. Values are the bytes stored on the board."""

    PENDING = 0  #: waiting for its dependencies
    READY = 1  #: dependencies done and trigger holds; waiting for a runner, a limit or a retry
    RUNNING = 2  #: an attempt is executing
    SUCCEEDED = 3  #: final: produced its output
    FAILED = 4  #: final: the last attempt raised
    SKIPPED = 5  #: final: its trigger rule could not hold
    CANCELLED = 6  #: final: the run was cancelled before the node finished
    # -- branches (design.md, "Control flow") --
    #: final: on a path a branch did not take (not a failure: the run stays ok)
    BYPASSED = 7
    # -- waits (issue 14): not final (the only status after the final ones that is not)
    #: a signal, approval or timer node waiting for its signal or its time
    WAITING = 8
    # -- saga compensation (docs/compensation.md) --
    #: final: it succeeded, then the run failed and its ``compensate=`` undid it
    COMPENSATED = 9
    #: final: it succeeded, then the run failed and its ``compensate=`` raised
    COMPENSATION_FAILED = 10
    # -- end saga compensation --
    # -- caching (docs/caching.md) --
    #: final: its output was read from the cache instead of running it (counts as a
    #: success for its dependents and the run)
    CACHED = 11

    def __str__(self) -> str:
        return self.name.lower()

    @property
    def final(self) -> bool:
        """True for every status from SUCCEEDED on but WAITING (all but PENDING, READY,
        RUNNING and WAITING)."""
        return self in FINAL


#: The final statuses.
FINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.SKIPPED, Status.CANCELLED,
                   Status.BYPASSED, Status.COMPENSATED, Status.COMPENSATION_FAILED,
                   Status.CACHED})

#: Status by its byte value (0 .. 10): a tuple index, where Status(b) is an enum lookup
BY_VALUE: tuple[Status, ...] = tuple(Status)
#: Status name by its byte value: what stores and tools write ("succeeded", ...)
NAMES: tuple[str, ...] = tuple(map(str, Status))
#: Status by its name: what stores and tools read back
BY_NAME: dict[str, Status] = {str(s): s for s in Status}


class RunStatus(enum.StrEnum):
    """How a run ended."""

    SUCCEEDED = "succeeded"  #: no node failed and the run was not cancelled
    FAILED = "failed"  #: a node failed (and the run was not stopped by its timeout)
    CANCELLED = "cancelled"  #: the run's ``timeout=`` expired (or nodes were cancelled)
    #: parked (``run(..., park=True)``, or by a worker): every node left waits for a
    #: signal or a timer; a signal, the due timer or ``resume`` continues it
    WAITING = "waiting"
    #: its workers died ``max_recoveries`` times running it, or it could not be read
    DEAD_LETTER = "dead_letter"


# -- trigger rules ------------------------------------------------------------------


class Trigger(enum.StrEnum):
    """When a node runs, given its direct dependencies' final statuses.

    The rules and their names are Airflow's. A rule is checked once, when every direct
    dependency of the node has reached a final status; a node whose rule does not hold
    is SKIPPED (and its own dependents see a skipped dependency). A node without
    dependencies always runs.

    BYPASSED dependencies (on a path a branch did not take) are left out of the count,
    except that a node whose dependencies are all BYPASSED, or any of them under
    ``ALL_SUCCESS``, is BYPASSED too; a merge after a branch takes a rule that tolerates
    them, usually ``NONE_FAILED_MIN_ONE_SUCCESS`` (docs/branching.md).
    """

    ALL_SUCCESS = "all_success"  #: every dependency succeeded (the default)
    ALL_DONE = "all_done"  #: every dependency is final, however it ended
    ONE_SUCCESS = "one_success"  #: at least one dependency succeeded
    ONE_FAILED = "one_failed"  #: at least one dependency failed
    NONE_FAILED = "none_failed"  #: no dependency failed (skipped ones are fine)
    ALL_FAILED = "all_failed"  #: every dependency failed
    # -- branches (design.md, "Control flow") --
    #: no dependency failed and at least one succeeded: the merge after a branch
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"

    @property
    def code(self) -> int:
        """A small int for the plan's per-node byte array (ALL_SUCCESS is 0)."""
        return _CODES[self]

    def holds(self, deps: int, succeeded: int, failed: int) -> bool:
        """Whether the rule holds for ``deps`` dependencies of which so many ended so."""
        return holds(_CODES[self], deps, succeeded, failed)


_CODES = {t: i for i, t in enumerate(Trigger)}


def holds(code: int, deps: int, succeeded: int, failed: int) -> bool:
    """The rule with ``code`` for ``deps`` final dependencies, ``succeeded``/``failed`` of them."""
    if deps == 0:
        return True
    if code == 0:  # ALL_SUCCESS
        return succeeded == deps
    if code == 1:  # ALL_DONE
        return True
    if code == 2:  # ONE_SUCCESS
        return succeeded > 0
    if code == 3:  # ONE_FAILED
        return failed > 0
    if code == 4:  # NONE_FAILED
        return failed == 0
    if code == 5:  # ALL_FAILED
        return failed == deps
    # -- branches --
    return failed == 0 and succeeded > 0  # NONE_FAILED_MIN_ONE_SUCCESS


# -- retry policy -------------------------------------------------------------------


def _exception_types(
    value: type[BaseException] | tuple[type[BaseException], ...] | list[type[BaseException]],
) -> tuple[type[BaseException], ...]:
    types = tuple(value) if isinstance(value, tuple | list) else (value,)
    for t in types:
        if not (isinstance(t, type) and issubclass(t, BaseException)):
            raise TypeError(f"Retry(on=...) takes exception types, got {t!r}")
    return types


def _positive_int(inst: Retry, attr: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"Retry.{attr.name} must be an int >= 1, got {value!r}")


def _non_negative(inst: Retry, attr: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f"Retry.{attr.name} must be a number >= 0, got {value!r}")


@attrs.frozen
class Retry:
    """Retry a failing node.

    ``attempts`` counts every attempt, the first included: ``Retry(attempts=3)`` runs a
    node at most three times. (``retries=n`` on a node means ``Retry(attempts=n + 1)``.)
    Before attempt ``k + 1`` the node waits ``delay * factor ** (k - 1)`` seconds, capped
    at ``max_delay``, then scaled by a random factor in ``[1 - jitter, 1 + jitter]`` so
    that many failing nodes do not retry in lockstep. Only exceptions that are instances
    of ``on`` are retried; any other fails the node at once.
    """

    attempts: int = attrs.field(default=3, validator=_positive_int)
    delay: float = attrs.field(default=0.1, validator=_non_negative)
    factor: float = attrs.field(default=2.0, validator=_non_negative)
    max_delay: float = attrs.field(default=30.0, validator=_non_negative)
    jitter: float = attrs.field(default=0.1, validator=_non_negative)
    on: tuple[type[BaseException], ...] = attrs.field(
        default=(Exception,), converter=_exception_types
    )

    def __attrs_post_init__(self) -> None:
        if self.jitter > 1:
            raise ValueError(f"Retry.jitter must be between 0 and 1, got {self.jitter!r}")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (from 1)."""
        try:
            base = self.delay * self.factor ** (attempt - 1) if self.delay else 0.0
        except OverflowError:  # a float power past 1e308: far beyond any cap
            base = math.inf
        base = min(base, self.max_delay)
        if self.jitter and base:
            base *= 1.0 + self.jitter * (2.0 * random.random() - 1.0)
        return base

    def retries(self, error: BaseException) -> bool:
        """Whether ``error`` is one this policy retries."""
        return isinstance(error, self.on)


# -- caching (docs/caching.md, docs/decisions/021-cache-keys.md) ----------------------


def _cache_ttl(inst: Cache, attr: attrs.Attribute[float | None], value: float | None) -> None:
    if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)
                              or not value > 0):
        raise ValueError(f"Cache.ttl must be seconds > 0 or None, got {value!r}")


def _cache_key(inst: Cache, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"Cache.key must be a callable or None, got {value!r}")


def _cache_version(inst: Cache, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"Cache.version must be a str or None, got {value!r}")


@attrs.frozen
class Cache:
    """Cache a node's output: ``@wf.node(cache=flowrt.Cache())``.

    A node whose key is in the cache does not run: it ends CACHED with the output
    stored under that key. The key is the node's name, its ``version`` and a hash of its
    arguments (their JSON-canonical form: equal values hash equal whatever the order of
    a dict's keys or a set's items; a list's order counts). Resources and the
    :class:`~flowrt.Context` are never part of it.

    Args:
        ttl: seconds an entry is good for, from when it was stored (by the runtime's
            clock); None keeps it until it is replaced.
        key: a function called with the node's arguments by parameter name (a dict)
            that returns what identifies them (a str, or any JSON-ready value); it
            replaces the hash of the arguments (the name and version stay in the key).
        version: the node's version; by default a hash of its code, so that changing
            the code misses the old entries. Give one to keep entries across edits
            that do not change the result (or to share entries between processes whose
            code differs only in form).

    Raises:
        ValueError: a ``ttl`` that is not a number > 0.
        TypeError: a ``key`` that is not callable, a ``version`` that is not a str.
    """

    ttl: float | None = attrs.field(default=None, validator=_cache_ttl)
    key: Callable[[dict[str, Any]], Any] | None = attrs.field(default=None,
                                                               validator=_cache_key)
    version: str | None = attrs.field(default=None, validator=_cache_version)


# -- events -------------------------------------------------------------------------


class EventKind(enum.StrEnum):
    """What happened. ``str(kind)`` names the step: ``"started"``, ``"succeeded"``..."""

    RUN_STARTED = "run_started"
    READY = "ready"
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYING = "retrying"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    BYPASSED = "bypassed"  #: on a path a branch did not take
    # -- saga compensation --
    COMPENSATING = "compensating"  #: a node's compensation starts
    COMPENSATED = "compensated"  #: it returned
    COMPENSATION_FAILED = "compensation_failed"  #: it raised (``error``)
    # -- end saga compensation --
    RUN_FINISHED = "run_finished"
    # -- waits (issue 14)
    WAITING = "waiting"  #: a wait node began waiting for its signal or its time
    # -- caching --
    CACHED = "cached"  #: the node's output was read from the cache; it did not run

@attrs.frozen
class Event:
    """One state change of a run, as ``on_event`` hooks receive it.

    ``kind`` says what happened (``str(kind)`` names it); ``workflow`` and ``run_id``
    name the run; ``node`` is None for run events; ``attempt`` is the node's attempt
    number (0 before its first attempt and for run events); ``time`` is the wall-clock
    time (seconds since the epoch); ``error`` is the exception of a failed or retried
    attempt; ``item`` is the index of the item of a mapped node the event is about
    (None for the mapped node itself and for other nodes).
    """

    kind: EventKind
    workflow: str
    run_id: str
    node: str | None = None
    attempt: int = 0
    time: float = 0.0
    error: BaseException | None = None
    #: the run's final status, on RUN_FINISHED
    status: str | None = None
    #: the item's index, for an event about one item of a mapped node (None otherwise)
    item: int | None = None


#: An ``on_event`` hook: a plain function called with each event, in the event loop.
#: Keep it quick; it runs between node steps.
Hook = Callable[[Event], Any]


# -- executors ----------------------------------------------------------------------
# The protocols live here, below every layer, because a node's options name an executor
# (flowrt.workflow) and the engine calls one; the executors themselves are in
# flowrt.executors.


@runtime_checkable
class Executor(Protocol):
    """Runs a sync callable somewhere and awaits its result.

    Any object with this ``run`` method is an executor (``isinstance(x, Executor)``
    checks it); see docs/executors.md, "Writing an executor".
    """

    async def run(self, fn: Callable[..., Any], args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> Any:
        """Call ``fn(*args, **kwargs)`` somewhere and return its result.

        Awaited in the run's event loop, on asyncio or trio. The exception ``fn`` raises
        is raised here (it fails or retries the node's attempt). Cancelling this call
        (a timeout, a cancelled run) must give the work up, and cancel it where that
        is possible.
        """
        ...


@runtime_checkable
class RemoteExecutor(Executor, Protocol):
    """An executor that can leave outputs where it computed them (a cluster's memory).

    ``run(..., keep=True)`` returns a :class:`flowrt.executors.Remote` instead of the
    value, and accepts the Remotes it made as arguments (they stay remote). flowrt asks
    for that only when every node reading the output runs on the same executor, brings
    the outputs back with one :meth:`fetch_many` per executor at the end of the run, then
    :meth:`release` s them.
    """

    async def run(self, fn: Callable[..., Any], args: tuple[Any, ...],
                  kwargs: dict[str, Any], keep: bool = False) -> Any:
        """Call ``fn(*args, **kwargs)`` on the cluster; with ``keep``, leave the output
        there and return a :class:`flowrt.executors.Remote` for it. Arguments may be
        Remotes this executor made."""
        ...

    async def fetch_many(self, handles: list[Any]) -> list[Any]:
        """The values behind ``handles`` (the ``Remote.handle`` of outputs it kept), in
        order."""
        ...

    def release(self, handles: list[Any]) -> None:
        """Let the executor forget the outputs behind ``handles``."""
        ...


#: An ``executor=`` value: where sync nodes run. None is the default (the run's, else
#: worker threads).
ExecutorChoice = Literal["thread", "loop", "process"] | Executor | None
