"""Operator latencies on architectures: the array layer around the cost kernels.

:func:`latency_table` gives, for every unique operator of an
:class:`~phaze.models.OpTable` and every architecture of an
:class:`~phaze.hardware.ArchTable`, the latency in seconds on one core of its kind and on
all cores of its kind, forward and backward (docs/cost-model.md):

* ``TC`` -- the GEMM (:mod:`phaze._kernels.gemm`); backward is the input-gradient GEMM
  ``(B, M, N, K)`` plus the weight-gradient GEMM ``(B, K, M, N)``, one after the other.
* ``TC_VC`` -- the same plus the fused epilogue's vector cycles on the vector lanes used
  (one vector core with one tensor core; all with all).
* ``VC`` -- vector-core cycles (:mod:`phaze._kernels.vector`), with the memory term when
  the architecture has it on.
* ``COMM`` -- ring all-reduce over ``t = comm_group`` devices, ``2 (t - 1) / t * bytes /
  link_bandwidth_Bps + 2 (t - 1) * allreduce_step_latency_s``, in the pass named by
  ``comm_pass`` (0 in the other); the same in both modes and on every architecture.

The kernels run over the unique GEMM shapes and the unique tensor-core (``arch_table.tc``)
and vector-core (``arch_table.vc``) configurations only; the results are mapped to
architectures at the end. Cycles become seconds with each architecture's frequency.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from phaze._kernels.gemm import gemm_cycles
from phaze._kernels.vector import CYCLES_FWD, vc_cycles
from phaze.errors import ConfigError
from phaze.hardware import ArchTable
from phaze.models.optable import OpTable
from phaze.opcodes import CommPass, OpKind
from phaze.units import GIB

__all__ = ["LatencyTable", "gemm_table", "latency_table"]

#: MACs of one GEMM above which int64 word counts could overflow.
_MAX_GEMM_MACS = 2**60


@dataclass(frozen=True, eq=False)
class LatencyTable:
    """Latencies of operators on architectures (see :func:`latency_table`).

    Attributes
    ----------
    latency_s : float64 (ops, archs, 2, 2)
        Seconds by [op, arch, mode (0 one core, 1 all cores), pass (0 fwd, 1 bwd)]:
        ``(tc_cycles + vc_cycles) / frequency`` of each architecture's configs, or
        ``comm_s`` (built on first use).
    tc_cycles : float64 (ops, tc configs, 2, 2)
        GEMM cycles per unique tensor-core config (``arch_table.tc``).
    vc_cycles : float64 (ops, vc configs, 2, 2)
        Vector cycles per unique vector-core config (``arch_table.vc``): a ``TC_VC`` row's
        fused epilogue (added to its GEMM cycles in ``latency_s``) or a ``VC`` row's work.
    pe_words, sram_words, hbm_words : float64 (ops, tc configs, 2, 2)
        Words across the core SRAM -> PE, GLB -> core SRAM and HBM -> GLB boundaries of the
        chosen tilings (backward: both GEMMs).
    vc_words : float64 (ops, vc configs, 2, 2)
        Words of the vector-core memory term.
    comm_s : float64 (ops, 2)
        Seconds of the ``COMM`` rows by [op, pass], the same on every architecture and in
        both modes (0 on other rows).
    arch_table : ArchTable
    op_table : OpTable
    """

    tc_cycles: np.ndarray
    vc_cycles: np.ndarray
    pe_words: np.ndarray
    sram_words: np.ndarray
    hbm_words: np.ndarray
    vc_words: np.ndarray
    comm_s: np.ndarray
    arch_table: ArchTable
    op_table: OpTable

    @cached_property
    def latency_s(self) -> np.ndarray:
        """Seconds by [op, arch, mode, pass] (computed on first use: the per-config
        figures are all a bound needs, and this array is ``16 * ops * archs`` bytes)."""
        ops, arch_table = self.op_table, self.arch_table
        kind = ops.kind
        tc_rows = np.flatnonzero((kind == OpKind.TC) | (kind == OpKind.TC_VC))
        vc_rows = np.flatnonzero(np.diff(ops.vc_ptr) > 0)
        # row by row (each row stays in cache): cycles of the tensor-core config, plus
        # those of the vector-core config, over each architecture's frequency
        freq = arch_table.frequency_hz[:, None, None]
        latency = np.zeros((len(ops), len(arch_table), 2, 2))
        vc_part = np.empty((len(arch_table), 2, 2))
        for r in tc_rows.tolist():
            np.take(self.tc_cycles[r], arch_table.tc_index, axis=0, out=latency[r], mode="clip")
        for r in vc_rows.tolist():
            np.take(self.vc_cycles[r], arch_table.vc_index, axis=0, out=vc_part, mode="clip")
            latency[r] += vc_part
        for r in np.union1d(tc_rows, vc_rows).tolist():
            latency[r] /= freq
        comm = np.flatnonzero(kind == OpKind.COMM)
        latency[comm] = self.comm_s[comm, None, None, :]
        latency.setflags(write=False)
        return latency

    def traffic_bytes(self, op: int, arch: int, mode: int = 1, pss: int = 0) -> dict:
        """Bytes across each boundary for one operator on one architecture.

        Returns ``{"sram_pe": .., "glb_sram": .., "hbm_glb": .., "vc_memory": ..}``.
        """
        t = int(self.arch_table.tc_index[arch])
        v = int(self.arch_table.vc_index[arch])
        wb = float(self.arch_table.word_bytes[arch])
        return {
            "sram_pe": wb * float(self.pe_words[op, t, mode, pss]),
            "glb_sram": wb * float(self.sram_words[op, t, mode, pss]),
            "hbm_glb": wb * float(self.hbm_words[op, t, mode, pss]),
            "vc_memory": wb * float(self.vc_words[op, v, mode, pss]),
        }


def _check_ops(ops: OpTable) -> None:
    kind = ops.kind
    bad = ~np.isin(kind, [k.value for k in OpKind])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(
            f"op table row {i} has kind {int(kind[i])}; allowed: "
            f"{', '.join(f'{k.value} ({k.name})' for k in OpKind)}"
        )
    gemm = (kind == OpKind.TC) | (kind == OpKind.TC_VC)
    for name in ("gemm_b", "gemm_m", "gemm_k", "gemm_n"):
        col = getattr(ops, name)
        if gemm.any() and col[gemm].min() < 1:
            i = int(np.flatnonzero(gemm & (col < 1))[0])
            raise ConfigError(f"op table row {i} (a GEMM) has {name}={int(col[i])}; allowed: >= 1")
    if gemm.any():
        macs = (
            ops.gemm_b[gemm].astype(np.float64)
            * ops.gemm_m[gemm]
            * ops.gemm_k[gemm]
            * ops.gemm_n[gemm]
        )
        if macs.max() > _MAX_GEMM_MACS:
            raise ConfigError(f"a GEMM has {macs.max():.3g} MACs; allowed: <= 2**60")
    codes = ops.vc_code
    if codes.size and (codes.min() < 0 or codes.max() >= CYCLES_FWD.shape[0]):
        raise ConfigError(f"op table has a vector code outside 0..{CYCLES_FWD.shape[0] - 1}")
    if ops.vc_elems.size and ops.vc_elems.min() < 0:
        raise ConfigError("op table has a vector part with negative vc_elems")
    if ops.vc_aux.size and ops.vc_aux.min() < 1:
        raise ConfigError(
            "op table has a vector part with vc_aux < 1; allowed: the row "
            "length (>= 1) for MEAN and SOFTMAX, 1 otherwise"
        )
    comm = kind == OpKind.COMM
    if comm.any():
        if ops.comm_group[comm].min() < 1:
            raise ConfigError("a COMM row has comm_group < 1; allowed: >= 1 devices")
        if ops.comm_bytes[comm].min() < 0:
            raise ConfigError("a COMM row has comm_bytes < 0")
        if not np.isin(ops.comm_pass[comm], [p.value for p in CommPass]).all():
            raise ConfigError("a COMM row has comm_pass outside {0 (FWD), 1 (BWD)}")


def _arg(x, dtype) -> np.ndarray:
    """Kernel argument: C-contiguous, writable, of ``dtype`` -- one numba specialisation
    per kernel (read-only arrays, e.g. frozen table columns, would compile another)."""
    return np.require(x, dtype=dtype, requirements=["C", "W"])


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique rows of ``keys`` and, per row, its group index."""
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    return uniq, inverse.reshape(-1).astype(np.int64)


