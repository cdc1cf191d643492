"""Placement problems: layer graphs per tensor width, a cluster and a memory model.

A :class:`PlacementProblem` holds, for every tensor-parallel width ``t`` it offers, a
:class:`WidthGraph` (layers in topological order with forward/backward latencies,
parameter and activation bytes and a tensor-parallel flag; edges with the activation
bytes they carry), plus the cluster (devices, link bandwidth, HBM per device), the batch
(micro-batches per batch), recomputation, the optimizer and, optionally, the fixed
Megatron-style baseline plan (docs/placement.md).

It is built from the reference JSON format of the original solver
(:func:`load_instance`) or from phaze's own model graphs
(:meth:`PlacementProblem.from_graphs`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from phaze._toposort import toposort
from phaze.errors import ConfigError
from phaze.placement.data_parallel import DataParallelTerms, state_factor_at
from phaze.systems.network import Network
from phaze.validate import (
    MAX_DEVICES,
    OPTIMIZERS,
    check_bool,
    check_choice,
    check_int,
    check_number,
)

__all__ = ["FixedBaseline", "PlacementProblem", "WidthGraph"]


def _frozen_array(x: object, dtype: type, name: str, where: str) -> np.ndarray:
    try:
        a = np.array(x, dtype=dtype, copy=True)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{where}: {name} must be a 1-d array of {dtype.__name__}: {exc}"
        ) from None
    if a.ndim != 1:
        raise ConfigError(f"{where}: {name} must be 1-d, got shape {a.shape}")
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, slots=True, eq=False)
class WidthGraph:
    """The layer graph at one tensor-parallel width, layers in topological order.

    Attributes
    ----------
    layer_ids : int64 (n,)
        Layer ids (for example -1 embedding, 0 ... L-1 blocks, L head); distinct.
    fwd_s, bwd_s : float64 (n,)
        Forward and backward latency of each layer in seconds, >= 0; ``inf`` means the
        layer cannot run at this width (every plan using it is infeasible).
    param_bytes, activation_bytes : float64 (n,)
        Parameter bytes per device and activation bytes kept for backward (one
        micro-batch); finite, >= 0.
    tensor_parallel : bool (n,)
        The layer is split over ``t`` devices (a stage holding one needs ``t`` devices).
    edge_src, edge_dst : int64 (E,)
        Positions into the layer arrays, ``edge_src < edge_dst`` (topological order).
    edge_bytes : float64 (E,)
        Activation bytes crossing each edge, finite, >= 0.
    recompute_s : float64 (n,), optional
        Latency of each layer's recomputation (default ``fwd_s``: the whole forward).
    work_bytes : float64 (n,), optional
        Working bytes a stage holding the layer needs once, beside its stored
        activations (default 0; the stage takes its largest).

    Use :meth:`from_unordered` when the layers are not yet topologically ordered.
    """

    layer_ids: np.ndarray
    fwd_s: np.ndarray
    bwd_s: np.ndarray
    param_bytes: np.ndarray
    activation_bytes: np.ndarray
    tensor_parallel: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_bytes: np.ndarray
    width: int = 0
    recompute_s: np.ndarray | None = None
    work_bytes: np.ndarray | None = None

    def __post_init__(self) -> None:
        where = f"width t={self.width}" if self.width else "layer graph"
        if self.recompute_s is None:
            object.__setattr__(self, "recompute_s", self.fwd_s)
        if self.work_bytes is None:
            object.__setattr__(self, "work_bytes", np.zeros(np.shape(self.fwd_s)))
        conv = {
            "layer_ids": np.int64,
            "fwd_s": np.float64,
            "bwd_s": np.float64,
            "param_bytes": np.float64,
            "activation_bytes": np.float64,
            "tensor_parallel": np.bool_,
            "edge_src": np.int64,
            "edge_dst": np.int64,
            "edge_bytes": np.float64,
            "recompute_s": np.float64,
            "work_bytes": np.float64,
        }
        for name, dtype in conv.items():
            object.__setattr__(self, name, _frozen_array(getattr(self, name), dtype, name, where))
        n = self.layer_ids.shape[0]
        if n == 0:
            raise ConfigError(f"{where}: the layer graph has no layers; at least 1 needed")
        for name in (
            "fwd_s",
            "bwd_s",
            "param_bytes",
            "activation_bytes",
            "tensor_parallel",
            "recompute_s",
            "work_bytes",
        ):
            if getattr(self, name).shape[0] != n:
                raise ConfigError(
                    f"{where}: {name} has {getattr(self, name).shape[0]} "
                    f"entries, expected {n} (one per layer)"
                )
        if np.unique(self.layer_ids).shape[0] != n:
            ids, counts = np.unique(self.layer_ids, return_counts=True)
            raise ConfigError(
                f"{where}: layer ids must be distinct; repeated: {ids[counts > 1].tolist()}"
            )
        for name in ("fwd_s", "bwd_s", "recompute_s"):
            a = getattr(self, name)
            bad = np.flatnonzero(~(a >= 0))
            if bad.size:
                i = int(bad[0])
                raise ConfigError(
                    f"{where}: {name} of layer {self.layer_ids[i]} is {a[i]}; "
                    "latencies must be >= 0 (inf allowed: cannot run)"
                )
        for name in ("param_bytes", "activation_bytes", "work_bytes"):
            a = getattr(self, name)
            bad = np.flatnonzero(~((a >= 0) & np.isfinite(a)))
            if bad.size:
                i = int(bad[0])
                raise ConfigError(
                    f"{where}: {name} of layer {self.layer_ids[i]} is {a[i]}; "
                    "sizes must be finite and >= 0"
                )
        e = self.edge_src.shape[0]
        if self.edge_dst.shape[0] != e or self.edge_bytes.shape[0] != e:
            raise ConfigError(
                f"{where}: edge_src, edge_dst and edge_bytes must have equal "
                f"lengths, got {e}, {self.edge_dst.shape[0]}, "
                f"{self.edge_bytes.shape[0]}"
            )
        if e:
            if self.edge_src.min() < 0 or self.edge_dst.max() >= n or self.edge_dst.min() < 0:
                raise ConfigError(f"{where}: edge positions must lie in 0..{n - 1}")
            back = np.flatnonzero(self.edge_src >= self.edge_dst)
            if back.size:
                i = int(back[0])
                raise ConfigError(
                    f"{where}: edge {self.layer_ids[self.edge_src[i]]} -> "
                    f"{self.layer_ids[self.edge_dst[i]]} goes backwards; layers must be in "
                    "topological order (use WidthGraph.from_unordered)"
                )
            bad = np.flatnonzero(~((self.edge_bytes >= 0) & np.isfinite(self.edge_bytes)))
            if bad.size:
                i = int(bad[0])
                raise ConfigError(
                    f"{where}: edge {self.layer_ids[self.edge_src[i]]} -> "
                    f"{self.layer_ids[self.edge_dst[i]]} carries {self.edge_bytes[i]} bytes;"
                    " sizes must be finite and >= 0"
                )

    @property
    def n_layers(self) -> int:
        """Number of layers."""
        return int(self.layer_ids.shape[0])

    @classmethod
    def from_unordered(
        cls,
        layer_ids,
        fwd_s,
        bwd_s,
        param_bytes,
        activation_bytes,
        tensor_parallel,
        edge_src_ids,
        edge_dst_ids,
        edge_bytes,
        width: int = 0,
    ) -> WidthGraph:
        """Build from layers in any order and edges given by layer *id*.

        Layers are renumbered in a topological order: the given order when it is one,
        else Kahn's algorithm taking the earliest-listed ready layer first (deterministic).

        Raises
        ------
        ConfigError
            An edge names an unknown layer, or the graph has a cycle (the message lists
            the layers on it or behind it).

        Examples
        --------
        >>> g = WidthGraph.from_unordered([1, 0], [1.0, 2.0], [2.0, 4.0], [0, 0], [0, 0],
        ...                               [False, False], [0], [1], [8.0])
        >>> g.layer_ids.tolist(), g.edge_src.tolist(), g.edge_dst.tolist()
        ([0, 1], [0], [1])
        """
        where = f"width t={width}" if width else "layer graph"
        ids = [int(v) for v in np.asarray(layer_ids, dtype=np.int64).tolist()]
        pos = {v: i for i, v in enumerate(ids)}
        if len(pos) != len(ids):
            raise ConfigError(f"{where}: layer ids must be distinct")
        src = np.asarray(edge_src_ids, dtype=np.int64).tolist()
        dst = np.asarray(edge_dst_ids, dtype=np.int64).tolist()
        if len(src) != len(dst):
            raise ConfigError(f"{where}: {len(src)} edge sources but {len(dst)} destinations")
        for u, v in zip(src, dst, strict=True):
            for end in (u, v):
                if end not in pos:
                    raise ConfigError(
                        f"{where}: edge {u} -> {v} names layer {end}, which is "
                        f"not among the layers ({_brief(ids)})"
                    )
        n = len(ids)
        succ: list[list[int]] = [[] for _ in range(n)]
        for u, v in zip(src, dst, strict=True):
            succ[pos[u]].append(pos[v])
        order, stuck_pos = toposort(n, succ)
        if stuck_pos:
            stuck = [ids[i] for i in stuck_pos]
            raise ConfigError(
                f"{where}: the layer graph has a cycle; layers on or behind it: {_brief(stuck)}"
            )
        new = np.empty(n, dtype=np.int64)
        new[np.array(order, dtype=np.int64)] = np.arange(n)
        perm = np.array(order, dtype=np.int64)

        def take(x: object, dtype: type) -> np.ndarray:
            a = np.asarray(x, dtype=dtype)
            if a.ndim != 1 or a.shape[0] != n:
                raise ConfigError(
                    f"{where}: per-layer arrays must have {n} entries, got shape {a.shape}"
                )
            return a[perm]

        return cls(
            layer_ids=np.array(ids, dtype=np.int64)[perm],
            fwd_s=take(fwd_s, np.float64),
            bwd_s=take(bwd_s, np.float64),
            param_bytes=take(param_bytes, np.float64),
            activation_bytes=take(activation_bytes, np.float64),
            tensor_parallel=take(tensor_parallel, np.bool_),
            edge_src=new[[pos[u] for u in src]] if src else np.zeros(0, np.int64),
            edge_dst=new[[pos[v] for v in dst]] if dst else np.zeros(0, np.int64),
            edge_bytes=np.asarray(edge_bytes, dtype=np.float64),
            width=width,
        )


def _brief(values: Sequence[object], limit: int = 8) -> str:
    head = ", ".join(str(v) for v in list(values)[:limit])
    return head + (", ..." if len(values) > limit else "")


@dataclass(frozen=True, slots=True)
class FixedBaseline:
    """The fixed Megatron-style plan (docs/placement.md).

    ``pipeline_stages`` (p) stages of ``ceil(num_blocks / p)`` consecutive blocks (layer
    ids 0 ... num_blocks-1; ids < 0 join the first stage, ids >= num_blocks the last),
    ``tensor_width`` (t) devices per stage and ``data_parallel`` (d) pipeline replicas.
    """

    pipeline_stages: int
    tensor_width: int
    data_parallel: int
    num_blocks: int

    def __post_init__(self) -> None:
        for name in ("pipeline_stages", "tensor_width", "data_parallel", "num_blocks"):
            object.__setattr__(
                self, name, check_int(f"fixed baseline {name}", getattr(self, name), 1)
            )


@dataclass(frozen=True, slots=True, eq=False)
class PlacementProblem:
    """A device-placement problem (docs/placement.md).

    Attributes
    ----------
    widths : tuple of int
        Tensor-parallel widths offered, increasing.
    graphs : tuple of WidthGraph
        The layer graph at each width (same order as ``widths``); every width has the same
        layer ids in the same order.
    devices : int
        Accelerators in the cluster (N >= 1).
    link_bandwidth_Bps : float
        Link bandwidth between devices, bytes per second (> 0).
    hbm_bytes : float
        Memory per device in bytes (> 0; ``inf`` = unlimited).
    num_micro_batches : int
        Micro-batches per global batch (B / mbs >= 1).
    recompute : bool
        Recompute activations in backward (stash only the stage inputs).
    optimizer : {"sgd", "adam"}
        Adam keeps optimizer state equal to the parameter bytes; SGD none.
    fixed_baseline : FixedBaseline or None
    micro_batch_size : int or None
        Samples per micro-batch, when known (gives throughput in samples per second).
    state_factor : float, optional
        Bytes of weights, gradients and optimizer state per parameter byte; default from
        ``optimizer`` (2 for SGD, 3 for Adam; 9 is mixed-precision Adam's 18 bytes per
        2-byte parameter, :mod:`phaze.training`).
    recompute_last : bool
        With recomputation the last stage recomputes too (Megatron); default False.
    stash_inputs : bool
        With recomputation a stage stashes only the bytes entering it (the paper,
        default); False: its activation bytes, which then describe what is kept.
    network : phaze.systems.Network, optional
        Network levels: the data-parallel gradient all-reduce of ``d`` pipelines at width
        ``t`` is a ring over ``d`` members at stride ``t`` (ranks tensor, then data, then
        pipeline), priced on the levels it spans (:meth:`Network.ring`); None (default):
        the single link, ``link_bandwidth_Bps`` and no latency. Pipeline transfers use
        ``link_bandwidth_Bps`` either way.
    dp_terms : phaze.placement.DataParallelTerms
        What the data-parallel degree changes beyond the paper's rules: state sharded
        over the replicas (the distributed optimizer), the synchronisation's bytes, the
        optimizer step and its overlap with the backward pass; default the paper's.
    """

    widths: tuple[int, ...]
    graphs: tuple[WidthGraph, ...]
    devices: int
    link_bandwidth_Bps: float
    hbm_bytes: float
    num_micro_batches: int
    recompute: bool
    optimizer: str = "sgd"
    fixed_baseline: FixedBaseline | None = None
    micro_batch_size: int | None = None
    state_factor: float | None = None
    recompute_last: bool = False
    stash_inputs: bool = True
    network: Network | None = None
    dp_terms: DataParallelTerms = DataParallelTerms()
    _index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        widths = tuple(check_int("tensor width", t, 1) for t in self.widths)
        if len(set(widths)) != len(widths) or list(widths) != sorted(widths):
            raise ConfigError(f"widths={widths} must be distinct and increasing")
        if not widths:
            raise ConfigError("a placement problem needs at least one tensor width")
        graphs = tuple(self.graphs)
        if len(graphs) != len(widths):
            raise ConfigError(f"{len(widths)} widths but {len(graphs)} layer graphs")
        for t, g in zip(widths, graphs, strict=True):
            if not isinstance(g, WidthGraph):
                raise ConfigError(f"width t={t}: expected a WidthGraph, got {type(g).__name__}")
        ids0 = graphs[0].layer_ids
        for t, g in zip(widths[1:], graphs[1:], strict=True):
            if g.layer_ids.shape != ids0.shape or not np.array_equal(g.layer_ids, ids0):
                raise ConfigError(
                    f"width t={t} has layers [{_brief(g.layer_ids.tolist())}] but width "
                    f"t={widths[0]} has [{_brief(ids0.tolist())}]; every width must list the "
                    "same layers in the same topological order"
                )
        object.__setattr__(self, "widths", widths)
        object.__setattr__(self, "graphs", graphs)
        object.__setattr__(self, "devices", check_int("devices", self.devices, 1, MAX_DEVICES))
        object.__setattr__(
            self,
            "link_bandwidth_Bps",
            check_number("link_bandwidth_Bps", self.link_bandwidth_Bps, unit="bytes/s"),
        )
        object.__setattr__(
            self,
            "hbm_bytes",
            check_number("hbm_bytes", self.hbm_bytes, allow_inf=True, unit="bytes"),
        )
        object.__setattr__(
            self, "num_micro_batches", check_int("num_micro_batches", self.num_micro_batches, 1)
        )
        object.__setattr__(self, "recompute", check_bool("recompute", self.recompute))
        opt = self.optimizer.lower() if isinstance(self.optimizer, str) else self.optimizer
        if opt not in OPTIMIZERS:  # the original's files say "SGD" / "Adam"
            check_choice("optimizer", self.optimizer, OPTIMIZERS)
        object.__setattr__(self, "optimizer", opt)
        if self.state_factor is None:
            object.__setattr__(self, "state_factor", 3.0 if opt == "adam" else 2.0)
        object.__setattr__(
            self, "state_factor", check_number("state_factor", self.state_factor, high=1e6)
        )
        object.__setattr__(
            self, "recompute_last", check_bool("recompute_last", self.recompute_last)
        )
        object.__setattr__(self, "stash_inputs", check_bool("stash_inputs", self.stash_inputs))
        if self.network is not None and not isinstance(self.network, Network):
            raise ConfigError(
                f"network={self.network!r} is invalid; allowed: a phaze.Network or None"
            )
        if not isinstance(self.dp_terms, DataParallelTerms):
            raise ConfigError(
                f"dp_terms={self.dp_terms!r} is invalid; allowed: a "
                "phaze.placement.DataParallelTerms"
            )
        self.dp_terms.check(self.state_factor)
        if self.micro_batch_size is not None:
            object.__setattr__(
                self, "micro_batch_size", check_int("micro_batch_size", self.micro_batch_size, 1)
            )
        fb = self.fixed_baseline
        if fb is not None:
            if not isinstance(fb, FixedBaseline):
                raise ConfigError(f"fixed_baseline must be a FixedBaseline, got {fb!r}")
            if fb.tensor_width not in widths:
                raise ConfigError(
                    f"fixed baseline width t={fb.tensor_width} is not among the "
                    f"problem's widths {widths}"
                )
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(widths)})

    def dp_allreduce(self, t: int, d_max: int) -> tuple[np.ndarray, np.ndarray]:
        """Per data-parallel degree ``d = 0 .. d_max``: the bandwidth and per-step latency
        of the gradient all-reduce at width ``t`` (:func:`dp_allreduce_arrays`)."""
        return dp_allreduce_arrays(self.network, self.link_bandwidth_Bps, t, d_max)

    def state_factor_at(self, d: int) -> float:
        """Bytes of state per parameter byte with ``d`` pipeline replicas (the sharded
        part divided by ``d``; :attr:`state_factor` when nothing is sharded)."""
        return state_factor_at(self.state_factor, self.dp_terms.sharded_state_factor, d)

    @property
    def adam(self) -> bool:
        """The optimizer keeps state equal to the parameter bytes (Adam)."""
        return self.optimizer == "adam"

    @property
    def layer_ids(self) -> np.ndarray:
        """Layer ids in topological order (shared by every width)."""
        return self.graphs[0].layer_ids

    def graph(self, t: int) -> WidthGraph:
        """The layer graph at width ``t``."""
        try:
            return self.graphs[self._index[t]]
        except (KeyError, TypeError):
            raise ConfigError(
                f"tensor width t={t!r} is not offered; allowed: {', '.join(map(str, self.widths))}"
            ) from None

    @classmethod
    def from_graphs(
        cls,
        graphs: Mapping[int, object],
        fwd_s: Mapping[int, np.ndarray],
        bwd_s: Mapping[int, np.ndarray],
        devices: int,
        link_bandwidth_Bps: float,
        hbm_bytes: float,
        num_micro_batches: int,
        recompute: bool,
        optimizer: str,
        fixed_baseline: FixedBaseline | tuple[int, int, int] | None = None,
    ) -> PlacementProblem:
        """Build from phaze model graphs (one per width) and per-layer latencies.

        Parameters
        ----------
        graphs : mapping of int to ModelGraph
            ``{t: build_graph(spec, seq_len, micro_batch_size, tensor_width=t)}``. Only the contract
            attributes are read: ``layers`` (topological order; each with ``layer_id``,
            ``param_bytes``, ``activation_bytes``, ``tensor_parallel``), ``edges`` (with
            ``src``, ``dst`` positions and ``bytes``), and ``micro_batch_size`` if present.
        fwd_s, bwd_s : mapping of int to float64 (n_layers,)
            Per-layer forward and backward latency in seconds at each width.
        devices, link_bandwidth_Bps, hbm_bytes, num_micro_batches, recompute, optimizer
            As the attributes of :class:`PlacementProblem`.
        fixed_baseline : FixedBaseline or (p, t, d), optional
            With a tuple, ``num_blocks`` is the number of layers whose role is ``block``
            (or, without roles, whose id is >= 0 and below the largest id).

        Examples
        --------
        >>> from phaze.models import build_graph, preset
        >>> g = {t: build_graph(preset("llama2-7b"), 1024, 1, tensor_width=t) for t in (1, 2)}
        >>> lat = {t: np.full(len(g[t].layers), 1e-3 / t) for t in g}
        >>> prob = PlacementProblem.from_graphs(g, lat, lat, devices=8,
        ...     link_bandwidth_Bps=50e9, hbm_bytes=80e9, num_micro_batches=64,
        ...     recompute=False, optimizer="adam", fixed_baseline=(4, 2, 1))
        >>> prob.widths, prob.graph(2).n_layers, prob.fixed_baseline.num_blocks
        ((1, 2), 34, 32)
        """
        if not isinstance(graphs, Mapping) or not graphs:
            raise ConfigError("graphs must be a non-empty mapping {tensor width: ModelGraph}")
        widths = sorted(graphs)
        for name, m in (("fwd_s", fwd_s), ("bwd_s", bwd_s)):
            if not isinstance(m, Mapping) or sorted(m) != widths:
                got = sorted(m) if isinstance(m, Mapping) else type(m).__name__
                raise ConfigError(
                    f"{name} must map the same widths as graphs ({widths}); got {got}"
                )
        built = []
        mbs = None
        for t in widths:
            g = graphs[t]
            layers = list(g.layers)
            n = len(layers)
            for name, m in (("fwd_s", fwd_s), ("bwd_s", bwd_s)):
                if np.shape(m[t]) != (n,):
                    raise ConfigError(
                        f"width t={t}: {name} has shape {np.shape(m[t])}, "
                        f"expected ({n},) (one latency per layer)"
                    )
            edges = list(g.edges)
            built.append(
                WidthGraph(
                    layer_ids=[layer.layer_id for layer in layers],
                    fwd_s=fwd_s[t],
                    bwd_s=bwd_s[t],
                    param_bytes=[layer.param_bytes for layer in layers],
                    activation_bytes=[layer.activation_bytes for layer in layers],
                    tensor_parallel=[bool(layer.tensor_parallel) for layer in layers],
                    edge_src=np.array([e.src for e in edges], dtype=np.int64),
                    edge_dst=np.array([e.dst for e in edges], dtype=np.int64),
                    edge_bytes=np.array([e.bytes for e in edges], dtype=np.float64),
                    width=int(t),
                )
            )
            m_b = getattr(g, "micro_batch_size", None)
            if m_b is not None:
                if mbs is not None and m_b != mbs:
                    raise ConfigError(
                        f"graphs have different micro-batch sizes ({mbs} and "
                        f"{m_b}); build every width with the same one"
                    )
                mbs = m_b
        if fixed_baseline is not None and not isinstance(fixed_baseline, FixedBaseline):
            try:
                p, t_b, d = fixed_baseline
            except (TypeError, ValueError):
                raise ConfigError(
                    f"fixed_baseline={fixed_baseline!r} must be a "
                    "FixedBaseline or a (p, t, d) tuple"
                ) from None
            layers = list(graphs[widths[0]].layers)
            roles = [getattr(layer, "role", None) for layer in layers]
            if all(r is not None for r in roles):
                n_blocks = sum(r == "block" for r in roles)
            else:
                ids = [layer.layer_id for layer in layers]
                n_blocks = sum(0 <= i < max(ids) for i in ids)
            fixed_baseline = FixedBaseline(p, t_b, d, n_blocks)
        return cls(
            widths=tuple(int(t) for t in widths),
            graphs=tuple(built),
            devices=devices,
            link_bandwidth_Bps=link_bandwidth_Bps,
            hbm_bytes=hbm_bytes,
            num_micro_batches=num_micro_batches,
            recompute=recompute,
            optimizer=optimizer,
            fixed_baseline=fixed_baseline,
            micro_batch_size=mbs,
        )

    def to_instance_dict(self) -> dict:
        """The problem in the reference JSON format (inverse of :func:`load_instance`);
        see :func:`phaze.placement.instance.instance_dict`."""
        from phaze.placement.instance import instance_dict

        return instance_dict(self)


def dp_allreduce_arrays(
    network: Network | None, link_bandwidth_Bps: float, t: int, d_max: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(bandwidth_Bps, latency_s)``, float64 arrays of length ``d_max + 1``: entry ``d``
    prices the data-parallel all-reduce of ``d`` pipelines at width ``t``, a ring of ``d``
    members at stride ``t`` on the levels of ``network`` it spans; without a network the
    link's bandwidth and no latency (entries 0 and 1: the link's, never used).

    Examples
    --------
    >>> from phaze.systems import Network, NetworkLevel
    >>> net = Network((NetworkLevel("nvlink", 8, 300e9, 1.0, 1e-6),
    ...                NetworkLevel("infiniband", 0, 25e9, 1.0, 5e-6)))
    >>> bw, lat = dp_allreduce_arrays(net, 25e9, 2, 8)
    >>> bw[4].item(), bw[8].item(), lat[8].item()  # 4 x 2 devices in a node; 4 per node
    (300000000000.0, 100000000000.0, 5e-06)
    """
    bw = np.full(d_max + 1, float(link_bandwidth_Bps))
    lat = np.zeros(d_max + 1)
    if network is None or d_max < 2:
        return bw, lat
    # Network.ring for every d at once: walk the levels from the innermost out; a level is
    # crossed when one of its domains holds more members than one domain of the level
    # inside it, and then offers (members per inner domain) x its achieved bandwidth
    n = np.arange(2, d_max + 1, dtype=np.int64)
    ring_bw, ring_lat = np.full(n.shape, np.inf), np.zeros(n.shape)
    below = np.ones(n.shape, dtype=np.int64)
    done = np.zeros(n.shape, dtype=bool)
    for lv in network.levels:
        k = n if lv.devices == 0 else np.maximum(1, np.minimum(n, lv.devices // t))
        cross = ~done & (k > below)
        ring_bw = np.where(cross, np.minimum(ring_bw, below * lv.achieved_Bps), ring_bw)
        ring_lat = np.where(cross, lv.latency_s, ring_lat)
        below = np.where(done, below, k)
        done |= k >= n
    bw[2:], lat[2:] = ring_bw, ring_lat
    return bw, lat


def check_problem(problem: object) -> PlacementProblem:
    """``problem`` if it is a :class:`PlacementProblem`, else a ConfigError naming it."""
    if not isinstance(problem, PlacementProblem):
        raise ConfigError(
            f"problem={problem!r} is invalid; allowed: a PlacementProblem (e.g. "
            "phaze.placement.load_instance(path) or PlacementProblem.from_graphs(...))"
        )
    return problem
