"""Operator energy (phaze.energy, phaze._kernels.energy) against its reference and its
properties: additive over operators, monotone in words moved, SRAM access energy never
cheaper for a larger array."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference import energy as ref_energy

from phaze._kernels.energy import op_charged_energy, op_energy
from phaze.cost import latency_table
from phaze.energy import EnergyModel, charged_energy_j, energy_table
from phaze.errors import ConfigError
from phaze.hardware import Accelerator, ArchTable
from phaze.models.optable import OpTable
from phaze.opcodes import OpKind, VcOp

#: Relative tolerance kernel vs reference: the same sums in another order (float64).
RTOL = 1e-12

ARCHS = ArchTable.from_accelerators(
    [
        Accelerator.preset("phaze"),
        Accelerator.preset("tpuv4-like").replace(num_tc=4, num_vc=8, vc_width=32),
        Accelerator(num_tc=2, tc_width=16, tc_depth=8, num_vc=4, vc_width=16, glb_bytes=2**21),
    ]
)


def _table(rows) -> OpTable:
    """OpTable from dicts: kind, gemm (b, m, k, n), parts [(code, elems, aux)], comm."""
    cols = {c: [] for c in ("kind", "gemm_b", "gemm_m", "gemm_k", "gemm_n")}
    comm = {c: [] for c in ("comm_bytes", "comm_group", "comm_pass")}
    ptr, code, elems, aux = [0], [], [], []
    for r in rows:
        cols["kind"].append(r["kind"])
        for c, v in zip(("gemm_b", "gemm_m", "gemm_k", "gemm_n"), r.get("gemm", (0,) * 4)):
            cols[c].append(v)
        for c, v in zip(comm, r.get("comm", (0, -1, -1)), strict=True):
            comm[c].append(v)
        for c, e, a in r.get("parts", ()):
            code.append(c)
            elems.append(e)
            aux.append(a)
        ptr.append(len(code))
    arrays = {k: np.asarray(v, np.int64) for k, v in {**cols, **comm}.items()}
    return OpTable(
        **arrays,
        vc_ptr=np.asarray(ptr, np.int64),
        vc_code=np.asarray(code, np.int64),
        vc_elems=np.asarray(elems, np.int64),
        vc_aux=np.asarray(aux, np.int64),
    )


dims = st.integers(1, 3000)
plain_codes = st.sampled_from([c for c in VcOp if c not in (VcOp.MEAN, VcOp.SOFTMAX)])
part = st.one_of(
    st.tuples(plain_codes, st.integers(1, 10**6), st.just(1)),
    st.tuples(st.sampled_from([VcOp.MEAN, VcOp.SOFTMAX]), st.integers(1, 10**6), dims),
)
op_row = st.one_of(
    st.builds(
        lambda g: {"kind": OpKind.TC, "gemm": g}, st.tuples(st.integers(1, 4), dims, dims, dims)
    ),
    st.builds(
        lambda g, p: {"kind": OpKind.TC_VC, "gemm": g, "parts": p},
        st.tuples(st.integers(1, 4), dims, dims, dims),
        st.lists(part, min_size=1, max_size=2),
    ),
    st.builds(lambda p: {"kind": OpKind.VC, "parts": p}, st.lists(part, min_size=1, max_size=3)),
    st.builds(
        lambda b, t, p: {"kind": OpKind.COMM, "comm": (b, t, p)},
        st.integers(0, 10**9),
        st.sampled_from([1, 2, 4, 8]),
        st.sampled_from([0, 1]),
    ),
)
models = st.builds(
    EnergyModel,
    mac_j=st.floats(0, 1e-11),
    register_access_j=st.floats(0, 1e-12),
    core_sram_access_j=st.floats(0, 1e-11),
    glb_access_j=st.floats(0, 1e-10),
    sram_size_exponent=st.floats(0, 1),
    hbm_access_j=st.floats(0, 1e-9),
    vector_op_j=st.floats(0, 1e-11),
    network_j_per_bit=st.floats(0, 1e-11),
)


@given(rows=st.lists(op_row, min_size=1, max_size=4), model=models)
def test_energy_kernel_equals_reference(rows, model):
    lat = latency_table(_table(rows), ARCHS)
    got = energy_table(lat, model).energy_j
    for op in range(len(rows)):
        for a in range(len(ARCHS)):
            for mode in range(2):
                for p in range(2):
                    want = ref_energy.op_energy(lat, model, op, a, mode, p)
                    assert math.isclose(got[op, a, mode, p], want, rel_tol=RTOL, abs_tol=0), (
                        rows[op],
                        a,
                        mode,
                        p,
                    )


@given(rows=st.lists(op_row, min_size=1, max_size=4), model=models)
def test_charged_energy_kernel_equals_reference_and_the_table(rows, model):
    """Each operator's energy in the mode it runs faster in (ties: all cores): the
    reference in that mode, and bit for bit what the whole table gives."""
    lat = latency_table(_table(rows), ARCHS)
    got = charged_energy_j(lat, model)
    whole = energy_table(lat, model)
    assert got.tobytes() == whole.charged_j(lat.latency_s).tobytes()
    for op in range(len(rows)):
        for a in range(len(ARCHS)):
            for p in range(2):
                sec = lat.latency_s[op, a, :, p]
                mode = 1 if sec[1] <= sec[0] else 0
                want = ref_energy.op_energy(lat, model, op, a, mode, p)
                assert math.isclose(got[op, a, p], want, rel_tol=RTOL, abs_tol=0), (rows[op], a, p)


@pytest.mark.parametrize(
    ("seconds", "joules"),
    [
        ([[1.0, 1.0], [0.5, 1.0]], [2.0, 2.0]),  # pass 0: all cores faster; pass 1: a tie
        ([[0.5, 1.0], [1.0, 2.0]], [1.0, 1.0]),  # one core faster in both passes
    ],
)
def test_charged_energy_takes_the_faster_mode_and_all_cores_on_a_tie(seconds, joules):
    """The kernel on hand-made inputs (seconds by [mode][pass]): mode 0 costs 1 J, mode 1
    costs 2 J."""
    no_work = np.zeros((1, 2))
    idx = np.zeros(1, np.int64)
    words = np.zeros((1, 1, 2, 2))
    words[0, 0, 1, :] = 1.0  # mode 1 moves one HBM word more, at 1 J a word
    zeros = np.zeros((1, 1, 2, 2))
    sec = np.array([[seconds]], dtype=np.float64)
    for x in (words, zeros, sec):
        x.setflags(write=False)
    free = np.zeros(1)
    out = np.zeros((1, 1, 2))
    op_charged_energy(
        np.ones((1, 2)), no_work, no_work.copy(), idx, idx.copy(), zeros, zeros, words, zeros,
        free, free.copy(), free.copy(), 1.0, 0.0, 1.0, 0.0, 0.0, sec, out,
    )  # fmt: skip
    assert out.tolist() == [[joules]]


@given(rows=st.lists(op_row, min_size=2, max_size=5))
def test_energy_is_additive_over_operators(rows):
    """The table of several operators is the stack of their single-operator tables: the
    energy of a layer is the sum of its operators' energies, whatever else is priced."""
    together = energy_table(latency_table(_table(rows), ARCHS)).energy_j
    alone = np.concatenate([energy_table(latency_table(_table([r]), ARCHS)).energy_j for r in rows])
    np.testing.assert_allclose(together.sum(axis=0), alone.sum(axis=0), rtol=RTOL)
    np.testing.assert_allclose(together, alone, rtol=RTOL)


