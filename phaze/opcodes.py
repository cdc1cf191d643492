"""Integer codes shared by the public layer and the numba kernels.

Kernels see plain ``int64`` codes; the public layer uses these ``IntEnum`` mirrors. The
numbers are part of the on-array contract (``OpTable`` columns, kernel inputs) and must not
be renumbered.
"""

from enum import IntEnum

__all__ = ["CommPass", "OpKind", "Pass", "VcOp", "Mode"]


class OpKind(IntEnum):
    """Kind of a fused operator (docs/workloads.md)."""

    TC = 0  #: GEMM on tensor cores
    TC_VC = 1  #: GEMM with a fused element-wise epilogue on the vector lanes
    VC = 2  #: element-wise / reduction / softmax / norm work on vector cores
    COMM = 3  #: collective (ring all-reduce) over the tensor-parallel group


class VcOp(IntEnum):
    """Vector-core operation; per-element cycles in docs/cost-model.md (forward / backward).

    ``OpTable.vc_aux`` carries the row length for ``MEAN`` and ``SOFTMAX`` (the reduced
    dimension) and is 1 for every other code.
    """

    LAYERNORM = 0  #: 1 / 1
    GELU = 1  #: 1 / 1 (relu, gelu, neg)
    MASKED_FILL = 2  #: 1 / 1
    DROPOUT = 3  #: 2 / 1
    TANH = 4  #: 27 / 2
    SINCOS = 5  #: 13 / 2
    SIGMOID = 6  #: 12 / 22
    SWISH = 7  #: 14 / 15
    POW = 8  #: 15 / 16 (pow, sqrt, rsqrt)
    ADD = 9  #: 1 / 2 (two operands of E elements: 1 per operand in backward)
    MUL = 10  #: 1 / 2
    DIV = 11  #: 10 / 21
    MEAN = 12  #: ceil(E/d)*(ceil(d/L) + 10), both passes; aux = d
    SOFTMAX = 13  #: ceil(E/n)*ceil(n/L) + 10 + 10*ceil(E/L) / 2*ceil(E/L); aux = n
    SILU = 14  #: 12 / 2
    COPY = 15  #: 1 / 1 (embedding gather, scatter-add in backward)


class CommPass(IntEnum):
    """Which pass a collective runs in (Megatron's g and f operators)."""

    FWD = 0  #: all-reduce in forward, identity in backward (after a row-parallel GEMM)
    BWD = 1  #: identity in forward, all-reduce in backward (before a column-parallel GEMM)


class Pass(IntEnum):
    """Index of the pass axis of latency tables."""

    FWD = 0
    BWD = 1


class Mode(IntEnum):
    """Index of the mode axis of latency tables."""

    ONE_CORE = 0  #: the operator runs on one core of its kind
    ALL_CORES = 1  #: the operator is split across all cores of its kind (intra-op)
