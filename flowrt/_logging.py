"""flowrt's logger: structlog when the application configured it, else stdlib logging.

flowrt never configures logging. When the application has configured structlog,
flowrt's logger follows that configuration; when it has not, flowrt logs through the
standard library's ``logging.getLogger("flowrt")`` (which, as for any library, has a
``NullHandler``), so that the usual ``logging`` levels and handlers decide what is shown.
See docs/decisions/004-logging-without-configuring.md.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

__all__ = ["is_enabled", "logger"]

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
