"""Sub-workflows: a :class:`~flowrt.Workflow` used as a node of another.

``wf.add("pay", payment_wf)`` makes a node whose callable is a :class:`SubWorkflow`:
its parameters are the child's run inputs (so they bind by name to the parent's nodes
and run inputs, or through ``inputs=``), it runs the child as run
``f"{parent_run_id}/{node}"`` -- in the same runtime and store as the parent -- and
returns the output of the child's single sink (or of ``output=``). A child run that
does not succeed fails the node with :class:`~flowrt.SubWorkflowFailed`, which carries
the child's errors.

Starting a run is the runtime's business (a layer above this one): the runtime puts a
:class:`ChildRunner` in :data:`CHILD_RUNNER` for the nodes of each run it starts, and a
sub-workflow node calls it. Mapped sub-workflows reuse :func:`run_child` with an item
index (``parent/node/index``).
"""

from __future__ import annotations

import contextvars
import difflib
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

from ..errors import CycleError, GraphError, SubWorkflowFailed
from ._context import Context

if TYPE_CHECKING:
    from ._workflow import Workflow

__all__ = ["CHILD_RUNNER", "MAX_DEPTH", "RUN_DEPTH", "ChildRunner", "SubWorkflow",
           "child_run_id", "nesting", "run_child"]

#: How deep sub-workflows may nest: a run of depth 16 may not start a child.
MAX_DEPTH: Final = 16

#: the sub-workflow depth of the run whose nodes see it (0: a top-level run)
RUN_DEPTH: contextvars.ContextVar[int] = contextvars.ContextVar("flowrt_run_depth",
                                                                 default=0)


class ChildRunner(Protocol):
    """What starts a child run: the runtime of the parent, with its store and settings."""

    def __call__(self, workflow: Workflow, run_id: str,
                 inputs: Mapping[str, Any]) -> Awaitable[Any]: ...


#: set by the runtime for the nodes of each run it starts (None: no runtime; a
#: sub-workflow then runs on a private one, as ``Workflow.run`` does)
CHILD_RUNNER: contextvars.ContextVar[ChildRunner | None] = contextvars.ContextVar(
    "flowrt_child_runner", default=None)


def child_run_id(parent_run_id: str, node: str, index: int | None = None) -> str:
    """The run id of the child run that node ``node`` of run ``parent_run_id`` starts
    (``index``: the item of a mapped sub-workflow)."""
    base = f"{parent_run_id}/{node}"
    return base if index is None else f"{base}/{index}"


async def run_child(workflow: Workflow, run_id: str, inputs: Mapping[str, Any],
                    output: str) -> Any:
    """Run ``workflow`` as child run ``run_id`` of the current run and return the
    output of its node ``output``.

    The child runs in the parent's runtime (its limits, threads, executor and store:
    a durable parent's child is durable, and resuming the parent resumes it). Cancelling
    the caller cancels the child.

    Raises:
        SubWorkflowFailed: the child run did not succeed (its errors are attached).
        RecursionError: the parent is already :data:`MAX_DEPTH` sub-workflows deep.
    """
    depth = RUN_DEPTH.get()
    if depth >= MAX_DEPTH:
        raise RecursionError(f"sub-workflow {workflow.name!r} (run {run_id!r}) would nest "
                             f"deeper than {MAX_DEPTH} levels")
    runner = CHILD_RUNNER.get()
    token = RUN_DEPTH.set(depth + 1)
    try:
        if runner is None:
            result = await workflow.run(inputs, run_id=run_id)
        else:
            result = await runner(workflow, run_id, inputs)
    finally:
        RUN_DEPTH.reset(token)
    if not result.ok:
        raise SubWorkflowFailed(workflow.name, run_id, str(result.status), result.errors)
    return result[output]


class SubWorkflow:
    """The callable of a node that runs a workflow (see the module docstring).

    Args:
        workflow: the child workflow.
        output: the child's node whose output is this node's (None: its single sink).

    Raises:
        GraphError: ``output`` is no node of the child (the message names the near
            match), or it is None and the child has no single sink.

    Its signature lists the child's run inputs (required ones first, then the optional
    ones with their defaults) and a context parameter, so a parent binds them as it
    binds any node's parameters.
    """

    __slots__ = ("__signature__", "_output", "workflow")

    def __init__(self, workflow: Workflow, output: str | None = None) -> None:
        self.workflow = workflow
        self._output = output
        self.sink()  # refuse a bad output= now
        plan = workflow.compile()
        P = inspect.Parameter
        params = [P(name, P.POSITIONAL_OR_KEYWORD) for name in plan.required_inputs]
        params += [P(name, P.POSITIONAL_OR_KEYWORD, default=None)
                   for name in plan.optional_inputs]
        params.append(P("_flowrt_context", P.KEYWORD_ONLY, annotation=Context))
        self.__signature__ = inspect.Signature(params)

    def sink(self) -> str:
        """The child's node whose output this node returns."""
        plan = self.workflow.compile()
        if self._output is not None:
            if self._output not in plan.index:
                near = difflib.get_close_matches(self._output, plan.names, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise GraphError(f"output={self._output!r} is no node of workflow "
                                 f"{self.workflow.name!r}{hint}")
            return self._output
        sinks = [n for n in plan.names if not plan.dependents(n)]
        if len(sinks) != 1:
            raise GraphError(
                f"workflow {self.workflow.name!r} has {len(sinks)} sinks "
                f"({', '.join(map(repr, sinks)) or 'no nodes'}): say which one is the "
                "sub-workflow's output with output='node'")
        return sinks[0]

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        ctx: Context = kwargs.pop("_flowrt_context")
        # Only what the parent gives: an optional input it has no value for is left out
        # (not None), so the child's own default applies.
        inputs = dict(self.__signature__.bind_partial(*args, **kwargs).arguments)
        run_id = child_run_id(ctx.run_id, ctx.node, ctx.item)  # an item: parent/node/i
        return await run_child(self.workflow, run_id, inputs, self.sink())

    def __repr__(self) -> str:
        return f"<SubWorkflow {self.workflow.name!r}>"


def nesting(workflow: Workflow, path: tuple[Workflow, ...] = ()) -> int:
    """How many levels of sub-workflows ``workflow`` holds (0: none).

    Raises:
        CycleError: a workflow contains itself (``.cycle`` names the workflows in order).
    """
    if any(w is workflow for w in path):
        start = next(k for k, w in enumerate(path) if w is workflow)
        raise CycleError([w.name for w in (*path[start:], workflow)], "sub-workflow")
    deepest = 0
    for fn in workflow._fns:
        if type(fn) is SubWorkflow:
            deepest = max(deepest, 1 + nesting(fn.workflow, (*path, workflow)))
    return deepest


def subworkflow_callable(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` is a sub-workflow node's callable."""
    return type(fn) is SubWorkflow
