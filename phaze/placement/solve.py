"""The placement dynamic program: least time per batch over t, stages, devices and d.

:func:`place` and :func:`place_per_width` return :class:`~phaze.placement.Plan` objects;
:func:`place_arrays` is the array-level entry for searches that solve very many
problems and need only the optimum's numbers. All three prepare arrays and call the numba
kernels of :mod:`phaze._kernels.dp` (docs/placement.md; the module docstring there
describes the state/stage form and the three graph paths: chain, unique topological
order with skip edges, general DAG over downset bitsets).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from phaze._kernels import dp as _dp
from phaze._kernels import stage_tables as _st
from phaze.errors import ConfigError, InfeasibleError
from phaze.placement.data_parallel import (
    DataParallelTerms,
    check_terms,
    solve_over_d,
)
from phaze.placement.plan import Plan, _plan_from_positions
from phaze.placement.problem import (
    PlacementProblem,
    WidthGraph,
    check_problem,
    dp_allreduce_arrays,
)
from phaze.systems.network import Network
from phaze.validate import MAX_DEVICES, check_bool, check_int, check_number

__all__ = [
    "ArrayPlacement",
    "MAX_DOWNSETS",
    "choose_width",
    "graph_kind",
    "place",
    "place_arrays",
    "place_per_width",
]

#: Largest number of downsets (sets of layers closed under predecessors) of a layer graph
#: whose topological order is not unique; beyond it the general-DAG path refuses.
MAX_DOWNSETS = _st.MAX_DOWNSETS


class ArrayPlacement(NamedTuple):
    """The optimum as plain numbers (:func:`place_arrays`).

    ``time_per_batch_s`` is ``inf`` and ``tensor_width``, ``data_parallel`` and
    ``num_stages`` are 0 when no width has a plan that fits (``bottleneck_stage`` -1).
    ``bottleneck_stage`` is the index, in pipeline order, of the stage with the largest
    load (the first of equals), as :attr:`Plan.bottleneck_stage`. ``width_times_s[i]`` is the
    optimum restricted to ``widths[i]`` (``inf`` = infeasible). ``last_stage_layers`` are
    the layer positions of the last pipeline stage (the one that never recomputes; empty
    when infeasible). ``interleave`` is the plan's model chunks per device (1 unless an
    interleaved plan won: :func:`phaze.placement.chain.place_chain`); only for an
    interleaved plan, ``stages`` gives per stage in pipeline order ``(first position,
    end position, load_s, memory_bytes)``.
    """

    time_per_batch_s: float
    tensor_width: int
    data_parallel: int
    num_stages: int
    bottleneck_stage: int
    width_times_s: np.ndarray
    last_stage_layers: tuple[int, ...] = ()
    interleave: int = 1
    stages: tuple[tuple[int, int, float, float], ...] = ()


def choose_width(times_s) -> int:
    """Index of the tensor width whose plan is fastest, given each width's time per batch
    in the problem's width order; ties go to the first (smaller) width; -1 when no time is
    finite. The one rule every caller uses to pick a width.

    Examples
    --------
    >>> choose_width([float("inf"), 2.0, 2.0, 3.0])
    1
    """
    best, k = math.inf, -1
    for i, t in enumerate(times_s):
        if t < best:
            best, k = t, i
    return k


def graph_kind(edge_src: np.ndarray, edge_dst: np.ndarray, n_layers: int) -> str:
    """Which DP path a layer graph takes: ``"chain"``, ``"prefix"`` or ``"dag"``.

    ``chain``: edges only ``i -> i+1`` and all of them present; ``prefix``: every
    ``i -> i+1`` present plus skip edges (the topological order is unique, so the
    downsets are the prefixes); ``dag``: anything else (downset enumeration).

    Examples
    --------
    >>> graph_kind(np.array([0, 1]), np.array([1, 2]), 3)
    'chain'
    >>> graph_kind(np.array([0, 1, 0]), np.array([1, 2, 2]), 3)
    'prefix'
    >>> graph_kind(np.array([0, 0]), np.array([1, 2]), 3)
    'dag'
    """
    if n_layers <= 1:
        return "chain"
    consecutive = np.zeros(n_layers - 1, dtype=bool)
    step = edge_dst - edge_src == 1
    consecutive[edge_src[step]] = True
    if not consecutive.all():
        return "dag"
    return "chain" if step.all() else "prefix"


def _csr(key: np.ndarray, other: np.ndarray, nbytes: np.ndarray, n: int):
    order = np.argsort(key, kind="stable")
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(key, minlength=n), out=ptr[1:])
    return ptr, np.ascontiguousarray(other[order]), np.ascontiguousarray(nbytes[order])


class _Tables(NamedTuple):
    tabs: tuple
    t_eff: int
    n_cheap: int
    kind: str
    bits: np.ndarray | None


def _effective_width(t: int, tp, n: int, devices: int) -> tuple[int, int]:
    """``(t_eff, n_cheap)`` of width ``t`` over ``n`` layers, ``tp`` their tensor-parallel
    flags: ``t_eff`` is 1 when no layer is tensor-parallel; ``n_cheap`` bounds the stages
    that need one device (0 when ``t_eff == 1``)."""
    n_tp = int(np.asarray(tp).sum())
    t_eff = 1 if (t == 1 or n_tp == 0) else t
    return t_eff, 0 if t_eff == 1 else min(n - n_tp, n, devices)


def _chain_link_bytes(src, dst, ebytes, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Largest and total bytes of the edges entering each layer of a chain, (n + 1,)."""
    link_max = np.zeros(n + 1)
    link_sum = np.zeros(n + 1)
    if src.shape[0]:
        np.maximum.at(link_max, dst, ebytes)
        np.add.at(link_sum, dst, ebytes)
    return link_max, link_sum


