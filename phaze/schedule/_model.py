"""``schedule_model``: per-layer forward / backward latencies for many architectures.

The search's input (docs/architecture.md): for every layer of a model graph and every
architecture, the least forward makespan and the least backward makespan (reversed DAG,
backward latencies). Work is shared as far as exactness allows:

* layers with the same signature and operator rows are scheduled once;
* the series decomposition is computed once per DAG structure; cut operators add their
  faster latency, vectorised over architectures;
* per segment, the lower bound and two always-feasible schedules (everything one at a
  time; everything on single cores as soon as possible when the cores cover the widest
  antichain) are vectorised over architectures; where they meet, nothing else is done;
* only the remaining (segment, architecture) pairs go through
  :func:`~phaze.schedule._layer.solve_segment` (enumeration or CBC), memoised on the
  segment's latency vector and effective core counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phaze._kernels import schedule as _ks
from phaze.errors import ConfigError
from phaze.schedule._bounds import csr, dag_arrays
from phaze.schedule._layer import (
    CLOSE_RTOL,
    ENUM_MAX_OPS,
    ENUM_NODE_LIMIT,
    decompose,
    finish_segment,
    segment_key,
)
from phaze.schedule._problem import COMM, TC, TC_VC, VC, Dag, Problem, dag_from
from phaze.schedule._result import ScheduleCache

__all__ = ["ModelSchedule", "schedule_model"]


@dataclass(frozen=True, slots=True)
class ModelSchedule:
    """Per-layer latencies of one model graph on many architectures.

    Attributes
    ----------
    fwd_s, bwd_s : numpy.ndarray of float64, shape (n_layers, n_archs)
        Least forward / backward makespan of each layer (positions of
        ``model_graph.layers``) on each architecture (order of ``arch_rows``), seconds.
    optimal : numpy.ndarray of bool, shape (n_layers, n_archs)
        Both passes proven optimal (False only after a CBC time limit or positive gap).
    arch_rows : numpy.ndarray of int64, shape (n_archs,)
    """

    fwd_s: np.ndarray
    bwd_s: np.ndarray
    optimal: np.ndarray
    arch_rows: np.ndarray


@dataclass(frozen=True, slots=True)
class _Segment:
    nodes: np.ndarray  # operator indices in the layer
    dag: Dag  # induced sub-DAG, local indices
    kinds: tuple[int, ...]
    arrays: tuple  # dag_arrays(dag, kinds): the kernels' view of the segment
    widths: tuple[int, int, int]  # largest antichain of tc, vc and link users


@dataclass(frozen=True, slots=True)
class _LayerPlan:
    """A layer DAG's series decomposition as the arrays of ``layer_bounds``."""

    segments: tuple[_Segment, ...]
    kinds: np.ndarray
    cut_idx: np.ndarray
    seg_ptr: np.ndarray
    seg_nodes: np.ndarray
    seg_topo: np.ndarray
    pred_ptr: np.ndarray
    pred_idx: np.ndarray
    seg_width: np.ndarray


def _plan(dag: Dag, kinds, cache: ScheduleCache) -> _LayerPlan:
    key = ("model-plan", dag.n, dag.edges, tuple(kinds))
    hit = cache.structures.get(key)
    if hit is not None:
        return hit
    cuts, segs = [], []
    for what, item in decompose(dag, cache):
        if what == "cut":
            cuts.append(item)
            continue
        nodes = list(item)
        sub = dag.induced(nodes)
        sk = tuple(kinds[v] for v in nodes)
        segs.append(
            _Segment(
                np.array(nodes, dtype=np.int64),
                sub,
                sk,
                dag_arrays(sub, sk),
                (
                    sub.width([i for i, k in enumerate(sk) if k in (TC, TC_VC)]),
                    sub.width([i for i, k in enumerate(sk) if k in (VC, TC_VC)]),
                    sub.width([i for i, k in enumerate(sk) if k == COMM]),
                ),
            )
        )
    sizes = [len(sg.nodes) for sg in segs]
    seg_ptr = np.zeros(len(segs) + 1, dtype=np.int64)
    seg_ptr[1:] = np.cumsum(sizes)
    preds = [list(p) for sg in segs for p in sg.dag.preds]
    pred_ptr, pred_idx = csr(preds)
    empty = np.zeros(0, dtype=np.int64)
    out = _LayerPlan(
        tuple(segs),
        np.asarray(kinds, dtype=np.int64),
        np.array(cuts, dtype=np.int64),
        seg_ptr,
        np.concatenate([sg.nodes for sg in segs]) if segs else empty,
        np.concatenate([sg.arrays[0] for sg in segs]) if segs else empty,
        pred_ptr,
        pred_idx,
        np.array([sg.widths for sg in segs], dtype=np.int64).reshape(-1, 3),
    )
    cache.structures[key] = out
    return out


