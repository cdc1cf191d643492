"""Megatron's accounting per layer, as the joint search's evaluator needs it
(:mod:`phaze.training`, docs/real-systems.md): activation and working bytes per layer and
recomputation mode at every tensor width, and the time and energy of one block's attention
core (what selective recomputation reruns).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phaze.training import attention_core_mask, megatron_layer_bytes

__all__ = ["MegatronData", "attention_core", "megatron_data"]


@dataclass(frozen=True, eq=False)
class MegatronData:
    """Megatron accounting of one micro-batch size (:mod:`phaze.training`)."""

    bytes: dict  # mode -> (activation_bytes (W, n), work_bytes (W, n))
    block: np.ndarray  # (W, n): the layer is a transformer block
    least_activation_bytes: np.ndarray  # (W, n): the least over the modes (memory bound)


def megatron_data(d, recompute_mode: str) -> MegatronData:
    """Per-layer bytes of the modes ``none`` and ``recompute_mode`` at every width of
    ``d`` (the evaluator's data of one micro-batch size: ``d.widths``, ``d.graphs``)."""
    out = {}
    for mode in ("none", recompute_mode):
        pairs = [megatron_layer_bytes(d.graphs[t], mode) for t in d.widths]
        out[mode] = (np.stack([a for a, _ in pairs]), np.stack([w for _, w in pairs]))
    block = np.array(
        [[layer.role == "block" for layer in d.graphs[t].layers] for t in d.widths], dtype=bool
    )
    least = np.minimum(*(a for a, _ in out.values()))
    return MegatronData(out, block, least)


def attention_core(glist, index, lat: np.ndarray, charged: np.ndarray):
    """(seconds, joules) of one block's attention core forward at every width and
    architecture, shapes (W, A): the core is a chain of operators (scores GEMM, softmax,
    dropout, context GEMM), so alone it takes the sum of each operator's faster mode;
    joules on all ``t`` devices of the block."""
    n_arch = lat.shape[1]
    sec, joules = np.zeros((len(glist), n_arch)), np.zeros((len(glist), n_arch))
    for gi, g in enumerate(glist):
        pos = next((p for p, layer in enumerate(g.layers) if layer.role == "block"), None)
        if pos is None:
            continue
        rows = index.rows(gi, pos)[attention_core_mask(g.layers[pos].ops)]
        a = g.tensor_width if g.layers[pos].tensor_parallel else 1
        sec[gi] = np.minimum(lat[rows, :, 0, 0], lat[rows, :, 1, 0]).sum(axis=0)
        joules[gi] = a * charged[rows, :, 0].sum(axis=0)
    return sec, joules
