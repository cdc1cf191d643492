"""Network levels and the time of collectives and point-to-point transfers on them.

A cluster network is a list of :class:`NetworkLevel` from the innermost out: for example
8 GPUs on NVLink/NVSwitch (a node), then InfiniBand across nodes. Each level has the
number of devices in one of its domains, the bandwidth of one device per direction at
that level, the fraction of it that collectives achieve and a per-step latency.

Ranks are numbered as Megatron numbers them: consecutive ranks fill a node first. A
communication group is described by its number of members ``n`` and the rank ``stride``
between consecutive members (tensor-parallel groups: stride 1; data-parallel groups:
stride = tensor width; pipeline neighbours: stride = tensor width x data parallel).

Ring collectives (the bandwidth-optimal algorithm NCCL uses for large messages): an
all-reduce of ``S`` bytes over ``n`` members moves ``2 (n-1)/n S`` bytes through every
member's links in ``2 (n-1)`` steps; reduce-scatter and all-gather move half of that in
``n-1`` steps. When the ring spans several domains of level ``j-1`` inside one domain of
level ``j``, the traffic that leaves a level-``(j-1)`` domain is spread over the ``k``
members that domain holds, each with its own level-``j`` link, so level ``j`` offers
``k * bandwidth_j * efficiency_j`` to the ring. The ring runs at the least bandwidth over
the levels it uses and pays the latency of the outermost one per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from phaze.errors import ConfigError

__all__ = ["Network", "NetworkLevel"]


@dataclass(frozen=True, slots=True)
class NetworkLevel:
    """One level of a cluster network.

    Parameters
    ----------
    name : str
        Label in reports (``"nvlink"``, ``"infiniband"``).
    devices : int
        Devices in one domain of this level (8 for a DGX node); 0 for the outermost level
        (unbounded: the whole cluster).
    bandwidth_Bps : float
        Bandwidth of one device per direction at this level, bytes/s.
    efficiency : float
        Fraction of ``bandwidth_Bps`` that large collectives achieve, in (0, 1].
    latency_s : float
        Latency of one ring step (or one point-to-point message) at this level, seconds.
    """

    name: str
    devices: int
    bandwidth_Bps: float
    efficiency: float
    latency_s: float

    def __post_init__(self) -> None:
        if isinstance(self.devices, bool) or not isinstance(self.devices, int):
            raise ConfigError(f"network level {self.name!r}: devices={self.devices!r} must be int")
        if self.devices < 0:
            raise ConfigError(f"network level {self.name!r}: devices={self.devices} must be >= 0")
        if not (self.bandwidth_Bps > 0 and math.isfinite(self.bandwidth_Bps)):
            raise ConfigError(
                f"network level {self.name!r}: bandwidth_Bps={self.bandwidth_Bps!r} must be > 0"
            )
        if not 0 < self.efficiency <= 1:
            raise ConfigError(
                f"network level {self.name!r}: efficiency={self.efficiency!r} must be in (0, 1]"
            )
        if not (self.latency_s >= 0 and math.isfinite(self.latency_s)):
            raise ConfigError(
                f"network level {self.name!r}: latency_s={self.latency_s!r} must be >= 0"
            )

    @property
    def achieved_Bps(self) -> float:
        """Bandwidth per device that collectives reach (``bandwidth_Bps * efficiency``)."""
        return self.bandwidth_Bps * self.efficiency


@dataclass(frozen=True, slots=True)
class Network:
    """A cluster network: levels from the innermost out.

    Examples
    --------
    >>> net = Network((
    ...     NetworkLevel("nvlink", 8, 300e9, 1.0, 0.0),
    ...     NetworkLevel("infiniband", 0, 25e9, 1.0, 0.0),
    ... ))
    >>> net.all_reduce_s(1e9, 8, 1) == 2 * 7 / 8 * 1e9 / 300e9
    True
    >>> net.all_reduce_s(1e9, 2, 8) == 2 * 1 / 2 * 1e9 / 25e9  # one GPU per node
    True
    """

    levels: tuple[NetworkLevel, ...]

    def __post_init__(self) -> None:
        levels = tuple(self.levels)
        object.__setattr__(self, "levels", levels)
        if not levels:
            raise ConfigError("a network needs at least one level")
        if any(not isinstance(lv, NetworkLevel) for lv in levels):
            raise ConfigError("network levels must be NetworkLevel objects")
        if levels[-1].devices != 0:
            raise ConfigError(
                f"the outermost network level {levels[-1].name!r} must have devices=0 "
                f"(unbounded), got {levels[-1].devices}"
            )
        inner = 1
        for lv in levels[:-1]:
            if lv.devices < 2 or lv.devices % inner:
                raise ConfigError(
                    f"network level {lv.name!r}: devices={lv.devices} must be >= 2 and a "
                    f"multiple of the level inside it ({inner})"
                )
            inner = lv.devices

    def _domain(self, j: int) -> float:
        """Devices in one domain of level ``j`` (``j = -1``: one device)."""
        if j < 0:
            return 1
        d = self.levels[j].devices
        return math.inf if d == 0 else d

    def _members_per_domain(self, n: int, stride: int, j: int) -> int:
        """Members of an ``n``-member group at ``stride`` inside one level-``j`` domain."""
        dom = self._domain(j)
        if math.isinf(dom):
            return n
        return max(1, min(n, int(dom) // stride))

    def _ring(self, n: int, stride: int) -> tuple[float, float]:
        """(bandwidth the ring runs at, latency per step) for a group."""
        if n < 2:
            return math.inf, 0.0
        bw, lat = math.inf, 0.0
        below = 1  # members per domain of the level below (one device)
        for j, lv in enumerate(self.levels):
            k = self._members_per_domain(n, stride, j)
            if k > below:  # the ring crosses this level
                bw = min(bw, below * lv.achieved_Bps)
                lat = lv.latency_s
            below = k
            if k >= n:
                break
        return bw, lat

    def ring(self, n: int, stride: int = 1) -> tuple[float, float]:
        """(bandwidth in bytes/s, latency per step in s) of the ring of an ``n``-member
        group at ``stride`` (``inf`` and 0 for fewer than two members).

        Examples
        --------
        >>> net = Network((NetworkLevel("nvlink", 8, 300e9, 1.0, 1e-6),
        ...                NetworkLevel("infiniband", 0, 25e9, 1.0, 5e-6)))
        >>> net.ring(4, 2), net.ring(16, 1)  # in one node; two nodes of 8 members
        ((300000000000.0, 1e-06), (200000000000.0, 5e-06))
        """
        return self._ring(n, stride)

    def all_reduce_s(self, size_bytes: float, n: int, stride: int = 1) -> float:
        """Seconds of a ring all-reduce of ``size_bytes`` over ``n`` members at ``stride``."""
        if n < 2 or size_bytes <= 0:
            return 0.0
        bw, lat = self._ring(n, stride)
        return 2.0 * (n - 1) / n * size_bytes / bw + 2 * (n - 1) * lat

    def reduce_scatter_s(self, size_bytes: float, n: int, stride: int = 1) -> float:
        """Seconds of a ring reduce-scatter of a ``size_bytes`` buffer (each member keeps
        ``size_bytes / n``)."""
        if n < 2 or size_bytes <= 0:
            return 0.0
        bw, lat = self._ring(n, stride)
        return (n - 1) / n * size_bytes / bw + (n - 1) * lat

    def all_gather_s(self, size_bytes: float, n: int, stride: int = 1) -> float:
        """Seconds of a ring all-gather producing a ``size_bytes`` buffer on every member."""
        return self.reduce_scatter_s(size_bytes, n, stride)

    def ring_bytes_by_level(self, sent_bytes: float, n: int, stride: int = 1) -> tuple:
        """Split the bytes one member of an ``n``-member ring at ``stride`` sends among the
        levels (innermost first): the ring's edges are priced at the outermost level they
        cross, and every member sends the same bytes on each edge, so level ``j`` carries
        the fraction ``(c_{j-1} - c_j) / n`` where ``c_j`` is the number of edges that
        leave a level-``j`` domain (``n / k_j`` with ``k_j`` members per domain, 0 when
        one domain holds the group) and ``c_{-1} = n``.

        Examples
        --------
        >>> net = Network((NetworkLevel("nvlink", 8, 300e9, 1.0, 0.0),
        ...                NetworkLevel("infiniband", 0, 25e9, 1.0, 0.0)))
        >>> net.ring_bytes_by_level(16.0, 16, 1)  # 2 of the 16 edges leave a node
        (14.0, 2.0)
        """
        out = [0.0] * len(self.levels)
        if n < 2 or sent_bytes <= 0:
            return tuple(out)
        prev = float(n)
        for j in range(len(self.levels)):
            k = self._members_per_domain(n, stride, j)
            cur = 0.0 if k >= n else n / k
            out[j] = sent_bytes * (prev - cur) / n
            prev = cur
            if cur == 0.0:
                break
        return tuple(out)

    def p2p_bytes_by_level(self, sent_bytes: float, n: int, stride: int) -> tuple:
        """Split ``sent_bytes`` sent between pipeline neighbours of an ``n``-member group
        at ``stride`` among the levels: each of the ``n - 1`` neighbour pairs uses the
        outermost level that separates its two ranks, all pairs equally often.

        Examples
        --------
        >>> net = Network((NetworkLevel("nvlink", 8, 300e9, 1.0, 0.0),
        ...                NetworkLevel("infiniband", 0, 25e9, 1.0, 0.0)))
        >>> net.p2p_bytes_by_level(3.0, 4, 4)  # ranks 0, 4 | 8, 12: one pair of 3 leaves
        (2.0, 1.0)
        """
        out = [0.0] * len(self.levels)
        if n < 2 or sent_bytes <= 0:
            return tuple(out)
        for i in range(n - 1):
            a, b = i * stride, (i + 1) * stride
            level = len(self.levels) - 1
            for j in range(len(self.levels)):
                dom = self._domain(j)
                if math.isinf(dom) or a // dom == b // dom:
                    level = j
                    break
            out[level] += sent_bytes / (n - 1)
        return tuple(out)

    def p2p_s(self, size_bytes: float, n: int, stride: int) -> float:
        """Seconds of one point-to-point send between neighbours of an ``n``-member
        pipeline group at ``stride``: priced on the outermost level the group spans (its
        slowest neighbour pair), every device on its own link."""
        if n < 2 or size_bytes <= 0:
            return 0.0
        span = n * stride
        for j, lv in enumerate(self.levels):
            if span <= self._domain(j):
                return size_bytes / lv.achieved_Bps + lv.latency_s
        lv = self.levels[-1]  # pragma: no cover - the outermost level is unbounded
        return size_bytes / lv.achieved_Bps + lv.latency_s
