"""Hardware side of phaze: the accelerator template, its area and the design space.

* :class:`Accelerator` -- one configuration (frozen dataclass, SI units) and its presets
  (:meth:`Accelerator.preset`: ``"phaze"``, ``"tpuv4-like"``).
* :func:`area_um2` -- chip area (docs/hardware.md).
* :class:`DesignSpace` -- the grid of configurations; :meth:`DesignSpace.enumerate` returns
  an :class:`ArchTable` (numpy columns, unique tensor-/vector-core sub-configurations).
"""

from phaze.hardware.accelerator import ACCELERATOR_PRESETS, GIB, MIB, Accelerator
from phaze.hardware.archtable import ArchTable, CoreConfigs
from phaze.hardware.area import SRAM_AREA_TABLE, area_um2, area_um2_columns, sram_area_um2
from phaze.hardware.space import REFERENCE_MAX_CONFIG, DesignSpace

__all__ = [
    "ACCELERATOR_PRESETS",
    "Accelerator",
    "ArchTable",
    "CoreConfigs",
    "DesignSpace",
    "GIB",
    "MIB",
    "REFERENCE_MAX_CONFIG",
    "SRAM_AREA_TABLE",
    "area_um2",
    "area_um2_columns",
    "sram_area_um2",
]
