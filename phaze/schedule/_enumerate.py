"""Exact enumeration for small instances: branch and bound over serial SGS schedules.

Internal to :mod:`phaze.schedule`; the search itself is the kernel
:func:`phaze._kernels.schedule.enumerate_segment`. Every intra-op assignment x every
precedence-feasible priority list, run through the serial schedule-generation scheme,
reaches an optimal active schedule of this multi-mode problem with renewable resources.
The enumeration is organised as a depth-first tree (a node = a list prefix with the modes
of its operators, scheduled by the SGS), which shares prefixes between lists, and is
pruned exactly:

* a node is cut when a lower bound of every completion (precedence heads + tails with the
  faster mode; remaining work per resource) is not below the incumbent;
* two prefixes that produce the same partial schedule (same operators, starts and modes)
  have the same completions: the second is skipped;
* intra-op mode is tried only where it is strictly faster (dominance, see
  :meth:`Problem.can_intra`);
* the search stops as soon as the incumbent meets the instance's lower bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phaze._kernels import schedule as _ks
from phaze.errors import ConfigError
from phaze.schedule._bounds import dag_arrays
from phaze.schedule._problem import Problem

__all__ = ["MAX_ENUM_OPS", "EnumResult", "enumerate_exact"]

#: Largest instance the enumeration accepts (operator sets are 64-bit masks).
MAX_ENUM_OPS = _ks.MAX_ENUM_OPS


@dataclass(frozen=True, slots=True)
class EnumResult:
    makespan: float
    modes: tuple[int, ...]
    starts: tuple[float, ...]
    complete: bool  #: the search finished (the result is optimal)
    nodes: int


def enumerate_exact(
    prob: Problem, ub: float, ub_modes, ub_starts, lb: float, *, node_limit: int | None = None
) -> EnumResult:
    """Least makespan of ``prob`` by branch and bound over serial SGS schedules.

    Parameters
    ----------
    prob : Problem
        At most :data:`MAX_ENUM_OPS` operators.
    ub, ub_modes, ub_starts
        An incumbent schedule (e.g. the list schedule); returned when nothing is better.
    lb : float
        A lower bound of the optimum; the search stops when the incumbent reaches it.
    node_limit : int, optional
        Stop after this many tree nodes with ``complete=False``.
    """
    if prob.n > MAX_ENUM_OPS:
        raise ConfigError(
            f"enumeration of {prob.n} operators is not supported; allowed: at most "
            f"{MAX_ENUM_OPS} (use method='auto' or 'ilp')"
        )
    ms, modes, starts, complete, nodes = _ks.enumerate_segment(
        *dag_arrays(prob.dag, prob.kinds),
        np.array(prob.l1, dtype=np.float64),
        np.array(prob.la, dtype=np.float64),
        np.array(prob.cap, dtype=np.int64),
        float(ub),
        np.array(ub_modes, dtype=np.int64).reshape(-1),
        np.array(ub_starts, dtype=np.float64).reshape(-1),
        float(lb),
        -1 if node_limit is None else int(node_limit),
    )
    return EnumResult(
        float(ms), tuple(modes.tolist()), tuple(starts.tolist()), bool(complete), int(nodes)
    )
