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

On a cold cache with two or more CPUs, :func:`warmup` compiles the scheduler's kernels in
a second process while it compiles the others (the two sets call no kernel of each other,
so the processes write disjoint cache files), then loads them from the cache. The
scheduler's kernel of large design spaces is the exception: the calling process compiles
it once the second process reports that its callees are cached (it reads them from the
cache, so it still writes no file the second process writes); this evens out the two
processes, of which the second was the longer.
"""

import importlib
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["GRAPH_KINDS", "KERNEL_MODULES", "numba_cache_dir", "warmup"]


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
#: Compiled in a second process on a cold cache, except for the kernel of large spaces
#: (module docstring): about half a search's compile time, and no kernel here calls one
#: of another module (nor the reverse). The scheduler alone: the second process runs
#: its ``warmup`` (:func:`_start_side_compile`).
SIDE_MODULES = ("schedule",)
#: The line the second process prints when the callees of the kernel of large spaces are
#: in the cache.
_CALLEES_READY = "phaze: callees ready"


def _cold(name: str, large_spaces: bool = True) -> bool:
    """Whether numba's cache has no index yet for some entry point of module ``name``
    that :func:`warmup` with ``large_spaces`` compiles (a module's ``LARGE_SPACES_ONLY``
    entry points only with ``large_spaces``)."""
    from numba.core.registry import CPUDispatcher

    module = importlib.import_module(f"phaze._kernels.{name}")
    skip = () if large_spaces else getattr(module, "LARGE_SPACES_ONLY", ())
    for kernel in vars(module).values():
        if (
            isinstance(kernel, CPUDispatcher)
            and kernel.__module__ == module.__name__
            and kernel.__name__ not in skip
        ):
            try:
                index = Path(kernel._cache._cache_file._index_path)
            except AttributeError:  # another numba layout: no side process
                return False
            if kernel.signatures or index.exists():
                continue
            # helpers only inlined into other kernels never get an index of their own
            if kernel.__name__ in module.__all__:
                return True
    return False


def _start_side_compile():
    """A process compiling :data:`SIDE_MODULES` into the cache, all but their kernels of
    large spaces (:func:`warmup` compiles those), or None when the cache holds those
    already or there is only one CPU to use."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    if cpus < 2 or not any(_cold(name, large_spaces=False) for name in SIDE_MODULES):
        return None
    import numba

    # this very phaze (numba keys its cache by the source file's path), not one that the
    # child's working directory may hold (a source checkout); and only its kernels: a bare
    # package stands for phaze, whose __init__ would import all of it (0.3-0.4 s)
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "NUMBA_CACHE_DIR": str(numba.config.CACHE_DIR)}
    # the kernels of large spaces are left to this process (:func:`warmup`); the side
    # process prints a line once their callees are in the cache
    code = (
        "import sys, types; phaze = types.ModuleType('phaze'); "
        f"phaze.__path__ = [{package!r}]; sys.modules['phaze'] = phaze; "
        "from phaze._kernels import schedule; "
        f"schedule.warmup(False, lambda: print({_CALLEES_READY!r}, flush=True))"
    )
    try:
        return subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
    except OSError:  # cannot start a process: compile here
        return None


#: Every layer-graph shape (``phaze.placement.graph_kind``); a joint search places
#: only chains and warms up with ``graph_kinds=("chain",)``.
GRAPH_KINDS = ("chain", "prefix", "dag")


def _warmup_module(name: str, graph_kinds, interleaved: bool, large_spaces: bool) -> None:
    module = importlib.import_module(f"phaze._kernels.{name}")
    if name == "stage_tables":
        module.warmup(graph_kinds, interleaved)
    elif name == "dp":
        module.warmup(interleaved)
    elif name == "schedule":
        module.warmup(large_spaces)
    else:
        module.warmup()


def warmup(graph_kinds=GRAPH_KINDS, interleaved: bool = True, large_spaces: bool = True) -> None:
    """Compile (or load from numba's cache) every kernel of :data:`KERNEL_MODULES` on
    tiny inputs, the placement's other graph paths only for the shapes in
    ``graph_kinds`` (a subset of :data:`GRAPH_KINDS`), the interleaved-plan kernels
    only when ``interleaved`` and the bound kernel of large design spaces only when
    ``large_spaces``; on a cold cache,
    :data:`SIDE_MODULES` compile in a second process meanwhile (module docstring).
    Idempotent and cheap once done in a process."""
    graph_kinds = tuple(graph_kinds)
    if not set(graph_kinds) <= set(GRAPH_KINDS):
        raise ValueError(f"graph_kinds={graph_kinds!r}; allowed: a subset of {GRAPH_KINDS}")
    side = _start_side_compile()
    try:
        for name in KERNEL_MODULES:
            if side is None or name not in SIDE_MODULES:
                _warmup_module(name, graph_kinds, interleaved, large_spaces)
        if side is not None:
            # a line, or "" when the side process ended without reporting (it failed)
            if large_spaces and side.stdout.readline().strip() == _CALLEES_READY:
                from phaze._kernels import schedule

                schedule.warmup_large_spaces()
            side.communicate()  # (reads what else it printed, so that it cannot block)
    finally:
        if side is not None and side.poll() is None:  # interrupted: do not leave it behind
            side.kill()
            side.communicate()
    if side is not None:  # load what it wrote (or compile here if it failed)
        for name in SIDE_MODULES:
            _warmup_module(name, graph_kinds, interleaved, large_spaces)
