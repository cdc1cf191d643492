"""Transformer specifications, presets, layer and operator graphs (docs/workloads.md)."""

from phaze.models.graph import (
    Layer,
    LayerEdge,
    ModelGraph,
    build_graph,
    padded_vocab,
    valid_tensor_widths,
)
from phaze.models.ops import Op, OpGraph
from phaze.models.optable import OpTable
from phaze.models.presets import PRESETS, preset, preset_names
from phaze.models.spec import TransformerSpec
from phaze.models.unique import OpIndex, unique_ops

__all__ = [
    "PRESETS",
    "Layer",
    "LayerEdge",
    "ModelGraph",
    "Op",
    "OpGraph",
    "OpIndex",
    "OpTable",
    "TransformerSpec",
    "build_graph",
    "padded_vocab",
    "preset",
    "preset_names",
    "unique_ops",
    "valid_tensor_widths",
]
