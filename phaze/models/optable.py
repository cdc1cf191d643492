"""Columnar table of unique operator shapes: what the cost kernels consume.

An :class:`OpTable` is a bundle of numpy arrays, one row per *unique* fused operator
(docs/architecture.md). Row ``i``:

* ``kind[i]`` -- :class:`phaze.opcodes.OpKind` code.
* ``gemm_b/m/k/n[i]`` -- forward GEMM ``out[B, M, N] = A[B, M, K] @ W[B, K, N]`` for kinds
  ``TC`` and ``TC_VC`` (0 otherwise). Backward is two GEMMs derived from these dims:
  input gradient ``(B, M, N, K)`` and weight gradient ``(B, K, M, N)`` (docs/workloads.md).
* ``vc_ptr[i]:vc_ptr[i+1]`` -- the operator's vector-core parts (CSR): ``vc_code`` (a
  :class:`phaze.opcodes.VcOp` code), ``vc_elems`` (output elements) and ``vc_aux`` (row
  length for MEAN/SOFTMAX, else 1). ``VC`` operators have >= 1 part, ``TC_VC`` operators
  have their fused epilogue here, ``TC`` and ``COMM`` have none.
* ``comm_bytes[i]``, ``comm_group[i]``, ``comm_pass[i]`` -- for ``COMM``: bytes all-reduced,
  devices in the ring and the :class:`phaze.opcodes.CommPass` it runs in (-1 otherwise).

All integer columns are ``int64`` and C-contiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["OpTable"]

_OP_COLUMNS = (
    "kind",
    "gemm_b",
    "gemm_m",
    "gemm_k",
    "gemm_n",
    "comm_bytes",
    "comm_group",
    "comm_pass",
)
_PART_COLUMNS = ("vc_code", "vc_elems", "vc_aux")


@dataclass(frozen=True, eq=False)
class OpTable:
    """Unique operator shapes as numpy columns (see module docstring)."""

    kind: np.ndarray
    gemm_b: np.ndarray
    gemm_m: np.ndarray
    gemm_k: np.ndarray
    gemm_n: np.ndarray
    vc_ptr: np.ndarray
    vc_code: np.ndarray
    vc_elems: np.ndarray
    vc_aux: np.ndarray
    comm_bytes: np.ndarray
    comm_group: np.ndarray
    comm_pass: np.ndarray

    def __post_init__(self) -> None:
        n = self.kind.shape[0]
        for name in (*_OP_COLUMNS, "vc_ptr", *_PART_COLUMNS):
            arr = np.ascontiguousarray(getattr(self, name), dtype=np.int64)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        for name in _OP_COLUMNS:
            if getattr(self, name).shape != (n,):
                raise ValueError(
                    f"OpTable column {name} has shape {getattr(self, name).shape}; expected ({n},)"
                )
        if self.vc_ptr.shape != (n + 1,) or self.vc_ptr[0] != 0:
            raise ValueError(f"OpTable.vc_ptr must have shape ({n + 1},) and start at 0")
        p = int(self.vc_ptr[-1])
        for name in _PART_COLUMNS:
            if getattr(self, name).shape != (p,):
                raise ValueError(
                    f"OpTable column {name} has shape {getattr(self, name).shape}; expected ({p},)"
                )

    def __len__(self) -> int:
        return int(self.kind.shape[0])
