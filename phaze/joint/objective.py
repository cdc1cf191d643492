"""What a search maximises: the objective and the power budget (docs/energy.md).

A row (one workload's best plan in one setting, :class:`~phaze.rows.PlanRow`) scores

* ``"throughput"``: samples per second;
* ``"throughput-per-watt"`` and ``"energy-per-sample"``: samples per joule of the whole
  cluster, ``throughput / (devices * power_w) = 1 / energy_per_sample_j``. The two names
  rank designs identically (samples/s per W is samples per J); reports show throughput per
  watt or energy per sample respectively;

and 0 when it is infeasible or its ``power_w`` exceeds the power budget. The plan of a
setting is the placement's fastest one; the budget and the objective choose among
settings and designs.

Examples
--------
>>> from phaze.rows import PlanRow
>>> row = PlanRow(100.0, 40.96, 8, 16, 8, 3, 250.0, 2.5)
>>> row_score(row, "throughput", None), row_score(row, "energy-per-sample", None)
(100.0, 0.4)
>>> row_score(row, "throughput", 200.0)
0.0
"""

from __future__ import annotations

import math

from phaze.rows import PlanRow
from phaze.validate import check_choice, check_number

__all__ = ["OBJECTIVES", "check_objective", "row_score"]

#: Search objectives, default first.
OBJECTIVES = ("throughput", "throughput-per-watt", "energy-per-sample")


def check_objective(objective: object, power_budget_w: object) -> tuple[str, float | None]:
    """Validated ``(objective, power_budget_w)``; the budget is None (no budget) or > 0 W."""
    objective = check_choice("objective", objective, OBJECTIVES)
    if power_budget_w is not None:
        power_budget_w = check_number("power_budget_w", power_budget_w, unit="W")
    return objective, power_budget_w


def row_score(row: PlanRow, objective: str, power_budget_w: float | None) -> float:
    """The value of one row under ``objective`` and the budget (0: infeasible or over it)."""
    if not row.throughput > 0:
        return 0.0
    if power_budget_w is not None and row.power_w > power_budget_w:
        return 0.0
    if objective == "throughput":
        return float(row.throughput)
    e = float(row.energy_per_sample_j)
    return 1.0 / e if e > 0 and math.isfinite(e) else 0.0
