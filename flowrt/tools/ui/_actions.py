"""What the dashboard's buttons do: cancel, resume, signal, approve, reject.

Each goes through :mod:`flowrt.durable.control`, the store-level operations the command
line uses (``flowrt cancel``, ``resume``, ``signal``, ``approve``, ``reject``), so that a
run is controlled the same way from everywhere; nothing here changes a store itself.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any

import attrs

from ... import errors
from ...durable import Store
from ...errors import FlowError, RunRolledBack, StoreError

__all__ = ["ACTIONS", "ActionError", "Done", "available", "perform"]

#: the actions, by the last part of their address (``POST /actions/<name>``)
ACTIONS = ("cancel", "resume", "signal", "approve", "reject")
#: the longest signal payload accepted from a form (characters)
MAX_PAYLOAD = 64 * 1024


class ActionError(Exception):
    """An action that was refused: ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@attrs.frozen
class Done:
    """An action that was done: what to tell the user (``message``)."""

    message: str


def _control() -> Any:
    """:mod:`flowrt.durable.control`, or None where this flowrt has no store-level run
    controls (read by name: the dashboard was built while issue 14 brought them)."""
    try:
        return importlib.import_module("flowrt.durable._control")
    except ImportError:
        return None


def available() -> bool:
    """Whether this flowrt has the store-level operations the actions need."""
    return _control() is not None


def _field(form: Mapping[str, str], name: str, *, required: bool = True) -> str:
    value = form.get(name, "")
    if required and not value.strip():
        raise ActionError(f"the form has no {name!r}")
    return value


def perform(store: Store, action: str, form: Mapping[str, str]) -> Done:
    """Do ``action`` with the fields of ``form`` (``run_id``; ``name`` for the signal
    ones; ``payload`` and ``signal_id`` for a signal; ``by`` and ``comment`` for an
    approval).

    Raises:
        ActionError: the action is refused (unknown run, no such signal, a run that a
            live process holds, resuming a run rolled back to the end, bad JSON...): the
            message says why.
    """
    control = _control()
    if control is None:
        raise ActionError("this flowrt has no store-level run controls (cancel, resume, "
                          "signals) yet", 501)
    # the errors those controls raise (RunNotFound and SignalRefused come with them)
    not_found = getattr(errors, "RunNotFound", ())
    refused = getattr(errors, "SignalRefused", ())
    if action not in ACTIONS:
        raise ActionError(f"no action {action!r}; the actions: {', '.join(ACTIONS)}", 404)
    run_id = _field(form, "run_id")
    try:
        if action == "cancel":
            before = control.cancel(store, run_id)
            if before.status in ("succeeded", "failed", "cancelled", "dead_letter"):
                return Done(f"The run had already ended ({before.status}): nothing changed.")
            return Done("Cancelled." + (" Its process stops at its next checkpoint."
                                        if before.status == "running" else ""))
        if action == "resume":
            before = control.resume(store, run_id)
            if before.status == "succeeded":
                return Done("The run had succeeded: nothing to resume.")
            if before.status == "waiting":
                return Done("Woken: a worker checks its waits now.")
            return Done("Resumed: queued for a worker, which runs what is left.")
        name = _field(form, "name")
        if action == "signal":
            text = form.get("payload", "")
            if len(text) > MAX_PAYLOAD:
                raise ActionError(f"the payload is {len(text):,} characters; at most "
                                  f"{MAX_PAYLOAD:,} are taken from a form", 413)
            payload: Any = None
            if text.strip():
                try:
                    payload = json.loads(text)
                except (ValueError, RecursionError) as error:
                    raise ActionError(f"the payload is not JSON: {error}") from None
            signal_id = form.get("signal_id", "").strip() or None
            sent = control.send_signal(store, run_id, name, payload, signal_id=signal_id)
            return Done(f"Signal {name!r} sent." if sent else
                        f"Signal id {signal_id!r} was sent to this run before: nothing "
                        "changed (the first payload wins).")
        by = _field(form, "by")
        comment = form.get("comment", "").strip() or None
        if action == "approve":
            control.approve(store, run_id, name, by=by, comment=comment)
            return Done(f"Approved {name!r} as {by}.")
        control.reject(store, run_id, name, by=by, comment=comment)
        return Done(f"Rejected {name!r} as {by}.")
    except not_found as error:
        raise ActionError(str(error), 404) from None
    except (errors.RunLeased, RunRolledBack) as error:
        raise ActionError(str(error), 409) from None
    except refused as error:
        raise ActionError(str(error), 409) from None
    except (StoreError, FlowError, TypeError, ValueError) as error:
        raise ActionError(str(error), 400 if not isinstance(error, StoreError) else 500
                          ) from None
