"""Admissible bounds used by the exact search to skip architectures (docs/search.md).

Two levels, both vectorised over architectures:

* :func:`layer_latency_lower_bound`: a lower bound on the makespan of one layer's operator
  DAG for every architecture, without solving anything -- the longest path with each
  operator's faster mode, and per resource (tensor cores, vector cores, the link) the least
  core-time of its operators divided by the number of cores. Every feasible schedule of
  the layer scheduling problem (docs/scheduling.md) is at least this long.
* :func:`time_per_batch_lower_bound`: a lower bound on the time per batch of the best plan
  (docs/placement.md) from lower-bound layer latencies, for every data-parallel degree d:
  the device-time of a pipeline's micro-batches spread over its devices, the slowest
  layer times its micro-batches, plus the gradient all-reduce of the first layer's
  parameters (which the first stage always holds). Recomputation, pipeline bubbles and
  link transfers only add time, so the bound holds for every plan.

An architecture whose optimistic throughput ``global_batch / time_lower_bound`` is below
the incumbent's throughput cannot win and is not evaluated exactly.
"""

from __future__ import annotations

import math

import numpy as np

from phaze._kernels.dp import time_per_batch_bounds
from phaze.cost import LatencyTable
from phaze.schedule import config_makespan_lower_bound, makespan_lower_bound
from phaze.validate import MAX_DEVICES

__all__ = [
    "devices_lower_bound",
    "layer_latency_lower_bound",
    "layer_lower_bound_of_configs",
    "stages_lower_bound",
    "time_per_batch_lower_bound",
]


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
    return makespan_lower_bound(
        range(n), _predecessors(edges, n), kinds, lat_one, lat_all, num_tc, num_vc
    )


def _predecessors(edges: np.ndarray, n: int) -> list[list[int]]:
    """Predecessors of each of ``n`` operators, from the ``(src, dst)`` edges."""
    preds: list[list[int]] = [[] for _ in range(n)]
    for s, d in np.asarray(edges, dtype=np.int64).reshape(-1, 2).tolist():
        preds[d].append(s)
    return preds


def layer_lower_bound_of_configs(
    edges: np.ndarray,
    kinds: np.ndarray,
    latency: LatencyTable,
    rows: np.ndarray,
    pss: int,
    num_tc: np.ndarray,
    num_vc: np.ndarray,
) -> np.ndarray:
    """:func:`layer_latency_lower_bound` of the layer whose operators are the rows
    ``rows`` of ``latency`` (in the layer's order), in pass ``pss`` (0 fwd, 1 bwd), on
    every architecture of ``latency.arch_table``: the same floats, computed from the
    per-config cycles without building ``latency.latency_s`` (``16 * ops * archs``
    bytes).

    Examples
    --------
    >>> from phaze.cost import latency_table
    >>> from phaze.hardware import Accelerator, ArchTable
    >>> from phaze.models import build_graph, preset, unique_ops
    >>> g = build_graph(preset("bert-large"), 512, 1, 1)
    >>> ops, index = unique_ops(g)
    >>> archs = ArchTable.from_accelerators([Accelerator.preset("phaze")])
    >>> lat = latency_table(ops, archs)
    >>> layer = g.layers[1]
    >>> rows = index.rows(0, 1)
    >>> fast = layer_lower_bound_of_configs(layer.ops.edges, layer.ops.kinds, lat, rows, 0,
    ...     archs.num_tc, archs.num_vc)
    >>> slow = layer_latency_lower_bound(layer.ops.edges, layer.ops.kinds,
    ...     lat.latency_s[rows, :, 0, 0], lat.latency_s[rows, :, 1, 0], archs.num_tc,
    ...     archs.num_vc)
    >>> bool((fast == slow).all())
    True
    """
    rows = np.asarray(rows, dtype=np.int64)
    n = rows.shape[0]
    arch = latency.arch_table
    return config_makespan_lower_bound(
        range(n),
        _predecessors(edges, n),
        kinds,
        latency.tc_cycles[:, :, :, pss][rows],
        latency.vc_cycles[:, :, :, pss][rows],
        latency.comm_s[rows, pss],
        arch.tc_index,
        arch.vc_index,
        arch.frequency_hz,
        num_tc,
        num_vc,
    )


