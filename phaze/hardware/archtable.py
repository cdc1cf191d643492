"""Columnar table of accelerators, with their unique tensor-core and vector-core configs.

An :class:`ArchTable` holds one numpy column per :class:`~phaze.hardware.Accelerator` field
(plus ``area_um2``), one row per architecture. The cost kernels do not work per
architecture: a GEMM's cycles depend only on the tensor-core side (cores, array shape, GLB,
SRAM, registers, bandwidths), a vector operator's only on the vector-core side. ``tc`` and
``vc`` are those unique sub-configurations (in order of first appearance) and ``tc_index`` /
``vc_index`` map every architecture to its row in them. The paper's space has 29,360
architectures but 4,186 unique tensor-core and 697 unique vector-core configurations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from phaze.errors import ConfigError
from phaze.hardware.accelerator import Accelerator, core_sram_bytes
from phaze.hardware.area import area_um2_columns

__all__ = ["ARCH_COLUMNS", "ArchTable", "CoreConfigs", "row_codes"]

_INT = (
    "num_tc",
    "tc_width",
    "tc_depth",
    "num_vc",
    "vc_width",
    "glb_bytes",
    "tc_sram_bytes",
    "vc_sram_bytes",
    "hbm_bytes",
    "register_words",
    "word_bytes",
)
_FLOAT = (
    "frequency_hz",
    "hbm_bandwidth_Bps",
    "sram_pe_words_per_cycle",
    "glb_sram_words_per_cycle",
)
_BOOL = ("sram_pe_per_core", "glb_sram_per_core", "vc_memory_term")
#: Per-architecture columns (every Accelerator field), in Accelerator field order.
ARCH_COLUMNS = tuple(f for f in Accelerator.__dataclass_fields__)

#: Columns that determine tensor-core (GEMM) cycles, and vector-core cycles.
TC_KEY = (
    "num_tc",
    "tc_width",
    "tc_depth",
    "glb_bytes",
    "tc_sram_bytes",
    "register_words",
    "word_bytes",
    "sram_pe_words_per_cycle",
    "sram_pe_per_core",
    "glb_sram_words_per_cycle",
    "glb_sram_per_core",
    "hbm_words_per_cycle",
)
VC_KEY = (
    "num_vc",
    "vc_width",
    "glb_bytes",
    "vc_sram_bytes",
    "word_bytes",
    "glb_sram_words_per_cycle",
    "glb_sram_per_core",
    "vc_memory_term",
)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class CoreConfigs:
    """Unique sub-configurations: ``columns[name]`` is a numpy column, one row each."""

    columns: dict

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def __getattr__(self, name: str):
        try:
            return self.columns[name]
        except KeyError:
            raise AttributeError(name) from None


def row_codes(cols: dict, key: tuple[str, ...]) -> np.ndarray:
    """One int64 per row, equal for two rows exactly when their ``key`` columns are equal
    as float64 (what ``np.unique(axis=0)`` compares) and ordered as the rows are
    lexicographically, from one 1-D ``np.unique`` per column (7-10x faster than sorting
    the rows of a million-row table)."""
    n = len(cols[key[0]])
    code = np.zeros(n, np.int64)
    radix = 1  # code < radix
    for k in key:
        values, index = np.unique(np.asarray(cols[k], dtype=np.float64), return_inverse=True)
        if radix * values.size >= 2**62:  # renumber the codes so far: fewer than n
            code = np.unique(code, return_inverse=True)[1].reshape(-1).astype(np.int64)
            radix = n
        code = code * values.size + index.reshape(-1)  # mixed radix
        radix *= max(1, values.size)
    return code


def _unique_rows(cols: dict, key: tuple[str, ...]) -> tuple[CoreConfigs, np.ndarray]:
    """The distinct rows of the ``key`` columns, in order of first appearance, and each
    row's index among them."""
    _, first, inverse = np.unique(row_codes(cols, key), return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # first-appearance order
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    index = rank[inverse.reshape(-1)].astype(np.int64)
    rows = first[order]
    sub = {k: _frozen(np.asarray(cols[k])[rows]) for k in key}
    return CoreConfigs(sub), _frozen(index)


def _sub_configs(
    configs: CoreConfigs, index: np.ndarray, idx: np.ndarray
) -> tuple[CoreConfigs, np.ndarray]:
    """The unique configurations of the rows ``idx`` of a table whose configurations are
    ``configs`` and ``index``, in order of first appearance among those rows (what
    :func:`_unique_rows` gives on the rows' columns)."""
    parent = index[idx]
    uniq, first, inverse = np.unique(parent, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    chosen = uniq[order]
    sub = {k: _frozen(v[chosen]) for k, v in configs.columns.items()}
    return CoreConfigs(sub), _frozen(rank[inverse.reshape(-1)].astype(np.int64))


@dataclass(frozen=True, eq=False)
class ArchTable:
    """Architectures as numpy columns (see module docstring).

    Build with :meth:`from_accelerators`, :meth:`from_columns` or
    :meth:`phaze.hardware.DesignSpace.enumerate`.

    Examples
    --------
    >>> from phaze.hardware import Accelerator
    >>> t = ArchTable.from_accelerators([Accelerator(), Accelerator(glb_bytes=2**21)])
    >>> len(t), len(t.tc), len(t.vc), t.tc_index.tolist()
    (2, 2, 2, [0, 1])
    """

    num_tc: np.ndarray
    tc_width: np.ndarray
    tc_depth: np.ndarray
    num_vc: np.ndarray
    vc_width: np.ndarray
    glb_bytes: np.ndarray
    tc_sram_bytes: np.ndarray
    vc_sram_bytes: np.ndarray
    frequency_hz: np.ndarray
    hbm_bytes: np.ndarray
    hbm_bandwidth_Bps: np.ndarray
    sram_pe_words_per_cycle: np.ndarray
    sram_pe_per_core: np.ndarray
    glb_sram_words_per_cycle: np.ndarray
    glb_sram_per_core: np.ndarray
    register_words: np.ndarray
    word_bytes: np.ndarray
    vc_memory_term: np.ndarray
    area_um2: np.ndarray
    tc: CoreConfigs = field(init=False)
    vc: CoreConfigs = field(init=False)
    tc_index: np.ndarray = field(init=False)
    vc_index: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        n = np.asarray(self.num_tc).shape[0] if np.ndim(self.num_tc) == 1 else -1
        cols = {}
        for name, dtype in (
            [(c, np.int64) for c in _INT]
            + [(c, np.float64) for c in _FLOAT]
            + [(c, np.bool_) for c in _BOOL]
            + [("area_um2", np.float64)]
        ):
            a = np.asarray(getattr(self, name))
            if a.ndim != 1 or a.shape[0] != n:
                raise ConfigError(
                    f"ArchTable column {name} has shape {a.shape}; expected ({n},) like num_tc"
                )
            a = a.astype(dtype)
            cols[name] = a
            object.__setattr__(self, name, _frozen(a))
        for name in _INT:
            if n and cols[name].min() < 1:
                raise ConfigError(
                    f"ArchTable column {name} has a value {int(cols[name].min())}; allowed: >= 1"
                )
        for name in _FLOAT:
            if n and not (np.all(cols[name] > 0) and np.all(np.isfinite(cols[name]))):
                raise ConfigError(f"ArchTable column {name} must be finite and > 0")
        cols["hbm_words_per_cycle"] = self.hbm_words_per_cycle
        tc, tci = _unique_rows(cols, TC_KEY)
        vc, vci = _unique_rows(cols, VC_KEY)
        object.__setattr__(self, "tc", tc)
        object.__setattr__(self, "vc", vc)
        object.__setattr__(self, "tc_index", tci)
        object.__setattr__(self, "vc_index", vci)

    def __len__(self) -> int:
        return int(self.num_tc.shape[0])

    @property
    def hbm_words_per_cycle(self) -> np.ndarray:
        """HBM -> GLB bandwidth in words per cycle, per architecture."""
        return self.hbm_bandwidth_Bps / (self.word_bytes * self.frequency_hz)

    @property
    def peak_flops(self) -> np.ndarray:
        """Peak tensor-core FLOP/s per architecture."""
        return 2.0 * self.num_tc * self.tc_width * self.tc_depth * self.frequency_hz

    @classmethod
    def from_columns(cls, template: Accelerator | None = None, **columns) -> ArchTable:
        """Columns given as arrays; the others broadcast from ``template`` (default
        ``Accelerator()``). SRAM sizes default to the template rule per row and
        ``area_um2`` to :func:`~phaze.hardware.area_um2_columns`."""
        template = template if template is not None else Accelerator()
        unknown = set(columns) - set(ARCH_COLUMNS) - {"area_um2"}
        if unknown:
            raise ConfigError(
                f"unknown ArchTable columns {sorted(unknown)}; allowed: "
                f"{', '.join(ARCH_COLUMNS)}, area_um2"
            )
        n = len(np.asarray(next(iter(columns.values())))) if columns else 1
        cols = {}
        for name in ARCH_COLUMNS:
            if name in columns:
                cols[name] = np.asarray(columns[name])
            elif name == "tc_sram_bytes":
                w = np.asarray(columns.get("tc_width", template.tc_width))
                d = np.asarray(columns.get("tc_depth", template.tc_depth))
                cols[name] = np.broadcast_to(core_sram_bytes(w, d), (n,))
            elif name == "vc_sram_bytes":
                vw = np.asarray(columns.get("vc_width", template.vc_width))
                cols[name] = np.broadcast_to(core_sram_bytes(vw), (n,))
            else:
                cols[name] = np.full(n, getattr(template, name))
        if "area_um2" in columns:
            area = np.asarray(columns["area_um2"], dtype=np.float64)
        else:
            area = area_um2_columns(
                cols["num_tc"],
                cols["tc_width"],
                cols["tc_depth"],
                cols["num_vc"],
                cols["vc_width"],
                cols["glb_bytes"],
                cols["tc_sram_bytes"],
                cols["vc_sram_bytes"],
            )
        return cls(**cols, area_um2=np.broadcast_to(area, (n,)))

    @classmethod
    def from_accelerators(cls, accelerators: Sequence[Accelerator]) -> ArchTable:
        """One row per accelerator, in order."""
        accs = list(accelerators)
        if not accs:
            raise ConfigError("from_accelerators needs at least one Accelerator")
        for a in accs:
            if not isinstance(a, Accelerator):
                raise ConfigError(f"expected Accelerator objects, got {type(a).__name__}")
        cols = {name: np.array([getattr(a, name) for a in accs]) for name in ARCH_COLUMNS}
        return cls.from_columns(accs[0], **cols)

    def accelerator(self, index: int) -> Accelerator:
        """Row ``index`` as an :class:`Accelerator`."""
        i = int(index)
        if not -len(self) <= i < len(self):
            raise ConfigError(
                f"architecture index {index} out of range; allowed: 0 .. {len(self) - 1}"
            )
        return Accelerator(**{name: getattr(self, name)[i].item() for name in ARCH_COLUMNS})

    def take(self, indices) -> ArchTable:
        """The architectures at ``indices`` (array, list or slice), as a new table."""
        idx = (
            np.arange(len(self))[indices]
            if isinstance(indices, slice)
            else np.asarray(indices, dtype=np.int64)
        )
        if idx.ndim != 1 or (idx.size and (idx.min() < -len(self) or idx.max() >= len(self))):
            raise ConfigError(f"indices out of range for {len(self)} architectures")
        # rows of a checked table need no checks, and their unique core configurations are
        # the parent's (a search takes thousands of small tables out of 10^6 rows): the
        # same table as ArchTable(**columns), without sorting the rows again
        out = object.__new__(ArchTable)
        for name in (*ARCH_COLUMNS, "area_um2"):
            object.__setattr__(out, name, _frozen(getattr(self, name)[idx]))
        for side in ("tc", "vc"):
            configs, index = _sub_configs(getattr(self, side), getattr(self, f"{side}_index"), idx)
            object.__setattr__(out, side, configs)
            object.__setattr__(out, f"{side}_index", index)
        return out
