"""Predict iteration times of training runs and compare them with measurements.

:func:`estimate` prices every run with :func:`phaze.systems.training.iteration`;
identical (system, model, plan) shapes are priced once per call.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from phaze.systems.runs import Run, RunError, read_runs
from phaze.systems.training import Breakdown, BreakdownPower, iteration

__all__ = ["Estimate", "accuracy", "accuracy_by_split", "estimate", "estimate_file"]


@dataclass(frozen=True, slots=True)
class Estimate(BreakdownPower):
    """The prediction for one run."""

    run: Run
    breakdown: Breakdown

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def predicted_s(self) -> float:
        """Predicted seconds per iteration."""
        return self.breakdown.iteration_s

    @property
    def error(self) -> float | None:
        """Relative error ``predicted / measured - 1`` (None without a measurement)."""
        m = self.run.measured_s
        return None if m is None else self.predicted_s / m - 1.0

    def to_dict(self) -> dict:
        """JSON-ready: id, predicted_s, measured_s/error when measured, the breakdown,
        memory per device and whether it fits."""
        out = {"id": self.id, "system": self.run.system.name, "predicted_s": self.predicted_s}
        if self.run.measured_s is not None:
            out["measured_s"] = self.run.measured_s
            out["error"] = self.error
        bd = self.breakdown.to_dict()
        bd.pop("iteration_s")
        out.update(bd)
        return out


def estimate(runs: Iterable[Run]) -> list[Estimate]:
    """Predict every run.

    Examples
    --------
    >>> from phaze.systems.runs import parse_run
    >>> run = parse_run({"id": "r1", "system": "a100-vtrain", "devices": 8,
    ...     "model": {"hidden": 1024, "heads": 16, "layers": 24, "ffn": 4096,
    ...               "vocab": 50257, "seq_len": 1024},
    ...     "plan": {"tp": 2, "pp": 2, "dp": 2, "micro_batch": 4, "global_batch": 32,
    ...              "recompute": "full"}})
    >>> [e] = estimate([run])
    >>> e.predicted_s > 0 and e.breakdown.fits
    True
    """
    memo: dict = {}
    out = []
    for run in runs:
        key = (run.system, run.model, run.plan, run.seq_len)
        bd = memo.get(key)
        if bd is None:
            bd = memo[key] = iteration(run.system, run.model, run.plan, run.seq_len)
        out.append(Estimate(run, bd))
    return out


def estimate_file(path: str | os.PathLike[str]) -> tuple[list[Estimate], list[RunError]]:
    """Read a run file and predict every valid line; bad lines are returned as
    :class:`RunError` (their id and reason), never raised."""
    rows = read_runs(path)
    runs = [r for r in rows if isinstance(r, Run)]
    errors = [r for r in rows if isinstance(r, RunError)]
    return estimate(runs), errors


def accuracy(estimates: Iterable[Estimate]) -> dict:
    """Rows, mean and max absolute relative error over estimates that have a
    measurement."""
    errs = [abs(e.error) for e in estimates if e.error is not None]
    if not errs:
        return {"rows": 0, "mean_abs_error": float("nan"), "max_abs_error": float("nan")}
    return {"rows": len(errs), "mean_abs_error": sum(errs) / len(errs), "max_abs_error": max(errs)}


def accuracy_by_split(runs: Iterable[Run], is_fit_row: Callable[[str], bool]) -> dict:
    """:func:`accuracy` on the fit rows, the held-out rows and all rows."""
    ests = estimate(runs)
    return {
        "fit": accuracy(e for e in ests if is_fit_row(e.id)),
        "held-out": accuracy(e for e in ests if not is_fit_row(e.id)),
        "all": accuracy(ests),
    }
