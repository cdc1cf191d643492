"""Benchmark: the cost kernels on gpt3-175b x the default design space.

Run ``pytest bench/bench_cost.py -s`` (timings, figures printed) and add ``-m slow`` for
the JIT compile time and the cached start-up time of a fresh process. The workload: every
unique operator of gpt3-175b (seq 2048, micro-batch 1, t in 1, 2, 4, 8) on every unique
tensor-core (4,186) and vector-core (697) configuration of ``DesignSpace()``.

"GEMM evaluations" count (unique GEMM shape, tensor-core config, mode) triples computed by
the kernel (one-core and all-cores are two); "(operator, config) pairs" count each GEMM
operator's forward and both backward GEMMs in both modes as one pair.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from phaze._kernels import gemm as kgemm
from phaze._kernels import vector as kvector
from phaze.cost import gemm_table, latency_table
from phaze.hardware import Accelerator, ArchTable, DesignSpace
from phaze.models import build_graph, preset, unique_ops
from phaze.opcodes import OpKind

WIDTHS = (1, 2, 4, 8)


@pytest.fixture(scope="module")
def gpt3():
    kgemm.warmup()
    kvector.warmup()
    graphs = [build_graph(preset("gpt3-175b"), 2048, 1, t) for t in WIDTHS]
    ops, _ = unique_ops(graphs)
    rows = np.flatnonzero((ops.kind == OpKind.TC) | (ops.kind == OpKind.TC_VC))
    b, m, k, n = (getattr(ops, c)[rows] for c in ("gemm_b", "gemm_m", "gemm_k", "gemm_n"))
    shapes = np.concatenate([np.stack(s, axis=1) for s in
                             ((b, m, k, n), (b, m, n, k), (b, k, m, n))])  # fmt: skip
    return ops, len(rows), np.unique(shapes, axis=0), DesignSpace().enumerate()


@pytest.mark.benchmark(group="cost-gpt3")
def test_gemm_kernel_gpt3_full_space(benchmark, gpt3):
    """All unique gpt3-175b GEMMs x all 4,186 unique TC configs (both modes)."""
    ops, n_gemm_ops, shapes, archs = gpt3
    t0 = time.perf_counter()
    out = benchmark(gemm_table, shapes, archs)
    once = time.perf_counter() - t0
    secs = benchmark.stats.stats.min if benchmark.stats else once
    n_tc = len(archs.tc)
    print(
        f"\n{len(shapes)} unique GEMMs x {n_tc} TC configs x 2 modes: {secs * 1e3:.1f} ms"
        f" -> {len(shapes) * n_tc * 2 / secs / 1e6:.2f} M GEMM evaluations/s, "
        f"{n_gemm_ops * n_tc / secs / 1e6:.2f} M (operator, config) pairs/s "
        f"({n_gemm_ops} GEMM operators), one thread"
    )
    assert np.isfinite(out[0]).all()


@pytest.mark.benchmark(group="cost-gpt3")
def test_latency_table_gpt3_all_architectures(benchmark, gpt3):
    """The whole latency table: every gpt3-175b operator x all 29,360 architectures."""
    ops, _, _, archs = gpt3
    lt = benchmark(latency_table, ops, archs)
    assert lt.latency_s.shape == (len(ops), len(archs), 2, 2)
    print(
        f"\nlatency_table: {len(ops)} operators x {len(archs)} architectures "
        f"({lt.latency_s.nbytes / 2**20:.0f} MiB of float64)"
    )


@pytest.mark.benchmark(group="cost-gpt3")
def test_vector_kernel_gpt3_full_space(benchmark, gpt3):
    """Vector work of every gpt3-175b operator x all 697 unique VC configs."""
    ops, _, _, archs = gpt3
    rows = np.flatnonzero(np.diff(ops.vc_ptr) > 0)
    vc = archs.vc
    out = np.zeros((len(rows), len(vc), 2, 2))
    words = np.zeros_like(out)

    def w(x, dtype=np.int64):  # writable C arrays: the specialisation latency_table uses
        return np.require(x, dtype=dtype, requirements=["C", "W"])

    args = (
        w(rows),
        *(w(getattr(ops, c)) for c in ("vc_ptr", "vc_code", "vc_elems", "vc_aux")),
        w(ops.kind[rows] == OpKind.VC, np.bool_),
        w(vc.num_vc),
        w(vc.vc_width),
        w(vc.vc_memory_term, np.bool_),
        w(vc.glb_sram_words_per_cycle, np.float64),
        w(vc.glb_sram_per_core, np.bool_),
        out,
        words,
    )
    benchmark(kvector.vc_cycles, *args)
    assert (out > 0).all()


@pytest.mark.benchmark(group="gemm-vs-reference")
@pytest.mark.parametrize("impl", ["kernel", "reference"])
def test_gemm_kernel_beside_reference(benchmark, impl):
    """One small GEMM on one config: the numba kernel and the brute-force reference."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from reference import gemm as ref

    cfg = dict(
        cores=8,
        pes=64,
        sram=1024,
        regs=32,
        glb=2**20,
        bw_pe=64.0,
        pe_per_core=False,
        bw_glb=256.0,
        glb_per_core=False,
        bw_hbm=128.0,
    )
    shape = (2, 96, 128, 64)
    if impl == "reference":
        ref.level_words.cache_clear()

        def run():
            ref.level_words.cache_clear()
            return ref.gemm(*shape, mode=1, **cfg)

        benchmark(run)
    else:
        acc = Accelerator.preset("phaze").replace(num_tc=8, tc_width=8, tc_depth=8, glb_bytes=2**20)
        table = ArchTable.from_accelerators([acc])
        benchmark(gemm_table, np.array([shape]), table)


@pytest.mark.slow
def test_compile_and_cached_startup_time(tmp_path):
    """JIT compile time (empty numba cache) and start-up of a fresh process (cache warm)."""
    script = textwrap.dedent("""
        import json, time
        t0 = time.perf_counter()
        import phaze.cost
        from phaze._kernels import gemm, vector
        t1 = time.perf_counter()
        gemm.warmup(); vector.warmup()
        t2 = time.perf_counter()
        print(json.dumps({"import_s": t1 - t0, "warmup_s": t2 - t1}))
    """)
    env = {
        **os.environ,
        "NUMBA_CACHE_DIR": str(tmp_path),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    runs = []
    for _ in range(2):
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            timeout=900,
        )
        wall = time.perf_counter() - t0
        runs.append({**json.loads(done.stdout.strip().splitlines()[-1]), "wall_s": wall})
    print(
        f"\nJIT compile (gemm + vector kernels, empty cache): {runs[0]['warmup_s']:.2f} s; "
        f"fresh process with warm cache: warmup {runs[1]['warmup_s']:.3f} s, import "
        f"{runs[1]['import_s']:.2f} s, whole process {runs[1]['wall_s']:.2f} s "
        f"(first process {runs[0]['wall_s']:.2f} s)"
    )
    assert runs[1]["warmup_s"] < runs[0]["warmup_s"]
