"""How the data-parallel degree ``d`` enters the placement DP beyond the paper's rules.

The paper's placement (docs/placement.md) uses ``d`` only in its final round: ``d``
pipelines of ``N // d`` devices, ``ceil(M / d)`` micro-batches each, and the gradient
all-reduce of the first stage. :class:`DataParallelTerms` adds what Megatron-LM's
training does with ``d`` (docs/real-systems.md, "Megatron's accounting in the joint
search"):

* the **distributed optimizer** shards part of the training state over the ``d``
  replicas: a stage's state is ``(F - S + S / d) P`` bytes instead of ``F P`` (``F`` the
  state factor, ``S`` its sharded part, ``P`` the stage's parameter bytes), and the
  gradient synchronisation is a reduce-scatter of the fp32 gradients and an all-gather of
  the fp16 weights instead of the all-reduce (``sync_factor`` 3 instead of 4, bytes per
  parameter byte times ``d / (d - 1)``);
* the **optimizer step** of the first stage: ``P (step + step_sharded / d)`` seconds;
* the **overlap** of the synchronisation with the first stage's backward pass of its
  last micro-batch: ``max(0, sync - backward)``.

The stage memory is then a function of ``d``, which the recurrence (run before the
final round chooses ``d``) cannot see. :func:`solve_over_d` keeps the DP exact: the
stage memory caps are non-decreasing in ``d`` (the state shrinks as ``d`` grows), so
the degrees with the same caps form intervals of ``1 ... min(N, M)``, and on one
interval the recurrence is the same. The caps of the largest ``d`` are the most
permissive: one run with them gives the exact optimum at that ``d`` and, for every other
``d``, the least time with those caps -- a lower bound. Then, while some degree not yet
solved has a bound below the incumbent, the one with the least bound is taken, its
interval found by binary search on the caps, and the recurrence run with that
interval's caps over that interval's degrees (only strictly better times, or equal ones
at a smaller ``d``, replace the incumbent).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from phaze._kernels import dp as _dp
from phaze.errors import ConfigError
from phaze.validate import check_bool, check_number

__all__ = [
    "DataParallelTerms",
    "chain_first_backward",
    "check_terms",
    "solve_over_d",
    "state_factor_at",
]


@dataclass(frozen=True, slots=True)
class DataParallelTerms:
    """The data-parallel terms of a placement (module docstring); the defaults are the
    paper's rules.

    Parameters
    ----------
    sharded_state_factor : float
        Bytes of state per parameter byte sharded over the ``d`` replicas (part of the
        problem's state factor; 6 for Megatron's distributed optimizer at 2-byte
        parameters: 12 of its 18 bytes per parameter); 0: nothing sharded.
    sync_factor : float
        The gradient synchronisation of ``d`` pipelines moves ``sync_factor (d-1)/d``
        bytes per parameter byte of the first stage: 4 for the all-reduce of the paper
        (and of fp32 gradients at 2-byte parameters), 3 for the distributed optimizer's
        reduce-scatter of fp32 gradients (2) plus all-gather of fp16 weights (1).
    step_s_per_B, step_sharded_s_per_B : float
        Optimizer-step seconds per parameter byte of the first stage, not sharded and
        sharded over ``d``; 0 (default): no step term.
    overlap_dp : bool
        Hide the synchronisation behind the first stage's backward of one micro-batch.

    Examples
    --------
    >>> DataParallelTerms().is_paper
    True
    >>> DataParallelTerms(sharded_state_factor=6.0, sync_factor=3.0).is_paper
    False
    """

    sharded_state_factor: float = 0.0
    sync_factor: float = 4.0
    step_s_per_B: float = 0.0
    step_sharded_s_per_B: float = 0.0
    overlap_dp: bool = False

    def __post_init__(self) -> None:
        for name, high in (
            ("sharded_state_factor", 1e6),
            ("sync_factor", 1e6),
            ("step_s_per_B", 1e6),
            ("step_sharded_s_per_B", 1e6),
        ):
            value = check_number(name, getattr(self, name), high=high, low_inclusive=True)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "overlap_dp", check_bool("overlap_dp", self.overlap_dp))

    @property
    def is_paper(self) -> bool:
        """The paper's rules: nothing sharded, the all-reduce, no step, no overlap."""
        return self == DataParallelTerms()

    def check(self, state_factor: float) -> None:
        """ConfigError when more state is sharded than there is."""
        if self.sharded_state_factor > state_factor:
            raise ConfigError(
                f"sharded_state_factor={self.sharded_state_factor} is invalid with "
                f"state_factor={state_factor}; allowed: 0 ... state_factor"
            )


def state_factor_at(state_factor: float, sharded_state_factor: float, d: int) -> float:
    """Bytes of state per parameter byte at data-parallel degree ``d``: ``F - S + S / d``
    (``F`` itself when nothing is sharded).

    Examples
    --------
    >>> state_factor_at(9.0, 6.0, 1), state_factor_at(9.0, 6.0, 4), state_factor_at(3.0, 0.0, 8)
    (9.0, 4.5, 3.0)
    """
    if sharded_state_factor == 0.0:
        return float(state_factor)
    return (state_factor - sharded_state_factor) + sharded_state_factor / d


def chain_first_backward(tabs: tuple, bwd: np.ndarray) -> np.ndarray:
    """Per stage of chain tables, the backward seconds of one micro-batch through it
    when it is placed first: stage ``[0, j)`` is pair ``j - 1`` (``bwd[:j].sum()``), the
    others 0."""
    out = np.zeros(tabs[1].shape[0])
    n = bwd.shape[0]
    out[:n] = np.cumsum(bwd)
    return out


