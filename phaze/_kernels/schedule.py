"""The layer scheduler's hot path (docs/scheduling.md): bounds, the serial schedule-generation
scheme, the list schedule and the exact branch-and-bound enumeration of small segments.

A segment (or a whole layer) of ``k`` operators is given as arrays:

* ``topo`` int64 (k,): a topological order;
* ``pred_ptr``, ``pred_idx`` int64: predecessors of operator ``q`` are
  ``pred_idx[pred_ptr[q]:pred_ptr[q + 1]]`` (CSR); ``succ_ptr``, ``succ_idx`` likewise;
* ``kinds`` int64 (k,): :class:`~phaze.opcodes.OpKind` codes (TC 0, TC_VC 1, VC 2, COMM 3);
* ``l1``, ``la`` float64 (k, A): seconds on one core and on all cores of the operator's
  kind, one column per instance (architecture); ``la`` equals ``l1`` on COMM rows;
* ``cap_tc``, ``cap_vc`` int64 (A,): effective tensor / vector core capacities; the link
  has capacity 1.

Semantics (docs/scheduling.md): in single-core mode TC holds one tensor core, VC one vector
core, TC_VC one of each, COMM the link; in all-cores (intra-op) mode an operator holds every
unit of every resource and runs alone. Intra-op mode is tried only where it is strictly
faster. Every float is computed in the same order as the plain-Python reference
(tests/reference/schedule_kernels.py), so the two agree exactly.

Kernel options as docs/architecture.md's kernel policy says; no fastmath; callees live in
this file.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "ST_BOUNDS",
    "ST_ENUMERATED",
    "ST_OPEN",
    "config_lower_bounds",
    "enumerate_segment",
    "layer_bounds",
    "list_schedule",
    "lower_bounds",
    "solve_columns",
    "warmup",
]

_TC, _TC_VC, _VC, _COMM = 0, 1, 2, 3
#: status codes of :func:`solve_columns`
ST_BOUNDS, ST_ENUMERATED, ST_OPEN = 0, 1, 2
#: largest segment the enumeration accepts (operator sets are int64 bitmasks)
MAX_ENUM_OPS = 62


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _single_demand(kind, r):
    """Units of resource ``r`` (0 tc, 1 vc, 2 link) a single-core operator holds."""
    if r == 0:
        return 1 if kind == _TC or kind == _TC_VC else 0
    if r == 1:
        return 1 if kind == _VC or kind == _TC_VC else 0
    return 1 if kind == _COMM else 0


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _critical_path(topo, pred_ptr, pred_idx, kinds, l1, la, q, fastest, finish):
    """Longest path through column ``q``'s operators, each taking ``L1`` or, if
    ``fastest``, ``min(L1, LA)`` (COMM rows always ``L1``); ``finish`` is scratch of
    length ``k``, left holding the earliest finishes."""
    k = kinds.shape[0]
    for j in topo:
        start = 0.0
        first = True
        for e in range(pred_ptr[j], pred_ptr[j + 1]):
            v = finish[pred_idx[e]]
            if first or v > start:
                start = v
                first = False
        a = l1[j, q]
        if fastest and kinds[j] != _COMM:
            b = la[j, q]
            if b < a:
                a = b
        finish[j] = start + a
    cp = 0.0
    for j in range(k):
        if j == 0 or finish[j] > cp:
            cp = finish[j]
    return cp


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _lower_bound_col(topo, pred_ptr, pred_idx, kinds, l1, la, q, cap_tc, cap_vc, finish):
    """``max(critical path with min(L1, LA), work / capacity of every resource)`` of column
    ``q``; ``finish`` is scratch of length k. COMM rows use ``L1`` for ``LA``."""
    k = kinds.shape[0]
    bound = _critical_path(topo, pred_ptr, pred_idx, kinds, l1, la, q, np.bool_(True), finish)
    for grp in range(2):
        c = float(cap_tc if grp == 0 else cap_vc)
        tot = 0.0
        any_sel = False
        for j in range(k):
            if _single_demand(kinds[j], grp) > 0:
                a = l1[j, q]
                b = c * la[j, q]
                w = a if a <= b else b
                tot = w if not any_sel else tot + w
                any_sel = True
        if any_sel:
            v = tot / c
            if v > bound:
                bound = v
    tot = 0.0
    any_comm = False
    for j in range(k):
        if kinds[j] == _COMM:
            tot = l1[j, q] if not any_comm else tot + l1[j, q]
            any_comm = True
    if any_comm and tot > bound:
        bound = tot
    return bound


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def lower_bounds(topo, pred_ptr, pred_idx, kinds, l1, la, cap_tc, cap_vc):
    """:func:`_lower_bound_col` of every column: float64 (A,), seconds."""
    k, n_a = l1.shape
    out = np.zeros(n_a, np.float64)
    if k == 0:
        return out
    finish = np.zeros(k, np.float64)
    for q in range(n_a):
        out[q] = _lower_bound_col(
            topo, pred_ptr, pred_idx, kinds, l1, la, q, cap_tc[q], cap_vc[q], finish
        )
    return out


#: Entry points that :func:`warmup` compiles only for large design spaces.
LARGE_SPACES_ONLY = ("config_lower_bounds",)

#: Architectures :func:`config_lower_bounds` works on at once (rows of its scratch arrays).
_CONFIG_BLOCK = 256


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def config_lower_bounds(
    topo,
    pred_ptr,
    pred_idx,
    kinds,
    tc_cycles,
    vc_cycles,
    comm_s,
    tc_index,
    vc_index,
    frequency_hz,
    cap_tc,
    cap_vc,
):
    """:func:`lower_bounds` of architectures given by their configs, without the (k, A)
    latency arrays: operator ``j`` takes ``(tc_cycles[j, tc_index[q], mode] +
    vc_cycles[j, vc_index[q], mode]) / frequency_hz[q]`` seconds on architecture ``q``
    (``mode`` 0 one core, 1 all cores), or ``comm_s[j]`` if it is a COMM operator --
    :attr:`phaze.cost.LatencyTable.latency_s`, in the same float operations.

    ``tc_cycles`` float64 (k, T, 2), ``vc_cycles`` float64 (k, V, 2), ``comm_s`` float64
    (k,), ``tc_index``, ``vc_index`` int64 (A,), ``frequency_hz`` float64 (A,). Returns
    float64 (A,), seconds: :func:`_lower_bound_col`'s floats, computed operator by operator
    over blocks of architectures (inner loops over architectures, which vectorise)."""
    k = kinds.shape[0]
    n_a = tc_index.shape[0]
    out = np.zeros(n_a, np.float64)
    if k == 0:
        return out
    blk = _CONFIG_BLOCK
    l1 = np.zeros((k, blk), np.float64)
    la = np.zeros((k, blk), np.float64)
    finish = np.zeros((k, blk), np.float64)
    start = np.zeros(blk, np.float64)
    work = np.zeros(blk, np.float64)
    bound = np.zeros(blk, np.float64)
    comm_total = 0.0
    any_comm = False
    for j in range(k):
        if kinds[j] == _COMM:
            comm_total = comm_s[j] if not any_comm else comm_total + comm_s[j]
            any_comm = True
    for lo in range(0, n_a, blk):
        nb = min(blk, n_a - lo)
        for j in range(k):
            if kinds[j] == _COMM:
                c = comm_s[j]
                for b in range(nb):
                    l1[j, b] = c
                    la[j, b] = c
            else:
                for b in range(nb):
                    q = lo + b
                    t = tc_index[q]
                    v = vc_index[q]
                    f = frequency_hz[q]
                    l1[j, b] = (tc_cycles[j, t, 0] + vc_cycles[j, v, 0]) / f
                    la[j, b] = (tc_cycles[j, t, 1] + vc_cycles[j, v, 1]) / f
        # critical path with min(L1, LA) (L1 on COMM rows)
        for j in topo:
            for b in range(nb):
                start[b] = 0.0
            first = True
            for e in range(pred_ptr[j], pred_ptr[j + 1]):
                p = pred_idx[e]
                if first:
                    for b in range(nb):
                        start[b] = finish[p, b]
                    first = False
                else:
                    for b in range(nb):
                        x = finish[p, b]
                        start[b] = x if x > start[b] else start[b]
            if kinds[j] == _COMM:
                for b in range(nb):
                    finish[j, b] = start[b] + l1[j, b]
            else:
                for b in range(nb):
                    a = l1[j, b]
                    x = la[j, b]
                    finish[j, b] = start[b] + (x if x < a else a)
        for b in range(nb):
            bound[b] = finish[0, b]
        for j in range(1, k):
            for b in range(nb):
                x = finish[j, b]
                bound[b] = x if x > bound[b] else bound[b]
        # work / capacity of each core resource
        for grp in range(2):
            any_sel = False
            for j in range(k):
                if _single_demand(kinds[j], grp) == 0:
                    continue
                for b in range(nb):
                    c = float(cap_tc[lo + b] if grp == 0 else cap_vc[lo + b])
                    a = l1[j, b]
                    x = c * la[j, b]
                    w = a if a <= x else x
                    work[b] = w if not any_sel else work[b] + w
                any_sel = True
            if any_sel:
                for b in range(nb):
                    c = float(cap_tc[lo + b] if grp == 0 else cap_vc[lo + b])
                    x = work[b] / c
                    bound[b] = x if x > bound[b] else bound[b]
        for b in range(nb):
            x = bound[b]
            out[lo + b] = comm_total if any_comm and comm_total > x else x
    return out


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def layer_bounds(
    kinds,
    l1,
    la,
    cut_idx,
    seg_ptr,
    seg_nodes,
    seg_topo,
    pred_ptr,
    pred_idx,
    seg_width,
    num_tc,
    num_vc,
    close_rtol,
):
    """Bounds of every segment of a series-decomposed layer on every architecture.

    Parameters
    ----------
    kinds : int64 (n,); l1, la : float64 (n, A)
        The layer (``la`` raw: COMM rows are replaced by ``l1`` here).
    cut_idx : int64 (C,)
        Cut operators in time order.
    seg_ptr : int64 (S + 1,)
        Segment ``s`` holds ``seg_nodes[seg_ptr[s]:seg_ptr[s + 1]]`` (layer operators, in
        the segment's local order); ``seg_topo`` (same layout) a local topological order;
        local operator ``q`` of segment ``s`` has the local predecessors
        ``pred_idx[pred_ptr[g]:pred_ptr[g + 1]]`` with ``g = seg_ptr[s] + q``.
    seg_width : int64 (S, 3)
        Largest antichain of the tensor-core, vector-core and link users of each segment.
    num_tc, num_vc : int64 (A,)
    close_rtol : float
        Bounds meet when ``ub - lb <= close_rtol * ub``.

    Returns
    -------
    cut_s : float64 (A,)
        Sum over the cuts (in order) of the faster latency.
    lb, ub : float64 (S, A)
        Lower bound; upper bound (everything one at a time, or everything on single cores
        as soon as possible when the cores cover the widest antichains and the link users
        form a chain).
    done : bool (S, A)
        Where the two meet (``ub`` is the segment's makespan).
    """
    n, n_a = l1.shape
    n_s = seg_ptr.shape[0] - 1
    cut_s = np.zeros(n_a, np.float64)
    lb = np.zeros((n_s, n_a), np.float64)
    ub = np.zeros((n_s, n_a), np.float64)
    done = np.zeros((n_s, n_a), np.bool_)
    for q in range(n_a):
        tot = 0.0
        for c in cut_idx:
            a = l1[c, q]
            b = a if kinds[c] == _COMM else la[c, q]
            tot = tot + (b if b < a else a)
        cut_s[q] = tot
    kmax = 0
    for s in range(n_s):
        kmax = max(kmax, seg_ptr[s + 1] - seg_ptr[s])
    finish = np.zeros(max(kmax, 1), np.float64)
    for s in range(n_s):
        lo, hi = seg_ptr[s], seg_ptr[s + 1]
        k = hi - lo
        nodes = seg_nodes[lo:hi]
        topo = seg_topo[lo:hi]
        pp = pred_ptr[lo : hi + 1] - pred_ptr[lo]
        pi = pred_idx[pred_ptr[lo] : pred_ptr[hi]]
        sk = np.empty(k, np.int64)
        s1 = np.empty((k, n_a), np.float64)
        sa = np.empty((k, n_a), np.float64)
        for j in range(k):
            sk[j] = kinds[nodes[j]]
            for q in range(n_a):
                a = l1[nodes[j], q]
                s1[j, q] = a
                sa[j, q] = a if sk[j] == _COMM else la[nodes[j], q]
        wtc = max(seg_width[s, 0], 1)
        wvc = max(seg_width[s, 1], 1)
        for q in range(n_a):
            ctc = min(num_tc[q], wtc)
            cvc = min(num_vc[q], wvc)
            low = _lower_bound_col(topo, pp, pi, sk, s1, sa, q, ctc, cvc, finish)
            serial = 0.0
            for j in topo:
                a = s1[j, q]
                b = sa[j, q]
                serial = serial + (b if (sk[j] != _COMM and b < a) else a)
            up = serial
            if (
                seg_width[s, 2] <= 1
                and num_tc[q] >= seg_width[s, 0]
                and num_vc[q] >= seg_width[s, 1]
            ):
                cp = _critical_path(topo, pp, pi, sk, s1, sa, q, np.bool_(False), finish)
                if cp < up:
                    up = cp
            lb[s, q] = low
            ub[s, q] = up
            done[s, q] = up - low <= close_rtol * up
    return cut_s, lb, ub, done


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _fits(t, end, dem, ps, pf, pd, n_placed, cap):
    """Whether ``dem`` (3,) units fit over ``[t, end)`` next to the first ``n_placed``
    placed operators (starts ``ps``, finishes ``pf``, demands ``pd`` (k, 3))."""
    for r in range(3):
        need = dem[r]
        if need == 0:
            continue
        room = cap[r] - need
        # the points: t and every placed start strictly inside (t, end)
        for x in range(-1, n_placed):
            if x >= 0:
                p = ps[x]
                if not (t < p and p < end):
                    continue
            else:
                p = t
            used = 0
            for y in range(n_placed):
                if ps[y] <= p and p < pf[y]:
                    used += pd[y, r]
            if used > room:
                return False
    return True


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _earliest_start(est, dur, dem, ps, pf, pd, n_placed, cap, scratch):
    """Earliest ``t >= est`` where the operator fits: ``est`` or a later finish time."""
    if dur <= 0.0 or _fits(est, est + dur, dem, ps, pf, pd, n_placed, cap):
        return est
    m = 0
    for y in range(n_placed):
        if pf[y] > est:
            scratch[m] = pf[y]
            m += 1
    for x in range(1, m):  # insertion sort: a handful of finish times
        v = scratch[x]
        y = x
        while y > 0 and scratch[y - 1] > v:
            scratch[y] = scratch[y - 1]
            y -= 1
        scratch[y] = v
    for x in range(m):
        if x > 0 and scratch[x] == scratch[x - 1]:
            continue
        t = scratch[x]
        if _fits(t, t + dur, dem, ps, pf, pd, n_placed, cap):
            return t
    return scratch[m - 1]  # unreachable: after the last finish every resource is free


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _tails(topo, succ_ptr, succ_idx, durs, out):
    """Longest path from each operator's start to the end, with ``durs``."""
    k = topo.shape[0]
    for x in range(k - 1, -1, -1):
        i = topo[x]
        best = 0.0
        for e in range(succ_ptr[i], succ_ptr[i + 1]):
            v = out[succ_idx[e]]
            if v > best:
                best = v
        out[i] = durs[i] + best


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _priority_order(pred_ptr, succ_ptr, succ_idx, priority, order):
    """Precedence-feasible list: repeatedly the ready operator of highest ``priority``
    (ties: lowest index)."""
    k = priority.shape[0]
    left = np.empty(k, np.int64)
    ready = np.zeros(k, np.bool_)
    for i in range(k):
        left[i] = pred_ptr[i + 1] - pred_ptr[i]
        ready[i] = left[i] == 0
    for x in range(k):
        best = -1
        for j in range(k):
            if ready[j] and (best < 0 or priority[j] > priority[best]):
                best = j
        ready[best] = False
        order[x] = best
        for e in range(succ_ptr[best], succ_ptr[best + 1]):
            s = succ_idx[e]
            left[s] -= 1
            if left[s] == 0:
                ready[s] = True


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _sgs(pred_ptr, pred_idx, kinds, durs, modes, order, cap, starts, ps, pf, pd, scratch):
    """Serial SGS of the list ``order``; fills ``starts`` and returns the makespan."""
    k = kinds.shape[0]
    fins = np.zeros(k, np.float64)
    dem = np.empty(3, np.int64)
    makespan = 0.0
    for x in range(k):
        i = order[x]
        est = 0.0
        for e in range(pred_ptr[i], pred_ptr[i + 1]):
            if fins[pred_idx[e]] > est:
                est = fins[pred_idx[e]]
        for r in range(3):
            dem[r] = cap[r] if modes[i] else _single_demand(kinds[i], r)
        dur = durs[i]
        t = _earliest_start(est, dur, dem, ps, pf, pd, x, cap, scratch)
        starts[i] = t
        fins[i] = t + dur
        ps[x] = t
        pf[x] = fins[i]
        for r in range(3):
            pd[x, r] = dem[r]
        if fins[i] > makespan:
            makespan = fins[i]
    return makespan


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _run(topo, pred_ptr, pred_idx, succ_ptr, succ_idx, kinds, l1, la, modes, cap, starts):
    """List schedule of one mode vector (longest tail first); fills ``starts``."""
    k = kinds.shape[0]
    durs = np.empty(k, np.float64)
    for i in range(k):
        durs[i] = la[i] if modes[i] else l1[i]
    tail = np.zeros(k, np.float64)
    _tails(topo, succ_ptr, succ_idx, durs, tail)
    order = np.empty(k, np.int64)
    _priority_order(pred_ptr, succ_ptr, succ_idx, tail, order)
    ps, pf, scratch = np.zeros(k, np.float64), np.zeros(k, np.float64), np.zeros(k, np.float64)
    pd = np.zeros((k, 3), np.int64)
    return _sgs(pred_ptr, pred_idx, kinds, durs, modes, order, cap, starts, ps, pf, pd, scratch)


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def list_schedule(topo, pred_ptr, pred_idx, succ_ptr, succ_idx, kinds, l1, la, cap):
    """Upper bound of one instance: a list schedule (serial SGS, longest-tail-first) over
    all-single-core modes, intra-op wherever faster, and one greedy pass of single flips
    from the better of the two.

    Parameters
    ----------
    l1, la : float64 (k,)
        One instance (``la`` equals ``l1`` on COMM rows).
    cap : int64 (3,)
        Effective (tc, vc, link) capacities.

    Returns
    -------
    (makespan, modes int64 (k,), starts float64 (k,))
    """
    k = kinds.shape[0]
    best = np.inf
    best_modes = np.zeros(k, np.int64)
    best_starts = np.zeros(k, np.float64)
    if k == 0:
        return 0.0, best_modes, best_starts
    intra = np.zeros(k, np.int64)
    any_intra = False
    for i in range(k):
        if kinds[i] != _COMM and la[i] < l1[i]:
            intra[i] = 1
            any_intra = True
    modes = np.zeros(k, np.int64)
    st = np.zeros(k, np.float64)
    # step 0: all single-core; 1: intra-op wherever faster; 2 + i: flip operator i of
    # the best so far (kept when strictly better); one call site of _run keeps it small
    for step in range(2 + k if any_intra else 1):
        i = step - 2
        if step == 1:
            for j in range(k):  # element loops: slice copies compile slowly
                modes[j] = intra[j]
        elif step >= 2:
            if step == 2:
                for j in range(k):
                    modes[j] = best_modes[j]
            if intra[i] == 0:
                continue
            modes[i] ^= 1
        ms = _run(topo, pred_ptr, pred_idx, succ_ptr, succ_idx, kinds, l1, la, modes, cap, st)
        if step == 0 or ms < best:
            best = ms
            for j in range(k):
                best_modes[j] = modes[j]
                best_starts[j] = st[j]
        elif step >= 2:
            modes[i] ^= 1
    return best, best_modes, best_starts


# --- the set of partial schedules already expanded (exact keys, open addressing) ---


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _key_hash(mask, mode_bits, starts, k):
    """FNV-1a over the mask, the mode bits and the placed starts (each as its exact
    mantissa and exponent)."""
    h = np.uint64(1469598103934665603)
    prime = np.uint64(1099511628211)
    h = (h ^ np.uint64(mask)) * prime
    h = (h ^ np.uint64(mode_bits)) * prime
    for j in range(k):
        if mask >> j & 1:
            frac, expo = math.frexp(starts[j])
            h = (h ^ np.uint64(np.int64(frac * 9007199254740992.0))) * prime
            h = (h ^ np.uint64(expo + 2048)) * prime
    return h


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _seen_insert(table, e_mask, e_modes, e_starts, n_e, mask, mode_bits, starts, k):
    """Insert a partial schedule (the starts of the operators in ``mask``) as entry
    ``n_e``; False when an equal one is already there. The caller keeps ``n_e`` below the
    entry capacity and the table at twice that size (load at most one half)."""
    size = table.shape[0]
    slot = np.int64(_key_hash(mask, mode_bits, starts, k) % np.uint64(size))
    while table[slot] >= 0:
        x = table[slot]
        if e_mask[x] == mask and e_modes[x] == mode_bits:
            same = True
            for j in range(k):
                if mask >> j & 1 and e_starts[x, j] != starts[j]:
                    same = False
                    break
            if same:
                return False
        slot = (slot + 1) % size
    e_mask[n_e] = mask
    e_modes[n_e] = mode_bits
    for j in range(k):
        e_starts[n_e, j] = starts[j] if mask >> j & 1 else 0.0
    table[slot] = n_e
    return True


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _rehash(table, e_mask, e_modes, e_starts, n_e, k):
    """Fill an empty ``table`` (all -1) with the first ``n_e`` entries."""
    size = table.shape[0]
    for x in range(n_e):
        slot = np.int64(_key_hash(e_mask[x], e_modes[x], e_starts[x], k) % np.uint64(size))
        while table[slot] >= 0:
            slot = (slot + 1) % size
        table[slot] = x


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _bound(mask, cur, topo, pred_ptr, pred_idx, fins, dmin, tail, area, est):
    """Lower bound of every completion of a partial schedule: heads + tails with the
    faster mode; the remaining work per core resource after its earliest start."""
    b = cur
    first0 = np.inf
    first1 = np.inf
    work0 = 0.0
    work1 = 0.0
    for i in topo:
        if mask >> i & 1:
            continue
        e = 0.0
        for x in range(pred_ptr[i], pred_ptr[i + 1]):
            p = pred_idx[x]
            v = fins[p] if mask >> p & 1 else est[p] + dmin[p]
            if v > e:
                e = v
        est[i] = e
        if e + tail[i] > b:
            b = e + tail[i]
        if area[0, i] != 0.0:
            work0 += area[0, i]
            if e < first0:
                first0 = e
        if area[1, i] != 0.0:
            work1 += area[1, i]
            if e < first1:
                first1 = e
    if work0 != 0.0 and first0 + work0 > b:
        b = first0 + work0
    if work1 != 0.0 and first1 + work1 > b:
        b = first1 + work1
    return b


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def enumerate_segment(
    topo,
    pred_ptr,
    pred_idx,
    succ_ptr,
    succ_idx,
    kinds,
    l1,
    la,
    cap,
    ub,
    ub_modes,
    ub_starts,
    lb,
    node_limit,
):
    """Least makespan of one instance by branch and bound over serial SGS schedules
    (docs/scheduling.md): a depth-first tree of list prefixes (operators by decreasing
    tail, intra-op mode first where strictly faster), cut by :func:`_bound` against the
    incumbent, skipping prefixes that give an already expanded partial schedule, stopping
    when the incumbent meets ``lb``.

    ``node_limit < 0``: no limit. Returns ``(makespan, modes, starts, complete, nodes)``;
    ``complete`` False when the limit was hit (the result is then only the best found).
    At most :data:`MAX_ENUM_OPS` operators.
    """
    k = kinds.shape[0]
    best = ub
    best_modes = ub_modes.copy()
    best_starts = ub_starts.copy()
    count = 0
    if not best > lb:
        return best, best_modes, best_starts, True, count
    dmin = np.empty(k, np.float64)
    for i in range(k):
        dmin[i] = la[i] if la[i] < l1[i] else l1[i]
    tail = np.zeros(k, np.float64)
    _tails(topo, succ_ptr, succ_idx, dmin, tail)
    can = np.zeros(k, np.bool_)
    for i in range(k):
        can[i] = kinds[i] != _COMM and la[i] < l1[i]
    area = np.zeros((2, k), np.float64)
    for r in range(2):
        c = float(cap[r])
        for i in range(k):
            if _single_demand(kinds[i], r):
                w = l1[i]
                if can[i] and c * la[i] < w:
                    w = c * la[i]
                area[r, i] = w / c
    # rank: decreasing tail, ties by index (a stable insertion sort)
    rank = np.arange(k)
    for x in range(1, k):
        y = x
        while y > 0 and tail[rank[y - 1]] < tail[rank[y]]:
            rank[y - 1], rank[y] = rank[y], rank[y - 1]
            y -= 1
    starts = np.zeros(k, np.float64)
    fins = np.zeros(k, np.float64)
    modes = np.zeros(k, np.int64)
    est = np.zeros(k, np.float64)
    ps = np.zeros(k, np.float64)
    pf = np.zeros(k, np.float64)
    pd = np.zeros((k, 3), np.int64)
    scratch = np.zeros(k, np.float64)
    dem = np.zeros((k, 2, 3), np.int64)
    for i in range(k):
        for r in range(3):
            dem[i, 0, r] = _single_demand(kinds[i], r)
            dem[i, 1, r] = cap[r]
    table = np.full(1024, -1, np.int64)
    e_mask = np.empty(512, np.int64)
    e_modes = np.empty(512, np.int64)
    e_starts = np.zeros((512, k), np.float64)
    # counters start as np.int64: a plain 0 is first typed Literal[int](0) and the
    # helpers it reaches would be compiled twice (once for the literal)
    n_e = np.int64(0)
    d_mask = np.zeros(k + 1, np.int64)
    d_cur = np.zeros(k + 1, np.float64)
    d_rank = np.zeros(k + 1, np.int64)
    d_mode = np.zeros(k + 1, np.int64)
    d = np.int64(0)
    complete = True
    while d >= 0:
        if d == k:
            cur = d_cur[d]
            if cur < best:
                best = cur
                for j in range(k):
                    best_modes[j] = modes[j]
                    best_starts[j] = starts[j]
                if cur <= lb:
                    break
            d -= 1
            continue
        mask = d_mask[d]
        descended = False
        while d_rank[d] < k:
            i = rank[d_rank[d]]
            if mask >> i & 1:
                d_rank[d] += 1
                continue
            ready = True
            t0 = 0.0
            for x in range(pred_ptr[i], pred_ptr[i + 1]):
                p = pred_idx[x]
                if not mask >> p & 1:
                    ready = False
                    break
                if fins[p] > t0:
                    t0 = fins[p]
            n_modes = 2 if can[i] else 1
            if not ready or d_mode[d] >= n_modes:
                d_rank[d] += 1
                d_mode[d] = 0
                continue
            m = 1 - d_mode[d] if can[i] else 0  # intra-op first
            d_mode[d] += 1
            count += 1
            if node_limit >= 0 and count > node_limit:
                complete = False
                break
            dur = la[i] if m else l1[i]
            t = _earliest_start(t0, dur, dem[i, m], ps, pf, pd, d, cap, scratch)
            f = t + dur
            new_mask = mask | (np.int64(1) << i)
            starts[i] = t
            fins[i] = f
            modes[i] = m
            bits = np.int64(0)
            for j in range(k):
                if new_mask >> j & 1 and modes[j]:
                    bits |= np.int64(1) << j
            if n_e == e_mask.shape[0]:  # full: double the entries and the table
                grow = 2 * n_e
                m2 = np.empty(grow, np.int64)
                b2 = np.empty(grow, np.int64)
                s2 = np.zeros((grow, k), np.float64)
                for x in range(n_e):
                    m2[x] = e_mask[x]
                    b2[x] = e_modes[x]
                    for j in range(k):
                        s2[x, j] = e_starts[x, j]
                e_mask, e_modes, e_starts = m2, b2, s2
                table = np.full(2 * grow, -1, np.int64)
                _rehash(table, e_mask, e_modes, e_starts, n_e, k)
            if not _seen_insert(table, e_mask, e_modes, e_starts, n_e, new_mask, bits, starts, k):
                continue
            n_e += 1
            new_cur = f if f > d_cur[d] else d_cur[d]
            if (
                _bound(new_mask, new_cur, topo, pred_ptr, pred_idx, fins, dmin, tail, area, est)
                >= best
            ):
                continue
            ps[d] = t
            pf[d] = f
            for r in range(3):
                pd[d, r] = dem[i, m, r]
            d_mask[d + 1] = new_mask
            d_cur[d + 1] = new_cur
            d_rank[d + 1] = 0
            d_mode[d + 1] = 0
            descended = True
            break
        if not complete:
            break
        if descended:
            d += 1
        else:
            d -= 1
    return best, best_modes, best_starts, complete, count


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def solve_columns(
    topo,
    pred_ptr,
    pred_idx,
    succ_ptr,
    succ_idx,
    kinds,
    l1,
    la,
    cap_tc,
    cap_vc,
    enum_max_ops,
    node_limit,
    close_rtol,
):
    """Solve one segment on every column: lower bound, list schedule, and enumeration when
    the two do not meet and the segment has at most ``enum_max_ops`` operators.

    Returns
    -------
    makespan, lb : float64 (Q,)
        The schedule's makespan (the list schedule's when ``status`` is ST_OPEN); the
        lower bound.
    status : int64 (Q,)
        ST_BOUNDS (bounds met), ST_ENUMERATED (enumeration proved optimality) or ST_OPEN
        (left for CBC, with the list schedule as its incumbent).
    modes : int64 (Q, k); starts : float64 (Q, k)
    """
    k, n_q = l1.shape
    ms = np.zeros(n_q, np.float64)
    lbs = np.zeros(n_q, np.float64)
    status = np.zeros(n_q, np.int64)
    modes = np.zeros((n_q, k), np.int64)
    starts = np.zeros((n_q, k), np.float64)
    finish = np.zeros(max(k, 1), np.float64)
    cap = np.ones(3, np.int64)
    c1 = np.empty(k, np.float64)
    ca = np.empty(k, np.float64)
    for q in range(n_q):
        if k == 0:
            continue
        cap[0] = cap_tc[q]
        cap[1] = cap_vc[q]
        low = _lower_bound_col(topo, pred_ptr, pred_idx, kinds, l1, la, q, cap[0], cap[1], finish)
        for j in range(k):
            c1[j] = l1[j, q]
            ca[j] = la[j, q]
        up, um, us = list_schedule(topo, pred_ptr, pred_idx, succ_ptr, succ_idx, kinds, c1, ca, cap)
        lbs[q] = low
        ms[q] = up
        for j in range(k):  # element loops: row copies compile slowly
            modes[q, j] = um[j]
            starts[q, j] = us[j]
        if up - low <= close_rtol * up:
            status[q] = ST_BOUNDS
            continue
        status[q] = ST_OPEN
        if k <= enum_max_ops:
            e_ms, e_modes, e_starts, done, _ = enumerate_segment(
                topo,
                pred_ptr,
                pred_idx,
                succ_ptr,
                succ_idx,
                kinds,
                c1,
                ca,
                cap,
                up,
                um,
                us,
                low,
                node_limit,
            )
            if done:
                status[q] = ST_ENUMERATED
                ms[q] = e_ms
                for j in range(k):
                    modes[q, j] = e_modes[j]
                    starts[q, j] = e_starts[j]
    return ms, lbs, status, modes, starts


def _tiny_graph():
    """Three operators, two of them in parallel (so enumeration runs): ``topo,
    pred_ptr, pred_idx, succ_ptr, succ_idx, kinds, l1, la``."""
    topo = np.array([0, 1, 2], np.int64)
    pred_ptr = np.array([0, 0, 1, 2], np.int64)
    pred_idx = np.array([0, 0], np.int64)
    succ_ptr = np.array([0, 2, 2, 2], np.int64)
    succ_idx = np.array([1, 2], np.int64)
    kinds = np.array([2, 0, 0], np.int64)
    l1 = np.array([[1.0], [2.0], [2.0]])
    la = np.array([[1.0], [1.5], [1.5]])
    return topo, pred_ptr, pred_idx, succ_ptr, succ_idx, kinds, l1, la


def warmup_large_spaces() -> None:
    """Compile (or load from numba's cache) :func:`config_lower_bounds` on a tiny input.
    Its only callee, ``_single_demand``, is compiled by :func:`warmup`'s first kernel,
    before :func:`warmup` calls its ``callees_ready``."""
    topo, pred_ptr, pred_idx, _, _, kinds, l1, la = _tiny_graph()
    one = np.zeros(1, np.int64)
    two = np.array([2], np.int64)
    config_lower_bounds(
        topo,
        pred_ptr,
        pred_idx,
        kinds,
        np.stack([l1, la], axis=2),
        np.zeros((3, 1, 2)),
        np.zeros(3),
        one,
        one,
        np.ones(1),
        two,
        two,
    )


def warmup(large_spaces: bool = True, callees_ready=None) -> None:
    """Compile (or load from numba's cache) every kernel of this module on a tiny input
    (:func:`_tiny_graph`); :func:`config_lower_bounds` only for ``large_spaces`` (a
    search bounds spaces of more than ``phaze.joint.arch_bounds.LATENCY_CHUNK_ARCHS``
    architectures with it, :func:`warmup_large_spaces`).

    ``callees_ready``, when given, is called once :func:`lower_bounds` is compiled and
    cached, and with it every callee of :func:`config_lower_bounds`: another process
    may then compile that kernel (:func:`warmup_large_spaces`) while this one goes on,
    reading its callees from the cache and writing no file this one writes
    (``phaze._kernels.warmup`` does so on a cold cache)."""
    topo, pred_ptr, pred_idx, succ_ptr, succ_idx, kinds, l1, la = _tiny_graph()
    z = np.zeros(0, np.int64)
    two = np.array([2], np.int64)
    lower_bounds(topo, pred_ptr, pred_idx, kinds, l1, la, two, two)
    if callees_ready is not None:
        callees_ready()
    if large_spaces:
        warmup_large_spaces()
    solve_columns(
        topo, pred_ptr, pred_idx, succ_ptr, succ_idx, kinds, l1, la, two, two, 8, 50_000, 1e-12
    )
    cap = np.array([2, 1, 1], np.int64)
    c1, ca = l1[:, 0].copy(), la[:, 0].copy()
    ub, um, us = list_schedule(topo, pred_ptr, pred_idx, succ_ptr, succ_idx, kinds, c1, ca, cap)
    enumerate_segment(
        topo, pred_ptr, pred_idx, succ_ptr, succ_idx, kinds, c1, ca, cap, ub, um, us, 0.0, -1
    )
    layer_bounds(
        kinds,
        l1,
        la,
        z,
        np.array([0, 3], np.int64),
        topo,
        topo,
        pred_ptr,
        pred_idx,
        np.ones((1, 3), np.int64),
        two,
        two,
        1e-12,
    )
