"""Validated scheduling instances: the operator DAG, kinds, latencies and core counts.

Internal to :mod:`phaze.schedule`. Instances are small (a layer has tens of operators), so
they are held as tuples of Python ints and floats, with ancestor / descendant sets as
integer bitmasks; numpy is used only at the edges.

Resource semantics (docs/scheduling.md): three renewable resources, ``num_tc``
tensor cores, ``num_vc`` vector cores and one link. In single-core mode a ``TC`` operator
takes one tensor core, ``VC`` one vector core, ``TC_VC`` one of each and ``COMM`` the link.
In intra-operator mode (``TC``, ``TC_VC``, ``VC`` only) an operator takes every unit of every
resource: it runs alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phaze._toposort import toposort
from phaze.errors import ConfigError
from phaze.opcodes import OpKind
from phaze.validate import check_int

__all__ = ["Dag", "Problem", "dag_from", "make_problem"]

TC, TC_VC, VC, COMM = int(OpKind.TC), int(OpKind.TC_VC), int(OpKind.VC), int(OpKind.COMM)
#: resource indices
R_TC, R_VC, R_LINK = 0, 1, 2
#: single-core demand (tc, vc, link) of each kind
SINGLE_DEMAND = {TC: (1, 0, 0), TC_VC: (1, 1, 0), VC: (0, 1, 0), COMM: (0, 0, 1)}
_KIND_NAMES = {int(k): k.name for k in OpKind}


def _bits(mask: int) -> list[int]:
    """Indices of the set bits of ``mask``, ascending."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


@dataclass(frozen=True, slots=True)
class Dag:
    """A DAG on nodes ``0 .. n-1`` with its transitive closure as bitmasks."""

    n: int
    edges: tuple[tuple[int, int], ...]  #: sorted, without duplicates
    preds: tuple[tuple[int, ...], ...]
    succs: tuple[tuple[int, ...], ...]
    topo: tuple[int, ...]  #: a topological order (smallest ready index first)
    anc: tuple[int, ...]  #: bitmask of the ancestors of each node
    desc: tuple[int, ...]  #: bitmask of the descendants of each node

    @classmethod
    def build(cls, n: int, edges) -> Dag:
        """Build from ``(src, dst)`` pairs; raises ConfigError when there is a cycle."""
        es = tuple(sorted({(int(a), int(b)) for a, b in edges}))
        preds: list[list[int]] = [[] for _ in range(n)]
        succs: list[list[int]] = [[] for _ in range(n)]
        for a, b in es:
            succs[a].append(b)
            preds[b].append(a)
        topo, cyc = toposort(n, succs)
        if cyc:
            raise ConfigError(
                f"operator graph has a cycle through operators {cyc[:10]}; "
                "allowed: a directed acyclic graph"
            )
        anc = [0] * n
        for i in topo:
            m = 0
            for p in preds[i]:
                m |= anc[p] | (1 << p)
            anc[i] = m
        desc = [0] * n
        for i in reversed(topo):
            m = 0
            for s in succs[i]:
                m |= desc[s] | (1 << s)
            desc[i] = m
        return cls(
            n,
            es,
            tuple(map(tuple, preds)),
            tuple(map(tuple, succs)),
            tuple(topo),
            tuple(anc),
            tuple(desc),
        )

    def reversed(self) -> Dag:
        """The DAG with every edge reversed (the backward pass)."""
        return Dag.build(self.n, [(b, a) for a, b in self.edges])

    def comparable(self, i: int, j: int) -> bool:
        """Whether ``i`` and ``j`` are ordered by precedence (one reaches the other)."""
        return bool((self.anc[i] | self.desc[i]) >> j & 1)

    def induced(self, nodes: list[int]) -> Dag:
        """Sub-DAG on ``nodes`` (renumbered 0..k-1 in the given order), with the edges
        implied by the closure of this DAG (so precedence through removed nodes is kept)."""
        pos = {v: k for k, v in enumerate(nodes)}
        es = [(pos[a], pos[b]) for a in nodes for b in _bits(self.desc[a]) if b in pos]
        return Dag.build(len(nodes), es)

    def width(self, nodes: list[int]) -> int:
        """Size of a largest antichain among ``nodes`` (Dilworth: k - maximum matching)."""
        nodes = list(nodes)
        k = len(nodes)
        if k <= 1:
            return k
        adj = [[b for b in range(k) if self.desc[nodes[a]] >> nodes[b] & 1] for a in range(k)]
        match_r = [-1] * k

        def augment(a: int, seen: list[bool]) -> bool:
            for b in adj[a]:
                if not seen[b]:
                    seen[b] = True
                    if match_r[b] < 0 or augment(match_r[b], seen):
                        match_r[b] = a
                        return True
            return False

        matched = sum(augment(a, [False] * k) for a in range(k))
        return k - matched

    def cut_nodes(self) -> list[int]:
        """Nodes ordered against every other node, in topological order."""
        full = (1 << self.n) - 1
        return [i for i in self.topo if (self.anc[i] | self.desc[i] | (1 << i)) == full]