def _open_columns(seg: _Segment, l1, la, cols, ntc, nvc, cache, time_limit_s, gap):
    """Makespans and optimality of the columns ``cols`` of one segment whose cheap bounds
    did not meet: memo, then the kernel (bounds, list schedule, enumeration), then CBC."""
    w_tc, w_vc = max(seg.widths[0], 1), max(seg.widths[1], 1)
    ctc = np.minimum(ntc[cols], w_tc)
    cvc = np.minimum(nvc[cols], w_vc)
    l1o = np.ascontiguousarray(l1[:, cols])
    lao = np.ascontiguousarray(la[:, cols])
    both = np.concatenate([l1o.T, lao.T], axis=1)  # (Q, 2k): one memo key per row
    ms = np.zeros(cols.size)
    opt = np.ones(cols.size, dtype=bool)
    keys = []
    todo: dict = {}  # key -> first position needing a solve
    for q in range(cols.size):
        key = segment_key(
            seg.dag, seg.kinds, both[q].tobytes(), (int(ctc[q]), int(cvc[q]), 1), time_limit_s, gap
        )
        keys.append(key)
        hit = cache.segments.get(key)
        if hit is None and key not in todo:
            todo[key] = q
    if todo:
        first = np.fromiter(todo.values(), dtype=np.int64, count=len(todo))
        out = _ks.solve_columns(
            *seg.arrays,
            np.ascontiguousarray(l1o[:, first]),
            np.ascontiguousarray(lao[:, first]),
            np.ascontiguousarray(ctc[first]),
            np.ascontiguousarray(cvc[first]),
            ENUM_MAX_OPS,
            ENUM_NODE_LIMIT,
            CLOSE_RTOL,
        )
        m_s, lb_s, status, modes, starts = (x.tolist() for x in out)
        for j, q in enumerate(first.tolist()):
            row = (m_s[j], lb_s[j], status[j], tuple(modes[j]), tuple(starts[j]))
            prob = None
            if status[j] == _ks.ST_OPEN:  # CBC needs the instance
                prob = Problem(
                    seg.dag,
                    seg.kinds,
                    tuple(l1o[:, q].tolist()),
                    tuple(lao[:, q].tolist()),
                    int(ntc[cols[q]]),
                    int(nvc[cols[q]]),
                    (int(ctc[q]), int(cvc[q]), 1),
                )
            res = finish_segment(prob, cache, row, time_limit_s=time_limit_s, gap=gap)
            cache.segments[keys[q]] = res
    solved = set(todo.values())
    for q, key in enumerate(keys):
        res = cache.segments[key]
        if q not in solved:
            cache.segment_hits += 1
        ms[q] = res.makespan
        opt[q] = res.optimal
    return ms, opt


def _layer_batch(dag: Dag, kinds, l1, la, ntc, nvc, cache, time_limit_s, gap):
    """Makespans (A,) of a layer on every architecture; ``l1``, ``la`` are (n, A).

    Per segment, the lower bound and two always-feasible schedules (everything one at a
    time; everything on single cores as soon as possible when the cores cover the widest
    antichains) are computed for every architecture in one kernel call; only the
    (segment, architecture) pairs where they do not meet go further."""
    plan = _plan(dag, kinds, cache)
    l1 = np.ascontiguousarray(l1, dtype=np.float64)
    la = np.ascontiguousarray(la, dtype=np.float64)
    n_a = l1.shape[1]
    optimal = np.ones(n_a, dtype=bool)
    if not plan.segments:
        cache.chains += n_a
    cut_s, _, ub, done = _ks.layer_bounds(
        plan.kinds,
        l1,
        la,
        plan.cut_idx,
        plan.seg_ptr,
        plan.seg_nodes,
        plan.seg_topo,
        plan.pred_ptr,
        plan.pred_idx,
        plan.seg_width,
        ntc,
        nvc,
        CLOSE_RTOL,
    )
    total = cut_s
    for s, seg in enumerate(plan.segments):
        ms = ub[s]
        cache.bound_closed += int(done[s].sum())
        cols = np.flatnonzero(~done[s])
        if cols.size:
            sl1 = l1[seg.nodes]
            sla = np.where((plan.kinds[seg.nodes] == COMM)[:, None], sl1, la[seg.nodes])
            ms = ms.copy()
            ms[cols], opt = _open_columns(seg, sl1, sla, cols, ntc, nvc, cache, time_limit_s, gap)
            optimal[cols] &= opt
        total = total + ms
    return total, optimal


