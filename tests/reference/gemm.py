"""Slow, obvious reference of the tensor-core GEMM model (phaze/_kernels/gemm.py docstring).

Written from the model's definition, not from the kernel:

* buffer levels are solved by brute force over every tiling (each extent a power of two or
  the full dimension) and every one of the six loop orders, with the re-fetch rule stated
  in the docstring -- not by the kernel's closed form;
* core splits are enumerated with itertools and sorted by the documented order.

Everything is plain Python integers; dimensions are kept small by the tests.
"""

from __future__ import annotations

import itertools
import math
from functools import cache

__all__ = ["compute_cycles", "gemm", "level_words", "pe_words"]


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _p2ceil(x: int) -> int:
    v = 1
    while v < x:
        v *= 2
    return v


def _extents(d: int) -> list[int]:
    """Tile extents allowed for a dimension of size d: powers of two below d, and d."""
    out = [1 << i for i in range(d.bit_length()) if (1 << i) < d]
    return out + [d]


@cache
def level_words(m: int, k: int, n: int, cap_a: int, cap_w: int, cap_o: int, shared: int) -> int:
    """Least words into a level over all tilings and loop orders (2**62 if none fits).

    Tensors: inputs A[m, k] (irrelevant loop: n), weights W[k, n] (irrelevant: m),
    outputs O[m, n] (irrelevant: k). Loops run over tiles with trip counts T_d; a tensor is
    fetched T_irr times if its irrelevant loop has some loop with T > 1 inside it (and
    T_irr > 1), else once; outputs fetched t times cost 2 t - 1 words per element.
    """
    best = 2**62
    for tm, tk, tn in itertools.product(_extents(m), _extents(k), _extents(n)):
        a, w, o = tm * tk, tk * tn, tm * tn
        if shared > 0:
            if a + w + o > shared:
                continue
        elif a > cap_a or w > cap_w or o > cap_o:
            continue
        trips = {"m": _cdiv(m, tm), "k": _cdiv(k, tk), "n": _cdiv(n, tn)}
        for order in itertools.permutations("mkn"):  # outermost first

            def fetches(irr: str, order=order, trips=trips) -> int:
                inner = order[order.index(irr) + 1 :]
                if trips[irr] > 1 and any(trips[x] > 1 for x in inner):
                    return trips[irr]
                return 1

            words = m * k * fetches("n") + k * n * fetches("m") + m * n * (2 * fetches("k") - 1)
            best = min(best, words)
    return best


def compute_cycles(m: int, k: int, n: int, pes: int) -> int:
    """Array cycles: s reduction lanes (a power of two <= pes) x pes // s columns."""
    options = []
    s = 1
    while s <= pes:
        options.append(_cdiv(k, min(s, k)) * _cdiv(n, min(pes // s, n)))
        s *= 2
    return m * min(options)


def pe_words(m: int, k: int, n: int, pes: int, regs: int, sram: int) -> int:
    """Core SRAM -> PE words of one GEMM (balanced weight tile, row blocks of Mt rows)."""
    area = regs * pes
    kt = 1
    while kt * kt < area:  # smallest power of two with kt^2 >= area
        kt *= 2
    kt = min(kt, _p2ceil(k))
    nt = min(max(area // kt, 1), _p2ceil(n))
    slices = _cdiv(k, kt)
    mt = max(sram // nt, 1) if slices > 1 else max(2 * sram // kt, 1)
    inputs = m * k * _cdiv(n, nt)
    outputs = m * n * (2 * slices - 1)
    weights = k * n * _cdiv(m, mt)
    return inputs + outputs + weights


def _splits(bt: int, m: int, n: int, lmax: int):
    """(lb, lm, ln) in the documented order: by lb+lm+ln, then lb, then lm."""
    lb_max = (_p2ceil(bt)).bit_length() - 1
    lm_max = (_p2ceil(m)).bit_length() - 1
    ln_max = (_p2ceil(n)).bit_length() - 1
    out = [
        (lb, lm, ln)
        for lb in range(lb_max + 1)
        for lm in range(lm_max + 1)
        for ln in range(ln_max + 1)
        if lb + lm + ln <= lmax
    ]
    return sorted(out, key=lambda s: (sum(s), s[0], s[1]))


def gemm(
    bt: int,
    m: int,
    k: int,
    n: int,
    *,
    cores: int,
    pes: int,
    sram: int,
    regs: int,
    glb: int,
    bw_pe: float,
    pe_per_core: bool,
    bw_glb: float,
    glb_per_core: bool,
    bw_hbm: float,
    mode: int,
) -> tuple[float, int, int, int]:
    """(cycles, pe_words, sram_words, hbm_words) of the best split; mode 0 uses 1 core."""
    lmax = 0 if mode == 0 else int(math.floor(math.log2(cores)))
    while (1 << (lmax + 1)) <= (cores if mode else 1):  # guard float log2 rounding
        lmax += 1
    while (1 << lmax) > (cores if mode else 1):
        lmax -= 1
    hbm = level_words(m, k, n, 0, 0, 0, glb)
    hbm = math.inf if hbm == 2**62 else bt * hbm  # nothing fits the GLB: infeasible
    best = None
    for lb, lm, ln in _splits(bt, m, n, lmax):
        b, mc, nc = _cdiv(bt, 1 << lb), _cdiv(m, 1 << lm), _cdiv(n, 1 << ln)
        used = _cdiv(bt, b) * _cdiv(m, mc) * _cdiv(n, nc)
        comp = b * compute_cycles(mc, k, nc, pes)
        pe = b * pe_words(mc, k, nc, pes, regs, sram)
        sr = b * level_words(mc, k, nc, sram, sram, sram, 0)
        pe_c = pe / bw_pe if pe_per_core else pe * used / bw_pe
        sr_c = sr / bw_glb if glb_per_core else sr * used / bw_glb
        cyc = max(float(comp), pe_c, sr_c, hbm / bw_hbm)
        if best is None or cyc < best[0]:
            best = (cyc, pe * used, sr * used, hbm)
    return best
