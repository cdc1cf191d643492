"""Joint search: exact equals exhaustive, the paper's walk, resume after a kill,
the inner-loop API and the command line."""

from __future__ import annotations

import gc
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phaze.cli import main
from phaze.errors import ConfigError
from phaze.hardware import DesignSpace
from phaze.joint import evaluate_architectures, search
from phaze.joint.strategy import area_buckets
from phaze.models import preset
from phaze.units import GIB
from phaze.workload import Cluster, Workload

ROOT = Path(__file__).resolve().parents[1]

#: 579 architectures: small enough for an exhaustive reference run in CI.
SPACE = DesignSpace(
    num_tc=(1, 2, 4, 8, 16),
    num_vc=(1, 2, 4, 8),
    tc_width=(8, 32, 128, 256),
    tc_depth=(8, 32, 128, 256),
    glb_bytes=(2**21, 2**27),
    area_band=0.0,
)
#: 24 architectures: the same checks in a few seconds (the 579-architecture runs are slow).
SMALL_SPACE = DesignSpace(
    num_tc=(1, 4, 16),
    num_vc=(1, 4),
    tc_width=(8, 128),
    tc_depth=(8, 128),
    glb_bytes=(2**27,),
    area_band=0.0,
)
CLUSTER = Cluster(devices=64)
SETTINGS = dict(micro_batch_sizes=(1, 4), hbm_sizes=(2 * GIB, 16 * GIB), recompute=(False, True))
BERT = Workload(preset("bert-large"), seq_len=128, global_batch=512)
OPT = Workload(preset("opt-350m"), seq_len=256, global_batch=512, optimizer="adam")


def test_reduced_space_has_enough_architectures():
    assert len(SPACE.enumerate()) >= 300
    assert len(SMALL_SPACE.enumerate()) >= 20


@pytest.mark.parametrize(
    ("workloads", "space"),
    [
        pytest.param([BERT], SMALL_SPACE, id="bert-small"),
        pytest.param([OPT], SMALL_SPACE, id="opt-small"),
        pytest.param([BERT, OPT], SMALL_SPACE, id="bert+opt-small"),
        pytest.param([BERT], SPACE, id="bert", marks=pytest.mark.slow),
        pytest.param([OPT], SPACE, id="opt", marks=pytest.mark.slow),
        pytest.param([BERT, OPT], SPACE, id="bert+opt", marks=pytest.mark.slow),
    ],
)
def test_exact_equals_exhaustive(workloads, space):
    exact = search(workloads, CLUSTER, space, strategy="exact", **SETTINGS)
    full = search(workloads, CLUSTER, space, strategy="exhaustive", **SETTINGS)
    assert full.best is not None
    assert exact.best == full.best  # same architecture, HBM, value and per-model settings
    assert exact.frontier.tolist() == full.frontier.tolist()
    np.testing.assert_array_equal(exact.frontier_value, full.frontier_value)
    # the bounds did their job: fewer rows than the exhaustive run
    assert exact.counters["exact_rows"] < full.counters["exact_rows"]
    # every evaluated row equals the exhaustive run's row for the same key
    key = ("workload", "arch", "micro_batch_size", "hbm_bytes", "recompute")
    full_rows = {
        tuple(int(full.rows[k][i]) for k in key): full.rows["throughput"][i]
        for i in range(full.rows["arch"].size)
    }
    for i in range(exact.rows["arch"].size):
        assert exact.rows["throughput"][i] == full_rows[tuple(int(exact.rows[k][i]) for k in key)]


@pytest.mark.parametrize(
    "space",
    [pytest.param(SMALL_SPACE, id="small"), pytest.param(SPACE, id="579", marks=pytest.mark.slow)],
)
def test_joint_search_reports_each_models_loss(space):
    joint = search([BERT, OPT], CLUSTER, space, **SETTINGS)
    for w, det in zip(joint.workloads, joint.details):
        alone = search([w], CLUSTER, space, **SETTINGS)
        assert det["own_best"] == pytest.approx(alone.best.value, rel=1e-12)
        assert det["throughput"] <= det["own_best"] * (1 + 1e-12)
    assert joint.best.value == pytest.approx(np.mean([d["throughput"] for d in joint.details]))


