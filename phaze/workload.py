"""What is trained (:class:`Workload`) and on what cluster (:class:`Cluster`).

Defaults follow the paper's setup (docs/architecture.md): global batch 4096 samples, SGD,
2 bytes per element, 1024 accelerators linked at 4 GiB/s (PCIe 3.0), HBM options of 32,
64 and 80 GiB.
"""

from __future__ import annotations

from dataclasses import dataclass

from phaze.errors import ConfigError
from phaze.models.graph import valid_tensor_widths
from phaze.models.spec import TransformerSpec
from phaze.systems.network import Network
from phaze.training import Training
from phaze.units import GIB
from phaze.validate import MAX_DEVICES, OPTIMIZERS, check_choice, check_int, check_number

__all__ = ["GIB", "Cluster", "Workload"]

#: Largest tensor-parallel width a workload may consider.
MAX_TENSOR_WIDTH = 64


@dataclass(frozen=True, slots=True)
class Workload:
    """A transformer training job.

    Parameters
    ----------
    model : TransformerSpec
    seq_len : int
        Tokens per sample; default ``model.default_seq``.
    global_batch : int
        Samples per optimizer step.
    optimizer : {"sgd", "adam"}
        Adam keeps optimizer state equal to the parameter bytes.
    bytes_per_element : int
    max_tensor_width : int
        Largest tensor-parallel width considered (the paper: 8; at most 64).
    training : Training
        Memory and recomputation rules of the placement (:mod:`phaze.training`): the
        paper's (default) or Megatron's (needs ``optimizer="adam"``).

    Examples
    --------
    >>> from phaze.models import preset
    >>> w = Workload(preset("gpt3-175b"))
    >>> w.seq_len, w.tensor_widths
    (2048, (1, 2, 4, 8))
    """

    model: TransformerSpec
    seq_len: int = 0
    global_batch: int = 4096
    optimizer: str = "sgd"
    bytes_per_element: int = 2
    max_tensor_width: int = 8
    training: Training = Training()

    def __post_init__(self) -> None:
        if not isinstance(self.model, TransformerSpec):
            raise ConfigError(
                f"model={self.model!r} is invalid; allowed: a TransformerSpec, e.g. "
                "phaze.preset('bert-large')"
            )
        if self.seq_len == 0:
            object.__setattr__(self, "seq_len", self.model.default_seq)
        check_int("seq_len", self.seq_len)
        check_int("global_batch", self.global_batch)
        check_int("bytes_per_element", self.bytes_per_element, 1, 64)
        check_int("max_tensor_width", self.max_tensor_width, 1, MAX_TENSOR_WIDTH)
        if self.seq_len > self.model.max_positions:
            raise ConfigError(
                f"seq_len={self.seq_len} exceeds {self.model.name}'s max "
                f"positions ({self.model.max_positions})"
            )
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if not isinstance(self.training, Training):
            raise ConfigError(
                f"training={self.training!r} is invalid; allowed: a phaze.Training, e.g. "
                "phaze.Training('megatron')"
            )
        self.training.check_workload(self.optimizer, self.bytes_per_element)

    @property
    def name(self) -> str:
        """The model's name."""
        return self.model.name

    @property
    def tensor_widths(self) -> tuple[int, ...]:
        """Powers of two up to ``max_tensor_width`` that divide heads, kv_heads and ffn."""
        valid = set(valid_tensor_widths(self.model, self.max_tensor_width))
        return tuple(
            t for t in (1, 2, 4, 8, 16, 32, 64) if t <= self.max_tensor_width and t in valid
        )


@dataclass(frozen=True, slots=True)
class Cluster:
    """Accelerators and the links between them.

    Parameters
    ----------
    devices : int
        Number of accelerators N.
    link_bandwidth_Bps : float
        Bytes per second between two accelerators (the paper's single link; used when
        ``network`` is None).
    network : phaze.systems.Network, optional
        Network levels (e.g. NVLink inside 8-GPU nodes, InfiniBand across nodes) instead
        of the single link: tensor-parallel all-reduces are priced on the levels their
        group of consecutive devices spans, the placement's data-parallel all-reduce on
        the levels its ring of pipelines spans (docs/placement.md), its pipeline
        transfers at :attr:`data_bandwidth_Bps`. None (default) keeps the paper's single
        link and its results exactly.

    Examples
    --------
    >>> from phaze import load_system
    >>> c = Cluster(1024, network=load_system("a100-selene").network)
    >>> c.data_bandwidth_Bps == 25e9 * c.network.levels[-1].efficiency
    True
    """

    devices: int = 1024
    link_bandwidth_Bps: float = 4.0 * GIB
    network: Network | None = None

    def __post_init__(self) -> None:
        check_int("devices", self.devices, 1, MAX_DEVICES)
        check_number(
            "link_bandwidth_Bps", self.link_bandwidth_Bps, low=1.0, high=1e15, unit="bytes/s"
        )
        if self.network is not None and not isinstance(self.network, Network):
            raise ConfigError(
                f"network must be a phaze.systems.Network or None, got "
                f"{type(self.network).__name__}"
            )

    @property
    def data_bandwidth_Bps(self) -> float:
        """Per-device bandwidth of pipeline traffic in the placement (and of its
        data-parallel all-reduce without ``network``): the link's, or with ``network``
        the achieved bandwidth of the innermost level whose domain holds all devices
        (the scale-out level once the cluster spans nodes)."""
        if self.network is None:
            return self.link_bandwidth_Bps
        for lv in self.network.levels:
            if lv.devices == 0 or self.devices <= lv.devices:
                return lv.achieved_Bps
        return self.network.levels[-1].achieved_Bps  # pragma: no cover - last is unbounded
