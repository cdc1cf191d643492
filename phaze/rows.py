"""The records a search produces, named once for the whole package.

A :class:`PlanRow` is what the placement DP answers for one (workload, architecture,
micro-batch size, HBM size, recomputation) setting: the best plan's throughput and shape.
The result store, ``results.csv``, :func:`phaze.evaluate_architectures` and the search's
row tables all use these field names (:data:`ROW_FIELDS`), in this order.

A :class:`WorkloadBest` is one workload's best setting on one design (an architecture with
an HBM size): the row with the highest score (throughput, or samples per joule, within
the power budget; :mod:`phaze.joint.objective`) over micro-batch sizes and recomputation.

Examples
--------
>>> from phaze.rows import ROW_FIELDS, PlanRow
>>> ROW_FIELDS[:3]
('throughput', 'time_per_batch_s', 'tensor_width')
>>> PlanRow(12.5, 327.68, 8, 16, 8, 3).num_stages
8
"""

from __future__ import annotations

import math
from typing import NamedTuple

__all__ = ["NO_PLAN", "ROW_DEFAULTS", "ROW_FIELDS", "ROW_FLOAT_FIELDS", "PlanRow", "WorkloadBest"]


class PlanRow(NamedTuple):
    """The best plan of one setting (scalars), or of many architectures (numpy arrays, one
    entry per architecture, as :func:`phaze.evaluate_architectures` returns them).

    Infeasible: throughput 0, time inf, widths and stages 0, bottleneck -1, power 0,
    energy per sample inf.

    Attributes
    ----------
    throughput : float
        Samples per second.
    time_per_batch_s : float
        Seconds per global batch.
    tensor_width, data_parallel, num_stages : int
        Tensor-parallel width, data-parallel degree and pipeline depth of the plan.
    bottleneck_stage : int
        Index (pipeline order) of the stage with the largest load.
    power_w : float
        Average power per device of the cluster while running the plan (W; 0 when
        infeasible): dynamic energy per batch / (time per batch x devices) + leakage
        (docs/energy.md).
    energy_per_sample_j : float
        Energy of the whole cluster per training sample (J; inf when infeasible).
    interleave : int
        Model chunks per device of the plan's pipeline schedule (1: plain 1F1B; more with
        ``Training(interleaves=...)``, docs/placement.md "Interleaved plans").
    """

    throughput: float
    time_per_batch_s: float
    tensor_width: int
    data_parallel: int
    num_stages: int
    bottleneck_stage: int
    power_w: float = 0.0
    energy_per_sample_j: float = math.inf
    interleave: int = 1


#: Field names of a stored row, in order.
ROW_FIELDS = PlanRow._fields
#: Those of them that are real numbers (the rest are integers).
ROW_FLOAT_FIELDS = ("throughput", "time_per_batch_s", "power_w", "energy_per_sample_j")
#: Values of fields added after stores were first written, for rows stored without them.
ROW_DEFAULTS = {"interleave": 1}


class WorkloadBest(NamedTuple):
    """One workload's best setting on one design.

    Attributes
    ----------
    throughput : float
        Samples per second (0 when no setting fits).
    micro_batch_size : int
    recompute : bool
    time_per_batch_s : float
    tensor_width, data_parallel, num_stages : int
    power_w, energy_per_sample_j : float
        Average power per device (W) and cluster energy per sample (J) of the plan.
    interleave : int
        Model chunks per device of the plan (:attr:`PlanRow.interleave`).
    """

    throughput: float
    micro_batch_size: int
    recompute: bool
    time_per_batch_s: float
    tensor_width: int
    data_parallel: int
    num_stages: int
    power_w: float = 0.0
    energy_per_sample_j: float = math.inf
    interleave: int = 1


#: A workload with no feasible setting on a design.
NO_PLAN = WorkloadBest(0.0, 0, False, math.inf, 0, 0, 0)
