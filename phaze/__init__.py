"""phaze: joint search of ML training accelerators and their distributed execution plans.

A pip-installable re-creation of PHAZE ("Integrated Hardware Architecture and Device
Placement Search", ICML 2024). See README.md for the quickstart.

Examples
--------
>>> import phaze
>>> spec = phaze.preset("gpt3-175b")
>>> phaze.Workload(spec).tensor_widths
(1, 2, 4, 8)
"""

from phaze.cost import LatencyTable, latency_table
from phaze.errors import ConfigError, InfeasibleError, PhazeError
from phaze.hardware import Accelerator, ArchTable, DesignSpace, area_um2
from phaze.models import (
    ModelGraph,
    OpTable,
    TransformerSpec,
    build_graph,
    preset,
    preset_names,
    unique_ops,
)
from phaze.opcodes import CommPass, Mode, OpKind, Pass, VcOp
from phaze.placement import (
    PlacementProblem,
    Plan,
    evaluate_baseline,
    load_instance,
    place,
    place_arrays,
)
from phaze.schedule import ScheduleCache, check_schedule, schedule_layer, schedule_model
from phaze.search import SearchResult, evaluate, search
from phaze.sweeps import SweepCell, load_sweep, sweep
from phaze.workload import GIB, Cluster, Workload

__version__ = "0.1.0.dev0"

__all__ = [
    "GIB",
    "Accelerator",
    "ArchTable",
    "Cluster",
    "CommPass",
    "ConfigError",
    "DesignSpace",
    "InfeasibleError",
    "LatencyTable",
    "Mode",
    "ModelGraph",
    "OpKind",
    "OpTable",
    "Pass",
    "PhazeError",
    "PlacementProblem",
    "Plan",
    "ScheduleCache",
    "SearchResult",
    "SweepCell",
    "TransformerSpec",
    "VcOp",
    "Workload",
    "__version__",
    "area_um2",
    "build_graph",
    "check_schedule",
    "evaluate",
    "evaluate_baseline",
    "latency_table",
    "load_instance",
    "load_sweep",
    "place",
    "place_arrays",
    "preset",
    "preset_names",
    "schedule_layer",
    "schedule_model",
    "search",
    "sweep",
    "unique_ops",
]
