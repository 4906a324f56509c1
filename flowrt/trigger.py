"""Trigger rules: when a node runs, given how its direct dependencies ended.

The rules and their names are Airflow's. A rule is checked once, when every direct
dependency of the node has reached a final status; a node whose rule does not hold
is SKIPPED (and its own dependents see a skipped dependency). A node without
dependencies always runs.
"""

from __future__ import annotations

import enum

__all__ = ["Trigger"]


class Trigger(enum.StrEnum):
    """When a node runs, given its direct dependencies' final statuses."""

    ALL_SUCCESS = "all_success"  #: every dependency succeeded (the default)
    ALL_DONE = "all_done"  #: every dependency is final, however it ended
    ONE_SUCCESS = "one_success"  #: at least one dependency succeeded
    ONE_FAILED = "one_failed"  #: at least one dependency failed
    NONE_FAILED = "none_failed"  #: no dependency failed (skipped ones are fine)
    ALL_FAILED = "all_failed"  #: every dependency failed

    @property
    def code(self) -> int:
        """A small int for the plan's per-node byte array (ALL_SUCCESS is 0)."""
        return _CODES[self]

    def holds(self, deps: int, succeeded: int, failed: int) -> bool:
        """Whether the rule holds for ``deps`` dependencies of which so many ended so."""
        return holds(_CODES[self], deps, succeeded, failed)


_CODES = {t: i for i, t in enumerate(Trigger)}
BY_CODE = tuple(Trigger)


def holds(code: int, deps: int, succeeded: int, failed: int) -> bool:
    """The rule with ``code`` for ``deps`` final dependencies, ``succeeded``/``failed`` of them."""
    if deps == 0:
        return True
    if code == 0:  # ALL_SUCCESS
        return succeeded == deps
    if code == 1:  # ALL_DONE
        return True
    if code == 2:  # ONE_SUCCESS
        return succeeded > 0
    if code == 3:  # ONE_FAILED
        return failed > 0
    if code == 4:  # NONE_FAILED
        return failed == 0
    return failed == deps  # ALL_FAILED
