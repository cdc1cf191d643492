"""Joint search of accelerator architectures and execution plans (design.md section 9).

* :func:`search` -- the best design, the throughput/area frontier and every evaluated row,
  with strategies ``exact`` (default), ``phaze`` (the paper's walk) and ``exhaustive``.
* :func:`evaluate` -- the fast inner loop for sweeps: numpy arrays in, one best plan per
  architecture out.
"""

from phaze.search.core import STRATEGIES, Design, SearchResult, search
from phaze.search.evaluate import EvaluateResult, WorkloadEvaluator, evaluate

__all__ = [
    "STRATEGIES",
    "Design",
    "EvaluateResult",
    "SearchResult",
    "WorkloadEvaluator",
    "evaluate",
    "search",
]
