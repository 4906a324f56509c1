"""Schedules: when their slots are, and firing the due ones into the work queue.

A schedule is stored in the store (:class:`~flowrt.durable.ScheduleRecord`) with the
time of its next slot. A worker fires it when that time has come: it computes the slots
that are due, makes one queued run per slot it fires -- run id ``sched:<name>:<slot>``,
``<slot>`` the slot's time in UTC (``2024-05-01T00:00:00Z``: local times repeat when
the clocks go back) -- and moves the schedule on, in one transaction of the store that
only one worker wins (:meth:`~flowrt.durable.Store.fire_schedule`). Slots missed while
no worker ran are *coalesced* into one run, the latest, unless the schedule catches up
(``catch_up=True``: one run per missed slot, at most :data:`MAX_CATCH_UP`).

Cron expressions are read by `cronsim <https://github.com/cuu508/cronsim>`_ in the
schedule's time zone (an IANA name, through :mod:`zoneinfo`); see
docs/decisions/014-clock-and-schedules.md for why cronsim, and what it does when the
clocks change.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from .durable import RunRecord, ScheduleRecord
from .durable._store import DEFAULT_QUEUE, QUEUED, utc_text

__all__ = ["MAX_CATCH_UP", "due_slots", "first_slot", "next_slot", "schedule_record",
           "slot_run_id", "slot_text"]

#: the most slots one firing creates when a schedule catches up (the rest coalesce)
MAX_CATCH_UP = 1000


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        import difflib

        near = difflib.get_close_matches(name, sorted(available_timezones()), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as "
                         f"'Europe/Riga' or 'UTC'){hint}") from None


def check_spec(cron: str | None, every: float | timedelta | None,
               timezone: str) -> tuple[str | None, float | None]:
    """Validate a schedule's timing; return ``(cron, every in seconds)``.

    Raises:
        ValueError: neither or both of ``cron`` and ``every``, a cron expression
            cronsim cannot read (its complaint in the message), an interval that is not
            positive, or an unknown time zone.
    """
    if (cron is None) == (every is None):
        raise ValueError("a schedule takes cron='...' or every=seconds, exactly one of them")
    _zone(timezone)
    if cron is not None:
        from cronsim import CronSim, CronSimError

        if not isinstance(cron, str):
            raise ValueError(f"cron= takes a cron expression (a str), got {cron!r}")
        try:
            CronSim(cron, datetime.now(UTC))
        except CronSimError as error:
            raise ValueError(f"bad cron expression {cron!r}: {error}") from None
        return cron, None
    seconds = every.total_seconds() if isinstance(every, timedelta) else every
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not (
            math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"every= takes seconds > 0 or a timedelta, got {every!r}")
    return None, float(seconds)


def next_slot(schedule: ScheduleRecord, after: float) -> float:
    """The first slot of ``schedule`` strictly after time ``after`` (an interval's slots
    are ``next_due + k * every``)."""
    if schedule.every is not None:
        k = math.floor((after - schedule.next_due) / schedule.every) + 1
        return schedule.next_due + k * schedule.every
    return _next_cron(schedule.cron or "", schedule.timezone, after)


def _next_cron(cron: str, timezone: str, after: float) -> float:
    from cronsim import CronSim

    start = datetime.fromtimestamp(after, _zone(timezone))
    return next(iter(CronSim(cron, start))).timestamp()


def first_slot(cron: str | None, every: float | None, timezone: str, now: float,
               start: float | None = None) -> float:
    """The first slot of a new schedule: for cron, the first match after ``now``; for an
    interval, ``start`` if given (a time in the future, or the anchor of past slots),
    else ``now + every``."""
    if every is not None:
        return start if start is not None else now + every
    assert cron is not None
    return _next_cron(cron, timezone, now if start is None else start - 1e-6)


def due_slots(schedule: ScheduleRecord, now: float) -> tuple[list[float], float]:
    """The slots of ``schedule`` due at ``now`` that a firing creates runs for, and the
    schedule's next due time after them.

    Coalescing (the default) gives only the latest due slot; ``catch_up`` gives them all,
    at most :data:`MAX_CATCH_UP` (the oldest beyond that coalesce into the first).
    """
    due = schedule.next_due
    if due > now:
        return [], due
    slots = [due]
    while True:
        following = next_slot(schedule, slots[-1])
        if following > now:
            break
        if schedule.catch_up:
            slots.append(following)
            if len(slots) > MAX_CATCH_UP:
                del slots[0]
        elif schedule.every is not None:  # jump to the latest slot at once
            k = math.floor((now - due) / schedule.every)
            slots = [due + k * schedule.every]
            following = next_slot(schedule, slots[-1])
            break
        else:
            slots = [following]
    return slots, following


def slot_text(when: float) -> str:
    """A slot's time as it appears in run ids: UTC, ISO 8601, to the second (to the
    millisecond when it is not a whole second: intervals below a second)."""
    return utc_text(when)


def slot_run_id(name: str, when: float) -> str:
    """The run id of schedule ``name``'s slot at ``when``: ``sched:<name>:<slot>``."""
    return f"sched:{name}:{slot_text(when)}"


def schedule_record(name: str, workflow: str, inputs: bytes, serializer: str, *,
                    cron: str | None, every: float | None, timezone: str, catch_up: bool,
                    queue: str | None, now: float, start: float | None) -> ScheduleRecord:
    """A new :class:`~flowrt.durable.ScheduleRecord` whose first slot follows ``now``."""
    return ScheduleRecord(name=name, workflow=workflow, inputs=inputs, serializer=serializer,
                          next_due=first_slot(cron, every, timezone, now, start), cron=cron,
                          every=every, timezone=timezone, catch_up=catch_up,
                          queue=queue or DEFAULT_QUEUE, created=now)


def slot_runs(schedule: ScheduleRecord, slots: list[float], fingerprint: str,
              structure: dict[str, list[str]], structure_json: str,
              waits: dict[str, str]) -> list[RunRecord]:
    """The queued runs of ``slots`` (each due at its slot's time)."""
    return [RunRecord(slot_run_id(schedule.name, t), schedule.workflow, fingerprint,
                      structure, schedule.inputs, QUEUED, schedule.serializer, t, t,
                      structure_json=structure_json, queue=schedule.queue, due=t,
                      waits=dict(waits))
            for t in slots]


def describe(schedule: ScheduleRecord) -> dict[str, Any]:
    """What ``flowrt schedules`` shows of one."""
    return {**schedule.to_dict(), "next_slot": slot_text(schedule.next_due)}
