"""Benchmark: the joint search (docs/search.md).

Run: ``pytest bench/bench_search.py --benchmark-only -s -m ""`` (the full-space runs are
marked ``slow``). Each test warms the numba kernels first, so figures are search time; the
counters (architectures evaluated and pruned, layer schedules closed by bounds, enumerated
or solved with CBC, placement DP calls) are printed and stored in the benchmark's
``extra_info``.

Reference point: the original PHAZE needs Gurobi and days of compute for the gpt3-175b
search over the full space. Bar for ours: <= 15 minutes on 2 cores; goal <= 3 minutes.
"""

from __future__ import annotations

import pytest

from phaze import _kernels
from phaze.hardware import DesignSpace
from phaze.joint import search
from phaze.models import preset
from phaze.units import GIB
from phaze.workload import Cluster, Workload

FULL = dict(
    micro_batch_sizes=(1, 2, 4, 8),
    hbm_sizes=(32 * GIB, 64 * GIB, 80 * GIB),
    recompute=(False, True),
)


def _run(benchmark, workloads, cluster, space=None, **kw):
    _kernels.warmup()
    result = benchmark.pedantic(
        lambda: search(workloads, cluster, space, **kw), rounds=1, iterations=1
    )
    benchmark.extra_info.update(
        {k: v for k, v in result.counters.items() if isinstance(v, (int, float))}
    )
    print(
        f"\n{', '.join(w.name for w in result.workloads)} ({kw.get('strategy', 'exact')}, "
        f"jobs={kw.get('jobs', 1)}): best value {result.best.value:.6g} samples/s on "
        f"arch {result.best.arch}; {result.counters}"
    )
    return result


@pytest.mark.benchmark(group="search")
def test_search_reduced_space(benchmark):
    """Smoke size: 579 architectures, bert-large on 64 devices (CI runs this)."""
    space = DesignSpace(
        num_tc=(1, 2, 4, 8, 16),
        num_vc=(1, 2, 4, 8),
        tc_width=(8, 32, 128, 256),
        tc_depth=(8, 32, 128, 256),
        glb_bytes=(2**21, 2**27),
        area_band=0.0,
    )
    r = _run(
        benchmark,
        [Workload(preset("bert-large"), seq_len=128, global_batch=512)],
        Cluster(devices=64),
        space,
        micro_batch_sizes=(1, 4),
        hbm_sizes=(16 * GIB,),
        recompute=(False, True),
    )
    assert r.best.value > 0


@pytest.mark.slow
@pytest.mark.benchmark(group="search-full")
@pytest.mark.parametrize("jobs", [1, 2])
def test_search_gpt3_full_space(benchmark, jobs):
    """gpt3-175b, 29,360 architectures x HBM {32, 64, 80} GiB x mbs {1, 2, 4, 8} x
    recompute {off, on}, 1024 devices, exact."""
    r = _run(benchmark, [Workload(preset("gpt3-175b"))], Cluster(), jobs=jobs, **FULL)
    assert r.counters["architectures"] == 29_360


@pytest.mark.slow
@pytest.mark.benchmark(group="search-full")
def test_search_gpt3_full_space_paper_walk(benchmark):
    """The paper's walk on the same problem, for comparison."""
    r = _run(benchmark, [Workload(preset("gpt3-175b"))], Cluster(), strategy="phaze", **FULL)
    assert r.best.value > 0


@pytest.mark.slow
@pytest.mark.benchmark(group="search-full")
def test_search_quickstart_default(benchmark):
    """What ``phaze search`` runs with no arguments: bert-large, full space."""
    r = _run(benchmark, [Workload(preset("bert-large"))], Cluster(), **FULL)
    assert r.best.value > 0


@pytest.mark.slow
@pytest.mark.benchmark(group="search-full")
def test_search_two_models_jointly(benchmark):
    """One architecture for gpt3-175b and llama2-7b together, full space."""
    r = _run(
        benchmark, [Workload(preset("gpt3-175b")), Workload(preset("llama2-7b"))], Cluster(), **FULL
    )
    assert r.best.value > 0
