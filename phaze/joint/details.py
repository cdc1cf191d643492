"""What a search reports about its best design, per workload: the plan, the workload's
best on a design of its own, and the comparisons with the tpuv4-like chip and the fixed
Megatron plan (:func:`phaze.joint.baselines.compare`)."""

from __future__ import annotations

from phaze.joint.baselines import compare
from phaze.joint.run_state import Design, SearchRun
from phaze.joint.strategy import exact_search, phaze_search
from phaze.placement import place

__all__ = ["design_details"]


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
) -> tuple[dict, ...]:
    """One dict per workload: ``plan`` (a :class:`~phaze.placement.Plan` or None),
    ``own_best`` (throughput), ``micro_batch_size``, ``recompute``, ``throughput``, ``power_w``,
    ``energy_per_sample_j`` and the comparisons."""
    out = []
    for wi, ev in enumerate(run.ev):
        mine = best.per_workload[wi]
        plan = (
            place(
                ev.problem(mine.micro_batch_size, best.arch, best.hbm_bytes, mine.recompute),
                tensor_width=mine.tensor_width,
            )
            if mine.throughput > 0
            else None
        )
        own = mine.throughput
        if len(run.ev) > 1:  # this workload's best on a design of its own
            solo = SearchRun(
                [ev],
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
                own_design = exact_search(solo, area, strategy == "exhaustive", frontier=False)[0]
            solo.flush()
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