words = st.integers(0, 10**12)  # whole words: one more word is never lost to rounding


@given(
    base=st.tuples(words, words, words, words),
    extra=st.tuples(words, words, words, words),
    which=st.integers(0, 3),
)
def test_energy_is_monotone_in_words_moved(base, extra, which):
    """More words across any boundary never cost less (the kernel on raw word counts)."""

    def run(counts):
        w = [np.full((1, 1, 2, 2), float(c)) for c in counts]
        for x in w:  # read only, as phaze.energy passes a latency table's word counts
            x.setflags(write=False)
        out = np.zeros((1, 1, 2, 2))
        z = np.zeros((1, 2))
        i = np.zeros(1, np.int64)
        e = np.full(1, 3e-12)
        op_energy(
            z,
            z.copy(),
            z.copy(),
            i,
            i.copy(),
            *w,
            e,
            e * 10,
            e.copy(),
            2.2e-12,
            2e-13,
            1e-10,
            2e-12,
            4e-12,
            out,
        )
        return out[0, 0, 0, 0]

    more = list(base)
    more[which] += extra[which]
    assert run(more) >= run(base), (base, more)
    if extra[which] > 0:
        assert run(more) > run(base), (base, more)


@given(
    size=st.integers(1, 2**40),
    exponent=st.floats(0, 2),
    e_ref=st.floats(0, 1e-9),
)
def test_a_larger_sram_never_has_a_cheaper_access(size, exponent, e_ref):
    m = EnergyModel(core_sram_access_j=e_ref, glb_access_j=e_ref, sram_size_exponent=exponent)
    for f in (m.sram_access_j_of, m.glb_access_j_of):
        assert f(2 * size) >= f(size), (size, exponent)


