"""Dynamic energy of operators on architectures (docs/energy.md).

For one operator on one architecture, in one mode and pass, the energy in joules is::

    macs * e_mac
    + pe_words   * (e_core_sram + e_reg)     core SRAM read, PE register write
    + sram_words * (e_glb + e_core_sram)     GLB read, core SRAM write
    + hbm_words  * (e_hbm + e_glb)           HBM read, GLB write
    + vc_ops     * e_vc_op                   vector lane-cycles of work
    + vc_words   * (e_glb + e_vc_sram)       vector memory term: GLB read, vector SRAM write
    + net_bits   * e_bit                     bits this device sends in a collective

The word counts are those of the tiling the latency model chose (``phaze.cost``), so a
word that crosses a boundary is charged one access on each side of it. ``inf`` words (a
GLB too small for any tile) give ``inf`` energy, as they give ``inf`` latency.
"""

import numpy as np
from numba import njit

__all__ = ["op_charged_energy", "op_energy", "warmup"]


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def op_energy(
    macs,
    vc_ops,
    net_bits,
    tc_index,
    vc_index,
    pe_words,
    sram_words,
    hbm_words,
    vc_words,
    e_core_sram,
    e_glb,
    e_vc_sram,
    e_mac,
    e_reg,
    e_hbm,
    e_vc_op,
    e_bit,
    out,
):
    """Energy of every operator on every architecture, both modes and passes.

    Parameters
    ----------
    macs, vc_ops, net_bits : float64 (O, 2)
        Per operator and pass (0 fwd, 1 bwd): multiply-accumulates, vector lane-cycles of
        work (the work's cycles on a single lane), bits sent per device in a collective.
    tc_index, vc_index : int64 (A,)
        Tensor-core and vector-core configuration of each architecture.
    pe_words, sram_words, hbm_words : float64 (O, T, 2, 2)
        Words across the core SRAM -> PE, GLB -> core SRAM and HBM -> GLB boundaries by
        [op, tc config, mode, pass].
    vc_words : float64 (O, V, 2, 2)
        Words of the vector memory term by [op, vc config, mode, pass].
    e_core_sram, e_glb, e_vc_sram : float64 (A,)
        Joules per word access of each architecture's core SRAM, GLB and vector SRAM.
    e_mac, e_reg, e_hbm, e_vc_op, e_bit : float
        Joules per MAC, register access, HBM word access, vector lane-cycle and network bit.
    out : float64 (O, A, 2, 2)
        Written: joules by [op, arch, mode, pass].
    """
    n_op = macs.shape[0]
    n_arch = tc_index.shape[0]
    for o in range(n_op):
        for a in range(n_arch):
            for mode in range(2):
                for p in range(2):
                    out[o, a, mode, p] = _energy(
                        o,
                        tc_index[a],
                        vc_index[a],
                        mode,
                        p,
                        macs,
                        vc_ops,
                        net_bits,
                        pe_words,
                        sram_words,
                        hbm_words,
                        vc_words,
                        e_core_sram[a],
                        e_glb[a],
                        e_vc_sram[a],
                        e_mac,
                        e_reg,
                        e_hbm,
                        e_vc_op,
                        e_bit,
                    )


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def op_charged_energy(
    macs,
    vc_ops,
    net_bits,
    tc_index,
    vc_index,
    pe_words,
    sram_words,
    hbm_words,
    vc_words,
    e_core_sram,
    e_glb,
    e_vc_sram,
    e_mac,
    e_reg,
    e_hbm,
    e_vc_op,
    e_bit,
    latency_s,
    out,
):
    """Energy of every operator on every architecture and pass in the mode it runs faster
    in (ties: all cores), the mode a layer schedule of a chain of operators uses: the
    values of :func:`op_energy` picked as
    :meth:`phaze.energy.EnergyTable.charged_j` picks them, without the
    ``(O, A, 2, 2)`` table.

    Parameters
    ----------
    macs ... e_bit
        As :func:`op_energy`.
    latency_s : float64 (O, A, 2, 2), read only
        Seconds by [op, arch, mode, pass] (``phaze.cost.LatencyTable.latency_s``).
    out : float64 (O, A, 2)
        Written: joules by [op, arch, pass].
    """
    n_op = macs.shape[0]
    n_arch = tc_index.shape[0]
    for o in range(n_op):
        for a in range(n_arch):
            for p in range(2):
                mode = 1 if latency_s[o, a, 1, p] <= latency_s[o, a, 0, p] else 0
                out[o, a, p] = _energy(
                    o,
                    tc_index[a],
                    vc_index[a],
                    mode,
                    p,
                    macs,
                    vc_ops,
                    net_bits,
                    pe_words,
                    sram_words,
                    hbm_words,
                    vc_words,
                    e_core_sram[a],
                    e_glb[a],
                    e_vc_sram[a],
                    e_mac,
                    e_reg,
                    e_hbm,
                    e_vc_op,
                    e_bit,
                )


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _energy(
    o,
    t,
    v,
    mode,
    p,
    macs,
    vc_ops,
    net_bits,
    pe_words,
    sram_words,
    hbm_words,
    vc_words,
    ec,
    eg,
    ev,
    e_mac,
    e_reg,
    e_hbm,
    e_vc_op,
    e_bit,
):
    """Joules of operator ``o`` on tensor-core config ``t`` and vector-core config ``v``
    (per-word access joules ``ec``, ``eg``, ``ev`` of its core SRAM, GLB and vector SRAM)
    in ``mode`` and pass ``p``: the sum of the module docstring, in that order."""
    e = macs[o, p] * e_mac + vc_ops[o, p] * e_vc_op + net_bits[o, p] * e_bit
    w = pe_words[o, t, mode, p]
    if w != 0.0:
        e += w * (ec + e_reg)
    w = sram_words[o, t, mode, p]
    if w != 0.0:
        e += w * (eg + ec)
    w = hbm_words[o, t, mode, p]
    if w != 0.0:
        e += w * (e_hbm + eg)
    w = vc_words[o, v, mode, p]
    if w != 0.0:
        e += w * (eg + ev)
    return e


def warmup() -> None:
    """Compile (or load from numba's cache) :func:`op_energy` and
    :func:`op_charged_energy` on a tiny input."""
    two = np.ones((1, 2))
    idx = np.zeros(1, np.int64)
    words = np.ones((1, 1, 2, 2))
    words.setflags(write=False)  # (as phaze.energy passes the latency table's arrays)
    per_arch = np.ones(1)
    args = (
        two,
        two.copy(),
        two.copy(),
        idx,
        idx.copy(),
        words,
        words,
        words,
        words,
        per_arch,
        per_arch.copy(),
        per_arch.copy(),
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
    )
    op_energy(*args, np.zeros((1, 1, 2, 2)))
    op_charged_energy(*args, words, np.zeros((1, 1, 2)))
