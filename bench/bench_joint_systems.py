"""Benchmark: the joint search over a real cluster with Megatron's training accounting.

Run: ``pytest bench/bench_joint_systems.py --benchmark-only -s -m ""`` (marked ``slow``:
two full-space gpt3-175b searches and a re-check of every feasible row).

gpt3-175b on 1,024 devices of ``a100-selene`` (NVLink nodes of 8, InfiniBand across),
the paper's default settings (micro-batches 1, 2, 4, 8; HBM 32, 64, 80 GiB; recomputation
off and on), Adam: the search under Megatron's accounting (``--training megatron``:
18 bytes per parameter, per-layer activations, recomputation on every stage) and under
the paper's (6 bytes per parameter with Adam). Then every feasible row of the paper's
search -- the best plan of one architecture and setting -- is re-evaluated with the same
stages under Megatron's accounting, and the plans that no longer fit are counted.
"""

from __future__ import annotations

import time

import pytest

from phaze import Training, _kernels, load_system
from phaze.joint import WorkloadEvaluator, search
from phaze.models import preset
from phaze.placement import evaluate_plan, place
from phaze.schedule import ScheduleCache
from phaze.units import GIB
from phaze.workload import Cluster, Workload

FULL = dict(
    micro_batch_sizes=(1, 2, 4, 8),
    hbm_sizes=(32 * GIB, 64 * GIB, 80 * GIB),
    recompute=(False, True),
)


def _describe(result) -> str:
    best = result.best
    if best is None:
        return "nothing fits"
    a = result.arch_table.accelerator(best.arch)
    mine = best.per_workload[0]
    return (
        f"{best.value:.2f} samples/s: arch {best.arch} (num_tc={a.num_tc}, "
        f"tc {a.tc_width}x{a.tc_depth}, num_vc={a.num_vc}, vc_width={a.vc_width}, "
        f"glb {a.glb_bytes // 2**20} MiB), {best.hbm_bytes / GIB:.0f} GiB; mbs "
        f"{mine.micro_batch_size}, recompute {mine.recompute}, t={mine.tensor_width}, "
        f"d={mine.data_parallel}, {mine.num_stages} stages"
    )


@pytest.mark.slow
def test_gpt3_on_selene_with_megatron_accounting(benchmark):
    _kernels.warmup()
    net = load_system("a100-selene").network
    cluster = Cluster(1024, network=net)
    w = Workload(preset("gpt3-175b"), optimizer="adam")
    found = {}

    def run(training):
        started = time.process_time()
        r = search(w, cluster, training=training, **FULL)
        found[training.accounting] = (r, time.process_time() - started)
        return r

    benchmark.pedantic(lambda: run(Training("megatron")), rounds=1, iterations=1)
    run(Training())
    for name, (r, cpu) in found.items():
        c = r.counters
        print(
            f"\n{name}: {_describe(r)}; {c['wall_s']:.1f} s wall, {cpu:.1f} s CPU, "
            f"{c['designs_evaluated']} designs, {c['dp_calls']} DP calls"
        )
    paper = found["paper"][0]
    # re-check every feasible row of the paper's search under Megatron's accounting
    cache = ScheduleCache()
    mbs = FULL["micro_batch_sizes"]
    ev_paper = WorkloadEvaluator(w, cluster, paper.arch_table, mbs, cache)
    meg = Workload(w.model, optimizer="adam", training=Training("megatron"))
    ev_meg = WorkloadEvaluator(meg, cluster, paper.arch_table, mbs, cache)
    # the paper's best plan, counted both ways
    best = paper.best
    mine = best.per_workload[0]
    key = (mine.micro_batch_size, best.arch, float(best.hbm_bytes), mine.recompute)
    plan = paper.details[0]["plan"]
    again = evaluate_plan(
        ev_meg.problem(*key), plan.tensor_width, plan.data_parallel, plan.stage_layers
    )
    print(
        f"paper's best plan: {max(st.memory_bytes for st in plan.stages) / GIB:.1f} GiB per "
        f"device (paper's accounting), {max(st.memory_bytes for st in again.stages) / GIB:.1f}"
        f" GiB (Megatron's), HBM {best.hbm_bytes / GIB:.0f} GiB, fits: {again.feasible}"
    )
    rows = paper.rows
    total = broken = 0
    started = time.perf_counter()
    for i in range(len(rows["throughput"])):
        if not rows["throughput"][i] > 0:
            continue
        key = (
            int(rows["micro_batch_size"][i]),
            int(rows["arch"][i]),
            float(rows["hbm_bytes"][i]),
            bool(rows["recompute"][i]),
        )
        t = int(rows["tensor_width"][i])
        plan = place(ev_paper.problem(*key), tensor_width=t)
        again = evaluate_plan(ev_meg.problem(*key), t, plan.data_parallel, plan.stage_layers)
        total += 1
        broken += not again.feasible
    print(
        f"paper-accounting plans (feasible rows) that do not fit at 18 B/param: {broken} of "
        f"{total} ({time.perf_counter() - started:.1f} s to re-check)"
    )
    benchmark.extra_info.update(paper_rows=total, paper_rows_not_fitting=broken)
    assert 0 < total and 0 <= broken <= total
