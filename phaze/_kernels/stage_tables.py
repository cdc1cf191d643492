"""Stage tables of the placement dynamic program (docs/placement.md).

The DP runs over *upsets* of the layer DAG (a stage is ``U \\ U'`` for upsets ``U' < U``,
equivalently ``D \\ D'`` for downsets). Every layer graph is reduced to a list of
**states** ``0 ... n_states-1`` and a CSR list of **pairs** (stages):

* state ``k`` is the set of layers *not yet placed* (an upset); state 0 is every layer,
  state ``n_states-1`` is the empty set. Partners of a state have larger indices.
* ``ptr[k]:ptr[k+1]`` are the stages that can be placed first from state ``k``;
  ``partner[p]`` is the state left after placing stage ``p``.
* per stage ``p``: ``load1[p]`` (its load when it is the last stage: no recomputation
  unless ``recompute_last``), ``loadr[p]`` (its load when another stage follows it: with
  recomputation if on),
  ``max_stages[p]`` (the largest position from the end its memory allows, 0 .. n_dev),
  ``cheap[p]`` (1 if it holds no tensor-parallel layer and ``t > 1``, so it needs one
  device instead of ``t``) and ``param_bytes[p]``.
* ``rem[k]``: layers in state ``k``; ``cheap_cap[k]``: those of them that are not
  tensor-parallel when ``t > 1`` (a bound on the cheap stages that can follow), else 0.

Three table builders produce this form:

* :func:`chain_stage_tables` -- the layer graph is a chain (edges only ``i -> i+1``);
  states are suffixes, stage loads come from prefix sums (O(1) per stage);
  :func:`chain_stage_caps` computes only its memory caps.
* :func:`prefix_stage_tables` -- every consecutive pair has an edge, plus skip edges
  (the topological order is unique, so the states are still suffixes); loads by
  incremental list schedules, O(L (L + E)) in all.
* :func:`dag_stage_tables` after :func:`enumerate_downsets` -- any DAG; states are the
  complements of downsets held as ``uint64`` bitsets. The number of downsets can be
  exponential: the wrapper caps it (``MAX_DOWNSETS``) and reports a clear error.

The recurrence over these tables is in :mod:`phaze._kernels.dp`.

Training accounting (docs/placement.md, "Training accounting"): every builder takes the
per-parameter-byte state factor ``state_factor`` (2 for the paper's SGD, 3 for its Adam,
9 for mixed-precision Adam at 2-byte parameters), per-layer recomputation latencies
``recompute_s`` (the paper recomputes the whole forward: ``recompute_s = fwd_s``) and
working bytes ``work_bytes`` (paper: 0), ``recompute_last`` (the last stage recomputes
too) and ``stash_inputs`` (with recomputation a stage stashes the bytes entering it, the
paper's rule; else its activation bytes). The paper's values reproduce its tables bit for
bit.

All times in seconds, sizes in bytes, bandwidth in bytes/s; ``inf`` means infeasible and
is never an error. Kernel options as docs/architecture.md's kernel policy says; no fastmath.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from phaze._kernels import GRAPH_KINDS

__all__ = [
    "MAX_DOWNSETS",
    "chain_stage_caps",
    "chain_stage_tables",
    "dag_stage_tables",
    "enumerate_downsets",
    "interleaved_chain_tables",
    "interleaved_in_flight",
    "interleaved_stage_caps",
    "max_stages",
    "prefix_stage_tables",
    "warmup",
]

#: Largest number of downsets the general-DAG path enumerates. Tables grow with the
#: square of this number (pairs of nested downsets), so 4096 means up to ~8 M stages.
MAX_DOWNSETS = 4096


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def max_stages(const_bytes, stash_bytes, hbm_bytes, n_dev):
    """Largest position from the end a stage may take: ``const + (s-1)*stash <= hbm``.

    Returns ``n_dev`` when even ``s = n_dev`` fits, 0 when ``const > hbm``, else
    ``1 + floor((hbm - const) / stash)`` (docs/placement.md).
    """
    if not const_bytes <= hbm_bytes:
        return 0
    if stash_bytes <= 0.0 or const_bytes + (n_dev - 1) * stash_bytes <= hbm_bytes:
        return n_dev
    v = 1.0 + np.floor((hbm_bytes - const_bytes) / stash_bytes)
    if v >= n_dev:
        return n_dev
    return np.int64(v)


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _stage_memory_cap(
    param_b, act_b, work_b, edge_in_b, recompute, stash_inputs, state_factor, hbm_bytes, n_dev
):
    """:func:`max_stages` of a stage from its bytes (docs/placement.md): ``const = F P + A
    + W`` (``F`` the state factor: 2 + 1 for the paper's Adam) and the stash per later
    micro-batch in flight, the bytes on edges entering the stage with recomputation and
    ``stash_inputs``, else ``A``."""
    const = state_factor * param_b + act_b + work_b
    stash = edge_in_b if (recompute and stash_inputs) else act_b
    return max_stages(const, stash, hbm_bytes, n_dev)


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _pair_arrays(n_ptr, n_pairs, n_rem):
    """Empty stage tables: ``ptr``, per-pair ``partner, load1, loadr, maxs, cheap,
    pbytes`` and ``rem`` (see :func:`chain_stage_tables`)."""
    return (
        np.empty(n_ptr, np.int64),
        np.empty(n_pairs, np.int64),
        np.empty(n_pairs, np.float64),
        np.empty(n_pairs, np.float64),
        np.empty(n_pairs, np.int64),
        np.empty(n_pairs, np.int64),
        np.empty(n_pairs, np.float64),
        np.empty(n_rem, np.int64),
    )


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _prefix(x):
    """Prefix sums of the finite entries of ``x`` and prefix counts of the infinite ones."""
    n = x.shape[0]
    pre = np.zeros(n + 1, np.float64)
    cnt = np.zeros(n + 1, np.int64)
    for i in range(n):
        v = x[i]
        if v < np.inf:
            pre[i + 1] = pre[i] + v
            cnt[i + 1] = cnt[i]
        else:
            pre[i + 1] = pre[i]
            cnt[i + 1] = cnt[i] + 1
    return pre, cnt


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _range(pre, cnt, i, j):
    if cnt[j] > cnt[i]:
        return np.inf
    return pre[j] - pre[i]


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def chain_stage_tables(
    fwd_s,
    bwd_s,
    param_bytes,
    activation_bytes,
    tensor_parallel,
    link_max_bytes,
    link_sum_bytes,
    bandwidth_Bps,
    hbm_bytes,
    n_dev,
    t,
    recompute,
    state_factor,
    recompute_s,
    work_bytes,
    recompute_last,
    stash_inputs,
):
    """Stage tables of a chain ``0 -> 1 -> ... -> L-1``; stages ``[i, j)`` from prefix sums.

    Parameters
    ----------
    fwd_s, bwd_s, param_bytes, activation_bytes : float64 (L,)
    tensor_parallel : bool (L,)
    link_max_bytes, link_sum_bytes : float64 (L+1,)
        Largest and total bytes of the edges entering layer ``i`` from ``i-1`` (entries 0
        and L are 0). The largest sets the arrival time, the total the stashed bytes.
    bandwidth_Bps, hbm_bytes : float
    n_dev, t : int
    recompute : bool
    state_factor : float
        Bytes of weights, gradients and optimizer state per parameter byte.
    recompute_s, work_bytes : float64 (L,)
        Per layer: its recomputation latency and the working bytes a stage holding it
        needs once (the stage takes the largest).
    recompute_last, stash_inputs : bool
        The last stage recomputes too; the stash with recomputation is the stage's input
        bytes (else its activation bytes).

    Returns
    -------
    ptr (L+2,), partner, load1, loadr, max_stages, cheap, param_bytes (n_pairs,), rem,
    cheap_cap (L+1,)
        The state/pair form of the module docstring; state ``i`` = layers ``i ... L-1``.
    """
    n = fwd_s.shape[0]
    fpre, fcnt = _prefix(fwd_s)
    bpre, bcnt = _prefix(bwd_s)
    rpre, rcnt = _prefix(recompute_s)
    ppre = np.zeros(n + 1, np.float64)
    apre = np.zeros(n + 1, np.float64)
    tpre = np.zeros(n + 1, np.int64)
    for i in range(n):
        ppre[i + 1] = ppre[i] + param_bytes[i]
        apre[i + 1] = apre[i] + activation_bytes[i]
        tpre[i + 1] = tpre[i] + (1 if tensor_parallel[i] else 0)
    n_pairs = n * (n + 1) // 2
    ptr, partner, load1, loadr, maxs, cheap, pbytes, rem = _pair_arrays(n + 2, n_pairs, n + 1)
    p = 0
    for i in range(n):
        ptr[i] = p
        rem[i] = n - i
        t_in = link_max_bytes[i] / bandwidth_Bps
        wb = 0.0
        for j in range(i + 1, n + 1):
            t_out = link_max_bytes[j] / bandwidth_Bps
            f = _range(fpre, fcnt, i, j)
            b = _range(bpre, bcnt, i, j)
            fwd = t_in + f
            bwd = t_out + b
            partner[p] = j
            if recompute:
                loadr[p] = fwd + (max(_range(rpre, rcnt, i, j), t_out) + b)
            else:
                loadr[p] = fwd + bwd
            load1[p] = loadr[p] if (recompute and recompute_last) else fwd + bwd
            pb = ppre[j] - ppre[i]
            ab = apre[j] - apre[i]
            if work_bytes[j - 1] > wb:
                wb = work_bytes[j - 1]
            maxs[p] = _stage_memory_cap(
                pb,
                ab,
                wb,
                link_sum_bytes[i],
                recompute,
                stash_inputs,
                state_factor,
                hbm_bytes,
                n_dev,
            )
            cheap[p] = 1 if (t > 1 and tpre[j] == tpre[i]) else 0
            pbytes[p] = pb
            p += 1
    ptr[n] = p
    ptr[n + 1] = p
    rem[n] = 0
    return ptr, partner, load1, loadr, maxs, cheap, pbytes, rem, _suffix_cheap(tensor_parallel, t)


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def chain_stage_caps(
    param_bytes,
    activation_bytes,
    work_bytes,
    link_sum_bytes,
    hbm_bytes,
    n_dev,
    recompute,
    state_factor,
    stash_inputs,
):
    """Only the ``max_stages`` column of :func:`chain_stage_tables` (the same pairs, in
    the same order, by the same arithmetic): what changes with the state factor, for
    comparing memory caps across data-parallel degrees cheaply.

    Parameters
    ----------
    param_bytes, activation_bytes, work_bytes : float64 (L,)
    link_sum_bytes : float64 (L+1,)
    hbm_bytes : float
    n_dev : int
    recompute, stash_inputs : bool
    state_factor : float
        As in :func:`chain_stage_tables`.

    Returns
    -------
    int64 (L (L+1) / 2,)
    """
    n = param_bytes.shape[0]
    ppre = np.zeros(n + 1, np.float64)
    apre = np.zeros(n + 1, np.float64)
    for i in range(n):
        ppre[i + 1] = ppre[i] + param_bytes[i]
        apre[i + 1] = apre[i] + activation_bytes[i]
    maxs = np.empty(n * (n + 1) // 2, np.int64)
    p = 0
    for i in range(n):
        wb = 0.0
        for j in range(i + 1, n + 1):
            if work_bytes[j - 1] > wb:
                wb = work_bytes[j - 1]
            maxs[p] = _stage_memory_cap(
                ppre[j] - ppre[i],
                apre[j] - apre[i],
                wb,
                link_sum_bytes[i],
                recompute,
                stash_inputs,
                state_factor,
                hbm_bytes,
                n_dev,
            )
            p += 1
    return maxs


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def interleaved_chain_tables(
    fwd_s,
    bwd_s,
    param_bytes,
    activation_bytes,
    tensor_parallel,
    block,
    link_max_bytes,
    bandwidth_Bps,
    t,
    recompute,
    recompute_s,
    work_bytes,
    recompute_last,
    v,
):
    """Stage tables of a chain for interleaved plans of ``v`` model chunks per device
    (docs/placement.md, "Interleaved plans").

    Stage ``[i, j)`` is one device's share: its ``nb`` blocks (``block[pos]``) are cut
    into ``v`` chunks of ``nb / v`` consecutive blocks (a layer that is not a block goes
    with the chunk of the blocks before it, or the first chunk); the stage exists only
    when ``nb`` is a positive multiple of ``v``. Its load per micro-batch is the sum over
    its chunks of each chunk's chain load as :func:`chain_stage_tables` prices a stage
    (the input link, forward, the output link, backward; with recomputation the chunk's
    recomputation before its backward): every chunk receives and sends once per
    micro-batch and direction. With ``v = 1`` the loads equal
    :func:`chain_stage_tables`'s.

    Parameters
    ----------
    block : bool (L,)
        The layer is a transformer block.
    v : int
        Model chunks per device (>= 1).
    Other parameters as :func:`chain_stage_tables` (no memory arguments: the caps come
    from :func:`interleaved_stage_caps`).

    Returns
    -------
    ptr, partner, load1, loadr, max_stages, cheap, param_bytes, rem, cheap_cap
        As :func:`chain_stage_tables`, ``max_stages`` all 0 (to be replaced by
        :func:`interleaved_stage_caps`); invalid stages have infinite loads.
    act_bytes, work_bytes : float64 (n_pairs,)
        The stage's activation bytes of one micro-batch and its largest working bytes.
    valid : bool (n_pairs,)
        The stage's block count is a positive multiple of ``v``.
    """
    n = fwd_s.shape[0]
    fpre, fcnt = _prefix(fwd_s)
    bpre, bcnt = _prefix(bwd_s)
    rpre, rcnt = _prefix(recompute_s)
    ppre = np.zeros(n + 1, np.float64)
    apre = np.zeros(n + 1, np.float64)
    tpre = np.zeros(n + 1, np.int64)
    kpre = np.zeros(n + 1, np.int64)
    blockpos = np.zeros(n + 1, np.int64)
    for i in range(n):
        ppre[i + 1] = ppre[i] + param_bytes[i]
        apre[i + 1] = apre[i] + activation_bytes[i]
        tpre[i + 1] = tpre[i] + (1 if tensor_parallel[i] else 0)
        if block[i]:
            blockpos[kpre[i]] = i
            kpre[i + 1] = kpre[i] + 1
        else:
            kpre[i + 1] = kpre[i]
    n_pairs = n * (n + 1) // 2
    ptr, partner, load1, loadr, maxs, cheap, pbytes, rem = _pair_arrays(n + 2, n_pairs, n + 1)
    abytes = np.empty(n_pairs, np.float64)
    wbytes = np.empty(n_pairs, np.float64)
    valid = np.zeros(n_pairs, np.bool_)
    p = 0
    for i in range(n):
        ptr[i] = p
        rem[i] = n - i
        wb = 0.0
        for j in range(i + 1, n + 1):
            partner[p] = j
            if work_bytes[j - 1] > wb:
                wb = work_bytes[j - 1]
            pbytes[p] = ppre[j] - ppre[i]
            abytes[p] = apre[j] - apre[i]
            wbytes[p] = wb
            cheap[p] = 1 if (t > 1 and tpre[j] == tpre[i]) else 0
            maxs[p] = 0
            nb = kpre[j] - kpre[i]
            if nb < v or nb % v != 0:
                load1[p] = np.inf
                loadr[p] = np.inf
                p += 1
                continue
            valid[p] = True
            q = nb // v
            l1 = 0.0
            lr = 0.0
            a = i
            for c in range(v):
                b = j if c == v - 1 else blockpos[kpre[i] + (c + 1) * q]
                t_in = link_max_bytes[a] / bandwidth_Bps
                t_out = link_max_bytes[b] / bandwidth_Bps
                f = _range(fpre, fcnt, a, b)
                bb = _range(bpre, bcnt, a, b)
                fwd = t_in + f
                bwd = t_out + bb
                if recompute:
                    rr = fwd + (max(_range(rpre, rcnt, a, b), t_out) + bb)
                else:
                    rr = fwd + bwd
                l1 += rr if (recompute and recompute_last) else fwd + bwd
                lr += rr
                a = b
            load1[p] = l1
            loadr[p] = lr
            p += 1
    ptr[n] = p
    ptr[n + 1] = p
    rem[n] = 0
    cap = _suffix_cheap(tensor_parallel, t)
    return ptr, partner, load1, loadr, maxs, cheap, pbytes, rem, cap, abytes, wbytes, valid


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def interleaved_in_flight(k, v, n_stages, m_cap):
    """Micro-batch equivalents of activations in flight on the ``k``-th device from the
    end of ``n_stages`` with ``v`` chunks each: ``(2k - 1 + (v - 1) p) / v`` (Megatron's
    interleaved warm-up ``2 (p - r - 1) + (v - 1) p`` chunks plus the one in progress,
    each ``1 / v`` of the device's activations), at most ``m_cap``; ``k`` when
    ``v == 1``."""
    if v == 1:
        e = float(k)
    else:
        e = float(2 * k - 1 + (v - 1) * n_stages) / v
    return e if e < m_cap else m_cap


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def interleaved_stage_caps(
    param_bytes, act_bytes, work_bytes, valid, state_factor, hbm_bytes, v, n_stages, m_cap, k_max
):
    """Memory caps of interleaved stages in a plan of ``n_stages`` devices: per stage the
    largest position ``k <= k_max`` from the end with ``F P + A + W + (e(k) - 1) A <=
    hbm`` (``e`` of :func:`interleaved_in_flight`; ``F`` the state factor), 0 when none
    or the stage is not ``valid``. ``e`` grows with ``k``, so a binary search.

    Parameters
    ----------
    param_bytes, act_bytes, work_bytes : float64 (n_pairs,)
    valid : bool (n_pairs,)
        From :func:`interleaved_chain_tables`.
    state_factor, hbm_bytes : float
    v, n_stages : int
    m_cap : float
        Micro-batches per pipeline, the most that can be in flight (``inf``: no cap).
    k_max : int

    Returns
    -------
    int64 (n_pairs,)
    """
    out = np.zeros(param_bytes.shape[0], np.int64)
    for p in range(param_bytes.shape[0]):
        if not valid[p]:
            continue
        const = state_factor * param_bytes[p] + act_bytes[p] + work_bytes[p]
        stash = act_bytes[p]
        lo = 0
        hi = k_max
        while lo < hi:
            mid = (lo + hi + 1) // 2
            e = interleaved_in_flight(mid, v, n_stages, m_cap)
            if const + (e - 1.0) * stash <= hbm_bytes:
                lo = mid
            else:
                hi = mid - 1
        out[p] = lo
    return out


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _suffix_cheap(tensor_parallel, t):
    """Layers that are not tensor-parallel in each suffix (all 0 when ``t == 1``)."""
    n = tensor_parallel.shape[0]
    out = np.zeros(n + 1, np.int64)
    if t > 1:
        for i in range(n - 1, -1, -1):
            out[i] = out[i + 1] + (0 if tensor_parallel[i] else 1)
    return out


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def prefix_stage_tables(
    fwd_s,
    bwd_s,
    param_bytes,
    activation_bytes,
    tensor_parallel,
    in_ptr,
    in_src,
    in_bytes,
    out_ptr,
    out_dst,
    out_bytes,
    bandwidth_Bps,
    hbm_bytes,
    n_dev,
    t,
    recompute,
    state_factor,
    recompute_s,
    work_bytes,
    recompute_last,
    stash_inputs,
):
    """Stage tables of a DAG whose topological order is unique (chain plus skip edges).

    Stages are ``[i, j)``. Forward list schedules grow ``j`` for a fixed ``i``; backward
    ones grow ``i`` downward for a fixed ``j``. The recomputation backward, whose layers
    start no earlier than ``fwd'`` (the recomputation forward over ``recompute_s``, ignoring
    inputs from outside), is ``max(bwd, fwd' + lp)`` with ``lp`` the longest
    backward-latency path from the stage's first layer inside the stage (max-plus
    linearity of the schedule in its start floor).

    Parameters
    ----------
    in_ptr, in_src, in_bytes : CSR of in-edges by destination (src < dst).
    out_ptr, out_dst, out_bytes : CSR of out-edges by source.
    Other parameters and the returns as :func:`chain_stage_tables`.
    """
    n = fwd_s.shape[0]
    bwd_m = np.empty((n + 1, n + 1), np.float64)
    lp_m = np.empty((n + 1, n + 1), np.float64)
    fin = np.empty(n, np.float64)
    lpv = np.empty(n, np.float64)
    for j in range(1, n + 1):
        for i in range(j - 1, -1, -1):
            start = 0.0
            best = 0.0
            for e in range(out_ptr[i], out_ptr[i + 1]):
                w = out_dst[e]
                if w < j:
                    x = fin[w]
                    if lpv[w] > best:
                        best = lpv[w]
                else:
                    x = out_bytes[e] / bandwidth_Bps
                if x > start:
                    start = x
            fin[i] = start + bwd_s[i]
            lpv[i] = bwd_s[i] + best
            bwd_m[i, j] = fin[i]
            lp_m[i, j] = lpv[i]
    n_pairs = n * (n + 1) // 2
    ptr, partner, load1, loadr, maxs, cheap, pbytes, rem = _pair_arrays(n + 2, n_pairs, n + 1)
    ffin = np.empty(n, np.float64)
    fpin = np.empty(n, np.float64)
    p = 0
    for i in range(n):
        ptr[i] = p
        rem[i] = n - i
        pb = 0.0
        ab = 0.0
        wb = 0.0
        stash_in = 0.0
        any_tp = False
        for j in range(i + 1, n + 1):
            v = j - 1
            start = 0.0
            startp = 0.0
            for e in range(in_ptr[v], in_ptr[v + 1]):
                u = in_src[e]
                if u >= i:
                    x = ffin[u]
                    if fpin[u] > startp:
                        startp = fpin[u]
                else:
                    x = in_bytes[e] / bandwidth_Bps
                    stash_in += in_bytes[e]
                if x > start:
                    start = x
            ffin[v] = start + fwd_s[v]
            fpin[v] = startp + recompute_s[v]
            pb += param_bytes[v]
            ab += activation_bytes[v]
            if work_bytes[v] > wb:
                wb = work_bytes[v]
            any_tp = any_tp or tensor_parallel[v]
            fwd = ffin[v]
            bwd = bwd_m[i, j]
            partner[p] = j
            if recompute:
                loadr[p] = fwd + max(bwd, fpin[v] + lp_m[i, j])
            else:
                loadr[p] = fwd + bwd
            load1[p] = loadr[p] if (recompute and recompute_last) else fwd + bwd
            maxs[p] = _stage_memory_cap(
                pb, ab, wb, stash_in, recompute, stash_inputs, state_factor, hbm_bytes, n_dev
            )
            cheap[p] = 1 if (t > 1 and not any_tp) else 0
            pbytes[p] = pb
            p += 1
    ptr[n] = p
    ptr[n + 1] = p
    rem[n] = 0
    return ptr, partner, load1, loadr, maxs, cheap, pbytes, rem, _suffix_cheap(tensor_parallel, t)


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _popcount(words):
    c = 0
    for w in range(words.shape[0]):
        x = words[w]
        while x:
            x &= x - np.uint64(1)
            c += 1
    return c


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def enumerate_downsets(pred_bits, limit):
    """All downsets of a DAG as bitsets, sorted by size (stable).

    Parameters
    ----------
    pred_bits : uint64 (n, W)
        Bit ``u`` of row ``v`` is set when ``u -> v`` is an edge (layers in topological
        order, ``W = ceil(n / 64)``).
    limit : int
        Stop and return count -1 when there are more than ``limit`` downsets.

    Returns
    -------
    bits : uint64 (count, W), sizes : int64 (count,), count : int
        Depth-first over layers: exclude a layer, or include it when all its predecessors
        are in; each leaf is a distinct downset, so the work is O(n * count * W).
    """
    n, n_words = pred_bits.shape
    out = np.zeros((limit, n_words), np.uint64)
    cur = np.zeros(n_words, np.uint64)
    state = np.zeros(n + 1, np.int64)
    count = 0
    v = 0
    one = np.uint64(1)
    while v >= 0:
        if v == n:
            if count >= limit:
                return np.zeros((0, n_words), np.uint64), np.zeros(0, np.int64), -1
            for w in range(n_words):  # element loops: slice copies compile slowly
                out[count, w] = cur[w]
            count += 1
            v -= 1
            continue
        word = v // 64
        bit = one << np.uint64(v % 64)
        st = state[v]
        if st == 0:
            state[v] = 1
            v += 1
            state[v] = 0
        elif st == 1:
            state[v] = 2
            ok = True
            for w in range(n_words):
                if pred_bits[v, w] & ~cur[w]:
                    ok = False
                    break
            if ok:
                cur[word] |= bit
                v += 1
                state[v] = 0
        else:
            cur[word] &= ~bit
            v -= 1
    sizes = np.empty(count, np.int64)
    for k in range(count):
        sizes[k] = _popcount(out[k])
    # stable counting sort by size (sizes are 0..n)
    start = np.zeros(n + 2, np.int64)
    for k in range(count):
        start[sizes[k] + 1] += 1
    for c in range(n + 1):
        start[c + 1] += start[c]
    bits = np.empty((count, n_words), np.uint64)
    sorted_sizes = np.empty(count, np.int64)
    for k in range(count):
        to = start[sizes[k]]
        start[sizes[k]] += 1
        for w in range(n_words):
            bits[to, w] = out[k, w]
        sorted_sizes[to] = sizes[k]
    return bits, sorted_sizes, count


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _is_proper_subset(a, b):
    for w in range(a.shape[0]):
        if a[w] & ~b[w]:
            return False
    return True


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def dag_stage_tables(
    bits,
    sizes,
    fwd_s,
    bwd_s,
    param_bytes,
    activation_bytes,
    tensor_parallel,
    in_ptr,
    in_src,
    in_bytes,
    out_ptr,
    out_dst,
    out_bytes,
    bandwidth_Bps,
    hbm_bytes,
    n_dev,
    t,
    recompute,
    state_factor,
    recompute_s,
    work_bytes,
    recompute_last,
    stash_inputs,
):
    """Stage tables of a general DAG over its downsets (from :func:`enumerate_downsets`).

    State ``k`` is the upset ``V \\ bits[k]``; stage ``(k, k2)`` is ``bits[k2] \\ bits[k]``
    for ``bits[k] < bits[k2]``. Loads are list schedules over the stage's layers in
    topological order, written directly from the semantics in docs/placement.md
    (forward; backward in reverse; the recomputation backward with every start at least ``fwd'``).

    Returns the same tuple as :func:`chain_stage_tables`.
    """
    n_states = bits.shape[0]
    n = fwd_s.shape[0]
    n_pairs = np.int64(0)  # not Literal[int](0): _pair_arrays compiles once
    for k in range(n_states):
        for k2 in range(k + 1, n_states):
            if sizes[k2] > sizes[k] and _is_proper_subset(bits[k], bits[k2]):
                n_pairs += 1
    ptr, partner, load1, loadr, maxs, cheap, pbytes, rem = _pair_arrays(
        n_states + 1, n_pairs, n_states
    )
    inside = np.zeros(n, np.bool_)
    fin = np.empty(n, np.float64)
    fin_p = np.empty(n, np.float64)
    fin_b = np.empty(n, np.float64)
    fin_r = np.empty(n, np.float64)
    one = np.uint64(1)
    p = 0
    for k in range(n_states):
        ptr[k] = p
        rem[k] = n - sizes[k]
        for k2 in range(k + 1, n_states):
            if not (sizes[k2] > sizes[k] and _is_proper_subset(bits[k], bits[k2])):
                continue
            first = -1
            last = -1
            pb = 0.0
            ab = 0.0
            wb = 0.0
            any_tp = False
            for v in range(n):
                word = v // 64
                bit = one << np.uint64(v % 64)
                inside[v] = (bits[k2, word] & bit) != 0 and (bits[k, word] & bit) == 0
                if inside[v]:
                    if first < 0:
                        first = v
                    last = v
                    pb += param_bytes[v]
                    ab += activation_bytes[v]
                    if work_bytes[v] > wb:
                        wb = work_bytes[v]
                    any_tp = any_tp or tensor_parallel[v]
            stash_in = 0.0
            for v in range(first, last + 1):
                if not inside[v]:
                    continue
                start = 0.0
                startp = 0.0
                for e in range(in_ptr[v], in_ptr[v + 1]):
                    u = in_src[e]
                    if inside[u]:
                        x = fin[u]
                        if fin_p[u] > startp:
                            startp = fin_p[u]
                    else:
                        x = in_bytes[e] / bandwidth_Bps
                        stash_in += in_bytes[e]
                    if x > start:
                        start = x
                fin[v] = start + fwd_s[v]
                fin_p[v] = startp + recompute_s[v]
            fwd = fin[last]
            floor = fin_p[last]
            for v in range(last, first - 1, -1):
                if not inside[v]:
                    continue
                start = 0.0
                start_r = floor
                for e in range(out_ptr[v], out_ptr[v + 1]):
                    w = out_dst[e]
                    if inside[w]:
                        x = fin_b[w]
                        xr = fin_r[w]
                    else:
                        x = out_bytes[e] / bandwidth_Bps
                        xr = x
                    if x > start:
                        start = x
                    if xr > start_r:
                        start_r = xr
                fin_b[v] = start + bwd_s[v]
                fin_r[v] = start_r + bwd_s[v]
            partner[p] = k2
            loadr[p] = fwd + (fin_r[first] if recompute else fin_b[first])
            load1[p] = loadr[p] if (recompute and recompute_last) else fwd + fin_b[first]
            maxs[p] = _stage_memory_cap(
                pb, ab, wb, stash_in, recompute, stash_inputs, state_factor, hbm_bytes, n_dev
            )
            cheap[p] = 1 if (t > 1 and not any_tp) else 0
            pbytes[p] = pb
            p += 1
    ptr[n_states] = p
    cheap_cap = np.zeros(n_states, np.int64)
    if t > 1:
        for k in range(n_states):
            for v in range(n):
                if not tensor_parallel[v] and (bits[k, v // 64] & (one << np.uint64(v % 64))) == 0:
                    cheap_cap[k] += 1
    return ptr, partner, load1, loadr, maxs, cheap, pbytes, rem, cheap_cap


def tiny_tables() -> tuple:
    """Stage tables of a two-layer chain, for warming up the DP."""
    f = np.array([1.0, 2.0])
    z = np.zeros(2)
    link = np.zeros(3)
    return chain_stage_tables(
        f,
        f,
        z,
        z,
        np.array([True, False]),
        link,
        link,
        1.0,
        1.0,
        2,
        2,
        True,
        2.0,
        f,
        z,
        False,
        True,
    )


def warmup(graph_kinds=GRAPH_KINDS, interleaved: bool = True) -> None:
    """Compile (or load from numba's cache) the kernels of this module on a tiny input:
    the chain kernels always, the others for the graph shapes in ``graph_kinds`` (a
    joint search places chains only; the general-DAG kernels take about half of this
    module's compile time) and the interleaved-plan kernels when ``interleaved``.

    Call in the parent process before starting workers.
    """
    f = np.array([1.0, 2.0])
    z = np.zeros(2)
    tp = np.array([True, False])
    tiny_tables()
    in_ptr = np.array([0, 0, 1], np.int64)
    src = np.array([0], np.int64)
    eb = np.ones(1)
    out_ptr = np.array([0, 1, 1], np.int64)
    dst = np.array([1], np.int64)
    extra = (2.0, f, z, False, True)  # state factor, recompute_s, work_bytes, flags
    chain_stage_caps(f, f, z, np.zeros(3), 1.0, 2, True, 2.0, True)
    if interleaved:
        it = interleaved_chain_tables(f, f, z, z, tp, tp, np.zeros(3), 1.0, 2, True, f, z, True, 1)
        interleaved_stage_caps(it[6], it[9], it[10], it[11], 2.0, 1.0, 1, 2, np.inf, 2)
        interleaved_in_flight(2, 2, 2, np.inf)  # also called from Python (report plans)
    if "prefix" in graph_kinds:
        prefix_stage_tables(
            f, f, z, z, tp, in_ptr, src, eb, out_ptr, dst, eb, 1.0, 1.0, 2, 2, True, *extra
        )
    if "dag" in graph_kinds:
        pred = np.zeros((2, 1), np.uint64)
        pred[1, 0] = np.uint64(1)
        bits, sizes, _ = enumerate_downsets(pred, 8)
        dag_stage_tables(
            bits,
            sizes,
            f,
            f,
            z,
            z,
            tp,
            in_ptr,
            src,
            eb,
            out_ptr,
            dst,
            eb,
            1.0,
            1.0,
            2,
            2,
            True,
            *extra,
        )
