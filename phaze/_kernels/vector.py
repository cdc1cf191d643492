"""Vector-core cycles (docs/cost-model.md, with the per-element cycle table).

An operator's vector work is a list of parts ``(code, E, aux)`` (:class:`phaze.opcodes.VcOp`
codes). On ``L`` lanes (``vc_width`` for one core, ``num_vc * vc_width`` for all cores) a
part takes ``c(code, pass) * ceil(E / L)`` cycles, except

* MEAN over rows of ``d = aux``: ``ceil(E / d) * (ceil(d / L) + 10)`` in both passes;
* SOFTMAX over rows of ``n = aux``: forward ``ceil(E / n) * ceil(n / L) + 10 + 10 ceil(E / L)``,
  backward ``2 ceil(E / L)``.

``E`` is the part's element count (for MEAN and SOFTMAX the elements reduced over). With
the memory term on (and for stand-alone vector operators only; a fused epilogue moves no
extra data), each part adds ``words / bandwidth`` cycles: ``E (n_in + 1)`` words forward and
``E (2 n_in + 1)`` backward (``n_in`` = 2 for ADD, MUL, DIV, else 1) at the GLB -> core SRAM
bandwidth (per core: times the cores used; chip-wide: as is).
"""

import numpy as np
from numba import njit

__all__ = ["CYCLES_BWD", "CYCLES_FWD", "N_INPUTS", "vc_cycles", "warmup"]

#: Cycles per element and lane by VcOp code (MEAN=12 and SOFTMAX=13 have own formulas).
CYCLES_FWD = np.array([1, 1, 1, 2, 27, 13, 12, 14, 15, 1, 1, 10, 0, 0, 12, 1], np.int64)
CYCLES_BWD = np.array([1, 1, 1, 1, 2, 2, 22, 15, 16, 2, 2, 21, 0, 0, 2, 1], np.int64)
#: Input operands by VcOp code (for the memory term).
N_INPUTS = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1], np.int64)
_MEAN = 12
_SOFTMAX = 13


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _cdiv(a, b):
    return (a + b - 1) // b


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _part_cycles(code, elems, aux, lanes, pss):
    """Cycles of one part on ``lanes`` lanes; -1 for an unknown code."""
    if code < 0 or code >= CYCLES_FWD.shape[0]:
        return np.int64(-1)
    if code == _MEAN:
        d = max(aux, 1)
        return _cdiv(elems, d) * (_cdiv(d, lanes) + 10)
    if code == _SOFTMAX:
        if pss == 0:
            r = max(aux, 1)
            return _cdiv(elems, r) * _cdiv(r, lanes) + 10 + 10 * _cdiv(elems, lanes)
        return 2 * _cdiv(elems, lanes)
    c = CYCLES_FWD[code] if pss == 0 else CYCLES_BWD[code]
    return c * _cdiv(elems, lanes)


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def vc_cycles(
    rows,
    vc_ptr,
    vc_code,
    vc_elems,
    vc_aux,
    memory_row,
    num_vc,
    vc_width,
    mem_on,
    bw_glb,
    glb_per_core,
    out_cycles,
    out_words,
):
    """Vector cycles of op-table rows on vector-core configurations.

    Parameters
    ----------
    rows : int64 (R,)
        Op-table rows to evaluate.
    vc_ptr, vc_code, vc_elems, vc_aux : int64
        The op table's CSR vector parts.
    memory_row : bool (R,)
        Whether row ``rows[r]`` pays the memory term (stand-alone vector operators).
    num_vc, vc_width : int64 (V,)
        Vector cores and lanes per core of each configuration.
    mem_on, glb_per_core : bool (V,); bw_glb : float64 (V,)
        Memory term switch, GLB -> core SRAM words per cycle, per core or chip-wide.
    out_cycles, out_words : float64 (R, V, 2, 2)
        Written: cycles and memory-term words by [row, config, mode, pass]; cycles are -1
        for a row with an unknown code.
    """
    for r in range(rows.shape[0]):
        op = rows[r]
        for v in range(num_vc.shape[0]):
            for mode in range(2):
                cores = 1 if mode == 0 else num_vc[v]
                lanes = cores * vc_width[v]
                bw = bw_glb[v] * cores if glb_per_core[v] else bw_glb[v]
                for pss in range(2):
                    cyc = 0.0
                    words = 0.0
                    bad = False
                    for j in range(vc_ptr[op], vc_ptr[op + 1]):
                        c = _part_cycles(vc_code[j], vc_elems[j], vc_aux[j], lanes, pss)
                        if c < 0:
                            bad = True
                            break
                        cyc += c
                        if memory_row[r] and mem_on[v]:
                            nin = N_INPUTS[vc_code[j]]
                            words += vc_elems[j] * (nin + 1 if pss == 0 else 2 * nin + 1)
                    if bad:
                        out_cycles[r, v, mode, pss] = -1.0
                        out_words[r, v, mode, pss] = 0.0
                    else:
                        out_cycles[r, v, mode, pss] = cyc + words / bw
                        out_words[r, v, mode, pss] = words


def warmup() -> None:
    """Compile (or load from numba's cache) :func:`vc_cycles` on a tiny input."""
    one = np.ones(1, np.int64)
    out = np.zeros((1, 1, 2, 2))
    vc_cycles(
        np.zeros(1, np.int64),
        np.array([0, 1], np.int64),
        np.zeros(1, np.int64),
        one,
        one,
        np.ones(1, np.bool_),
        one,
        one,
        np.ones(1, np.bool_),
        np.ones(1),
        np.zeros(1, np.bool_),
        out,
        out.copy(),
    )
