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
from phaze.energy import EnergyModel, EnergyTable, energy_table
from phaze.errors import ConfigError, InfeasibleError, PhazeError
from phaze.hardware import Accelerator, ArchTable, DesignSpace, area_um2
from phaze.joint import SearchResult, evaluate_architectures, search
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
    evaluate_plan,
    load_instance,
    place,
    place_arrays,
)
from phaze.rows import PlanRow, WorkloadBest
from phaze.schedule import ScheduleCache, check_schedule, schedule_layer, schedule_model
from phaze.sweeps import SweepCell, load_sweep, sweep
from phaze.systems import (
    Breakdown,
    Chip,
    Network,
    NetworkLevel,
    System,
    TrainingPlan,
    best_plans,
    estimate,
    estimate_file,
    load_system,
    memory_per_device,
    read_runs,
    system_names,
)
from phaze.training import Training
from phaze.units import GIB
from phaze.workload import Cluster, Workload

__version__ = "0.1.0.dev0"

__all__ = [
    "GIB",
    "Accelerator",
    "ArchTable",
    "Breakdown",
    "Chip",
    "Cluster",
    "CommPass",
    "ConfigError",
    "DesignSpace",
    "EnergyModel",
    "EnergyTable",
    "InfeasibleError",
    "LatencyTable",
    "Mode",
    "ModelGraph",
    "Network",
    "NetworkLevel",
    "OpKind",
    "OpTable",
    "Pass",
    "PhazeError",
    "PlacementProblem",
    "Plan",
    "PlanRow",
    "ScheduleCache",
    "SearchResult",
    "System",
    "Training",
    "TrainingPlan",
    "SweepCell",
    "TransformerSpec",
    "VcOp",
    "Workload",
    "WorkloadBest",
    "__version__",
    "area_um2",
    "best_plans",
    "build_graph",
    "check_schedule",
    "energy_table",
    "estimate",
    "estimate_file",
    "evaluate_architectures",
    "evaluate_baseline",
    "evaluate_plan",
    "latency_table",
    "load_instance",
    "load_system",
    "memory_per_device",
    "load_sweep",
    "place",
    "place_arrays",
    "preset",
    "preset_names",
    "read_runs",
    "schedule_layer",
    "schedule_model",
    "search",
    "system_names",
    "sweep",
    "unique_ops",
]
