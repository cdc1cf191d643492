"""Energy and power: per-operator dynamic energy, leakage, and a plan's power.

:class:`EnergyModel` holds every energy constant of the package, each with its source
(docs/energy.md). :func:`energy_table` prices every operator of a
:class:`~phaze.cost.LatencyTable` on every architecture, in both modes and passes, from
the figures the latency model already computed: the multiply-accumulates of the GEMMs, the
words its chosen tiling moves across each boundary, the vector work and the bits a
collective sends. :func:`plan_energy` turns a plan's dynamic energy per batch and its time
per batch into the average power per device and the energy per sample.

Energy is charged for the tiling the latency model chose (least time, then the first split
found); a tiling chosen for least energy could be cheaper, the same way the original's
optimiser chose for least energy x delay. Every constant is per word of the default 2-byte
precision; a word-size change does not rescale them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phaze._kernels.energy import op_charged_energy, op_energy
from phaze._kernels.vector import vc_cycles
from phaze.cost import LatencyTable
from phaze.errors import ConfigError
from phaze.opcodes import OpKind
from phaze.units import KIB, MIB, UM2_PER_MM2
from phaze.validate import check_number

__all__ = ["EnergyModel", "EnergyTable", "charged_energy_j", "energy_table"]


@dataclass(frozen=True, slots=True)
class EnergyModel:
    """Energy constants at 22 nm (the node of the area model), in joules and watts.

    On-chip SRAM access energy grows with the array: ``E(size) = E_ref * (size /
    size_ref) ** sram_size_exponent``, the square-root trend of CACTI-style tables
    (Horowitz, ISSCC 2014: 10, 20 and 100 pJ per 64-bit read of an 8 KB, 32 KB and 1 MB
    SRAM at 45 nm, an exponent of 0.47). The reference sizes are those of the TPUv4-like
    reference design (8 tensor cores of 128 x 128 with 256 KiB of core SRAM each, 128 MiB
    of GLB), at which the model gives the original's figures.

    Attributes
    ----------
    mac_j : float
        One 2-byte multiply-accumulate: 2.2 pJ (the original's tiling optimiser).
    register_access_j : float
        One PE register access: 0.2 pJ (the original).
    core_sram_access_j : float
        One word access of a core SRAM of ``core_sram_ref_bytes``: 3 pJ (the original).
    core_sram_ref_bytes : int
        256 KiB (16 bytes per PE of a 128 x 128 core).
    glb_access_j : float
        One word access of a GLB of ``glb_ref_bytes``: 30 pJ (the original).
    glb_ref_bytes : int
        128 MiB (the reference design's GLB).
    sram_size_exponent : float
        0.5 (Horowitz 2014's table above gives 0.47).
    hbm_access_j : float
        One word read from HBM: 100 pJ (the original; 6.25 pJ/bit, between HBM2's
        published 3.9 pJ/bit, O'Connor et al., MICRO 2017, and GDDR5's).
    vector_op_j : float
        One vector lane-cycle of work: 2.2 pJ, priced as a MAC (a lane does at most one
        fused multiply-add per cycle; the original has no vector figure).
    network_j_per_bit : float
        One bit sent to another device: 3.86 pJ, twice the 1.93 pJ/bit of a PCIe Gen4
        transmitter in 28 nm (Bae et al., Electronics 10(1):68, 2021), the receiver taken
        to cost as much as the transmitter.
    leakage_w_per_mm2 : float
        Static power per mm^2 of die: 0.085 W (TPUv1's idle power, 28 W, over its
        331 mm^2 die in 28 nm; Jouppi et al., ISCA 2017, Table 2), not scaled to 22 nm.

    Examples
    --------
    >>> m = EnergyModel()
    >>> round(float(m.sram_access_j_of(4 * 256 * 1024)) * 1e12, 6)  # 4x the size: 2x the energy
    6.0
    """

    mac_j: float = 2.2e-12
    register_access_j: float = 0.2e-12
    core_sram_access_j: float = 3e-12
    core_sram_ref_bytes: int = 256 * KIB
    glb_access_j: float = 30e-12
    glb_ref_bytes: int = 128 * MIB
    sram_size_exponent: float = 0.5
    hbm_access_j: float = 100e-12
    vector_op_j: float = 2.2e-12
    network_j_per_bit: float = 3.86e-12
    leakage_w_per_mm2: float = 0.085

    def __post_init__(self) -> None:
        for name in (
            "mac_j",
            "register_access_j",
            "core_sram_access_j",
            "glb_access_j",
            "hbm_access_j",
            "vector_op_j",
            "network_j_per_bit",
        ):
            check_number(name, getattr(self, name), low_inclusive=True, high=1e-6, unit="J")
        check_number("leakage_w_per_mm2", self.leakage_w_per_mm2, low_inclusive=True, unit="W")
        check_number("sram_size_exponent", self.sram_size_exponent, low_inclusive=True, high=2)
        for name in ("core_sram_ref_bytes", "glb_ref_bytes"):
            check_number(name, getattr(self, name), high=2.0**60, unit="bytes")

    def sram_access_j_of(self, size_bytes) -> np.ndarray:
        """Joules per word access of a core (or vector-core) SRAM of ``size_bytes``."""
        size = np.asarray(size_bytes, dtype=np.float64)
        ratio = size / float(self.core_sram_ref_bytes)
        return self.core_sram_access_j * ratio**self.sram_size_exponent

    def glb_access_j_of(self, glb_bytes) -> np.ndarray:
        """Joules per word access of a GLB of ``glb_bytes``."""
        size = np.asarray(glb_bytes, dtype=np.float64)
        return self.glb_access_j * (size / float(self.glb_ref_bytes)) ** self.sram_size_exponent

    def leakage_w(self, area_um2) -> np.ndarray:
        """Static power (W) of a die of ``area_um2``."""
        return self.leakage_w_per_mm2 * np.asarray(area_um2, dtype=np.float64) / UM2_PER_MM2


@dataclass(frozen=True, eq=False)
class EnergyTable:
    """Energies of operators on architectures (see :func:`energy_table`).

    Attributes
    ----------
    energy_j : float64 (ops, archs, 2, 2)
        Joules by [op, arch, mode (0 one core, 1 all cores), pass (0 fwd, 1 bwd)], the
        layout of :attr:`phaze.cost.LatencyTable.latency_s`.
    macs, vc_ops, net_bits : float64 (ops, 2)
        Per operator and pass: MACs, vector lane-cycles of work, bits sent per device.
    model : EnergyModel
    """

    energy_j: np.ndarray
    macs: np.ndarray
    vc_ops: np.ndarray
    net_bits: np.ndarray
    model: EnergyModel

    def charged_j(self, latency_s: np.ndarray) -> np.ndarray:
        """Energy of each operator in the mode it runs faster in (ties: all cores), the
        mode a layer schedule of a chain of operators uses: float64 (ops, archs, 2)."""
        all_cores = latency_s[:, :, 1] <= latency_s[:, :, 0]
        return np.where(all_cores, self.energy_j[:, :, 1], self.energy_j[:, :, 0])


def _checked(latency, model) -> tuple:
    """``(latency, model)`` checked, with the default model for None."""
    if not isinstance(latency, LatencyTable):
        raise ConfigError(
            f"latency must be a phaze.cost.LatencyTable, got {type(latency).__name__}"
        )
    model = EnergyModel() if model is None else model
    if not isinstance(model, EnergyModel):
        raise ConfigError(f"model must be an EnergyModel, got {type(model).__name__}")
    return latency, model


def _read_only(x) -> np.ndarray:
    """``x`` as a C-contiguous float64 array that cannot be written (a view: no copy of a
    latency table's arrays, which are read only). The kernels take the latency table's
    arrays read only, always: numba compiles writable and read-only arrays separately."""
    view = np.ascontiguousarray(x, np.float64).view()
    view.setflags(write=False)
    return view


def _arg(x, dtype) -> np.ndarray:
    return np.require(x, dtype=dtype, requirements=["C", "W"])


def _work(latency: LatencyTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACs, vector lane-cycles and bits sent per device, (ops, 2) each."""
    ops = latency.op_table
    n = len(ops)
    kind = ops.kind
    gemm = (kind == OpKind.TC) | (kind == OpKind.TC_VC)
    fwd = np.where(
        gemm,
        ops.gemm_b.astype(np.float64) * ops.gemm_m * ops.gemm_k * ops.gemm_n,
        0.0,
    )
    macs = np.stack([fwd, 2.0 * fwd], axis=1)  # backward: input and weight gradients
    vc_rows = np.flatnonzero(np.diff(ops.vc_ptr) > 0)
    lane = np.zeros((len(vc_rows), 1, 2, 2))
    if len(vc_rows):
        one, f8, i8, b1 = np.ones(1, np.int64), np.float64, np.int64, np.bool_
        vc_cycles(
            _arg(vc_rows, i8),
            *(_arg(getattr(ops, c), i8) for c in ("vc_ptr", "vc_code", "vc_elems", "vc_aux")),
            np.zeros(len(vc_rows), b1),
            _arg(one, i8),
            _arg(one, i8),
            np.zeros(1, b1),
            np.ones(1, f8),
            np.zeros(1, b1),
            lane,
            np.zeros_like(lane),
        )
    vc_ops = np.zeros((n, 2))
    vc_ops[vc_rows] = lane[:, 0, 0, :]
    bits = np.zeros((n, 2))
    comm = np.flatnonzero(kind == OpKind.COMM)
    if len(comm):
        t = ops.comm_group[comm].astype(np.float64)
        sent = 2.0 * (t - 1.0) / t * ops.comm_bytes[comm] * 8.0  # ring all-reduce, per device
        bits[comm, ops.comm_pass[comm]] = sent
    return macs, vc_ops, bits


def energy_table(latency: LatencyTable, model: EnergyModel | None = None) -> EnergyTable:
    """Dynamic energy of every operator of a latency table on every architecture.

    The formula (docs/energy.md; kernel :mod:`phaze._kernels.energy`): MACs x energy per
    MAC; every word the chosen tiling moves across a boundary x one access on each side
    (core SRAM -> PE registers, GLB -> core SRAM, HBM -> GLB, GLB -> vector SRAM); vector
    lane-cycles of work x energy per lane-cycle; bits a collective sends per device x
    network energy per bit. SRAM access energies follow each architecture's SRAM sizes.

    Parameters
    ----------
    latency : LatencyTable
        From :func:`phaze.cost.latency_table` (its tilings and traffic are reused).
    model : EnergyModel, optional
        Constants (default ``EnergyModel()``).

    Returns
    -------
    EnergyTable
        ``.energy_j[op, arch, mode, pass]``, the layout of ``latency.latency_s``.

    Examples
    --------
    >>> from phaze.cost import latency_table
    >>> from phaze.hardware import Accelerator, ArchTable
    >>> from phaze.models import build_graph, preset, unique_ops
    >>> ops, _ = unique_ops(build_graph(preset("bert-large"), 512, 1, 1))
    >>> lat = latency_table(ops, ArchTable.from_accelerators([Accelerator.preset("phaze")]))
    >>> e = energy_table(lat).energy_j
    >>> e.shape == lat.latency_s.shape, bool((e > 0).all())
    (True, True)
    """
    latency, model = _checked(latency, model)
    macs, vc_ops, bits = _work(latency)
    out = np.zeros(latency.latency_s.shape)
    op_energy(*_kernel_args(latency, model, macs, vc_ops, bits), out)
    out.setflags(write=False)
    return EnergyTable(energy_j=out, macs=macs, vc_ops=vc_ops, net_bits=bits, model=model)


def charged_energy_j(latency: LatencyTable, model: EnergyModel | None = None) -> np.ndarray:
    """Joules of each operator on each architecture and pass in the mode it runs faster
    in (ties: all cores), float64 (ops, archs, 2): the same floats as
    ``energy_table(latency, model).charged_j(latency.latency_s)``, without building the
    (ops, archs, 2, 2) table (the joint search's per-layer energies need only these).

    Examples
    --------
    >>> from phaze.cost import latency_table
    >>> from phaze.hardware import Accelerator, ArchTable
    >>> from phaze.models import build_graph, preset, unique_ops
    >>> ops, _ = unique_ops(build_graph(preset("bert-large"), 512, 1, 1))
    >>> lat = latency_table(ops, ArchTable.from_accelerators([Accelerator.preset("phaze")]))
    >>> e = charged_energy_j(lat)
    >>> e.tobytes() == energy_table(lat).charged_j(lat.latency_s).tobytes()
    True
    """
    latency, model = _checked(latency, model)
    macs, vc_ops, bits = _work(latency)
    out = np.empty(latency.latency_s.shape[:2] + (2,))
    seconds = _read_only(latency.latency_s)
    op_charged_energy(*_kernel_args(latency, model, macs, vc_ops, bits), seconds, out)
    return out


def _kernel_args(latency: LatencyTable, model: EnergyModel, macs, vc_ops, bits) -> tuple:
    """The arguments :func:`~phaze._kernels.energy.op_energy` and
    :func:`~phaze._kernels.energy.op_charged_energy` share."""
    archs = latency.arch_table
    f8, i8 = np.float64, np.int64
    return (
        _arg(macs, f8),
        _arg(vc_ops, f8),
        _arg(bits, f8),
        _arg(archs.tc_index, i8),
        _arg(archs.vc_index, i8),
        _read_only(latency.pe_words),
        _read_only(latency.sram_words),
        _read_only(latency.hbm_words),
        _read_only(latency.vc_words),
        _arg(model.sram_access_j_of(archs.tc_sram_bytes), f8),
        _arg(model.glb_access_j_of(archs.glb_bytes), f8),
        _arg(model.sram_access_j_of(archs.vc_sram_bytes), f8),
        float(model.mac_j),
        float(model.register_access_j),
        float(model.hbm_access_j),
        float(model.vector_op_j),
        float(model.network_j_per_bit),
    )
