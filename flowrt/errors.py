"""Every exception flowrt raises on purpose.

The tree::

    FlowError
    ├── GraphError (also ValueError)       the workflow definition is wrong
    │   ├── CycleError                     .cycle names one cycle's nodes in order
    │   ├── UnknownNodeError               .node asked for .missing
    │   └── DuplicateNodeError             .node was added twice
    ├── MissingInputError (also ValueError)    run inputs nobody gave
    ├── UnknownInputError (also ValueError)    run inputs no node takes
    ├── NoOutput (also LookupError)        the node has no output (skipped, cancelled)
    │   └── NodeFailed                     the node failed; its exception is __cause__
    ├── WorkflowFailed                     raise_for_status(): carries every node error
    ├── WorkflowChanged (also ValueError)  resuming a run whose workflow changed
    ├── SerializationError (also TypeError)    a value the store's serializer cannot keep
    ├── CacheKeyError (also TypeError)     a cached node's argument that cannot be hashed
    ├── StoredError                        a node's error as read back from a store
    ├── StoreError                         a store file that is no flowrt store, or too new
    │   └── RunLeased                      the run is being run elsewhere right now
    │       └── LeaseLost                  another process took the run over
    │           └── RunCancelled           the run was cancelled through the store
    ├── RunNotFound (also LookupError)     no run of that id in the store
    ├── RunRolledBack (also ValueError)    resuming a run whose rollback ended: it is over
    ├── SignalRefused (also ValueError)    no node of that name waits for signals, ...
    ├── SignalTimeout (also TimeoutError)  a signal node's timeout passed first
    ├── Rejected                           an approval node's payload rejected
    └── BranchError (also ValueError)      a branch chose what is no direct successor

    HookError (a RuntimeWarning)           an on_event hook raised (the run goes on)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class FlowError(Exception):
    """Base class of every error flowrt raises on purpose."""

    # Subclasses take their own constructor arguments, not the message that
    # ``Exception.__reduce__`` would pass back: they say how to rebuild themselves, so
    # that they survive pickling (a process pool sends exceptions back so) and copying.
    def _init_args(self) -> tuple[Any, ...]:
        return self.args

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self._init_args(), self.__dict__ or None)


class GraphError(FlowError, ValueError):
    """The workflow definition is invalid; raised when adding or compiling."""


class CycleError(GraphError):
    """The workflow has a dependency cycle.

    ``cycle`` lists the names of one cycle's nodes in dependency order, with the first
    node repeated at the end, as :class:`graphlib.CycleError` does: ``["a", "b", "a"]``
    means ``a`` depends on ``b`` and ``b`` depends on ``a``. For a workflow that
    contains itself (``kind="sub-workflow"``) it names the workflows: ``["a", "b",
    "a"]`` means ``a`` runs ``b`` as a sub-workflow and ``b`` runs ``a``.
    """

    def __init__(self, cycle: Sequence[str], kind: str = "dependency") -> None:
        self.cycle: list[str] = list(cycle)
        self.kind = kind
        if kind == "sub-workflow":  # workflows that contain themselves
            message = (f"workflow {self.cycle[0]!r} contains itself through sub-workflows: "
                       + " -> ".join(self.cycle))
        else:
            message = f"{kind} cycle: {' -> '.join(self.cycle)}"
        super().__init__(message)

    def _init_args(self) -> tuple[Any, ...]:
        return (self.cycle, self.kind)


class UnknownNodeError(GraphError):
    """A node names a dependency that is not a node of the workflow."""

    def __init__(self, node: str, missing: str, how: str = "depends on") -> None:
        self.node = node
        self.missing = missing
        self.how = how
        super().__init__(f"node {node!r} {how} {missing!r}, which is not a node of the workflow")

    def _init_args(self) -> tuple[Any, ...]:
        return (self.node, self.missing, self.how)


class DuplicateNodeError(GraphError):
    """A node name was used twice in one workflow."""

    def __init__(self, node: str, workflow: str) -> None:
        self.node = node
        self.workflow = workflow
        super().__init__(f"workflow {workflow!r} already has a node named {node!r}")

    def _init_args(self) -> tuple[Any, ...]:
        return (self.node, self.workflow)


class MissingInputError(FlowError, ValueError):
    """Run inputs that some node needs were not given; raised before any node runs.

    ``missing`` maps each missing input to the nodes whose parameter needs it; ``hints``
    maps some of them to a likely fix, shown in the message: a parameter named close to
    a node (``lod2`` for node ``load2``) was probably meant to take that node's output.
    """

    def __init__(self, missing: Mapping[str, Sequence[str]],
                 hints: Mapping[str, str] | None = None) -> None:
        #: input name -> the nodes whose parameter needs it
        self.missing: dict[str, list[str]] = {k: list(v) for k, v in missing.items()}
        #: input name -> a likely fix ("did you mean node 'load2'?"), for some of them
        self.hints: dict[str, str] = dict(hints or {})
        parts = []
        for name, nodes in self.missing.items():
            hint = self.hints.get(name)
            parts.append(f"{name!r} (needed by {', '.join(repr(n) for n in nodes)}"
                         + (f"; {hint})" if hint else ")"))
        super().__init__("missing run input" + ("s" if len(parts) > 1 else "") + ": "
                         + "; ".join(parts))

    def _init_args(self) -> tuple[Any, ...]:
        return (self.missing, self.hints)


class UnknownInputError(FlowError, ValueError):
    """Run inputs that no node takes; raised before any node runs.

    Usually a typo: ``near`` maps such an input to the input name it is close to. Runs
    whose nodes read extra inputs from ``ctx.data`` pass ``strict_inputs=False``.
    """

    def __init__(self, workflow: str, unknown: Sequence[str],
                 near: Mapping[str, str] | None = None) -> None:
        self.workflow = workflow
        #: the inputs no node takes, in the order they were given
        self.unknown: list[str] = list(unknown)
        #: input given -> the input a node takes that it is close to, for some of them
        self.near: dict[str, str] = dict(near or {})
        many = len(self.unknown) > 1
        message = (f"run input{'s' if many else ''} {', '.join(map(repr, self.unknown))} "
                   f"{'are' if many else 'is'} taken by no node of workflow {workflow!r}")
        if self.near:
            message += "; did you mean " + ", ".join(
                f"{near!r}" + (f" for {given!r}" if many else "")
                for given, near in self.near.items()) + "?"
        super().__init__(message + " (pass strict_inputs=False to give inputs that nodes "
                         "read from ctx.data)")

    def _init_args(self) -> tuple[Any, ...]:
        return (self.workflow, self.unknown, self.near)


class NoOutput(FlowError, LookupError):
    """The node produced no output: it was skipped, cancelled or never ran."""

    def __init__(self, node: str, status: str) -> None:
        self.node = node
        self.status = status
        super().__init__(f"node {node!r} has no output: it ended {status}")

    def _init_args(self) -> tuple[Any, ...]:
        return (self.node, self.status)


class NodeFailed(NoOutput):
    """The node failed; the node's own exception is ``__cause__`` and ``error``."""

    def __init__(self, node: str, error: BaseException) -> None:
        self.node = node
        self.status = "failed"
        self.error = error
        LookupError.__init__(self, f"node {node!r} failed: {type(error).__name__}: {error}")

    def _init_args(self) -> tuple[Any, ...]:
        return (self.node, self.error)


