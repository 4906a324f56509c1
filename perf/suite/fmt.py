"""How figures are written in the report: times with 3 significant digits, bytes whole."""

from __future__ import annotations

import math

from .results import Stat


def fmt_time(s: float | None) -> str:
    if s is None or math.isnan(s):
        return "-"
    a = abs(s)
    if a < 1e-6:
        return f"{s * 1e9:.3g} ns" if a < 1e-7 else f"{s * 1e9:.0f} ns"
    if a < 1e-3:
        return f"{s * 1e6:.3g} us"
    if a < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "byte":
        return f"{value:,.0f} B"
    if unit == "megabyte":  # the scaling family's peak RSS
        return f"{value:,.0f} MB"
    return fmt_time(value)


def fmt_spread(stat: Stat) -> str:
    """The median with its spread: ``1.23 us +- 4.5%`` (bytes: ``+- N``)."""
    if len(stat.values) < 2:
        return f"{fmt_value(stat.median, stat.unit)} (1 value)"
    if stat.unit == "byte":
        return f"{stat.median:,.0f} B +- {stat.stdev:,.0f}"
    med, sd = stat.median, stat.stdev
    return f"{fmt_time(med)} +- {100 * sd / med:.1f}%" if med else fmt_time(med)
