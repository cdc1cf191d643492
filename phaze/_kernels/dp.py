"""The placement recurrence (docs/placement.md) over the stage tables of
:mod:`phaze._kernels.stage_tables`.

:func:`dp_solve` then runs the recurrence and the final round over the data-parallel
degree. Devices are not a DP dimension: a stage needs ``t`` devices or, if ``cheap``, 1,
so ``s`` stages of which ``r`` are cheap need ``t*s - (t-1)*r`` devices, and
"at most ``k`` devices" becomes "at least ``r_min(k)`` cheap stages" (only the device
counts that can occur are represented). ``r`` has ``n_cheap + 1`` values; it is 1 when
``t == 1`` or when no layer (or every layer) is tensor-parallel.

All times in seconds, sizes in bytes, bandwidth in bytes/s; ``inf`` means infeasible and
is never an error. Kernel options as docs/architecture.md's kernel policy says; no fastmath.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "dp_solve",
    "interleaved_bounds",
    "interleaved_final",
    "reconstruct",
    "time_per_batch_bounds",
    "warmup",
]


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def dp_solve(
    ptr,
    partner,
    load1,
    loadr,
    maxs,
    cheap,
    pbytes,
    rem,
    cheap_cap,
    n_dev,
    micro_batches,
    dp_bandwidth_Bps,
    t,
    n_cheap,
    dp_latency_s,
    dp_sync_factor,
    overlap_s,
    step_s_per_B,
    step_sharded_s_per_B,
    d_lo,
    d_hi,
    bound_s,
    d_best_s,
):
    """The placement recurrence and the final round over the data-parallel degree.

    ``g[k, s, r]`` is the least possible largest stage load placing the layers of state
    ``k`` in exactly ``s`` stages, ``r`` of them cheap; the first stage placed from ``k``
    is the ``s``-th from the end (load ``loadr`` if ``s > 1`` else ``load1``, and
    ``s <= max_stages``). Final round, for ``d = 1 ... min(n_dev, micro_batches)``:
    ``n = n_dev // d`` devices and ``m = ceil(micro_batches / d)`` micro-batches per
    pipeline; over first stages ``p`` from state 0 and ``s``:
    ``time = max(g[partner[p], r >= r_min, s-1], load(p, s)) * (m + s - 1) + sync + step``
    with ``sync = F (d-1) param_bytes[p] / (bandwidth[d] d) + 2 (d-1) latency[d]``, the
    ring collectives of the ``d`` data-parallel peers on the network level their group
    spans (``F = dp_sync_factor``: 4 for the all-reduce, 3 for the distributed
    optimizer's reduce-scatter + all-gather; with the paper's single link
    ``bandwidth[d]`` is the link's and ``latency[d] = 0``), less the overlap
    ``max(0, sync - overlap_s[p])`` when ``overlap_s`` is not empty, and the optimizer
    step ``step = param_bytes[p] (step_s_per_B + step_sharded_s_per_B / d)`` (added only
    when one of them is not 0). Only ``d_lo <= d <= d_hi`` are candidates; the best must
    be strictly below ``bound_s`` (``inf``: no bound). Strictly smaller wins (d, then p,
    then s in increasing order). A ``d`` with the same ``(n, m)`` as the previous
    candidate is skipped unless the step is sharded: its sync and step terms can only be
    larger.

    When ``d_best_s`` is not empty (length ``min(n_dev, micro_batches) + 1``), every
    ``d = 1 ... min(n_dev, micro_batches)`` is visited and ``d_best_s[d]`` receives the
    least time at ``d`` (a lower bound for a skipped ``d``; ``inf`` when nothing fits),
    without pruning across ``d``; the returned best is still over ``d_lo ... d_hi`` only.

    Parameters
    ----------
    ptr, partner, load1, loadr, maxs, cheap, pbytes, rem, cheap_cap
        Stage tables (module docstring); ``cheap_cap[k]``: layers of state ``k`` that are
        not tensor-parallel, a bound on its cheap stages.
    n_dev, micro_batches, t, n_cheap : int
        ``t`` is the effective width (1 when all stages need one device); ``n_cheap`` the
        largest number of cheap stages (0 when ``t == 1``).
    dp_bandwidth_Bps, dp_latency_s : float64 (>= min(n_dev, micro_batches) + 1,)
        Per data-parallel degree ``d``: the bandwidth and per-step latency of the
        gradient all-reduce ring (entries 0 and 1 unused); non-increasing bandwidth and
        non-decreasing latency in ``d``.
    dp_sync_factor : float
        Bytes the gradient synchronisation moves per parameter byte, times ``d/(d-1)``.
    overlap_s : float64 (n_pairs,) or (0,)
        Per stage: the seconds of backward the synchronisation may hide behind when it is
        the first stage; empty: no overlap.
    step_s_per_B, step_sharded_s_per_B : float
        Optimizer-step seconds per parameter byte of the first stage, replicated and
        sharded over ``d``; both 0: no step term.
    d_lo, d_hi : int
        Candidate data-parallel degrees (clipped to ``1 ... min(n_dev, micro_batches)``).
    bound_s : float
        Only times strictly below it are returned.
    d_best_s : float64 (min(n_dev, micro_batches) + 1,) or (0,)
        Output: the least time per ``d`` (see above); empty: not recorded.

    Returns
    -------
    best_time : float
        Least time per batch in seconds; ``inf`` when nothing fits.
    best_d, best_p, best_s, best_r : int
        Data-parallel degree, first stage (pair), number of stages and the number of cheap
        stages after the first (-1 when infeasible).
    g : float64 (n_states, n_cheap+1, S+1)
        ``g[k, r, s]`` of the recurrence, for :func:`reconstruct`.
    """
    n_states = ptr.shape[0] - 1
    last = n_states - 1
    n_layers = rem[0]
    s_cap = min(n_dev, n_layers)
    if t > 1:  # s stages, at most n_cheap of them cheap, need >= t*s - (t-1)*n_cheap devices
        s_cap = min(s_cap, (n_dev + (t - 1) * n_cheap) // t)
    n_r = n_cheap + 1
    # g[k, r, s] (stage counts innermost: the update below runs over contiguous s)
    g = np.full((n_states, n_r, s_cap + 1), np.inf)
    # qlo[k] .. qhi[k]: the stage counts with a finite g[k, :, q] (empty: qlo > qhi)
    qlo = np.full(n_states, s_cap + 1, np.int64)
    qhi = np.full(n_states, -1, np.int64)
    g[last, 0, 0] = 0.0
    qlo[last] = 0
    qhi[last] = 0
    for k in range(last - 1, 0, -1):
        gk = g[k]
        for p in range(ptr[k], ptr[k + 1]):
            k2 = partner[p]
            c = cheap[p]
            smax = min(maxs[p], s_cap, qhi[k2] + 1)
            if smax < 1:
                continue
            if k2 == last:
                v = load1[p]
                if c < n_r and v < gk[c, 1]:
                    gk[c, 1] = v
                continue
            ld = loadr[p]
            if not ld < np.inf:
                continue
            g2 = g[k2]
            s_lo = max(2, qlo[k2] + 1)
            # r2 + c <= n_r - 1, r2 <= cheap_cap[k2] and r2 <= s - 1 (so s >= r2 + 1)
            top = min(n_r - 1 - c, cheap_cap[k2], smax - 1)
            for r2 in range(top + 1):
                src = g2[r2]
                dst = gk[r2 + c]
                for s in range(max(s_lo, r2 + 1), smax + 1):
                    prev = src[s - 1]
                    v = prev if prev > ld else ld
                    cur = dst[s]
                    dst[s] = v if v < cur else cur
        for s in range(s_cap + 1):
            for r in range(n_r):
                if gk[r, s] < np.inf:
                    if s < qlo[k]:
                        qlo[k] = s
                    if s > qhi[k]:
                        qhi[k] = s
                    break
    # suffix minima over r: at least r cheap stages
    hmin = np.full((n_states, n_r, s_cap + 1), np.inf)
    harg = np.full((n_states, n_r, s_cap + 1), -1, np.int64)
    for k in range(1, n_states):
        for s in range(s_cap + 1):
            run = np.inf
            arg = -1
            for r in range(n_r - 1, -1, -1):
                if g[k, r, s] <= run and g[k, r, s] < np.inf:
                    run = g[k, r, s]
                    arg = r
                hmin[k, r, s] = run
                harg[k, r, s] = arg
    best = bound_s
    best_d = -1
    best_p = -1
    best_s = -1
    best_r = -1
    d_max = min(n_dev, micro_batches)
    record = d_best_s.shape[0] > 0
    overlap = overlap_s.shape[0] > 0
    stepping = step_s_per_B != 0.0 or step_sharded_s_per_B != 0.0
    d_first = 1 if record else max(d_lo, 1)
    d_last = d_max if record else min(d_hi, d_max)
    prev_n = -1
    prev_m = -1
    prev_d = -1
    prev_in = False
    for d in range(d_first, d_last + 1):
        n = n_dev // d
        m = (micro_batches + d - 1) // d
        inside = d_lo <= d <= d_hi
        if (
            n == prev_n
            and m == prev_m
            and (prev_in or not inside)
            and step_sharded_s_per_B == 0.0  # a sharded step gets cheaper with d
        ):
            if record:  # the same tables and (n, m), no smaller sync and step terms
                d_best_s[d] = d_best_s[prev_d]
            continue
        prev_n = n
        prev_m = m
        prev_d = d
        prev_in = inside
        # recording: the least time at this d, pruned only by this d's own best
        cut = np.inf if record else best
        # the collectives of d pipelines: F (d-1) P / (bandwidth[d] d) + 2 (d-1) latency[d]
        ring_div = dp_bandwidth_Bps[d] * d
        ring_lat = 2.0 * (d - 1) * dp_latency_s[d]
        for p in range(ptr[0], ptr[1]):
            k2 = partner[p]
            c = cheap[p]
            a = 1 if (t == 1 or c == 1) else t
            if a > n:
                continue
            nr = n - a
            smax = min(maxs[p], s_cap, qhi[k2] + 1, n)
            if smax < 1 or qlo[k2] + 1 > smax:
                continue
            comm = 0.0
            if d > 1:
                comm = dp_sync_factor * (d - 1) * pbytes[p] / ring_div + ring_lat
                if overlap:
                    comm = max(0.0, comm - overlap_s[p])
            if stepping:
                comm += pbytes[p] * (step_s_per_B + step_sharded_s_per_B / d)
            # lower bounds: the time is at least load * (m + s - 1) + comm
            lower = load1[p] * m if k2 == last else loadr[p] * (m + 1)
            if lower + comm >= cut:
                continue
            for s in range(qlo[k2] + 1, smax + 1):
                if s > 1 and loadr[p] * (m + s - 1) + comm >= cut:
                    break
                q = s - 1
                if t == 1:
                    if q > nr:
                        break
                    rmin = 0
                else:
                    need = t * q - nr
                    rmin = 0 if need <= 0 else (need + t - 2) // (t - 1)
                    if rmin > n_r - 1 or rmin > q or rmin > cheap_cap[k2]:
                        break
                prev = hmin[k2, rmin, q] if k2 != last else (0.0 if q == 0 else np.inf)
                if prev == np.inf:
                    continue
                ld = load1[p] if s == 1 else loadr[p]
                x = prev if prev > ld else ld
                tm = x * (m + s - 1) + comm
                if tm < cut:
                    cut = tm
                    if inside and tm < best:
                        best = tm
                        best_d = d
                        best_p = p
                        best_s = s
                        best_r = harg[k2, rmin, q] if k2 != last else 0
        if record:
            d_best_s[d] = cut
    if best_d < 0:
        best = np.inf
    return best, best_d, best_p, best_s, best_r, g


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _interleaved_round(
    ptr,
    partner,
    loadr,
    maxs,
    cheap,
    pbytes,
    cheap_cap,
    g,
    n_stages,
    v,
    n_dev,
    micro_batches,
    dp_bandwidth_Bps,
    t,
    dp_latency_s,
    dp_sync_factor,
    overlap_s,
    step_s_per_B,
    step_sharded_s_per_B,
    d_lo,
    d_hi,
    m_class,
    bound_s,
):
    """:func:`interleaved_final` for one ``n_stages`` (its docstring)."""
    last = ptr.shape[0] - 2
    n_r = g.shape[1]
    q = n_stages - 1
    best = bound_s
    best_d = -1
    best_p = -1
    best_r = -1
    if q < 1 or q > g.shape[2] - 1:
        return np.inf, best_d, best_p, best_r
    d_max = min(n_dev, micro_batches)
    overlap = overlap_s.shape[0] > 0
    stepping = step_s_per_B != 0.0 or step_sharded_s_per_B != 0.0
    for d in range(max(d_lo, 1), min(d_hi, d_max) + 1):
        n = n_dev // d
        m = (micro_batches + d - 1) // d
        if m % n_stages != 0:
            continue
        if (m_class == 1 and m != n_stages) or (m_class == 0 and m == n_stages):
            continue
        factor = v * m + n_stages - 1
        ring_div = dp_bandwidth_Bps[d] * d
        ring_lat = 2.0 * (d - 1) * dp_latency_s[d]
        for p in range(ptr[0], ptr[1]):
            k2 = partner[p]
            if k2 == last or maxs[p] < n_stages:
                continue
            ld = loadr[p]
            if not ld < np.inf:
                continue
            c = cheap[p]
            a = 1 if (t == 1 or c == 1) else t
            if a > n:
                continue
            nr = n - a
            comm = 0.0
            if d > 1:
                comm = dp_sync_factor * (d - 1) * pbytes[p] / ring_div + ring_lat
                if overlap:
                    comm = max(0.0, comm - overlap_s[p])
            if stepping:
                comm += pbytes[p] * (step_s_per_B + step_sharded_s_per_B / d)
            if ld * factor / v + comm >= best:
                continue
            if t == 1:
                if q > nr:
                    continue
                rmin = 0
            else:
                need = t * q - nr
                rmin = 0 if need <= 0 else (need + t - 2) // (t - 1)
                if rmin > n_r - 1 or rmin > q or rmin > cheap_cap[k2]:
                    continue
            prev = np.inf
            arg = -1
            for r in range(n_r - 1, rmin - 1, -1):
                if g[k2, r, q] <= prev and g[k2, r, q] < np.inf:
                    prev = g[k2, r, q]
                    arg = r
            if arg < 0:
                continue
            x = prev if prev > ld else ld
            tm = x * factor / v + comm
            if tm < best:
                best = tm
                best_d = d
                best_p = p
                best_r = arg
    if best_d < 0:
        best = np.inf
    return best, best_d, best_p, best_r


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def interleaved_final(
    ptr,
    partner,
    load1,
    loadr,
    maxs,
    cheap,
    pbytes,
    rem,
    cheap_cap,
    g,
    n_stages,
    v,
    n_dev,
    micro_batches,
    dp_bandwidth_Bps,
    t,
    dp_latency_s,
    dp_sync_factor,
    overlap_s,
    step_s_per_B,
    step_sharded_s_per_B,
    d_lo,
    d_hi,
    m_class,
    bound_s,
):
    """The final round of interleaved plans of exactly ``n_stages`` devices with ``v``
    chunks each (docs/placement.md, "Interleaved plans"), on the recurrence ``g`` of
    :func:`dp_solve` over interleaved stage tables.

    For ``d = d_lo ... d_hi`` (clipped to ``1 ... min(n_dev, micro_batches)``) with
    ``m = ceil(micro_batches / d)`` a multiple of ``n_stages`` (and ``m == n_stages``
    when ``m_class == 1``, ``m > n_stages`` when ``m_class == 0``, either when -1):
    ``time = max(g[partner[p], r >= r_min, n_stages - 1], loadr[p]) (v m + n_stages - 1)
    / v + sync + step``, the terms ``sync`` and ``step`` as in :func:`dp_solve`. Only
    times strictly below ``bound_s`` count; strictly smaller wins (d, then p).

    Returns
    -------
    best_time : float
        ``inf`` when nothing fits (below ``bound_s``).
    best_d, best_p, best_r : int
        As :func:`dp_solve`'s (-1 when infeasible).
    """
    return _interleaved_round(
        ptr, partner, loadr, maxs, cheap, pbytes, cheap_cap, g, n_stages, v, n_dev,
        micro_batches, dp_bandwidth_Bps, t, dp_latency_s, dp_sync_factor, overlap_s,
        step_s_per_B, step_sharded_s_per_B, d_lo, d_hi, m_class, bound_s,
    )  # fmt: skip


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def interleaved_bounds(
    ptr,
    partner,
    load1,
    loadr,
    maxs,
    cheap,
    pbytes,
    rem,
    cheap_cap,
    g,
    v,
    n_dev,
    micro_batches,
    dp_bandwidth_Bps,
    t,
    dp_latency_s,
    dp_sync_factor,
    overlap_s,
    step_s_per_B,
    step_sharded_s_per_B,
    bound_s,
):
    """:func:`interleaved_final` over every degree (``m_class`` -1) for every stage count
    ``2 ... S`` of ``g`` at once: float64 (S + 1,), entry ``s`` the least time with ``s``
    stages below ``bound_s`` (``inf`` otherwise; entries 0 and 1 ``inf``). On tables with
    the loosest memory caps, a lower bound per stage count.

    Only the smallest ``d`` of each ``m`` is visited (unless the step is sharded): a
    larger one has fewer devices per pipeline and no smaller synchronisation (the
    bandwidth never grows, the latency never shrinks with ``d``), and only the stage
    counts that divide ``m``."""
    s_top = g.shape[2] - 1
    out = np.full(s_top + 1, np.inf)
    prev_m = -1
    for d in range(1, min(n_dev, micro_batches) + 1):
        m = (micro_batches + d - 1) // d
        if m == prev_m and step_sharded_s_per_B == 0.0:
            continue
        prev_m = m
        for s in range(2, min(s_top, m) + 1):
            if m % s != 0:
                continue
            tm = _interleaved_round(
                ptr, partner, loadr, maxs, cheap, pbytes, cheap_cap, g, s, v, n_dev,
                micro_batches, dp_bandwidth_Bps, t, dp_latency_s, dp_sync_factor, overlap_s,
                step_s_per_B, step_sharded_s_per_B, d, d, -1, bound_s,
            )[0]  # fmt: skip
            if tm < out[s]:
                out[s] = tm
    return out


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def reconstruct(
    ptr, partner, load1, loadr, maxs, cheap, pbytes, rem, cheap_cap, g, first_p, n_stages, r
):
    """Stages (pair indices) of the plan from the first stage and ``dp_solve``'s table ``g``.

    At each state the stage is the first pair (in table order) whose value in the
    recurrence equals ``g``'s entry: the pair the recurrence kept, since a later pair
    replaces an entry only when strictly smaller. The tables are ``dp_solve``'s; ``r`` is
    its number of cheap stages after the first.

    Returns int64 (n_stages,): the stages in pipeline order (first stage first).
    """
    last = ptr.shape[0] - 2
    n_r = g.shape[1]
    out = np.full(n_stages, -1, np.int64)
    out[0] = first_p
    k = partner[first_p]
    for idx in range(1, n_stages):
        s = n_stages - idx
        want = g[k, r, s]
        for p in range(ptr[k], ptr[k + 1]):
            k2 = partner[p]
            c = cheap[p]
            if maxs[p] < s or c > r:
                continue
            if s == 1:
                if k2 == last and load1[p] == want:
                    out[idx] = p
                    break
                continue
            r2 = r - c
            if k2 == last or r2 > cheap_cap[k2] or r2 > s - 1 or r2 + c > n_r - 1:
                continue
            ld = loadr[p]
            prev = g[k2, r2, s - 1]
            v = prev if prev > ld else ld
            if v == want:
                out[idx] = p
                break
        p = out[idx]
        r -= cheap[p]
        k = partner[p]
    return out


@njit(cache=True, nogil=True, no_cfunc_wrapper=True, error_model="numpy")
def _time_at_stages(s, lo_s, s_hi, pl, floor_load, m, v, sync_s):
    """:func:`time_per_batch_bounds` at ``s`` stages clipped to ``[lo_s, s_hi]``: the
    largest load ``max(floor_load, pl / s)`` times the bubble factor ``(v m + s - 1) /
    v`` (``m + s - 1`` when ``v`` is 1, in that order of operations), plus ``sync_s``."""
    s = lo_s if lo_s > s else s
    s = s_hi if s_hi < s else s
    t = pl / s
    t = floor_load if floor_load > t else t
    if v == 1.0:
        return t * (m + s - 1.0) + sync_s
    return t * ((v * m + s - 1.0) / v) + sync_s


#: Architectures :func:`time_per_batch_bounds` works on at once (its scratch arrays stay in
#: the CPU's cache across the loop over data-parallel degrees).
_BOUND_BLOCK = 1024


@njit(cache=True, nogil=True, no_cfunc_wrapper=True, error_model="numpy")
def time_per_batch_bounds(
    total, plain, slowest, step_m, step_n, step_s_hi, step_sync_s, min_stages, interleave
):
    """The search's lower bound on the time per batch of every architecture
    (:func:`phaze.joint.bounds.time_per_batch_lower_bound`, which documents the terms).

    ``total``, ``plain``, ``slowest`` float64 (A,): ``W``, ``U`` and ``max_l w_l`` of each
    architecture. Step ``i`` is a data-parallel degree: ``step_m[i]`` micro-batches
    (int64), ``step_n[i]`` devices per pipeline (int64), at most ``step_s_hi[i]`` stages
    (int64) and ``step_sync_s[i]`` seconds of gradient synchronisation (float64). Returns
    float64 (A,): the least over the steps and the two stage counts next to the knee
    (NaN where an input is NaN, inf without steps).

    Written for the compiler to vectorise: the inner loop runs over a block of
    architectures held in scratch arrays, with selects instead of branches;
    ``error_model="numpy"`` (a division by zero gives inf or NaN, which the selects keep
    out of the result, as numpy's masked arithmetic did)."""
    n_a = total.shape[0]
    out = np.full(n_a, np.inf)
    n_steps = step_m.shape[0]
    if n_steps == 0:
        return out
    lo_s = float(min_stages)
    v = float(interleave)
    blk = _BOUND_BLOCK
    tot_b = np.empty(blk, np.float64)
    pl_b = np.empty(blk, np.float64)
    slow_b = np.empty(blk, np.float64)
    best_b = np.empty(blk, np.float64)
    for lo in range(0, n_a, blk):
        nb = min(blk, n_a - lo)
        for b in range(nb):
            tot_b[b] = total[lo + b]
            pl_b[b] = plain[lo + b]
            slow_b[b] = slowest[lo + b]
            best_b[b] = np.inf
        for i in range(n_steps):
            m = float(step_m[i])
            n = float(step_n[i])
            s_hi = float(step_s_hi[i])
            sync_s = step_sync_s[i]
            for b in range(nb):
                pl = pl_b[b]
                floor_load = tot_b[b] / n
                slow = slow_b[b]
                floor_load = slow if slow > floor_load else floor_load
                # np.isfinite(pl) and floor_load > 0 (false for NaN)
                ok = (pl - pl == 0.0) & (floor_load > 0.0)
                ratio = pl / floor_load
                knee = ratio if ok else 1.0
                # the two stage counts next to the knee
                t1 = _time_at_stages(np.floor(knee), lo_s, s_hi, pl, floor_load, m, v, sync_s)
                t2 = _time_at_stages(np.ceil(knee), lo_s, s_hi, pl, floor_load, m, v, sync_s)
                best = best_b[b]
                best = t1 if t1 < best else best
                best = t2 if t2 < best else best
                best_b[b] = best
        for b in range(nb):
            out[lo + b] = best_b[b]
    for q in range(n_a):  # numpy's NaN propagation
        if total[q] != total[q] or plain[q] != plain[q] or slowest[q] != slowest[q]:
            out[q] = np.nan
    return out


def warmup(interleaved: bool = True) -> None:
    """Compile (or load from numba's cache) every kernel of this module on a tiny input
    (the interleaved-plan kernels only when ``interleaved``).

    Call in the parent process before starting workers.
    """
    from phaze._kernels.stage_tables import tiny_tables

    tabs = tiny_tables()
    none = np.zeros(0)
    best, _, p, s, r, g = dp_solve(
        *tabs, 2, 2, np.ones(3), 2, 1, np.zeros(3), 4.0, none, 0.0, 0.0, 1, 2, np.inf, none
    )
    reconstruct(*tabs, g, p, s, r)
    one = np.ones(1, np.int64)
    time_per_batch_bounds(np.ones(1), np.ones(1), np.ones(1), one, one, one, np.zeros(1), 1, 1)
    if not interleaved:
        return
    interleaved_final(
        *tabs, g, 2, 1, 2, 2, np.ones(3), 1, np.zeros(3), 4.0, none, 0.0, 0.0, 1, 2, -1, np.inf
    )
    interleaved_bounds(*tabs, g, 1, 2, 2, np.ones(3), 1, np.zeros(3), 4.0, none, 0.0, 0.0, np.inf)
