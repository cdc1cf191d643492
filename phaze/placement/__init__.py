"""Device placement: the Piper-style dynamic program (docs/placement.md).

Given per-layer forward/backward latencies, parameter and activation bytes at each
tensor-parallel width, a cluster and a memory model, find the plan -- tensor width ``t``,
pipeline stages (contiguous layer sets) with their devices, data-parallel degree ``d`` --
with the least time per batch. The semantics equal the original PHAZE solver's on its
reference instances (``tests/data/placement``).

* :class:`PlacementProblem` -- from phaze model graphs (:meth:`~PlacementProblem.from_graphs`)
  or the reference JSON format (:func:`load_instance`).
* :func:`place`, :func:`place_per_width` -- the optimum as :class:`Plan` objects.
* :func:`evaluate_plan`, :func:`evaluate_baseline` -- the time and memory of a given plan and of
  the fixed Megatron-style baseline.
* :func:`place_arrays` -- the optimum's numbers from raw arrays, for searches.

Examples
--------
>>> from phaze.placement import PlacementProblem, WidthGraph, place
>>> g = WidthGraph([-1, 0, 1], [0.1, 1.0, 1.0], [0.2, 2.0, 2.0], [4, 8, 8], [1, 2, 2],
...                [False] * 3, [0, 1], [1, 2], [1.0, 1.0])
>>> prob = PlacementProblem(widths=(1,), graphs=(g,), devices=4, link_bandwidth_Bps=10.0,
...     hbm_bytes=64, num_micro_batches=8, recompute=False)
>>> plan = place(prob)
>>> plan.feasible and plan.throughput_micro_batches_per_s > 0
True
"""

from phaze.placement.data_parallel import DataParallelTerms
from phaze.placement.instance import load_instance
from phaze.placement.plan import Plan, Stage, evaluate_baseline, evaluate_plan
from phaze.placement.problem import FixedBaseline, PlacementProblem, WidthGraph
from phaze.placement.solve import (
    MAX_DOWNSETS,
    ArrayPlacement,
    choose_width,
    graph_kind,
    place,
    place_arrays,
    place_per_width,
)

__all__ = [
    "MAX_DOWNSETS",
    "ArrayPlacement",
    "DataParallelTerms",
    "FixedBaseline",
    "PlacementProblem",
    "Plan",
    "Stage",
    "WidthGraph",
    "choose_width",
    "evaluate_baseline",
    "evaluate_plan",
    "graph_kind",
    "load_instance",
    "place",
    "place_arrays",
    "place_per_width",
]
