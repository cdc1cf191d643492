"""Board power and energy of real GPUs running a training iteration.

A GPU board draws its idle power whenever it is on, plus the dynamic energy of the work
it does: tensor-core FLOPs, bytes read from the on-chip L2, bytes moved to and from HBM,
and bits sent over NVLink and to the scale-out network. :class:`ChipPower` holds those
constants for one chip; :data:`A100_SXM_POWER` and :data:`H100_SXM_POWER` are derived
below from published figures (every source: docs/energy.md, "Board power of real
systems"). :class:`Work` counts what one device does; :func:`board_power_w` turns work and
seconds into average board power; :func:`iteration_power` prices a whole training
iteration from the work of each pipeline stage.

The model is never capped at the TDP: a result above it is reported as such
(:attr:`IterationPower.exceeds_tdp`). A real GPU would throttle its clocks instead and run
slower, which the time model does not capture.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

from phaze.energy import EnergyModel
from phaze.errors import ConfigError
from phaze.units import MIB

__all__ = [
    "A100_SXM_POWER",
    "H100_SXM_POWER",
    "ChipPower",
    "IterationPower",
    "Work",
    "board_power_w",
    "energy_by_category_j",
    "gemm_counts",
    "gemm_work",
    "iteration_power",
    "node_energy_factor",
    "total_work",
]

BYTES = 2  # fp16/bf16 operands


# ------------------------------------------------------------------ technology scaling

#: Energy-per-operation fits of Stillmaker & Baas, "Scaling equations for the accurate
#: prediction of CMOS device performance from 180 nm to 7 nm", Integration 58 (2017):
#: energy factor ``a V^2 + b V + c`` per node (nm -> (a, b, c)). Only the nodes used here.
_STILLMAKER_ENERGY = {
    32: (0.9559, -0.7823, 0.471),
    20: (0.373, -0.1582, 0.04104),
    7: (0.1776, -0.09097, 0.02447),
}
#: Supply voltage at which both nodes are compared (the factor is 0.30 at 0.7 V and 0.35
#: at 1.0 V; docs/energy.md).
_SCALING_VDD = 0.8


def node_energy_factor(node_nm: float, vdd: float = _SCALING_VDD) -> float:
    """Stillmaker & Baas's energy factor of a node (20-32 nm interpolated linearly).

    Only the nodes this module scales between are tabulated: 7 nm and 20-32 nm.

    Examples
    --------
    >>> round(node_energy_factor(7) / node_energy_factor(22), 3)  # 22 nm -> 7 nm at 0.8 V
    0.321
    """

    def poly(node: int) -> float:
        a, b, c = _STILLMAKER_ENERGY[node]
        return a * vdd * vdd + b * vdd + c

    if node_nm in _STILLMAKER_ENERGY:
        return poly(int(node_nm))
    if 20 <= node_nm <= 32:
        w = (node_nm - 20) / (32 - 20)
        return (1 - w) * poly(20) + w * poly(32)
    raise ConfigError(f"node_nm={node_nm!r} is not tabulated; allowed: 7 or 20..32")


# ------------------------------------------------------------------------- constants


@dataclass(frozen=True, slots=True)
class ChipPower:
    """Power constants of one GPU board (joules, watts).

    Parameters
    ----------
    tdp_w : float
        Board power limit (thermal design power), W.
    idle_w : float
        Board power with nothing running (static and idle-clock power), W; drawn for the
        whole iteration.
    flop_j : float
        One dense fp16/bf16 tensor-core FLOP, J: the multiply-add and its operands'
        register-file and shared-memory traffic.
    l2_byte_j : float
        One byte read from the on-chip L2 cache into an SM, J.
    hbm_byte_j : float
        One byte read from or written to HBM, J.
    nvlink_bit_j : float
        One bit sent on the innermost network level (NVLink), J (transmitter and receiver).
    scale_out_bit_j : float
        One bit sent on any outer level (to the InfiniBand NIC over PCIe), J; the NIC's
        and the switches' own power is not the GPU board's.
    """

    tdp_w: float
    idle_w: float
    flop_j: float
    l2_byte_j: float
    hbm_byte_j: float
    nvlink_bit_j: float
    scale_out_bit_j: float

    def __post_init__(self) -> None:
        for field in ChipPower.__slots__:
            value = getattr(self, field)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
            ):
                raise ConfigError(f"chip power {field}={value!r} must be a number >= 0")
        if not self.tdp_w > 0:
            raise ConfigError(f"chip power tdp_w={self.tdp_w!r} must be > 0")
        if self.idle_w > self.tdp_w:
            raise ConfigError(
                f"chip power idle_w={self.idle_w!r} must not exceed tdp_w={self.tdp_w!r}"
            )

    def link_bit_j(self, level: int) -> float:
        """Energy per bit on network level ``level`` (0 = NVLink)."""
        return self.nvlink_bit_j if level == 0 else self.scale_out_bit_j

    def to_dict(self) -> dict:
        return {f: getattr(self, f) for f in ChipPower.__slots__}


_TEMPLATE = EnergyModel()  # the accelerator template's 22 nm constants
_TO_7NM = node_energy_factor(7) / node_energy_factor(22)
#: Operand traffic of one tensor-core FLOP (bytes/FLOP). Register file: an
#: mma.m16n8k16 (4,096 FLOPs) reads its fp16 A (512 B) and B (256 B) fragments and fp32
#: C (512 B) and writes D (512 B): 0.4375 B/FLOP. Shared memory: a 64x64 warp tile reads
#: its A and B slices, 2 (64 + 64) / (2 * 64 * 64) = 1/32 B/FLOP, after the 128x128 block
#: tile wrote them, 1/64 B/FLOP.
_REGISTER_BYTES_PER_FLOP = (512 + 256 + 512 + 512) / 4096
_SMEM_BYTES_PER_FLOP = 1 / 32 + 1 / 64
#: HBM2: 3.9 pJ/bit (O'Connor et al., "Fine-grained DRAM", MICRO 2017).
_HBM_BYTE_J = 3.9e-12 * 8
#: NVLink: an off-package SerDes at 5.5 pJ/bit (NVIDIA's comparison with NVLink-C2C's
#: 1.3 pJ/bit). Scale-out: the GPU's PCIe link to the NIC, the template's 3.86 pJ/bit
#: (a PCIe Gen4 transmitter, 1.93 pJ/bit, twice for the receiver).
_NVLINK_BIT_J = 5.5e-12
_SCALE_OUT_BIT_J = _TEMPLATE.network_j_per_bit


def _flop_j(smem_bytes: float) -> float:
    """Template MAC (per FLOP) plus operand register and shared-memory traffic, 22 nm
    constants (per 2-byte word) scaled to 7 nm."""
    reg = _TEMPLATE.register_access_j / BYTES
    smem = float(_TEMPLATE.sram_access_j_of(smem_bytes)) / BYTES
    mac = _TEMPLATE.mac_j / 2
    return (mac + _REGISTER_BYTES_PER_FLOP * reg + _SMEM_BYTES_PER_FLOP * smem) * _TO_7NM


def _l2_byte_j(l2_bytes: float) -> float:
    """Template GLB access energy at the L2's size (per byte), scaled to 7 nm."""
    return float(_TEMPLATE.glb_access_j_of(l2_bytes)) / BYTES * _TO_7NM