def check_terms(terms: object, state_factor: float) -> DataParallelTerms:
    """``terms`` (default: the paper's) if valid with ``state_factor``, else a ConfigError."""
    if terms is None:
        return DataParallelTerms()
    if not isinstance(terms, DataParallelTerms):
        raise ConfigError(
            f"dp_terms={terms!r} is invalid; allowed: a phaze.placement.DataParallelTerms or None"
        )
    terms.check(state_factor)
    return terms


def _cap_interval(same: Callable[[int], bool], d: int, d_max: int) -> tuple[int, int]:
    """The interval ``[lo, hi]`` around ``d`` on which ``same(d')`` holds (the memory caps
    equal those at ``d``). The caps are non-decreasing in ``d`` component by component,
    so the degrees with equal caps form an interval: two binary searches."""
    lo, hi = 1, d
    while lo < hi:
        mid = (lo + hi) // 2
        if same(mid):
            hi = mid
        else:
            lo = mid + 1
    first = lo
    lo, hi = d, d_max
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if same(mid):
            lo = mid
        else:
            hi = mid - 1
    return first, lo


def solve_over_d(
    build: Callable[[float], tuple],
    dp_args: tuple,
    state_factor: float,
    terms: DataParallelTerms,
    overlap_s: Callable[[tuple], np.ndarray] | None = None,
    counters: dict | None = None,
    caps: Callable[[float], np.ndarray] | None = None,
) -> tuple[tuple, tuple]:
    """The placement optimum over every data-parallel degree (module docstring).

    Parameters
    ----------
    build : callable
        ``build(state_factor)`` -> the stage tables of :mod:`phaze._kernels.stage_tables`
        with that state factor (nothing else may depend on it).
    dp_args : tuple
        ``(n_dev, micro_batches, dp_bandwidth_Bps, t, n_cheap, dp_latency_s)`` of
        :func:`phaze._kernels.dp.dp_solve`.
    state_factor : float
        Bytes of state per parameter byte at ``d = 1``.
    terms : DataParallelTerms
    overlap_s : callable, optional
        ``overlap_s(tables)`` -> per stage the backward seconds the synchronisation may
        hide behind (needed when ``terms.overlap_dp``).
    counters : dict, optional
        Receives ``intervals`` (memory-cap intervals of ``d`` solved beside the largest
        ``d``) and ``recurrences`` (runs of the recurrence), added to what it holds.
    caps : callable, optional
        ``caps(state_factor)`` -> the ``max_stages`` column of ``build(state_factor)``
        alone, computed more cheaply (it must be equal); default: from ``build``.

    Returns
    -------
    (tables, result)
        The stage tables of the winning interval and ``dp_solve``'s result on them.
    """
    n_dev, micro_batches = dp_args[0], dp_args[1]
    d_max = min(n_dev, micro_batches)
    none = np.zeros(0)

    def extra(tabs):
        over = none
        if terms.overlap_dp:
            over = np.require(overlap_s(tabs), np.float64, "CW")
        return (terms.sync_factor, over, terms.step_s_per_B, terms.step_sharded_s_per_B)

    def count(key: str, n: int = 1) -> None:
        if counters is not None:
            counters[key] = counters.get(key, 0) + n

    if terms.sharded_state_factor == 0.0 or d_max == 1:
        tabs = build(float(state_factor))
        count("recurrences")
        return tabs, _dp.dp_solve(*tabs, *dp_args, *extra(tabs), 1, d_max, math.inf, none)
    memo: dict[int, tuple] = {}

    def tables(d: int) -> tuple:
        found = memo.get(d)
        if found is None:
            found = memo[d] = build(state_factor_at(state_factor, terms.sharded_state_factor, d))
        return found

    cap_memo: dict[int, np.ndarray] = {}

    def caps_at(d: int) -> np.ndarray:
        found = cap_memo.get(d)
        if found is None:
            if caps is None:
                found = tables(d)[4]
            else:
                found = caps(state_factor_at(state_factor, terms.sharded_state_factor, d))
            cap_memo[d] = found
        return found

    # the most permissive caps (d_max): exact at d_max, a lower bound at every d
    tabs = tables(d_max)
    bounds = np.full(d_max + 1, np.inf)
    res = _dp.dp_solve(*tabs, *dp_args, *extra(tabs), d_max, d_max, math.inf, bounds)
    count("recurrences")
    best = (tabs, res)
    done = np.zeros(d_max + 1, dtype=bool)
    done[0] = done[d_max] = True
    while True:  # the open degree of least bound, with every degree of equal caps
        open_bounds = np.where(done, np.inf, bounds)
        d = int(np.argmin(open_bounds))  # ties: the smallest d
        bound = float(open_bounds[d])
        t_best, d_best = float(best[1][0]), int(best[1][1])
        if bound == math.inf or bound > t_best or (bound == t_best and d > d_best):
            break  # no open degree can win (ties go to the smaller d)
        here = caps_at(d)
        lo, hi = _cap_interval(lambda e, c=here: np.array_equal(caps_at(e), c), d, d_max)
        count("intervals")
        cut = float(np.nextafter(t_best, math.inf)) if t_best < math.inf else math.inf
        tabs = tables(d)
        res = _dp.dp_solve(*tabs, *dp_args, *extra(tabs), lo, hi, cut, none)
        count("recurrences")
        done[lo : hi + 1] = True
        if res[0] < t_best or (res[0] == t_best and 0 < res[1] < d_best):
            best = (tabs, res)
    return best
