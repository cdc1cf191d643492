"""The scheduler kernels (phaze._kernels.schedule) agree exactly with their plain-Python
references (tests/reference/schedule_kernels.py): same floats, schedules and node counts."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from reference import bounds as ref_bounds
from reference import schedule_kernels as ref

from phaze._kernels import schedule as ks

#: Latencies are multiples of 2**-4 s (many ties, so tie-breaking is exercised) or
#: arbitrary floats (rounding in sums is exercised); comparisons are exact.
UNIT = 2.0**-4


@st.composite
def segments(draw, max_ops: int = 6, columns: int = 3):
    """A random DAG (edges from lower to higher labels after a random relabelling), kinds,
    ``columns`` latency columns and core capacities."""
    n = draw(st.integers(1, max_ops))
    perm = draw(st.permutations(range(n)))
    edges = [(perm[i], perm[j]) for i in range(n) for j in range(i + 1, n) if draw(st.booleans())]
    kinds = draw(st.lists(st.sampled_from([0, 1, 2, 3]), min_size=n, max_size=n))
    lat = st.integers(0, 24).map(lambda v: v * UNIT) | st.floats(0.0, 3.0)
    l1 = [draw(st.lists(lat, min_size=columns, max_size=columns)) for _ in range(n)]
    la = [draw(st.lists(lat, min_size=columns, max_size=columns)) for _ in range(n)]
    for i in range(n):
        if kinds[i] == ref.COMM:
            la[i] = list(l1[i])
    cap_tc = draw(st.lists(st.integers(1, 3), min_size=columns, max_size=columns))
    cap_vc = draw(st.lists(st.integers(1, 3), min_size=columns, max_size=columns))
    preds = [sorted(a for a, b in edges if b == j) for j in range(n)]
    succs = [sorted(b for a, b in edges if a == j) for j in range(n)]
    topo = _topo(n, preds)
    return n, preds, succs, topo, kinds, l1, la, cap_tc, cap_vc


def _topo(n, preds):
    order, placed = [], set()
    while len(order) < n:
        j = min(i for i in range(n) if i not in placed and set(preds[i]) <= placed)
        order.append(j)
        placed.add(j)
    return order


def _csr(lists):
    ptr = np.zeros(len(lists) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(x) for x in lists])
    idx = np.array([v for x in lists for v in x], dtype=np.int64)
    return ptr, idx


def _arrays(seg):
    n, preds, succs, topo, kinds, l1, la, cap_tc, cap_vc = seg
    pp, pi = _csr(preds)
    sp, si = _csr(succs)
    return (
        np.array(topo, dtype=np.int64),
        pp,
        pi,
        sp,
        si,
        np.array(kinds, dtype=np.int64),
        np.array(l1, dtype=np.float64).reshape(n, -1),
        np.array(la, dtype=np.float64).reshape(n, -1),
        np.array(cap_tc, dtype=np.int64),
        np.array(cap_vc, dtype=np.int64),
    )


def _column(seg, q):
    n, preds, succs, topo, kinds, l1, la, cap_tc, cap_vc = seg
    return [l1[i][q] for i in range(n)], [la[i][q] for i in range(n)], (cap_tc[q], cap_vc[q], 1)


@given(segments())
def test_lower_bounds_equal_the_reference(seg):
    n, preds, _, topo, kinds, *_ = seg
    topo_a, pp, pi, _, _, kinds_a, l1, la, ctc, cvc = _arrays(seg)
    got = ks.lower_bounds(topo_a, pp, pi, kinds_a, l1, la, ctc, cvc)
    for q in range(l1.shape[1]):
        c1, ca, cap = _column(seg, q)
        want = ref.lower_bound(n, preds, topo, kinds, c1, ca, cap[0], cap[1])
        assert got[q] == want, (seg, q, got[q], want)


@given(segments())
def test_list_schedule_equals_the_reference(seg):
    n, preds, succs, topo, kinds, *_ = seg
    topo_a, pp, pi, sp, si, kinds_a, l1, la, _, _ = _arrays(seg)
    for q in range(l1.shape[1]):
        c1, ca, cap = _column(seg, q)
        ms, modes, starts = ks.list_schedule(
            topo_a, pp, pi, sp, si, kinds_a, l1[:, q].copy(), la[:, q].copy(),
            np.array(cap, dtype=np.int64),
        )  # fmt: skip
        want = ref.list_schedule(n, preds, succs, topo, kinds, c1, ca, cap)
        assert (ms, tuple(modes.tolist()), starts.tolist()) == want, (seg, q)


@given(segments(), st.sampled_from([None, 1, 7, 60]))
def test_enumeration_equals_the_reference(seg, node_limit):
    n, preds, succs, topo, kinds, *_ = seg
    topo_a, pp, pi, sp, si, kinds_a, l1, la, _, _ = _arrays(seg)
    for q in range(l1.shape[1]):
        c1, ca, cap = _column(seg, q)
        lb = ref.lower_bound(n, preds, topo, kinds, c1, ca, cap[0], cap[1])
        ub, modes, starts = ref.list_schedule(n, preds, succs, topo, kinds, c1, ca, cap)
        want = ref.enumerate_exact(
            n, preds, succs, topo, kinds, c1, ca, cap, ub, modes, starts, lb, node_limit
        )
        got = ks.enumerate_segment(
            topo_a, pp, pi, sp, si, kinds_a, l1[:, q].copy(), la[:, q].copy(),
            np.array(cap, dtype=np.int64), ub, np.array(modes, dtype=np.int64),
            np.array(starts), lb, -1 if node_limit is None else node_limit,
        )  # fmt: skip
        got = (got[0], tuple(got[1].tolist()), tuple(got[2].tolist()), got[3], got[4])
        assert got == want, (seg, q, node_limit)


@given(segments())
def test_solve_columns_equals_bounds_then_enumeration(seg):
    n, preds, succs, topo, kinds, *_ = seg
    arrays = _arrays(seg)
    ms, lbs, status, modes, starts = ks.solve_columns(*arrays, 8, 40, 1e-12)
    for q in range(arrays[6].shape[1]):
        c1, ca, cap = _column(seg, q)
        lb = ref.lower_bound(n, preds, topo, kinds, c1, ca, cap[0], cap[1])
        ub, um, us = ref.list_schedule(n, preds, succs, topo, kinds, c1, ca, cap)
        want = (ub, um, tuple(us), ks.ST_OPEN)
        if ub - lb <= 1e-12 * ub:
            want = (ub, um, tuple(us), ks.ST_BOUNDS)
        else:
            e = ref.enumerate_exact(n, preds, succs, topo, kinds, c1, ca, cap, ub, um, us, lb, 40)
            if e[3]:
                want = (e[0], e[1], e[2], ks.ST_ENUMERATED)
        got = (ms[q], tuple(modes[q].tolist()), tuple(starts[q].tolist()), status[q])
        assert got == want, (seg, q)
        assert lbs[q] == lb


def _layer_reference(seg, cuts, groups, num_tc, num_vc, rtol):
    """``layer_bounds`` written out: the segments' bounds from the reference functions."""
    n, preds, succs, topo, kinds, l1, la, *_ = seg
    n_a = len(num_tc)
    cut_s = []
    for q in range(n_a):
        tot = 0.0
        for c in cuts:
            tot = tot + min(l1[c][q], la[c][q])
        cut_s.append(tot)
    out = []
    for nodes in groups:
        pos = {v: k for k, v in enumerate(nodes)}
        sp = [[pos[p] for p in preds[v] if p in pos] for v in nodes]
        st_ = [[pos[s] for s in succs[v] if s in pos] for v in nodes]
        stopo = [pos[v] for v in topo if v in pos]
        sk = [kinds[v] for v in nodes]
        wid = [sum(1 for k in sk if k in (0, 1)), sum(1 for k in sk if k in (1, 2))]
        wlink = sum(1 for k in sk if k == 3)
        rows = []
        for q in range(n_a):
            c1 = [l1[v][q] for v in nodes]
            ca = [la[v][q] for v in nodes]
            ctc, cvc = min(num_tc[q], max(wid[0], 1)), min(num_vc[q], max(wid[1], 1))
            lb = ref.lower_bound(len(nodes), sp, stopo, sk, c1, ca, ctc, cvc)
            serial = 0.0
            for j in stopo:
                serial = serial + min(c1[j], ca[j])
            ub = serial
            if wlink <= 1 and num_tc[q] >= wid[0] and num_vc[q] >= wid[1]:
                fin = [0.0] * len(nodes)
                for j in stopo:
                    fin[j] = max((fin[p] for p in sp[j]), default=0.0) + c1[j]
                ub = min(ub, max(fin))
            rows.append((lb, ub, ub - lb <= rtol * ub))
        out.append((rows, sp, st_, stopo, wid + [wlink]))
    return cut_s, out