class WorkflowFailed(FlowError):
    """Raised by ``RunResult.raise_for_status()``; ``errors`` maps node -> exception."""

    def __init__(self, workflow: str, status: str, errors: Mapping[str, BaseException]) -> None:
        self.workflow = workflow
        self.status = status
        self.errors: dict[str, BaseException] = dict(errors)
        detail = "; ".join(f"{n}: {type(e).__name__}: {e}" for n, e in self.errors.items())
        super().__init__(f"workflow {workflow!r} {status}" + (f" ({detail})" if detail else ""))

    def _init_args(self) -> tuple[Any, ...]:
        return (self.workflow, self.status, self.errors)


class SubWorkflowFailed(FlowError):
    """A sub-workflow's child run did not succeed; raised by (and failing) the parent's
    node that ran it.

    ``workflow`` and ``run_id`` name the child run, ``status`` is how it ended
    ("failed", "cancelled") and ``errors`` maps each failed node of the child to its
    exception (a failed nested sub-workflow node's is a SubWorkflowFailed in turn).
    """

    def __init__(self, workflow: str, run_id: str, status: str,
                 errors: Mapping[str, BaseException]) -> None:
        self.workflow = workflow
        self.run_id = run_id
        self.status = status
        self.errors: dict[str, BaseException] = dict(errors)
        detail = "; ".join(f"{n}: {type(e).__name__}: {e}" for n, e in self.errors.items())
        super().__init__(f"sub-workflow {workflow!r} (run {run_id!r}) {status}"
                         + (f": {detail}" if detail else ""))

    def _init_args(self) -> tuple[Any, ...]:
        return (self.workflow, self.run_id, self.status, self.errors)


