"""Real training systems: GPU clusters with network levels, Megatron's training model,
run estimation against measurements and the plan search (docs/real-systems.md)."""

from phaze.systems.estimate import Estimate, accuracy, estimate, estimate_file
from phaze.systems.network import Network, NetworkLevel
from phaze.systems.plan import PlanResult, best_plans
from phaze.systems.power import ChipPower, IterationPower, Work
from phaze.systems.presets import SYSTEMS, Chip, System, load_system, system_names
from phaze.systems.runs import Run, RunError, parse_run, read_runs
from phaze.systems.training import (
    RECOMPUTE_MODES,
    Breakdown,
    TrainingPlan,
    iteration,
    memory_per_device,
)

__all__ = [
    "RECOMPUTE_MODES",
    "SYSTEMS",
    "Breakdown",
    "Chip",
    "ChipPower",
    "Estimate",
    "IterationPower",
    "Network",
    "NetworkLevel",
    "PlanResult",
    "Run",
    "RunError",
    "System",
    "TrainingPlan",
    "Work",
    "accuracy",
    "best_plans",
    "estimate",
    "estimate_file",
    "iteration",
    "load_system",
    "memory_per_device",
    "parse_run",
    "read_runs",
    "system_names",
]
