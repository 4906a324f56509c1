"""``Context``: what a node sees of its run, when it asks for it.

A node asks by annotating a parameter with :class:`Context`; nodes that do not ask
cost nothing for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._logging import logger, trace_ids

if TYPE_CHECKING:
    from ..data import WorkflowData

__all__ = ["Context"]


class Context:
    """The run, node and attempt a node call belongs to.

    flowrt builds it; a node receives it through a parameter annotated ``Context``.
    ``workflow``: the workflow's name; ``run_id``: the run's id (stable across resumes
    of a durable run);
    ``node``: this node's name (a mapped node's, in each item's call); ``item``: the
    item's index in a mapped node's call, else None; ``attempt``: the attempt number,
    from 1 (it starts again at 1 when a durable run is resumed); ``data``: the run's
    :class:`~flowrt.WorkflowData`; ``log``: a structlog logger bound with run_id, node
    and attempt. ``run_id`` with ``node`` makes an idempotency key for a call to the
    outside world that must happen once per run.

    A node that runs in another process (``executor="process"``, Dask) gets a copy
    without ``data`` (None there): what it set would be lost, and the run's data may
    hold values that do not travel.
    """

    __slots__ = ("_log", "attempt", "data", "item", "node", "run_id", "workflow")

    def __init__(
        self, workflow: str, run_id: str, node: str, attempt: int, data: WorkflowData | None,
        item: int | None = None,
    ) -> None:
        self.workflow = workflow
        #: the index of the item, in a call of a mapped node (None otherwise)
        self.item = item
        self.run_id = run_id
        self.node = node
        self.attempt = attempt
        self.data = data
        self._log: Any = None

    def __reduce__(self) -> tuple[Any, ...]:
        # Sent to another process: no data (see the class docs), no logger.
        return (Context, (self.workflow, self.run_id, self.node, self.attempt, None,
                          self.item))

    @property
    def log(self) -> Any:
        """A structlog logger of the ``flowrt`` logger, bound with run_id, node, attempt;
        and with ``trace_id`` and ``span_id`` when an OpenTelemetry span is active where
        it is first asked for (the node's span, when the runtime traces)."""
        if self._log is None:
            self._log = logger().bind(
                workflow=self.workflow, run_id=self.run_id, node=self.node, attempt=self.attempt,
                **trace_ids())
            if self.item is not None:
                self._log = self._log.bind(item=self.item)
        return self._log

    def __repr__(self) -> str:
        return f"<Context run={self.run_id} node={self.node} attempt={self.attempt}>"