@dataclass(frozen=True, slots=True)
class Problem:
    """A validated instance. ``num_tc`` / ``num_vc`` are the real core counts; ``cap`` are
    the effective capacities ``min(cores, width of the operators using them)`` (at least 1),
    which give the same optimum and make memo keys coincide across large core counts."""

    dag: Dag
    kinds: tuple[int, ...]
    l1: tuple[float, ...]  #: single-core latency, seconds
    la: tuple[float, ...]  #: all-cores latency, seconds (COMM: equal to l1)
    num_tc: int
    num_vc: int
    cap: tuple[int, int, int]  #: effective (tc, vc, link) capacities

    @property
    def n(self) -> int:
        return self.dag.n

    def can_intra(self, i: int) -> bool:
        """Intra-op mode is worth considering: not COMM and strictly faster (dominance:
        a single-core run that is no slower needs a subset of the resources)."""
        return self.kinds[i] != COMM and self.la[i] < self.l1[i]

    def dmin(self, i: int) -> float:
        """Smallest latency of operator ``i`` over its modes."""
        return min(self.l1[i], self.la[i])

    def demand(self, i: int, mode: int) -> tuple[int, int, int]:
        """Units of (tc, vc, link) operator ``i`` holds in ``mode`` (0 single, 1 all)."""
        return self.cap if mode else SINGLE_DEMAND[self.kinds[i]]

    def duration(self, i: int, mode: int) -> float:
        return self.la[i] if mode else self.l1[i]

    def key(self) -> tuple:
        """Memo key: structure, kinds, latencies and effective capacities."""
        return (self.dag.n, self.dag.edges, self.kinds, self.l1, self.la, self.cap)

    def sub(self, nodes: list[int]) -> Problem:
        """The instance restricted to ``nodes`` (precedence through other nodes kept)."""
        dag = self.dag.induced(nodes)
        kinds = tuple(self.kinds[v] for v in nodes)
        return _with_caps(
            dag,
            kinds,
            tuple(self.l1[v] for v in nodes),
            tuple(self.la[v] for v in nodes),
            self.num_tc,
            self.num_vc,
        )

    def reversed(self) -> Problem:
        return Problem(
            self.dag.reversed(), self.kinds, self.l1, self.la, self.num_tc, self.num_vc, self.cap
        )


def resource_users(dag: Dag, kinds) -> tuple[list[int], list[int], list[int]]:
    """Operators that hold a tensor core / vector core / the link in single-core mode."""
    tc = [i for i in range(dag.n) if kinds[i] in (TC, TC_VC)]
    vc = [i for i in range(dag.n) if kinds[i] in (VC, TC_VC)]
    link = [i for i in range(dag.n) if kinds[i] == COMM]
    return tc, vc, link


def _with_caps(dag: Dag, kinds, l1, la, num_tc: int, num_vc: int) -> Problem:
    tc, vc, _ = resource_users(dag, kinds)
    cap = (max(1, min(num_tc, dag.width(tc))), max(1, min(num_vc, dag.width(vc))), 1)
    return Problem(dag, tuple(kinds), tuple(l1), tuple(la), num_tc, num_vc, cap)


