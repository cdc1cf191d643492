"""Plain references of the search's bound kernels.

* :func:`time_per_batch_bounds`: the numpy loop that computed the search's time-per-batch
  bound before it was a kernel (:func:`phaze._kernels.dp.time_per_batch_bounds`), whole
  arrays at a time; the kernel must give the same floats.
* :func:`config_lower_bound`: one architecture's layer lower bound from its tensor- and
  vector-core config cycles (:func:`phaze._kernels.schedule.config_lower_bounds`): the
  latencies are built as in :attr:`phaze.cost.LatencyTable.latency_s`, then bounded by
  :func:`reference.schedule_kernels.lower_bound`.
"""

from __future__ import annotations

import numpy as np
from reference import schedule_kernels as sk


def time_per_batch_bounds(total, plain, slowest, steps, min_stages, interleave):
    """``min`` over ``steps = [(m, n, s_hi, sync_s), ...]`` and the two stage counts
    next to the knee ``U / max(W / n, max w)`` of ``max(W / n, max w, U / s)`` times the
    bubble factor, plus ``sync_s`` (numpy, whole arrays)."""
    total, plain, slowest = (np.asarray(x, dtype=np.float64) for x in (total, plain, slowest))
    out = np.full(total.shape, np.inf)
    usable = np.isfinite(plain)
    for m, n, s_hi, sync_s in steps:
        floor_load = np.maximum(total / n, slowest)
        ok = usable & (floor_load > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            knee = np.divide(plain, floor_load)
        knee[~ok] = 1.0
        for rounding in (np.floor, np.ceil):
            s = np.minimum(np.maximum(rounding(knee), min_stages), s_hi)
            with np.errstate(divide="ignore", invalid="ignore"):
                time_s = np.maximum(floor_load, np.divide(plain, s))
            if interleave == 1:
                time_s = time_s * (m + s - 1)
            else:
                time_s = time_s * ((interleave * m + s - 1) / interleave)
            out = np.minimum(out, time_s + sync_s)
    return out


def config_lower_bound(n, preds, topo, kinds, tc, vc, comm, freq_hz, cap_tc, cap_vc) -> float:
    """Layer lower bound of one architecture: operator ``j`` takes ``(tc[j][mode] +
    vc[j][mode]) / freq_hz`` seconds in ``mode`` (0 one core, 1 all cores), or
    ``comm[j]`` if it is a COMM operator."""
    l1, la = [], []
    for j in range(n):
        if kinds[j] == sk.COMM:
            l1.append(comm[j])
            la.append(comm[j])
        else:
            l1.append((tc[j][0] + vc[j][0]) / freq_hz)
            la.append((tc[j][1] + vc[j][1]) / freq_hz)
    return sk.lower_bound(n, preds, topo, kinds, l1, la, cap_tc, cap_vc)
