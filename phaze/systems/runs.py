"""Reading and validating run files (one JSON object per line; docs/real-systems.md).

A line becomes a :class:`Run` or a :class:`RunError` that names the run (its ``id``, or
``line N`` when there is none) and the reason; one bad line never stops the others.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from phaze.errors import ConfigError
from phaze.jsonfile import read_text
from phaze.models.spec import TransformerSpec
from phaze.systems.presets import System, load_system
from phaze.systems.training import TrainingPlan, check_plan

__all__ = ["Run", "RunError", "parse_run", "read_runs"]

_FAMILIES = ("gpt",)
_OPTIMIZERS = ("adam",)


@dataclass(frozen=True, slots=True)
class Run:
    """One training run: what, where, how, and (optionally) its measured iteration time."""

    id: str
    system: System
    model: TransformerSpec
    seq_len: int
    devices: int
    plan: TrainingPlan
    measured_s: float | None = None


@dataclass(frozen=True, slots=True)
class RunError:
    """A line that could not be turned into a :class:`Run`."""

    id: str
    reason: str


def _int(obj: dict, key: str, where: str) -> int:
    if key not in obj:
        raise ConfigError(f"{where}: missing field {key!r}")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: {key}={value!r} must be an integer")
    return value


def _bool(obj: dict, key: str, where: str, default: bool) -> bool:
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: {key}={value!r} must be true or false")
    return value


def parse_run(obj: object, systems: dict | None = None) -> Run:
    """Build a :class:`Run` from one decoded JSON object; raise ConfigError if invalid.

    ``systems`` optionally caches systems by name across lines.

    Examples
    --------
    >>> run = parse_run({"id": "r1", "system": "a100-selene", "devices": 8,
    ...     "model": {"family": "gpt", "hidden": 1024, "heads": 16, "layers": 24,
    ...               "ffn": 4096, "vocab": 50257, "seq_len": 1024},
    ...     "plan": {"tp": 2, "pp": 2, "dp": 2, "micro_batch": 4, "global_batch": 32}})
    >>> run.plan.num_micro_batches, run.plan.recompute_mode
    (4, 'none')
    """
    if not isinstance(obj, dict):
        raise ConfigError("a run must be a JSON object")
    for key in ("system", "model", "plan", "devices"):
        if key not in obj:
            raise ConfigError(f"missing field {key!r}")
    name = obj["system"]
    if not isinstance(name, str):
        raise ConfigError(f"system={name!r} must be a string")
    if systems is not None and name in systems:
        system = systems[name]
    else:
        system = load_system(name)
        if systems is not None:
            systems[name] = system
    model, plan = obj["model"], obj["plan"]
    if not isinstance(model, dict) or not isinstance(plan, dict):
        raise ConfigError("'model' and 'plan' must be JSON objects")
    family = model.get("family", "gpt")
    if family not in _FAMILIES:
        raise ConfigError(f"model family={family!r} is not supported; allowed: gpt")
    seq_len = _int(model, "seq_len", "model")
    spec = TransformerSpec(
        name=str(model.get("name", "gpt")),
        layers=_int(model, "layers", "model"),
        hidden=_int(model, "hidden", "model"),
        heads=_int(model, "heads", "model"),
        ffn=_int(model, "ffn", "model"),
        vocab=_int(model, "vocab", "model"),
        max_positions=seq_len,
    )
    optimizer = plan.get("optimizer", "adam")
    if optimizer not in _OPTIMIZERS:
        raise ConfigError(f"plan optimizer={optimizer!r} is not supported; allowed: adam")
    recompute = plan.get("recompute", "none")
    if not isinstance(recompute, str):
        raise ConfigError(f"plan recompute={recompute!r} must be a string")
    tplan = TrainingPlan(
        tensor_width=_int(plan, "tp", "plan"),
        num_stages=_int(plan, "pp", "plan"),
        data_parallel=_int(plan, "dp", "plan"),
        micro_batch_size=_int(plan, "micro_batch", "plan"),
        global_batch_size=_int(plan, "global_batch", "plan"),
        interleave=plan.get("interleave", 1),
        recompute_mode=recompute,
        sequence_parallel=_bool(plan, "sequence_parallel", "plan", False),
        distributed_optimizer=_bool(plan, "distributed_optimizer", "plan", False),
        overlap_dp=_bool(plan, "overlap_dp", "plan", False),
    )
    devices = _int(obj, "devices", "run")
    if tplan.devices != devices:
        raise ConfigError(
            f"tp x pp x dp = {tplan.tensor_width} x {tplan.num_stages} x "
            f"{tplan.data_parallel} = {tplan.devices} != devices={devices}"
        )
    check_plan(spec, tplan, seq_len)
    measured = obj.get("measured_s")
    if measured is not None and (
        isinstance(measured, bool) or not isinstance(measured, (int, float)) or measured <= 0
    ):
        raise ConfigError(f"measured_s={measured!r} must be a number > 0")
    return Run(
        id=str(obj.get("id", "")),
        system=system,
        model=spec,
        seq_len=seq_len,
        devices=devices,
        plan=tplan,
        measured_s=None if measured is None else float(measured),
    )


def read_runs(path: str | os.PathLike[str]) -> list[Run | RunError]:
    """Read a run file: one :class:`Run` or :class:`RunError` per non-blank line.

    ``FileNotFoundError`` if the file does not exist; :class:`~phaze.errors.ConfigError`
    naming the file if it is a directory, cannot be read, is larger than
    :data:`phaze.jsonfile.MAX_JSON_BYTES` or is not UTF-8 (:func:`phaze.jsonfile.read_text`).
    """
    out: list[Run | RunError] = []
    systems: dict = {}
    text = read_text(path, "run file", "JSON-lines")
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        label = f"line {number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            out.append(RunError(label, f"malformed JSON ({exc.msg})"))
            continue
        if isinstance(obj, dict) and isinstance(obj.get("id"), str) and obj["id"]:
            label = obj["id"]
        try:
            run = parse_run(obj, systems)
        except ConfigError as exc:
            out.append(RunError(label, str(exc)))
            continue
        out.append(run if run.id else Run(label, *[getattr(run, f) for f in Run.__slots__[1:]]))
    return out
