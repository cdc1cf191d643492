"""Validation of values entering phaze: one checker per kind of value.

Every public constructor and entry point checks its arguments with these functions, so
that a bad value is reported the same way everywhere: a :class:`~phaze.errors.ConfigError`
whose message names the value and says what is allowed. Limits are stated in the message.

Examples
--------
>>> from phaze.validate import check_int
>>> check_int("devices", 64)
64
>>> check_int("devices", 0)
Traceback (most recent call last):
...
phaze.errors.ConfigError: devices=0 is invalid; allowed: an integer >= 1
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from phaze.errors import ConfigError

__all__ = [
    "INT_LIMIT",
    "MAX_DEVICES",
    "MAX_HBM_BYTES",
    "OPTIMIZERS",
    "check_bool",
    "check_choice",
    "check_hbm_bytes",
    "check_int",
    "check_number",
]

#: Largest integer any count may take (devices, batch, layers, ...): far beyond any real
#: system, and small enough that products of a few counts stay exact in int64.
INT_LIMIT = 2**40
#: Most devices a cluster or placement problem may have (the placement DP's tables grow
#: with it; 2**24 devices take seconds).
MAX_DEVICES = 2**24
#: Largest HBM size per device a search or evaluation accepts (1 EiB).
MAX_HBM_BYTES = 2**60
#: Optimizers whose state phaze's memory model knows (Adam keeps one extra copy of the
#: parameters' bytes in the paper-faithful model).
OPTIMIZERS = ("sgd", "adam")


def check_int(name: str, value: object, low: int = 1, high: int = INT_LIMIT) -> int:
    """``value`` as an ``int`` if it is an integer (not a bool) in ``[low, high]``.

    Examples
    --------
    >>> check_int("seq_len", 2048, high=2**20)
    2048
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or not (low <= value <= high)
    ):
        raise ConfigError(f"{name}={value!r} is invalid; allowed: {_int_range(low, high)}")
    return int(value)


def _int_range(low: int, high: int) -> str:
    if high >= INT_LIMIT:
        return f"an integer >= {low}"
    return f"an integer from {low} to {high}"


def check_number(
    name: str,
    value: object,
    *,
    low: float = 0.0,
    low_inclusive: bool = False,
    high: float = math.inf,
    allow_inf: bool = False,
    unit: str = "",
) -> float:
    """``value`` as a ``float`` if it is a real number (not a bool, not a string, not NaN)
    above ``low`` (or equal, with ``low_inclusive``), at most ``high``, finite unless
    ``allow_inf``.

    Examples
    --------
    >>> check_number("link_bandwidth_Bps", 4e9)
    4000000000.0
    >>> check_number("step_latency_s", 0, low_inclusive=True)
    0.0
    """
    ok = not isinstance(value, (bool, str, bytes)) and isinstance(
        value, (int, float, np.integer, np.floating)
    )
    v = float(value) if ok else math.nan
    if ok:
        above = v >= low if low_inclusive else v > low
        finite = allow_inf or math.isfinite(v)
        ok = above and v <= high and finite and not math.isnan(v)
    if not ok:
        bound = f">= {low:g}" if low_inclusive else f"> {low:g}"
        limits = bound + (f" and <= {high:g}" if math.isfinite(high) else "")
        kind = "a number" if allow_inf else "a finite number"
        suffix = f" {unit}" if unit else ""
        raise ConfigError(f"{name}={value!r} is invalid; allowed: {kind} {limits}{suffix}")
    return v


def check_hbm_bytes(value: object) -> float:
    """``value`` as a float if it is an HBM size from 1 byte to :data:`MAX_HBM_BYTES`.

    Examples
    --------
    >>> check_hbm_bytes(2**35)
    34359738368.0
    """
    return check_number(
        "hbm_bytes", value, low=1.0, low_inclusive=True, high=MAX_HBM_BYTES, unit="bytes"
    )


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a real boolean (``True``/``False``, numpy bools included); strings
    such as ``"false"`` are refused rather than read as true.

    Examples
    --------
    >>> check_bool("recompute", False)
    False
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ConfigError(f"{name}={value!r} is invalid; allowed: true or false")


def check_choice(name: str, value: object, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed``.

    Examples
    --------
    >>> check_choice("optimizer", "adam", OPTIMIZERS)
    'adam'
    """
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"{name}={value!r} is invalid; allowed: {', '.join(allowed)}")
    return value
