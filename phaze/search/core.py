"""Joint search of accelerator architectures and execution plans (design.md section 9).

A *design* is an architecture (a row of the design space) with an HBM size. Its value is
the mean, over the searched workloads, of each workload's best throughput over
micro-batch sizes and recomputation (each workload with its own best plan). Strategies:

``exact`` (default)
    The true optimum and the exact throughput/area frontier. Designs are visited in order
    of an admissible optimistic throughput (:mod:`phaze.search.bounds`) and a design whose
    bound is below the incumbent is never evaluated; within a design, settings whose bound
    is below the workload's best so far are skipped. The frontier pass visits
    architectures by increasing area and skips one whose bound is below the best
    throughput already reached with no more area. Pruning is strict (``<``), so ties are
    evaluated and broken exactly as an exhaustive evaluation breaks them: highest value,
    then smaller area, then lower architecture index, then smaller HBM.
``phaze``
    The paper's walk (:func:`phaze.search.strategy.phaze_walk`) for every (micro-batch,
    HBM, recomputation) setting, for comparison.
``exhaustive``
    Every design, no pruning (the reference the tests compare ``exact`` with).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from phaze.errors import ConfigError
from phaze.schedule import ScheduleCache
from phaze.search.evaluate import WorkloadEvaluator
from phaze.search.strategy import pareto_frontier, phaze_walk
from phaze.store import ResultStore
from phaze.workload import GIB, Cluster, Workload

__all__ = ["STRATEGIES", "Design", "SearchResult", "search"]

STRATEGIES = ("exact", "phaze", "exhaustive")


@dataclass(frozen=True, slots=True)
class Design:
    """An evaluated design: architecture, HBM size, and each workload's best setting.

    ``per_workload[i]`` is ``(throughput, mbs, recompute, time_per_batch_s, t, d,
    stages)`` of workload ``i``; ``value`` is the mean throughput.
    """

    arch: int
    hbm_bytes: int
    value: float
    per_workload: tuple[tuple, ...]


@dataclass(frozen=True, eq=False)
class SearchResult:
    """What a search found.

    Attributes
    ----------
    best : Design or None
        None when no design has a feasible plan.
    frontier : int64 array
        Architecture indices on the throughput/area frontier, by increasing area.
    frontier_value : float64 array
        Their values (mean samples/s over workloads, best HBM size).
    rows : dict of arrays
        Every evaluated (workload, arch, mbs, hbm, recompute) row.
    counters : dict
    details : tuple of dict
        Per workload, for the best design: ``plan`` (a :class:`~phaze.placement.Plan`),
        ``own_best`` (the workload's best value on a design of its own; equal to its
        throughput for a single workload), and the comparisons of
        :func:`phaze.search.baselines.compare` (``tpuv4_like``, ``megatron``,
        ``megatron_plan``).
    """

    workloads: tuple[Workload, ...]
    cluster: Cluster
    strategy: str
    arch_table: object
    best: Design | None
    frontier: np.ndarray
    frontier_value: np.ndarray
    rows: dict
    counters: dict = field(default_factory=dict)
    details: tuple = ()


class _Run:
    """State of one search run (owned by :func:`search`; no module-level state)."""

    def __init__(
        self,
        evaluators,
        hbm_sizes,
        micro_batches,
        recompute,
        store,
        progress,
        rows: dict | None = None,
        flush_every_s: float = 1.0,
    ) -> None:
        self.flush_every_s = flush_every_s
        self.pool = None
        self.ev = evaluators
        self.names = [e.workload.name for e in evaluators]
        self.hbm = sorted(int(h) for h in hbm_sizes)
        self.mbs = list(micro_batches)
        self.rc = list(recompute)
        self.store = store
        self.progress = progress
        self.rows: dict[tuple, tuple] = {} if rows is None else rows
        self.pending: list[tuple] = []
        self.counters = {
            "exact_rows": 0,
            "stored_rows_reused": 0,
            "settings_pruned": 0,
            "designs_evaluated": 0,
            "designs_pruned": 0,
        }
        self.ub = [{m: e.upper_bound(m) for m in self.mbs} for e in evaluators]
        self.design_ub = np.mean(
            [np.max([u[m] for m in self.mbs], axis=0) for u in self.ub], axis=0
        )
        self.values: dict[tuple, tuple[Design, float]] = {}
        self._flushed = time.perf_counter()
        if store is not None:
            self._load_store()

    def _load_store(self) -> None:
        for e in self.ev:
            for m in self.mbs:
                for h in self.hbm:
                    for r in self.rc:
                        got = self.store.load(e.workload.name, m, h, r)
                        for i, a in enumerate(got["arch"].tolist()):
                            self.rows[(e.workload.name, a, m, h, r)] = (
                                float(got["throughput"][i]),
                                float(got["time_per_batch_s"][i]),
                                int(got["tp"][i]),
                                int(got["dp"][i]),
                                int(got["stages"][i]),
                                int(got["bottleneck"][i]),
                            )
        self.counters["stored_rows_reused"] = len(self.rows)

    def row(self, wi: int, arch: int, mbs: int, hbm: int, rc: bool) -> tuple:
        key = (self.names[wi], arch, mbs, hbm, rc)
        found = self.rows.get(key)
        if found is None:
            found = self.ev[wi].exact(mbs, arch, hbm, rc)
            self.rows[key] = found
            self.pending.append(key)
            self.counters["exact_rows"] += 1
        return found

    def flush(self) -> None:
        """Write pending rows to the store (one transaction per setting)."""
        if self.store is None or not self.pending:
            self.pending.clear()
            return
        groups: dict[tuple, list[tuple]] = {}
        for key in self.pending:
            groups.setdefault((key[0], key[2], key[3], key[4]), []).append(key)
        for (name, m, h, r), keys in groups.items():
            vals = [self.rows[k] for k in keys]
            self.store.add(
                name,
                m,
                h,
                r,
                [k[1] for k in keys],
                {
                    "throughput": [v[0] for v in vals],
                    "time_per_batch_s": [v[1] for v in vals],
                    "tp": [v[2] for v in vals],
                    "dp": [v[3] for v in vals],
                    "stages": [v[4] for v in vals],
                    "bottleneck": [v[5] for v in vals],
                },
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

        With one workload and ``floor > 0``, settings whose bound is below ``floor`` are
        skipped too: the value returned is exact when it is at least ``floor``, and
        otherwise only known to be below it (callers use it as "cannot reach ``floor``").
        """
        key = (arch, hbm) if settings is None else (arch, hbm, tuple(settings))
        if len(self.ev) > 1 or not prune:
            floor = 0.0
        found = self.values.get(key)
        if found is not None and found[1] <= floor:
            return found[0]
        per = []
        for wi in range(len(self.ev)):
            opts = settings or [(m, r) for m in self.mbs for r in self.rc]
            order = sorted(opts, key=lambda s: (-self.ub[wi][s[0]][arch], s[0], s[1]))
            best = (0.0, 0, False, np.inf, 0, 0, 0)
            for m, r in order:
                if prune and self.ub[wi][m][arch] < max(best[0], floor):
                    self.counters["settings_pruned"] += 1
                    continue
                tput, t_s, t, d, s, _ = self.row(wi, arch, m, hbm, r)
                if tput > best[0]:
                    best = (tput, m, r, t_s, t, d, s)
            per.append(best)
        value = float(np.mean([p[0] for p in per]))
        out = Design(arch=arch, hbm_bytes=hbm, value=value, per_workload=tuple(per))
        self.values[key] = (out, floor)
        self.counters["designs_evaluated"] += 1
        if time.perf_counter() - self._flushed >= self.flush_every_s:
            self.flush()
        if self.progress is not None:
            self.progress(1)
        return out

    def prefetch(self, archs: Sequence[int]) -> None:
        """Do the work every visited architecture needs, for a batch at once: schedule its
        layers for every workload and micro-batch size (one vectorised call each) and
        place it at the largest HBM for every setting -- split over the worker processes
        when there are any. The rows are the same whatever the number of processes."""
        hbm = self.hbm[-1]
        todo = [int(a) for a in archs]
        for wi, e in enumerate(self.ev):
            name = self.names[wi]
            need = [
                a
                for a in todo
                if any((name, a, m, hbm, r) not in self.rows for m in self.mbs for r in self.rc)
            ]
            if not need:
                continue
            if self.pool is not None:
                got = self.pool.prefetch(wi, need, self.mbs, hbm, self.rc)
                for (a, m, r), row in sorted(got.items()):
                    key = (name, a, m, hbm, r)
                    if key not in self.rows:
                        self.rows[key] = row
                        self.pending.append(key)
                        self.counters["exact_rows"] += 1
                continue
            for m in self.mbs:
                e.schedule(m, need)
            for a in need:
                for m in self.mbs:
                    for r in self.rc:
                        self.row(wi, a, m, hbm, r)


