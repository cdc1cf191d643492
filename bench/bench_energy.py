"""Benchmark: energy (docs/energy.md) -- the operator-energy kernel and the search under a
power budget and the throughput-per-watt objective.

Run: ``pytest bench/bench_energy.py --benchmark-only -s -m ""`` (the full-space runs are
marked ``slow``). Kernels are warmed up first; figures are run time.
"""

from __future__ import annotations

import time

import pytest

from phaze import _kernels
from phaze.cost import latency_table
from phaze.energy import energy_table
from phaze.hardware import DesignSpace
from phaze.joint import search
from phaze.models import build_graph, preset, unique_ops
from phaze.units import GIB
from phaze.workload import Cluster, Workload

FULL = dict(
    micro_batch_sizes=(1, 2, 4, 8),
    hbm_sizes=(32 * GIB, 64 * GIB, 80 * GIB),
    recompute=(False, True),
)


@pytest.mark.slow
@pytest.mark.benchmark(group="energy")
def test_energy_table_full_space(benchmark):
    """energy_table for the 47 unique gpt3-175b operators (t in {1, 2, 4, 8}) on all
    29,360 architectures, beside the latency table it reuses."""
    _kernels.warmup()
    spec = preset("gpt3-175b")
    ops, _ = unique_ops([build_graph(spec, 2048, 1, t) for t in (1, 2, 4, 8)])
    archs = DesignSpace().enumerate()
    t0 = time.perf_counter()
    lat = latency_table(ops, archs)
    t_lat = time.perf_counter() - t0
    e = benchmark.pedantic(lambda: energy_table(lat), rounds=5, iterations=1)
    benchmark.extra_info["latency_table_s"] = t_lat
    print(f"\nlatency_table {t_lat:.3f} s; energy_table shape {e.energy_j.shape}")
    assert e.energy_j.shape == lat.latency_s.shape


@pytest.mark.slow
@pytest.mark.benchmark(group="energy-search")
def test_gpt3_search_with_power_budget_and_per_watt(benchmark):
    """gpt3-175b on the full space: the plain exact search, then with a power budget just
    below the plain optimum's power, then with the throughput-per-watt objective, in one
    process; the ratios to the plain search are the figures (target <= 1.5)."""
    _kernels.warmup()
    w, c = Workload(preset("gpt3-175b")), Cluster()
    times, cpu, results = {}, {}, {}

    def run(name, **kw):  # wall and CPU time: the machine may be shared
        t0, c0 = time.perf_counter(), time.process_time()
        results[name] = search(w, c, **kw, **FULL)
        times[name] = time.perf_counter() - t0
        cpu[name] = time.process_time() - c0

    run("plain")
    budget = 0.95 * results["plain"].best.per_workload[0].power_w
    run("budget", power_budget_w=budget)
    benchmark.pedantic(lambda: run("per_watt", objective="throughput-per-watt"), rounds=1)
    for name, r in results.items():
        b = r.best.per_workload[0]
        print(
            f"\n{name}: {times[name]:.1f} s wall ({times[name] / times['plain']:.2f}x plain), "
            f"{cpu[name]:.1f} s CPU ({cpu[name] / cpu['plain']:.2f}x plain); "
            f"{r.counters['designs_evaluated']} designs, {r.counters['dp_calls']} DP calls; "
            f"best arch {r.best.arch}: {b.throughput:.4g} samples/s, {b.power_w:.4g} W, "
            f"{b.energy_per_sample_j:.4g} J/sample"
        )
        benchmark.extra_info[f"{name}_s"] = times[name]
        benchmark.extra_info[f"{name}_cpu_s"] = cpu[name]
    print(f"budget {budget:.4g} W")
    assert results["budget"].best.per_workload[0].power_w <= budget
