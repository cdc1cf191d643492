"""The placement of many architectures that share one layer chain (a search's inner loop).

:func:`prepare_chain` checks and prepares once what does not depend on the layer
latencies, HBM size or recomputation; :func:`place_chain` then solves one architecture's
placement with the kernels of :mod:`phaze._kernels.stage_tables` and
:mod:`phaze._kernels.dp`, with the same result as :func:`~phaze.placement.place_arrays`
on the same arrays (docs/search.md, "Placements shared between architectures").
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from phaze._kernels import dp as _dp
from phaze._kernels import stage_tables as _st
from phaze.errors import ConfigError
from phaze.placement.data_parallel import (
    DataParallelTerms,
    chain_first_backward,
    solve_over_d,
)
from phaze.placement.interleave import interleaved_stages, solve_interleaved
from phaze.placement.problem import dp_allreduce_arrays
from phaze.placement.solve import (
    ArrayPlacement,
    _bottleneck_stage,
    _chain_link_bytes,
    _effective_width,
    graph_kind,
    place_arrays,
)
from phaze.systems.network import Network

__all__ = ["ChainPlacement", "place_chain", "prepare_chain"]


class ChainPlacement(NamedTuple):
    """What :func:`place_chain` needs that does not depend on the layer latencies, HBM
    size or recomputation: per tensor width, the contiguous layer arrays, the bytes on
    the links entering each layer and the data-parallel all-reduce prices
    (:func:`prepare_chain`, checked once)."""

    widths: tuple[int, ...]
    param_bytes: tuple[np.ndarray, ...]
    activation_bytes: tuple[np.ndarray, ...]
    tensor_parallel: tuple[np.ndarray, ...]
    link_max_bytes: tuple[np.ndarray, ...]
    link_sum_bytes: tuple[np.ndarray, ...]
    t_eff: tuple[int, ...]
    n_cheap: tuple[int, ...]
    devices: int
    link_bandwidth_Bps: float
    num_micro_batches: int
    state_factor: float
    dp_bandwidth_Bps: tuple[np.ndarray, ...]
    dp_latency_s: tuple[np.ndarray, ...]
    zeros: np.ndarray


def prepare_chain(
    widths,
    param_bytes,
    activation_bytes,
    tensor_parallel,
    edge_src,
    edge_dst,
    edge_bytes,
    *,
    devices: int,
    link_bandwidth_Bps: float,
    num_micro_batches: int,
    adam: bool,
    state_factor: float | None = None,
    network: Network | None = None,
) -> ChainPlacement:
    """Check and prepare once what many :func:`place_chain` calls share (a search places
    many architectures with the same layers, cluster and micro-batch size).

    Arguments as :func:`place_arrays`; the layer graph must be a chain
    (:func:`graph_kind`). ``state_factor`` (default from ``adam``) is the one a later
    :func:`place_chain` call uses unless it passes its own.

    Raises
    ------
    ConfigError
        As :func:`place_arrays`, or a layer graph that is not a chain.

    Examples
    --------
    >>> prep = prepare_chain([1], [[1.0, 1.0]], [[1.0, 1.0]], [False, False], [0], [1],
    ...     [0.0], devices=2, link_bandwidth_Bps=1.0, num_micro_batches=4, adam=False)
    >>> r = place_chain(prep, np.array([[1.0, 1.0]]), np.array([[2.0, 2.0]]),
    ...     hbm_bytes=4.0, recompute=False)
    >>> r.num_stages, r.time_per_batch_s
    (2, 15.0)
    """
    widths = list(widths)
    w = np.asarray(param_bytes, dtype=np.float64)
    n = w.shape[-1] if w.ndim else 0
    zeros = np.zeros((len(widths), max(n, 1)))
    # one validation path: place_arrays checks every argument (on zero latencies)
    res = place_arrays(
        widths,
        zeros,
        zeros,
        param_bytes,
        activation_bytes,
        tensor_parallel,
        edge_src,
        edge_dst,
        edge_bytes,
        devices=devices,
        link_bandwidth_Bps=link_bandwidth_Bps,
        hbm_bytes=math.inf,
        num_micro_batches=num_micro_batches,
        recompute=False,
        adam=adam,
        state_factor=state_factor,
        network=network,
    )
    del res
    if state_factor is None:
        state_factor = 3.0 if adam else 2.0
    widths = tuple(int(t) for t in widths)
    n_w = len(widths)
    src = np.ascontiguousarray(edge_src, dtype=np.int64)
    dst = np.ascontiguousarray(edge_dst, dtype=np.int64)
    if graph_kind(src, dst, n) != "chain":
        raise ConfigError("prepare_chain needs a chain layer graph (edges i -> i+1 only)")

    def rows(x, dtype, m):
        a = np.asarray(x, dtype=dtype)
        a = np.broadcast_to(a, (n_w, m)) if a.ndim == 1 else a
        return tuple(np.require(a[i], dtype=dtype, requirements="CW") for i in range(n_w))

    pb = rows(param_bytes, np.float64, n)
    ab = rows(activation_bytes, np.float64, n)
    tp = rows(tensor_parallel, np.bool_, n)
    eb = rows(edge_bytes, np.float64, src.shape[0])
    link_max, link_sum, t_eff, n_cheap, dp_bw, dp_lat = [], [], [], [], [], []
    for i, t in enumerate(widths):
        lmax, lsum = _chain_link_bytes(src, dst, eb[i], n)
        link_max.append(lmax)
        link_sum.append(lsum)
        te, nc = _effective_width(t, tp[i], n, int(devices))
        t_eff.append(te)
        n_cheap.append(nc)
        bw, lat = dp_allreduce_arrays(
            network, float(link_bandwidth_Bps), te, min(int(devices), int(num_micro_batches))
        )
        dp_bw.append(bw)
        dp_lat.append(lat)
    return ChainPlacement(
        widths,
        pb,
        ab,
        tp,
        tuple(link_max),
        tuple(link_sum),
        tuple(t_eff),
        tuple(n_cheap),
        int(devices),
        float(link_bandwidth_Bps),
        int(num_micro_batches),
        float(state_factor),
        tuple(dp_bw),
        tuple(dp_lat),
        np.zeros(n),
    )


def place_chain(
    prep: ChainPlacement,
    fwd_s: np.ndarray,
    bwd_s: np.ndarray,
    *,
    hbm_bytes: float,
    recompute: bool,
    activation_bytes: np.ndarray | None = None,
    state_factor: float | None = None,
    recompute_s: np.ndarray | None = None,
    work_bytes: np.ndarray | None = None,
    recompute_last: bool = False,
    stash_inputs: bool = True,
    dp_terms: DataParallelTerms | None = None,
    interleaves: tuple[int, ...] = (1,),
    block_mask: np.ndarray | None = None,
) -> ArrayPlacement:
    """:func:`place_arrays` of a prepared chain (:func:`prepare_chain`), without checking
    the latencies again: the search's hot path.

    Parameters
    ----------
    prep : ChainPlacement
    fwd_s, bwd_s : float64 (W, n)
        Layer latencies per width (``>= 0``, ``inf`` allowed), as the layer scheduler
        returns them; not checked (only made float64 C-contiguous).
    hbm_bytes : float
    recompute : bool
    activation_bytes, recompute_s, work_bytes : float64 (W, n), C-contiguous, optional
        Training-accounting overrides as in :func:`place_arrays` (defaults: the prepared
        activation bytes, ``fwd_s``, zeros); not checked.
    state_factor : float, optional
        Default: the prepared one.
    recompute_last, stash_inputs : bool
        As in :func:`place_arrays`.
    dp_terms : phaze.placement.DataParallelTerms, optional
        As in :func:`place_arrays` (checked there; here only against the state factor).
    interleaves : tuple of int
        Candidate model chunks per device ``v`` (docs/placement.md, "Interleaved plans";
        not checked): 1 is the plans above, ``v > 1`` interleaved plans
        (:mod:`phaze.placement.interleave`; they need ``stash_inputs=False``). Ties go
        to the smaller ``v``.
    block_mask : bool (W, n), optional
        Which layers are transformer blocks (needed when some ``v > 1``).

    Returns
    -------
    ArrayPlacement
        The same as :func:`place_arrays` on the same arguments (with ``interleaves``
        ``(1,)``), with the chosen ``interleave``.
    """
    factor = prep.state_factor if state_factor is None else float(state_factor)
    n_w = len(prep.widths)
    # one kernel specialisation: float64, C-contiguous, writeable (no copy if already so)
    fwd_s = np.require(fwd_s, np.float64, "CW")
    bwd_s = np.require(bwd_s, np.float64, "CW")
    times = np.full(n_w, np.inf)
    kept = None
    best_t, k = math.inf, -1
    terms = DataParallelTerms() if dp_terms is None else dp_terms
    terms.check(factor)

    def act(i: int) -> np.ndarray:  # width i's activation bytes, the prepared ones by default
        return prep.activation_bytes[i] if activation_bytes is None else activation_bytes[i]

    def work(i: int) -> np.ndarray:
        return prep.zeros if work_bytes is None else work_bytes[i]

    def rec(i: int) -> np.ndarray:
        return fwd_s[i] if recompute_s is None else recompute_s[i]

    for i in range(n_w):

        def tables_at(f: float, i: int = i) -> tuple:
            return _st.chain_stage_tables(
                fwd_s[i],
                bwd_s[i],
                prep.param_bytes[i],
                act(i),
                prep.tensor_parallel[i],
                prep.link_max_bytes[i],
                prep.link_sum_bytes[i],
                prep.link_bandwidth_Bps,
                hbm_bytes,
                prep.devices,
                prep.t_eff[i],
                recompute,
                f,
                rec(i),
                work(i),
                recompute_last,
                stash_inputs,
            )

        dp_args = (
            prep.devices,
            prep.num_micro_batches,
            prep.dp_bandwidth_Bps[i],
            prep.t_eff[i],
            prep.n_cheap[i],
            prep.dp_latency_s[i],
        )
        res = (math.inf,)  # no plan of v = 1 when 1 is not a candidate
        if 1 in interleaves and terms.is_paper:
            tabs = tables_at(factor)
            none = np.zeros(0)
            res = _dp.dp_solve(
                *tabs, *dp_args, 4.0, none, 0.0, 0.0, 1, prep.devices, math.inf, none
            )
        elif 1 in interleaves:

            def caps_at(f: float, i: int = i) -> np.ndarray:  # tables_at(f)[4], cheaper
                return _st.chain_stage_caps(
                    prep.param_bytes[i],
                    act(i),
                    work(i),
                    prep.link_sum_bytes[i],
                    hbm_bytes,
                    prep.devices,
                    recompute,
                    f,
                    stash_inputs,
                )

            tabs, res = solve_over_d(
                tables_at,
                dp_args,
                factor,
                terms,
                overlap_s=lambda tabs, i=i: chain_first_backward(tabs, bwd_s[i]),
                caps=caps_at,
            )
        v_here = 1
        # the plain 1F1B recurrence bounds every interleaved plan when the caps do not
        # depend on d (phaze.placement.interleave)
        relaxed = None
        if res[0] < math.inf and not terms.sharded_state_factor:
            # an interleaved stage at position k holds e >= k + 1/v micro-batches (p >= 2;
            # e = k only for k = p = m): A / v more than 1F1B there, far beyond the
            # rounding of max_stages's floor against the interleaved caps' comparison
            relaxed = (tabs, res[5])
        for v in sorted(interleaves):
            if v == 1:
                continue

            def build(i: int = i, v: int = int(v)) -> tuple:
                return _st.interleaved_chain_tables(
                    fwd_s[i],
                    bwd_s[i],
                    prep.param_bytes[i],
                    act(i),
                    prep.tensor_parallel[i],
                    np.require(block_mask[i], np.bool_, "CW"),
                    prep.link_max_bytes[i],
                    prep.link_bandwidth_Bps,
                    prep.t_eff[i],
                    recompute,
                    rec(i),
                    work(i),
                    recompute_last,
                    v,
                )

            tabs_v, res_v = solve_interleaved(
                build,
                int(v),
                dp_args,
                hbm_bytes,
                factor,
                terms,
                overlap_s=lambda tabs, i=i: chain_first_backward(tabs, bwd_s[i]),
                bound_s=float(res[0]),  # only strictly faster plans can win
                relaxed=relaxed,
            )
            if res_v[0] < res[0]:  # strictly smaller wins: ties go to the smaller v
                tabs, res, v_here = tabs_v, res_v, int(v)
        times[i] = res[0]
        if res[0] < best_t:  # strictly smaller wins: ties go to the smaller width
            best_t, k, kept = res[0], i, (tabs, res, v_here)
    if k < 0:
        return ArrayPlacement(math.inf, 0, 0, 0, bottleneck_stage=-1, width_times_s=times)
    tabs, (tm, d, p, s, r, g), v_best = kept
    pairs = _dp.reconstruct(*tabs, g, p, s, r).tolist()
    stages = ()
    if v_best > 1:
        stages = interleaved_stages(
            tabs,
            pairs,
            v_best,
            int(d),
            prep.num_micro_batches,
            factor,
            terms,
            activation_bytes=act(k),
            work_bytes=work(k),
        )
    bottleneck = _bottleneck_stage(tabs[2], tabs[3], pairs, recompute, s)
    first = int(np.searchsorted(tabs[0], pairs[-1], side="right") - 1)
    last = tuple(range(first, int(tabs[1][pairs[-1]])))
    return ArrayPlacement(
        float(tm),
        prep.widths[k],
        int(d),
        int(s),
        bottleneck_stage=bottleneck,
        width_times_s=times,
        last_stage_layers=last,
        interleave=v_best,
        stages=stages,
    )
