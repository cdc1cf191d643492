"""Interleaved plans in the placement DP: ``v`` model chunks per device (docs/placement.md,
"Interleaved plans").

A plan of ``p`` devices per pipeline is the DP's contiguous split; with interleave
``v > 1`` each device's blocks are cut into ``v`` equal chunks
(:func:`phaze._kernels.stage_tables.interleaved_chain_tables`), run in Megatron's
interleaved 1F1B schedule: ``(v m + p - 1) / v`` times the slowest device's load per
micro-batch, ``m`` a multiple of ``p``, ``p >= 2``. Device ``k``-th from the end holds
``(2k - 1 + (v - 1) p) / v`` micro-batches of activations (at most ``m``), so its memory
cap depends on ``p`` as well as ``k``, and on ``d`` through ``m`` and the sharded state.

:func:`solve_interleaved` keeps the optimum exact. The in-flight count is at least
``k`` (``(2k - 1 + (v - 1) p) / v - k = ((v - 1)(p - k) + k - 1) / v >= 0``, and the cap
``m >= p >= k``), the count of the plain 1F1B schedule, and the state is least at the
largest ``d``: one recurrence with those caps (1F1B's at the largest ``d``) bounds every
interleaved plan, per stage count ``p`` (the final round of every ``d``). Then, per ``p``
in order of that bound (while the bound can beat the incumbent), the recurrence runs
again at the caps of that ``p``, once for the degrees ``d`` with ``m > p`` and once for
those with ``m == p`` (and, with the distributed optimizer, once per interval of ``d``
with equal caps), each followed by the final round over those degrees only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from phaze._kernels import dp as _dp
from phaze._kernels import stage_tables as _st
from phaze.placement.data_parallel import DataParallelTerms, _cap_interval, state_factor_at

__all__ = ["interleaved_stages", "solve_interleaved"]


def _degrees(n_stages: int, micro_batches: int, d_max: int, capped: bool) -> list[int]:
    """The degrees ``d`` whose ``m = ceil(M / d)`` is a multiple of ``n_stages`` and
    equals it (``capped``) or exceeds it."""
    d = np.arange(1, d_max + 1)
    m = -(-micro_batches // d)
    return d[(m % n_stages == 0) & ((m == n_stages) == capped)].tolist()


def solve_interleaved(
    build: Callable[[], tuple],
    v: int,
    dp_args: tuple,
    hbm_bytes: float,
    state_factor: float,
    terms: DataParallelTerms,
    overlap_s: Callable[[tuple], np.ndarray] | None = None,
    counters: dict | None = None,
    bound_s: float = math.inf,
    relaxed: tuple | None = None,
) -> tuple[tuple, tuple]:
    """The best interleaved plan with ``v`` chunks per device (module docstring).

    Parameters
    ----------
    build : callable
        ``build()`` -> :func:`phaze._kernels.stage_tables.interleaved_chain_tables` of
        the chain at ``v`` (12 arrays); called only when some stage count can win.
    v : int
        Chunks per device, ``>= 2``.
    dp_args : tuple
        ``(n_dev, micro_batches, dp_bandwidth_Bps, t, n_cheap, dp_latency_s)`` as
        :func:`phaze.placement.data_parallel.solve_over_d`.
    hbm_bytes, state_factor : float
        HBM per device; state bytes per parameter byte at ``d = 1``.
    terms : DataParallelTerms
    overlap_s : callable, optional
        ``overlap_s(tables)`` -> per stage the backward seconds the synchronisation may
        hide behind (needed when ``terms.overlap_dp``).
    counters : dict, optional
        Receives ``recurrences`` (runs of the recurrence), added to what it holds.
    bound_s : float
        Only plans strictly faster count (the caller's incumbent; ``inf``: none): stage
        counts whose bound is not below it are never solved.
    relaxed : (tables, g), optional
        Plain 1F1B stage tables of the same chain and their recurrence at the least state
        the plans can have (no sharded state): loads never above the interleaved ones,
        caps never below, so they bound every interleaved plan, and the bounds need no
        interleaved tables (default: such a recurrence on the interleaved loads).

    Returns
    -------
    (tables, result)
        The 9 stage tables (caps of the winning run) and ``(time, d, p, s, r, g)`` as
        :func:`phaze._kernels.dp.dp_solve` returns them; time ``inf`` when nothing fits.
    """
    n_dev, micro_batches, dp_bw, t, n_cheap, dp_lat = dp_args
    d_max = min(n_dev, micro_batches)
    none = np.zeros(0)
    sharded = terms.sharded_state_factor
    base: tuple = ()

    def factor_at(d: int) -> float:
        return state_factor_at(state_factor, sharded, d) if sharded else float(state_factor)

    def tables(f: float, n_stages: int, m_cap: float, k_max: int, w: int = v) -> tuple:
        nonlocal base
        if not base:
            base = build()
        caps = _st.interleaved_stage_caps(
            base[6], base[9], base[10], base[11], f, hbm_bytes, w, n_stages, m_cap, k_max
        )
        return (*base[:4], caps, *base[5:9])

    def recurrence(tabs: tuple) -> np.ndarray:
        if counters is not None:
            counters["recurrences"] = counters.get("recurrences", 0) + 1
        res = _dp.dp_solve(
            *tabs, n_dev, micro_batches, dp_bw, t, n_cheap, dp_lat, 4.0, none, 0.0, 0.0,
            1, 0, math.inf, none,
        )  # fmt: skip
        return res[5]

    # the same stage layout (pairs of the chain) in every table: one overlap array
    over = none
    if terms.overlap_dp:
        over = np.require(
            overlap_s(relaxed[0] if relaxed else tables(1.0, 2, 1.0, 1)), np.float64, "CW"
        )
    step, step_sharded = terms.step_s_per_B, terms.step_sharded_s_per_B

    def final(tabs, g, n_stages, d_lo, d_hi, m_class, bound):
        return _dp.interleaved_final(
            *tabs, g, n_stages, v, n_dev, micro_batches, dp_bw, t, dp_lat,
            terms.sync_factor, over, step, step_sharded, d_lo, d_hi, m_class, bound,
        )  # fmt: skip

    infeasible = ((), (math.inf, -1, -1, -1, -1, np.zeros((1, 1, 1))))
    if d_max < 1 or n_dev < 2:
        return infeasible

    def bounds_of(loose: tuple, g_loose: np.ndarray) -> dict:
        per_s = _dp.interleaved_bounds(
            *loose, g_loose, v, n_dev, micro_batches, dp_bw, t, dp_lat, terms.sync_factor,
            over, step, step_sharded, float(bound_s),
        )  # fmt: skip
        return {int(s): float(per_s[s]) for s in np.flatnonzero(per_s < math.inf)}

    if relaxed is not None and not bounds_of(*relaxed):  # no stage count can win
        if counters is not None:
            counters["skipped"] = counters.get("skipped", 0) + 1
        return infeasible
    # looser caps than any plan's: k micro-batches in flight at position k (never more
    # than interleaved: (2k - 1 + (v - 1) p) / v >= k, and m >= p >= k), the least state,
    # on the interleaved loads
    loose = tables(factor_at(d_max), 2, math.inf, n_dev, w=1)
    bounds = bounds_of(loose, recurrence(loose))
    best_t, best = math.inf, infeasible
    best_key = (math.inf, math.inf)
    for n_stages in sorted(bounds, key=lambda s: (bounds[s], s)):
        if bounds[n_stages] > best_t:
            break
        for capped in (False, True):
            ds = _degrees(n_stages, micro_batches, d_max, capped)
            m_cap = float(n_stages) if capped else math.inf
            while ds:
                d0 = ds[0]
                if sharded:

                    def caps(e: int, s=n_stages, mc=m_cap) -> np.ndarray:
                        return tables(factor_at(e), s, mc, s)[4]

                    here = caps(d0)
                    hi = _cap_interval(lambda e, c=here: np.array_equal(caps(e), c), d0, ds[-1])[1]
                else:
                    hi = ds[-1]
                tabs = tables(factor_at(d0), n_stages, m_cap, n_stages)
                ds = [d for d in ds if d > hi]
                g = recurrence(tabs)
                tm, d, p, r = final(tabs, g, n_stages, d0, hi, 1 if capped else 0, bound_s)
                key = (tm, n_stages)
                if tm < math.inf and key < best_key:
                    best_key, best_t = key, tm
                    best = (tabs, (tm, d, p, n_stages, r, g))
    return best


def interleaved_stages(
    tabs: tuple,
    pairs: list[int],
    v: int,
    d: int,
    micro_batches: int,
    state_factor: float,
    terms: DataParallelTerms,
    activation_bytes: np.ndarray,
    work_bytes: np.ndarray,
) -> tuple[tuple[int, int, float, float], ...]:
    """Per stage of an interleaved plan (pipeline order) ``(first position, end position,
    load_s, memory_bytes)``: the load per micro-batch from the tables (the last stage's
    ``load1``, the others' ``loadr``) and the memory ``F P + A + W + (e - 1) A`` at the
    plan's ``d`` (module docstring)."""
    ptr, partner, load1, loadr = tabs[:4]
    pbytes = tabs[6]
    p = len(pairs)
    m = -(-micro_batches // d)
    f = state_factor
    if terms.sharded_state_factor:
        f = state_factor_at(state_factor, terms.sharded_state_factor, d)
    out = []
    for q, pair in enumerate(pairs):
        first = int(np.searchsorted(ptr, pair, side="right") - 1)
        end = int(partner[pair])
        act = float(activation_bytes[first:end].sum())
        work = float(work_bytes[first:end].max())
        e = float(_st.interleaved_in_flight(p - q, v, p, float(m)))
        memory = f * float(pbytes[pair]) + act + work + (e - 1.0) * act
        load = float(load1[pair] if q == p - 1 else loadr[pair])
        out.append((first, end, load, memory))
    return tuple(out)
