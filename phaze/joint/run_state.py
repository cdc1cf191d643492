"""The state of one search run: rows computed so far, the store, counters, bounds.

A :class:`SearchRun` is owned by :func:`phaze.search` (no module-level state). It answers
"what is this design worth" (:meth:`SearchRun.design`) from memoised rows, computing the
missing ones with the workloads' evaluators, and streams new rows to the result store.
The strategies in :mod:`phaze.joint.strategy` drive it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from phaze.joint.objective import row_score
from phaze.rows import NO_PLAN, ROW_FIELDS, ROW_FLOAT_FIELDS, PlanRow, WorkloadBest

__all__ = [
    "COUNTER_NAMES",
    "Design",
    "RowKey",
    "SearchRun",
    "row_table",
    "stored_rows",
    "work_counters",
]

#: Counters of a run, in the order reports list them.
COUNTER_NAMES = (
    "exact_rows",
    "stored_rows_reused",
    "settings_pruned",
    "designs_evaluated",
    "designs_pruned",
)


class RowKey(NamedTuple):
    """Which setting a :class:`~phaze.rows.PlanRow` answers."""

    workload: str
    arch: int
    micro_batch_size: int
    hbm_bytes: int
    recompute: bool


@dataclass(frozen=True, slots=True)
class Design:
    """An evaluated design: architecture, HBM size, and each workload's best setting.

    ``per_workload[i]`` is workload ``i``'s :class:`~phaze.rows.WorkloadBest`; ``value``
    is the mean score over workloads (throughput, or samples per joule;
    :mod:`phaze.joint.objective`).
    """

    arch: int
    hbm_bytes: int
    value: float
    per_workload: tuple[WorkloadBest, ...]


class SearchRun:
    """State of one search run (owned by :func:`phaze.search`)."""

    def __init__(
        self,
        evaluators,
        hbm_sizes,
        micro_batch_sizes,
        recompute,
        store,
        progress,
        rows: dict | None = None,
        flush_every_s: float = 1.0,
        objective: str = "throughput",
        power_budget_w: float | None = None,
        on_flush: Callable[[], None] | None = None,
    ) -> None:
        self.flush_every_s = flush_every_s
        # called at every flush (e.g. to write another process's rows in this one)
        self.on_flush = on_flush
        self.objective, self.power_budget_w = objective, power_budget_w
        # a smaller HBM never gives a faster plan; only the plain throughput search may
        # therefore skip smaller HBM sizes (a slower plan may use less power or energy)
        self.hbm_monotone = objective == "throughput" and power_budget_w is None
        self.ev = evaluators
        self.names = [e.workload.name for e in evaluators]
        self.hbm = sorted(int(h) for h in hbm_sizes)
        self.mbs = list(micro_batch_sizes)
        self.rc = list(recompute)
        self.store = store
        self.progress = progress
        self.rows: dict[RowKey, PlanRow] = {} if rows is None else rows
        self.pending: list[RowKey] = []
        # the (workload, arch) pairs already scheduled by prefetch
        self._prefetched: set[tuple[int, int]] = set()
        self.counters = dict.fromkeys(COUNTER_NAMES, 0)
        # at the largest HBM size, which bounds the smaller ones (fewer plans fit in them)
        self.ub = [
            {m: e.score_upper_bound(m, objective, power_budget_w, self.hbm[-1]) for m in self.mbs}
            for e in evaluators
        ]
        self.design_ub = np.mean(
            [np.max([u[m] for m in self.mbs], axis=0) for u in self.ub], axis=0
        )
        self.values: dict[tuple, tuple[Design, float]] = {}
        self._flushed = time.perf_counter()
        if store is not None and rows is None:  # (given rows already hold the store's)
            self._load_store()
        # rows from the store or another run: their architectures' layers were scheduled
        # by the run that computed them, not here (prefetch)
        self._resumed = bool(self.rows)

    def _load_store(self) -> None:
        self.rows.update(stored_rows(self.store, self.names, self.mbs, self.hbm, self.rc))
        self.counters["stored_rows_reused"] = len(self.rows)

    def row(self, wi: int, arch: int, mbs: int, hbm: int, rc: bool) -> PlanRow:
        key = RowKey(self.names[wi], arch, mbs, hbm, rc)
        found = self.rows.get(key)
        if found is None:
            found = self.rows[key] = self.ev[wi].exact(mbs, arch, hbm, rc)
            self.pending.append(key)
            self.counters["exact_rows"] += 1
        return found

    def flush(self) -> None:
        """Write pending rows to the store (one transaction per setting)."""
        if self.on_flush is not None:
            self.on_flush()
        if self.store is None or not self.pending:
            self.pending.clear()
            return
        groups: dict[tuple, list[RowKey]] = {}
        for key in self.pending:
            groups.setdefault(
                (key.workload, key.micro_batch_size, key.hbm_bytes, key.recompute), []
            ).append(key)
        for (name, m, h, r), keys in groups.items():
            vals = [self.rows[k] for k in keys]
            self.store.add(
                name,
                m,
                h,
                r,
                [k.arch for k in keys],
                {f: [getattr(v, f) for v in vals] for f in ROW_FIELDS},
            )
        self.pending.clear()
        self._flushed = time.perf_counter()

    def design(
        self,
        arch: int,
        hbm: int,
        prune: bool = True,
        settings: Sequence[tuple[int, bool]] | None = None,
        floor: float = 0.0,
    ) -> Design:
        """Value of (arch, hbm): each workload's best over its settings.

        With ``floor > 0``, settings whose bound is below what their workload must reach
        for the design to reach ``floor`` are skipped too: the value returned is exact
        when it is at least ``floor``, and otherwise only known to be below it (callers
        use it as "cannot reach ``floor``"). With several workloads the value is the mean
        of per-workload scores, so workload ``i`` must reach ``n floor`` minus the scores
        found for the workloads before it and the bounds of those after it
        (:meth:`workload_floor`).
        """
        key = (arch, hbm) if settings is None else (arch, hbm, tuple(settings))
        if not prune:
            floor = 0.0
        found = self.values.get(key)
        if found is not None and found[1] <= floor:
            return found[0]
        per, scores = [], []
        opts = settings or [(m, r) for m in self.mbs for r in self.rc]
        for wi in range(len(self.ev)):
            order = sorted(opts, key=lambda s: (-self.ub[wi][s[0]][arch], s[0], s[1]))
            best, best_score = NO_PLAN, 0.0
            own_floor = self.workload_floor(wi, arch, opts, floor, scores)
            for m, r in order:
                bound = self.ub[wi][m][arch]
                if prune and hbm != self.hbm[-1]:  # the largest HBM's row bounds this one
                    top = self.rows.get(RowKey(self.names[wi], arch, m, self.hbm[-1], r))
                    if top is not None:
                        bound = min(
                            bound,
                            self.ev[wi].score_bound_from_larger_hbm(m, arch, top, self.objective),
                        )
                if prune and (bound < max(best_score, own_floor) or bound <= 0):  # 0: none fits
                    self.counters["settings_pruned"] += 1
                    continue
                row = self.row(wi, arch, m, hbm, r)
                score = row_score(row, self.objective, self.power_budget_w)
                if score > best_score:
                    best_score = score
                    best = WorkloadBest(
                        row.throughput,
                        m,
                        r,
                        row.time_per_batch_s,
                        row.tensor_width,
                        row.data_parallel,
                        row.num_stages,
                        row.power_w,
                        row.energy_per_sample_j,
                        row.interleave,
                    )
            per.append(best)
            scores.append(best_score)
        value = float(np.mean(scores))
        out = Design(arch=arch, hbm_bytes=hbm, value=value, per_workload=tuple(per))
        self.values[key] = (out, floor)
        if time.perf_counter() - self._flushed >= self.flush_every_s:
            self.flush()
        if found is None:  # (a design evaluated again under a lower floor counts once)
            self.counters["designs_evaluated"] += 1
            if self.progress is not None:
                self.progress(1)
        return out

    def workload_floor(
        self, wi: int, arch: int, opts: Sequence[tuple[int, bool]], floor: float, scores
    ) -> float:
        """The score workload ``wi`` must reach on ``arch`` for the design's value (the
        mean over workloads) to reach ``floor``, given the exact ``scores`` of the
        workloads before it and the bounds of those after it; ``floor`` itself for one
        workload, 0 without a floor. A relative slack keeps float rounding from cutting
        a design whose value equals ``floor``."""
        n = len(self.ev)
        if floor <= 0 or n == 1:
            return floor
        rest = sum(max(self.ub[j][m][arch] for m, _ in opts) for j in range(wi + 1, n))
        need = n * floor - sum(scores) - rest
        return need - 1e-9 * n * floor

    def prefetch(self, archs: Sequence[int], schedule_also: Sequence[int] = ()) -> None:
        """Do the work every visited architecture needs, for a batch at once: schedule its
        layers for every workload and micro-batch size (one vectorised call each). Rows are
        placed when :meth:`design` reads them (placing the batch's settings ahead cost more
        than it saved: most are never read).

        ``schedule_also``: architectures likely visited soon, whose layers are scheduled
        in the same calls (no rows are computed for them)."""
        hbm = self.hbm[-1]
        todo = [int(a) for a in archs]
        ahead = [int(a) for a in schedule_also] if todo else []
        for wi, e in enumerate(self.ev):
            name = self.names[wi]

            def unevaluated(a: int, name=name) -> bool:
                return not any(
                    RowKey(name, a, m, hbm, r) in self.rows for m in self.mbs for r in self.rc
                )

            # an architecture with rows was evaluated before: the settings it has no row
            # for were pruned then and most likely are again (a row still missing is
            # placed after scheduling that architecture alone: layer_latencies); in a
            # resumed run, this keeps its layers from being scheduled again
            need = [a for a in todo if (wi, a) not in self._prefetched and unevaluated(a)]
            later = [a for a in ahead if unevaluated(a)] if self._resumed else ahead
            self._prefetched.update((wi, a) for a in need)
            # micro-batch sizes that cannot fit in memory need no schedule: their rows are
            # "no plan" at once (WorkloadEvaluator.exact)
            for m in self.mbs:
                if e.memory_fits(m, hbm):
                    e.schedule(m, need + later)

    def row_table(self) -> dict[str, np.ndarray]:
        """Every row of the run as numpy columns, sorted by (workload, arch, micro-batch
        size, HBM, recompute)."""
        return row_table(self.rows, self.names)


def work_counters(run: SearchRun, cache) -> dict:
    """``run``'s counters, with its evaluators' placement counts and the counters of their
    schedule memo ``cache``."""
    out = dict(run.counters)
    out["dp_calls"] = sum(e.dp_calls for e in run.ev)
    out["placements_reused"] = sum(e.placements_reused for e in run.ev)
    out.update(cache.stats())
    return out


def stored_rows(store, names, micro_batch_sizes, hbm_sizes, recompute) -> dict:
    """The rows ``{RowKey: PlanRow}`` of ``store`` for the workloads ``names`` at these
    settings."""
    rows = {}
    for name in names:
        for m in micro_batch_sizes:
            for h in hbm_sizes:
                for r in recompute:
                    got = store.load(name, m, h, r)
                    cols = [got[f].tolist() for f in ROW_FIELDS]
                    for i, a in enumerate(got["arch"].tolist()):
                        rows[RowKey(name, a, m, h, r)] = PlanRow(*(c[i] for c in cols))
    return rows


def row_table(rows: dict, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The rows ``{RowKey: PlanRow}`` as numpy columns, sorted by (workload, arch,
    micro-batch size, HBM, recompute); ``workload`` is the index of the name in ``names``."""
    index = {name: i for i, name in enumerate(names)}
    keys = sorted(rows, key=lambda k: (index[k.workload], *k[1:]))
    table = {
        "workload": np.array([index[k.workload] for k in keys], dtype=np.int64),
        "arch": np.array([k.arch for k in keys], dtype=np.int64),
        "micro_batch_size": np.array([k.micro_batch_size for k in keys], dtype=np.int64),
        "hbm_bytes": np.array([k.hbm_bytes for k in keys], dtype=np.int64),
        "recompute": np.array([k.recompute for k in keys], dtype=bool),
    }
    for f in ROW_FIELDS:
        dtype = np.float64 if f in ROW_FLOAT_FIELDS else np.int64
        table[f] = np.array([getattr(rows[k], f) for k in keys], dtype=dtype)
    return table
