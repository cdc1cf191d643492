"""Every numba kernel of ``phaze._kernels`` follows one policy (policy in docs/architecture.md).

The kernels are found by walking the package, so a new kernel module is checked without
being listed here: ``@njit(cache=True, nogil=True)``, never ``fastmath``, no ``parallel``;
the package's :func:`phaze._kernels.warmup` covers every module; and a fresh process loads
every compiled kernel from numba's on-disk cache instead of compiling it again.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

from numba.core.registry import CPUDispatcher

import phaze._kernels as kernels_pkg

ROOT = Path(__file__).resolve().parents[1]

#: Kernels called from the public layer (the others are their numba callees).
ENTRY_POINTS = (
    "stage_tables.chain_stage_tables",
    "stage_tables.prefix_stage_tables",
    "stage_tables.enumerate_downsets",
    "stage_tables.dag_stage_tables",
    "dp.dp_solve",
    "dp.reconstruct",
    "gemm.gemm_cycles",
    "vector.vc_cycles",
    "energy.op_energy",
)


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(kernels_pkg.__path__))


def _dispatchers() -> dict[str, CPUDispatcher]:
    out = {}
    for name in _modules():
        module = importlib.import_module(f"phaze._kernels.{name}")
        for attr, f in vars(module).items():
            if isinstance(f, CPUDispatcher) and f.__module__ == module.__name__:
                out[f"{name}.{attr}"] = f
    return out


def test_every_kernel_follows_the_decorator_policy():
    kernels = _dispatchers()
    assert {k.split(".")[0] for k in kernels} == set(_modules())
    assert len(kernels) >= 20
    for name, f in kernels.items():
        assert f.targetoptions.get("nogil") is True, name
        assert not f.targetoptions.get("fastmath"), name
        assert not f.targetoptions.get("parallel"), name
        assert type(f._cache).__name__ == "FunctionCache", f"{name} is not cache=True"


def test_warmup_covers_every_kernel_module():
    assert set(kernels_pkg.KERNEL_MODULES) == set(_modules())


def test_warmup_compiles_one_specialisation_of_the_entry_points():
    kernels_pkg.warmup()
    for name in ("gemm.gemm_cycles", "vector.vc_cycles", "dp.dp_solve"):
        assert len(_dispatchers()[name].signatures) == 1, name  # one specialisation per kernel


def test_a_fresh_process_loads_every_kernel_from_the_cache(tmp_path):
    script = textwrap.dedent("""
        import importlib, json, pkgutil
        from numba.core.registry import CPUDispatcher
        import phaze._kernels as k
        k.warmup()
        stats = {}
        for m in pkgutil.iter_modules(k.__path__):
            mod = importlib.import_module("phaze._kernels." + m.name)
            for n, f in vars(mod).items():
                if isinstance(f, CPUDispatcher) and f.__module__ == mod.__name__:
                    stats[m.name + "." + n] = [sum(f.stats.cache_hits.values()),
                                               sum(f.stats.cache_misses.values())]
        print(json.dumps(stats))
    """)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    runs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=900,
        )
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert list(tmp_path.rglob("*.nbi")), "no numba cache index written"
    first, second = runs
    assert sum(misses for _, misses in first.values()) >= 8, first
    # second process: nothing recompiled; the entry points load from the cache (callees
    # only inlined into other kernels show neither hits nor misses there)
    assert all(misses == 0 for _, misses in second.values()), second
    assert all(second[name][0] >= 1 for name in ENTRY_POINTS), second
