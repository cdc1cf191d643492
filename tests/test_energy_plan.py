"""A plan's power and energy per sample (WorkloadEvaluator.exact, docs/energy.md) against a
plain sum over the plan's stages, layers and operators."""

from __future__ import annotations

import math

import pytest

from phaze import (
    Cluster,
    DesignSpace,
    EnergyModel,
    Workload,
    build_graph,
    energy_table,
    latency_table,
    place,
    preset,
    unique_ops,
)
from phaze.joint.evaluator import WorkloadEvaluator
from phaze.units import GIB, UM2_PER_MM2

#: Relative tolerance: the same float64 sums in another order.
RTOL = 1e-9

SPACE = DesignSpace(
    num_tc=(2, 8),
    num_vc=(2,),
    tc_width=(32, 128),
    tc_depth=(128,),
    vc_width=(128,),
    glb_bytes=(2**24, 2**27),
    area_band=0.0,
).enumerate()


def _energy_by_stages(workload, cluster, arch_table, arch, mbs, plan, model) -> float:
    """Cluster energy of one batch: every stage's operators x micro-batches, forward,
    backward and recomputed forward, the data-parallel all-reduce, and leakage x time."""
    t = plan.tensor_width
    graph = build_graph(workload.model, workload.seq_len, mbs, t, workload.bytes_per_element)
    ops, index = unique_ops([graph])
    lat = latency_table(ops, arch_table, link_bandwidth_Bps=cluster.link_bandwidth_Bps)
    e = energy_table(lat, model).energy_j
    ls = lat.latency_s
    micro_batches = workload.global_batch // mbs
    total = 0.0
    replica_params = 0.0
    position = {layer.layer_id: pos for pos, layer in enumerate(graph.layers)}
    for stage in plan.stages:
        for layer_id in stage.layer_ids:
            pos = position[layer_id]
            layer = graph.layers[pos]
            devices = t if layer.tensor_parallel else 1
            replica_params += devices * layer.param_bytes
            passes = [0, 1, 0] if stage.recompute else [0, 1]
            for row in index.rows(0, pos).tolist():
                for p in passes:
                    mode = 1 if ls[row, arch, 1, p] <= ls[row, arch, 0, p] else 0
                    total += micro_batches * devices * e[row, arch, mode, p]
    d = plan.data_parallel
    total += 2 * (d - 1) * replica_params * 8 * model.network_j_per_bit
    leak = model.leakage_w_per_mm2 * arch_table.area_um2[arch] / UM2_PER_MM2
    return total + cluster.devices * leak * plan.time_per_batch_s


CASES = [
    ("bert-large", 256, 16, 8, 32 * GIB, False),
    ("bert-large", 256, 16, 8, 32 * GIB, True),
    ("megatron-gpt2-54", 64, 64, 2, 8 * GIB, True),
    ("megatron-gpt2-54", 64, 64, 4, 16 * GIB, False),
]


@pytest.mark.parametrize(("name", "batch", "devices", "mbs", "hbm", "recompute"), CASES)
def test_energy_per_sample_is_the_sum_over_the_plans_stages(
    name, batch, devices, mbs, hbm, recompute
):
    workload = Workload(preset(name), global_batch=batch)
    cluster = Cluster(devices=devices)
    model = EnergyModel()
    ev = WorkloadEvaluator(workload, cluster, SPACE, [mbs], energy_model=model)
    shapes = set()
    for arch in range(len(SPACE)):
        row = ev.exact(mbs, arch, hbm, recompute)
        if row.throughput == 0:
            assert row.power_w == 0 and math.isinf(row.energy_per_sample_j)
            continue
        plan = place(ev.problem(mbs, arch, hbm, recompute))
        assert (plan.tensor_width, plan.data_parallel, plan.num_stages) == (
            row.tensor_width,
            row.data_parallel,
            row.num_stages,
        )
        shapes.add((plan.tensor_width > 1, plan.num_stages > 1))
        want = _energy_by_stages(workload, cluster, SPACE, arch, mbs, plan, model)
        got = row.energy_per_sample_j * batch
        assert math.isclose(got, want, rel_tol=RTOL), (arch, row, want)
        # power per device and energy per sample describe the same joules
        assert math.isclose(row.power_w * devices * row.time_per_batch_s, got, rel_tol=RTOL), row
        leak = model.leakage_w_per_mm2 * SPACE.area_um2[arch] / UM2_PER_MM2
        assert row.power_w > leak, row
    assert shapes, "no feasible plan: the case checks nothing"


def test_the_cases_cover_tensor_parallel_and_pipelined_recomputing_plans():
    """The cases above must include a t > 1 plan and a multi-stage recomputing plan, or
    the per-stage sum would not exercise the recomputation and the device counts."""
    seen = set()
    for name, batch, devices, mbs, hbm, recompute in CASES:
        w = Workload(preset(name), global_batch=batch)
        ev = WorkloadEvaluator(w, Cluster(devices=devices), SPACE.take([len(SPACE) - 1]), [mbs])
        row = ev.exact(mbs, 0, hbm, recompute)
        seen.add(("tp", row.tensor_width > 1))
        seen.add(("pipelined recompute", recompute and row.num_stages > 1))
    assert ("tp", True) in seen and ("pipelined recompute", True) in seen, seen


def test_leakage_only_model_gives_leakage_power():
    w = Workload(preset("bert-large"), global_batch=256)
    leak_only = EnergyModel(
        mac_j=0,
        register_access_j=0,
        core_sram_access_j=0,
        glb_access_j=0,
        hbm_access_j=0,
        vector_op_j=0,
        network_j_per_bit=0,
    )
    ev = WorkloadEvaluator(w, Cluster(devices=16), SPACE, [8], energy_model=leak_only)
    row = ev.exact(8, 0, 32 * GIB, False)
    assert row.throughput > 0
    assert math.isclose(row.power_w, 0.085 * SPACE.area_um2[0] / UM2_PER_MM2, rel_tol=1e-12)
