"""Joint search of accelerator architectures and execution plans (docs/search.md).

* :func:`search` -- the best design, the throughput/area frontier and every evaluated row,
  with strategies ``exact`` (default), ``phaze`` (the paper's walk) and ``exhaustive``.
* :func:`evaluate_architectures` -- the fast inner loop for sweeps: numpy arrays in, one
  best plan per architecture out.
"""

from phaze.joint.core import STRATEGIES, SearchResult, search
from phaze.joint.evaluator import WorkloadEvaluator, evaluate_architectures
from phaze.joint.run_state import Design

__all__ = [
    "STRATEGIES",
    "Design",
    "SearchResult",
    "WorkloadEvaluator",
    "evaluate_architectures",
    "search",
]