def test_reference_design_has_the_original_figures():
    """At the TPUv4-like reference design the per-access figures are the original's."""
    m = EnergyModel()
    acc = Accelerator.preset("phaze")
    assert math.isclose(float(m.sram_access_j_of(acc.tc_sram_bytes)), 3e-12)
    assert math.isclose(float(m.glb_access_j_of(acc.glb_bytes)), 30e-12)
    # a 4x larger array costs 2x per access with the square-root exponent
    assert math.isclose(float(m.sram_access_j_of(4 * acc.tc_sram_bytes)), 6e-12)


def test_gemm_energy_counts_macs_and_traffic():
    """A large GEMM's energy is at least its MACs' and at most MACs plus every word priced
    at the dearest access pair."""
    g = (1, 2048, 12288, 4608)
    lat = latency_table(_table([{"kind": OpKind.TC, "gemm": g}]), ARCHS)
    m = EnergyModel()
    e = energy_table(lat, m).energy_j
    macs = float(np.prod(g))
    assert (e[0, :, :, 0] > macs * m.mac_j).all()
    assert (e[0, :, :, 1] > 2 * macs * m.mac_j).all()  # backward: two GEMMs
    # the fixed model: zero access energies leave exactly the MACs
    zero = EnergyModel(register_access_j=0, core_sram_access_j=0, glb_access_j=0, hbm_access_j=0)
    e0 = energy_table(lat, zero).energy_j
    np.testing.assert_allclose(e0[0, :, :, 0], macs * m.mac_j, rtol=RTOL)
    np.testing.assert_allclose(e0[0, :, :, 1], 2 * macs * m.mac_j, rtol=RTOL)


def test_comm_energy_is_the_ring_traffic_in_its_pass():
    lat = latency_table(_table([{"kind": OpKind.COMM, "comm": (10**6, 4, 1)}]), ARCHS)
    m = EnergyModel()
    e = energy_table(lat, m).energy_j
    assert (e[0, :, :, 0] == 0).all()
    np.testing.assert_allclose(e[0, :, :, 1], 1.5 * 8e6 * m.network_j_per_bit, rtol=RTOL)


@pytest.mark.parametrize(
    ("field", "value"),
    [("mac_j", -1e-12), ("mac_j", math.nan), ("sram_size_exponent", 3.0), ("glb_ref_bytes", 0)],
)
def test_energy_model_rejects_bad_constants(field, value):
    with pytest.raises(ConfigError, match=field):
        EnergyModel(**{field: value})


def test_energy_table_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="LatencyTable"):
        energy_table(None)
    lat = latency_table(_table([{"kind": OpKind.TC, "gemm": (1, 2, 2, 2)}]), ARCHS)
    with pytest.raises(ConfigError, match="EnergyModel"):
        energy_table(lat, model={})