def _bottleneck_stage(load1, loadr, pairs, recompute: bool, s: int) -> int:
    """Pipeline position of the stage with the largest load among ``pairs``."""
    loads = [loadr[q] if recompute and j < s - 1 else load1[q] for j, q in enumerate(pairs)]
    return int(np.argmax(loads))


def _tables(
    t: int,
    fwd,
    bwd,
    pbytes,
    abytes,
    tp,
    src,
    dst,
    ebytes,
    devices,
    bw,
    hbm,
    recompute,
    rules,
    kind=None,
) -> _Tables:
    """``rules``: ``(state_factor, recompute_s, work_bytes, recompute_last, stash_inputs)``
    (see :mod:`phaze._kernels.stage_tables`; ``recompute_s`` None = ``fwd``, ``work_bytes``
    None = zeros)."""
    state_factor, rec, work, recompute_last, stash_inputs = rules
    rec = fwd if rec is None else rec
    work = np.zeros(fwd.shape[0]) if work is None else work
    # writeable copies of read-only inputs: a read-only array is another numba type
    fwd, bwd, pbytes, abytes, tp, rec, work = (
        np.require(a, requirements="CW") for a in (fwd, bwd, pbytes, abytes, tp, rec, work)
    )
    extra = (float(state_factor), rec, work, bool(recompute_last), bool(stash_inputs))
    n = fwd.shape[0]
    t_eff, n_cheap = _effective_width(t, tp, n, devices)
    kind = kind or graph_kind(src, dst, n)
    args = (bw, hbm, devices, t_eff, recompute, *extra)
    bits = None
    if kind == "chain":
        link_max, link_sum = _chain_link_bytes(src, dst, ebytes, n)
        tabs = _st.chain_stage_tables(fwd, bwd, pbytes, abytes, tp, link_max, link_sum, *args)
    else:
        in_ptr, in_src, in_b = _csr(dst, src, ebytes, n)
        out_ptr, out_dst, out_b = _csr(src, dst, ebytes, n)
        if kind == "prefix":
            tabs = _st.prefix_stage_tables(
                fwd, bwd, pbytes, abytes, tp, in_ptr, in_src, in_b, out_ptr, out_dst, out_b, *args
            )
        else:
            n_words = (n + 63) // 64
            pred = np.zeros((n, n_words), dtype=np.uint64)
            for u, v in zip(src.tolist(), dst.tolist(), strict=True):
                pred[v, u // 64] |= np.uint64(1) << np.uint64(u % 64)
            bits, sizes, count = _st.enumerate_downsets(pred, MAX_DOWNSETS)
            if count < 0:
                raise ConfigError(
                    f"width t={t}: the layer graph ({n} layers, {src.shape[0]} edges) has more "
                    f"than MAX_DOWNSETS={MAX_DOWNSETS} downsets; the general-DAG placement "
                    "handles at most that many (chains and graphs whose layers are linked "
                    "i -> i+1 have no limit)"
                )
            tabs = _st.dag_stage_tables(
                bits,
                sizes,
                fwd,
                bwd,
                pbytes,
                abytes,
                tp,
                in_ptr,
                in_src,
                in_b,
                out_ptr,
                out_dst,
                out_b,
                *args,
            )
    return _Tables(tabs, t_eff, n_cheap, kind, bits)


def _first_stage_backward(tb: _Tables, tabs: tuple, bwd: np.ndarray) -> np.ndarray:
    """Per stage (pair): the backward seconds of one micro-batch through its layers (the
    sum of their ``bwd``) for the stages placed first from state 0, else 0."""
    ptr = tabs[0]
    out = np.zeros(tabs[1].shape[0])
    firsts = np.arange(ptr[0], ptr[1], dtype=np.int64)
    layers = _stage_layers(tb._replace(tabs=tabs), firsts, bwd.shape[0])
    for p_, members in zip(firsts.tolist(), layers, strict=True):
        out[p_] = float(np.asarray(bwd)[members].sum())
    return out


def _solve_tables(tables_at, tb: _Tables, bwd, dp_args: tuple, state_factor, terms):
    """``(tables, dp_solve result)`` over every data-parallel degree
    (:func:`~phaze.placement.data_parallel.solve_over_d`); ``tables_at(factor)`` builds the
    stage tables with a state factor, ``tb`` holds those at ``state_factor``."""
    if terms.is_paper:  # one recurrence, the paper's final round
        none = np.zeros(0)
        res = _dp.dp_solve(
            *tb.tabs, *dp_args, 4.0, none, 0.0, 0.0, 1, min(*dp_args[:2]), math.inf, none
        )
        return tb, res

    def build(factor: float) -> tuple:
        return tb.tabs if factor == state_factor else tables_at(factor)

    tabs, res = solve_over_d(
        build,
        dp_args,
        state_factor,
        terms,
        overlap_s=lambda tabs: _first_stage_backward(tb, tabs, bwd),
    )
    return tb._replace(tabs=tabs), res


def _solve(problem_args: tuple, t: int, g: WidthGraph):
    devices, bw, hbm, mb, recompute, state_factor, recompute_last, stash_inputs, net, terms = (
        problem_args
    )

    def tables_at(factor: float) -> _Tables:
        return _tables(
            t,
            g.fwd_s,
            g.bwd_s,
            g.param_bytes,
            g.activation_bytes,
            g.tensor_parallel,
            g.edge_src,
            g.edge_dst,
            g.edge_bytes,
            devices,
            bw,
            hbm,
            recompute,
            (factor, g.recompute_s, g.work_bytes, recompute_last, stash_inputs),
        )

    tb = tables_at(state_factor)
    dp_bw, dp_lat = dp_allreduce_arrays(net, bw, tb.t_eff, min(devices, mb))
    dp_args = (devices, mb, dp_bw, tb.t_eff, tb.n_cheap, dp_lat)
    return _solve_tables(lambda f: tables_at(f).tabs, tb, g.bwd_s, dp_args, state_factor, terms)


def _args(problem: PlacementProblem) -> tuple:
    check_problem(problem)
    return (
        problem.devices,
        problem.link_bandwidth_Bps,
        problem.hbm_bytes,
        problem.num_micro_batches,
        problem.recompute,
        problem.state_factor,
        problem.recompute_last,
        problem.stash_inputs,
        problem.network,
        problem.dp_terms,
    )


def _stage_layers(tb: _Tables, pairs: np.ndarray, n: int) -> list[np.ndarray]:
    """Layer positions of the stages given by downset pairs (pipeline order)."""
    ptr, partner = tb.tabs[0], tb.tabs[1]
    state_of_pair = np.searchsorted(ptr, pairs, side="right") - 1
    stages = []
    for k, p_ in zip(state_of_pair.tolist(), pairs.tolist(), strict=True):
        k2 = int(partner[p_])
        if tb.bits is None:
            stages.append(np.arange(k, k2, dtype=np.int64))
        else:
            diff = tb.bits[k2] & ~tb.bits[k]
            stages.append(
                np.array(
                    [v for v in range(n) if (int(diff[v // 64]) >> (v % 64)) & 1], dtype=np.int64
                )
            )
    return stages


def _plan(problem: PlacementProblem, t: int, tb: _Tables, res) -> Plan | None:
    best, d, p, s, r, g = res
    if not best < math.inf:
        return None
    pairs = _dp.reconstruct(*tb.tabs, g, p, s, r)
    stages = _stage_layers(tb, pairs, problem.graph(t).n_layers)
    return _plan_from_positions(problem, t, int(d), stages, None, claimed_time=float(best))


def place_per_width(problem: PlacementProblem) -> dict[int, Plan | None]:
    """The best plan at every tensor width of the problem (None = nothing fits).

    Examples
    --------
    >>> from phaze.placement import WidthGraph, PlacementProblem
    >>> g = WidthGraph([0, 1, 2], [1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [1, 1, 1], [1, 1, 1],
    ...                [False] * 3, [0, 1], [1, 2], [0.0, 0.0])
    >>> prob = PlacementProblem(widths=(1,), graphs=(g,), devices=3,
    ...     link_bandwidth_Bps=1.0, hbm_bytes=10, num_micro_batches=3, recompute=False)
    >>> plan = place_per_width(prob)[1]
    >>> plan.data_parallel, plan.num_stages, plan.time_per_batch_s  # 3 micro-batches, load 3
    (1, 3, 15.0)
    """
    args = _args(problem)
    out: dict[int, Plan | None] = {}
    for t, g in zip(problem.widths, problem.graphs, strict=True):
        tb, res = _solve(args, t, g)
        out[t] = _plan(problem, t, tb, res)
    return out


def place(problem: PlacementProblem, *, tensor_width: int | None = None) -> Plan:
    """The plan with the least time per batch (docs/placement.md).

    Over tensor widths (strictly smaller time wins, widths in increasing order), pipeline
    stages (contiguous layer sets), their devices and the data-parallel degree.

    Parameters
    ----------
    problem : PlacementProblem
    tensor_width : int, optional
        Restrict to this width.

    Raises
    ------
    InfeasibleError
        No plan fits in memory (or every plan has an infinite latency).

    Examples
    --------
    >>> from phaze.placement import WidthGraph, PlacementProblem
    >>> g = WidthGraph([0, 1], [1.0, 1.0], [2.0, 2.0], [1, 1], [1, 1], [False, False],
    ...                [0], [1], [0.0])
    >>> prob = PlacementProblem(widths=(1,), graphs=(g,), devices=2,
    ...     link_bandwidth_Bps=1.0, hbm_bytes=4, num_micro_batches=4, recompute=False)
    >>> plan = place(prob)   # one layer per device fits, two do not
    >>> plan.stage_layers, plan.time_per_batch_s
    (((0,), (1,)), 15.0)
    """
    args = _args(problem)
    widths = problem.widths if tensor_width is None else (tensor_width,)
    solved = [(t, *_solve(args, t, problem.graph(t))) for t in widths]
    k = choose_width([res[0] for _, _, res in solved])
    best = _plan(problem, *solved[k]) if k >= 0 else None
    if best is None:
        raise InfeasibleError(
            f"no plan fits: widths {', '.join(map(str, widths))}, {problem.devices} devices, "
            f"{problem.hbm_bytes:.6g} bytes HBM per device"
        )
    return best


def place_arrays(
    widths,
    fwd_s,
    bwd_s,
    param_bytes,
    activation_bytes,
    tensor_parallel,
    edge_src,
    edge_dst,
    edge_bytes,
    *,
    devices: int,
    link_bandwidth_Bps: float,
    hbm_bytes: float,
    num_micro_batches: int,
    recompute: bool,
    adam: bool,
    kind: str | None = None,
    state_factor: float | None = None,
    recompute_s=None,
    work_bytes=None,
    recompute_last: bool = False,
    stash_inputs: bool = True,
    network: Network | None = None,
    dp_terms: DataParallelTerms | None = None,
) -> ArrayPlacement:
    """The optimum from raw arrays, without building plan objects (for searches).

    Parameters
    ----------
    widths : sequence of int
        Tensor widths, increasing (``W`` of them).
    fwd_s, bwd_s, param_bytes, activation_bytes : float64 (W, n)
        Per width and layer (layers in topological order, the same at every width);
        latencies may be ``inf`` (that width then has no plan using the layer).
    tensor_parallel : bool (W, n) or (n,)
    edge_src, edge_dst : int64 (E,)
        Layer positions, ``src < dst``.
    edge_bytes : float64 (W, E) or (E,)
    devices, link_bandwidth_Bps, hbm_bytes, num_micro_batches, recompute, adam
        As in :class:`~phaze.placement.PlacementProblem` (``adam`` = Adam optimizer).
    kind : {"chain", "prefix", "dag"}, optional
        The graph path if already known (see :func:`graph_kind`); saves a check.
    state_factor : float, optional
        Bytes of weights, gradients and optimizer state per parameter byte (default from
        ``adam``: 3 or 2; :mod:`phaze.training`).
    recompute_s, work_bytes : float64 (W, n) or (n,), optional
        Per-layer recomputation latency (default ``fwd_s``) and working bytes (default 0).
    recompute_last, stash_inputs : bool
        As in :class:`~phaze.placement.PlacementProblem` (defaults: the paper's rules).
    network : phaze.systems.Network, optional
        Price the data-parallel all-reduce on the network levels its ring spans (as in
        :class:`~phaze.placement.PlacementProblem`); default: ``link_bandwidth_Bps``.
    dp_terms : phaze.placement.DataParallelTerms, optional
        State sharded over the replicas, synchronisation bytes, optimizer step, overlap
        (as in :class:`~phaze.placement.PlacementProblem`); default the paper's.

    Returns
    -------
    ArrayPlacement
        ``(time_per_batch_s, tensor_width, data_parallel, stages, bottleneck_stage,
        width_times_s)``; infeasible: ``(inf, 0, 0, 0, -1, ...)``. Never raises for
        infeasible data.

    Raises
    ------
    ConfigError
        Inconsistent shapes, NaN or negative values, a general DAG past
        ``MAX_DOWNSETS``, or a scalar out of range (as in :class:`PlacementProblem`: e.g.
        a link bandwidth of 0, which the time formulas divide by).
    """
    widths = [check_int("tensor width", t, 1, MAX_DEVICES) for t in widths]
    if not widths or widths != sorted(set(widths)):
        raise ConfigError(f"widths={widths} is invalid; allowed: distinct, increasing, >= 1")
    devices = check_int("devices", devices, 1, MAX_DEVICES)
    link_bandwidth_Bps = check_number("link_bandwidth_Bps", link_bandwidth_Bps, unit="bytes/s")
    hbm_bytes = check_number("hbm_bytes", hbm_bytes, allow_inf=True, unit="bytes")
    num_micro_batches = check_int("num_micro_batches", num_micro_batches, 1)
    recompute = check_bool("recompute", recompute)
    adam = check_bool("adam", adam)
    if state_factor is None:
        state_factor = 3.0 if adam else 2.0
    state_factor = check_number("state_factor", state_factor, high=1e6)
    recompute_last = check_bool("recompute_last", recompute_last)
    stash_inputs = check_bool("stash_inputs", stash_inputs)
    if network is not None and not isinstance(network, Network):
        raise ConfigError(f"network={network!r} is invalid; allowed: a phaze.Network or None")
    terms = check_terms(dp_terms, state_factor)
    n_w = len(widths)
    fwd = np.ascontiguousarray(fwd_s, dtype=np.float64)
    if fwd.ndim != 2 or fwd.shape[0] != n_w or fwd.shape[1] == 0:
        raise ConfigError(
            f"fwd_s must have shape (len(widths)={n_w}, n_layers >= 1), got {fwd.shape}"
        )
    n = fwd.shape[1]
    src = np.ascontiguousarray(edge_src, dtype=np.int64)
    dst = np.ascontiguousarray(edge_dst, dtype=np.int64)

    def per_width(x, name, dtype, m):
        a = np.ascontiguousarray(x, dtype=dtype)
        if a.ndim == 1:
            a = np.broadcast_to(a, (n_w, m))
        if a.shape != (n_w, m):
            raise ConfigError(f"{name} must have shape ({n_w}, {m}) or ({m},), got {a.shape}")
        return a

    bwd = per_width(bwd_s, "bwd_s", np.float64, n)
    pb = per_width(param_bytes, "param_bytes", np.float64, n)
    ab = per_width(activation_bytes, "activation_bytes", np.float64, n)
    tp = per_width(tensor_parallel, "tensor_parallel", np.bool_, n)
    eb = per_width(edge_bytes, "edge_bytes", np.float64, src.shape[0])
    rc = fwd if recompute_s is None else per_width(recompute_s, "recompute_s", np.float64, n)
    wk = (
        np.zeros((n_w, n))
        if work_bytes is None
        else per_width(work_bytes, "work_bytes", np.float64, n)
    )
    if dst.shape != src.shape:
        raise ConfigError(
            f"edge_src and edge_dst differ in length ({src.shape[0]} and {dst.shape[0]})"
        )
    if src.shape[0] and (src.min() < 0 or (src >= dst).any() or dst.max() >= n):
        raise ConfigError(f"edges must satisfy 0 <= src < dst < n_layers={n}")
    for name, a in (
        ("fwd_s", fwd),
        ("bwd_s", bwd),
        ("param_bytes", pb),
        ("activation_bytes", ab),
        ("edge_bytes", eb),
        ("recompute_s", rc),
        ("work_bytes", wk),
    ):
        if not (a >= 0).all():
            raise ConfigError(f"{name} has a negative or NaN entry; values must be >= 0")
    if kind is None:
        kind = graph_kind(src, dst, n)
    elif kind not in ("chain", "prefix", "dag"):
        raise ConfigError(f"kind={kind!r}; allowed: chain, prefix, dag")
    times = np.full(n_w, np.inf)
    kept = None  # tables of the best width so far (only one set is held in memory)
    for i, t in enumerate(widths):

        def tables_at(factor: float, i: int = i, t: int = t) -> _Tables:
            return _tables(
                t,
                fwd[i],
                np.ascontiguousarray(bwd[i]),
                np.ascontiguousarray(pb[i]),
                np.ascontiguousarray(ab[i]),
                np.ascontiguousarray(tp[i]),
                src,
                dst,
                np.ascontiguousarray(eb[i]),
                int(devices),
                float(link_bandwidth_Bps),
                float(hbm_bytes),
                bool(recompute),
                (
                    factor,
                    np.ascontiguousarray(rc[i]),
                    np.ascontiguousarray(wk[i]),
                    recompute_last,
                    stash_inputs,
                ),
                kind,
            )

        tb = tables_at(state_factor)
        dp_bw, dp_lat = dp_allreduce_arrays(
            network, float(link_bandwidth_Bps), tb.t_eff, min(int(devices), num_micro_batches)
        )
        dp_args = (int(devices), int(num_micro_batches), dp_bw, tb.t_eff, tb.n_cheap, dp_lat)
        tb, res = _solve_tables(
            lambda f, at=tables_at: at(f).tabs, tb, bwd[i], dp_args, state_factor, terms
        )
        times[i] = res[0]
        if choose_width(times[: i + 1]) == i:
            kept = (tb, res)
    k = choose_width(times)
    best = (math.inf, 0, 0, 0)
    bottleneck = -1
    last: tuple[int, ...] = ()
    if k >= 0:  # the stage with the largest load, in pipeline order
        tb, (tm, d, p, s, r, g) = kept
        best = (tm, widths[k], int(d), int(s))
        pairs = _dp.reconstruct(*tb.tabs, g, p, s, r)
        bottleneck = _bottleneck_stage(tb.tabs[2], tb.tabs[3], pairs.tolist(), recompute, s)
        last = tuple(_stage_layers(tb, pairs[-1:], n)[0].tolist())
    return ArrayPlacement(
        *best, bottleneck_stage=bottleneck, width_times_s=times, last_stage_layers=last
    )