def _better(a: Design | None, b: Design, area: np.ndarray) -> bool:
    """Whether ``b`` beats incumbent ``a`` (value, then smaller area, index, HBM)."""
    if a is None:
        return b.value > 0
    ka = (-a.value, area[a.arch], a.arch, a.hbm_bytes)
    kb = (-b.value, area[b.arch], b.arch, b.hbm_bytes)
    return kb < ka


_BATCH = 64  # architectures scheduled per vectorised call


def _exact(run: _Run, area: np.ndarray, exhaustive: bool, frontier: bool = True) -> tuple:
    n = area.shape[0]
    ub = run.design_ub
    hbm_desc = sorted(run.hbm, reverse=True)
    best: Design | None = None
    # pass 1: the optimum, most promising designs first. HBM sizes from the largest:
    # a smaller HBM never does better (fewer plans fit), so it is evaluated only when the
    # largest reaches the incumbent (a tie on value is broken towards the smaller HBM).
    order = np.lexsort((np.arange(n), area, -ub)).tolist()
    for k, arch in enumerate(order):
        if not exhaustive and best is not None and ub[arch] < best.value:
            break  # every later design has a lower bound still
        if k % _BATCH == 0:
            limit = 0.0 if exhaustive or best is None else best.value
            run.prefetch([a for a in order[k : k + _BATCH] if ub[a] >= limit])
        top = run.design(arch, hbm_desc[0], prune=not exhaustive)
        if _better(best, top, area):
            best = top
        for h in hbm_desc[1:]:
            if not exhaustive and top.value < best.value:
                break
            d = run.design(arch, h, prune=not exhaustive)
            if _better(best, d, area):
                best = d
    if not frontier:
        return best, np.zeros(0, np.int64), np.zeros(0)
    # pass 2: the frontier, by increasing area, at the largest HBM (which bounds the
    # others). An architecture whose bound is below the best value reached with no more
    # area cannot be on the frontier.
    arch_value = np.zeros(n)
    evaluated = np.zeros(n, dtype=bool)
    reached = 0.0
    by_area = np.lexsort((np.arange(n), area)).tolist()
    for k, arch in enumerate(by_area):
        if k % _BATCH == 0 and not exhaustive:
            run.prefetch([a for a in by_area[k : k + _BATCH] if ub[a] >= reached])
        if not exhaustive and ub[arch] < reached:
            continue
        floor = 0.0 if exhaustive else reached
        v = run.design(arch, hbm_desc[0], prune=not exhaustive, floor=floor).value
        if exhaustive:
            v = max([v, *(run.design(arch, h, prune=False).value for h in hbm_desc[1:])])
        arch_value[arch], evaluated[arch] = v, True
        reached = max(reached, v)
    run.counters["designs_pruned"] = int(n - evaluated.sum())
    keep = evaluated & (arch_value >= 0)
    front = pareto_frontier(area[keep], arch_value[keep])
    idx = np.flatnonzero(keep)[front]
    return best, idx, arch_value[idx]


