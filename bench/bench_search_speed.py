"""Benchmark: search speed -- large clusters, several models, placements, ``--jobs``.

Every case runs through the public API only, so the same file measures an older checkout
too (``PYTHONPATH=<checkout> python bench/bench_search_speed.py CASE``) for before/after
ratios in one session. As a script it prints one JSON line: wall and CPU seconds
(``time.process_time``, this process only), the best design, the frontier, a digest of
the rows and the counters (with ``PHAZE_BENCH_ROWS=file.npz``, also the rows themselves,
for ``python bench/compare_rows.py``). As pytest (``pytest bench/bench_search_speed.py -s -m slow``)
the same cases run under pytest-benchmark (all are slow: tens of seconds to minutes).

Cases: ``gpt3`` (gpt3-175b, full space, 1,024 devices), ``gpt3-16384``, ``bert-1024``,
``bert-65536`` (other device counts), ``joint4`` (bert-large, opt-350m, gpt2-xl and
llama2-7b: the four separate searches, then the joint one), ``gpt3-jobs2``,
``joint4-jobs2`` (the joint search with ``jobs=2``; the separate ones with one).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time

import numpy as np
import pytest

import phaze
import phaze._kernels as kernels

JOINT = ("bert-large", "opt-350m", "gpt2-xl", "llama2-7b")
COUNTERS = (
    "designs_evaluated",
    "designs_pruned",
    "exact_rows",
    "settings_pruned",
    "dp_calls",
    "placements_reused",
    "bound_closed",
    "enumerated",
    "solved",
    "layer_schedules",
    "chains",
)


def _timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def _summary(r, wall: float, cpu: float) -> dict:
    h = hashlib.sha256()
    for k in sorted(r.rows):
        h.update(k.encode())
        h.update(np.ascontiguousarray(r.rows[k]).tobytes())
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "best": None if r.best is None else [r.best.arch, r.best.hbm_bytes, r.best.value],
        "frontier_sha": hashlib.sha256(
            r.frontier.tobytes() + r.frontier_value.tobytes()
        ).hexdigest()[:16],
        "rows": int(r.rows["arch"].size),
        "rows_sha": h.hexdigest()[:16],
        "own_best": [d.get("own_best") for d in r.details],
        "counters": {k: r.counters[k] for k in COUNTERS if k in r.counters},
    }


def run_case(case: str) -> dict:
    """Run one case (module docstring) and return its figures."""
    kernels.warmup()
    jobs = 1
    if case.endswith("-jobs2"):
        case, jobs = case[: -len("-jobs2")], 2
    if case == "joint4":
        ws = [phaze.Workload(phaze.preset(n)) for n in JOINT]
        out, cpu_sum, wall_sum = {}, 0.0, 0.0
        for w in ws:
            r, wall, cpu = _timed(lambda w=w: phaze.search(w, phaze.Cluster()))
            out[w.name] = _summary(r, wall, cpu)
            cpu_sum, wall_sum = cpu_sum + cpu, wall_sum + wall
        r, wall, cpu = _timed(lambda: phaze.search(ws, phaze.Cluster(), jobs=jobs))
        out["joint"] = _summary(r, wall, cpu)
        out["joint_over_sum_cpu"] = round(cpu / cpu_sum, 3)
        out["joint_over_sum_wall"] = round(wall / wall_sum, 3)
        return out
    model, _, devices = case.partition("-")
    name = {"gpt3": "gpt3-175b", "bert": "bert-large"}[model]
    cluster = phaze.Cluster(devices=int(devices or 1024))
    r, wall, cpu = _timed(
        lambda: phaze.search(phaze.Workload(phaze.preset(name)), cluster, jobs=jobs)
    )
    if os.environ.get("PHAZE_BENCH_ROWS"):  # keep the rows, to compare two checkouts
        np.savez(os.environ["PHAZE_BENCH_ROWS"], **r.rows)
    return _summary(r, wall, cpu)


@pytest.mark.slow
@pytest.mark.benchmark(group="search-speed")
@pytest.mark.parametrize(
    "case", ["gpt3", "gpt3-16384", "bert-1024", "bert-65536", "joint4", "gpt3-jobs2"]
)
def test_search_speed(benchmark, case):
    got = benchmark.pedantic(lambda: run_case(case), rounds=1, iterations=1)
    print(f"\n{case}: {json.dumps(got)}")
    best = got["joint"]["best"] if case == "joint4" else got["best"]
    assert best is not None and best[2] > 0


if __name__ == "__main__":
    print(json.dumps({"case": sys.argv[1], **run_case(sys.argv[1])}))