class RollbackCutOff(FlowError, TimeoutError):
    """A compensation still running when a rollback's grace ran out (the caller was
    cancelled; docs/compensation.md): the node ends COMPENSATION_FAILED with this error,
    and whether its effect was undone is unknown. ``node`` names it, ``grace`` is the
    grace in seconds."""

    def __init__(self, node: str, grace: float) -> None:
        self.node = node
        self.grace = grace
        super().__init__(f"the compensation of node {node!r} was cut off: the run was "
                         f"cancelled and the rollback's grace of {grace:g} s ran out")

    def _init_args(self) -> tuple[Any, ...]:
        return (self.node, self.grace)


class StoreError(FlowError):
    """A durable store cannot be used: not a flowrt store, corrupt, or too new."""


class StoreUnavailable(StoreError):
    """The store could not be reached for a while (a database server restarting or
    away, a network cut): the same call may succeed later. Workers wait and try again.
    """


class RunLeased(StoreError):
    """Another process (or task) is running this run id right now."""

    def __init__(self, run_id: str, holder: str) -> None:
        self.run_id = run_id
        self.holder = holder
        super().__init__(f"run {run_id!r} is being run by {holder}; refusing to run it twice "
                         "at once (it can be resumed once that process stops)")

    def _init_args(self) -> tuple[Any, ...]:
        return (self.run_id, self.holder)


class LeaseLost(RunLeased):
    """This process was running the run, but another one took it over.

    Its lease ran out (the process was paused, or too busy to renew it within the
    store's ``lease_ttl``) and another process claimed the run with a newer fencing
    token: the store refuses every later write of this one, and the run was stopped.
    """

    def __init__(self, run_id: str, holder: str) -> None:
        self.run_id = run_id
        self.holder = holder
        StoreError.__init__(
            self, f"run {run_id!r} was taken over by {holder} while this process ran it "
            "(its lease ran out before this process renewed it: it was paused or too busy); "
            "this process stopped the run, and the store refused its later writes")


class RunCancelled(LeaseLost):
    """The run was cancelled through its store (``flowrt cancel``, the dashboard, or
    :func:`flowrt.durable.cancel`) while this process ran it: the store fenced this
    process out, and the run stopped. ``rt.run`` returns it as CANCELLED; a worker
    drops it."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.holder = "nobody"
        StoreError.__init__(self, f"run {run_id!r} was cancelled through the store while "
                                  "this process ran it; the run stopped")

    def _init_args(self) -> tuple[Any, ...]:
        return (self.run_id,)


class RunNotFound(FlowError, LookupError):
    """No run of that id in the store (``near``: a run id it may be a typo of)."""

    def __init__(self, run_id: str, where: str = "the store", near: str | None = None) -> None:
        self.run_id = run_id
        self.where = where
        self.near = near
        hint = f"; did you mean {near!r}?" if near else ""
        super().__init__(f"no run {run_id!r} in {where}{hint}")

    def __str__(self) -> str:  # LookupError would quote the message as a key
        return str(self.args[0])

    def _init_args(self) -> tuple[Any, ...]:
        return (self.run_id, self.where, self.near)


class RunRolledBack(FlowError, ValueError):
    """A resume of a run that was rolled back to the end (docs/compensation.md): it
    failed or was cancelled, its compensations ran, so it is over and resuming it would
    run nothing. ``undone`` names what its rollback undid (or tried to): nodes, and
    map items as ``node[index]``. Start a new run to try again."""

    def __init__(self, run_id: str, status: str, undone: Sequence[str]) -> None:
        self.run_id = run_id
        self.status = status
        self.undone = tuple(undone)
        shown = ", ".join(self.undone[:MAX_UNDONE_SHOWN])
        if len(self.undone) > MAX_UNDONE_SHOWN:
            shown += f" and {len(self.undone) - MAX_UNDONE_SHOWN:,} more"
        super().__init__(f"run {run_id!r} was rolled back ({status}; undone: {shown}): it "
                         "is over, and resuming it would run nothing (its compensations "
                         "ran). Start a new run to try again.")

    def _init_args(self) -> tuple[Any, ...]:
        return (self.run_id, self.status, self.undone)


#: how many undone nodes and items a RunRolledBack message names
MAX_UNDONE_SHOWN = 10


class SignalRefused(FlowError, ValueError):
    """A signal that cannot be delivered: its run has no signal or approval node of
    that name (the message names the near match and the ones it has), the run has
    finished, or an approval's payload does not say whether it approves."""


