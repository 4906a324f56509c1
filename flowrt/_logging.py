"""flowrt's logger: structlog when the application configured it, else stdlib logging.

flowrt never configures logging. When the application has configured structlog,
flowrt's logger follows that configuration; when it has not, flowrt logs through the
standard library's ``logging.getLogger("flowrt")`` (which, as for any library, has a
``NullHandler``), so that the usual ``logging`` levels and handlers decide what is shown.
See docs/decisions/004-logging-without-configuring.md.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

__all__ = ["is_enabled", "logger", "trace_ids"]

_stdlib_logger = logging.getLogger("flowrt")
_stdlib_logger.addHandler(logging.NullHandler())


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


def trace_ids() -> dict[str, str]:
    """``trace_id`` and ``span_id`` of the current OpenTelemetry span (hex, as trace
    backends show them), or nothing when no span is active.

    Looks only when the application has imported the OpenTelemetry API (flowrt never
    imports it for this): without it there is no span to name.
    """
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return {}
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": format(context.trace_id, "032x"),
            "span_id": format(context.span_id, "016x")}