def _phaze(run: _Run, area: np.ndarray) -> tuple:
    best: Design | None = None
    arch_value = np.zeros(area.shape[0])
    for m in run.mbs:
        for h in run.hbm:
            for r in run.rc:

                def value_of(idx, m=m, h=h, r=r):
                    out = np.empty(len(idx))
                    for j, a in enumerate(np.asarray(idx).tolist()):
                        d = run.design(a, h, prune=False, settings=[(m, r)])
                        out[j] = d.value
                        arch_value[a] = max(arch_value[a], d.value)
                    return out

                visited, _ = phaze_walk(area, value_of)
                for a in visited.tolist():
                    d = run.design(a, h, prune=False, settings=[(m, r)])
                    if _better(best, d, area):
                        best = d
    seen = np.flatnonzero(arch_value > 0)
    front = seen[pareto_frontier(area[seen], arch_value[seen])]
    return best, front, arch_value[front]


def fingerprint(workloads, cluster, space, micro_batches, hbm_sizes, recompute, strategy) -> dict:
    """JSON-ready description of a search's arguments (what a resumed run must match)."""
    return {
        "workloads": [
            {
                "model": repr(w.model),
                "seq_len": w.seq_len,
                "global_batch": w.global_batch,
                "optimizer": w.optimizer,
                "bytes_per_element": w.bytes_per_element,
                "max_tp": w.max_tp,
            }
            for w in workloads
        ],
        "cluster": {"devices": cluster.devices, "link_bandwidth_Bps": cluster.link_bandwidth_Bps},
        "space": repr(space),
        "micro_batches": sorted(set(micro_batches)),
        "hbm_bytes": sorted({int(h) for h in hbm_sizes}),
        "recompute": sorted({bool(r) for r in recompute}),
        "strategy": strategy,
        "format": 1,
    }


