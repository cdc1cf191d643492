"""Benchmark: the cost of Megatron's options in the joint search.

Run: ``pytest bench/bench_joint_megatron_options.py --benchmark-only -s -m ""`` (marked
``slow``: full-space gpt3-175b searches). Set ``PHAZE_BENCH_OPTIONS`` to a
comma-separated subset of the option names to time only those (default: all).

gpt3-175b on 1,024 devices of ``a100-selene``, Adam, the paper's default settings
(micro-batches 1, 2, 4, 8; HBM 32, 64, 80 GiB; recomputation off and on), Megatron's
accounting with full recomputation: the search without options (the baseline), with
each option alone and with all four, one process (``jobs=1``). Printed per run: the
best design and plan, wall and CPU seconds, designs evaluated, DP calls, and the
recurrences and memory-cap intervals of ``d`` the placement ran beyond the paper's
final round (:mod:`phaze.placement.data_parallel`).

``-k interleaves``: the same search without options with ``--interleave 1`` and
``1,2,4`` (:mod:`phaze.placement.interleave`); ``-k tpuv4``: the rows of the tpuv4-like
architecture with and without interleaved plans.
"""

from __future__ import annotations

import os
import time

import pytest

import phaze.placement.chain as chain_module
from phaze import Training, _kernels, load_system
from phaze.joint import search
from phaze.models import preset
from phaze.placement import data_parallel
from phaze.training import MEGATRON_OPTIONS
from phaze.units import GIB
from phaze.workload import Cluster, Workload

FULL = dict(
    micro_batch_sizes=(1, 2, 4, 8),
    hbm_sizes=(32 * GIB, 64 * GIB, 80 * GIB),
    recompute=(False, True),
)
OPTIONS = {
    "none": {},
    **{name: {name: True} for name in MEGATRON_OPTIONS},
    "all": dict.fromkeys(MEGATRON_OPTIONS, True),
}


def _describe(result) -> str:
    best = result.best
    if best is None:
        return "nothing fits"
    mine = best.per_workload[0]
    return (
        f"{best.value:.2f} samples/s: arch {best.arch}, {best.hbm_bytes / GIB:.0f} GiB; mbs "
        f"{mine.micro_batch_size}, recompute {mine.recompute}, t={mine.tensor_width}, "
        f"d={mine.data_parallel}, {mine.num_stages} stages"
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", list(OPTIONS))
def test_gpt3_on_selene_with_megatron_options(benchmark, name, monkeypatch):
    wanted = os.environ.get("PHAZE_BENCH_OPTIONS")
    if wanted and name not in wanted.split(","):
        pytest.skip(f"{name} not in PHAZE_BENCH_OPTIONS")
    _kernels.warmup()
    counters: dict = {}
    plain = data_parallel.solve_over_d

    def counted(*args, **kw):
        return plain(*args, **kw, counters=counters)

    monkeypatch.setattr(chain_module, "solve_over_d", counted)  # the search's placements
    cluster = Cluster(1024, network=load_system("a100-selene").network)
    training = Training("megatron", "full", **OPTIONS[name])
    w = Workload(preset("gpt3-175b"), optimizer="adam", training=training)
    found = {}

    def run():
        started = time.process_time()
        found["r"] = search(w, cluster, **FULL)
        found["cpu"] = time.process_time() - started

    benchmark.pedantic(run, rounds=1, iterations=1)
    r, c = found["r"], found["r"].counters
    print(
        f"\n{name}: {_describe(r)}; {c['wall_s']:.1f} s wall, {found['cpu']:.1f} s CPU, "
        f"{c['designs_evaluated']} designs, {c['dp_calls']} DP calls; placement: {counters}"
    )
    benchmark.extra_info.update(cpu_s=found["cpu"], dp_calls=c["dp_calls"], **counters)
    assert r.best is not None and r.best.value > 0


INTERLEAVES = {"1": (1,), "1,2,4": (1, 2, 4)}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(INTERLEAVES))
def test_gpt3_on_selene_with_interleaves(benchmark, name, monkeypatch):
    """``--interleave 1`` (the baseline above) against ``--interleave 1,2,4``: search time,
    best samples/s and the recurrences the interleaved placements ran
    (:mod:`phaze.placement.interleave`)."""
    _kernels.warmup()
    counters: dict = {}
    plain = chain_module.solve_interleaved

    def counted(*args, **kw):
        counters["placements"] = counters.get("placements", 0) + 1
        return plain(*args, **kw, counters=counters)

    monkeypatch.setattr(chain_module, "solve_interleaved", counted)
    cluster = Cluster(1024, network=load_system("a100-selene").network)
    training = Training("megatron", "full", interleaves=INTERLEAVES[name])
    w = Workload(preset("gpt3-175b"), optimizer="adam", training=training)
    found = {}

    def run():
        started = time.process_time()
        found["r"] = search(w, cluster, **FULL)
        found["cpu"] = time.process_time() - started

    benchmark.pedantic(run, rounds=1, iterations=1)
    r, c = found["r"], found["r"].counters
    mine = r.best.per_workload[0]
    print(
        f"\ninterleave {name}: {_describe(r)}, v={mine.interleave}; {c['wall_s']:.1f} s wall, "
        f"{found['cpu']:.1f} s CPU, {c['designs_evaluated']} designs, {c['dp_calls']} DP "
        f"calls; interleaved placements: {counters}"
    )
    benchmark.extra_info.update(cpu_s=found["cpu"], dp_calls=c["dp_calls"], **counters)
    assert r.best is not None and r.best.value > 0


@pytest.mark.slow
def test_gpt3_interleaved_rows_on_the_tpuv4_like_architecture(benchmark):
    """The rows of the tpuv4-like architecture (8 cores of 128 x 128, 128 MiB) for
    gpt3-175b on 1,024 ``a100-selene`` devices, micro-batch 1, with ``--interleave 1``
    and ``1,2,4``: where the pipeline bubble matters, interleaving wins."""
    from phaze.hardware import DesignSpace
    from phaze.joint import WorkloadEvaluator

    _kernels.warmup()
    space = DesignSpace(
        num_tc=(8,), num_vc=(2,), tc_width=(128,), tc_depth=(128,), vc_width=(128,),
        glb_bytes=(2**27,), area_band=0.0,
    )  # fmt: skip
    cluster = Cluster(1024, network=load_system("a100-selene").network)
    rows = {}

    def run():
        for il in ((1,), (1, 2, 4)):
            training = Training("megatron", "full", interleaves=il)
            w = Workload(preset("gpt3-175b"), optimizer="adam", training=training)
            ev = WorkloadEvaluator(w, cluster, space.enumerate(), [1])
            for hbm in (32, 64, 80):
                for rc in (False, True):
                    rows[il, hbm, rc] = ev.exact(1, 0, hbm * GIB, rc)

    benchmark.pedantic(run, rounds=1, iterations=1)
    for (il, hbm, rc), r in sorted(rows.items()):
        print(
            f"\n--interleave {','.join(map(str, il))}, {hbm} GiB, recompute {rc}: "
            f"{r.throughput:.4f} samples/s, t={r.tensor_width}, d={r.data_parallel}, "
            f"{r.num_stages} stages, v={r.interleave}"
        )
    assert all(rows[(1, 2, 4), h, r].throughput >= rows[(1,), h, r].throughput for _, h, r in rows)