#: A100 SXM (TSMC N7): 400 W (NVIDIA A100 datasheet); idle 53 W (public nvidia-smi
#: telemetry of four idle A100-SXM4 boards, 52.5-54.3 W: the gpus.csv of the Hugging Face
#: space seawolf2357/PLUS_Lab_GPUs); 192 KiB shared memory/L1 per SM and
#: 40 MiB of L2 (A100 whitepaper); HBM2e at the HBM2 figure.
A100_SXM_POWER = ChipPower(
    tdp_w=400.0,
    idle_w=53.0,
    flop_j=_flop_j(192 * 1024),
    l2_byte_j=_l2_byte_j(40 * MIB),
    hbm_byte_j=_HBM_BYTE_J,
    nvlink_bit_j=_NVLINK_BIT_J,
    scale_out_bit_j=_SCALE_OUT_BIT_J,
)
#: H100 SXM (TSMC 4N): 700 W (NVIDIA H100 datasheet); idle 64 W (NVIDIA's DGX user guide,
#: "Managing Power Capping": a 700 W-limit HGX GPU reads 64.4 W at rest); 256 KiB shared
#: memory/L1 per SM and 50 MiB of L2 (H100 whitepaper). The 7 nm scaling is kept
#: (Stillmaker & Baas stop at 7 nm), so per-operation energies are upper bounds; HBM3 at
#: the HBM2 figure (no published HBM3 figure found).
H100_SXM_POWER = ChipPower(
    tdp_w=700.0,
    idle_w=64.0,
    flop_j=_flop_j(256 * 1024),
    l2_byte_j=_l2_byte_j(50 * MIB),
    hbm_byte_j=_HBM_BYTE_J,
    nvlink_bit_j=_NVLINK_BIT_J,
    scale_out_bit_j=_SCALE_OUT_BIT_J,
)


