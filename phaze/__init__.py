"""phaze: joint search of ML training accelerators and their distributed execution plans.

A pip-installable re-creation of PHAZE ("Integrated Hardware Architecture and Device
Placement Search", ICML 2024). See README.md for the quickstart.
"""

from phaze.errors import ConfigError, InfeasibleError, PhazeError
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

__version__ = "0.1.0.dev0"

__all__ = [
    "CommPass",
    "ConfigError",
    "InfeasibleError",
    "Mode",
    "ModelGraph",
    "OpKind",
    "OpTable",
    "Pass",
    "PhazeError",
    "TransformerSpec",
    "VcOp",
    "__version__",
    "build_graph",
    "preset",
    "preset_names",
    "unique_ops",
]
