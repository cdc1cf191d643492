"""Fused operators, operator DAGs, and the fusion pass that builds them.

A layer is first described as *primitive* operators (GEMM, element-wise, reduction, norm,
dropout, collective) that consume and produce named tensors; :func:`fuse` applies the
paper's op-fusion rule (docs/workloads.md) and returns an :class:`OpGraph` of fused
:class:`Op` objects:

* a GEMM absorbs a following single-consumer element-wise / activation / dropout / norm op;
* an element-wise (or dropout) op absorbs a following single-consumer element-wise /
  reduction / norm / dropout op;
* reductions and norms absorb nothing, and no fusion crosses a collective.

"Single-consumer" means the group's output tensor is read by exactly one operator of the
layer; and an operator joins a group only if its other inputs are ready before the group
starts (fusion never serialises independent work, e.g. SwiGLU's gate and up GEMMs).
Every primitive also names the tensors it keeps for the backward pass; a layer's activation
bytes are the sum over the *distinct* saved tensors (a tensor read by Q, K and V
is kept once).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from phaze._toposort import toposort
from phaze.opcodes import CommPass, OpKind, VcOp

__all__ = ["Op", "OpGraph", "PrimitiveBuilder", "fuse"]

# primitive categories
_GEMM, _EW, _DROP, _RED, _NORM, _COMM = "gemm", "ew", "drop", "red", "norm", "comm"
_GEMM_ABSORBS = frozenset({_EW, _DROP, _NORM})
_EW_ABSORBS = frozenset({_EW, _DROP, _RED, _NORM})


@dataclass(frozen=True, slots=True)
class Op:
    """A fused operator.

    Attributes
    ----------
    name : str
        Names of the fused primitives joined by ``+``.
    kind : OpKind
    gemm : tuple of int or None
        Forward GEMM ``(B, M, K, N)``: ``out[B, M, N] = A[B, M, K] @ W[B, K, N]``.
    vc_parts : tuple of (VcOp code, elements, aux)
        Vector-core work (the epilogue of a ``TC_VC`` operator).
    comm : tuple of (bytes, group, CommPass) or None
        All-reduce of a ``COMM`` operator.
    saved : tuple of (tensor name, bytes)
        Tensors this operator keeps for the backward pass.
    """

    name: str
    kind: OpKind
    gemm: tuple[int, int, int, int] | None = None
    vc_parts: tuple[tuple[int, int, int], ...] = ()
    comm: tuple[int, int, int] | None = None
    saved: tuple[tuple[str, int], ...] = ()

    @property
    def key(self) -> tuple:
        """Shape signature: equal keys have equal cost on every accelerator."""
        return (int(self.kind), self.gemm, self.vc_parts, self.comm)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the forward GEMM (0 without one)."""
        if self.gemm is None:
            return 0
        b, m, k, n = self.gemm
        return b * m * k * n

    @property
    def bwd_gemms(self) -> tuple[tuple[int, int, int, int], ...]:
        """The two backward GEMMs ``(B, M, K, N)``: input gradient ``dOut @ W^T`` and
        weight gradient ``A^T @ dOut`` (docs/workloads.md); empty without a GEMM."""
        if self.gemm is None:
            return ()
        b, m, k, n = self.gemm
        return ((b, m, n, k), (b, k, m, n))


@dataclass(frozen=True, eq=False)
class OpGraph:
    """A layer's DAG of fused operators, in topological order.

    Attributes
    ----------
    ops : tuple of Op
    edges : numpy.ndarray of int64, shape (E, 2)
        ``(src, dst)`` operator indices with ``src < dst``, sorted.
    """

    ops: tuple[Op, ...]
    edges: np.ndarray
    kinds: np.ndarray = field(init=False)
    structure_key: tuple = field(init=False)
    key: tuple = field(init=False)

    def __post_init__(self) -> None:
        edges = np.ascontiguousarray(self.edges, dtype=np.int64).reshape(-1, 2)
        edges.setflags(write=False)
        kinds = np.array([int(op.kind) for op in self.ops], dtype=np.int64)
        kinds.setflags(write=False)
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "kinds", kinds)
        edge_tuple = tuple(map(tuple, edges.tolist()))
        object.__setattr__(
            self, "structure_key", (len(self.ops), tuple(kinds.tolist()), edge_tuple)
        )
        object.__setattr__(self, "key", (tuple(op.key for op in self.ops), edge_tuple))

    @property
    def n_ops(self) -> int:
        """Number of fused operators."""
        return len(self.ops)

    def saved_bytes(self) -> int:
        """Bytes of the distinct tensors kept for backward by all operators."""
        seen: dict[str, int] = {}
        for op in self.ops:
            for name, nbytes in op.saved:
                seen[name] = nbytes
        return sum(seen.values())

    def to_networkx(self):
        """The DAG as a ``networkx.DiGraph`` with the :class:`Op` as node attribute."""
        import networkx as nx

        g = nx.DiGraph()
        for i, op in enumerate(self.ops):
            g.add_node(i, op=op)
        g.add_edges_from(self.edges.tolist())
        return g


@dataclass(slots=True)
class _Prim:
    name: str
    cat: str
    inputs: tuple[str, ...]
    output: str
    gemm: tuple[int, int, int, int] | None
    parts: tuple[tuple[int, int, int], ...]
    comm: tuple[int, int, int] | None
    saves: tuple[tuple[str, int], ...]