def dag_from(op_dag) -> Dag:
    """Convert an :class:`~phaze.models.OpGraph` (``.n_ops``, ``.edges``) or a
    ``networkx.DiGraph`` on nodes ``0 .. n-1`` to a :class:`Dag`."""
    if hasattr(op_dag, "n_ops") and hasattr(op_dag, "edges"):
        n = int(op_dag.n_ops)
        edges = np.asarray(op_dag.edges)
    elif hasattr(op_dag, "nodes") and hasattr(op_dag, "edges") and hasattr(op_dag, "is_directed"):
        if not op_dag.is_directed():
            raise ConfigError("op_dag is an undirected graph; allowed: a networkx.DiGraph")
        nodes = list(op_dag.nodes)
        n = len(nodes)
        if set(nodes) != set(range(n)) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in nodes
        ):
            raise ConfigError(
                f"op_dag nodes must be the integers 0 .. n-1 (n={n}); "
                f"got {sorted(nodes, key=str)[:10]}"
            )
        edges = np.array(list(op_dag.edges), dtype=np.int64).reshape(-1, 2)
    else:
        raise ConfigError(
            f"op_dag of type {type(op_dag).__name__} is not supported; allowed: an OpGraph "
            "(.n_ops, .edges) or a networkx.DiGraph on nodes 0 .. n-1"
        )
    edges = np.asarray(edges)
    if edges.size == 0:
        edges = np.zeros((0, 2), dtype=np.int64)
    if edges.ndim != 2 or edges.shape[1] != 2 or not np.issubdtype(edges.dtype, np.integer):
        raise ConfigError(
            f"op_dag.edges has shape {edges.shape} and dtype {edges.dtype}; "
            "allowed: an integer array of shape (E, 2)"
        )
    if edges.size and (edges.min() < 0 or edges.max() >= n):
        raise ConfigError(f"op_dag.edges reference operators outside 0 .. {n - 1}")
    loops = edges[edges[:, 0] == edges[:, 1]]
    if len(loops):
        raise ConfigError(
            f"op_dag has a self-loop at operator {int(loops[0, 0])} (a cycle); "
            "allowed: a directed acyclic graph"
        )
    return Dag.build(n, edges.tolist())


def _vector(name: str, values, n: int) -> tuple[float, ...]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise ConfigError(
            f"{name} has shape {arr.shape}; allowed: ({n},), one latency per operator"
        )
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"{name}[{i}]={arr[i]!r} s is invalid; allowed: finite and >= 0")
    return tuple(arr.tolist())


def make_problem(op_dag, lat_one, lat_all, kinds, num_tc, num_vc, *, reverse=False) -> Problem:
    """Validate the public inputs of :func:`phaze.schedule.schedule_layer`."""
    dag = op_dag if isinstance(op_dag, Dag) else dag_from(op_dag)
    n = dag.n
    k = np.asarray(kinds)
    if k.shape != (n,) or (n and not np.issubdtype(k.dtype, np.integer)):
        raise ConfigError(
            f"kinds has shape {k.shape} and dtype {k.dtype}; allowed: ({n},) integer OpKind codes"
        )
    valid = set(_KIND_NAMES)
    for i, v in enumerate(k.tolist()):
        if v not in valid:
            raise ConfigError(
                f"kinds[{i}]={v} is not an OpKind code; allowed: {sorted(_KIND_NAMES.items())}"
            )
    l1 = _vector("lat_one", lat_one, n)
    la = _vector("lat_all", lat_all, n)
    kinds_t = tuple(int(v) for v in k.tolist())
    la = tuple(l1[i] if kinds_t[i] == COMM else la[i] for i in range(n))
    num_tc = check_int("num_tc", num_tc)
    num_vc = check_int("num_vc", num_vc)
    if reverse:
        dag = dag.reversed()
    return _with_caps(dag, kinds_t, l1, la, num_tc, num_vc)
