"""Per-layer operator scheduling (docs/scheduling.md).

For one layer's fused-operator DAG on one accelerator, find the least makespan: which
operators run concurrently on separate cores and which take all cores of their kind
(intra-operator parallelism, and then run alone). The backward pass is the same problem on
the reversed DAG with backward latencies.

Everything is exact. Per layer: a lower bound (critical path with the faster latency of
each operator; work / cores of every resource) and an upper bound (a list schedule); a
chain needs no solver; the DAG is cut at operators ordered against all others (series
decomposition: makespans add up), and only the parallel segments between cuts are solved
-- by the bounds when they meet, by exhaustive enumeration (every intra-op assignment x
every precedence-feasible priority list through a serial schedule-generation scheme,
branch and bound) when small, and by the paper's ILP with python-mip / CBC otherwise.
Results are memoised in a caller-owned :class:`ScheduleCache` keyed on (DAG structure,
latency vector, core counts).

:func:`schedule_model` computes per-layer forward and backward latencies of a model graph
for many architectures at once (the search's input), each unique (layer, latency vector)
once, with the bounds vectorised over architectures.
"""

from phaze.schedule._bounds import config_makespan_lower_bound, makespan_lower_bound
from phaze.schedule._layer import METHODS, schedule_layer
from phaze.schedule._model import ModelSchedule, schedule_model
from phaze.schedule._result import IlpStat, LayerSchedule, ScheduleCache, check_schedule

__all__ = [
    "METHODS",
    "IlpStat",
    "LayerSchedule",
    "ModelSchedule",
    "ScheduleCache",
    "check_schedule",
    "config_makespan_lower_bound",
    "makespan_lower_bound",
    "schedule_layer",
    "schedule_model",
]
