"""The bars set in the issues (read from ``data/targets.toml``) and how each is checked."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Any

from .fmt import fmt_value
from .paths import DATA
from .results import Results

with (DATA / "targets.toml").open("rb") as _fh:
    TARGETS: dict[str, dict[str, dict[str, Any]]] = tomllib.load(_fh)


@dataclass(frozen=True)
class Target:
    """A bar from the issues. ``kind``: ratio (to ``ref``), value, over_ideal, growth."""

    text: str
    limit: float
    kind: str = "ratio"
    ref: str | None = None
    ideal: float | None = None


def spec(family: str, name: str) -> dict[str, Any]:
    """The entry ``[family.name]`` of targets.toml (where it applies: its other fields)."""
    return TARGETS[family][name]


def target(family: str, name: str, *, ref: str | None = None, limit: float | None = None,
           **fields: Any) -> Target:
    """The target ``[family.name]``, measured against ``ref`` (a benchmark name).

    ``limit`` stands in for an entry without one; ``fields`` fill the text's other
    placeholders.
    """
    entry = TARGETS[family][name]
    bar = entry.get("limit", limit)
    if bar is None:
        raise KeyError(f"target {family}.{name} has no limit in targets.toml and none "
                       "was given")
    text = entry["text"].format(**{**entry, "limit": bar, **fields})
    return Target(text, bar, entry.get("kind", "ratio"), ref=ref, ideal=entry.get("ideal"))


def evaluate_target(r: Results, key: str, t: Target) -> tuple[float, bool, str] | None:
    """(measured, met, shown) for benchmark ``key``; None if a figure is missing."""
    value = r.median(key)
    if value is None:
        return None
    if t.kind == "ratio":
        ref = r.median(t.ref)
        if not ref:
            return None
        measured = value / ref
        return measured, measured <= t.limit, f"{measured:.3f}x"
    if t.kind == "value":
        shown = fmt_value(value, r.stats[key].unit)
        return value, value <= t.limit, shown
    if t.kind == "over_ideal":
        assert t.ideal is not None
        over = value / t.ideal - 1
        return over, over <= t.limit, f"{100 * over:+.1f}% of ideal"
    if t.kind == "growth":  # time per node at this size / at the reference size
        ref = r.median(t.ref)
        if not ref:
            return None
        growth = value / ref
        return growth, growth <= t.limit, f"{growth:.3f}x per node"
    raise ValueError(t.kind)
