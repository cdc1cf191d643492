"""The accelerator template (docs/hardware.md) and its presets.

An :class:`Accelerator` is ``num_tc`` tensor cores (``tc_width x tc_depth`` MAC arrays, each
with a core SRAM and ``register_words`` weight registers per PE), ``num_vc`` vector cores of
``vc_width`` lanes (each with its own SRAM), one global buffer (GLB) of ``glb_bytes``, HBM of
``hbm_bytes`` at ``hbm_bandwidth_Bps`` and a clock of ``frequency_hz``. The on-chip
bandwidths are given per hierarchy boundary in words per cycle, each either per core (every
core has its own port of that width) or chip-wide (one port shared by all cores).

Presets (:meth:`Accelerator.preset`):

``"phaze"``
    The constants of the original PHAZE cost model (docs/cost-model.md): 1.05 GHz,
    chip-wide bandwidths of 64 (core SRAM -> PE), 256 (GLB -> core SRAM) and 128 (HBM ->
    GLB) words per cycle, 32 register words per PE, no memory term for vector cores. The
    original treated every buffer's byte figure as a number of words; ``word_bytes=1``
    reproduces that. Under it the GEMM kernel tracks the original's tiling optimiser.
``"tpuv4-like"``
    The largest configuration of the paper's design space (8 TCs of 128x128, 2 VCs of 128
    lanes, 128 MiB GLB), which mirrors a TPUv4 chip, with TPUv4's public HBM figures and
    the physically scaled defaults of :class:`Accelerator`: 2-byte words and on-chip
    bandwidths per core (256 words per cycle into each core's PE array and into each
    core's SRAM), sized so that one 128x128 core runs a large GEMM at its peak under the
    GEMM model (phaze/_kernels/gemm.py); a chip-wide figure would make more cores slower
    per core, as the original's did.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from phaze.errors import ConfigError
from phaze.units import GIB, MIB

__all__ = [
    "ACCELERATOR_PRESETS",
    "FLOAT_FIELD_LIMITS",
    "INT_FIELD_LIMITS",
    "Accelerator",
    "GIB",
    "MIB",
]


#: Core SRAM rule of the original (docs/hardware.md): max(1 KiB, 16 bytes per MAC/lane).
SRAM_BYTES_PER_MAC = 16
SRAM_MIN_BYTES = 1024


def core_sram_bytes(width, depth=1):
    """The core-SRAM rule, ``max(1 KiB, 16 bytes per MAC or lane)``, for scalars or arrays
    (``depth=1`` for a vector core of ``width`` lanes)."""
    return np.maximum(SRAM_MIN_BYTES, SRAM_BYTES_PER_MAC * np.asarray(width, np.int64) * depth)


#: Largest value of every integer field (the smallest is 1): far beyond any chip, and
#: small enough that products such as MACs per cycle and SRAM bytes stay exact in int64.
INT_FIELD_LIMITS = MappingProxyType(
    {
        "num_tc": 2**16,
        "tc_width": 2**12,
        "tc_depth": 2**12,
        "num_vc": 2**16,
        "vc_width": 2**16,
        "glb_bytes": 2**40,
        "hbm_bytes": 2**60,
        "register_words": 2**16,
        "word_bytes": 64,
        "tc_sram_bytes": 2**40,
        "vc_sram_bytes": 2**40,
    }
)
_POSITIVE_INTS = tuple(k for k in INT_FIELD_LIMITS if not k.endswith("_sram_bytes"))
#: Largest value of every real field (each must be > 0).
FLOAT_FIELD_LIMITS = MappingProxyType(
    {
        "frequency_hz": 1e12,
        "hbm_bandwidth_Bps": 1e16,
        "sram_pe_words_per_cycle": 1e9,
        "glb_sram_words_per_cycle": 1e9,
    }
)
_POSITIVE_FLOATS = tuple(FLOAT_FIELD_LIMITS)
_BOOLS = ("sram_pe_per_core", "glb_sram_per_core", "vc_memory_term")


def _as_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name}={value!r} must be an integer")
    return int(value)


def _check_high(name: str, value: int) -> None:
    high = INT_FIELD_LIMITS[name]
    if value > high:
        raise ConfigError(f"{name}={value} is invalid; allowed: an integer from 1 to {high}")


@dataclass(frozen=True, slots=True)
class Accelerator:
    """One accelerator of the template; every field in SI units or words/cycle.

    Parameters
    ----------
    num_tc, tc_width, tc_depth : int
        Tensor cores and the MAC-array shape of each.
    num_vc, vc_width : int
        Vector cores and the lanes of each.
    glb_bytes : int
        Global buffer, shared by all cores.
    tc_sram_bytes, vc_sram_bytes : int, optional
        Per-core SRAM (per operand buffer for tensor cores). Default: the original's rule
        ``max(1 KiB, 16 * tc_width * tc_depth)`` and ``max(1 KiB, 16 * vc_width)``.
    frequency_hz : float
        Clock; cycles are converted to seconds with it.
    hbm_bytes, hbm_bandwidth_Bps : int, float
        HBM capacity and bandwidth (the HBM -> GLB boundary).
    sram_pe_words_per_cycle, sram_pe_per_core : float, bool
        Core SRAM -> PE array bandwidth, per core (True) or chip-wide (False).
    glb_sram_words_per_cycle, glb_sram_per_core : float, bool
        GLB -> core SRAM bandwidth, per core or chip-wide; vector cores use it for their
        memory term.
    register_words : int
        Weight registers per PE.
    word_bytes : int
        Bytes per stored element: buffer capacities in words are ``bytes // word_bytes``.
    vc_memory_term : bool
        Add ``bytes moved / bandwidth`` to vector-core latencies (docs/cost-model.md).

    Examples
    --------
    >>> acc = Accelerator.preset("tpuv4-like")
    >>> round(acc.peak_flops / 1e12, 1), acc.tc_sram_bytes
    (275.3, 262144)
    >>> Accelerator(num_tc=0)
    Traceback (most recent call last):
    ...
    phaze.errors.ConfigError: num_tc=0 must be >= 1
    """

    num_tc: int = 8
    tc_width: int = 128
    tc_depth: int = 128
    num_vc: int = 2
    vc_width: int = 128
    glb_bytes: int = 128 * MIB
    tc_sram_bytes: int | None = None
    vc_sram_bytes: int | None = None
    frequency_hz: float = 1.05e9
    hbm_bytes: int = 32 * GIB
    hbm_bandwidth_Bps: float = 1.2e12
    sram_pe_words_per_cycle: float = 256.0
    sram_pe_per_core: bool = True
    glb_sram_words_per_cycle: float = 256.0
    glb_sram_per_core: bool = True
    register_words: int = 32
    word_bytes: int = 2
    vc_memory_term: bool = True

    def __post_init__(self) -> None:
        for name in _POSITIVE_INTS:
            v = _as_int(name, getattr(self, name))
            if v < 1:
                raise ConfigError(f"{name}={v} must be >= 1")
            _check_high(name, v)
            object.__setattr__(self, name, v)
        for name in _POSITIVE_FLOATS:
            v = getattr(self, name)
            if (
                isinstance(v, bool)
                or not isinstance(v, numbers.Real)
                or not v > 0
                or not v <= FLOAT_FIELD_LIMITS[name]
            ):
                raise ConfigError(
                    f"{name}={v!r} is invalid; allowed: a number > 0 and "
                    f"<= {FLOAT_FIELD_LIMITS[name]:g}"
                )
            object.__setattr__(self, name, float(v))
        for name in _BOOLS:
            v = getattr(self, name)
            if not isinstance(v, bool):
                raise ConfigError(f"{name}={v!r} must be True or False")
        derived = {
            "tc_sram_bytes": int(core_sram_bytes(self.tc_width, self.tc_depth)),
            "vc_sram_bytes": int(core_sram_bytes(self.vc_width)),
        }
        for name, default in derived.items():
            v = getattr(self, name)
            v = default if v is None else _as_int(name, v)
            if v < 1:
                raise ConfigError(f"{name}={v} must be >= 1 (or None for the default rule)")
            _check_high(name, v)
            object.__setattr__(self, name, v)

    # ---- derived figures -------------------------------------------------------------
    @property
    def peak_macs_per_cycle(self) -> int:
        """MACs per cycle of all tensor cores."""
        return self.num_tc * self.tc_width * self.tc_depth

    @property
    def peak_flops(self) -> float:
        """Peak tensor-core FLOP/s (2 FLOPs per MAC)."""
        return 2.0 * self.peak_macs_per_cycle * self.frequency_hz

    @property
    def vc_lanes(self) -> int:
        """Lanes of all vector cores."""
        return self.num_vc * self.vc_width

    @property
    def hbm_words_per_cycle(self) -> float:
        """HBM -> GLB bandwidth in words per cycle."""
        return self.hbm_bandwidth_Bps / (self.word_bytes * self.frequency_hz)

    @property
    def area_um2(self) -> float:
        """Chip area in um^2 (:func:`phaze.hardware.area_um2`)."""
        from phaze.hardware.area import area_um2

        return area_um2(self)

    def replace(self, **changes) -> Accelerator:
        """A copy with some fields changed. SRAM sizes are re-derived unless given."""
        if "tc_sram_bytes" not in changes and ({"tc_width", "tc_depth"} & changes.keys()):
            changes["tc_sram_bytes"] = None
        if "vc_sram_bytes" not in changes and "vc_width" in changes:
            changes["vc_sram_bytes"] = None
        return dataclasses.replace(self, **changes)

    @staticmethod
    def preset(name: str) -> Accelerator:
        """The preset ``name`` (see :data:`ACCELERATOR_PRESETS` and the module docstring)."""
        try:
            return ACCELERATOR_PRESETS[name]
        except KeyError:
            raise ConfigError(
                f"unknown accelerator preset {name!r}; allowed: {', '.join(ACCELERATOR_PRESETS)}"
            ) from None


_FREQ = 1.05e9
#: Named presets (read-only mapping).
ACCELERATOR_PRESETS = MappingProxyType(
    {
        # The original cost model's constants (docs/cost-model.md): chip-wide
        # bandwidths 64 / 256 / 128 words per cycle, 32 register words per PE, byte figures
        # used as word counts (word_bytes=1), no vector-core memory term.
        "phaze": Accelerator(
            frequency_hz=_FREQ,
            hbm_bytes=32 * GIB,
            hbm_bandwidth_Bps=128 * 1 * _FREQ,
            sram_pe_words_per_cycle=64.0,
            sram_pe_per_core=False,
            glb_sram_words_per_cycle=256.0,
            glb_sram_per_core=False,
            register_words=32,
            word_bytes=1,
            vc_memory_term=False,
        ),
        # TPUv4-like: 8 TCs of 128x128 at 1.05 GHz = 2 * 131072 * 1.05e9 = 275 TFLOP/s, TPUv4's
        # published bf16 peak (Jouppi et al., "TPU v4", ISCA 2023, Table 1). HBM: 32 GiB of
        # HBM2 at 1200 GB/s per chip (same table; Google Cloud TPU v4 documentation).
        "tpuv4-like": Accelerator(
            frequency_hz=_FREQ,
            hbm_bytes=32 * GIB,
            hbm_bandwidth_Bps=1200e9,
            sram_pe_words_per_cycle=256.0,
            sram_pe_per_core=True,
            glb_sram_words_per_cycle=256.0,
            glb_sram_per_core=True,
            register_words=32,
            word_bytes=2,
            vc_memory_term=True,
        ),
    }
)
