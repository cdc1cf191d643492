"""``schedule_layer``: one layer's least-latency schedule on one accelerator."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from phaze._kernels import schedule as _ks
from phaze.errors import ConfigError
from phaze.schedule._bounds import dag_arrays, list_schedule, lower_bound
from phaze.schedule._enumerate import enumerate_exact
from phaze.schedule._ilp import solve_ilp
from phaze.schedule._problem import Dag, Problem, make_problem
from phaze.schedule._result import IlpStat, LayerSchedule, ScheduleCache, build_schedule

__all__ = [
    "METHODS",
    "SegResult",
    "decompose",
    "finish_segment",
    "schedule_layer",
    "segment_key",
    "solve_segment",
]

#: ``method`` values of :func:`schedule_layer`.
METHODS = ("auto", "ilp", "enumerate")
#: Segments of at most this many operators are solved by enumeration first.
ENUM_MAX_OPS = 8
#: Enumeration tree nodes before a segment falls back to the ILP (still exact).
ENUM_NODE_LIMIT = 50_000
#: Bounds "meet" when they differ by at most this relative amount: both are sums of the same
#: latencies in different orders, so equal values can differ by a few ulps.
CLOSE_RTOL = 1e-12
_RANK = {"chain": 0, "bounds": 1, "enumeration": 2, "ilp": 3}


def closed(lb: float, ub: float) -> bool:
    """Whether a lower bound ``lb`` proves ``ub`` optimal (up to rounding)."""
    return ub - lb <= CLOSE_RTOL * ub


@dataclass(frozen=True, slots=True)
class SegResult:
    """A solved segment (local operator indices)."""

    makespan: float
    modes: tuple[int, ...]
    starts: tuple[float, ...]
    optimal: bool
    lower_bound: float
    method: str


def decompose(dag: Dag, cache: ScheduleCache | None = None) -> tuple:
    """Series decomposition: a tuple of ``("cut", op)`` and ``("seg", ops)`` in time order.

    A *cut* operator is ordered against every other operator, so every other operator
    finishes before it starts or starts after it ends; the operators between two
    consecutive cuts form a *segment*, and the makespan is the sum of the cuts' latencies
    and the segments' makespans.
    """
    key = ("decompose", dag.n, dag.edges)
    if cache is not None and key in cache.structures:
        return cache.structures[key]
    cuts = dag.cut_nodes()
    cutset = 0
    for c in cuts:
        cutset |= 1 << c
    groups: list[list[int]] = [[] for _ in range(len(cuts) + 1)]
    for i in dag.topo:
        if not cutset >> i & 1:
            groups[(dag.anc[i] & cutset).bit_count()].append(i)
    seq: list = []
    for k in range(len(cuts) + 1):
        if groups[k]:
            seq.append(("seg", tuple(groups[k])))
        if k < len(cuts):
            seq.append(("cut", cuts[k]))
    out = tuple(seq)
    if cache is not None:
        cache.structures[key] = out
    return out


def _record(cache: ScheduleCache, prob: Problem, res) -> None:
    if res.status in ("TRIVIAL", "NO_BINARIES"):
        return  # CBC was not called
    cache.solved += 1
    cache.ilp_stats.append(
        IlpStat(prob.n, res.n_vars, res.n_constraints, res.seconds, res.status, res.optimal)
    )


def segment_key(dag: Dag, kinds, l1_la: bytes, cap, time_limit_s: float, gap: float) -> tuple:
    """Memo key of a segment instance: structure, kinds, the latencies (``l1`` then ``la``,
    float64 bytes), effective capacities and solver settings."""
    return ("seg", dag.n, dag.edges, tuple(kinds), l1_la, tuple(cap), time_limit_s, gap)


def finish_segment(
    prob: Problem, cache: ScheduleCache, row, *, time_limit_s: float, gap: float
) -> SegResult:
    """A :class:`SegResult` from one column of :func:`phaze._kernels.schedule.solve_columns`
    (``row`` = makespan, lower bound, status, modes, starts); CBC for an open status."""
    ms, lb, status, modes, starts = row
    if status == _ks.ST_BOUNDS:
        cache.bound_closed += 1
        res = SegResult(ms, modes, starts, True, lb, "bounds")
    elif status == _ks.ST_ENUMERATED:
        cache.enumerated += 1
        res = SegResult(ms, modes, starts, True, min(lb, ms), "enumeration")
    else:
        r = solve_ilp(prob, ms, modes, starts, time_limit_s=time_limit_s, gap=gap)
        _record(cache, prob, r)
        best_lb = max(lb, r.bound_s)
        opt = r.optimal or closed(best_lb, r.makespan)
        res = SegResult(r.makespan, r.modes, r.starts, opt, min(best_lb, r.makespan), "ilp")
    if not res.optimal:
        cache.not_optimal += 1
    return res


def solve_segment(
    prob: Problem, cache: ScheduleCache, *, time_limit_s: float, gap: float
) -> SegResult:
    """Exact least makespan of a (small, parallel) segment: bounds, then enumeration, then
    CBC. Memoised in ``cache`` on the instance and the solver settings."""
    l1 = np.array(prob.l1, dtype=np.float64)
    la = np.array(prob.la, dtype=np.float64)
    key = segment_key(
        prob.dag, prob.kinds, l1.tobytes() + la.tobytes(), prob.cap, time_limit_s, gap
    )
    hit = cache.segments.get(key)
    if hit is not None:
        cache.segment_hits += 1
        return hit
    ms, lb, status, modes, starts = _ks.solve_columns(
        *dag_arrays(prob.dag, prob.kinds),
        l1.reshape(-1, 1),
        la.reshape(-1, 1),
        np.array(prob.cap[:1], dtype=np.int64),
        np.array(prob.cap[1:2], dtype=np.int64),
        ENUM_MAX_OPS,
        ENUM_NODE_LIMIT,
        CLOSE_RTOL,
    )
    row = (
        float(ms[0]),
        float(lb[0]),
        int(status[0]),
        tuple(modes[0].tolist()),
        tuple(starts[0].tolist()),
    )
    res = finish_segment(prob, cache, row, time_limit_s=time_limit_s, gap=gap)
    cache.segments[key] = res
    return res


def shift(rel_starts, durs, offset: float, rank) -> list[float]:
    """Move a schedule by ``offset`` keeping its orders exact in floating point.

    ``offset + s`` rounds, so an operator that starts exactly when another ends could
    overlap it by an ulp after a plain shift. Every start of a schedule built here is 0 or
    the finish of another operator, so each start is rebuilt as the latest shifted finish
    of the operators that end by it (``rank``: topological position, for zero-length ties).
    """
    k = len(rel_starts)
    rel_fin = [rel_starts[q] + durs[q] for q in range(k)]
    order = sorted(range(k), key=lambda q: (rel_starts[q], durs[q] > 0.0, rank[q]))
    out = [0.0] * k
    done: list[int] = []
    for q in order:
        st = offset
        for o in done:
            if rel_fin[o] <= rel_starts[q] and out[o] + durs[o] > st:
                st = out[o] + durs[o]
        out[q] = st
        done.append(q)
    return out


def _check_settings(time_limit_s, gap, method) -> None:
    if not (
        isinstance(time_limit_s, (int, float)) and math.isfinite(time_limit_s) and time_limit_s > 0
    ):
        raise ConfigError(
            f"time_limit_s={time_limit_s!r} is invalid; allowed: a finite number of seconds > 0"
        )
    if not (isinstance(gap, (int, float)) and 0.0 <= gap < 1.0):
        raise ConfigError(f"gap={gap!r} is invalid; allowed: a relative MIP gap in [0, 1)")
    if method not in METHODS:
        raise ConfigError(f"method={method!r} is invalid; allowed: {METHODS}")


def _auto(prob: Problem, cache: ScheduleCache, time_limit_s: float, gap: float):
    seq = decompose(prob.dag, cache)
    n = prob.n
    modes = [0] * n
    starts = [0.0] * n
    t = 0.0
    lb = 0.0
    optimal = True
    method = "chain"
    for what, item in seq:
        if what == "cut":
            m = 1 if prob.can_intra(item) else 0
            modes[item], starts[item] = m, t
            t = t + prob.duration(item, m)
            lb = lb + prob.duration(item, m)
            continue
        nodes = list(item)
        res = solve_segment(prob.sub(nodes), cache, time_limit_s=time_limit_s, gap=gap)
        sub_durs = [prob.duration(v, res.modes[k]) for k, v in enumerate(nodes)]
        placed = shift(res.starts, sub_durs, t, [prob.dag.topo.index(v) for v in nodes])
        end = t
        for k, v in enumerate(nodes):
            modes[v] = res.modes[k]
            starts[v] = placed[k]
            end = max(end, placed[k] + sub_durs[k])
        t = end
        lb = lb + res.lower_bound
        optimal = optimal and res.optimal
        if _RANK[res.method] > _RANK[method]:
            method = res.method
    if method == "chain":
        cache.chains += 1
    return modes, starts, lb, optimal, method


def schedule_layer(
    op_dag,
    lat_one,
    lat_all,
    kinds,
    num_tc: int,
    num_vc: int,
    *,
    reverse: bool = False,
    time_limit_s: float = 10.0,
    gap: float = 0.0,
    method: str = "auto",
    cache: ScheduleCache | None = None,
) -> LayerSchedule:
    """Least-latency schedule of one layer's operator DAG on one accelerator.

    Each operator runs on one core of its kind (latency ``lat_one``) or on all cores of
    its kind (``lat_all``, intra-operator parallelism; it then runs alone). ``TC_VC``
    operators hold a tensor core and a vector core; ``COMM`` operators hold the single
    link (one collective at a time), no core, and have one mode (``lat_one``).

    Parameters
    ----------
    op_dag : OpGraph or networkx.DiGraph
        ``OpGraph`` (``.n_ops``, ``.edges`` int64 ``(E, 2)``) or a DiGraph on nodes
        ``0 .. n-1``.
    lat_one, lat_all : array_like of float, shape (n,)
        Latency on one core / on all cores of the operator's kind, seconds, >= 0.
    kinds : array_like of int, shape (n,)
        :class:`phaze.opcodes.OpKind` codes.
    num_tc, num_vc : int
        Tensor and vector cores, >= 1.
    reverse : bool
        Schedule the reversed DAG (the backward pass; pass backward latencies).
    time_limit_s, gap : float
        CBC time limit per solve and relative optimality gap (0 = prove optimality).
    method : {"auto", "ilp", "enumerate"}
        ``"auto"``: bounds, series decomposition, enumeration of small segments, CBC for
        larger ones. ``"ilp"``: one CBC solve of the whole DAG, no shortcuts.
        ``"enumerate"``: branch and bound over serial SGS schedules of the whole DAG.
    cache : ScheduleCache, optional
        Memo and counters owned by the caller; a fresh one per call when omitted.

    Returns
    -------
    LayerSchedule

    Raises
    ------
    ConfigError
        A cyclic graph, arrays of the wrong length, negative or non-finite latencies,
        unknown kinds, fewer than one core, bad solver settings.

    Examples
    --------
    A norm, then Q, K and V on 2 tensor cores: two GEMMs run side by side (2 s) and the
    third takes both cores (1.5 s), better than all three on all cores (4.5 s) or two
    rounds on single cores (4 s).

    >>> import networkx as nx
    >>> g = nx.DiGraph([(0, 1), (0, 2), (0, 3)])
    >>> one, both = [1.0, 2.0, 2.0, 2.0], [1.0, 1.5, 1.5, 1.5]
    >>> s = schedule_layer(g, one, both, [2, 0, 0, 0], num_tc=2, num_vc=1)
    >>> s.makespan_s, int(s.intra_op.sum()), s.optimal
    (4.5, 1, True)
    """
    _check_settings(time_limit_s, gap, method)
    prob = make_problem(op_dag, lat_one, lat_all, kinds, num_tc, num_vc, reverse=reverse)
    if cache is None:
        cache = ScheduleCache()
    key = ("layer", method, prob.key(), prob.num_tc, prob.num_vc, float(time_limit_s), float(gap))
    hit = cache.layers.get(key)
    if hit is not None:
        cache.layer_hits += 1
        return hit
    if method == "auto":
        modes, starts, lb, optimal, how = _auto(prob, cache, time_limit_s, gap)
        lb = max(lb, lower_bound(prob))
    else:
        lb = lower_bound(prob)
        ub, ub_modes, ub_starts = list_schedule(prob)
        if method == "ilp":
            r = solve_ilp(prob, ub, ub_modes, ub_starts, time_limit_s=time_limit_s, gap=gap)
            _record(cache, prob, r)
            modes, starts, how = r.modes, r.starts, "ilp"
            lb = max(lb, r.bound_s)
            optimal = r.optimal or closed(lb, r.makespan)
        else:
            e = enumerate_exact(prob, ub, ub_modes, ub_starts, lb)
            cache.enumerated += 1
            modes, starts, optimal, how = e.modes, e.starts, True, "enumeration"
        if not optimal:
            cache.not_optimal += 1
    out = build_schedule(prob, modes, starts, lower_bound=lb, optimal=optimal, method=how)
    cache.layers[key] = out
    return out
