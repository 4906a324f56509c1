"""How wait nodes wait: the runtime's clock, and signals sent in this process.

A run's wait nodes (``wf.signal``, ``wf.approval``, ``wf.timer``) wait through a
:class:`~flowrt._engine.state.Waiter`. Without a store that is an :class:`Inbox`: the
signals ``rt.signal`` sends to the run in this process, kept until the node takes them
(a signal sent before its node waits is kept too); with a store, ``flowrt.durable``'s
waiter reads them from the store. While a run waits its waiter is in
``Shared.waiting`` under the run id, so that ``rt.signal`` finds it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from ..errors import RunNotFound
from ..workflow._waits import approval_payload, signal_refused

if TYPE_CHECKING:
    from .._clock import Clock
    from ..workflow import WaitSpec
    from .shared import Shared
    from .state import RunState

__all__ = ["Inbox", "deliver", "sleep_until_woken"]


async def sleep_until_woken(event: anyio.Event, clock: Clock, due: float | None,
                            poll: float | None = None) -> None:
    """Return when ``event`` is set, the clock reads ``due`` (None: never) or ``poll``
    seconds of real time passed (None: never), whichever comes first."""
    if due is None:
        if poll is None:
            await event.wait()
        else:
            with anyio.move_on_after(poll):
                await event.wait()
        return
    async with anyio.create_task_group() as tg:

        async def until_due() -> None:
            await clock.sleep_until(due)
            tg.cancel_scope.cancel()

        tg.start_soon(until_due)
        if poll is None:
            await event.wait()
        else:
            with anyio.move_on_after(poll):
                await event.wait()
        tg.cancel_scope.cancel()


class Inbox:
    """The waiter of a run without a store: signals sent to it in this process.

    ``deliver`` keeps the first payload sent under each signal name (an ``id`` sent
    before changes nothing), whether or not its node waits yet; the node takes it.
    """

    __slots__ = ("_changed", "_clock", "_ids", "_payloads", "state")

    def __init__(self, state: RunState, clock: Clock) -> None:
        self.state = state
        self._clock = clock
        self._payloads: dict[str, Any] = {}  # signal name -> the first payload sent
        self._ids: set[str] = set()
        self._changed: anyio.Event | None = None

    def deliver(self, name: str, payload: Any, signal_id: str | None) -> bool:
        """Keep signal ``name``'s ``payload``; True when kept, False for an id sent before.

        Raises:
            SignalRefused: the run has no signal or approval node ``name`` (naming the
                near match), or an approval's payload says neither yes nor no.
        """
        plan = self.state.plan
        refused = signal_refused(self.state.run_id, plan.workflow, plan.waits, name)
        if refused is not None:
            raise refused
        if plan.waits[name] == "approval":
            approval_payload(payload, name)
        if signal_id is not None:
            if signal_id in self._ids:
                return False
            self._ids.add(signal_id)
        self._payloads.setdefault(name, payload)
        self.wake()
        return True

    def wake(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    def begin(self, node: int, spec: WaitSpec) -> float | None:
        return spec.due(self._clock.now())

    async def signal(self, node: int, due: float | None,
                     idle: Callable[[], object]) -> tuple[bool, Any]:
        name = self.state.plan.names[node]
        clock = self._clock
        was_idle = False
        while True:
            if name in self._payloads:
                return True, self._payloads[name]
            if due is not None and clock.now() >= due:
                return False, None
            if not was_idle:
                was_idle = True
                idle()
            if self._changed is None:
                self._changed = anyio.Event()
            await sleep_until_woken(self._changed, clock, due)


def deliver(shared: Shared, run_id: str, name: str, payload: Any,
            signal_id: str | None) -> bool:
    """Send a signal to run ``run_id`` of this runtime, which has no store.

    Raises:
        RunNotFound: no such run waits in this runtime (naming a near run id).
        SignalRefused: as :meth:`Inbox.deliver`.
    """
    inbox = shared.waiting.get(run_id)
    if not isinstance(inbox, Inbox):
        near = difflib.get_close_matches(run_id, list(shared.waiting), n=1)
        raise RunNotFound(run_id, "this runtime (it has no store: signals reach only "
                                  "the runs going on in it)", near[0] if near else None)
    return inbox.deliver(name, payload, signal_id)