class SignalTimeout(FlowError, TimeoutError):
    """A signal (or approval) node's ``timeout`` passed before its signal came."""

    def __init__(self, node: str, timeout: float) -> None:
        self.node = node
        self.timeout = timeout
        super().__init__(f"no signal {node!r} came within {timeout:g} s")

    def _init_args(self) -> tuple[Any, ...]:
        return (self.node, self.timeout)


class Rejected(FlowError):
    """An approval node's payload rejected: ``by`` (who) and ``comment`` say why."""

    def __init__(self, node: str, by: str | None = None, comment: str | None = None) -> None:
        self.node = node
        self.by = by
        self.comment = comment
        who = f" by {by}" if by else ""
        why = f": {comment}" if comment else ""
        super().__init__(f"approval {node!r} was rejected{who}{why}")

    def _init_args(self) -> tuple[Any, ...]:
        return (self.node, self.by, self.comment)


# -- branches (design.md, "Control flow") -------------------------------------------


class BranchError(FlowError, ValueError):
    """A branch node returned something that is not one of its direct successors.

    ``node`` is the branch, ``choice`` what it returned (as text), ``successors`` the
    names it may return; the message lists them and the near match of a typo. The
    branch node FAILS with this error (it is not retried) and none of its direct
    successors runs, whatever its trigger rule.
    """

    def __init__(self, node: str, choice: str, successors: Sequence[str]) -> None:
        import difflib

        self.node = node
        self.choice = choice
        self.successors = list(successors)
        near = difflib.get_close_matches(choice, self.successors, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        listed = ", ".join(map(repr, self.successors)) or "none: it has no dependents"
        super().__init__(f"branch {node!r} chose {choice}, which is not one of its direct "
                         f"successors{hint}; it may choose {listed}")

    def _init_args(self) -> tuple[Any, ...]:
        return (self.node, self.choice, self.successors)


class WorkflowChanged(FlowError, ValueError):
    """A stored run was made by a workflow whose structure has changed since."""

    def __init__(self, run_id: str, added: list[str], removed: list[str],
                 changed: list[str]) -> None:
        self.run_id = run_id
        self.added = added
        self.removed = removed
        self.changed = changed
        parts = []
        if added:
            parts.append("added " + ", ".join(map(repr, added)))
        if removed:
            parts.append("removed " + ", ".join(map(repr, removed)))
        if changed:
            parts.append("changed " + ", ".join(map(repr, changed)))
        detail = "; ".join(parts) or "options or parameter bindings changed"
        super().__init__(f"run {run_id!r} was stored by a different version of the workflow "
                         f"({detail}); pass resume='force' to resume it anyway, or use a new "
                         "run_id")

    def _init_args(self) -> tuple[Any, ...]:
        return (self.run_id, self.added, self.removed, self.changed)


class MapError(FlowError, ValueError):
    """A mapped node cannot split its inputs into items: a mapped parameter is no list
    (or is a str), the lists zipped have different lengths, or there are more items
    than ``max_items``. Raised before any item starts; the node fails with it."""


class SerializationError(FlowError, TypeError):
    """A value cannot be stored by the store's serializer."""


class CacheKeyError(FlowError, TypeError):
    """An argument of a cached node cannot be hashed into its cache key.

    Raised before any node runs for a run input; a value a dependency returned fails
    the node (not retried). ``node`` and ``parameter`` name the culprit.
    """

    def __init__(self, node: str, parameter: str, detail: str) -> None:
        self.node = node
        self.parameter = parameter
        self.detail = detail
        super().__init__(f"node {node!r}: argument {parameter!r} cannot be hashed for the "
                         f"cache key ({detail}); pass JSON-like values (dict, list, str, "
                         f"numbers, sets, dataclasses) or give Cache(key=...)")

    def _init_args(self) -> tuple[Any, ...]:
        return (self.node, self.parameter, self.detail)


class StoredError(FlowError):
    """A node error read back from a store: its type name, message and traceback."""

    def __init__(self, type_name: str, message: str, tb: str | None) -> None:
        self.type_name = type_name
        self.message = message
        self.traceback_text = tb
        super().__init__(f"{type_name}: {message}" if message else type_name)

    def _init_args(self) -> tuple[Any, ...]:
        return (self.type_name, self.message, self.traceback_text)


class HookError(RuntimeWarning):
    """Warning issued (once per run) when an ``on_event`` hook raised."""


def describe_error(error: BaseException) -> str:
    """``"Type: message"`` of ``error`` (just ``"Type"`` when the message is empty), as
    stores keep it and the tools show it; an error read back from a store is shown as
    it was recorded, not as a ``StoredError``."""
    if isinstance(error, StoredError):
        return str(error)
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