@given(segments(max_ops=7, columns=4), st.data())
def test_layer_bounds_equal_the_reference(seg, data):
    # any partition of the operators into cuts and segments is a valid kernel input (the
    # kernel does not rely on the series decomposition); widths: the counts of users
    n, preds, succs, topo, kinds, l1, la, *_ = seg
    label = data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    cuts = [v for v in topo if label[v] == 0]
    groups = [g for g in ([v for v in range(n) if label[v] == x] for x in (1, 2)) if g]
    num_tc = data.draw(st.lists(st.integers(1, 4), min_size=4, max_size=4))
    num_vc = data.draw(st.lists(st.integers(1, 4), min_size=4, max_size=4))
    cut_s, segs = _layer_reference(seg, cuts, groups, num_tc, num_vc, 1e-12)
    seg_ptr = np.cumsum([0] + [len(g) for g in groups]).astype(np.int64)
    pp, pi = _csr([p for s in segs for p in s[1]])
    # per-segment CSR offsets restart at each segment's first predecessor
    got = ks.layer_bounds(
        np.array(kinds, dtype=np.int64),
        np.array(l1, dtype=np.float64).reshape(n, -1),
        np.array(la, dtype=np.float64).reshape(n, -1),
        np.array(cuts, dtype=np.int64),
        seg_ptr,
        np.array([v for g in groups for v in g], dtype=np.int64),
        np.array([v for s in segs for v in s[3]], dtype=np.int64),
        pp,
        pi,
        np.array([s[4] for s in segs], dtype=np.int64).reshape(-1, 3),
        np.array(num_tc, dtype=np.int64),
        np.array(num_vc, dtype=np.int64),
        1e-12,
    )
    assert got[0].tolist() == cut_s
    for s, (rows, *_) in enumerate(segs):
        assert got[1][s].tolist() == [r[0] for r in rows], (seg, s)
        assert got[2][s].tolist() == [r[1] for r in rows], (seg, s)
        assert got[3][s].tolist() == [r[2] for r in rows], (seg, s)


