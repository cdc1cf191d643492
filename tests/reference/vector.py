"""Slow, obvious reference of vector-core cycles, written from the per-element cycle
table in docs/cost-model.md.

Per part (op, E elements, aux) on L lanes; pass 0 forward, 1 backward.
"""

from __future__ import annotations

__all__ = ["PER_ELEMENT", "op_cycles", "part_cycles"]


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


#: VcOp code -> (name, forward, backward cycles per element per lane), docs/cost-model.md.
PER_ELEMENT = {
    0: ("layernorm", 1, 1),
    1: ("gelu/relu/neg", 1, 1),
    2: ("masked fill", 1, 1),
    3: ("dropout", 2, 1),
    4: ("tanh", 27, 2),
    5: ("cos/sin", 13, 2),
    6: ("sigmoid", 12, 22),
    7: ("hardswish/swish", 14, 15),
    8: ("pow/sqrt/rsqrt", 15, 16),
    9: ("add/sub", 1, 1 + 1),  # backward: 1 per operand
    10: ("mul", 1, 1 + 1),
    11: ("div", 10, 10 + 11),
    14: ("silu", 12, 2),
    15: ("copy", 1, 1),
}
_TWO_INPUTS = {9, 10, 11}


def part_cycles(code: int, elems: int, aux: int, lanes: int, pss: int) -> int:
    if code == 12:  # mean over rows of d = aux
        d = aux
        return _cdiv(elems, d) * (_cdiv(d, lanes) + 10)
    if code == 13:  # softmax over rows of n = aux
        if pss == 0:
            rows = _cdiv(elems, aux)
            return rows * _cdiv(aux, lanes) + 10 + 10 * _cdiv(elems, lanes)
        return 2 * _cdiv(elems, lanes)
    _, fwd, bwd = PER_ELEMENT[code]
    return (fwd if pss == 0 else bwd) * _cdiv(elems, lanes)


def op_cycles(
    parts, lanes: int, pss: int, *, memory: bool = False, bw_words: float = 1.0
) -> tuple[float, float]:
    """(cycles, memory words) of an operator's parts [(code, elems, aux), ...]."""
    cycles, words = 0, 0
    for code, elems, aux in parts:
        cycles += part_cycles(code, elems, aux, lanes, pss)
        if memory:
            n_in = 2 if code in _TWO_INPUTS else 1
            words += elems * (n_in + 1 if pss == 0 else 2 * n_in + 1)
    return cycles + words / bw_words, float(words)
