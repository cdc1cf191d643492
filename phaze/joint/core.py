"""Joint search of accelerator architectures and execution plans (docs/search.md).

A *design* is an architecture (a row of the design space) with an HBM size. Its value is
the mean, over the searched workloads, of each workload's best throughput over
micro-batch sizes and recomputation (each workload with its own best plan). Strategies:

``exact`` (default)
    The true optimum and the exact throughput/area frontier. Designs are visited in order
    of an admissible optimistic throughput (:mod:`phaze.joint.bounds`) and a design whose
    bound is below the incumbent is never evaluated; within a design, settings whose bound
    is below the workload's best so far, or below what the workload must reach for the
    design to reach the incumbent, are skipped. The frontier pass visits
    architectures by increasing area and skips one whose bound is below the best
    throughput already reached with no more area. Pruning is strict (``<``), so ties are
    evaluated and broken exactly as an exhaustive evaluation breaks them: highest value,
    then smaller area, then lower architecture index, then smaller HBM.
``phaze``
    The paper's walk (:func:`phaze.joint.strategy.phaze_walk`) for every (micro-batch,
    HBM, recomputation) setting, for comparison.
``exhaustive``
    Every design, no pruning (the reference the tests compare ``exact`` with).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from phaze.errors import ConfigError
from phaze.hardware import ArchTable, DesignSpace
from phaze.joint.details import design_details
from phaze.joint.evaluator import WorkloadEvaluator, warmup_kernels
from phaze.joint.objective import check_objective
from phaze.joint.regions import exact_in_regions, split_by_area
from phaze.joint.run_state import Design, SearchRun, row_table, work_counters
from phaze.joint.strategy import exact_search, phaze_search
from phaze.schedule import ScheduleCache
from phaze.store import ResultStore
from phaze.training import Training
from phaze.units import GIB
from phaze.validate import check_bool, check_choice, check_hbm_bytes, check_int
from phaze.workload import Cluster, Workload

__all__ = ["STRATEGIES", "Design", "SearchResult", "fingerprint", "search"]

#: Search strategies, default first.
STRATEGIES = ("exact", "phaze", "exhaustive")
#: Format of the arguments' fingerprint in the result store.
_FINGERPRINT_FORMAT = 3  # 3: rows carry power_w and energy_per_sample_j


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
        Their values (mean score over workloads -- samples/s, or samples/J for the energy
        objectives -- at the best HBM size).
    rows : dict of arrays
        Every evaluated (workload, arch, micro_batch_size, hbm_bytes, recompute) row, with
        the :data:`phaze.rows.ROW_FIELDS` columns.
    counters : dict
    details : tuple of dict
        Per workload, for the best design: ``plan`` (a :class:`~phaze.placement.Plan`),
        ``own_best`` (the workload's best value on a design of its own; equal to its
        throughput for a single workload), and the comparisons of
        :func:`phaze.joint.baselines.compare` (``tpuv4_like``, ``megatron``,
        ``megatron_plan``).
    """

    workloads: tuple[Workload, ...]
    cluster: Cluster
    strategy: str
    arch_table: ArchTable
    best: Design | None
    frontier: np.ndarray
    frontier_value: np.ndarray
    rows: dict
    counters: dict = field(default_factory=dict)
    details: tuple = ()
    objective: str = "throughput"
    power_budget_w: float | None = None


def fingerprint(
    workloads, cluster, space, micro_batch_sizes, hbm_sizes, recompute, strategy
) -> dict:
    """JSON-ready description of a search's arguments (what a resumed run must match).

    Settings are normalised (sorted, without duplicates), so that the same search given
    in another order is recognised.
    """
    return {
        "workloads": [
            {
                "model": repr(w.model),
                "seq_len": w.seq_len,
                "global_batch": w.global_batch,
                "optimizer": w.optimizer,
                "bytes_per_element": w.bytes_per_element,
                "max_tensor_width": w.max_tensor_width,
                # the paper's accounting leaves the fingerprint (and old stores) unchanged
                **({} if w.training.is_paper else {"training": w.training.fingerprint()}),
            }
            for w in workloads
        ],
        "cluster": {
            "devices": cluster.devices,
            "link_bandwidth_Bps": cluster.link_bandwidth_Bps,
            **({} if cluster.network is None else {"network": repr(cluster.network)}),
        },
        "space": space_fingerprint(space),
        "micro_batch_sizes": sorted(set(micro_batch_sizes)),
        "hbm_bytes": sorted({int(h) for h in hbm_sizes}),
        "recompute": sorted({bool(r) for r in recompute}),
        "strategy": strategy,
        "format": _FINGERPRINT_FORMAT,
    }


def space_fingerprint(space: DesignSpace | ArchTable) -> str:
    """A string that identifies a design space or an architecture table's contents."""
    if isinstance(space, DesignSpace):
        return repr(space)
    import hashlib

    h = hashlib.sha256()
    for name in sorted(vars(space)):
        value = getattr(space, name)
        if isinstance(value, np.ndarray):
            h.update(name.encode())
            h.update(np.ascontiguousarray(value).tobytes())
    return f"ArchTable(rows={len(space)}, sha256={h.hexdigest()})"


