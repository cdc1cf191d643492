"""Dynamic energy of a workload's unique layers on architectures (docs/search.md).

A search prices every layer of a plan from per-layer energies: the charged energy of the
layer's operators (:meth:`phaze.energy.EnergyTable.charged_j`) summed per unique layer
and multiplied by the devices it runs on. Up to
:data:`~phaze.joint.arch_bounds.LATENCY_CHUNK_ARCHS` architectures they are kept for every
architecture; above, only for the architectures that get scheduled
(:class:`EnergyMemo`), computed from the same latency table as their layer schedules.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EnergyMemo", "energy_totals", "layer_energies"]


def layer_energies(groups, charged: np.ndarray) -> np.ndarray:
    """Joules of every unique layer and pass on all its devices, ``(W, U, 2, C)``.

    Parameters
    ----------
    groups : sequence (W,) of sequences of ``(u, operator rows, devices)``
        Per tensor width, the unique layers.
    charged : float64 (ops, C, 2)
        Charged energy of every operator on ``C`` architectures, per pass.

    Examples
    --------
    >>> charged = np.ones((3, 1, 2))
    >>> layer_energies([[(0, np.array([0, 1]), 2), (1, np.array([2]), 1)]], charged)[0, :, :, 0]
    array([[4., 4.],
           [1., 1.]])
    """
    n_u = max(len(g) for g in groups)
    energy = np.zeros((len(groups), n_u, 2, charged.shape[1]))
    for gi, width_groups in enumerate(groups):
        for u, rows, a in width_groups:
            energy[gi, u] = a * charged[rows].sum(axis=0).T  # (2, C)
    return energy


def energy_totals(energy: np.ndarray, unique: np.ndarray) -> np.ndarray:
    """Joules per width and pass, ``(W, 2, C)``: each unique layer's energy ``(W, U, 2,
    C)`` times its number of positions (``unique``, ``(W, n)``: the unique layer of each
    position).

    Examples
    --------
    >>> energy_totals(np.ones((1, 2, 2, 1)), np.array([[0, 1, 1, 1]]))[0, :, 0]
    array([4., 4.])
    """
    n_u = energy.shape[1]
    total = np.zeros((energy.shape[0], 2, energy.shape[3]))
    # elementwise, one unique layer after another: each column's float is the same however
    # many columns there are (a BLAS product's rounding depends on the matrix shape and
    # the CPU, and chunked large spaces must match the whole table bit for bit)
    for gi in range(energy.shape[0]):
        counts = np.bincount(unique[gi], minlength=n_u)
        for u in np.flatnonzero(counts):
            total[gi] += float(counts[u]) * energy[gi, u]
    return total


class EnergyMemo:
    """Energies of single architectures per (micro-batch size, architecture), owned by
    one evaluator: ``(layer joules (W, U, 2), total joules (W, 2))``."""

    def __init__(self) -> None:
        self._arch: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def keep(self, mbs: int, archs: np.ndarray, energy: np.ndarray, unique: np.ndarray) -> None:
        """Memoise the energies ``energy`` ``(W, U, 2, C)`` of the ``C`` architectures
        ``archs``."""
        total = energy_totals(energy, unique)
        for j, a in enumerate(np.asarray(archs).tolist()):
            self._arch[(mbs, a)] = (
                np.ascontiguousarray(energy[..., j]),
                np.ascontiguousarray(total[..., j]),
            )

    def get(self, mbs: int, arch: int) -> tuple[np.ndarray, np.ndarray] | None:
        return self._arch.get((mbs, arch))
