"""Units: the package's one definition of binary byte multiples and display conversions.

Everything inside phaze is in SI base units (seconds, bytes, hertz, square micrometres);
these constants convert at the edges (command-line flags in GiB and mm², reports).

Examples
--------
>>> from phaze.units import GIB, MIB, UM2_PER_MM2
>>> 32 * GIB, 2 * MIB, 278.8 * UM2_PER_MM2
(34359738368, 2097152, 278800000.0)
"""

from __future__ import annotations

__all__ = ["GIB", "KIB", "MIB", "UM2_PER_MM2"]

KIB = 2**10
MIB = 2**20
GIB = 2**30
#: Square micrometres per square millimetre (areas are µm² inside, mm² for people).
UM2_PER_MM2 = 1e6
