"""Events and hooks: how a run tells the outside world what it does.

Every state change of a run is an :class:`~flowrt.Event`, passed to the run's
``on_event`` hooks. The same changes are logged through structlog on the ``flowrt``
logger (:mod:`flowrt._logging`), bound with the workflow, run id and node: node
lifecycle at DEBUG, run start and end at INFO, node failures at WARNING. When neither a
hook nor an enabled log level wants node events, the run does not build them at all.
"""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Sequence

from .._logging import logger
from .._types import Event, Hook
from ..errors import HookError

__all__ = ["normalize_hooks", "report_hook_error"]


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