def gemm_table(shapes: np.ndarray, arch_table: ArchTable) -> tuple[np.ndarray, ...]:
    """Cycles and words of GEMMs on the unique tensor-core configs of ``arch_table``.

    Parameters
    ----------
    shapes : int64 (G, 4)
        ``(B, M, K, N)`` per GEMM: batch, rows, reduction, columns.
    arch_table : ArchTable

    Returns
    -------
    cycles, pe_words, sram_words, hbm_words : float64 (G, len(arch_table.tc), 2)
        By [gemm, tc config, mode].

    Examples
    --------
    >>> from phaze.hardware import Accelerator, ArchTable
    >>> t = ArchTable.from_accelerators([Accelerator.preset("phaze")])
    >>> cyc = gemm_table(np.array([[1, 2048, 1024, 4096]]), t)[0]
    >>> bool(cyc[0, 0, 1] >= 2048 * 1024 * 4096 / (8 * 128 * 128))
    True
    """
    shapes = np.ascontiguousarray(shapes, dtype=np.int64)
    if shapes.ndim != 2 or shapes.shape[1] != 4:
        raise ConfigError(f"GEMM shapes have shape {shapes.shape}; expected (G, 4)")
    if shapes.size and shapes.min() < 1:
        raise ConfigError("GEMM dimensions must be >= 1")
    tc = arch_table.tc
    n_tc = len(tc)
    word = tc.word_bytes.astype(np.int64)
    pes = tc.tc_width.astype(np.int64) * tc.tc_depth.astype(np.int64)
    sram = np.maximum(tc.tc_sram_bytes.astype(np.int64) // word, 1)
    glb = np.maximum(tc.glb_bytes.astype(np.int64) // word, 1)
    regs = tc.register_words.astype(np.int64)
    geo, geo_of = _groups(np.stack([pes, sram, regs], axis=1))
    order = np.argsort(geo_of, kind="stable").astype(np.int64)
    ptr = np.zeros(len(geo) + 1, np.int64)
    np.cumsum(np.bincount(geo_of, minlength=len(geo)), out=ptr[1:])
    glb_u, glb_of = _groups(glb[:, None])
    out = [np.zeros((shapes.shape[0], n_tc, 2)) for _ in range(4)]
    if shapes.shape[0]:
        i8, f8, b1 = np.int64, np.float64, np.bool_
        gemm_cycles(
            *(_arg(shapes[:, j], i8) for j in range(4)),
            *(_arg(geo[:, j], i8) for j in range(3)),
            _arg(ptr, i8),
            _arg(order, i8),
            _arg(tc.num_tc, i8),
            _arg(glb_of, i8),
            _arg(glb_u[:, 0], i8),
            _arg(tc.sram_pe_words_per_cycle, f8),
            _arg(tc.sram_pe_per_core, b1),
            _arg(tc.glb_sram_words_per_cycle, f8),
            _arg(tc.glb_sram_per_core, b1),
            _arg(tc.hbm_words_per_cycle, f8),
            *out,
        )
    return tuple(out)


def latency_table(
    op_table: OpTable,
    arch_table: ArchTable,
    *,
    link_bandwidth_Bps: float = 4 * GIB,
    allreduce_step_latency_s: float = 0.0,
    network=None,
) -> LatencyTable:
    """Latency of every operator on every architecture, one core / all cores, fwd / bwd.

    Parameters
    ----------
    op_table : OpTable
        Unique operators (``phaze.models.unique_ops``).
    arch_table : ArchTable
        Architectures (``DesignSpace(...).enumerate()`` or ``ArchTable.from_...``).
    link_bandwidth_Bps : float
        Inter-accelerator link bandwidth for collectives (default 4 GiB/s, PCIe 3.0).
    allreduce_step_latency_s : float
        Fixed latency of each of the ``2 (t - 1)`` ring steps (default 0).
    network : phaze.systems.Network, optional
        Price each all-reduce over ``t`` consecutive devices on these network levels
        (:meth:`phaze.systems.Network.all_reduce_s`) instead of the single link and step
        latency above.

    Returns
    -------
    LatencyTable
        ``.latency_s[op, arch, mode, pass]`` and the cycle and traffic figures.

    Examples
    --------
    >>> from phaze.hardware import Accelerator, ArchTable
    >>> from phaze.models import build_graph, preset, unique_ops
    >>> ops, _ = unique_ops(build_graph(preset("bert-large"), 512, 1, 1))
    >>> archs = ArchTable.from_accelerators([Accelerator.preset("phaze")])
    >>> lat = latency_table(ops, archs).latency_s
    >>> lat.shape[1:], bool((lat[:, :, 1] <= lat[:, :, 0]).all())
    ((1, 2, 2), True)
    """
    if not isinstance(op_table, OpTable):
        raise ConfigError(f"op_table must be an OpTable, got {type(op_table).__name__}")
    if not isinstance(arch_table, ArchTable):
        raise ConfigError(f"arch_table must be an ArchTable, got {type(arch_table).__name__}")
    for name, v in (
        ("link_bandwidth_Bps", link_bandwidth_Bps),
        ("allreduce_step_latency_s", allreduce_step_latency_s),
    ):
        if (
            isinstance(v, bool)
            or not np.isscalar(v)
            or not np.isfinite(v)
            or v < 0
            or (name == "link_bandwidth_Bps" and v == 0)
        ):
            raise ConfigError(
                f"{name}={v!r} must be a finite number "
                f"{'> 0' if name == 'link_bandwidth_Bps' else '>= 0'}"
            )
    ops = op_table
    _check_ops(ops)
    n_ops = len(ops)
    n_tc, n_vc = len(arch_table.tc), len(arch_table.vc)
    kind = ops.kind

    # ---- tensor cores: unique GEMM shapes x unique TC configs ------------------------
    tc_rows = np.flatnonzero((kind == OpKind.TC) | (kind == OpKind.TC_VC))
    b, m, k, n = (getattr(ops, c)[tc_rows] for c in ("gemm_b", "gemm_m", "gemm_k", "gemm_n"))
    shapes = np.concatenate(
        [np.stack(s, axis=1) for s in ((b, m, k, n), (b, m, n, k), (b, k, m, n))], axis=0
    )
    shape_u, shape_of = (
        _groups(shapes) if len(tc_rows) else (np.zeros((0, 4), np.int64), np.zeros(0, np.int64))
    )
    cyc, pe, sram, hbm = gemm_table(shape_u, arch_table)
    r = len(tc_rows)
    gf, gi, gw = shape_of[:r], shape_of[r : 2 * r], shape_of[2 * r :]
    tc_cycles = np.zeros((n_ops, n_tc, 2, 2))
    figures = [np.zeros((n_ops, n_tc, 2, 2)) for _ in range(3)]
    for dst, src in zip((tc_cycles, *figures), (cyc, pe, sram, hbm), strict=True):
        dst[tc_rows, :, :, 0] = src[gf]
        dst[tc_rows, :, :, 1] = src[gi] + src[gw]

    # ---- vector cores: rows with vector parts x unique VC configs ---------------------
    vc_rows = np.flatnonzero(np.diff(ops.vc_ptr) > 0)
    vc = arch_table.vc
    vcyc = np.zeros((len(vc_rows), n_vc, 2, 2))
    vwords = np.zeros_like(vcyc)
    if len(vc_rows):
        i8, f8, b1 = np.int64, np.float64, np.bool_
        vc_cycles(
            _arg(vc_rows, i8),
            *(_arg(getattr(ops, c), i8) for c in ("vc_ptr", "vc_code", "vc_elems", "vc_aux")),
            _arg(kind[vc_rows] == OpKind.VC, b1),
            _arg(vc.num_vc, i8),
            _arg(vc.vc_width, i8),
            _arg(vc.vc_memory_term, b1),
            _arg(vc.glb_sram_words_per_cycle, f8),
            _arg(vc.glb_sram_per_core, b1),
            vcyc,
            vwords,
        )
    vc_cycles_all = np.zeros((n_ops, n_vc, 2, 2))
    vc_words_all = np.zeros_like(vc_cycles_all)
    vc_cycles_all[vc_rows] = vcyc
    vc_words_all[vc_rows] = vwords

    comm_s = np.zeros((n_ops, 2))
    comm = np.flatnonzero(kind == OpKind.COMM)
    if len(comm):
        t = ops.comm_group[comm].astype(np.float64)
        if network is None:
            sec = 2 * (t - 1) / t * ops.comm_bytes[comm] / float(link_bandwidth_Bps) + 2 * (
                t - 1
            ) * float(allreduce_step_latency_s)
        else:
            sec = np.array(
                [
                    network.all_reduce_s(float(size), int(group), 1)
                    for size, group in zip(ops.comm_bytes[comm], ops.comm_group[comm])
                ]
            )
        for p in (0, 1):
            on = ops.comm_pass[comm] == p
            comm_s[comm[on], p] = sec[on]
    for a in (tc_cycles, vc_cycles_all, *figures, vc_words_all, comm_s):
        a.setflags(write=False)
    return LatencyTable(
        tc_cycles=tc_cycles,
        vc_cycles=vc_cycles_all,
        pe_words=figures[0],
        sram_words=figures[1],
        hbm_words=figures[2],
        vc_words=vc_words_all,
        comm_s=comm_s,
        arch_table=arch_table,
        op_table=ops,
    )
