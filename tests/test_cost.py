"""Cost kernels and latency tables: references, roofline validity, fidelity, semantics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import gemm as ref_gemm
from reference import vector as ref_vector

from phaze._kernels import gemm as kg
from phaze._kernels import vector as kv
from phaze.cost import gemm_table, latency_table
from phaze.errors import ConfigError
from phaze.hardware import Accelerator, ArchTable
from phaze.models.optable import OpTable
from phaze.opcodes import CommPass, OpKind, VcOp

DATA = Path(__file__).parent / "data"

# Word counts and cycle counts are integers computed the same way: compare exactly.
# Cycles divide integers by float bandwidths in both implementations: same expression,
# so exact too; REL only covers the float rounding of the max() over identical values.
REL = 1e-12

dims = st.one_of(st.integers(1, 96), st.sampled_from([1, 2, 64, 128, 256]))


# --- buffer levels: closed form == brute force over all tilings and loop orders ---------
@given(
    m=dims,
    k=dims,
    n=dims,
    caps=st.tuples(*[st.integers(1, 3000)] * 3),
    shared=st.one_of(st.just(0), st.integers(1, 40000)),
)
def test_level_words_equals_brute_force(m, k, n, caps, shared):
    got = kg._level_words(m, k, n, *caps, shared)
    want = ref_gemm.level_words(m, k, n, *caps, shared)
    assert got == want, (m, k, n, caps, shared)


@given(
    m=dims,
    k=dims,
    n=dims,
    pes=st.integers(1, 300),
    regs=st.integers(1, 64),
    sram=st.integers(1, 5000),
)
def test_compute_and_pe_words_equal_reference(m, k, n, pes, regs, sram):
    assert kg._compute_cycles(m, k, n, pes) == ref_gemm.compute_cycles(m, k, n, pes)
    assert kg._pe_words(m, k, n, pes, regs, sram) == ref_gemm.pe_words(m, k, n, pes, regs, sram)


def _run_kernel(shape, cfg):
    out = [np.zeros((1, 1, 2)) for _ in range(4)]
    one = lambda v: np.array([v], np.int64)  # noqa: E731
    kg.gemm_cycles(
        one(shape[0]),
        one(shape[1]),
        one(shape[2]),
        one(shape[3]),
        one(cfg["pes"]),
        one(cfg["sram"]),
        one(cfg["regs"]),
        np.array([0, 1], np.int64),
        np.zeros(1, np.int64),
        one(cfg["cores"]),
        np.zeros(1, np.int64),
        one(cfg["glb"]),
        np.array([cfg["bw_pe"]]),
        np.array([cfg["pe_per_core"]]),
        np.array([cfg["bw_glb"]]),
        np.array([cfg["glb_per_core"]]),
        np.array([cfg["bw_hbm"]]),
        *out,
    )
    return [tuple(o[0, 0, mode] for o in out) for mode in (0, 1)]


configs = st.fixed_dictionaries(
    {
        "cores": st.integers(1, 16),
        "pes": st.integers(1, 64),
        "sram": st.integers(1, 2048),
        "regs": st.integers(1, 64),
        "glb": st.integers(1, 50000),
        "bw_pe": st.sampled_from([1.0, 3.5, 64.0]),
        "pe_per_core": st.booleans(),
        "bw_glb": st.sampled_from([2.0, 256.0]),
        "glb_per_core": st.booleans(),
        "bw_hbm": st.sampled_from([0.5, 128.0]),
    }
)
small = st.integers(1, 48)


@settings(max_examples=40)
@given(b=st.integers(1, 3), m=small, k=small, n=small, cfg=configs)
def test_gemm_kernel_equals_reference(b, m, k, n, cfg):
    got = _run_kernel((b, m, k, n), cfg)
    for mode in (0, 1):
        want = ref_gemm.gemm(b, m, k, n, mode=mode, **cfg)
        assert got[mode][0] == pytest.approx(want[0], rel=REL), (mode, got, want)
        assert got[mode][1:] == tuple(float(x) for x in want[1:]), (mode, got, want)


def test_gemm_table_groups_configs_like_single_runs():
    accs = [
        Accelerator.preset("phaze").replace(num_tc=c, tc_width=w, tc_depth=d, glb_bytes=g)
        for c, w, d, g in [
            (8, 128, 128, 2**27),
            (1, 4, 2, 2**21),
            (32, 8, 8, 2**25),
            (16, 8, 8, 2**21),
            (8, 128, 128, 2**21),
        ]
    ]
    shapes = np.array([[1, 2048, 1024, 4096], [12, 2048, 128, 2048], [3, 7, 100, 9]])
    together = gemm_table(shapes, ArchTable.from_accelerators(accs))
    for i, acc in enumerate(accs):
        alone = gemm_table(shapes, ArchTable.from_accelerators([acc]))
        for a, b in zip(together, alone, strict=True):
            np.testing.assert_array_equal(a[:, i], b[:, 0])


# --- roofline validity -------------------------------------------------------------------
accels = st.builds(
    lambda c, w, d, glb, sram, pe_core, glb_core: Accelerator(
        num_tc=c,
        tc_width=w,
        tc_depth=d,
        glb_bytes=glb,
        tc_sram_bytes=sram,
        sram_pe_per_core=pe_core,
        glb_sram_per_core=glb_core,
        word_bytes=2,
    ),
    st.sampled_from([1, 2, 8, 64, 512]),
    st.sampled_from([2, 16, 128]),
    st.sampled_from([2, 32, 256]),
    st.sampled_from([2**20, 2**24, 2**27]),
    st.sampled_from([64, 4096, 2**18]),
    st.booleans(),
    st.booleans(),
)
gemm_shapes = st.tuples(
    st.sampled_from([1, 3, 96]), st.integers(1, 5000), st.integers(1, 5000), st.integers(1, 5000)
)


@settings(max_examples=40)
@given(acc=accels, shape=gemm_shapes)
def test_gemm_latency_is_a_valid_roofline(acc, shape):
    b, m, k, n = shape
    bigger = [
        acc,
        acc.replace(tc_sram_bytes=acc.tc_sram_bytes * 4),
        acc.replace(glb_bytes=acc.glb_bytes * 4),
    ]
    cyc, pe, sram, hbm = gemm_table(np.array([shape]), ArchTable.from_accelerators(bigger))
    macs = b * m * k * n
    compulsory = b * (m * k + k * n + m * n)
    p = acc.tc_width * acc.tc_depth
    wb = acc.word_bytes
    for mode, cores in ((0, 1), (1, acc.num_tc)):
        c = cyc[0, 0, mode]
        slack = 1 + 1e-12
        assert c * slack >= macs / (p * cores), "faster than peak MACs"
        pe_bw = acc.sram_pe_words_per_cycle * (cores if acc.sram_pe_per_core else 1)
        glb_bw = acc.glb_sram_words_per_cycle * (cores if acc.glb_sram_per_core else 1)
        assert c * slack >= compulsory / pe_bw, "faster than SRAM->PE bandwidth allows"
        assert c * slack >= compulsory / glb_bw, "faster than GLB->SRAM bandwidth allows"
        assert c * slack >= compulsory / acc.hbm_words_per_cycle, "faster than HBM allows"
        assert min(pe[0, 0, mode], sram[0, 0, mode], hbm[0, 0, mode]) >= compulsory
        # more core SRAM or GLB never slower
        assert cyc[0, 1, mode] <= c * slack
        assert cyc[0, 2, mode] <= c * slack
        # HBM words are the least traffic of any tiling that fits the GLB: a 4x GLB never
        # moves more, and a GEMM whose three operands fit at once moves each word once
        assert hbm[0, 2, mode] <= hbm[0, 0, mode], (hbm[0, :, mode], acc, shape)
        if m * k + k * n + m * n <= acc.glb_bytes // wb:
            assert hbm[0, 0, mode] == compulsory, (hbm[0, 0, mode], compulsory, acc, shape)
    assert cyc[0, 0, 1] <= cyc[0, 0, 0], "all cores slower than one core"


# --- fidelity to the original's tiling optimiser (phaze preset) --------------------------
def _fidelity_ratios():
    rows = [
        json.loads(line)
        for line in (DATA / "tiling_cycles.jsonl").read_text().split("\n")
        if line.strip()
    ]
    base = Accelerator.preset("phaze")
    accs = [
        base.replace(
            num_tc=r["num_tc"],
            tc_width=r["tc_width"],
            tc_depth=r["tc_depth"],
            glb_bytes=r["glb_bytes"],
        )
        for r in rows
    ]
    table = ArchTable.from_accelerators(accs)
    shapes = np.array([[1, r["N"], r["C"], r["K"]] for r in rows])
    cyc = gemm_table(shapes, table)[0]
    ours = np.array([cyc[i, table.tc_index[i], 1] for i in range(len(rows))])
    return rows, ours / np.array([r["cycles"] for r in rows])


def test_gemm_tracks_the_original_tiling_optimiser():
    rows, ratio = _fidelity_ratios()
    assert len(rows) == 156
    within = np.mean(np.abs(ratio - 1) <= 0.15)
    assert 0.95 <= np.median(ratio) <= 1.05, np.median(ratio)
    assert within >= 0.80, (within, sorted(ratio))


# --- vector cores ------------------------------------------------------------------------
parts = st.lists(
    st.tuples(st.integers(0, 15), st.integers(0, 5000), st.integers(1, 300)), min_size=1, max_size=4
)


@given(
    parts=parts,
    num_vc=st.integers(1, 16),
    width=st.integers(1, 256),
    mem=st.booleans(),
    per_core=st.booleans(),
    bw=st.sampled_from([1.0, 7.0, 256.0]),
)
def test_vector_kernel_equals_reference(parts, num_vc, width, mem, per_core, bw):
    parts = [(c, e, a if c in (VcOp.MEAN, VcOp.SOFTMAX) else 1) for c, e, a in parts]
    out_c, out_w = np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2))
    kv.vc_cycles(
        np.zeros(1, np.int64),
        np.array([0, len(parts)], np.int64),
        np.array([p[0] for p in parts], np.int64),
        np.array([p[1] for p in parts], np.int64),
        np.array([p[2] for p in parts], np.int64),
        np.ones(1, np.bool_),
        np.array([num_vc], np.int64),
        np.array([width], np.int64),
        np.array([mem]),
        np.array([bw]),
        np.array([per_core]),
        out_c,
        out_w,
    )
    for mode, cores in ((0, 1), (1, num_vc)):
        for pss in (0, 1):
            want = ref_vector.op_cycles(
                parts, cores * width, pss, memory=mem, bw_words=bw * (cores if per_core else 1)
            )
            assert out_c[0, 0, mode, pss] == pytest.approx(want[0], rel=REL)
            assert out_w[0, 0, mode, pss] == want[1]


def test_vector_table_of_the_paper():
    lanes = 128
    assert ref_vector.part_cycles(VcOp.TANH, 1280, 1, lanes, 0) == 270
    assert ref_vector.part_cycles(VcOp.SOFTMAX, 4096, 1024, lanes, 0) == 4 * 8 + 10 + 320
    assert kv._part_cycles(VcOp.SOFTMAX, 4096, 1024, lanes, 0) == 362
    assert kv._part_cycles(VcOp.MEAN, 4096, 1024, lanes, 1) == 4 * (8 + 10)
    assert kv._part_cycles(99, 1, 1, 1, 0) == -1


# --- latency_table semantics -------------------------------------------------------------
def _ops(rows):
    """OpTable from dicts: kind, gemm (b,m,k,n), parts [(code, elems, aux)], comm."""
    cols = {
        c: []
        for c in (
            "kind",
            "gemm_b",
            "gemm_m",
            "gemm_k",
            "gemm_n",
            "comm_bytes",
            "comm_group",
            "comm_pass",
        )
    }
    ptr, code, elems, aux = [0], [], [], []
    for r in rows:
        cols["kind"].append(r["kind"])
        for c, v in zip(
            ("gemm_b", "gemm_m", "gemm_k", "gemm_n"), r.get("gemm", (0,) * 4), strict=True
        ):
            cols[c].append(v)
        bytes_, group, pss = r.get("comm", (0, -1, -1))
        cols["comm_bytes"].append(bytes_)
        cols["comm_group"].append(group)
        cols["comm_pass"].append(pss)
        for c, e, a in r.get("parts", ()):
            code.append(c)
            elems.append(e)
            aux.append(a)
        ptr.append(len(code))
    arr = {k: np.asarray(v, np.int64) for k, v in cols.items()}
    return OpTable(
        **arr,
        **{
            k: np.asarray(v, np.int64)
            for k, v in (("vc_ptr", ptr), ("vc_code", code), ("vc_elems", elems), ("vc_aux", aux))
        },
    )


ARCHS = ArchTable.from_accelerators(
    [
        Accelerator.preset("phaze"),
        Accelerator.preset("tpuv4-like").replace(num_tc=4, num_vc=8, vc_width=32),
        Accelerator.preset("phaze").replace(frequency_hz=2.1e9),
    ]
)


def test_latency_table_semantics():
    ops = _ops(
        [
            {"kind": OpKind.TC, "gemm": (1, 2048, 12288, 4608)},
            {
                "kind": OpKind.TC_VC,
                "gemm": (1, 2048, 12288, 4608),
                "parts": [(VcOp.GELU, 2048 * 4608, 1)],
            },
            {
                "kind": OpKind.VC,
                "parts": [
                    (VcOp.SOFTMAX, 96 * 2048 * 2048, 2048),
                    (VcOp.DROPOUT, 96 * 2048 * 2048, 1),
                ],
            },
            {"kind": OpKind.COMM, "comm": (2048 * 12288 * 2, 8, CommPass.FWD)},
            {"kind": OpKind.COMM, "comm": (1000, 4, CommPass.BWD)},
        ]
    )
    lt = latency_table(ops, ARCHS, link_bandwidth_Bps=1e9, allreduce_step_latency_s=1e-6)
    lat = lt.latency_s
    assert lat.shape == (5, 3, 2, 2)
    assert np.all(lat[:, :, 1] <= lat[:, :, 0])
    f = ARCHS.frequency_hz
    shapes = np.array([[1, 2048, 12288, 4608], [1, 2048, 4608, 12288], [1, 12288, 2048, 4608]])
    cyc = gemm_table(shapes, ARCHS)[0]
    for a in range(3):
        t = ARCHS.tc_index[a]
        np.testing.assert_allclose(lat[0, a, :, 0], cyc[0, t] / f[a], rtol=REL)
        np.testing.assert_allclose(lat[0, a, :, 1], (cyc[1, t] + cyc[2, t]) / f[a], rtol=REL)
        lanes = np.array([1, ARCHS.num_vc[a]]) * ARCHS.vc_width[a]
        epi_f = np.ceil(2048 * 4608 / lanes)
        np.testing.assert_allclose(lat[1, a, :, 0], (cyc[0, t] + epi_f) / f[a], rtol=REL)
        assert lat[2, a, 0, 0] > lat[2, a, 1, 0] > 0
    # same clock, double frequency: half the time (arch 2 is arch 0 at 2.1 GHz)
    np.testing.assert_allclose(lat[:3, 2], lat[:3, 0] / 2, rtol=REL)
    # vector memory term only where the architecture has it
    assert lt.vc_words[2, ARCHS.vc_index[0]].max() == 0
    assert lt.vc_words[2, ARCHS.vc_index[1]].min() > 0
    assert lt.vc_words[1].max() == 0  # a fused epilogue moves no extra data
    ring = 2 * 7 / 8 * 2048 * 12288 * 2 / 1e9 + 14e-6
    np.testing.assert_allclose(lat[3, :, :, 0], ring, rtol=REL)
    assert np.all(lat[3, :, :, 1] == 0)
    assert np.all(lat[4, :, :, 0] == 0)
    np.testing.assert_allclose(lat[4, :, :, 1], 1.5 * 1000 / 1e9 + 6e-6, rtol=REL)
    tb = lt.traffic_bytes(0, 1)
    assert tb["hbm_glb"] >= 2 * (2048 * 12288 + 12288 * 4608 + 2048 * 4608)


def test_latency_table_on_real_model_is_finite_and_ordered():
    from phaze.hardware import DesignSpace
    from phaze.models import build_graph, preset, unique_ops

    graphs = [build_graph(preset("bert-large"), 512, 2, t) for t in (1, 2)]
    ops, _ = unique_ops(graphs)
    archs = DesignSpace(num_tc=(1, 8, 64), num_vc=(1, 2), glb_bytes=(2**21, 2**27)).enumerate()
    lat = latency_table(ops, archs).latency_s
    assert np.isfinite(lat).all()
    assert (lat >= 0).all()
    assert (lat[:, :, 1] <= lat[:, :, 0]).all()
    gemm = (ops.kind == OpKind.TC) | (ops.kind == OpKind.TC_VC)
    assert (lat[gemm] > 0).all()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"kind": [7]}, "kind 7"),
        ({"gemm_m": [0]}, "gemm_m=0"),
        ({"vc_aux": [0]}, "vc_aux < 1"),
    ],
)
def test_latency_table_rejects_bad_operators(change, match):
    base = {
        "kind": [OpKind.TC_VC],
        "gemm_b": [1],
        "gemm_m": [4],
        "gemm_k": [4],
        "gemm_n": [4],
        "comm_bytes": [0],
        "comm_group": [-1],
        "comm_pass": [-1],
        "vc_ptr": [0, 1],
        "vc_code": [VcOp.MEAN],
        "vc_elems": [16],
        "vc_aux": [4],
    }
    base.update(change)
    with pytest.raises(ConfigError, match=match):
        latency_table(OpTable(**{k: np.asarray(v, np.int64) for k, v in base.items()}), ARCHS)


def test_latency_table_rejects_bad_arguments():
    ops = _ops([{"kind": OpKind.COMM, "comm": (10, 2, 0)}])
    with pytest.raises(ConfigError, match="link_bandwidth_Bps"):
        latency_table(ops, ARCHS, link_bandwidth_Bps=0)
    with pytest.raises(ConfigError, match="comm_group"):
        latency_table(_ops([{"kind": OpKind.COMM, "comm": (10, 0, 0)}]), ARCHS)
    with pytest.raises(ConfigError, match="ArchTable"):
        latency_table(ops, [Accelerator()])
