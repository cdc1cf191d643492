"""The design space of accelerator configurations (docs/hardware.md).

A :class:`DesignSpace` lists the allowed values of every template dimension, an area budget
and an area band. :meth:`DesignSpace.enumerate` walks the grid in the original's order
(``num_tc``, ``num_vc``, ``tc_width`` -- with ``vc_width`` tied to it unless given --,
``tc_depth``, ``glb_bytes``; each in the order given) and keeps a configuration when

    f * area_budget <= area <= area_budget,  f = 0 if num_tc == 1 or num_vc == 1 else band.

The defaults are the paper's: powers of two, cores 4096..1, widths and depths 256..2, GLB
128..2 MiB, budget = area of (8 TCs of 128x128, 2 VCs of 128, 128 MiB) = 278,826,676 um^2,
band 0.3 -- exactly the 29,360 configurations of the original, in its order.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np

from phaze.errors import ConfigError
from phaze.hardware.accelerator import INT_FIELD_LIMITS, MIB, Accelerator, core_sram_bytes
from phaze.hardware.archtable import ArchTable
from phaze.hardware.area import area_um2_columns

__all__ = ["DesignSpace", "REFERENCE_MAX_CONFIG"]


def _pow2_desc(hi: int, lo: int) -> tuple[int, ...]:
    out, v = [], hi
    while v >= lo:
        out.append(v)
        v //= 2
    return tuple(out)


#: (num_tc, num_vc, tc_width, tc_depth, vc_width, glb_bytes) of the paper's area budget.
REFERENCE_MAX_CONFIG = (8, 2, 128, 128, 128, 128 * MIB)
_DIMS = ("num_tc", "num_vc", "tc_width", "tc_depth", "vc_width", "glb_bytes")


@dataclass(frozen=True, slots=True)
class DesignSpace:
    """Allowed values of every dimension, the area budget and band (module docstring).

    Parameters
    ----------
    num_tc, num_vc, tc_width, tc_depth, glb_bytes : tuple of int
        Values of each dimension, enumerated in the given order.
    vc_width : tuple of int, optional
        Vector-core widths; ``None`` ties them to ``tc_width`` as the paper does.
    area_budget_um2 : float, optional
        Upper area limit; default the area of :data:`REFERENCE_MAX_CONFIG`.
    area_band : float
        Lower limit as a fraction of the budget (not applied when a core count is 1).
    template : Accelerator
        Source of every other parameter (frequency, bandwidths, registers, HBM ...).
        Core SRAM sizes always follow the rule of docs/hardware.md per configuration.

    Examples
    --------
    >>> t = DesignSpace().enumerate()
    >>> len(t), len(t.tc), len(t.vc)
    (29360, 4186, 697)
    >>> small = DesignSpace(num_tc=(8,), num_vc=(2,), tc_width=(128,), tc_depth=(128,),
    ...                     glb_bytes=(2**27,), area_band=0.0).enumerate()
    >>> len(small), round(float(small.area_um2[0]))
    (1, 278826676)
    """

    num_tc: tuple[int, ...] = _pow2_desc(4096, 1)
    num_vc: tuple[int, ...] = _pow2_desc(4096, 1)
    tc_width: tuple[int, ...] = _pow2_desc(256, 2)
    tc_depth: tuple[int, ...] = _pow2_desc(256, 2)
    vc_width: tuple[int, ...] | None = None
    glb_bytes: tuple[int, ...] = tuple(m * MIB for m in _pow2_desc(128, 2))
    area_budget_um2: float | None = None
    area_band: float = 0.3
    template: Accelerator = field(default_factory=lambda: Accelerator.preset("phaze"))

    def __post_init__(self) -> None:
        for name in _DIMS:
            values = getattr(self, name)
            if values is None and name == "vc_width":
                continue
            if isinstance(values, numbers.Integral):
                values = (values,)
            try:
                values = tuple(values)
            except TypeError:
                raise ConfigError(f"{name}={values!r} must be a sequence of integers") from None
            if not values:
                raise ConfigError(f"{name} is empty; allowed: one or more integers >= 1")
            high = INT_FIELD_LIMITS[name]
            for v in values:
                if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 1 <= v <= high:
                    raise ConfigError(
                        f"{name} has the value {v!r}; allowed: integers from 1 to {high}"
                    )
            if len(set(values)) != len(values):
                raise ConfigError(f"{name}={values} has repeated values")
            object.__setattr__(self, name, tuple(int(v) for v in values))
        band = self.area_band
        if isinstance(band, bool) or not isinstance(band, numbers.Real) or not 0 <= band <= 1:
            raise ConfigError(f"area_band={band!r}; allowed: a number in [0, 1]")
        if not isinstance(self.template, Accelerator):
            raise ConfigError(
                f"template must be an Accelerator, got {type(self.template).__name__}"
            )
        budget = self.area_budget_um2
        if budget is not None:
            if (
                isinstance(budget, bool)
                or not isinstance(budget, numbers.Real)
                or not 0 < budget < float("inf")
            ):
                raise ConfigError(f"area_budget_um2={budget!r} must be a finite number > 0")
            smallest = float(self._grid()[1].min())
            if budget < smallest:
                raise ConfigError(
                    f"area_budget_um2={budget:.6g} is below the smallest "
                    f"configuration of the space ({smallest:.6g} um^2)"
                )

    @property
    def budget_um2(self) -> float:
        """The area budget in force (the default is the reference configuration's area)."""
        if self.area_budget_um2 is not None:
            return float(self.area_budget_um2)
        tc, vc, w, d, vw, glb = REFERENCE_MAX_CONFIG
        srams = core_sram_bytes(w, d), core_sram_bytes(vw)
        return float(area_um2_columns(tc, w, d, vc, vw, glb, *srams))

    def _grid(self) -> tuple[dict, np.ndarray]:
        tied = self.vc_width is None
        axes = [self.num_tc, self.num_vc, self.tc_width, self.tc_depth]
        if not tied:
            axes.append(self.vc_width)
        axes.append(self.glb_bytes)
        mesh = np.meshgrid(*[np.asarray(a, dtype=np.int64) for a in axes], indexing="ij")
        flat = [m.reshape(-1) for m in mesh]
        cols = {
            "num_tc": flat[0],
            "num_vc": flat[1],
            "tc_width": flat[2],
            "tc_depth": flat[3],
            "glb_bytes": flat[-1],
            "vc_width": flat[2] if tied else flat[4],
        }
        cols["tc_sram_bytes"] = core_sram_bytes(cols["tc_width"], cols["tc_depth"])
        cols["vc_sram_bytes"] = core_sram_bytes(cols["vc_width"])
        area = area_um2_columns(
            cols["num_tc"],
            cols["tc_width"],
            cols["tc_depth"],
            cols["num_vc"],
            cols["vc_width"],
            cols["glb_bytes"],
            cols["tc_sram_bytes"],
            cols["vc_sram_bytes"],
        )
        return cols, area

    def enumerate(self) -> ArchTable:
        """Every configuration within the area budget and band, in grid order."""
        cols, area = self._grid()
        budget = self.budget_um2
        f = np.where((cols["num_tc"] == 1) | (cols["num_vc"] == 1), 0.0, self.area_band)
        keep = (f * budget <= area) & (area <= budget)
        if not keep.any():
            raise ConfigError(
                f"no configuration of the space lies in the area band "
                f"[{self.area_band} * {budget:.6g}, {budget:.6g}] um^2"
            )
        kept = {k: v[keep] for k, v in cols.items()}
        return ArchTable.from_columns(self.template, **kept, area_um2=area[keep])
