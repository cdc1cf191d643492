"""Benchmark: sweeps across many searches, serial against 2 workers.

Run: ``pytest bench/bench_sweep.py --benchmark-only -s -m ""`` (the 24-cell runs are marked
``slow``). Each slow test runs the same 24-cell sweep (2 models x 3 device counts x 4 area
budgets over a 579-architecture space) serially and then on 2 workers, in one run, and
reports the speed-up ratio (target >= 1.7x on 2 cores). The kernels are compiled before
timing; the records of both runs must be identical.
"""

from __future__ import annotations

import os
import resource
import time

import pytest

from phaze import _kernels, sweep
from phaze.sweeps import parse_sweep

#: 2 models x 3 device counts x 4 area budgets = 24 cells.
SWEEP_24 = {
    "search": {
        "seq_len": 128,
        "global_batch": 512,
        "hbm_gib": 16,
        "micro_batch_sizes": [1, 4],
        "recompute": "both",
        "area_band": 0.0,
    },
    "space": {
        "num_tc": [1, 2, 4, 8, 16],
        "num_vc": [1, 2, 4, 8],
        "tc_width": [8, 32, 128, 256],
        "tc_depth": [8, 32, 128, 256],
        "glb_mib": [2, 128],
    },
    "grid": {
        "model": ["bert-large", "opt-350m"],
        "devices": [64, 256, 1024],
        "area_budget_mm2": [50, 100, 200, 300],
    },
}


def _cpu_s() -> float:
    """CPU seconds of this process and of its finished child processes."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _without_timing(records):
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in records]


def _speedup(benchmark, backend: str) -> None:
    spec = parse_sweep(SWEEP_24)
    assert len(spec.cells) == 24
    _kernels.warmup()
    load = os.getloadavg()[0]
    cpu, started = _cpu_s(), time.perf_counter()
    serial = sweep(spec, backend="serial")
    serial_s, serial_cpu = time.perf_counter() - started, _cpu_s() - cpu
    cpu, started = _cpu_s(), time.perf_counter()
    parallel = benchmark.pedantic(
        lambda: sweep(spec, backend=backend, jobs=2), rounds=1, iterations=1
    )
    parallel_s, parallel_cpu = time.perf_counter() - started, _cpu_s() - cpu
    assert _without_timing(parallel) == _without_timing(serial)
    ratio = serial_s / parallel_s
    after = os.getloadavg()[0]
    benchmark.extra_info.update(
        serial_s=serial_s,
        parallel_s=parallel_s,
        speedup=ratio,
        serial_cpu_s=serial_cpu,
        parallel_cpu_s=parallel_cpu,
        load_before=load,
        load_after=after,
    )
    # On a machine shared with other jobs the wall-clock ratio measures the share of the
    # cores this run got; the CPU seconds say what the work itself cost.
    print(
        f"\n24 cells, {backend} x2: serial {serial_s:.1f} s, 2 workers {parallel_s:.1f} s, "
        f"speed-up {ratio:.2f}x; CPU time serial {serial_cpu:.1f} s, 2 workers "
        f"{parallel_cpu:.1f} s (1-min load average before/after: {load:.2f}/{after:.2f})"
    )


@pytest.mark.slow
@pytest.mark.benchmark(group="sweep")
def test_sweep_24_cells_two_processes(benchmark):
    """Serial against 2 local worker processes."""
    _speedup(benchmark, "processes")


@pytest.mark.slow
@pytest.mark.benchmark(group="sweep")
def test_sweep_24_cells_two_worker_local_cluster(benchmark):
    """Serial against a 2-worker dask.distributed LocalCluster (start-up included)."""
    pytest.importorskip("distributed")
    _speedup(benchmark, "dask")


@pytest.mark.benchmark(group="sweep")
def test_sweep_smoke(benchmark):
    """Smoke size (CI): 2 one-architecture cells on 2 local processes."""
    spec = parse_sweep(
        {
            "search": {
                "seq_len": 128,
                "global_batch": 512,
                "hbm_gib": 16,
                "micro_batch_sizes": 1,
                "recompute": "on",
                "area_band": 0.0,
            },
            "space": {
                "num_tc": [8],
                "num_vc": [2],
                "tc_width": [128],
                "tc_depth": [128],
                "glb_mib": [128],
            },
            "grid": {"devices": [16, 64]},
        }
    )
    _kernels.warmup()
    records = benchmark.pedantic(
        lambda: sweep(spec, backend="processes", jobs=2), rounds=1, iterations=1
    )
    assert [r["devices"] for r in records] == [16, 64]
    assert all(r["throughput_samples_per_s"] > 0 for r in records)
