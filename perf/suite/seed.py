"""The seed's Go figures, cited beside flowrt's (read from ``data/seed.toml``).

Figures are ns/op as the seed printed them; the dicts below give them the shapes the
tables and plots look them up by (graph size, topology, worker count...).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Any

from .paths import DATA


@dataclass(frozen=True)
class Seed:
    """A figure from the seed's analysis: its benchmark name and ns in the row's unit."""

    name: str
    ns: float | None  # in the unit of the row (per node, per op...); None: not comparable
    shown: str

    @property
    def comparable(self) -> bool:
        return self.ns is not None


def _by_size(table: dict[str, Any]) -> dict[int, Any]:
    return {int(key): value for key, value in table.items()}


with (DATA / "seed.toml").open("rb") as _fh:
    FIGURES: dict[str, Any] = tomllib.load(_fh)

#: DAGConstruction_{N}_Nodes, ns/op by N
SEED_DAG: dict[int, int] = _by_size(FIGURES["DAGConstruction"])
#: DAGTopologyCreation/{topology}, ns/op
SEED_TOPOLOGY: dict[str, int] = dict(FIGURES["DAGTopologyCreation"])
#: Scalability/Nodes_{N}, ns/op by N
SEED_SCALABILITY: dict[int, int] = _by_size(FIGURES["Scalability"])
#: FocusedConcurrency/{load}: (DirectGoroutines, LimitedConcurrency) ns/op
SEED_CONCURRENCY: dict[str, tuple[int, int]] = {
    load: (v["DirectGoroutines"], v["LimitedConcurrency"])
    for load, v in FIGURES["FocusedConcurrency"].items()}
#: ConcurrencyScaling/Workers={W}, ns/op by W
SEED_WORKERS: dict[int, int] = _by_size(FIGURES["ConcurrencyScaling"])
#: WorkflowDataDependencyResolution/{topology}_Size_{N}, ns/op by (topology, N)
SEED_DEPS: dict[tuple[str, int], int] = {
    (topology, int(n)): ns
    for topology, sizes in FIGURES["WorkflowDataDependencyResolution"].items()
    for n, ns in sizes.items()}
#: WorkflowDataSetGet/Size_{N}, ns/op (one set + one get) by N
SEED_SETGET: dict[int, float] = _by_size(FIGURES["WorkflowDataSetGet"])
#: ArenaReset/Count_{N}: (ResetArena, NewArena) ns/op by N
SEED_RESET: dict[int, tuple[float, float]] = {
    int(n): (v["ResetArena"], v["NewArena"]) for n, v in FIGURES["ArenaReset"].items()}
#: WorkflowDataArenaComparison/Size_{N}/{variant}, ns/op by N
SEED_ARENA: dict[int, dict[str, int]] = _by_size(FIGURES["WorkflowDataArenaComparison"])
#: FocusedStringInterning/{variant}, ns/op
SEED_INTERN: dict[str, int] = dict(FIGURES["FocusedStringInterning"])
#: keys per op of the interning batch (assumed: see the interning table's footnote)
SEED_INTERN_BATCH: int = FIGURES["FocusedStringInterning_assumed"]["keys_per_op"]
#: DAGConstruction_10000_Nodes, B/op per node
SEED_DAG_BYTES: float = FIGURES["DAGConstruction_B_per_op"]["10000"] / 10_000
