"""Real systems: a chip and a network, as named presets or a user's JSON file.

Every figure and where it comes from is listed in ``docs/real-systems.md``. The fitted
constants (GEMM efficiency, kernel launch cost, collective efficiencies) were obtained by
``python bench/fit_systems.py`` on a fixed subset of the measured vTrain runs (ids whose
number is divisible by 3) and are shared by the A100 and H100 presets where nothing better
is known.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from types import MappingProxyType

from phaze.errors import ConfigError
from phaze.jsonfile import load_json
from phaze.systems.network import Network, NetworkLevel
from phaze.systems.power import A100_SXM_POWER, H100_SXM_POWER, ChipPower

__all__ = ["SYSTEMS", "Chip", "System", "load_system", "system_names"]

GB = 1e9


@dataclass(frozen=True, slots=True)
class Chip:
    """One accelerator (a GPU) as the training-time model sees it.

    Parameters
    ----------
    name : str
    num_sms : int
        Streaming multiprocessors (any count: 108 for A100, 132 for H100); GEMM output
        tiles are spread over them in waves.
    peak_tensor_flops : float
        Dense fp16/bf16 tensor-core peak, FLOP/s.
    hbm_bytes : float
        Device memory capacity, bytes.
    hbm_bandwidth_Bps : float
        Peak device-memory bandwidth, bytes/s.
    gemm_efficiency : float
        Fraction of ``peak_tensor_flops`` a GEMM reaches per full wave of output tiles.
    hbm_efficiency : float
        Fraction of ``hbm_bandwidth_Bps`` that memory-bound kernels reach.
    kernel_launch_s : float
        Fixed cost of every kernel (launch and framework overhead), seconds.
    tile_m, tile_n : int
        Output tile of one GEMM thread block (rows x columns).
    power : ChipPower or None
        Board power constants (:mod:`phaze.systems.power`); None: power is not
        estimated. In a system file, an object with the :class:`ChipPower` fields.
    """

    name: str
    num_sms: int
    peak_tensor_flops: float
    hbm_bytes: float
    hbm_bandwidth_Bps: float
    gemm_efficiency: float
    hbm_efficiency: float
    kernel_launch_s: float
    tile_m: int = 128
    tile_n: int = 128
    power: ChipPower | None = None

    def __post_init__(self) -> None:
        if isinstance(self.power, dict):  # from a system file
            try:
                object.__setattr__(self, "power", ChipPower(**self.power))
            except TypeError as exc:
                raise ConfigError(f"chip {self.name!r}: power: {exc}") from None
        if self.power is not None and not isinstance(self.power, ChipPower):
            raise ConfigError(
                f"chip {self.name!r}: power={self.power!r} must be a ChipPower, an object "
                f"of its fields, or None"
            )
        for field in ("num_sms", "tile_m", "tile_n"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"chip {self.name!r}: {field}={value!r} must be an integer >= 1")
        for field in ("peak_tensor_flops", "hbm_bytes", "hbm_bandwidth_Bps"):
            value = getattr(self, field)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"chip {self.name!r}: {field}={value!r} must be a number > 0")
        for field in ("gemm_efficiency", "hbm_efficiency"):
            value = getattr(self, field)
            if not (isinstance(value, (int, float)) and 0 < value <= 1):
                raise ConfigError(f"chip {self.name!r}: {field}={value!r} must be in (0, 1]")
        value = self.kernel_launch_s
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ConfigError(f"chip {self.name!r}: kernel_launch_s={value!r} must be >= 0")


@dataclass(frozen=True, slots=True)
class System:
    """A training system: a chip and the network that joins the chips.

    Examples
    --------
    >>> from phaze import load_system
    >>> s = load_system("a100-selene")
    >>> s.chip.num_sms, s.network.levels[0].devices
    (108, 8)
    """

    name: str
    chip: Chip
    network: Network

    def __post_init__(self) -> None:
        if not isinstance(self.chip, Chip) or not isinstance(self.network, Network):
            raise ConfigError(f"system {self.name!r}: needs a Chip and a Network")

    @property
    def node_devices(self) -> int:
        """Devices in one domain of the innermost network level (a node)."""
        return self.network.levels[0].devices if len(self.network.levels) > 1 else 0

    def to_dict(self) -> dict:
        """The system in the JSON file format of :func:`load_system`."""
        chip = {f: getattr(self.chip, f) for f in Chip.__slots__}
        chip["power"] = None if self.chip.power is None else self.chip.power.to_dict()
        levels = [{f: getattr(lv, f) for f in NetworkLevel.__slots__} for lv in self.network.levels]
        return {"name": self.name, "chip": chip, "network": levels}


# Fitted on a100-vtrain by `python bench/fit_systems.py --fit` (fit rows: run ids whose
# number is divisible by 3; values rounded). The launch cost is the host-side cost of one
# kernel in Megatron-DeepSpeed's eager PyTorch (it bounds small kernels from below); the
# NVLink efficiency reached the fit's upper bound (1.0), i.e. the stated 150 GB/s per GPU
# is what tensor-parallel all-reduces achieved in these runs.
_GEMM_EFFICIENCY = 0.835
_KERNEL_LAUNCH_S = 59e-6
_NVLINK_EFFICIENCY = 1.0
_IB_EFFICIENCY = 0.95
# Not fitted: memory-bound kernels reach ~85% of peak HBM bandwidth on A100/H100
# (STREAM-like copy kernels); NCCL per-step latencies of a few microseconds.
_HBM_EFFICIENCY = 0.85
_NVLINK_LATENCY_S = 1e-6
_IB_LATENCY_S = 5e-6


def _a100(hbm_gb: float) -> Chip:
    return Chip(
        name=f"A100 SXM {hbm_gb:g} GB",
        num_sms=108,
        peak_tensor_flops=312e12,
        hbm_bytes=hbm_gb * GB,
        hbm_bandwidth_Bps=2039 * GB,
        gemm_efficiency=_GEMM_EFFICIENCY,
        hbm_efficiency=_HBM_EFFICIENCY,
        kernel_launch_s=_KERNEL_LAUNCH_S,
        power=A100_SXM_POWER,
    )


def _levels(nvlink_Bps: float, scale_out_Bps: float) -> Network:
    return Network(
        (
            NetworkLevel("nvlink", 8, nvlink_Bps, _NVLINK_EFFICIENCY, _NVLINK_LATENCY_S),
            NetworkLevel("infiniband", 0, scale_out_Bps, _IB_EFFICIENCY, _IB_LATENCY_S),
        )
    )


SYSTEMS: MappingProxyType[str, System] = MappingProxyType(
    {
        # vTrain's cluster: 8 A100 SXM per node, 150 GB/s intra-node per GPU (stated in
        # the run configs), 800 Gb/s per node = 12.5 GB/s per GPU. The 175B runs need
        # > 40 GB per device, so the 80 GB part.
        "a100-vtrain": System("a100-vtrain", _a100(80), _levels(150 * GB, 12.5 * GB)),
        # NVIDIA Selene: DGX A100 80 GB, NVLink 3 (300 GB/s per direction per GPU),
        # 8 x HDR 200 Gb/s per node (25 GB/s per GPU per direction).
        "a100-selene": System("a100-selene", _a100(80), _levels(300 * GB, 25 * GB)),
        # DGX H100: 132 SMs, 989 TFLOP/s dense bf16, 3,350 GB/s HBM3, NVLink 4 (450 GB/s
        # per direction per GPU), 8 x 400 Gb/s per node (50 GB/s per GPU). Efficiencies
        # and launch cost: the A100's fitted values (no H100 calibration runs).
        "h100-dgx": System(
            "h100-dgx",
            Chip(
                name="H100 SXM 80 GB",
                num_sms=132,
                peak_tensor_flops=989e12,
                hbm_bytes=80 * GB,
                hbm_bandwidth_Bps=3350 * GB,
                gemm_efficiency=_GEMM_EFFICIENCY,
                hbm_efficiency=_HBM_EFFICIENCY,
                kernel_launch_s=_KERNEL_LAUNCH_S,
                power=H100_SXM_POWER,
            ),
            _levels(450 * GB, 50 * GB),
        ),
    }
)


def system_names() -> tuple[str, ...]:
    """Names of the built-in systems."""
    return tuple(SYSTEMS)


def _from_dict(data: object, where: str) -> System:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a system must be a JSON object")
    try:
        chip = Chip(**data["chip"])
        levels = tuple(NetworkLevel(**lv) for lv in data["network"])
        return System(str(data.get("name", where)), chip, Network(levels))
    except KeyError as exc:
        raise ConfigError(f"{where}: missing field {exc.args[0]!r}") from None
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_system(name_or_path: str | os.PathLike[str] | System) -> System:
    """A built-in system by name, or a system read from a JSON file.

    The file holds ``{"name": ..., "chip": {Chip fields}, "network": [{NetworkLevel
    fields}, ...]}`` (the format of :meth:`System.to_dict`; see docs/real-systems.md).

    Examples
    --------
    >>> load_system("h100-dgx").chip.num_sms
    132
    """
    if isinstance(name_or_path, System):
        return name_or_path
    key = os.fspath(name_or_path)
    if key in SYSTEMS:
        return SYSTEMS[key]
    if not key.endswith(".json") or not os.path.exists(key):
        raise ConfigError(
            f"unknown system {key!r}; known systems: {', '.join(SYSTEMS)} "
            f"(or a path to a system .json file)"
        )
    return _from_dict(load_json(key, "system file"), key)
