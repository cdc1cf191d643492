"""The reference JSON format of placement problems (the original PHAZE solver's).

:func:`load_instance` reads a file into a :class:`~phaze.placement.problem.PlacementProblem`;
:func:`instance_dict` writes one back. The format is described in docs/placement.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from phaze.errors import ConfigError
from phaze.jsonfile import load_json
from phaze.placement.problem import FixedBaseline, PlacementProblem, WidthGraph
from phaze.validate import check_bool

__all__ = ["answer_dict", "instance_dict", "load_instance", "problem_from_instance"]


def instance_dict(problem: PlacementProblem) -> dict:
    """``problem`` in the reference JSON format (inverse of :func:`load_instance`)."""
    nodes, edges = {}, {}
    for t, g in zip(problem.widths, problem.graphs, strict=True):
        ids = g.layer_ids.tolist()
        nodes[str(t)] = [
            {
                "id": ids[i],
                "parameterSize": float(g.param_bytes[i]),
                "activationSize": float(g.activation_bytes[i]),
                "optimalLatencyFw": float(g.fwd_s[i]),
                "optimalLatencyBw": float(g.bwd_s[i]),
                "isTensorParallelized": bool(g.tensor_parallel[i]),
            }
            for i in range(len(ids))
        ]
        edges[str(t)] = [
            {"sourceId": ids[u], "destId": ids[v], "communicationCost": float(c)}
            for u, v, c in zip(
                g.edge_src.tolist(), g.edge_dst.tolist(), g.edge_bytes.tolist(), strict=True
            )
        ]
    out = {
        "maxMemoryPerDevice": problem.hbm_bytes,
        "maxDevices": problem.devices,
        "bandwidth": problem.link_bandwidth_Bps,
        "mbsInBatch": problem.num_micro_batches,
        "nodes": nodes,
        "edges": edges,
        "activationRecomputation": problem.recompute,
        "optimizerAlgorithm": "Adam" if problem.adam else "SGD",
    }
    fb = problem.fixed_baseline
    if fb is not None:
        out.update(
            fixedPP=fb.pipeline_stages,
            fixedTMPC=fb.tensor_width,
            fixedDP=fb.data_parallel,
            numTransformerLayers=fb.num_blocks,
        )
    return out


_REQUIRED = (
    "maxMemoryPerDevice",
    "maxDevices",
    "bandwidth",
    "mbsInBatch",
    "nodes",
    "edges",
    "activationRecomputation",
    "optimizerAlgorithm",
)
_NODE_KEYS = (
    "id",
    "parameterSize",
    "activationSize",
    "optimalLatencyFw",
    "optimalLatencyBw",
    "isTensorParallelized",
)
_EDGE_KEYS = ("sourceId", "destId", "communicationCost")
_FIXED = ("fixedPP", "fixedTMPC", "fixedDP", "numTransformerLayers")


def problem_from_instance(obj: Mapping, where: str = "instance") -> PlacementProblem:
    """Build a :class:`PlacementProblem` from a parsed reference-format JSON object."""
    if not isinstance(obj, Mapping):
        raise ConfigError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in _REQUIRED if k not in obj]
    if missing:
        raise ConfigError(f"{where}: missing field(s) {', '.join(missing)}")
    nodes, edges = obj["nodes"], obj["edges"]
    if not isinstance(nodes, Mapping) or not isinstance(edges, Mapping) or not nodes:
        raise ConfigError(
            f"{where}: 'nodes' and 'edges' must be non-empty objects keyed by tensor width"
        )
    if set(nodes) != set(edges):
        raise ConfigError(
            f"{where}: widths in 'nodes' ({sorted(nodes)}) and 'edges' "
            f"({sorted(edges)}) differ; every width needs both"
        )
    width_of: dict[int, str] = {}
    for k in nodes:
        try:
            t = int(k)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{where}: width keys must be integers, got {sorted(map(str, nodes))}"
            ) from None
        if t in width_of:
            raise ConfigError(
                f"{where}: width keys {width_of[t]!r} and {k!r} both mean tensor width {t}; "
                "allowed: one key per width"
            )
        width_of[t] = k
    graphs = []
    for t in sorted(width_of):
        key = width_of[t]
        ns, es = nodes[key], edges[key]
        if not isinstance(ns, list) or not isinstance(es, list):
            raise ConfigError(f"{where}: nodes[{key}] and edges[{key}] must be lists")
        for i, nd in enumerate(ns):
            lack = [k for k in _NODE_KEYS if not isinstance(nd, Mapping) or k not in nd]
            if lack:
                raise ConfigError(f"{where}: nodes[{key}][{i}] lacks {', '.join(lack)}")
        for i, ed in enumerate(es):
            lack = [k for k in _EDGE_KEYS if not isinstance(ed, Mapping) or k not in ed]
            if lack:
                raise ConfigError(f"{where}: edges[{key}][{i}] lacks {', '.join(lack)}")
        graphs.append(
            WidthGraph.from_unordered(
                [nd["id"] for nd in ns],
                [nd["optimalLatencyFw"] for nd in ns],
                [nd["optimalLatencyBw"] for nd in ns],
                [nd["parameterSize"] for nd in ns],
                [nd["activationSize"] for nd in ns],
                [
                    _flag(f"{where}: nodes[{key}][{i}] isTensorParallelized", nd)
                    for i, nd in enumerate(ns)
                ],
                [ed["sourceId"] for ed in es],
                [ed["destId"] for ed in es],
                [ed["communicationCost"] for ed in es],
                width=t,
            )
        )
    fixed = None
    present = [k for k in _FIXED if k in obj]
    if present:
        if len(present) != len(_FIXED):
            raise ConfigError(
                f"{where}: the fixed baseline needs all of {', '.join(_FIXED)}; "
                f"got only {', '.join(present)}"
            )
        fixed = FixedBaseline(*(obj[k] for k in _FIXED))
    return PlacementProblem(
        widths=tuple(sorted(width_of)),
        graphs=tuple(graphs),
        devices=obj["maxDevices"],
        link_bandwidth_Bps=obj["bandwidth"],
        hbm_bytes=obj["maxMemoryPerDevice"],
        num_micro_batches=obj["mbsInBatch"],
        recompute=check_bool(f"{where}: activationRecomputation", obj["activationRecomputation"]),
        optimizer=str(obj["optimizerAlgorithm"]),
        fixed_baseline=fixed,
    )


def _flag(name: str, node: Mapping) -> bool:
    return check_bool(name, node["isTensorParallelized"])


def load_instance(path: str | os.PathLike) -> PlacementProblem:
    """Load a placement problem in the original solver's JSON format.

    Fields: ``maxMemoryPerDevice``, ``maxDevices``, ``bandwidth``, ``mbsInBatch``,
    ``nodes[t]`` and ``edges[t]`` per tensor width, ``activationRecomputation``,
    ``optimizerAlgorithm`` (``SGD`` or ``Adam``) and, optionally, the fixed baseline
    ``fixedPP``, ``fixedTMPC``, ``fixedDP``, ``numTransformerLayers``.

    Raises
    ------
    ConfigError
        The file cannot be read or is not valid JSON (:func:`phaze.jsonfile.load_json`), or
        a field is missing or invalid (the message names it): flags must be JSON booleans,
        each tensor width may have one key only (``"1"`` and ``"01"`` together are
        refused).
    FileNotFoundError
        The file does not exist.
    """
    obj = load_json(path, "placement instance")
    return problem_from_instance(obj, where=os.fspath(path))


def _answer_plan(plan) -> dict:
    """A plan in the reference answer format (its keys first), then our own fields."""
    return {
        "time_per_batch": plan.time_per_batch_s if plan.feasible else None,
        "tensor_parallel": plan.tensor_width,
        "data_parallel": plan.data_parallel,
        "stages": plan.num_stages,
        **plan.to_dict(),
    }


def answer_dict(best, per_width: Mapping, baseline=None) -> dict:
    """What the original solver writes for an instance (its ``expected.json`` format):
    the best plan, the best per tensor width, and the fixed baseline's time.

    Parameters
    ----------
    best : Plan or None
    per_width : mapping of int to Plan or None
    baseline : Plan, optional
        The fixed Megatron-style plan (:func:`~phaze.placement.evaluate_baseline`).
    """
    out = {
        "best": _answer_plan(best) if best is not None else None,
        "per_tensor_parallel_width": {
            str(t): (
                {
                    "time_per_batch": p.time_per_batch_s,
                    "data_parallel": p.data_parallel,
                    "stages": p.num_stages,
                }
                if p is not None
                else {"time_per_batch": None}
            )
            for t, p in per_width.items()
        },
        "fixed_strategy_time_per_batch": (
            baseline.time_per_batch_s if baseline is not None and baseline.feasible else None
        ),
    }
    if baseline is not None:
        out["fixed_strategy"] = _answer_plan(baseline)
    return out
