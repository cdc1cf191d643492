"""Sweep files: TOML reading, validation, and expansion into cells.

A *cell* (:class:`SweepCell`) is the complete description of one ordinary search: the
model, the training job, the cluster, the settings searched and the design space. A sweep
file lists cells as a grid (the Cartesian product of the ``[grid]`` axes) and/or as an
explicit list of ``[[cell]]`` tables, on top of shared ``[search]`` settings and one
``[space]``. The format, with every key, is documented in ``docs/sweeps.md``.

Every cell has a stable *key*: a digest of its canonical JSON form (:meth:`SweepCell.to_dict`),
independent of the cell's position in the file and of the order of the file's keys, so a
results store can tell which cells are already done.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import numbers
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from phaze.errors import ConfigError
from phaze.jsonfile import read_text
from phaze.models import TransformerSpec, preset
from phaze.systems.presets import load_system, system_names
from phaze.training import ACCOUNTINGS, MEGATRON_OPTIONS, Training
from phaze.units import GIB, MIB, UM2_PER_MM2

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "SEARCH_KEYS",
    "SPACE_KEYS",
    "TRAINING_KEYS",
    "SweepCell",
    "SweepSpec",
    "load_sweep",
    "parse_sweep",
]

_RECOMPUTE = {"both": (False, True), "off": (False,), "on": (True,)}
#: Sweep-file keys that make up a cell's :class:`~phaze.Training` (``training`` is its
#: accounting; the others its recomputation mode, Megatron options and the candidate
#: interleaves).
TRAINING_KEYS = ("training", "recompute_mode", *MEGATRON_OPTIONS, "interleaves")
_STRATEGIES = ("exact", "phaze", "exhaustive")

#: Keys of ``[search]``, ``[grid]`` and ``[[cell]]`` tables.
SEARCH_KEYS = (
    "model",
    "seq_len",
    "global_batch",
    "optimizer",
    "max_tensor_width",
    "devices",
    "link_gibps",
    "hbm_gib",
    "micro_batch_sizes",
    "recompute",
    "area_budget_mm2",
    "area_band",
    "strategy",
    "network",
    *TRAINING_KEYS,
)
#: Keys of the ``[space]`` table (the value sets of :class:`~phaze.DesignSpace`).
SPACE_KEYS = ("num_tc", "num_vc", "tc_width", "tc_depth", "vc_width", "glb_mib")
_TABLES = ("search", "space", "grid", "cell")


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _int_set(name: str, values) -> tuple[int, ...] | None:
    if values is None:
        return None
    if _is_int(values):
        values = (values,)
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ConfigError(f"{name}={values!r}; allowed: an integer >= 1 or a list of them")
    out = tuple(values)
    if not out or not all(_is_int(v) and v >= 1 for v in out):
        raise ConfigError(f"{name}={values!r}; allowed: an integer >= 1 or a list of them")
    if len(set(out)) != len(out):
        raise ConfigError(f"{name}={values!r} has repeated values")
    return tuple(int(v) for v in out)


@dataclass(frozen=True, slots=True)
class SweepCell:
    """One search of a sweep, in SI units (the sweep file uses GiB, mm^2 and MiB).

    Parameters
    ----------
    model : TransformerSpec or str
        A spec, or the name of a preset.
    seq_len : int
        Tokens per sample; 0 means the model's own default.
    global_batch, max_tensor_width : int
    optimizer : {"sgd", "adam"}
    devices : int
        Accelerators in the cluster.
    link_bandwidth_Bps : float
        Bytes per second between two accelerators.
    hbm_bytes : tuple of int
        HBM sizes searched within the cell.
    micro_batch_sizes : tuple of int
        Micro-batch sizes searched within the cell.
    recompute : tuple of bool
        Activation-recomputation settings searched within the cell.
    area_budget_um2 : float, optional
        Chip area budget; ``None`` is the design space's default (the tpuv4-like chip).
    area_band : float
        Smallest area kept, as a fraction of the budget.
    strategy : {"exact", "phaze", "exhaustive"}
    num_tc, num_vc, tc_width, tc_depth, vc_width, glb_bytes : tuple of int, optional
        Value sets of the design space; ``None`` keeps :class:`~phaze.DesignSpace`'s default.
    training : phaze.Training
        Memory and recomputation accounting of the plans and Megatron's options
        (default: the paper's).
    network : str, optional
        A built-in system (:func:`phaze.systems.system_names`) whose network levels the
        cluster uses, as ``phaze search --network``; ``None``: the single link.

    Examples
    --------
    >>> cell = SweepCell("bert-large", devices=64, area_budget_um2=150e6)
    >>> cell.model.name, cell.cluster().devices, cell.label
    ('bert-large', 64, 'bert-large, 64 devices, 150 mm2')
    >>> cell.key == SweepCell("bert-large", devices=64, area_budget_um2=150e6).key
    True
    """

    model: TransformerSpec | str
    seq_len: int = 0
    global_batch: int = 4096
    optimizer: str = "sgd"
    max_tensor_width: int = 8
    devices: int = 1024
    link_bandwidth_Bps: float = 4.0 * GIB
    hbm_bytes: tuple[int, ...] = (32 * GIB, 64 * GIB, 80 * GIB)
    micro_batch_sizes: tuple[int, ...] = (1, 2, 4, 8)
    recompute: tuple[bool, ...] = (False, True)
    area_budget_um2: float | None = None
    area_band: float = 0.3
    strategy: str = "exact"
    num_tc: tuple[int, ...] | None = None
    num_vc: tuple[int, ...] | None = None
    tc_width: tuple[int, ...] | None = None
    tc_depth: tuple[int, ...] | None = None
    vc_width: tuple[int, ...] | None = None
    glb_bytes: tuple[int, ...] | None = None
    training: Training = Training()
    network: str | None = None
    _key: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        model = self.model
        if isinstance(model, str):
            model = preset(model)
        if not isinstance(model, TransformerSpec):
            raise ConfigError(f"model={self.model!r}; allowed: a preset name or a TransformerSpec")
        object.__setattr__(self, "model", model)
        if not _is_int(self.seq_len) or self.seq_len < 0:
            raise ConfigError(f"seq_len={self.seq_len!r}; allowed: an integer >= 1 (0: default)")
        for name in ("hbm_bytes", "micro_batch_sizes"):
            object.__setattr__(self, name, _int_set(name, getattr(self, name)))
        rc = self.recompute
        if isinstance(rc, bool):
            rc = (rc,)
        rc = tuple(rc)
        if not rc or not all(isinstance(r, bool) for r in rc) or len(set(rc)) != len(rc):
            raise ConfigError(f"recompute={self.recompute!r}; allowed: distinct booleans")
        object.__setattr__(self, "recompute", tuple(sorted(rc)))
        if self.strategy not in _STRATEGIES:
            raise ConfigError(f"strategy={self.strategy!r}; allowed: {', '.join(_STRATEGIES)}")
        for name in ("num_tc", "num_vc", "tc_width", "tc_depth", "vc_width", "glb_bytes"):
            object.__setattr__(self, name, _int_set(name, getattr(self, name)))
        if not isinstance(self.training, Training):
            raise ConfigError(f"training={self.training!r}; allowed: a phaze.Training")
        if self.network is not None and self.network not in system_names():
            raise ConfigError(
                f"network={self.network!r}; allowed: {', '.join(system_names())} (or none)"
            )
        # the search's own specs validate the rest (and name the bad value); that the
        # area band holds an architecture is checked once per space by SweepSpec
        self.workload()
        self.cluster()
        self.design_space()
        digest = hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()
        object.__setattr__(self, "_key", digest[:16])

    @property
    def key(self) -> str:
        """Stable identifier: 16 hex digits of the SHA-256 of :meth:`to_dict`."""
        return self._key

    @property
    def label(self) -> str:
        """Short human-readable description (model, devices, area budget)."""
        budget = (
            "default area"
            if self.area_budget_um2 is None
            else f"{self.area_budget_um2 / UM2_PER_MM2:g} mm2"
        )
        return f"{self.model.name}, {self.devices} devices, {budget}"

    def workload(self):
        """The :class:`~phaze.Workload` searched."""
        from phaze import Workload

        return Workload(
            self.model,
            seq_len=self.seq_len,
            global_batch=self.global_batch,
            optimizer=self.optimizer,
            max_tensor_width=self.max_tensor_width,
            training=self.training,
        )

    def cluster(self):
        """The :class:`~phaze.Cluster` searched."""
        from phaze import Cluster

        network = None if self.network is None else load_system(self.network).network
        return Cluster(
            devices=self.devices, link_bandwidth_Bps=self.link_bandwidth_Bps, network=network
        )

    def design_space(self):
        """The :class:`~phaze.DesignSpace` searched."""
        from phaze import DesignSpace

        dims = {
            k: getattr(self, k)
            for k in ("num_tc", "num_vc", "tc_width", "tc_depth", "vc_width", "glb_bytes")
            if getattr(self, k) is not None
        }
        return DesignSpace(
            **dims, area_budget_um2=self.area_budget_um2, area_band=float(self.area_band)
        )

    def to_dict(self) -> dict:
        """Canonical JSON-ready form: every setting, the model by name and full spec."""
        out = {"model": self.model.name, "model_spec": repr(self.model)}
        for name in self.__dataclass_fields__:
            if name not in ("model", "_key", "training", "network"):
                value = getattr(self, name)
                out[name] = list(value) if isinstance(value, tuple) else value
        if not self.training.is_paper:  # the paper's: the keys of sweeps before it existed
            out["training"] = self.training.fingerprint()
        if self.network is not None:  # likewise: no network, the keys from before
            out["network"] = self.network
        return out


@dataclass(frozen=True, slots=True)
class SweepSpec:
    """The cells of a sweep, in order, and the sweep's fingerprint.

    ``fingerprint`` is the SHA-256 of the cells' canonical forms in order: it changes
    when any setting of any cell changes, and not when only comments or the order of keys
    of the file change.
    """

    cells: tuple[SweepCell, ...]
    source: str = ""

    def __post_init__(self) -> None:
        if not self.cells:
            raise ConfigError("the sweep has no cells; add a [grid] table or [[cell]] tables")
        seen: dict[str, int] = {}
        for i, c in enumerate(self.cells):
            if not isinstance(c, SweepCell):
                raise ConfigError(f"cell {i} is a {type(c).__name__}; allowed: SweepCell")
            if c.key in seen:
                raise ConfigError(
                    f"cells {seen[c.key]} and {i} are the same search ({c.label}); "
                    "each cell must differ in some setting"
                )
            seen[c.key] = i
        checked: set = set()
        for i, c in enumerate(self.cells):
            space = c.design_space()
            if space not in checked:
                try:
                    space.enumerate()
                except ConfigError as exc:
                    raise ConfigError(f"cell {i} ({c.label}): {exc}") from None
                checked.add(space)

    @property
    def fingerprint(self) -> str:
        text = json.dumps([c.to_dict() for c in self.cells], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------- TOML reading


def _model(value, where: str, base: Path) -> TransformerSpec:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: model={value!r}; allowed: a preset name or a config.json path")
    if value.endswith(".json"):
        path = Path(value) if os.path.isabs(value) else base / value
        if not path.is_file():
            raise ConfigError(f"{where}: model={value!r}: no such file ({path})")
        return TransformerSpec.from_hf_config(path)
    try:
        return preset(value)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _number(value, where: str, key: str, positive: bool = True) -> float:
    if not _is_number(value) or (positive and not value > 0):
        raise ConfigError(f"{where}: {key}={value!r}; allowed: a number > 0")
    return float(value)


def _integer(value, where: str, key: str) -> int:
    if not _is_int(value) or value < 1:
        raise ConfigError(f"{where}: {key}={value!r}; allowed: an integer >= 1")
    return int(value)


def _one_or_list(value, where: str, key: str, convert) -> tuple:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ConfigError(f"{where}: {key}=[] is empty; allowed: a value or a non-empty list")
    return tuple(convert(v) for v in items)


def _convert(key: str, value, where: str, base: Path) -> dict:
    """One sweep-file setting as :class:`SweepCell` keyword arguments (SI units)."""
    if key == "model":
        return {"model": _model(value, where, base)}
    if key in ("seq_len", "global_batch", "max_tensor_width", "devices"):
        return {key: _integer(value, where, key)}
    if key == "optimizer":
        if value not in ("sgd", "adam"):
            raise ConfigError(f"{where}: optimizer={value!r}; allowed: sgd, adam")
        return {"optimizer": value}
    if key == "link_gibps":
        return {"link_bandwidth_Bps": _number(value, where, key) * GIB}
    if key == "hbm_gib":
        gib = _one_or_list(value, where, key, lambda v: _number(v, where, key))
        return {"hbm_bytes": tuple(int(round(v * GIB)) for v in gib)}
    if key == "micro_batch_sizes":
        return {key: _one_or_list(value, where, key, lambda v: _integer(v, where, key))}
    if key == "recompute":
        if isinstance(value, bool):
            return {"recompute": (value,)}
        if value not in _RECOMPUTE:
            raise ConfigError(
                f"{where}: recompute={value!r}; allowed: 'both', 'off', 'on', true, false"
            )
        return {"recompute": _RECOMPUTE[value]}
    if key == "area_budget_mm2":
        return {"area_budget_um2": _number(value, where, key) * 1e6}
    if key == "area_band":
        if not _is_number(value) or not 0 <= value <= 1:
            raise ConfigError(f"{where}: area_band={value!r}; allowed: a number in [0, 1]")
        return {"area_band": float(value)}
    if key == "network":
        if value not in system_names():
            raise ConfigError(f"{where}: network={value!r}; allowed: {', '.join(system_names())}")
        return {"network": value}
    if key == "strategy":
        if value not in _STRATEGIES:
            raise ConfigError(f"{where}: strategy={value!r}; allowed: {', '.join(_STRATEGIES)}")
        return {"strategy": value}
    if key == "interleaves":  # one or a list of candidate v, collected by _cell
        items = _one_or_list(value, where, key, lambda v: _integer(v, where, key))
        return {"training.interleaves": items}
    if key in TRAINING_KEYS:  # collected into one Training by _cell
        if key in MEGATRON_OPTIONS and not isinstance(value, bool):
            raise ConfigError(f"{where}: {key}={value!r}; allowed: true, false")
        allowed = {"training": ACCOUNTINGS, "recompute_mode": ("full", "selective")}.get(key)
        if allowed is not None and value not in allowed:
            raise ConfigError(f"{where}: {key}={value!r}; allowed: {', '.join(allowed)}")
        return {f"training.{key}": value}
    raise AssertionError(key)  # pragma: no cover - keys are checked before


def _check_keys(table, where: str, allowed: tuple[str, ...]) -> dict:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = [k for k in table if k not in allowed]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(allowed)}")
    return table


def _space(table: dict) -> dict:
    out = {}
    for key, value in _check_keys(table, "[space]", SPACE_KEYS).items():
        values = value if isinstance(value, list) else [value]
        if not values or not all(_is_int(v) and v >= 1 for v in values):
            raise ConfigError(f"[space]: {key}={value!r}; allowed: a list of integers >= 1")
        if key == "glb_mib":
            out["glb_bytes"] = tuple(int(v) * MIB for v in values)
        else:
            out[key] = tuple(int(v) for v in values)
    return out


def _cell(settings: dict, space: dict, where: str) -> SweepCell:
    settings = dict(settings)
    training = {
        k.split(".", 1)[1]: settings.pop(k) for k in list(settings) if k.startswith("training.")
    }
    try:
        if training:
            accounting = training.pop("training", "paper")
            settings["training"] = Training(accounting, **training)
            if not settings["training"].is_paper:  # Megatron's is mixed-precision Adam
                settings.setdefault("optimizer", "adam")
        return SweepCell(**{"model": "bert-large", **space, **settings})
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def parse_sweep(doc: dict, base_dir: str | os.PathLike = ".", source: str = "") -> SweepSpec:
    """A parsed sweep document (the TOML's tables as dicts) as a :class:`SweepSpec`.

    HF config paths are relative to ``base_dir``. Raises :class:`~phaze.ConfigError` naming
    the table, key and value of the first problem.

    Examples
    --------
    >>> spec = parse_sweep({"search": {"devices": 64},
    ...                     "grid": {"model": ["bert-large", "opt-350m"],
    ...                              "area_budget_mm2": [100, 200]}})
    >>> [c.label for c in spec.cells]  # doctest: +NORMALIZE_WHITESPACE
    ['bert-large, 64 devices, 100 mm2', 'bert-large, 64 devices, 200 mm2',
     'opt-350m, 64 devices, 100 mm2', 'opt-350m, 64 devices, 200 mm2']
    """
    base = Path(base_dir)
    unknown = [k for k in doc if k not in _TABLES]
    if unknown:
        raise ConfigError(f"unknown table [{unknown[0]}]; allowed: {', '.join(_TABLES)}")
    shared = {}
    for key, value in _check_keys(doc.get("search", {}), "[search]", SEARCH_KEYS).items():
        shared.update(_convert(key, value, "[search]", base))
    space = _space(doc.get("space", {}))
    cells: list[SweepCell] = []
    if "grid" in doc:
        grid = _check_keys(doc["grid"], "[grid]", SEARCH_KEYS)
        if not grid:
            raise ConfigError("[grid] is empty; give at least one axis (a key with a list)")
        axes = []
        for key, values in grid.items():
            where = f"[grid] {key}"
            if not isinstance(values, list):
                raise ConfigError(f"{where}={values!r}; allowed: a list of values (one per cell)")
            if not values:
                raise ConfigError(f"{where} is an empty list: the grid has no cells")
            axes.append([_convert(key, v, where, base) for v in values])
        for combo in itertools.product(*axes):
            settings = dict(shared)
            for part in combo:
                settings.update(part)
            cells.append(_cell(settings, space, f"[grid] cell {len(cells)}"))
    listed = doc.get("cell", [])
    if not isinstance(listed, list):
        raise ConfigError("[[cell]] must be an array of tables ([[cell]], not [cell])")
    for i, table in enumerate(listed):
        where = f"[[cell]] {i}"
        settings = dict(shared)
        for key, value in _check_keys(table, where, SEARCH_KEYS).items():
            settings.update(_convert(key, value, where, base))
        cells.append(_cell(settings, space, where))
    return SweepSpec(tuple(cells), source=source)


def load_sweep(path: str | os.PathLike) -> SweepSpec:
    """Read and validate a sweep file (TOML); see ``docs/sweeps.md`` for the format."""
    path = Path(path)
    try:
        text = read_text(path, "sweep file", "TOML")
    except FileNotFoundError:
        raise ConfigError(f"sweep file {str(path)!r}: no such file") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"sweep file {str(path)!r} is not valid TOML: {exc}") from None
    return parse_sweep(doc, path.parent, source=str(path))
