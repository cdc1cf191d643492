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

import pytest
from numba.core.registry import CPUDispatcher

import phaze
import phaze._kernels as kernels_pkg
from phaze._kernels import schedule
from phaze.placement import WidthGraph, graph_kind

ROOT = Path(__file__).resolve().parents[1]
PLACEMENT = ROOT / "tests" / "data" / "placement"

#: Kernels called from the public layer (the others are their numba callees).
ENTRY_POINTS = (
    "stage_tables.chain_stage_tables",
    "stage_tables.chain_stage_caps",
    "stage_tables.prefix_stage_tables",
    "stage_tables.enumerate_downsets",
    "stage_tables.dag_stage_tables",
    "stage_tables.interleaved_chain_tables",
    "stage_tables.interleaved_stage_caps",
    "dp.dp_solve",
    "dp.reconstruct",
    "dp.interleaved_final",
    "dp.interleaved_bounds",
    "dp.time_per_batch_bounds",
    "gemm.gemm_cycles",
    "vector.vc_cycles",
    "energy.op_energy",
    "energy.op_charged_energy",
    "schedule.lower_bounds",
    "schedule.config_lower_bounds",
    "schedule.layer_bounds",
    "schedule.solve_columns",
    "schedule.list_schedule",
    "schedule.enumerate_segment",
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


def _search_workloads(interleaves=(1, 2)) -> list:
    """The workloads of :func:`_search_work`: the paper's accounting, and Megatron's with
    every option (the memory-cap intervals of d: caps-only tables, the per-d record, the
    overlap and the optimizer step in the final round) and ``interleaves`` (interleaved
    plans: their tables, caps, bounds and final round)."""
    options = dict.fromkeys(phaze.training.MEGATRON_OPTIONS, True)
    return [
        phaze.Workload(phaze.preset("bert-large"), seq_len=128, global_batch=64),
        phaze.Workload(
            phaze.preset("bert-large"),
            seq_len=128,
            global_batch=64,
            optimizer="adam",
            training=phaze.Training("megatron", **options, interleaves=interleaves),
        ),
    ]


def _search_work(interleaves=(1, 2)) -> None:
    """Two small joint searches (cost tables, schedules, chain placements) of
    :func:`_search_workloads`."""
    space = phaze.DesignSpace(
        num_tc=(2, 8),
        num_vc=(2,),
        tc_width=(32,),
        tc_depth=(32,),
        glb_bytes=(2**24,),
        area_band=0.0,
    )
    paper, megatron = _search_workloads(interleaves)
    assert phaze.search([paper], phaze.Cluster(devices=16), space).best is not None
    result = phaze.search([megatron], phaze.Cluster(devices=16), space, hbm_sizes=(2**30,))
    assert result.best is not None


def _real_work() -> None:
    """:func:`_search_work` and placements on the other two graph paths: a chain with
    skip edges and a general DAG."""
    _search_work()
    problem = phaze.load_instance(PLACEMENT / "bertlarge_skipedges_64dev.instance.json")
    assert phaze.place(problem).time_per_batch_s > 0
    # two branches joining: 0 -> {1, 2} -> 3, so the layer order is not unique
    g = WidthGraph(
        [0, 1, 2, 3],
        [1.0] * 4,
        [2.0] * 4,
        [1] * 4,
        [1] * 4,
        [True, False, True, False],
        [0, 0, 1, 2],
        [1, 2, 3, 3],
        [1.0] * 4,
        width=2,
    )
    dag = phaze.PlacementProblem(
        widths=(2,),
        graphs=(g,),
        devices=8,
        link_bandwidth_Bps=1.0,
        hbm_bytes=100,
        num_micro_batches=4,
        recompute=True,
    )
    assert graph_kind(g.edge_src, g.edge_dst, g.n_layers) == "dag"
    assert phaze.place(dag).time_per_batch_s > 0


def test_real_work_after_warmup_compiles_no_other_specialisation():
    # one specialisation per kernel: the wrappers normalise dtypes, so the signatures that
    # warm-up compiled are the only ones a search and placements on every graph path use
    kernels_pkg.warmup()
    before = {name: list(f.signatures) for name, f in _dispatchers().items()}
    _real_work()
    after = {name: list(f.signatures) for name, f in _dispatchers().items()}
    added = {n: after[n][len(before[n]) :] for n in after if after[n] != before[n]}
    assert not added, f"new specialisations after warm-up: {added}"
    for name in ENTRY_POINTS:
        assert len(after[name]) == 1, f"{name}: {after[name]}"


_SEARCH_AFTER_WARMUP = textwrap.dedent("""
    import json, runpy, sys
    from phaze.joint.evaluator import warmup_kernels
    tests = runpy.run_path(sys.argv[1])
    def signatures():
        return {n: len(f.signatures) for n, f in tests["_dispatchers"]().items()}
    out = []
    # first without interleaving (its warm-up leaves the interleaved kernels out), then
    # with it; each search runs right after the warm-up for its own workloads and its
    # space of 2 architectures (which leaves out the bound kernel of large spaces)
    for interleaves in ((1,), (1, 2)):
        warmup_kernels(tests["_search_workloads"](interleaves), 2)
        before = signatures()
        tests["_search_work"](interleaves)
        out.append([before, signatures()])
    print(json.dumps(out))
""")

_DAG_ONLY = (
    "stage_tables.prefix_stage_tables",
    "stage_tables.dag_stage_tables",
    "stage_tables.enumerate_downsets",
)
#: Used only in spaces that do not keep their whole latency table (more than
#: KEEP_TABLE_ARCHS architectures; warmed up only for them); tests/test_large_space.py
#: searches such a space.
_LARGE_ONLY = ("schedule.config_lower_bounds",)


def test_a_search_uses_only_kernels_its_warmup_loaded():
    # in a fresh process (the kernels load from the cache, so a kernel first touched by
    # the search would show up as a new signature): the search's warm-up, which skips
    # the general-DAG placement kernels and, without interleaving, the interleaved-plan
    # kernels, covers every kernel the searches use
    kernels_pkg.warmup()
    _search_work()  # everything compiled and cached before the fresh process starts
    done = subprocess.run(
        [sys.executable, "-c", _SEARCH_AFTER_WARMUP, __file__],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    (plain_before, plain_after), (both_before, both_after) = json.loads(
        done.stdout.strip().splitlines()[-1]
    )
    for before, after in ((plain_before, plain_after), (both_before, both_after)):
        assert after == before, {n: (before[n], after[n]) for n in after if after[n] != before[n]}
    interleaved = [n for n in ENTRY_POINTS if ".interleaved_" in n]
    assert len(interleaved) >= 4, ENTRY_POINTS
    for name in ENTRY_POINTS:
        left_out = name in _DAG_ONLY or name in _LARGE_ONLY
        assert (plain_before[name] == 0) == (left_out or name in interleaved), name
        assert (both_before[name] == 0) == left_out, name


_CACHE_STATS = textwrap.dedent("""
    import sys
    sys.path[:] = [p for p in sys.path if p not in ("", ".")]  # as a console script: not
    import importlib, json, pkgutil                             # from the working directory
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


def _warmup_in_a_fresh_process(env: dict, cwd=None) -> dict[str, list[int]]:
    """``warmup()`` in a new interpreter (phaze from this checkout, whatever ``cwd``
    holds): ``{kernel: [cache hits, cache misses]}``."""
    done = subprocess.run(
        [sys.executable, "-c", _CACHE_STATS],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=cwd,
        check=False,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _loaded_from_cache(stats: dict[str, list[int]]) -> None:
    # nothing recompiled; the entry points load from the cache (callees only inlined into
    # other kernels show neither hits nor misses there)
    assert all(misses == 0 for _, misses in stats.values()), stats
    assert all(stats[name][0] >= 1 for name in ENTRY_POINTS), stats


def test_a_worker_process_loads_every_kernel_the_parent_warmed_up():
    kernels_pkg.warmup()  # the parent compiles (or loads) and writes the cache
    _loaded_from_cache(_warmup_in_a_fresh_process(dict(os.environ)))


@pytest.mark.slow
def test_a_fresh_process_loads_every_kernel_from_the_cache(tmp_path):
    # from an empty cache: the first process compiles everything, the second loads it.
    # The first runs where another `phaze` shadows this one for `python -c` (a source
    # checkout as the working directory, as in CI): the side process must still compile
    # this phaze's kernels
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    decoy = tmp_path / "decoy" / "phaze"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text('raise ImportError("a decoy phaze")\n')
    first = _warmup_in_a_fresh_process(env, cwd=decoy.parent)
    second = _warmup_in_a_fresh_process(env)
    assert list((tmp_path / "cache").rglob("*.nbi")), "no numba cache index written"
    assert sum(misses for _, misses in first.values()) >= 8, first
    _loaded_from_cache(second)
    if len(os.sched_getaffinity(0)) >= 2:  # the side process compiled the scheduler's
        # kernels but for the one of large spaces, which this process compiled, reading its
        # callees from the cache (so the two wrote no file in common)
        side = {k: v for k, v in first.items() if k.split(".")[0] in kernels_pkg.SIDE_MODULES}
        large = {f"schedule.{n}" for n in schedule.LARGE_SPACES_ONLY}
        assert large and large <= set(side), (large, side)
        assert all(side[k] == [0, 1] for k in large), side
        rest = {k: v for k, v in side.items() if k not in large}
        assert all(v[1] == 0 for v in rest.values()), rest
        assert all(rest[k][0] >= 1 for k in ENTRY_POINTS if k in rest), rest
        assert rest["schedule._single_demand"] == [1, 0], rest  # config_lower_bounds' callee


def test_a_warm_cache_starts_no_side_process():
    kernels_pkg.warmup()
    assert kernels_pkg._start_side_compile() is None


_SIDE_CHECK = textwrap.dedent("""
    import json
    from phaze import _kernels
    print(json.dumps([_kernels._cold("schedule", False), _kernels._cold("schedule", True),
                      _kernels._start_side_compile() is None]))
""")


def test_a_cache_without_the_large_space_kernel_is_warm_for_small_spaces(tmp_path):
    # a cache written by small-space searches only (no config_lower_bounds): warm for
    # them (no side process at every search), cold for a large space
    import shutil

    kernels_pkg.warmup()
    ours = Path(schedule.config_lower_bounds._cache._cache_file._index_path).parent
    copy = tmp_path / "cache"
    shutil.copytree(ours, copy / ours.name)
    gone = list((copy / ours.name).glob("*config_lower_bounds*"))
    assert gone
    for f in gone:
        f.unlink()
    done = subprocess.run(
        [sys.executable, "-c", _SIDE_CHECK],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_CACHE_DIR": str(copy)},
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    # and no second process for a large space either: this process compiles that kernel
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [False, True, True]


_UP_TO_THE_REPORT = textwrap.dedent("""
    import sys
    from phaze._kernels import schedule
    schedule.warmup(False, lambda: sys.exit(0))  # stops where it reports its callees ready
    sys.exit(1)
""")

_LARGE_SPACES_KERNEL = textwrap.dedent("""
    import json
    from numba.core.registry import CPUDispatcher
    from phaze._kernels import schedule
    schedule.warmup_large_spaces()
    print(json.dumps({n: [sum(f.stats.cache_hits.values()), sum(f.stats.cache_misses.values())]
                      for n, f in vars(schedule).items() if isinstance(f, CPUDispatcher)}))
""")


def test_the_scheduler_reports_its_callees_ready_before_the_kernel_of_large_spaces(tmp_path):
    # what the side process has cached when it prints its line is all that the kernel of
    # large spaces calls: compiled then in another process, it compiles itself only and
    # reads its callees from the cache (no cache file written by both processes)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_CACHE_DIR": str(tmp_path / "c")}
    runs = []
    for code in (_UP_TO_THE_REPORT, _LARGE_SPACES_KERNEL):
        runs.append(
            subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                env=env,
                check=False,
                timeout=600,
            )
        )
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[1].returncode == 0, runs[1].stderr
    stats = json.loads(runs[1].stdout.strip().splitlines()[-1])
    compiled = {n for n, (_, misses) in stats.items() if misses}
    assert compiled == set(schedule.LARGE_SPACES_ONLY), stats
    assert stats["_single_demand"] == [1, 0], stats
    # and the first run stopped before compiling any of the later kernels
    written = {p.name.split("-")[0] for p in (tmp_path / "c").rglob("*.nbi")}
    assert "schedule.lower_bounds" in written
    assert not written & {"schedule.solve_columns", "schedule.layer_bounds"}, written
