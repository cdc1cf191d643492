"""Admissible bounds used by the exact search to skip architectures (docs/search.md).

Two levels, both vectorised over architectures:

* :func:`layer_latency_lower_bound`: a lower bound on the makespan of one layer's operator
  DAG for every architecture, without solving anything -- the longest path with each
  operator's faster mode, and per resource (tensor cores, vector cores, the link) the least
  core-time of its operators divided by the number of cores. Every feasible schedule of
  the layer scheduling problem (docs/scheduling.md) is at least this long.
* :func:`time_per_batch_lower_bound`: a lower bound on the time per batch of the best plan
  (docs/placement.md) from lower-bound layer latencies: the device-time of one batch
  spread over all N devices, and the slowest layer times the fewest micro-batches a
  pipeline can get. Recomputation, pipeline bubbles, link transfers and data-parallel
  all-reduces only add time, so the bound holds for every plan.

An architecture whose optimistic throughput ``global_batch / time_lower_bound`` is below
the incumbent's throughput cannot win and is not evaluated exactly.
"""

from __future__ import annotations

import numpy as np

from phaze.schedule import makespan_lower_bound

__all__ = ["layer_latency_lower_bound", "time_per_batch_lower_bound"]


def layer_latency_lower_bound(
    edges: np.ndarray,
    kinds: np.ndarray,
    lat_one: np.ndarray,
    lat_all: np.ndarray,
    num_tc: np.ndarray,
    num_vc: np.ndarray,
) -> np.ndarray:
    """Lower bound on a layer's makespan (seconds) for many architectures.

    Parameters
    ----------
    edges : int64 array (E, 2)
        Operator DAG edges ``(src, dst)`` with ``src < dst`` (topological numbering).
    kinds : int64 array (n,)
        :class:`~phaze.opcodes.OpKind` of each operator.
    lat_one, lat_all : float64 arrays (n, A)
        Latency on one core and on all cores of its kind, per architecture.
    num_tc, num_vc : int64 arrays (A,)
        Cores per architecture.

    Returns
    -------
    float64 array (A,)
        ``max(critical path with min(L1, LA), core-time / cores per resource)``; the same
        for a pass and for its reversed DAG.

    Examples
    --------
    >>> import numpy as np
    >>> lb = layer_latency_lower_bound(np.array([[0, 1]]), np.array([0, 0]),
    ...     np.array([[4.0], [4.0]]), np.array([[1.0], [1.0]]), np.array([4]),
    ...     np.array([1]))
    >>> lb.tolist()
    [2.0]
    """
    lat_one = np.asarray(lat_one, dtype=np.float64)
    n = lat_one.shape[0]
    preds: list[list[int]] = [[] for _ in range(n)]
    for s, d in np.asarray(edges, dtype=np.int64).reshape(-1, 2).tolist():
        preds[d].append(s)
    return makespan_lower_bound(range(n), preds, kinds, lat_one, lat_all, num_tc, num_vc)


def time_per_batch_lower_bound(
    layer_fwd_s: np.ndarray,
    layer_bwd_s: np.ndarray,
    devices_per_layer: np.ndarray,
    devices: int,
    micro_batches: int,
) -> np.ndarray:
    """Lower bound on the time per batch of any plan of one tensor width.

    Parameters
    ----------
    layer_fwd_s, layer_bwd_s : float64 arrays (L, A)
        Lower bounds on each layer's forward / backward latency per architecture.
    devices_per_layer : int64 array (L,)
        Devices a stage holding the layer needs (t for a tensor-parallel layer, else 1).
    devices : int
        Accelerators N.
    micro_batches : int
        Micro-batches per global batch M.

    Returns
    -------
    float64 array (A,)
        ``max(M * sum_l (fwd+bwd)_l * a_l / N, max_l (fwd+bwd)_l * ceil(M / min(N, M)))``.
        Each stage of ``a`` devices runs every micro-batch of its pipeline through its
        layers, so ``sum_j load_j * a_j <= maxload * N / d`` and the time per batch
        ``maxload * (m + s - 1) >= maxload * ceil(M / d)``.
    """
    work = np.asarray(layer_fwd_s) + np.asarray(layer_bwd_s)
    a = np.asarray(devices_per_layer, dtype=np.float64)[:, None]
    spread = micro_batches * (work * a).sum(axis=0) / devices
    fewest = -(-micro_batches // min(devices, micro_batches))
    slowest = work.max(axis=0) * fewest
    return np.maximum(spread, slowest)
