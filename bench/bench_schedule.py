"""Benchmark: scheduling every unique layer of gpt3-175b for many architectures.

Run: ``pytest bench/bench_schedule.py --benchmark-disable -s`` for the quick ones, add
``-m slow`` for 1,000 sampled architectures (bar: <= 60 s on 2 cores) and all 29,360 of
the default design space (goal: <= 5 minutes). Latencies come from :mod:`phaze.cost` on
:class:`phaze.hardware.DesignSpace` (``latency_s[op, arch, mode, pass]``); their time is
reported separately from the scheduling time that the bars apply to. Each test prints the
counters: CBC solves, bound-closed segments, enumerated segments, memo hits.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from phaze.cost import latency_table
from phaze.hardware import Accelerator, ArchTable, DesignSpace
from phaze.models import build_graph, preset, unique_ops
from phaze.schedule import ScheduleCache, schedule_layer, schedule_model

WIDTHS = (1, 2, 4, 8)
#: how far CBC's lower bound may sit below its (optimal) makespan, relative
CBC_BOUND_RTOL = 1e-6


def schedule_gpt3(n_archs: int | None, seed: int = 0):
    """Schedule every unique layer of gpt3-175b (t in 1, 2, 4, 8; fwd and bwd) on
    ``n_archs`` architectures sampled from the default design space (all when None).
    Returns (scheduling seconds, latency-table seconds, cache, schedules)."""
    graphs = [build_graph(preset("gpt3-175b"), 2048, 1, t) for t in WIDTHS]
    table, index = unique_ops(graphs)
    archs = DesignSpace().enumerate()
    t0 = time.perf_counter()
    lat = latency_table(table, archs)
    cost_s = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    if n_archs is None:
        rows = np.arange(len(archs))
    else:
        rows = np.sort(rng.choice(len(archs), n_archs, replace=False))
    cache = ScheduleCache()
    t0 = time.perf_counter()
    out = [schedule_model(g, lat, rows, cache, op_index=index, graph=k)
           for k, g in enumerate(graphs)]  # fmt: skip
    return time.perf_counter() - t0, cost_s, cache, out


def _report(label: str, seconds: float, cost_s: float, cache: ScheduleCache) -> None:
    st = cache.stats()
    print(f"\n{label}: scheduling {seconds:.1f} s (latency table {cost_s:.1f} s); "
          f"CBC solves {st['solved']}, bound-closed {st['bound_closed']}, enumerated "
          f"{st['enumerated']}, chains {st['chains']}, memo hits {cache.hits}, "
          f"not optimal {st['not_optimal']}")  # fmt: skip


@pytest.mark.benchmark(group="schedule")
def test_schedule_gpt3_smoke(benchmark):
    """A few architectures (CI smoke)."""
    seconds, cost_s, cache, out = benchmark.pedantic(schedule_gpt3, args=(20,), rounds=1,
                                                     iterations=1)  # fmt: skip
    assert all(bool(s.optimal.all()) for s in out)
    assert all(bool((s.fwd_s > 0).all()) for s in out)


@pytest.mark.slow
@pytest.mark.benchmark(group="schedule")
def test_schedule_gpt3_1000_archs(benchmark):
    """Bar: 1,000 architectures in <= 60 s on 2 cores."""
    seconds, cost_s, cache, out = benchmark.pedantic(schedule_gpt3, args=(1000,), rounds=1,
                                                     iterations=1)  # fmt: skip
    _report("gpt3-175b, 1000 archs", seconds, cost_s, cache)
    assert all(bool(s.optimal.all()) for s in out)
    assert seconds <= 60.0


@pytest.mark.slow
@pytest.mark.benchmark(group="schedule")
def test_schedule_gpt3_all_archs(benchmark):
    """Goal: the whole default space (29,360 architectures) in <= 5 minutes."""
    seconds, cost_s, cache, out = benchmark.pedantic(schedule_gpt3, args=(None,), rounds=1,
                                                     iterations=1)  # fmt: skip
    _report("gpt3-175b, 29360 archs", seconds, cost_s, cache)
    assert all(bool(s.optimal.all()) for s in out)
    assert seconds <= 300.0


def real_archs() -> tuple[tuple[str, ...], ArchTable]:
    """tpuv4-like (8 TCs of 128x128, 2 VCs) and variants with 1 and 2 tensor cores, the
    paper's cost constants ("phaze") and a many-small-cores point of the space."""
    tpu = Accelerator.preset("tpuv4-like")
    accs = {
        "tpuv4-like": tpu,
        "1tc": tpu.replace(num_tc=1, num_vc=1),
        "2tc": tpu.replace(num_tc=2, tc_width=64, tc_depth=64, num_vc=2, vc_width=64),
        "2tc-1vc-16x16": tpu.replace(num_tc=2, tc_width=16, tc_depth=16, num_vc=1),
        "phaze-8tc": Accelerator.preset("phaze"),
        "256tc-8x8": tpu.replace(num_tc=256, tc_width=8, tc_depth=8, num_vc=64, vc_width=8),
    }
    return tuple(accs), ArchTable.from_accelerators(list(accs.values()))


