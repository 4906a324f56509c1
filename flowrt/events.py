"""Events, hooks and logging: how a run tells the outside world what it does.

Every state change of a run is an :class:`Event`, passed to the run's ``on_event``
hooks. The same changes are logged through structlog on the ``flowrt`` logger, bound
with the workflow, run id and node: node lifecycle at DEBUG, run start and end at INFO,
node failures at WARNING.

flowrt never configures logging. When the application has configured structlog,
flowrt's logger follows that configuration; when it has not, flowrt logs through the
standard library's ``logging.getLogger("flowrt")`` (which, as for any library, has a
``NullHandler``), so that the usual ``logging`` levels and handlers decide what is shown.
When neither a hook nor an enabled log level wants node events, the run does not build
them at all.
"""

from __future__ import annotations

import enum
import logging
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import structlog

__all__ = ["Event", "EventKind", "Hook", "HookError", "logger"]

_stdlib_logger = logging.getLogger("flowrt")
_stdlib_logger.addHandler(logging.NullHandler())


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
    RUN_FINISHED = "run_finished"


@attrs.frozen
class Event:
    """One state change of a run.

    ``node`` is None for run events; ``attempt`` is the node's attempt number (0 before
    its first attempt and for run events); ``time`` is the wall-clock time (seconds
    since the epoch); ``error`` is the exception of a failed or retried attempt.
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


#: An ``on_event`` hook: a plain function called with each event, in the event loop.
#: Keep it quick; it runs between node steps.
Hook = Callable[[Event], Any]


class HookError(RuntimeWarning):
    """Warning issued (once per run) when an ``on_event`` hook raised."""


def logger() -> Any:
    """The ``flowrt`` structlog logger (see the module docs for where it writes)."""
    if structlog.is_configured():
        return structlog.get_logger("flowrt")
    return structlog.wrap_logger(
        _stdlib_logger,
        wrapper_class=structlog.stdlib.BoundLogger,
        processors=[structlog.stdlib.render_to_log_kwargs],
    )


def is_enabled(log: Any, level: int) -> bool:
    """Whether ``log`` would emit at ``level`` (True when it cannot tell)."""
    check = getattr(log, "is_enabled_for", None)
    if check is None:
        return True
    try:
        return bool(check(level))
    except Exception:  # a proxy whose wrapped logger cannot answer
        return True


def normalize_hooks(on_event: Hook | Sequence[Hook] | None) -> tuple[Hook, ...]:
    """``on_event=`` as a tuple of hooks."""
    if on_event is None:
        return ()
    if callable(on_event):
        return (on_event,)
    hooks = tuple(on_event)
    for h in hooks:
        if not callable(h):
            raise TypeError(f"on_event takes callables, got {h!r}")
    return hooks


def report_hook_error(hook: Hook, event: Event, error: BaseException, first: bool) -> None:
    """Make a failing hook visible: logged at ERROR, and a warning for the first per run."""
    logger().error("on_event hook failed", hook=repr(hook), on=str(event.kind),
                   node=event.node, run_id=event.run_id, exc_info=error)
    if first:
        detail = "".join(traceback.format_exception_only(type(error), error)).strip()
        warnings.warn(
            f"flowrt: on_event hook {hook!r} raised on {event.kind} of "
            f"{event.node or 'the run'}: {detail} (the run goes on; see RunResult.hook_errors)",
            HookError,
            stacklevel=2,
        )