class PrimitiveBuilder:
    """Collects a layer's primitive operators in topological order (local to one call).

    Tensors are named; a primitive's inputs that no earlier primitive produced are layer
    inputs (activations from the previous layer, token ids) and create no edge.
    """

    def __init__(self) -> None:
        self._prims: list[_Prim] = []

    def _add(self, name, cat, inputs, output, gemm=None, parts=(), comm=None, saves=()):
        self._prims.append(
            _Prim(
                name,
                cat,
                tuple(inputs),
                output,
                gemm,
                tuple((int(c), int(e), int(a)) for c, e, a in parts),
                comm,
                tuple(saves),
            )
        )
        return output

    def gemm(self, name, inputs, output, dims, saves=()):
        """A GEMM ``(B, M, K, N)``; ``saves`` lists (tensor, bytes) kept for backward."""
        return self._add(name, _GEMM, inputs, output, gemm=tuple(int(d) for d in dims), saves=saves)

    def elementwise(self, name, inputs, output, parts, saves=()):
        """Element-wise / activation work given as VC parts (code, elements, aux)."""
        return self._add(name, _EW, inputs, output, parts=parts, saves=saves)

    def dropout(self, name, inputs, output, elems, mask_name):
        """Dropout over ``elems`` elements; keeps a 1-byte-per-element mask."""
        return self._add(
            name,
            _DROP,
            inputs,
            output,
            parts=((VcOp.DROPOUT, elems, 1),),
            saves=((mask_name, int(elems)),),
        )

    def reduction(self, name, inputs, output, parts, saves=()):
        """Softmax / mean style work (absorbs nothing)."""
        return self._add(name, _RED, inputs, output, parts=parts, saves=saves)

    def norm(self, name, inputs, output, parts, saves=()):
        """LayerNorm / RMSNorm."""
        return self._add(name, _NORM, inputs, output, parts=parts, saves=saves)

    def allreduce(self, name, inputs, output, nbytes, group, comm_pass: CommPass):
        """Ring all-reduce of ``nbytes`` over ``group`` devices in one pass."""
        return self._add(
            name, _COMM, inputs, output, comm=(int(nbytes), int(group), int(comm_pass))
        )

    def build(self) -> OpGraph:
        """Apply the fusion rule and return the fused operator DAG."""
        return fuse(self._prims)


def _absorbs(tail_cat: str, cat: str) -> bool:
    if tail_cat == _GEMM:
        return cat in _GEMM_ABSORBS
    if tail_cat in (_EW, _DROP):
        return cat in _EW_ABSORBS
    return False


def _inputs_ready(p, g, groups, group_of, producer, ancestors) -> bool:
    """Absorbing ``p`` into group ``g`` must not serialise independent work: every other
    in-layer input of ``p`` must be computed before the group starts (an ancestor of its
    first primitive). A residual add may join its GEMM; SwiGLU's gate product may not
    join the gate GEMM, or the up projection could no longer run beside it."""
    head = groups[g][0]
    for t in p.inputs:
        r = producer.get(t)
        if r is not None and group_of[r] != g and not (ancestors[head] >> r) & 1:
            return False
    return True


def fuse(prims: list[_Prim]) -> OpGraph:
    """Fuse primitives (in topological order) into an :class:`OpGraph`."""
    producer: dict[str, int] = {}
    consumers: dict[str, list[int]] = {}
    for i, p in enumerate(prims):
        if p.output in producer:
            raise ValueError(f"tensor {p.output!r} produced twice (by {p.name!r})")
        for t in p.inputs:
            if t not in producer:
                continue  # layer input
            consumers.setdefault(t, []).append(i)
        producer[p.output] = i

    # ancestors[i]: bitset of the primitives that primitive i depends on
    ancestors = [0] * len(prims)
    for i, p in enumerate(prims):
        for t in p.inputs:
            q = producer.get(t)
            if q is not None:
                ancestors[i] |= ancestors[q] | (1 << q)

    group_of = [-1] * len(prims)
    groups: list[list[int]] = []
    for i, p in enumerate(prims):
        target = -1
        if p.cat != _COMM:
            for t in p.inputs:
                q = producer.get(t)
                if q is None or q >= i:
                    continue
                g = group_of[q]
                tail = prims[groups[g][-1]]
                if (
                    tail.output == t
                    and consumers.get(t) == [i]
                    and _absorbs(tail.cat, p.cat)
                    and _inputs_ready(p, g, groups, group_of, producer, ancestors)
                ):
                    target = g
                    break
        if target < 0:
            group_of[i] = len(groups)
            groups.append([i])
        else:
            group_of[i] = target
            groups[target].append(i)

    # group edges, then a deterministic topological order (creation order breaks ties)
    succ: list[set[int]] = [set() for _ in groups]
    for i, p in enumerate(prims):
        for t in p.inputs:
            q = producer.get(t)
            if q is not None and group_of[q] != group_of[i]:
                succ[group_of[q]].add(group_of[i])
    order, stuck = toposort(len(groups), succ)
    if stuck:  # pragma: no cover - fusion cannot create cycles
        raise RuntimeError("operator fusion produced a cycle")
    position = {g: k for k, g in enumerate(order)}

    ops = tuple(_make_op([prims[i] for i in groups[g]]) for g in order)
    edges = sorted((position[a], position[b]) for a in range(len(groups)) for b in succ[a])
    return OpGraph(ops=ops, edges=np.array(edges, dtype=np.int64).reshape(-1, 2))


def _make_op(members: list[_Prim]) -> Op:
    head = members[0]
    name = "+".join(m.name for m in members)
    saved = tuple(s for m in members for s in m.saves)
    parts = tuple(part for m in members for part in m.parts)
    if head.cat == _COMM:
        return Op(name=name, kind=OpKind.COMM, comm=head.comm, saved=saved)
    if head.cat == _GEMM:
        kind = OpKind.TC_VC if parts else OpKind.TC
        return Op(name=name, kind=kind, gemm=head.gemm, vc_parts=parts, saved=saved)
    return Op(name=name, kind=OpKind.VC, vc_parts=parts, saved=saved)