def real_block_ilps(models=("gpt3-175b", "llama2-7b"), widths=(1, 8)):
    """Whole-block CBC solves (``method="ilp"``, no shortcuts) on real blocks, checked
    against the default path. Returns rows (model, t, arch, pass, n_ops, vars, constraints,
    seconds, makespan_s)."""
    labels, archs = real_archs()
    rows = []
    for name in models:
        spec = preset(name)
        for t in widths:
            g = build_graph(spec, spec.default_seq, 1, t)
            table, index = unique_ops(g)
            lat = latency_table(table, archs).latency_s
            p = next(i for i, layer in enumerate(g.layers) if layer.role == "block")
            ops = g.layers[p].ops
            r = index.rows(0, p)
            for a, label in enumerate(labels):
                for pas in (0, 1):
                    args = (ops, lat[r, a, 0, pas], lat[r, a, 1, pas], ops.kinds,
                            int(archs.num_tc[a]), int(archs.num_vc[a]))  # fmt: skip
                    cache = ScheduleCache()
                    s = schedule_layer(*args, reverse=bool(pas), method="ilp", cache=cache)
                    auto = schedule_layer(*args, reverse=bool(pas))
                    # the default path's optimum is proven (enumeration, checked against
                    # brute force in tests); CBC must reach it and bound it to 1e-6
                    assert auto.optimal
                    assert abs(s.makespan_s - auto.makespan_s) <= 1e-9 * auto.makespan_s
                    assert s.lower_bound_s >= s.makespan_s * (1 - CBC_BOUND_RTOL)
                    st = cache.ilp_stats[0] if cache.ilp_stats else None
                    rows.append((name, t, label, ("fwd", "bwd")[pas], ops.n_ops,
                                 st.n_vars if st else 0, st.n_constraints if st else 0,
                                 st.seconds if st else 0.0, s.makespan_s))  # fmt: skip
    return rows


@pytest.mark.benchmark(group="schedule")
def test_real_block_ilp_sizes(benchmark):
    """Each CBC solve on a real block takes <= 2 s; prints the sizes."""
    rows = benchmark.pedantic(real_block_ilps, rounds=1, iterations=1)
    print("\nmodel t arch pass ops vars constraints seconds makespan_s")
    for row in rows:
        print(*row[:7], f"{row[7]:.3f}", f"{row[8]:.3e}")
    assert max(r[7] for r in rows) <= 2.0


def schedule_gpt3_batches(n_archs: int = 2048, batch: int = 64, seed: int = 0):
    """Every unique gpt3-175b layer on ``n_archs`` sampled default-space architectures,
    in calls of ``batch`` architectures as the search makes them (one cache). Returns
    (wall seconds, CPU seconds, cache stats)."""
    from phaze import _kernels

    _kernels.warmup()
    graphs = [build_graph(preset("gpt3-175b"), 2048, 1, t) for t in WIDTHS]
    table, index = unique_ops(graphs)
    archs = DesignSpace().enumerate()
    lat = latency_table(table, archs)
    rows = np.sort(np.random.default_rng(seed).choice(len(archs), n_archs, replace=False))
    cache = ScheduleCache()
    t0, c0 = time.perf_counter(), time.process_time()
    for lo in range(0, rows.size, batch):
        for k, g in enumerate(graphs):
            schedule_model(g, lat, rows[lo : lo + batch], cache, op_index=index, graph=k)
    return time.perf_counter() - t0, time.process_time() - c0, cache.stats()


@pytest.mark.slow
@pytest.mark.benchmark(group="schedule")
def test_schedule_gpt3_in_search_batches(benchmark):
    """2,048 architectures in calls of 64 (the search's pattern)."""
    wall, cpu, stats = benchmark.pedantic(schedule_gpt3_batches, rounds=1, iterations=1)
    print(f"\ngpt3-175b, 2,048 archs in calls of 64: {wall:.2f} s wall, {cpu:.2f} s CPU; {stats}")
    assert stats["not_optimal"] == 0
    assert stats["bound_closed"] + stats["enumerated"] > 0