def _latency_array(latency_table) -> np.ndarray:
    lat = getattr(latency_table, "latency_s", latency_table)
    lat = np.asarray(lat, dtype=np.float64)
    if lat.ndim != 4 or lat.shape[2:] != (2, 2):
        raise ConfigError(
            f"latency table has shape {lat.shape}; allowed: (ops, archs, 2 modes, 2 passes)"
        )
    return lat


def _core_counts(
    latency_table, num_tc, num_vc, n_arch: int, cache: ScheduleCache
) -> tuple[np.ndarray, np.ndarray]:
    """Validated int64 core counts of every architecture. Validated once per run: the
    result is memoised in ``cache`` for the same array objects (a search passes the same
    columns on every call; checking them each time made a run quadratic in the number of
    architectures)."""
    src = getattr(latency_table, "arch_table", None)  # a LatencyTable knows its cores
    if src is not None:
        num_tc = src.num_tc if num_tc is None else num_tc
        num_vc = src.num_vc if num_vc is None else num_vc
    key = ("cores", id(num_tc), id(num_vc), n_arch)
    hit = cache.structures.get(key)
    if hit is not None and hit[0] is num_tc and hit[1] is num_vc:
        return hit[2], hit[3]
    ntc, nvc = _check_core_counts(num_tc, num_vc, n_arch)
    if isinstance(num_tc, np.ndarray) and isinstance(num_vc, np.ndarray):
        cache.structures[key] = (num_tc, num_vc, ntc, nvc)  # holds the sources: ids stay valid
    return ntc, nvc


def _check_core_counts(num_tc, num_vc, n_arch: int) -> tuple[np.ndarray, np.ndarray]:
    if num_tc is None or num_vc is None:
        raise ConfigError(
            "core counts unknown: pass num_tc= and num_vc= (one per architecture "
            "of the latency table) or a latency table with .arch_table"
        )
    out = []
    for name, v in (("num_tc", num_tc), ("num_vc", num_vc)):
        arr = np.asarray(v)
        if arr.shape != (n_arch,) or not np.issubdtype(arr.dtype, np.integer):
            raise ConfigError(
                f"{name} has shape {arr.shape} and dtype {arr.dtype}; allowed: "
                f"({n_arch},) integers, one per architecture of the latency table"
            )
        if (arr < 1).any():
            raise ConfigError(f"{name} has a value {int(arr.min())} < 1; allowed: >= 1 cores")
        out.append(np.ascontiguousarray(arr, dtype=np.int64))
    return out[0], out[1]


def _op_rows(model_graph, latency_table, op_index, graph: int, n_rows: int, cache):
    """Latency-table row of every operator of every layer (validated), memoised in
    ``cache`` for the same graph and index objects."""
    if op_index is None:
        op_index = getattr(latency_table, "op_index", None)
    key = ("op-rows", id(model_graph), id(op_index), graph, n_rows)
    hit = cache.structures.get(key)
    if op_index is not None and hit is not None and hit[0] is model_graph and hit[1] is op_index:
        return hit[2]
    rows = _check_op_rows(model_graph, op_index, graph, n_rows)
    if op_index is not None:
        cache.structures[key] = (model_graph, op_index, rows)  # holds the sources
    return rows


def _unique_layers(model_graph, rows, cache) -> list[tuple[int, np.ndarray]]:
    """``(first position, every position)`` of each distinct (layer signature, operator
    rows): those layers have the same schedules. Memoised for the same ``rows`` object."""
    key = ("unique-layers", id(model_graph), id(rows))
    hit = cache.structures.get(key)
    if hit is not None and hit[0] is model_graph and hit[1] is rows:
        return hit[2]
    groups: dict = {}
    for p, layer in enumerate(model_graph.layers):
        groups.setdefault((layer.signature, rows[p].tobytes()), []).append(p)
    out = [(ps[0], np.array(ps, dtype=np.int64)) for ps in groups.values()]
    cache.structures[key] = (model_graph, rows, out)
    return out


def _check_op_rows(model_graph, op_index, graph: int, n_rows: int):
    if op_index is None:
        from phaze.models import unique_ops

        table, op_index = unique_ops(model_graph)
        graph = 0
        if len(table) != n_rows:
            raise ConfigError(
                f"latency table has {n_rows} operator rows but the model graph "
                f"has {len(table)} unique operators; pass op_index= (and graph=) "
                "from the unique_ops call that built the table"
            )
    rows = []
    for p, layer in enumerate(model_graph.layers):
        r = np.asarray(op_index.rows(graph, p), dtype=np.int64)
        if r.shape != (layer.ops.n_ops,) or (r.size and (r.min() < 0 or r.max() >= n_rows)):
            raise ConfigError(
                f"op_index rows of layer {p} do not fit the latency table "
                f"({n_rows} rows) and the layer ({layer.ops.n_ops} operators)"
            )
        rows.append(r)
    return rows