@pytest.mark.parametrize(
    "space",
    [pytest.param(SMALL_SPACE, id="small"), pytest.param(SPACE, id="579", marks=pytest.mark.slow)],
)
def test_phaze_strategy_walks_from_the_largest_area_down(space):
    res = search(
        [BERT],
        CLUSTER,
        space,
        strategy="phaze",
        micro_batch_sizes=(4,),
        hbm_sizes=(16 * GIB,),
        recompute=(False,),
    )
    area = np.asarray(res.arch_table.area_um2)
    visited = set(res.rows["arch"].tolist())
    buckets = area_buckets(area)
    # every architecture of the first bucket visited, and a prefix of buckets only
    assert set(buckets[0].tolist()) <= visited
    seen = [bool(set(b.tolist()) & visited) for b in buckets]
    k = seen.index(False) if False in seen else len(seen)
    assert all(seen[:k]) and not any(seen[k:])
    assert all(set(b.tolist()) <= visited for b in buckets[:k])
    assert k >= 5  # the stopping rule needs five buckets
    assert k < len(buckets)  # ... and it stopped before the smallest
    exact = search(
        [BERT], CLUSTER, space, micro_batch_sizes=(4,), hbm_sizes=(16 * GIB,), recompute=(False,)
    )
    assert res.best.value <= exact.best.value


def test_evaluate_returns_arrays_per_architecture():
    table = SPACE.enumerate().take(np.arange(0, 320, 40))
    r = evaluate_architectures(
        BERT, CLUSTER, table, micro_batch_size=4, hbm_bytes=16 * GIB, recompute=False
    )
    assert r.throughput.shape == (8,) and r.tensor_width.dtype == np.int64
    feasible = r.throughput > 0
    assert feasible.any()
    np.testing.assert_allclose(
        r.throughput[feasible], BERT.global_batch / r.time_per_batch_s[feasible]
    )
    assert set(r.tensor_width[feasible].tolist()) <= {1, 2, 4, 8}
    assert (
        (r.bottleneck_stage[feasible] >= 0)
        & (r.bottleneck_stage[feasible] < r.num_stages[feasible])
    ).all()
    assert (r.bottleneck_stage[~feasible] == -1).all()


def test_infeasible_memory_is_a_result_not_a_crash():
    res = search(
        [BERT], CLUSTER, SPACE, micro_batch_sizes=(4,), hbm_sizes=(1024,), recompute=(True,)
    )
    assert res.best is None and len(res.frontier) == 0
    # the memory bound rules the setting out before any layer is scheduled
    assert not (res.rows["throughput"] > 0).any() and res.counters["dp_calls"] == 0


def test_bad_search_arguments():
    with pytest.raises(ConfigError, match="strategy='fast'"):
        search([BERT], CLUSTER, SPACE, strategy="fast", **SETTINGS)
    with pytest.raises(ConfigError, match="micro-batch size 3 must"):
        search([BERT], CLUSTER, SPACE, micro_batch_sizes=(3,), hbm_sizes=(GIB,))
    with pytest.raises(ConfigError, match="hbm_bytes=0 is invalid"):
        search([BERT], CLUSTER, SPACE, hbm_sizes=(0,))


# --- resume after SIGKILL -------------------------------------------------------------------

