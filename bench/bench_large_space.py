"""Benchmark: an exact gpt3-175b search over a design space of about a million
architectures (non-power-of-two core counts, widths, depths and buffer sizes).

Run: ``pytest bench/bench_large_space.py --benchmark-only -s -m slow``. Prints the number
of architectures, search time (wall and CPU), the process's peak resident memory and the
memory per architecture (peak RSS growth over the warmed-up process, divided by the
number of architectures); figures go to bench/README.md with this command.

The same run as a script (for ``/usr/bin/time -v``):
``python bench/bench_large_space.py [--jobs N]``. The figures include digests of the rows
and of the frontier, so runs of two checkouts can be compared (``PYTHONPATH=<checkout>``);
with ``PHAZE_BENCH_ROWS=file.npz`` the rows themselves are saved too, for
``python bench/compare_rows.py before.npz after.npz``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import time

import numpy as np
import pytest

from phaze import _kernels
from phaze.hardware import DesignSpace
from phaze.joint import search
from phaze.models import preset
from phaze.units import GIB, MIB
from phaze.workload import Cluster, Workload

_POW2 = (4096, 2048, 1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1)
#: core counts: powers of two, 3 * 2^k and 5 * 2^k (108 and 132 SMs as well)
CORES = tuple(
    sorted(
        set(_POW2) | {3 * 2**k for k in range(11)} | {5 * 2**k for k in range(10)} | {108, 132},
        reverse=True,
    )
)
#: widths and depths: powers of two and 3 * 2^k, 2 .. 256
SIDES = tuple(sorted({2**k for k in range(1, 9)} | {3 * 2**k for k in range(7)}, reverse=True))
#: global buffer: powers of two and 3 * 2^k MiB, 2 .. 128 MiB
GLB = tuple(
    sorted({m * MIB for m in (2, 4, 8, 16, 32, 64, 128, 3, 6, 12, 24, 48, 96)}, reverse=True)
)


#: The search's settings (the paper's): micro-batch sizes, HBM sizes, recomputation.
SETTINGS = {
    "micro_batch_sizes": (1, 2, 4, 8),
    "hbm_sizes": (32 * GIB, 64 * GIB, 80 * GIB),
    "recompute": (False, True),
}


def large_space() -> DesignSpace:
    """The paper's template and area band over the finer grid above."""
    return DesignSpace(num_tc=CORES, num_vc=CORES, tc_width=SIDES, tc_depth=SIDES, glb_bytes=GLB)


def space_and_settings(name: str) -> tuple:
    """The enumerated space and search settings a diagnostic's ``--space`` names:
    ``large`` (:func:`large_space` and :data:`SETTINGS`) or ``default`` (the paper's space
    and the search's own defaults)."""
    if name == "large":
        return large_space().enumerate(), SETTINGS
    return DesignSpace().enumerate(), {}


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _digest(arrays: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        h.update(name.encode())
        h.update(np.ascontiguousarray(arrays[name]).tobytes())
    return h.hexdigest()[:16]


def run(jobs: int = 1) -> dict:
    """Warm up, enumerate the space, search exactly (with ``jobs`` processes); figures as
    a dict."""
    _kernels.warmup()
    base = _peak_rss_bytes()
    table = large_space().enumerate()
    t0, c0 = time.perf_counter(), time.process_time()
    result = search(Workload(preset("gpt3-175b")), Cluster(), table, jobs=jobs, **SETTINGS)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _peak_rss_bytes()
    if os.environ.get("PHAZE_BENCH_ROWS"):
        np.savez(os.environ["PHAZE_BENCH_ROWS"], **result.rows)
    return {
        "architectures": len(table),
        "search_wall_s": wall,
        "search_cpu_s": cpu,
        "peak_rss_bytes": peak,
        "bytes_per_architecture": (peak - base) / len(table),
        "best_value": result.best.value,
        "best_arch": result.best.arch,
        "best_hbm_bytes": result.best.hbm_bytes,
        "rows": len(result.rows["arch"]),
        "rows_digest": _digest(result.rows),
        "frontier_digest": _digest(
            {"frontier": result.frontier, "frontier_value": result.frontier_value}
        ),
        **{k: v for k, v in result.counters.items() if isinstance(v, (int, float))},
    }


@pytest.mark.slow
@pytest.mark.benchmark(group="search-large")
def test_gpt3_million_architectures(benchmark):
    figures = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    print(f"\n{figures}")
    assert figures["architectures"] >= 1_000_000
    assert figures["best_value"] > 0


@pytest.mark.slow
@pytest.mark.benchmark(group="search-large")
def test_gpt3_million_architectures_two_jobs(benchmark):
    figures = benchmark.pedantic(run, kwargs={"jobs": 2}, rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    print(f"\n{figures}")
    assert figures["architectures"] >= 1_000_000
    assert figures["best_value"] > 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1)
    print(run(parser.parse_args().jobs))
