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

from phaze.errors import ConfigError
from phaze.schedule._bounds import makespan_lower_bound
from phaze.schedule._layer import CLOSE_RTOL, decompose, solve_segment
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
    topo: tuple[int, ...]
    width_tc: int
    width_vc: int
    width_link: int


def _segments(dag: Dag, kinds, cache: ScheduleCache) -> tuple[list[int], list[_Segment]]:
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
                sub.topo,
                sub.width([i for i, k in enumerate(sk) if k in (TC, TC_VC)]),
                sub.width([i for i, k in enumerate(sk) if k in (VC, TC_VC)]),
                sub.width([i for i, k in enumerate(sk) if k == COMM]),
            )
        )
    out = (cuts, segs)
    cache.structures[key] = out
    return out


def _critical_path(seg: _Segment, d: np.ndarray) -> np.ndarray:
    """Longest path of the segment with durations ``d`` (k, A)."""
    finish = np.zeros_like(d)
    for i in seg.topo:
        preds = seg.dag.preds[i]
        start = finish[list(preds)].max(axis=0) if preds else 0.0
        finish[i] = start + d[i]
    return finish.max(axis=0)


def _segment_batch(seg: _Segment, l1, la, intra, ntc, nvc, cache, time_limit_s, gap):
    """Makespans (A,) and optimality flags of one segment on every architecture; ``la``
    already equals ``l1`` on COMM rows and ``intra`` marks where all cores are faster."""
    dmin = np.where(intra, la, l1)
    cap_tc = np.minimum(ntc, max(seg.width_tc, 1))
    cap_vc = np.minimum(nvc, max(seg.width_vc, 1))
    lb = makespan_lower_bound(seg.topo, seg.dag.preds, seg.kinds, l1, la, cap_tc, cap_vc)
    serial = np.zeros_like(lb)
    for i in seg.topo:
        serial = serial + dmin[i]
    ub = serial
    if seg.width_link <= 1:
        fits = (ntc >= seg.width_tc) & (nvc >= seg.width_vc)
        if fits.any():
            ub = np.where(fits, np.minimum(ub, _critical_path(seg, l1)), ub)
    done = ub - lb <= CLOSE_RTOL * ub
    out = np.where(done, ub, 0.0)
    optimal = np.ones(out.shape, dtype=bool)
    cache.bound_closed += int(done.sum())
    open_cols = np.flatnonzero(~done)
    if open_cols.size:
        l1o = l1[:, open_cols].T.tolist()
        lao = la[:, open_cols].T.tolist()
        ctc = cap_tc[open_cols].tolist()
        cvc = cap_vc[open_cols].tolist()
        for q, a in enumerate(open_cols.tolist()):
            prob = Problem(
                seg.dag,
                seg.kinds,
                tuple(l1o[q]),
                tuple(lao[q]),
                int(ntc[a]),
                int(nvc[a]),
                (ctc[q], cvc[q], 1),
            )
            res = solve_segment(prob, cache, time_limit_s=time_limit_s, gap=gap)
            out[a] = res.makespan
            optimal[a] = res.optimal
    return out, optimal


def _layer_batch(dag: Dag, kinds, l1, la, ntc, nvc, cache, time_limit_s, gap):
    """Makespans (A,) of a layer on every architecture; ``l1``, ``la`` are (n, A)."""
    kinds_arr = np.asarray(kinds)
    comm = kinds_arr == COMM
    la = np.where(comm[:, None], l1, la)
    intra = (~comm)[:, None] & (la < l1)
    cuts, segs = _segments(dag, kinds, cache)
    total = np.zeros(l1.shape[1])
    optimal = np.ones(l1.shape[1], dtype=bool)
    if not segs:
        cache.chains += l1.shape[1]
    for c in cuts:
        total = total + np.where(intra[c], la[c], l1[c])
    for seg in segs:
        ms, opt = _segment_batch(
            seg, l1[seg.nodes], la[seg.nodes], intra[seg.nodes], ntc, nvc, cache, time_limit_s, gap
        )
        total = total + ms
        optimal &= opt
    return total, optimal


def _latency_array(latency_table) -> np.ndarray:
    lat = getattr(latency_table, "latency_s", latency_table)
    lat = np.asarray(lat, dtype=np.float64)
    if lat.ndim != 4 or lat.shape[2:] != (2, 2):
        raise ConfigError(
            f"latency table has shape {lat.shape}; allowed: (ops, archs, 2 modes, 2 passes)"
        )
    return lat


def _core_counts(latency_table, num_tc, num_vc, n_arch: int) -> tuple[np.ndarray, np.ndarray]:
    src = getattr(latency_table, "arch_table", None)  # a LatencyTable knows its cores
    if src is not None:
        num_tc = src.num_tc if num_tc is None else num_tc
        num_vc = src.num_vc if num_vc is None else num_vc
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
        out.append(arr.astype(np.int64))
    return out[0], out[1]


def _op_rows(model_graph, latency_table, op_index, graph: int, n_rows: int):
    if op_index is None:
        op_index = getattr(latency_table, "op_index", None)
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
    ntc_all, nvc_all = _core_counts(latency_table, num_tc, num_vc, n_arch)
    ntc, nvc = ntc_all[arch], nvc_all[arch]
    rows = _op_rows(model_graph, latency_table, op_index, graph, n_rows)
    if cache is None:
        cache = ScheduleCache()
    n_layers = len(model_graph.layers)
    fwd = np.zeros((n_layers, arch.size))
    bwd = np.zeros((n_layers, arch.size))
    optimal = np.ones((n_layers, arch.size), dtype=bool)
    done: dict = {}
    for p, layer in enumerate(model_graph.layers):
        key = (layer.signature, rows[p].tobytes())
        if key in done:
            q = done[key]
            fwd[p], bwd[p], optimal[p] = fwd[q], bwd[q], optimal[q]
            continue
        done[key] = p
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
            out[p] = ms
            optimal[p] &= opt
    for a in (fwd, bwd, optimal):
        a.setflags(write=False)
    return ModelSchedule(fwd, bwd, optimal, arch)