_SCRIPT = textwrap.dedent("""
    import sys
    from phaze.hardware import DesignSpace
    from phaze.models import preset
    from phaze.joint import search
    from phaze.units import GIB
    from phaze.workload import Cluster, Workload
    if len(sys.argv) > 3:  # the run to be killed: each write waits, so the kill lands mid-run
        import time
        from phaze.store import ResultStore
        _add = ResultStore.add
        def _slow_add(self, *args, **kwargs):
            time.sleep(float(sys.argv[3]))
            return _add(self, *args, **kwargs)
        ResultStore.add = _slow_add
    if sys.argv[2] == "small":  # SMALL_SPACE
        space = DesignSpace(num_tc=(1, 4, 16), num_vc=(1, 4), tc_width=(8, 128),
                            tc_depth=(8, 128), glb_bytes=(2**27,), area_band=0.0)
    else:  # SPACE
        space = DesignSpace(num_tc=(1, 2, 4, 8, 16), num_vc=(1, 2, 4, 8),
                            tc_width=(8, 32, 128, 256), tc_depth=(8, 32, 128, 256),
                            glb_bytes=(2**21, 2**27), area_band=0.0)
    w = Workload(preset("bert-large"), seq_len=128, global_batch=512)
    r = search([w], Cluster(devices=64), space, micro_batch_sizes=(1, 4),
               hbm_sizes=(2 * GIB, 16 * GIB), recompute=(False, True), strategy="exhaustive",
               out=sys.argv[1], flush_every_s=0.0)
    print(r.best.arch, r.best.hbm_bytes, repr(r.best.value))
""")


def _stored(path: Path) -> list[tuple]:
    with sqlite3.connect(path / "results.sqlite") as db:
        return db.execute(
            "SELECT * FROM rows ORDER BY model, arch, micro_batch_size, hbm_bytes, recompute"
        ).fetchall()


