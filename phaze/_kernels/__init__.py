"""numba kernels behind the public layer (policy in docs/architecture.md).

Nothing compiles at import. :func:`warmup` compiles (or loads from numba's on-disk cache)
every kernel of the package in the calling process; call it in the parent before starting
worker processes, so that workers only read the cache (concurrent cache writes crash
processes, numba issues 4807 and 10128).

numba's on-disk cache goes to a per-user directory, :func:`numba_cache_dir`, never into
the installed package: a cache written into ``site-packages/phaze/_kernels/__pycache__``
outlives ``pip uninstall`` and the leftover ``phaze`` folder then shadows a later
(editable) install. ``NUMBA_CACHE_DIR``, when set, is respected. This module sets
``numba.config.CACHE_DIR`` before any kernel module is imported (numba picks a function's
cache location when the function is decorated).
"""

import importlib
import os
from pathlib import Path

__all__ = ["KERNEL_MODULES", "numba_cache_dir", "warmup"]


def numba_cache_dir() -> Path:
    """Where phaze's compiled kernels are cached: ``$NUMBA_CACHE_DIR`` if set, else
    ``$XDG_CACHE_HOME/phaze/numba``, else ``~/.cache/phaze/numba``.

    Examples
    --------
    >>> numba_cache_dir().is_absolute()
    True
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"]).absolute()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base).absolute() / "phaze" / "numba"


def _use_user_cache_dir() -> None:
    import numba

    if not numba.config.CACHE_DIR:  # empty unless NUMBA_CACHE_DIR was set
        numba.config.CACHE_DIR = str(numba_cache_dir())


_use_user_cache_dir()

#: Kernel modules of the package; each defines ``warmup()``.
KERNEL_MODULES = ("stage_tables", "dp", "gemm", "vector", "energy", "schedule")


def warmup() -> None:
    """Compile every kernel of :data:`KERNEL_MODULES` on tiny inputs."""
    for name in KERNEL_MODULES:
        module = importlib.import_module(f"phaze._kernels.{name}")
        module.warmup()
