"""Tensor-core GEMM cycles and per-boundary traffic (docs/cost-model.md).

One GEMM ``out[b, M, N] = A[b, M, K] @ W[b, K, N]`` for ``b < B`` runs on one tensor core or
is split across the tensor cores of an accelerator. Everything is counted in words (buffer
capacities are ``bytes // word_bytes``) and cycles. The model, level by level:

Core split (all-cores mode; the one-core mode is the split ``(1, 1, 1)``)
    Powers of two ``pb, pm, pn`` with ``pb * pm * pn <= cores``, ``pb <= p2ceil(B)``,
    ``pm <= p2ceil(M)``, ``pn <= p2ceil(N)``. Each core gets ``b = ceil(B / pb)`` batches of
    an ``m x K x n`` GEMM, ``m = ceil(M / pm)``, ``n = ceil(N / pn)``; ``used =
    ceil(B / b) * ceil(M / m) * ceil(N / n)`` cores get work. The reduction is never split.
    Splits are tried in order of ``log2(pb pm pn)``, then ``pb``, then ``pm``; the first one
    with the least cycles wins.

Compute (per core, ``P = tc_width * tc_depth`` PEs, weight stationary)
    The array unrolls ``s`` reduction elements and ``P // s`` output columns, ``s`` a power
    of two <= P chosen for the fewest cycles: ``b * m * min_s ceil(K / min(s, K)) *
    ceil(n / min(P // s, n))``.

Core SRAM -> PE array (per core; ``R`` weight registers per PE, SRAM of ``S`` words per
operand buffer)
    The ``R * P`` registers hold a ``Kt x Nt`` weight tile of the most balanced shape:
    ``Kt = min(smallest power of two >= sqrt(R P), p2ceil(K))``, ``Nt = min(R P // Kt,
    p2ceil(n))``. Inputs stream past it (each input word is read once per ``Nt`` columns),
    partial sums are read and written once per ``Kt`` slice of the reduction, and the weight
    tile is reloaded for every block of ``Mt`` rows: ``Mt = S // Nt`` when there are partial
    sums to keep in the output buffer (``ceil(K / Kt) > 1``), else ``2 S // Kt`` (no partial
    sums: input rows fill the input and the idle output buffer). Words::

        b * (m K ceil(n / Nt) + m n (2 ceil(K / Kt) - 1) + K n ceil(m / Mt))

GLB -> core SRAM (per core) and HBM -> GLB (whole GEMM)
    The least traffic of any tiling with tile extents that are powers of two or the full
    dimension, and any loop order, that fits the level: separate buffers of ``S`` words for
    inputs, weights and outputs (core SRAM), or one buffer of ``G`` words shared by all three
    (GLB). A tensor is re-fetched once per iteration of its irrelevant loop unless that loop
    runs inside all its relevant loops (with a trip count > 1); an output tile fetched
    ``t`` times costs ``2 t - 1`` words per element (read-modify-write, first write free).
    ``_level_words`` finds this optimum in closed form (one stationary tensor, the third
    dimension streamed one element at a time); a brute force over all tilings and orders
    agrees (tests/reference/gemm.py). The core-SRAM level counts ``b`` GEMMs, the GLB level
    ``B``.

Cycles = max(compute, words / bandwidth at every boundary), with a chip-wide bandwidth
serving ``used`` cores' words and a per-core bandwidth each core's own words. A GLB too
small for any tile (fewer than 3 words) gives ``inf`` cycles and HBM words.

Under the ``phaze`` preset this tracks the original's tiling optimiser (shared reference
``tiling_cycles.jsonl``; see tests/test_cost.py). The balanced register tile and the row
block ``Mt`` are what that optimiser settles on; a least-traffic register tile tracks it
worse (it finds tilings the original's pruned search does not).
"""

import numpy as np
from numba import njit

__all__ = ["gemm_cycles", "warmup"]

