"""Retry policy: how many attempts a node gets and how long it waits between them."""

from __future__ import annotations

import math
import random

import attrs

__all__ = ["Retry"]


def _exception_types(
    value: type[BaseException] | tuple[type[BaseException], ...] | list[type[BaseException]],
) -> tuple[type[BaseException], ...]:
    types = tuple(value) if isinstance(value, tuple | list) else (value,)
    for t in types:
        if not (isinstance(t, type) and issubclass(t, BaseException)):
            raise TypeError(f"Retry(on=...) takes exception types, got {t!r}")
    return types


def _positive_int(inst: Retry, attr: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"Retry.{attr.name} must be an int >= 1, got {value!r}")


def _non_negative(inst: Retry, attr: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f"Retry.{attr.name} must be a number >= 0, got {value!r}")


@attrs.frozen
class Retry:
    """Retry a failing node.

    ``attempts`` counts every attempt, the first included: ``Retry(attempts=3)`` runs a
    node at most three times. (``retries=n`` on a node means ``Retry(attempts=n + 1)``.)
    Before attempt ``k + 1`` the node waits ``delay * factor ** (k - 1)`` seconds, capped
    at ``max_delay``, then scaled by a random factor in ``[1 - jitter, 1 + jitter]`` so
    that many failing nodes do not retry in lockstep. Only exceptions that are instances
    of ``on`` are retried; any other fails the node at once.
    """

    attempts: int = attrs.field(default=3, validator=_positive_int)
    delay: float = attrs.field(default=0.1, validator=_non_negative)
    factor: float = attrs.field(default=2.0, validator=_non_negative)
    max_delay: float = attrs.field(default=30.0, validator=_non_negative)
    jitter: float = attrs.field(default=0.1, validator=_non_negative)
    on: tuple[type[BaseException], ...] = attrs.field(
        default=(Exception,), converter=_exception_types
    )

    def __attrs_post_init__(self) -> None:
        if self.jitter > 1:
            raise ValueError(f"Retry.jitter must be between 0 and 1, got {self.jitter!r}")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (from 1)."""
        try:
            base = self.delay * self.factor ** (attempt - 1) if self.delay else 0.0
        except OverflowError:  # a float power past 1e308: far beyond any cap
            base = math.inf
        base = min(base, self.max_delay)
        if self.jitter and base:
            base *= 1.0 + self.jitter * (2.0 * random.random() - 1.0)
        return base

    def retries(self, error: BaseException) -> bool:
        """Whether ``error`` is one this policy retries."""
        return isinstance(error, self.on)
