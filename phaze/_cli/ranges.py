"""The allowed range of every numeric command-line flag, checked where the flag is parsed.

Each flag's converter (an argparse ``type``) refuses a value outside its range with a
message that states the range, so ``phaze ... --devices 1e30`` ends with exit status 2
and one line, before anything is computed. The ranges are listed in
docs/architecture.md ("Limits of inputs").
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from phaze.hardware.accelerator import INT_FIELD_LIMITS
from phaze.validate import INT_LIMIT, MAX_DEVICES

__all__ = [
    "add_graph_shape_arguments",
    "AREA_BUDGET_MM2",
    "BATCH",
    "DEVICES",
    "GLB_MIB",
    "HBM_GIB",
    "JOBS",
    "LINK_GIBPS",
    "MICRO_BATCH",
    "SEQ",
    "TENSOR_WIDTH",
    "TIME_LIMIT_S",
    "float_in",
    "float_list_in",
    "int_in",
    "int_list_in",
]

#: (low, high) of each flag, inclusive.
SEQ = (1, 2**24)  # TransformerSpec's max_positions limit
BATCH = (1, INT_LIMIT)
MICRO_BATCH = (1, 2**20)
TENSOR_WIDTH = (1, 64)
DEVICES = (1, MAX_DEVICES)
JOBS = (1, 1024)
LINK_GIBPS = (1e-3, 1e6)
HBM_GIB = (1e-3, 2.0**30)  # 1 MiB .. 1 EiB per device
AREA_BUDGET_MM2 = (1e-3, 1e6)
GLB_MIB = (1e-3, INT_FIELD_LIMITS["glb_bytes"] / 2**20)
TIME_LIMIT_S = (0.01, 86_400.0)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def int_in(low: int, high: int, what: str = "") -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high``."""
    suffix = f" {what}" if what else ""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not an integer; allowed: an integer from {low} to {high}{suffix}"
            ) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{_short(text)} is out of range; allowed: an integer from {low} to {high}{suffix}"
            )
        return value

    convert.__name__ = "integer"
    return convert


def float_in(low: float, high: float, what: str = "") -> Callable[[str], float]:
    """An argparse type: a finite number from ``low`` to ``high``."""
    suffix = f" {what}" if what else ""

    def convert(text: str) -> float:
        value = _number(text)
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(
                f"{_short(text)} is out of range; allowed: a number from {low:g} to "
                f"{high:g}{suffix}"
            )
        return value

    convert.__name__ = "number"
    return convert


def int_list_in(low: int, high: int, what: str = "") -> Callable[[str], tuple[int, ...]]:
    """An argparse type: comma-separated integers, each from ``low`` to ``high``."""
    one = int_in(low, high, what)

    def convert(text: str) -> tuple[int, ...]:
        values = tuple(one(v.strip()) for v in text.split(",") if v.strip())
        if not values:
            raise argparse.ArgumentTypeError(
                f"{_short(text)!r}: expected comma-separated integers from {low} to {high}"
            )
        return values

    convert.__name__ = "integer list"
    return convert


def float_list_in(low: float, high: float, what: str = "") -> Callable[[str], tuple[float, ...]]:
    """An argparse type: comma-separated numbers, each from ``low`` to ``high``."""
    one = float_in(low, high, what)

    def convert(text: str) -> tuple[float, ...]:
        values = tuple(one(v.strip()) for v in text.split(",") if v.strip())
        if not values:
            raise argparse.ArgumentTypeError(
                f"{_short(text)!r}: expected comma-separated numbers from {low:g} to {high:g}"
            )
        return values

    convert.__name__ = "number list"
    return convert


def _short(text: str, limit: int = 40) -> str:
    """``text`` cut to ``limit`` characters (a 300-digit value is not echoed in full)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def add_graph_shape_arguments(
    parser: argparse.ArgumentParser, seq_help: str, tensor_width_help: str
) -> None:
    """The flags that fix one model graph's shape, with their ranges: ``--seq``, ``--mbs``
    and ``--tensor-width`` (alias ``--tp``), as ``phaze models`` and ``phaze schedule``
    take them."""
    parser.add_argument("--seq", type=int_in(*SEQ), default=None, help=seq_help)
    parser.add_argument(
        "--mbs", type=int_in(*MICRO_BATCH), default=1, help="micro-batch size (default 1)"
    )
    parser.add_argument(
        "--tensor-width",
        "--tp",
        dest="tensor_width",
        type=int_in(*TENSOR_WIDTH),
        default=1,
        help=tensor_width_help,
    )
