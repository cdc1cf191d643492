"""The lower bound and the list-schedule upper bound: array preparation for the kernels of
:mod:`phaze._kernels.schedule`.

Internal to :mod:`phaze.schedule`; docs/scheduling.md ("cheap bounds first").
"""

from __future__ import annotations

import numpy as np

from phaze._kernels import schedule as _ks
from phaze.schedule._problem import COMM, Problem

__all__ = [
    "config_makespan_lower_bound",
    "csr",
    "dag_arrays",
    "list_schedule",
    "lower_bound",
    "makespan_lower_bound",
]


def csr(lists) -> tuple[np.ndarray, np.ndarray]:
    """``(ptr, idx)`` int64 arrays of a list of integer lists (row ``q`` is
    ``idx[ptr[q]:ptr[q + 1]]``)."""
    ptr = np.zeros(len(lists) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(x) for x in lists])
    idx = np.fromiter((v for x in lists for v in x), dtype=np.int64, count=int(ptr[-1]))
    return ptr, idx


def _arr(x, dtype) -> np.ndarray:
    """``x`` as a C-contiguous, writeable array of ``dtype`` (the kernels' one signature:
    numba types read-only arrays differently)."""
    return np.require(x, dtype=dtype, requirements=["C", "W"])


def dag_arrays(dag, kinds) -> tuple[np.ndarray, ...]:
    """``(topo, pred_ptr, pred_idx, succ_ptr, succ_idx, kinds)`` int64 arrays of a Dag."""
    return (
        np.asarray(dag.topo, dtype=np.int64).reshape(-1),
        *csr(dag.preds),
        *csr(dag.succs),
        _arr(np.asarray(kinds, dtype=np.int64).reshape(-1), np.int64),
    )


def makespan_lower_bound(topo, preds, kinds, lat_one, lat_all, cap_tc, cap_vc) -> np.ndarray:
    """The one lower bound on a layer's makespan, vectorised over architectures.

    ``max(critical path with min(L1, LA), work / capacity of every resource)``. Work of an
    operator on a resource is its least core-seconds there: ``L1`` on one core, or
    ``cap * LA`` on all of them (intra-op mode); the link carries every COMM operator one at
    a time (a COMM operator has no intra-op mode: its ``LA`` is taken as ``L1``).

    Parameters
    ----------
    topo : sequence of int
        The operators in a topological order.
    preds : sequence of sequences of int
        Predecessors of every operator.
    kinds : int array (n,)
        :class:`~phaze.opcodes.OpKind` codes.
    lat_one, lat_all : float64 arrays (n, A)
        Seconds on one core and on all cores of the operator's kind.
    cap_tc, cap_vc : int arrays (A,) or ints
        Tensor and vector cores available (any capacity at most the cores a schedule can
        use keeps the bound valid).

    Returns
    -------
    float64 array (A,)

    Examples
    --------
    >>> makespan_lower_bound([0, 1], [[], [0]], [0, 0], [[4.0], [4.0]], [[1.0], [1.0]], 4, 1)
    array([2.])
    """
    l1 = _arr(lat_one, np.float64)
    return _ks.lower_bounds(
        *_layer_arrays(topo, preds, kinds),
        l1,
        _arr(lat_all, np.float64),
        *_capacities(cap_tc, cap_vc, l1.shape[1]),
    )


def _layer_arrays(topo, preds, kinds) -> tuple[np.ndarray, ...]:
    """``(topo, pred_ptr, pred_idx, kinds)``: the bound kernels' arrays of a layer."""
    return (
        _arr(np.asarray(list(topo), dtype=np.int64).reshape(-1), np.int64),
        *csr(preds),
        _arr(np.asarray(kinds, dtype=np.int64).reshape(-1), np.int64),
    )


def _capacities(cap_tc, cap_vc, n_a: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor- and vector-core capacities as int64 arrays of ``n_a`` architectures."""
    return tuple(
        _arr(np.broadcast_to(np.asarray(c, dtype=np.int64), (n_a,)), np.int64)
        for c in (cap_tc, cap_vc)
    )


def config_makespan_lower_bound(
    topo,
    preds,
    kinds,
    tc_cycles,
    vc_cycles,
    comm_s,
    tc_index,
    vc_index,
    frequency_hz,
    cap_tc,
    cap_vc,
) -> np.ndarray:
    """:func:`makespan_lower_bound` of architectures given by their tensor- and vector-core
    configs (:func:`phaze._kernels.schedule.config_lower_bounds`): operator ``j`` takes
    ``(tc_cycles[j, tc_index[q], mode] + vc_cycles[j, vc_index[q], mode]) /
    frequency_hz[q]`` seconds on architecture ``q``, or ``comm_s[j]`` if it is a COMM
    operator.

    Examples
    --------
    >>> config_makespan_lower_bound([0, 1], [[], [0]], [0, 0], [[[8.0, 2.0]], [[8.0, 2.0]]],
    ...     [[[0.0, 0.0]], [[0.0, 0.0]]], [0.0, 0.0], [0], [0], [2.0], 4, 1)
    array([2.])
    """
    tc_index = _arr(tc_index, np.int64)
    return _ks.config_lower_bounds(
        *_layer_arrays(topo, preds, kinds),
        _arr(tc_cycles, np.float64),
        _arr(vc_cycles, np.float64),
        _arr(comm_s, np.float64),
        tc_index,
        _arr(vc_index, np.int64),
        _arr(frequency_hz, np.float64),
        *_capacities(cap_tc, cap_vc, tc_index.shape[0]),
    )


def lower_bound(prob: Problem) -> float:
    """:func:`makespan_lower_bound` of one instance, at its effective capacities."""
    if prob.n == 0:
        return 0.0
    topo, pp, pi, _, _, kinds = dag_arrays(prob.dag, prob.kinds)
    cap = np.array(prob.cap[:2], dtype=np.int64)
    return float(
        _ks.lower_bounds(
            topo,
            pp,
            pi,
            kinds,
            np.array(prob.l1, dtype=np.float64).reshape(-1, 1),
            np.array(prob.la, dtype=np.float64).reshape(-1, 1),
            cap[:1],
            cap[1:],
        )[0]
    )


def list_schedule(prob: Problem) -> tuple[float, tuple[int, ...], list[float]]:
    """Upper bound: a list schedule (serial SGS, longest-tail-first priority) over a few
    mode vectors -- all single-core; intra-op wherever it is faster; one greedy pass of
    single flips from the better of the two. Returns ``(makespan, modes, starts)``."""
    if prob.n == 0:
        return 0.0, (), []
    la = tuple(prob.l1[i] if prob.kinds[i] == COMM else prob.la[i] for i in range(prob.n))
    ms, modes, starts = _ks.list_schedule(
        *dag_arrays(prob.dag, prob.kinds),
        np.array(prob.l1, dtype=np.float64),
        np.array(la, dtype=np.float64),
        np.array(prob.cap, dtype=np.int64),
    )
    return float(ms), tuple(modes.tolist()), starts.tolist()