def _settings(micro_batch_sizes, hbm_sizes, recompute) -> tuple[list, list, list]:
    """Validated, sorted, duplicate-free settings."""
    for name, values in (
        ("micro_batch_sizes", micro_batch_sizes),
        ("hbm_sizes", hbm_sizes),
        ("recompute", recompute),
    ):
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ConfigError(f"{name}={values!r} is invalid; allowed: a non-empty sequence")
    mbs = sorted({check_int("micro_batch_size", m) for m in micro_batch_sizes})
    hbm = sorted({int(check_hbm_bytes(h)) for h in hbm_sizes})
    rc = sorted({check_bool("recompute", r) for r in recompute})
    return mbs, hbm, rc


def search(
    workloads: Workload | Sequence[Workload],
    cluster: Cluster | None = None,
    space: DesignSpace | ArchTable | None = None,
    micro_batch_sizes: Sequence[int] = (1, 2, 4, 8),
    hbm_sizes: Sequence[float] = (32 * GIB, 64 * GIB, 80 * GIB),
    recompute: Sequence[bool] = (False, True),
    strategy: str = "exact",
    out: str | None = None,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
    flush_every_s: float = 1.0,
    jobs: int = 1,
    objective: str = "throughput",
    power_budget_w: float | None = None,
    training: Training | None = None,
) -> SearchResult:
    """Search architectures and plans jointly; see the module docstring.

    Parameters
    ----------
    workloads : Workload or sequence of Workload
        Several workloads share one architecture, each with its own plan.
    cluster : Cluster, optional
        Default ``Cluster()``: 1024 devices linked at 4 GiB/s.
    space : DesignSpace or ArchTable, optional
        The architectures to search: a design space (default: the paper's, 29,360
        architectures) or an explicit table (e.g. a filtered ``DesignSpace().enumerate()``).
    micro_batch_sizes, hbm_sizes, recompute : sequences
        Settings searched for every architecture (order and duplicates do not matter).
    strategy : {"exact", "phaze", "exhaustive"}
    out : path or OutputDir, optional
        Directory of the resumable result store, locked for the search (pass an open
        :class:`~phaze.outdir.OutputDir` to keep it locked beyond the search).
    force : bool
        Discard a store written with other arguments.
    progress : callable, optional
        Called with 1 after every evaluated design.
    flush_every_s : float
        Rows are written to the store at least this often (and at the end, also when
        interrupted); at most this much work is lost to a hard kill.
    jobs : int
        Processes (1: this process only). ``exact`` with 2 or more splits the
        architectures by area between this process and a forked one, each computing its
        own bounds and running the passes over its region
        (:mod:`phaze.joint.regions`): the best design and the frontier are the same as
        with 1; the rows evaluated and the work counters can differ a little. The other
        strategies compute the bounds in ``jobs`` processes and run their passes here;
        their result, rows and counters do not depend on it.
    objective : {"throughput", "throughput-per-watt", "energy-per-sample"}
        What a design's value is (:mod:`phaze.joint.objective`): the mean over workloads
        of samples/s, or of samples per joule (the two energy objectives rank alike).
    power_budget_w : float, optional
        Average power per device (W) a plan may draw; settings whose best plan draws more
        count as infeasible (docs/energy.md).
    training : Training, optional
        Memory and recomputation rules for every workload (:mod:`phaze.training`), e.g.
        ``Training("megatron")``: mixed-precision Adam and Megatron's recomputation, the
        ``recompute`` settings then meaning ``none`` and ``training.recompute_mode``.
        Default: each workload's own (the paper's unless set on the Workload).

    Returns
    -------
    SearchResult

    Raises
    ------
    ConfigError
        A bad argument (the message names it and says what is allowed), a micro-batch size
        that does not divide a workload's global batch, or an output directory that holds a
        search with other arguments (without ``force``) or cannot be written.

    Examples
    --------
    >>> import phaze
    >>> space = phaze.DesignSpace(num_tc=(4, 8), num_vc=(2,), tc_width=(128,),
    ...     tc_depth=(128,), vc_width=(128,), glb_bytes=(2**27,), area_band=0.0)
    >>> w = phaze.Workload(phaze.preset("bert-large"), global_batch=256)
    >>> r = phaze.search(w, phaze.Cluster(devices=16), space, micro_batch_sizes=(8,),
    ...                  hbm_sizes=(32 * phaze.GIB,), recompute=(False,))
    >>> r.best.value > 0, len(r.arch_table), r.counters["designs_evaluated"] >= 1
    (True, 2, True)
    """
    started = time.perf_counter()
    if isinstance(workloads, Workload):
        workloads = [workloads]
    if isinstance(workloads, (str, bytes)) or not isinstance(workloads, Sequence):
        raise ConfigError(
            f"workloads={workloads!r} is invalid; allowed: a Workload or a sequence of them"
        )
    workloads = tuple(workloads)
    if not workloads:
        raise ConfigError("at least one workload is needed")
    for w in workloads:
        if not isinstance(w, Workload):
            raise ConfigError(
                f"workload {w!r} is invalid; allowed: phaze.Workload(phaze.preset(name))"
            )
    if training is not None:
        if not isinstance(training, Training):
            raise ConfigError(
                f"training={training!r} is invalid; allowed: a phaze.Training or None"
            )
        workloads = tuple(dataclasses.replace(w, training=training) for w in workloads)
    check_choice("strategy", strategy, STRATEGIES)
    objective, power_budget_w = check_objective(objective, power_budget_w)
    cluster = Cluster() if cluster is None else cluster
    if not isinstance(cluster, Cluster):
        raise ConfigError(f"cluster={cluster!r} is invalid; allowed: a phaze.Cluster")
    space = DesignSpace() if space is None else space
    if not isinstance(space, (DesignSpace, ArchTable)):
        raise ConfigError(f"space={space!r} is invalid; allowed: a DesignSpace or an ArchTable")
    jobs = check_int("jobs", jobs, 1, 1024)
    mbs, hbm, rc = _settings(micro_batch_sizes, hbm_sizes, recompute)
    names = [w.name for w in workloads]
    if len(set(names)) != len(names):
        raise ConfigError(f"workloads must have distinct model names, got {names}")
    if isinstance(space, ArchTable):
        arch_table, template = space, space.accelerator(0)
    else:
        arch_table, template = space.enumerate(), space.template
    area = np.asarray(arch_table.area_um2, dtype=np.float64)
    visits_all = strategy == "exhaustive"
    # --jobs with `exact`: two processes, each searching an area region (docs/search.md)
    regions = None
    if jobs > 1 and strategy == "exact" and hasattr(os, "fork"):
        regions = split_by_area(area)
    # on a cold numba cache, compiles in two processes (docs/search.md)
    for size in [len(arch_table)] if regions is None else [len(r) for r in regions]:
        warmup_kernels(workloads, size, visits_all)
    cache = ScheduleCache()
    # (with regions, each process builds its own; these check the workloads' settings)
    evaluators = [
        WorkloadEvaluator(
            w,
            cluster,
            arch_table if regions is None else arch_table.take([0]),
            mbs,
            cache,
            visits_all=visits_all,
        )
        for w in workloads
    ]
    store = None  # opened after the arguments are known to be good
    if out is not None:
        store = ResultStore(
            out, fingerprint(workloads, cluster, space, mbs, hbm, rc, strategy), force=force
        )
    run = None
    try:
        if regions is not None:
            found = exact_in_regions(
                workloads,
                cluster,
                arch_table,
                template,
                mbs,
                hbm,
                rc,
                store,
                progress,
                flush_every_s,
                objective,
                power_budget_w,
                regions,
            )
            best, front, front_value, details = (
                found.best,
                found.frontier,
                found.frontier_value,
                found.details,
            )
            counters = dict(found.counters)
            rows = row_table(found.rows, [w.name for w in workloads])
        else:
            if jobs > 1:  # the bounds' latencies, in parallel; the passes run here
                from phaze.joint.workers import precompute_latencies

                precompute_latencies(
                    evaluators,
                    [
                        (wi, m)
                        for wi, e in enumerate(evaluators)
                        for m in mbs
                        if e.memory_fits(m, hbm[-1])
                    ],
                    jobs,
                    (objective, power_budget_w, hbm[-1]),  # the bounds SearchRun starts with
                )
            run = SearchRun(
                evaluators,
                hbm,
                mbs,
                rc,
                store,
                progress,
                flush_every_s=flush_every_s,
                objective=objective,
                power_budget_w=power_budget_w,
            )
            if strategy == "phaze":
                best, front, front_value = phaze_search(run, area)
            else:
                best, front, front_value = exact_search(
                    run, area, exhaustive=strategy == "exhaustive"
                )
            run.flush()
            details = (
                design_details(run, best, area, strategy, cluster, template, mbs, rc, cache)
                if best is not None
                else ()
            )
            counters = work_counters(run, cache)
            rows = run.row_table()
    finally:  # an interrupted search keeps every row it computed
        if run is not None:
            run.flush()
        if store is not None:
            store.close()
    counters.update(
        architectures=int(area.shape[0]),
        # fewest devices on which a plan of some workload may fit in memory (the bound of
        # phaze.joint.bounds.devices_lower_bound; MAX_DEVICES + 1: on no number of devices)
        memory_devices_needed=min(e.devices_needed(m, hbm[-1]) for e in evaluators for m in mbs),
        wall_s=time.perf_counter() - started,
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
        objective=objective,
        power_budget_w=power_budget_w,
    )