def _count(path: Path) -> int:
    try:
        with sqlite3.connect(path / "results.sqlite", timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM rows").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize(
    "space", ["small", pytest.param("579", marks=pytest.mark.slow)], ids=["small", "579"]
)
def test_resume_after_sigkill_gives_the_same_result(tmp_path, space):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = tmp_path / "run.py"
    script.write_text(_SCRIPT)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    ref = subprocess.run(
        [sys.executable, str(script), str(whole), space],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    total = _count(whole)
    proc = subprocess.Popen(  # (writes slowed: the small space's run is over in milliseconds)
        [sys.executable, str(script), str(killed), space, "0.01"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while _count(killed) < total // 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _count(killed)
    assert 0 < partial < total, "the kill must land mid-run"
    again = subprocess.run(
        [sys.executable, str(script), str(killed), space],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    assert again.stdout == ref.stdout  # same best design, bit for bit
    assert _stored(killed) == _stored(whole)  # no row lost, none duplicated


# --- command line ---------------------------------------------------------------------------


#: A small search from the command line: bert-large on 64 devices, one setting; the area
#: budget (and band) comes with each test.
SMALL = "--model bert-large --batch 512 --devices 64 --hbm 16 --mbs 4"
#: 548 architectures of 4.5-5 mm^2 (or one core of any kind up to 5 mm^2): a quick search.
TINY_AREA = "--area-budget 5 --area-band 0.9"


def _cli(extra: str, out) -> int:
    return main(["search", *SMALL.split(), *extra.split(), "--out", str(out), "--no-progress"])


@pytest.mark.parametrize(
    ("band", "budget_mm2"),
    [
        pytest.param(TINY_AREA, 5, id="5mm2"),
        pytest.param("--area-budget 40", 40, id="40mm2", marks=pytest.mark.slow),
    ],
)
def test_cli_search_writes_every_output(tmp_path, capsys, band, budget_mm2):
    out = tmp_path / "out"
    assert _cli(f"--seq 128 --recompute off {band}", out) == 0
    text = capsys.readouterr().out
    assert "Best architecture" in text and "tpuv4-like" in text
    assert "bert-large: bottleneck stage" in text and "peak memory" in text
    best = json.loads((out / "best.json").read_text())
    assert best["schema"] == "phaze.best/2"
    assert best["architecture"]["area_mm2"] <= budget_mm2
    w = best["workloads"][0]
    assert w["throughput_samples_per_s"] > 0 and w["plan"]["feasible"]
    assert w["speedup_vs_tpuv4_like"] > 0
    frontier = [f["value_samples_per_s"] for f in best["frontier"]]
    assert frontier == sorted(frontier) and len(set(frontier)) == len(frontier)
    for name in ("results.csv", "frontier.png", "stages.png"):
        assert (out / name).stat().st_size > 0
    # rerunning with the same arguments recomputes nothing
    assert _cli(f"--seq 128 --recompute off {band}", out) == 0
    assert " 0 placement rows" in capsys.readouterr().out
    # other arguments into the same directory are refused without --force ...
    assert _cli(f"--seq 64 {band}", out) == 2
    assert "--force" in capsys.readouterr().err
    # ... and accepted with it
    assert _cli(f"--seq 64 --force {band}", out) == 0
    assert json.loads((out / "best.json").read_text())["workloads"][0]["seq_len"] == 64


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "gpt5"], "unknown model 'gpt5'; known presets: bert-large"),
        (["--hf-config", "/nonexistent/config.json"], "no such file"),
        (["--hbm", "0"], "argument --hbm: 0 is out of range"),
        (["--devices", "0"], "argument --devices: 0 is out of range"),
        (["--mbs", "2,-1"], "argument --mbs: -1 is out of range"),
        (["--area-budget", "0.001"], "below the smallest configuration"),
        (["--out", "/proc/phaze-out"], "cannot be created"),
    ],
)
def test_cli_search_bad_input_exits_2_with_one_line(argv, message, capsys):
    assert main(["search", *argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "space",
    [pytest.param(SMALL_SPACE, id="small"), pytest.param(SPACE, id="579", marks=pytest.mark.slow)],
)
@pytest.mark.parametrize("table", ["kept", "not-kept"])
def test_worker_processes_change_neither_the_result_nor_the_work(space, table, monkeypatch):
    from phaze.joint import arch_bounds, regions
    from phaze.joint import evaluator as evaluator_module

    # the bounds' worker processes (with `exact`, spaces this small are not split by area
    # anyway; tests/test_regions.py checks the split)
    monkeypatch.setattr(regions, "MIN_ARCHS", 10**9)
    if table == "not-kept":  # as the paper's space: bounds from configurations, tables
        monkeypatch.setattr(arch_bounds, "KEEP_TABLE_ARCHS", 7)  # built when scheduled
    assert arch_bounds.keeps_whole_table(len(space.enumerate())) is (table == "kept")
    installed = []
    keep = evaluator_module.WorkloadEvaluator.set_latency_state

    def counting(self, mbs, state):  # called for results of the worker processes only
        installed.append(mbs)
        keep(self, mbs, state)

    monkeypatch.setattr(evaluator_module.WorkloadEvaluator, "set_latency_state", counting)
    one = search([BERT, OPT], CLUSTER, space, **SETTINGS)
    assert installed == []
    two = search([BERT, OPT], CLUSTER, space, jobs=2, **SETTINGS)
    assert installed, "no bounds came from a worker process"
    assert two.best == one.best
    assert two.frontier.tolist() == one.frontier.tolist()
    for k in one.rows:
        np.testing.assert_array_equal(two.rows[k], one.rows[k])
    # the same work: schedules, placements, rows (every counter but the time)
    one.counters.pop("wall_s")
    two.counters.pop("wall_s")
    assert two.counters == one.counters


def _evaluators():
    from phaze.joint.evaluator import WorkloadEvaluator
    from phaze.schedule import ScheduleCache

    table = SMALL_SPACE.enumerate()
    cache = ScheduleCache()
    mbs = list(SETTINGS["micro_batch_sizes"])
    return [WorkloadEvaluator(w, CLUSTER, table, mbs, cache) for w in (BERT, OPT)]


@pytest.mark.parametrize(
    "passed", ["pipe", "memory file", "pipe when no memory file", "parent when unreadable"]
)
def test_bounds_from_worker_processes_are_the_floats_computed_here(monkeypatch, passed):
    from phaze.joint import evaluator as evaluator_module
    from phaze.joint import workers
    from phaze.joint.workers import precompute_latencies

    installed = []
    keep = evaluator_module.WorkloadEvaluator.set_latency_state

    def counting(self, mbs, state):  # called for results of the worker processes only
        installed.append(mbs)
        keep(self, mbs, state)

    messages = []
    unspill = workers._unspill

    def recording(msg):
        messages.append(len(msg))  # 1: through the pipe, 4: through a memory file
        if passed == "parent when unreadable" and len(msg) == 4:
            msg = (msg[0], -1, *msg[2:])  # no process -1: the file cannot be opened
        return unspill(msg)

    def no_memory_file(*args):
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(evaluator_module.WorkloadEvaluator, "set_latency_state", counting)
    monkeypatch.setattr(workers, "_unspill", recording)
    if passed != "pipe":  # this space's results are small: every one is spilled
        monkeypatch.setattr(workers, "SPILL_MIN_BYTES", 0)
    if passed == "pipe when no memory file":  # (the forked workers inherit it)
        monkeypatch.setattr(workers.os, "memfd_create", no_memory_file)
    fds = set(os.listdir("/proc/self/fd"))
    here, there = _evaluators(), _evaluators()
    hbm = 16 * GIB
    pairs = [(wi, m) for wi in range(2) for m in SETTINGS["micro_batch_sizes"]]
    precompute_latencies(there, pairs, 3, ("throughput", None, hbm))
    theirs = len(pairs) - len(pairs) // 3  # the parent did a third
    spilled = passed in ("memory file", "parent when unreadable")
    assert messages == [4 if spilled else 1] * theirs
    assert len(installed) == (0 if passed == "parent when unreadable" else theirs)
    for e1, e2 in zip(here, there, strict=True):
        for m in SETTINGS["micro_batch_sizes"]:
            a, b = e1.latency_state(m), e2.latency_state(m)
            for f in ("latency_s", "lb_fwd_s", "lb_bwd_s", "lb_devices", "lb_count"):
                assert getattr(a[0], f).tobytes() == getattr(b[0], f).tobytes(), f
            ub = e1.score_upper_bound(m, "throughput", None, hbm)
            assert ub.tobytes() == e2.score_upper_bound(m, "throughput", None, hbm).tobytes()
            assert (ub > 0).any()
    # a mapping holds a descriptor of its memory file while its arrays live, no longer
    del there, e2, a, b
    gc.collect()
    assert set(os.listdir("/proc/self/fd")) <= fds


@settings(max_examples=40, deadline=None)
@given(
    shapes=st.lists(st.tuples(st.integers(0, 40), st.integers(1, 7)), min_size=1, max_size=5),
    dtypes=st.lists(st.sampled_from(["f8", "i8", "f4", "?", "u1"]), min_size=5, max_size=5),
    fortran=st.booleans(),
)
def test_a_spilled_result_comes_back_equal_writable_and_aligned(shapes, dtypes, fortran):
    from phaze.joint import workers

    rng = np.random.default_rng(len(shapes))
    arrays = [
        np.asarray(rng.uniform(-1e6, 1e6, shape), order="F" if fortran else "C").astype(
            dtypes[i], order="K"
        )
        for i, shape in enumerate(shapes)
    ]
    obj = {"arrays": arrays, "name": "pair", "none": None}
    big = workers.SPILL_MIN_BYTES
    try:
        workers.SPILL_MIN_BYTES = 0
        msg = workers._spill(obj)
    finally:
        workers.SPILL_MIN_BYTES = big
    assert len(msg) == (4 if any(a.nbytes for a in arrays) else 1)
    got = workers._unspill(msg)
    if len(msg) == 4:
        os.close(msg[2])  # (a worker keeps it open until it ends)
    assert got["name"] == "pair" and got["none"] is None
    for a, b in zip(arrays, got["arrays"], strict=True):
        assert (a.dtype, a.shape, a.flags.f_contiguous) == (b.dtype, b.shape, b.flags.f_contiguous)
        assert a.tobytes(order="A") == b.tobytes(order="A")
        assert b.flags.writeable and b.flags.aligned
        if b.size and len(msg) == 4:
            assert b.ctypes.data % 64 == 0
            b.flat[0] = 0  # (the mapping is copy-on-write)


def test_a_small_result_goes_through_the_pipe():
    from phaze.joint import workers

    small = {"x": np.zeros(10)}
    assert workers._spill(small) == (small,)
    assert workers._unspill((small,)) is small


def test_a_worker_dying_while_computing_bounds_stops_the_search_with_one_error(monkeypatch):
    from phaze.errors import PhazeError
    from phaze.joint.evaluator import WorkloadEvaluator

    parent, keep = os.getpid(), WorkloadEvaluator.latency_state

    def dying(self, *args):  # the forked workers inherit it; they die at once
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return keep(self, *args)

    monkeypatch.setattr(WorkloadEvaluator, "latency_state", dying)
    with pytest.raises(PhazeError, match=r"worker process died \(signal 9\) while computing"):
        search([BERT, OPT], CLUSTER, SMALL_SPACE, jobs=2, **SETTINGS)


@pytest.mark.slow  # .ci/run runs the unnarrowed quickstart in a fresh environment too
def test_quickstart_command_in_a_fresh_process(tmp_path):
    """``python -m phaze search`` with default model, cluster, settings and output
    directory; only the design space is narrowed (the full run is the slow test below)."""
    done = subprocess.run(
        [sys.executable, "-m", "phaze", "search", *TINY_AREA.split()],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Best architecture" in done.stdout
    best = json.loads((tmp_path / "phaze-out" / "best.json").read_text())
    w = best["workloads"][0]
    assert w["model"] == "bert-large" and w["plan"]["feasible"]
    assert w["throughput_samples_per_s"] > 0
    assert 0 < best["counters"]["architectures"] < 29_360
    assert best["architecture"]["area_mm2"] <= 5
    frontier = [f["value_samples_per_s"] for f in best["frontier"]]
    areas = [f["area_mm2"] for f in best["frontier"]]
    assert frontier == sorted(frontier) and areas == sorted(areas)
    assert frontier[-1] == pytest.approx(best["value_samples_per_s"])


@pytest.mark.slow
def test_readme_quickstart_main_job(tmp_path):
    """``phaze search`` with no arguments, as the README's quickstart runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "phaze", "search"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Best architecture" in done.stdout
    best = json.loads((tmp_path / "phaze-out" / "best.json").read_text())
    w = best["workloads"][0]
    assert w["model"] == "bert-large" and w["plan"]["feasible"]
    assert w["throughput_samples_per_s"] > 0
    assert best["counters"]["architectures"] == 29_360
    assert best["architecture"]["area_um2"] <= 278_826_676 * (1 + 1e-9)
    frontier = [f["value_samples_per_s"] for f in best["frontier"]]
    areas = [f["area_mm2"] for f in best["frontier"]]
    assert frontier == sorted(frontier) and areas == sorted(areas)
    assert frontier[-1] == pytest.approx(best["value_samples_per_s"])


def test_a_search_rerun_on_its_store_schedules_only_what_it_places(tmp_path):
    """Architectures with stored rows were scheduled by the run that placed them: a rerun
    on the store places nothing and schedules fewer layers (only architectures visited
    but never placed, and the report's baselines), and finds the same."""
    first = search([BERT, OPT], CLUSTER, SMALL_SPACE, out=tmp_path, **SETTINGS)
    again = search([BERT, OPT], CLUSTER, SMALL_SPACE, out=tmp_path, **SETTINGS)

    assert again.counters["exact_rows"] == 0
    assert again.counters["stored_rows_reused"] == len(first.rows["arch"])
    assert again.counters["layer_schedules"] < first.counters["layer_schedules"]
    assert again.best == first.best
    assert again.frontier.tolist() == first.frontier.tolist()
    for k in first.rows:
        np.testing.assert_array_equal(again.rows[k], first.rows[k])
