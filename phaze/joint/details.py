"""What a search reports about its best design, per workload: the plan, the workload's
best on a design of its own, and the comparisons with the tpuv4-like chip and the fixed
Megatron plan (:func:`phaze.joint.baselines.compare`)."""

from __future__ import annotations

from phaze.joint.baselines import compare
from phaze.joint.objective import row_score
from phaze.joint.run_state import Design, SearchRun
from phaze.joint.strategy import exact_search, phaze_search
from phaze.placement import place

__all__ = ["design_details", "own_best_design"]


def _seed(run: SearchRun, solo: SearchRun, wi: int) -> Design | None:
    """A starting incumbent for workload ``wi``'s own search: the design the joint search
    evaluated on which ``wi`` scored best, evaluated again for ``wi`` alone (from
    memoised rows, so exactly and cheaply). It only prunes: the own search's result
    does not depend on it."""
    top, top_score = None, 0.0
    for design, _ in run.values.values():
        if design.per_workload[wi].throughput > 0:
            score = row_score(design.per_workload[wi], run.objective, run.power_budget_w)
            if score > top_score:
                top, top_score = design, score
    if top is None:
        return None
    found = solo.design(top.arch, top.hbm_bytes)
    return found if found.value > 0 else None


def own_best_design(run: SearchRun, wi: int, area, strategy: str) -> Design | None:
    """Workload ``wi``'s best design of its own among ``run``'s architectures (searched
    with ``strategy``, from the rows ``run`` has), or None when nothing fits."""
    solo = SearchRun(
        [run.ev[wi]],
        run.hbm,
        run.mbs,
        run.rc,
        run.store,
        None,
        rows=run.rows,
        objective=run.objective,
        power_budget_w=run.power_budget_w,
    )
    if strategy == "phaze":
        own_design = phaze_search(solo, area)[0]
    else:
        exhaustive = strategy == "exhaustive"
        seed = None if exhaustive else _seed(run, solo, wi)
        own_design = exact_search(solo, area, exhaustive, frontier=False, incumbent=seed)[0]
    solo.flush()
    return own_design


def design_details(
    run: SearchRun,
    best: Design,
    area,
    strategy,
    cluster,
    template,
    micro_batch_sizes,
    recompute,
    cache,
    own_designs=None,
) -> tuple[dict, ...]:
    """One dict per workload: ``plan`` (a :class:`~phaze.placement.Plan` or None),
    ``own_best`` (throughput), ``micro_batch_size``, ``recompute``, ``throughput``, ``power_w``,
    ``energy_per_sample_j`` and the comparisons.

    ``own_designs``: each workload's best design of its own, when known (else searched
    for among ``run``'s architectures, with several workloads)."""
    out = []
    for wi, ev in enumerate(run.ev):
        mine = best.per_workload[wi]
        plan = None
        if mine.throughput > 0 and mine.interleave > 1:  # the placement's own stages
            plan = ev.interleaved_plan(
                mine.micro_batch_size, best.arch, best.hbm_bytes, mine.recompute
            )
        elif mine.throughput > 0:
            plan = place(
                ev.problem(mine.micro_batch_size, best.arch, best.hbm_bytes, mine.recompute),
                tensor_width=mine.tensor_width,
            )
        own = mine.throughput
        if len(run.ev) > 1:  # this workload's best on a design of its own
            own_design = (
                own_designs[wi]
                if own_designs is not None
                else own_best_design(run, wi, area, strategy)
            )
            own = own_design.per_workload[0].throughput if own_design is not None else 0.0
        cmp = compare(
            ev.workload,
            cluster,
            template,
            micro_batch_sizes,
            best.hbm_bytes,
            recompute,
            cache,
        )
        out.append(
            {
                "plan": plan,
                "own_best": own,
                "micro_batch_size": mine.micro_batch_size,
                "recompute": mine.recompute,
                "throughput": mine.throughput,
                "power_w": mine.power_w,
                "energy_per_sample_j": mine.energy_per_sample_j,
                **cmp,
            }
        )
    return tuple(out)