_INF = np.inf
_BIG = np.int64(2**62)


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _cdiv(a, b):
    return (a + b - 1) // b


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _p2ceil(x):
    v = np.int64(1)
    while v < x:
        v *= 2
    return v


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _p2floor(x):
    v = np.int64(1)
    while v * 2 <= x:
        v *= 2
    return v


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _log2(x):
    """floor(log2(x)) for x >= 1."""
    e = 0
    while (np.int64(1) << (e + 1)) <= x:
        e += 1
    return e


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _fit(d, limit):
    """Largest tile extent <= limit: the full dimension if it fits, else a power of two."""
    if d <= limit:
        return d
    return _p2floor(limit)


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _next_extent(t, d, limit):
    """Next tile extent after ``t`` (powers of two, then the full dimension ``d``), or 0."""
    if t >= d:
        return 0
    nxt = t * 2
    if nxt >= d:
        nxt = d
    if nxt > limit:
        return 0
    return nxt


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _operand_stationary_words(m, k, n, cap_s, cap_x, cap_o, shared):
    """Least words with the ``k x n`` operand stationary (tile ``tk x tn`` in a buffer of
    ``cap_s`` words) and the ``m x k`` operand streamed one row at a time (``cap_x``):
    the stationary operand once, the streamed one once per column tile, and the partial
    sums written once and re-read ``ceil(k/tk) - 1`` times. See :func:`_level_words`."""
    best = _BIG
    lim = shared if shared > 0 else min(cap_s, cap_x)
    tk = np.int64(1) if lim >= 1 else np.int64(0)
    while tk > 0:
        tmax = (shared - tk) // (tk + 1) if shared > 0 else min(cap_s // tk, cap_o)
        if tmax >= 1:
            tn = _fit(n, tmax)
            t = k * n + m * k * _cdiv(n, tn) + m * n * (2 * _cdiv(k, tk) - 1)
            best = min(best, t)
        tk = _next_extent(tk, k, lim)
    return best


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _level_words(m, k, n, cap_a, cap_w, cap_o, shared):
    """Least words crossing into a buffer level for ``out[m,n] = A[m,k] @ W[k,n]``.

    ``shared > 0``: one buffer of ``shared`` words for all tensors; else separate buffers
    of ``cap_a`` (inputs), ``cap_w`` (weights), ``cap_o`` (outputs) words. Returns
    ``2**62`` if nothing fits.
    """
    # weights stationary (tile tk x tn), rows streamed one at a time; inputs stationary
    # (tile tm x tk), columns streamed: the same count with m <-> n and A <-> W swapped
    best = min(
        _operand_stationary_words(m, k, n, cap_w, cap_a, cap_o, shared),
        _operand_stationary_words(n, k, m, cap_a, cap_w, cap_o, shared),
    )
    # outputs stationary (tile tm x tn), reduction streamed
    lim = shared if shared > 0 else min(cap_o, cap_w)
    tn = np.int64(1) if lim >= 1 else np.int64(0)
    while tn > 0:
        tmax = (shared - tn) // (tn + 1) if shared > 0 else min(cap_o // tn, cap_a)
        if tmax >= 1:
            tm = _fit(m, tmax)
            t = m * n + m * k * _cdiv(n, tn) + k * n * _cdiv(m, tm)
            best = min(best, t)
        tn = _next_extent(tn, n, lim)
    return best


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _compute_cycles(m, k, n, pes):
    """Cycles of an ``m x k x n`` GEMM on one array of ``pes`` PEs (flexible unrolling)."""
    best = _BIG
    s = np.int64(1)
    while s <= pes:
        sk = min(s, k)
        sn = min(pes // s, n)
        c = _cdiv(k, sk) * _cdiv(n, sn)
        if c < best:
            best = c
        s *= 2
    return m * best


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _pe_words(m, k, n, pes, regs, sram):
    """Core SRAM -> PE words of one ``m x k x n`` GEMM (module docstring)."""
    area = regs * pes
    kt = np.int64(1)
    while kt * kt < area:
        kt *= 2
    kt = min(kt, _p2ceil(k))
    nt = min(max(area // kt, 1), _p2ceil(n))
    nk = _cdiv(k, kt)
    if nk > 1:
        mt = max(sram // nt, 1)
    else:
        mt = max((2 * sram) // kt, 1)
    return m * k * _cdiv(n, nt) + m * n * (2 * nk - 1) + k * n * _cdiv(m, mt)


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _fill_splits(
    bt, m, k, n, pes, regs, sram, lmax, e_lsum, e_b, e_m, e_n, e_used, e_comp, e_pe, e_sram
):
    """Per-core figures of every core split with log2(cores) <= lmax; returns the count."""
    lb_max = _log2(_p2ceil(bt))
    lm_max = _log2(_p2ceil(m))
    ln_max = _log2(_p2ceil(n))
    cnt = 0
    for ls in range(lmax + 1):
        for lb in range(min(ls, lb_max) + 1):
            for lm in range(min(ls - lb, lm_max) + 1):
                ln = ls - lb - lm
                if ln > ln_max:
                    continue
                b = _cdiv(bt, np.int64(1) << lb)
                mc = _cdiv(m, np.int64(1) << lm)
                nc = _cdiv(n, np.int64(1) << ln)
                e_lsum[cnt] = ls
                e_b[cnt] = b
                e_m[cnt] = mc
                e_n[cnt] = nc
                e_used[cnt] = _cdiv(bt, b) * _cdiv(m, mc) * _cdiv(n, nc)
                e_comp[cnt] = b * _compute_cycles(mc, k, nc, pes)
                e_pe[cnt] = b * _pe_words(mc, k, nc, pes, regs, sram)
                e_sram[cnt] = -1  # computed when needed
                cnt += 1
    return cnt


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def gemm_cycles(
    gb,
    gm,
    gk,
    gn,
    geo_pes,
    geo_sram,
    geo_regs,
    geo_ptr,
    geo_members,
    cores,
    glb_index,
    glb_words,
    bw_pe,
    pe_per_core,
    bw_glb,
    glb_per_core,
    bw_hbm,
    out_cycles,
    out_pe,
    out_sram,
    out_hbm,
):
    """Cycles and traffic of every GEMM on every tensor-core configuration, both modes.

    Parameters
    ----------
    gb, gm, gk, gn : int64 (G,)
        GEMM shapes: batch, rows, reduction, columns (all >= 1).
    geo_pes, geo_sram, geo_regs : int64 (Q,)
        Unique core geometries: PEs per core, words per core-SRAM operand buffer, weight
        registers per PE.
    geo_ptr, geo_members : int64 (Q + 1,), (T,)
        Configurations of geometry q: ``geo_members[geo_ptr[q]:geo_ptr[q + 1]]``.
    cores : int64 (T,)
        Tensor cores of each configuration.
    glb_index, glb_words : int64 (T,), (U,)
        GLB capacity (words) of each configuration is ``glb_words[glb_index[t]]``.
    bw_pe, bw_glb, bw_hbm : float64 (T,)
        Words per cycle at the core SRAM -> PE, GLB -> core SRAM and HBM -> GLB boundaries.
    pe_per_core, glb_per_core : bool (T,)
        Whether ``bw_pe`` / ``bw_glb`` is per core (else chip-wide).
    out_cycles, out_pe, out_sram, out_hbm : float64 (G, T, 2)
        Written: cycles and words at each boundary of the chosen split, mode 0 one core,
        mode 1 all cores.
    """
    n_geo = geo_pes.shape[0]
    lmax_all = 0
    for t in range(cores.shape[0]):
        lmax_all = max(lmax_all, _log2(cores[t]))
    size = (lmax_all + 1) * (lmax_all + 2) * (lmax_all + 3) // 6
    e_lsum = np.empty(size, np.int64)
    e_b = np.empty(size, np.int64)
    e_m = np.empty(size, np.int64)
    e_n = np.empty(size, np.int64)
    e_used = np.empty(size, np.int64)
    e_comp = np.empty(size, np.int64)
    e_pe = np.empty(size, np.int64)
    e_sram = np.empty(size, np.int64)
    hbm = np.empty(glb_words.shape[0], np.float64)
    # np.int64, not a plain 0 (Literal[int](0)): each helper then compiles once
    zero = np.int64(0)
    for g in range(gb.shape[0]):
        bt, m, k, n = gb[g], gm[g], gk[g], gn[g]
        for u in range(glb_words.shape[0]):
            w = _level_words(m, k, n, zero, zero, zero, glb_words[u])
            hbm[u] = _INF if w >= _BIG else float(bt) * w  # inf: nothing fits the GLB
        for q in range(n_geo):
            lo, hi = geo_ptr[q], geo_ptr[q + 1]
            if lo == hi:
                continue
            lq = zero
            for i in range(lo, hi):
                lq = max(lq, _log2(cores[geo_members[i]]))
            pes, sram, regs = geo_pes[q], geo_sram[q], geo_regs[q]
            cnt = _fill_splits(
                bt,
                m,
                k,
                n,
                pes,
                regs,
                sram,
                lq,
                e_lsum,
                e_b,
                e_m,
                e_n,
                e_used,
                e_comp,
                e_pe,
                e_sram,
            )
            for i in range(lo, hi):
                t = geo_members[i]
                hbm_words = hbm[glb_index[t]]
                hbm_c = hbm_words / bw_hbm[t]
                lt = _log2(cores[t])
                for mode in range(2):
                    lim = 0 if mode == 0 else lt
                    best = _INF
                    be = 0
                    for e in range(cnt):
                        if e_lsum[e] > lim:
                            break
                        if pe_per_core[t]:
                            pe_c = e_pe[e] / bw_pe[t]
                        else:
                            pe_c = e_pe[e] * e_used[e] / bw_pe[t]
                        lat = max(max(float(e_comp[e]), pe_c), hbm_c)
                        if lat >= best:
                            continue
                        if e_sram[e] < 0:
                            e_sram[e] = e_b[e] * _level_words(
                                e_m[e], k, e_n[e], sram, sram, sram, zero
                            )
                        if glb_per_core[t]:
                            sr_c = e_sram[e] / bw_glb[t]
                        else:
                            sr_c = e_sram[e] * e_used[e] / bw_glb[t]
                        lat = max(lat, sr_c)
                        if lat < best:
                            best = lat
                            be = e
                    if e_sram[be] < 0:
                        e_sram[be] = e_b[be] * _level_words(
                            e_m[be], k, e_n[be], sram, sram, sram, zero
                        )
                    out_cycles[g, t, mode] = best
                    out_pe[g, t, mode] = e_pe[be] * e_used[be]
                    out_sram[g, t, mode] = e_sram[be] * e_used[be]
                    out_hbm[g, t, mode] = hbm_words


def warmup() -> None:
    """Compile (or load from numba's cache) :func:`gemm_cycles` on a tiny input."""
    one = np.ones(1, np.int64)
    f = np.ones(1, np.float64)
    b = np.zeros(1, np.bool_)
    out = np.zeros((1, 1, 2), np.float64)
    gemm_cycles(
        one,
        one,
        one,
        one,
        one * 4,
        one * 1024,
        one * 32,
        np.array([0, 1], np.int64),
        np.zeros(1, np.int64),
        one * 2,
        np.zeros(1, np.int64),
        one * 4096,
        f,
        b,
        f,
        b,
        f,
        out,
        out.copy(),
        out.copy(),
        out.copy(),
    )