# ------------------------------------------------------------------------------ work


@dataclass(frozen=True, slots=True)
class Work:
    """What one device does: counts, not times.

    Parameters
    ----------
    flops : float
        Dense tensor-core FLOPs (2 per multiply-add).
    l2_bytes : float
        Bytes the SMs read from L2 (GEMM operand panels, element-wise kernels' traffic).
    hbm_bytes : float
        Bytes read from and written to HBM.
    link_bytes : tuple of float
        Bytes sent on each network level, innermost first.

    Examples
    --------
    >>> w = Work(flops=2.0, link_bytes=(1.0,)) + Work(hbm_bytes=3.0, link_bytes=(0.0, 4.0))
    >>> w.flops, w.hbm_bytes, w.link_bytes
    (2.0, 3.0, (1.0, 4.0))
    """

    flops: float = 0.0
    l2_bytes: float = 0.0
    hbm_bytes: float = 0.0
    link_bytes: tuple[float, ...] = ()

    def __add__(self, other: Work) -> Work:
        a, b = self.link_bytes, other.link_bytes
        if not b:
            links = a
        elif not a:
            links = b
        else:
            if len(a) != len(b):  # pad the shorter with zeros
                n = max(len(a), len(b))
                a, b = a + (0.0,) * (n - len(a)), b + (0.0,) * (n - len(b))
            links = tuple(map(operator.add, a, b))
        return Work(
            self.flops + other.flops,
            self.l2_bytes + other.l2_bytes,
            self.hbm_bytes + other.hbm_bytes,
            links,
        )

    def scaled(self, k: float) -> Work:
        """``k`` times the work."""
        return Work(
            self.flops * k,
            self.l2_bytes * k,
            self.hbm_bytes * k,
            tuple(x * k for x in self.link_bytes),
        )


def total_work(parts: Sequence[Work]) -> Work:
    """The sum of several works."""
    out = Work()
    for w in parts:
        out = out + w
    return out


def gemm_work(batch: float, m: float, k: float, n: float, tile_m: int = 128, tile_n: int = 128):
    """Work of one (batched) ``m x k @ k x n`` fp16 GEMM.

    ``2 batch m k n`` FLOPs; every ``tile_m x tile_n`` output tile reads its ``tile_m x k``
    and ``k x tile_n`` operand panels from L2; HBM moves the operands and the result
    once (the time model's memory floor).

    Examples
    --------
    >>> w = gemm_work(1, 8192, 8192, 8192)
    >>> w.flops == 2 * 8192**3, w.hbm_bytes == 2 * 3 * 8192**2
    (True, True)
    """
    return Work(*gemm_counts(batch, m, k, n, tile_m, tile_n))


def gemm_counts(batch, m, k, n, tile_m: int = 128, tile_n: int = 128) -> tuple:
    """``(flops, l2_bytes, hbm_bytes)`` of :func:`gemm_work` as plain floats (for hot
    loops that add many GEMMs before making one :class:`Work`)."""
    tiles = batch * math.ceil(m / tile_m) * math.ceil(n / tile_n)
    return (
        2.0 * batch * m * k * n,
        float(BYTES * tiles * k * (tile_m + tile_n)),
        float(BYTES * batch * (m * k + k * n + m * n)),
    )


