"""Chip area of an accelerator (docs/hardware.md), in um^2 at 22 nm.

::

    area = num_tc * w * d * 760.041386 + num_tc * A_sram(tc_sram_bytes)
         + num_vc * vw * 759.823853 + num_vc * A_sram(vc_sram_bytes) + A_sram(glb_bytes)

This reproduces the original's Accelergy/CACTI figures (shared reference ``cores.json``,
29,360 configurations) to rounding. ``A_sram`` is the original's SRAM table
(:data:`SRAM_AREA_TABLE`, 1 KiB .. 128 MiB). Between two table points it is interpolated
linearly in log(size)-log(area), i.e. as a power law ``a * size**b`` fitted through the two
neighbours; outside the table the end segment's power law is extended. Table points are
returned exactly.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SRAM_AREA_TABLE",
    "TC_MAC_AREA_UM2",
    "VC_LANE_AREA_UM2",
    "area_um2",
    "area_um2_columns",
    "sram_area_um2",
]

#: Area of one tensor-core MAC (um^2), from the original's Accelergy tables.
TC_MAC_AREA_UM2 = 760.041386
#: Area of one vector-core lane (um^2).
VC_LANE_AREA_UM2 = 759.823853

#: (bytes, um^2) SRAM area points of the original (shared reference sram_area_um2.csv).
SRAM_AREA_TABLE = (
    (1024, 6133.98),
    (2048, 8248.43),
    (4096, 12610.5),
    (8192, 22139.9),
    (16384, 38583.0),
    (32768, 63338.4),
    (65536, 115579.0),
    (131072, 204764.0),
    (262144, 446565.0),
    (524288, 897890.0),
    (1048576, 1634130.0),
    (2097152, 3338220.0),
    (4194304, 6078640.0),
    (8388608, 11952400.0),
    (16777216, 23745200.0),
    (33554432, 46750900.0),
    (67108864, 88605700.0),
    (134217728, 175423000.0),
)
_SIZES = np.array([s for s, _ in SRAM_AREA_TABLE], dtype=np.float64)
_AREAS = np.array([a for _, a in SRAM_AREA_TABLE], dtype=np.float64)
_LOG_S = np.log(_SIZES)
_LOG_A = np.log(_AREAS)


def sram_area_um2(size_bytes):
    """SRAM area (um^2) of ``size_bytes`` (scalar or array), log-log interpolated.

    Examples
    --------
    >>> sram_area_um2(1024)
    6133.98
    >>> round(float(sram_area_um2(1536)), 1)  # between 1 KiB and 2 KiB
    7294.3
    """
    s = np.asarray(size_bytes, dtype=np.float64)
    if np.any(~(s > 0)):
        raise ValueError(f"SRAM size must be > 0 bytes, got {s.min()!r}")
    ls = np.log(s)
    # segment index i: interpolate between points i and i+1 (end segments extrapolate)
    i = np.clip(np.searchsorted(_LOG_S, ls, side="right") - 1, 0, len(_LOG_S) - 2)
    slope = (_LOG_A[i + 1] - _LOG_A[i]) / (_LOG_S[i + 1] - _LOG_S[i])
    out = np.exp(_LOG_A[i] + slope * (ls - _LOG_S[i]))
    exact = np.searchsorted(_SIZES, s)
    hit = (exact < len(_SIZES)) & (_SIZES[np.minimum(exact, len(_SIZES) - 1)] == s)
    out = np.where(hit, _AREAS[np.minimum(exact, len(_SIZES) - 1)], out)
    return float(out) if out.ndim == 0 else out


def area_um2_columns(
    num_tc, tc_width, tc_depth, num_vc, vc_width, glb_bytes, tc_sram_bytes, vc_sram_bytes
) -> np.ndarray:
    """Vectorised :func:`area_um2` over equal-length columns (float64 um^2)."""
    num_tc, tc_width, tc_depth, num_vc, vc_width = (
        np.asarray(x, dtype=np.float64) for x in (num_tc, tc_width, tc_depth, num_vc, vc_width)
    )
    return (
        num_tc * tc_width * tc_depth * TC_MAC_AREA_UM2
        + num_tc * sram_area_um2(np.asarray(tc_sram_bytes, dtype=np.float64))
        + num_vc * vc_width * VC_LANE_AREA_UM2
        + num_vc * sram_area_um2(np.asarray(vc_sram_bytes, dtype=np.float64))
        + sram_area_um2(np.asarray(glb_bytes, dtype=np.float64))
    )


def area_um2(acc) -> float:
    """Chip area (um^2) of an :class:`~phaze.hardware.Accelerator` (module docstring).

    Examples
    --------
    >>> from phaze.hardware import Accelerator
    >>> round(area_um2(Accelerator.preset("tpuv4-like")))  # the paper's area budget
    278826676
    """
    return float(
        area_um2_columns(
            acc.num_tc,
            acc.tc_width,
            acc.tc_depth,
            acc.num_vc,
            acc.vc_width,
            acc.glb_bytes,
            acc.tc_sram_bytes,
            acc.vc_sram_bytes,
        )
    )