def time_per_batch_lower_bound(
    layer_fwd_s: np.ndarray,
    layer_bwd_s: np.ndarray,
    devices_per_layer: np.ndarray,
    devices: int,
    micro_batches: int,
    first_layer_param_bytes: float = 0.0,
    link_bandwidth_Bps: float = np.inf,
    min_stages: int = 1,
    layer_count: np.ndarray | None = None,
    sync_factor: float = 4.0,
    interleave: int = 1,
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
    first_layer_param_bytes : float
        Parameter bytes (per device) of the first layer in topological order, which every
        first stage holds; 0 leaves out the all-reduce term.
    link_bandwidth_Bps : float
        Link bandwidth BW of the data-parallel all-reduce.
    min_stages : int
        Fewest pipeline stages any plan has (e.g. what memory forces:
        :func:`stages_lower_bound`); 0 means no plan fits (the bound is ``inf``).
    layer_count : float64 array (L,), optional
        Positions each row stands for: the rows may be the unique layers of a model (a
        block repeated 96 times is one row with count 96), so the bound needs memory per
        unique layer, not per layer. Default: 1 per row. A row of count 0 is ignored.
    sync_factor : float
        Bytes the gradient synchronisation sends per parameter byte times ``d / (d-1)``
        (4: the all-reduce; 3: the distributed optimizer's; 0: fully hidden by overlap).
    interleave : int
        The largest interleave ``v`` searched (model chunks per device): the bubble
        ``s - 1`` becomes ``(s - 1) / v`` (docs/placement.md, "Interleaved plans": an
        interleaved plan takes ``(v m + s - 1) / v`` times its largest load, which is no
        less than its layers' work; a smaller ``v`` only takes longer).

    Returns
    -------
    float64 array (A,)
        ``min over d = 1 .. min(N, M) and s = s_lo .. s_hi(n) of
        max(W / n, max_l w_l, U / s) * (m + s - 1) + F (d - 1) P_0 / (BW d)`` with
        ``F = sync_factor``, ``m = ceil(M / d)``, ``n = floor(N / d)`` devices per
        pipeline, ``w_l = (fwd + bwd)_l``, ``U = sum_l w_l`` and ``W = sum_l w_l a_l``.
        The time per batch of a plan with ``s`` stages is its largest stage load times
        ``m + s - 1`` (the pipeline bubble) plus the gradient synchronisation of the first
        stage's parameters, which include the first layer's ``P_0`` (docs/placement.md;
        an optimizer step only adds time). The largest load is at least the
        slowest layer, the mean load ``U / s``, and ``W / n``: each stage of ``a``
        devices runs its layers, so ``sum_j load_j a_j >= W`` over at most ``n``
        devices. ``s_lo = min_stages``; ``s_hi(n)`` is the most stages ``n`` devices
        hold: ``min(L, n, (n + (t - 1) c) // t)`` with ``t = max a_l`` and ``c`` layers
        of one device (a stage without such a layer takes ``t`` devices). Over ``s``
        the expression falls and then rises, so only ``s`` next to ``U / max(W / n,
        max_l w_l)`` is evaluated. Within a run of ``d`` with the same ``m`` every term
        grows with ``d``, so only the smallest ``d`` of each run is evaluated.

    Examples
    --------
    >>> import numpy as np
    >>> time_per_batch_lower_bound(np.array([[1.0], [1.0]]), np.array([[2.0], [2.0]]),
    ...     np.array([1, 1]), devices=2, micro_batches=4).tolist()
    [12.0]
    >>> time_per_batch_lower_bound(np.array([[1.0], [1.0]]), np.array([[2.0], [2.0]]),
    ...     np.array([1, 1]), devices=2, micro_batches=4, min_stages=2).tolist()
    [15.0]
    """
    work = np.asarray(layer_fwd_s, dtype=np.float64) + np.asarray(layer_bwd_s, dtype=np.float64)
    a = np.asarray(devices_per_layer, dtype=np.float64)
    count = (
        np.ones(work.shape[0]) if layer_count is None else np.asarray(layer_count, dtype=np.float64)
    )
    used = count > 0
    n_layers = int(count.sum())  # layer positions
    best = np.full(work.shape[1:], np.inf)
    if min_stages < 1 or n_layers == 0:
        return best
    work = work[used]  # a row of count 0 stands for no layer (its latency may be inf)
    a, count = a[used], count[used]
    total = (work * (a * count)[:, None]).sum(axis=0)
    plain = (work * count[:, None]).sum(axis=0)
    slowest = work.max(axis=0)
    widest = int(a.max())
    cheap = int(count[a == 1].sum()) if widest > 1 else n_layers
    per_byte = float(sync_factor) * float(first_layer_param_bytes) / float(link_bandwidth_Bps)
    # the (m, n, s_hi, all-reduce) of every d evaluated, then every architecture (kernel)
    steps = []
    d = 1
    top = min(devices, micro_batches)
    while d <= top:
        m = -(-micro_batches // d)
        n = devices // d
        s_hi = min(n_layers, n, (n + (widest - 1) * cheap) // widest)
        if n >= widest and s_hi >= min_stages:
            steps.append((m, n, s_hi, per_byte * (d - 1) / d))
        # the next d with a smaller m: the smallest d' with ceil(M / d') < m
        d = -(-micro_batches // (m - 1)) if m > 1 else top + 1
    if not steps:
        return best
    m_, n_, s_hi_, sync_ = zip(*steps, strict=True)
    return time_per_batch_bounds(
        np.ascontiguousarray(total),
        np.ascontiguousarray(plain),
        np.ascontiguousarray(slowest),
        np.array(m_, dtype=np.int64),
        np.array(n_, dtype=np.int64),
        np.array(s_hi_, dtype=np.int64),
        np.array(sync_, dtype=np.float64),
        int(min_stages),
        int(interleave),
    )


def stages_lower_bound(per_layer_bytes: np.ndarray, hbm_bytes: float) -> int:
    """Fewest pipeline stages that hold layers of ``per_layer_bytes`` (each layer's
    least memory per device, ``2p + o + a``) in ``hbm_bytes`` per device; 0 when one
    layer alone does not fit (no plan).

    Every stage holds at least the sum of its layers' bytes and at most ``hbm_bytes``
    (docs/placement.md), so there are at least ``ceil(sum / hbm_bytes)`` stages.

    Examples
    --------
    >>> stages_lower_bound(np.array([12.0, 12.0, 12.0]), 25.0)
    2
    >>> stages_lower_bound(np.array([30.0]), 25.0)
    0
    """
    # relative slack: float sums must never make the bound cut a feasible plan
    cap = float(hbm_bytes) * (1 + 1e-9)
    per_layer = np.asarray(per_layer_bytes, dtype=np.float64)
    if per_layer.size and per_layer.max() > cap:
        return 0
    return max(1, math.ceil(float(per_layer.sum()) / cap))


def devices_lower_bound(
    widths,
    param_bytes: np.ndarray,
    activation_bytes: np.ndarray,
    tensor_parallel: np.ndarray,
    hbm_bytes: float,
    adam: bool,
    state_factor: float | None = None,
) -> int:
    """Fewest devices any plan needs to fit in ``hbm_bytes`` per device, over all tensor
    widths, pipelines and recomputation settings; ``MAX_DEVICES + 1`` when no plan fits
    however many devices there are.

    Parameters
    ----------
    widths : sequence of int (W,)
    param_bytes, activation_bytes : float64 arrays (W, n)
        Per device, per width and layer.
    tensor_parallel : bool array (W, n)
    hbm_bytes : float
    adam : bool
        Adam keeps optimizer state equal to the parameter bytes.
    state_factor : float, optional
        Bytes of weights, gradients and optimizer state per parameter byte (overrides
        ``adam``: 3 or 2; :mod:`phaze.training`). ``activation_bytes`` must then be the
        least a layer keeps under any recomputation setting searched.

    Returns
    -------
    int
        A stage's memory per device is at least ``2P + O + A`` (docs/placement.md: its
        parameters, optimizer state and activations, whatever its position and
        recomputation). So at width ``t`` every layer alone must fit, a pipeline has at
        least ``ceil(M / HBM)`` stages, ``M`` the sum of ``2p + o + a`` over layers, and at
        least ``k = ceil(M_tp / HBM)`` of them hold a tensor-parallel layer and take ``t``
        devices: ``(t - 1) k + ceil(M / HBM)`` devices. The least over widths.

    Examples
    --------
    >>> import numpy as np
    >>> devices_lower_bound([1], np.array([[10.0, 10.0]]), np.array([[1.0, 1.0]]),
    ...     np.array([[False, False]]), hbm_bytes=25.0, adam=False)
    2
    """
    state = (3.0 if adam else 2.0) if state_factor is None else float(state_factor)
    # relative slack: float sums must never make the bound cut a feasible plan
    cap = float(hbm_bytes) * (1 + 1e-9)
    need = MAX_DEVICES + 1
    for i, t in enumerate(widths):
        per_layer = state * np.asarray(param_bytes[i], dtype=np.float64) + np.asarray(
            activation_bytes[i], dtype=np.float64
        )
        stages = stages_lower_bound(per_layer, hbm_bytes)
        if stages == 0:
            continue
        tp = np.asarray(tensor_parallel[i], dtype=bool)
        tp_stages = math.ceil(float(per_layer[tp].sum()) / cap)
        need = min(need, (int(t) - 1) * tp_stages + stages)
    return need