def search(
    workloads: Workload | Sequence[Workload],
    cluster: Cluster | None = None,
    space=None,
    micro_batches: Sequence[int] = (1, 2, 4, 8),
    hbm_sizes: Sequence[float] = (32 * GIB, 64 * GIB, 80 * GIB),
    recompute: Sequence[bool] = (False, True),
    strategy: str = "exact",
    out: str | None = None,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
    flush_every_s: float = 1.0,
    jobs: int = 1,
) -> SearchResult:
    """Search architectures and plans jointly; see the module docstring.

    Parameters
    ----------
    workloads : Workload or sequence of Workload
        Several workloads share one architecture, each with its own plan.
    cluster : Cluster, optional
    space : DesignSpace, optional
        Default: the paper's space (29,360 architectures).
    micro_batches, hbm_sizes, recompute : sequences
        Settings searched for every architecture.
    strategy : {"exact", "phaze", "exhaustive"}
    out : path or OutputDir, optional
        Directory of the resumable result store, locked for the search (pass an open
        :class:`~phaze.outdir.OutputDir` to keep it locked beyond the search).
    force : bool
        Discard a store written with other arguments.
    progress : callable, optional
        Called with 1 after every evaluated design.
    jobs : int
        Processes that schedule layers (1: none, all in this process). The result does
        not depend on it.
    flush_every_s : float
        Rows are written to the store at least this often (and at the end, also when
        interrupted); at most this much work is lost to a hard kill.

    Returns
    -------
    SearchResult
    """
    from phaze.hardware import DesignSpace

    started = time.perf_counter()
    if isinstance(workloads, Workload):
        workloads = [workloads]
    workloads = tuple(workloads)
    if not workloads:
        raise ConfigError("at least one workload is needed")
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy={strategy!r}; allowed: {', '.join(STRATEGIES)}")
    cluster = cluster or Cluster()
    space = space if space is not None else DesignSpace()
    for h in hbm_sizes:
        if not h > 0:
            raise ConfigError(f"HBM size {h!r} must be > 0 bytes")
    if not micro_batches or not hbm_sizes or not recompute:
        raise ConfigError("micro_batches, hbm_sizes and recompute must be non-empty")
    # order and repeats do not make another search (nor another store fingerprint)
    try:
        micro_batches = tuple(sorted(set(micro_batches)))
        recompute = tuple(sorted(set(recompute)))
    except TypeError:
        raise ConfigError(
            f"micro_batches={micro_batches!r} must be integers and recompute={recompute!r} booleans"
        ) from None
    names = [w.name for w in workloads]
    if len(set(names)) != len(names):
        raise ConfigError(f"workloads must have distinct model names, got {names}")
    arch_table = space.enumerate()
    area = np.asarray(arch_table.area_um2, dtype=np.float64)
    store = None  # opened first: a bad output directory fails before any work
    if out is not None:
        store = ResultStore(
            out,
            fingerprint(workloads, cluster, space, micro_batches, hbm_sizes, recompute, strategy),
            force=force,
        )
    cache = ScheduleCache()
    try:
        evaluators = [
            WorkloadEvaluator(w, cluster, arch_table, micro_batches, cache) for w in workloads
        ]
    except BaseException:
        if store is not None:
            store.close()
        raise
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs={jobs!r} must be an integer >= 1")
    run = None
    pool = None
    try:
        run = _Run(
            evaluators,
            hbm_sizes,
            micro_batches,
            recompute,
            store,
            progress,
            flush_every_s=flush_every_s,
        )
        if jobs > 1:
            from phaze.search.workers import WorkerPool

            pool = run.pool = WorkerPool(evaluators, jobs)
        if strategy == "phaze":
            best, front, front_value = _phaze(run, area)
        else:
            best, front, front_value = _exact(run, area, exhaustive=strategy == "exhaustive")
        run.flush()
        details = (
            _details(run, best, area, strategy, cluster, space, micro_batches, recompute, cache)
            if best is not None
            else ()
        )
    finally:  # an interrupted search keeps every row it computed
        if pool is not None:
            pool.close()
        if run is not None:
            run.flush()
        if store is not None:
            store.close()
    keys = sorted(run.rows, key=lambda k: (names.index(k[0]), *k[1:]))
    rows = {
        "workload": np.array([names.index(k[0]) for k in keys], dtype=np.int64),
        "arch": np.array([k[1] for k in keys], dtype=np.int64),
        "mbs": np.array([k[2] for k in keys], dtype=np.int64),
        "hbm_bytes": np.array([k[3] for k in keys], dtype=np.int64),
        "recompute": np.array([k[4] for k in keys], dtype=bool),
    }
    for j, name in enumerate(
        ("throughput", "time_per_batch_s", "tp", "dp", "stages", "bottleneck")
    ):
        dtype = np.float64 if j < 2 else np.int64
        rows[name] = np.array([run.rows[k][j] for k in keys], dtype=dtype)
    counters = dict(run.counters)
    counters.update(
        architectures=int(area.shape[0]),
        dp_calls=sum(e.dp_calls for e in evaluators),
        wall_s=time.perf_counter() - started,
        **cache.stats(),
    )
    return SearchResult(
        workloads=workloads,
        cluster=cluster,
        strategy=strategy,
        arch_table=arch_table,
        best=best,
        frontier=front,
        frontier_value=front_value,
        rows=rows,
        counters=counters,
        details=details,
    )


def _details(
    run: _Run, best: Design, area, strategy, cluster, space, micro_batches, recompute, cache
) -> tuple[dict, ...]:
    from phaze.placement import place
    from phaze.search.baselines import compare

    out = []
    for wi, ev in enumerate(run.ev):
        tput, mbs, rc, _, t, _, _ = best.per_workload[wi]
        plan = (
            place(ev.problem(mbs, best.arch, best.hbm_bytes, rc), tensor_width=t)
            if tput > 0
            else None
        )
        own = tput
        if len(run.ev) > 1:  # this workload's best on a design of its own
            solo = _Run([ev], run.hbm, run.mbs, run.rc, run.store, None, rows=run.rows)
            if strategy == "phaze":
                own_design = _phaze(solo, area)[0]
            else:
                own_design = _exact(solo, area, strategy == "exhaustive", frontier=False)[0]
            solo.flush()
            own = own_design.value if own_design is not None else 0.0
        cmp = compare(
            ev.workload, cluster, space.template, micro_batches, best.hbm_bytes, recompute, cache
        )
        out.append(
            {
                "plan": plan,
                "own_best": own,
                "micro_batch": mbs,
                "recompute": rc,
                "throughput": tput,
                **cmp,
            }
        )
    return tuple(out)