def test_enumeration_with_a_large_tree_equals_the_reference():
    # 8 independent operators of every kind: ~30,000 tree nodes, so the kernel's set of
    # expanded partial schedules grows (from 512 entries) several times
    n, kinds = 8, [0, 0, 0, 2, 2, 1, 1, 3]
    preds, succs, topo = [[] for _ in range(n)], [[] for _ in range(n)], list(range(n))
    c1 = [3.0, 5.0, 7.0, 2.0, 4.0, 6.0, 1.0, 2.0]
    ca = [2.0, 2.5, 6.0, 1.0, 3.0, 2.0, 0.5, 2.0]
    cap = (3, 2, 1)
    lb = ref.lower_bound(n, preds, topo, kinds, c1, ca, cap[0], cap[1])
    ub, modes, starts = ref.list_schedule(n, preds, succs, topo, kinds, c1, ca, cap)
    want = ref.enumerate_exact(n, preds, succs, topo, kinds, c1, ca, cap, ub, modes, starts, lb)
    assert want[4] > 10_000
    z = np.zeros(n + 1, dtype=np.int64)
    got = ks.enumerate_segment(
        np.arange(n, dtype=np.int64), z, z[:0], z, z[:0], np.array(kinds, dtype=np.int64),
        np.array(c1), np.array(ca), np.array(cap, dtype=np.int64), ub,
        np.array(modes, dtype=np.int64), np.array(starts), lb, -1,
    )  # fmt: skip
    assert (got[0], tuple(got[1].tolist()), tuple(got[2].tolist()), got[3], got[4]) == want


@given(segments(), st.data())
def test_config_lower_bounds_equal_the_reference_and_the_expanded_latencies(seg, data):
    # architectures given by (tensor-core config, vector-core config, frequency): the
    # kernel builds each operator's latency as LatencyTable.latency_s does, then bounds
    n, preds, _, topo, kinds, _, _, cap_tc, cap_vc = seg
    topo_a, pp, pi, _, _, kinds_a, _, _, ctc, cvc = _arrays(seg)
    n_a = len(cap_tc)
    cyc = st.integers(0, 40).map(float) | st.floats(0.0, 1e4)
    n_t, n_v = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    tc = np.array(data.draw(st.lists(cyc, min_size=n * n_t * 2, max_size=n * n_t * 2)))
    vc = np.array(data.draw(st.lists(cyc, min_size=n * n_v * 2, max_size=n * n_v * 2)))
    tc, vc = tc.reshape(n, n_t, 2), vc.reshape(n, n_v, 2)
    comm = np.array(data.draw(st.lists(st.floats(0.0, 3.0), min_size=n, max_size=n)))
    t_idx = np.array(data.draw(st.lists(st.integers(0, n_t - 1), min_size=n_a, max_size=n_a)))
    v_idx = np.array(data.draw(st.lists(st.integers(0, n_v - 1), min_size=n_a, max_size=n_a)))
    freq = np.array(
        data.draw(st.lists(st.sampled_from([1.0, 8.0, 1.05e9, 3.0]), min_size=n_a, max_size=n_a))
    )
    got = ks.config_lower_bounds(
        topo_a, pp, pi, kinds_a, tc, vc, comm, t_idx, v_idx, freq, ctc, cvc
    )
    is_comm = kinds_a == ref.COMM
    l1 = np.where(is_comm[:, None], comm[:, None], (tc[:, t_idx, 0] + vc[:, v_idx, 0]) / freq)
    la = np.where(is_comm[:, None], comm[:, None], (tc[:, t_idx, 1] + vc[:, v_idx, 1]) / freq)
    assert got.tobytes() == ks.lower_bounds(topo_a, pp, pi, kinds_a, l1, la, ctc, cvc).tobytes()
    for q in range(n_a):
        want = ref_bounds.config_lower_bound(
            n,
            preds,
            topo,
            kinds,
            tc[:, t_idx[q]].tolist(),
            vc[:, v_idx[q]].tolist(),
            comm.tolist(),
            float(freq[q]),
            cap_tc[q],
            cap_vc[q],
        )
        assert got[q] == want, (seg, q, got[q], want)