def schedule_model(
    model_graph,
    latency_table,
    arch_rows,
    cache: ScheduleCache | None = None,
    *,
    num_tc=None,
    num_vc=None,
    op_index=None,
    graph: int = 0,
    time_limit_s: float = 10.0,
    gap: float = 0.0,
) -> ModelSchedule:
    """Least forward and backward latency of every layer on many architectures.

    Parameters
    ----------
    model_graph : ModelGraph
    latency_table : LatencyTable or numpy.ndarray
        ``latency_s[op_row, arch, mode, pass]`` (docs/scheduling.md), seconds.
    arch_rows : array_like of int
        Architectures (indices into the latency table's arch axis) to schedule for.
    cache : ScheduleCache, optional
        Memo and counters owned by the caller (reuse it across calls of one run).
    num_tc, num_vc : array_like of int, optional
        Cores of every architecture of the latency table (its whole arch axis); taken from
        ``latency_table.arch_table`` when omitted.
    op_index : OpIndex, optional
        Row of every operator occurrence, from the ``unique_ops`` call that built the table
        (``graph`` is this model graph's position in that call). Default:
        ``latency_table.op_index``, else ``unique_ops(model_graph)``.
    time_limit_s, gap : float
        CBC settings per solve (see :func:`schedule_layer`).

    Returns
    -------
    ModelSchedule

    Examples
    --------
    >>> import numpy as np
    >>> from phaze.models import build_graph, preset, unique_ops
    >>> g = build_graph(preset("bert-large"), 512, 1, 1)
    >>> table, index = unique_ops(g)
    >>> lat = np.full((len(table), 3, 2, 2), 1e-4)   # 3 architectures
    >>> lat[:, :, 1, :] = 5e-5                       # all cores twice as fast
    >>> s = schedule_model(g, lat, [0, 2], num_tc=[1, 2, 4], num_vc=[1, 1, 2])
    >>> s.fwd_s.shape, bool((s.fwd_s > 0).all()), bool(s.optimal.all())
    ((26, 2), True, True)
    """
    lat = _latency_array(latency_table)
    n_rows, n_arch = lat.shape[:2]
    arch = np.asarray(arch_rows)
    if arch.ndim != 1 or (arch.size and not np.issubdtype(arch.dtype, np.integer)):
        raise ConfigError(
            f"arch_rows has shape {arch.shape} and dtype {arch.dtype}; allowed: "
            "a 1-D array of architecture indices"
        )
    if arch.size and (arch.min() < 0 or arch.max() >= n_arch):
        raise ConfigError(f"arch_rows must lie in 0 .. {n_arch - 1}")
    arch = arch.astype(np.int64)
    sub = lat[:, arch]
    if not np.isfinite(sub).all() or (sub < 0).any():
        raise ConfigError(
            "latency table holds negative or non-finite latencies; allowed: finite and >= 0"
        )
    if cache is None:
        cache = ScheduleCache()
    ntc_all, nvc_all = _core_counts(latency_table, num_tc, num_vc, n_arch, cache)
    ntc, nvc = ntc_all[arch], nvc_all[arch]
    rows = _op_rows(model_graph, latency_table, op_index, graph, n_rows, cache)
    n_layers = len(model_graph.layers)
    fwd = np.zeros((n_layers, arch.size))
    bwd = np.zeros((n_layers, arch.size))
    optimal = np.ones((n_layers, arch.size), dtype=bool)
    for p, same in _unique_layers(model_graph, rows, cache):
        layer = model_graph.layers[p]
        skey = ("dag", layer.ops.n_ops, layer.ops.edges.tobytes())
        dags = cache.structures.get(skey)
        if dags is None:
            d = dag_from(layer.ops)
            dags = cache.structures[skey] = (d, d.reversed())
        kinds = tuple(int(k) for k in layer.ops.kinds)
        lr = sub[rows[p]]  # (n, A, mode, pass)
        for pas, out, dag in ((0, fwd, dags[0]), (1, bwd, dags[1])):
            ms, opt = _layer_batch(
                dag, kinds, lr[:, :, 0, pas], lr[:, :, 1, pas], ntc, nvc, cache, time_limit_s, gap
            )
            out[same] = ms
            optimal[same] &= opt
    for a in (fwd, bwd, optimal):
        a.setflags(write=False)
    return ModelSchedule(fwd, bwd, optimal, arch)
