"""numba kernels behind the public layer (policy in docs/architecture.md).

Nothing compiles at import. :func:`warmup` compiles (or loads from numba's on-disk cache)
every kernel of the package in the calling process; call it in the parent before starting
worker processes, so that workers only read the cache (concurrent cache writes crash
processes, numba issues 4807 and 10128).
"""

import importlib

__all__ = ["KERNEL_MODULES", "warmup"]

#: Kernel modules of the package; each defines ``warmup()``.
KERNEL_MODULES = ("stage_tables", "dp", "gemm", "vector", "energy")


def warmup() -> None:
    """Compile every kernel of :data:`KERNEL_MODULES` on tiny inputs."""
    for name in KERNEL_MODULES:
        module = importlib.import_module(f"phaze._kernels.{name}")
        module.warmup()
