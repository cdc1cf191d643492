"""Reference points a search result is compared with.

* the **tpuv4-like** architecture -- the largest configuration of the paper's space (8
  tensor cores of 128x128, 2 vector cores of 128 lanes, 128 MiB GLB), evaluated with the
  design space's own cost-model constants and its own best plan;
* the **fixed Megatron-style plan** of the paper (pipeline p, tensor t, data d) on that
  architecture (docs/placement.md), infeasible when it does not fit in memory.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from phaze.hardware import ArchTable
from phaze.hardware.space import REFERENCE_MAX_CONFIG
from phaze.joint.evaluator import WorkloadEvaluator
from phaze.placement import evaluate_baseline, place

__all__ = ["MEGATRON_PLANS", "megatron_plan", "tpuv4_like_table"]

#: The paper's fixed plans (pipeline p, tensor t, data d) for 1024 devices.
MEGATRON_PLANS = MappingProxyType(
    {
        "opt-350m": (12, 1, 85),
        "bert-large": (8, 1, 128),
        "gpt2-xl": (32, 1, 32),
        "megatron-bert": (8, 1, 128),
        "megatron-gpt2-xl": (8, 1, 128),
        "megatron-gpt2-54": (8, 4, 32),
        "megatron-gpt2-72": (8, 8, 16),
        "gpt3-175b": (32, 4, 8),
        "llama2-7b": (8, 1, 128),
        "llama2-13b": (8, 1, 128),
        "llama2-70b": (8, 1, 128),
    }
)


def megatron_plan(
    name: str, layers: int, devices: int, widths: tuple[int, ...]
) -> tuple[int, int, int]:
    """``(p, t, d)``: the paper's plan for ``name`` (default ``(8, 1, .)``), with ``p``
    capped at the number of blocks, ``t`` at the widths on offer and ``d`` filling the
    cluster: ``d = max(1, devices // (p * t))``."""
    p, t, _ = MEGATRON_PLANS.get(name, (8, 1, 0))
    p = max(1, min(p, layers))
    if t not in widths:
        t = max(w for w in widths if w <= max(t, 1))
    return p, t, max(1, devices // (p * t))


def tpuv4_like_table(template) -> ArchTable:
    """The tpuv4-like configuration with the constants of ``template``."""
    tc, vc, w, d, vw, glb = REFERENCE_MAX_CONFIG
    return ArchTable.from_columns(
        template,
        num_tc=np.array([tc]),
        num_vc=np.array([vc]),
        tc_width=np.array([w]),
        tc_depth=np.array([d]),
        vc_width=np.array([vw]),
        glb_bytes=np.array([glb]),
    )


def compare(
    workload, cluster, template, micro_batch_sizes, hbm_bytes, recompute, cache=None
) -> dict:
    """Best plan on the tpuv4-like chip and the fixed Megatron plan on it, at one HBM
    size, each the best over micro-batch sizes and recomputation.

    Returns a dict with ``tpuv4_like`` and ``megatron`` entries of the form
    ``{"samples_per_s", "micro_batch_size", "recompute", "plan"}`` (throughput 0 and plan None
    when nothing fits) and ``megatron_plan`` ``(p, t, d)``.
    """
    ev = WorkloadEvaluator(workload, cluster, tpuv4_like_table(template), micro_batch_sizes, cache)
    tpu = {"samples_per_s": 0.0, "micro_batch_size": None, "recompute": None, "plan": None}
    meg = dict(tpu)
    fixed = megatron_plan(workload.name, workload.model.layers, cluster.devices, ev.widths)
    for mbs in micro_batch_sizes:
        for rc in recompute:
            row = ev.exact(mbs, 0, hbm_bytes, rc)
            if row.throughput > tpu["samples_per_s"]:
                if row.interleave > 1:  # the placement's own interleaved stages
                    plan = ev.interleaved_plan(mbs, 0, hbm_bytes, rc)
                else:
                    plan = place(ev.problem(mbs, 0, hbm_bytes, rc), tensor_width=row.tensor_width)
                tpu = {
                    "samples_per_s": row.throughput,
                    "micro_batch_size": mbs,
                    "recompute": rc,
                    "plan": plan,
                }
            plan = evaluate_baseline(ev.problem(mbs, 0, hbm_bytes, rc, fixed_baseline=fixed))
            if plan.feasible:
                tput = workload.global_batch / plan.time_per_batch_s
                if tput > meg["samples_per_s"]:
                    meg = {
                        "samples_per_s": tput,
                        "micro_batch_size": mbs,
                        "recompute": rc,
                        "plan": plan,
                    }
    return {"tpuv4_like": tpu, "megatron": meg, "megatron_plan": fixed}