def energy_by_category_j(power: ChipPower, work: Work) -> dict[str, float]:
    """Dynamic energy of ``work`` by resource, joules: ``compute_j`` (FLOPs), ``l2_j``,
    ``hbm_j``, ``network_j`` (every level). The total is their sum.

    Examples
    --------
    >>> e = energy_by_category_j(A100_SXM_POWER, Work(flops=1e12))
    >>> e["compute_j"] > 0 and e["hbm_j"] == e["l2_j"] == e["network_j"] == 0
    True
    """
    net = sum(8.0 * b * power.link_bit_j(j) for j, b in enumerate(work.link_bytes))
    return {
        "compute_j": work.flops * power.flop_j,
        "l2_j": work.l2_bytes * power.l2_byte_j,
        "hbm_j": work.hbm_bytes * power.hbm_byte_j,
        "network_j": net,
    }


def board_power_w(power: ChipPower, work: Work, seconds: float) -> float:
    """Average board power (W) of a device doing ``work`` in ``seconds``: idle power plus
    the dynamic energy over the time. Not capped at the TDP.

    Examples
    --------
    >>> board_power_w(A100_SXM_POWER, Work(), 1.0) == A100_SXM_POWER.idle_w
    True
    """
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ConfigError(f"seconds={seconds!r} must be a finite number > 0")
    return power.idle_w + sum(energy_by_category_j(power, work).values()) / seconds


# ------------------------------------------------------------------------- iteration


@dataclass(frozen=True, slots=True)
class IterationPower:
    """Power and energy of one training iteration on the whole cluster.

    ``power_w`` is the average board power per device; ``max_power_w`` that of a device
    of the busiest pipeline stage (all devices of a stage do the same work); the energy
    terms are the whole cluster's joules per iteration, by resource, and add up to
    ``energy_per_iteration_j``.
    """

    power_w: float
    max_power_w: float
    tdp_w: float
    energy_per_iteration_j: float
    energy_per_sample_j: float
    idle_j: float
    compute_j: float
    l2_j: float
    hbm_j: float
    network_j: float

    @property
    def exceeds_tdp(self) -> bool:
        """The busiest device's average power is above the board's TDP (a real GPU would
        throttle and run slower than predicted)."""
        return self.max_power_w > self.tdp_w

    def to_dict(self) -> dict:
        out = {f: getattr(self, f) for f in IterationPower.__slots__}
        out["exceeds_tdp"] = self.exceeds_tdp
        return out


def iteration_power(
    power: ChipPower,
    stage_work: Sequence[Work],
    devices_per_stage: int,
    iteration_s: float,
    samples: int,
) -> IterationPower:
    """Power and energy of an iteration whose pipeline stage ``i`` runs on
    ``devices_per_stage`` devices, each doing ``stage_work[i]`` in ``iteration_s``.

    Examples
    --------
    >>> p = iteration_power(A100_SXM_POWER, [Work(flops=1e12), Work()], 8, 1.0, 64)
    >>> p.max_power_w > p.power_w > A100_SXM_POWER.idle_w
    True
    """
    if not stage_work:
        raise ConfigError("iteration_power needs at least one stage")
    if isinstance(devices_per_stage, bool) or not isinstance(devices_per_stage, int):
        raise ConfigError(f"devices_per_stage={devices_per_stage!r} must be an integer >= 1")
    if devices_per_stage < 1 or samples < 1:
        raise ConfigError(
            f"devices_per_stage={devices_per_stage!r} and samples={samples!r} must be >= 1"
        )
    if not (iteration_s > 0 and math.isfinite(iteration_s)):
        raise ConfigError(f"iteration_s={iteration_s!r} must be a finite number > 0")
    devices = devices_per_stage * len(stage_work)
    cats = {"compute_j": 0.0, "l2_j": 0.0, "hbm_j": 0.0, "network_j": 0.0}
    stage_w = []
    for w in stage_work:
        e = energy_by_category_j(power, w)
        for key, value in e.items():
            cats[key] += devices_per_stage * value
        stage_w.append(power.idle_w + sum(e.values()) / iteration_s)
    idle_j = power.idle_w * devices * iteration_s
    total = idle_j + sum(cats.values())
    return IterationPower(
        power_w=total / (devices * iteration_s),
        max_power_w=max(stage_w),
        tdp_w=power.tdp_w,
        energy_per_iteration_j=total,
        energy_per_sample_j=total / samples,
        idle_j=idle_j,
        **cats,
    )
