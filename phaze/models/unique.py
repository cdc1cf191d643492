"""Unique operator shapes of one or more model graphs, as a columnar :class:`OpTable`.

Identical operators (same kind, GEMM dims, vector parts and collective) occur many times:
once per block and again across tensor widths and micro-batch sizes. :func:`unique_ops`
gives each distinct shape one row, and an :class:`OpIndex` maps every occurrence back to
its row, so the cost kernels evaluate each shape once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from phaze.models.graph import ModelGraph
from phaze.models.ops import Op
from phaze.models.optable import OpTable

__all__ = ["OpIndex", "unique_ops"]


@dataclass(frozen=True, eq=False)
class OpIndex:
    """Map from operator occurrences to :class:`OpTable` rows.

    ``layer_rows[g][p]`` is an int64 array: the table row of each operator of layer
    position ``p`` of graph ``g``.
    """

    layer_rows: tuple[tuple[np.ndarray, ...], ...]

    def rows(self, g: int, layer_pos: int) -> np.ndarray:
        """Table rows of the operators of layer ``layer_pos`` of graph ``g``."""
        return self.layer_rows[g][layer_pos]


def unique_ops(graphs: ModelGraph | Sequence[ModelGraph]) -> tuple[OpTable, OpIndex]:
    """Collect the distinct operator shapes of ``graphs``.

    Parameters
    ----------
    graphs : ModelGraph or sequence of ModelGraph

    Returns
    -------
    table : OpTable
        One row per distinct :attr:`Op.key`, in order of first occurrence.
    index : OpIndex
        Row of every operator occurrence.

    Examples
    --------
    >>> from phaze.models import build_graph, preset
    >>> g = build_graph(preset("gpt3-175b"), 2048, 1, tensor_width=8)
    >>> table, index = unique_ops(g)
    >>> sum(layer.ops.n_ops for layer in g.layers) > len(table)
    True
    """
    if isinstance(graphs, ModelGraph):
        graphs = [graphs]
    row_of: dict[tuple, int] = {}
    ops: list[Op] = []
    by_opgraph: dict[int, np.ndarray] = {}  # blocks share one OpGraph object
    keep_alive = []
    per_graph = []
    for graph in graphs:
        per_layer = []
        for layer in graph.layers:
            cached = by_opgraph.get(id(layer.ops))
            if cached is None:
                rows = np.empty(layer.ops.n_ops, dtype=np.int64)
                for j, op in enumerate(layer.ops.ops):
                    row = row_of.get(op.key)
                    if row is None:
                        row = row_of[op.key] = len(ops)
                        ops.append(op)
                    rows[j] = row
                rows.setflags(write=False)
                by_opgraph[id(layer.ops)] = cached = rows
                keep_alive.append(layer.ops)
            per_layer.append(cached)
        per_graph.append(tuple(per_layer))
    return _table(ops), OpIndex(tuple(per_graph))


def _table(ops: list[Op]) -> OpTable:
    n = len(ops)
    cols = {
        name: np.zeros(n, dtype=np.int64)
        for name in ("kind", "gemm_b", "gemm_m", "gemm_k", "gemm_n", "comm_bytes", "comm_group")
    }
    comm_pass = np.full(n, -1, dtype=np.int64)
    vc_ptr = np.zeros(n + 1, dtype=np.int64)
    parts = []
    for i, op in enumerate(ops):
        cols["kind"][i] = int(op.kind)
        if op.gemm is not None:
            (cols["gemm_b"][i], cols["gemm_m"][i], cols["gemm_k"][i], cols["gemm_n"][i]) = op.gemm
        if op.comm is not None:
            cols["comm_bytes"][i], cols["comm_group"][i], comm_pass[i] = op.comm
        parts.extend(op.vc_parts)
        vc_ptr[i + 1] = len(parts)
    part_arr = np.array(parts, dtype=np.int64).reshape(-1, 3)
    return OpTable(
        vc_ptr=vc_ptr,
        vc_code=part_arr[:, 0],
        vc_elems=part_arr[:, 1],
        vc_aux=part_arr[:, 2],
        comm_pass=comm_pass,
        **cols,
    )
