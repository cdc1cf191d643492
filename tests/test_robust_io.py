"""Robust runs: a locked output directory, workers that cannot hang a search, atomic and
checked outputs, numba's cache outside the package, and CI running the README's commands.

Each test reproduces a defect of an earlier version (a second search writing into the same
directory, a planted symlink followed, a sqlite traceback, a hang after a worker died, a
truncated results.csv, a stale plot, a refused corrected re-run, ...). The tests that kill
processes mid-run are marked slow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from phaze.cli import main
from phaze.errors import ConfigError
from phaze.outdir import OutputDir, atomic_path, atomic_write_text
from phaze.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

#: A small search (178 architectures, one HBM size, one recompute setting): a few seconds.
SMALL = (
    "--model bert-large --batch 64 --devices 16 --hbm 16 --mbs 2,4 --area-budget 3.5 "
    "--area-band 0 --seq 128 --recompute off --no-progress"
).split()
#: A search that runs for a few seconds (the full space for gpt3-175b), so that a second
#: search started on its directory meets it still running; the tests that signal
#: ``--jobs`` workers keep those busy themselves (``_SLOW_WORKERS``).
LONG = ["--model", "gpt3-175b", "--no-progress"]


def _search(out, *extra: str) -> int:
    return main(["search", *SMALL, *extra, "--out", str(out)])


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """An output directory of a completed small search."""
    out = tmp_path_factory.mktemp("finished") / "out"
    assert _search(out) == 0
    return out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# --- one search per output directory ---------------------------------------------------------


def test_second_search_on_a_directory_in_use_exits_2(tmp_path, capsys):
    out = tmp_path / "race"
    first = subprocess.Popen(
        [sys.executable, "-m", "phaze", "search", *LONG, "--out", str(out)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "results.sqlite").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, "the first search must still be running"
        # other arguments and --force: before the lock, this rewrote the first search's store
        assert _search(out, "--devices", "32", "--force") == 2
        err = _one_line(capsys.readouterr().err)
        assert f"output directory {str(out)!r} is in use by another phaze search" in err
        assert f"(process {first.pid})" in err
    finally:
        first.kill()  # SIGKILL: the OS releases the lock
        first.wait()
    with OutputDir(out) as again:
        assert again.locked


def test_lock_is_per_directory_and_released_on_close(tmp_path):
    with OutputDir(tmp_path / "a"):
        with pytest.raises(ConfigError, match="is in use by another phaze search"):
            OutputDir(tmp_path / "a")
        with OutputDir(tmp_path / "b") as other:  # another directory is free
            assert other.locked
    with OutputDir(tmp_path / "a") as again:
        assert again.locked


def test_empty_out_is_a_config_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _search("") == 2
    assert "output directory '' is empty" in _one_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []  # nothing was written into the working directory


# --- symbolic links ----------------------------------------------------------------------


def test_planted_symlinks_are_refused(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (out / "results.csv").symlink_to(victim)
    assert _search(out) == 2
    err = _one_line(capsys.readouterr().err)
    assert "results.csv" in err and "symbolic link" in err
    assert victim.read_text() == "precious\n"
    (out / "results.csv").unlink()
    elsewhere = tmp_path / "elsewhere.sqlite"
    (out / "results.sqlite").symlink_to(elsewhere)  # dangling
    assert _search(out) == 2
    assert "results.sqlite" in _one_line(capsys.readouterr().err)
    assert not elsewhere.exists()


def test_atomic_path_refuses_a_link_and_keeps_the_target_on_error(tmp_path):
    target = tmp_path / "best.json"
    target.write_text("old")

    def fail_half_way():
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_half_way()
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.json"]  # no temporary left
    link = tmp_path / "link.json"
    link.symlink_to(target)
    with pytest.raises(ConfigError, match="symbolic link"):
        atomic_write_text(link, "new")
    assert target.read_text() == "old"


# --- a damaged results.sqlite -------------------------------------------------------------

_VALUES = {
    "throughput": [1.5] * 3000,
    "time_per_batch_s": [2.0] * 3000,
    "tensor_width": [1] * 3000,
    "data_parallel": [4] * 3000,
    "num_stages": [2] * 3000,
    "bottleneck_stage": [0] * 3000,
    "power_w": [100.0] * 3000,
    "energy_per_sample_j": [5.0] * 3000,
}


def _damage(kind: str, d: Path) -> None:
    path = d / "results.sqlite"
    if kind == "directory":
        path.mkdir(parents=True)
        return
    with ResultStore(d, {"a": 1}) as s:
        s.add("m", 1, 1, False, range(3000), _VALUES)
    if kind == "garbage":
        path.write_bytes(b"this is not a database\n" * 100)
    elif kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "foreign":
        path.unlink()
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE users (name TEXT)")
    elif kind == "read-only":
        path.chmod(0o444)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("garbage", "is not a usable phaze result store (damaged"),
        ("truncated", "is not a usable phaze result store (damaged"),
        ("foreign", "is not a usable phaze result store (other layout"),
        ("directory", "is a directory, not a phaze result store"),
        ("read-only", "is read-only"),
    ],
)
def test_damaged_store_is_reported_and_force_replaces_it(kind, message, tmp_path):
    if kind == "read-only" and os.geteuid() == 0:
        pytest.skip("root may write a read-only file")
    _damage(kind, tmp_path)
    with pytest.raises(ConfigError, match=re.escape(message)):
        ResultStore(tmp_path, {"a": 1})
    if kind in ("directory", "read-only"):  # not damaged: --force does not override
        with pytest.raises(ConfigError, match=re.escape(message)):
            ResultStore(tmp_path, {"a": 1}, force=True)
        return
    with ResultStore(tmp_path, {"a": 1}, force=True) as s:
        assert s.count() == 0
        assert s.add("m", 1, 1, False, [5], {k: v[:1] for k, v in _VALUES.items()}) == 1
    with ResultStore(tmp_path, {"a": 1}) as s:
        assert s.load("m", 1, 1, False)["arch"].tolist() == [5]


def test_cli_damaged_store_one_line_then_force_recomputes(finished, tmp_path, capsys):
    out = _copy(finished, tmp_path / "out")
    (out / "results.sqlite").write_bytes(b"\x00garbage" * 512)
    assert _search(out) == 2
    err = _one_line(capsys.readouterr().err)
    assert "results.sqlite is not a usable phaze result store" in err and "--force" in err
    assert _search(out, "--force") == 0
    assert "(0 reused from the store)" in capsys.readouterr().out
    with sqlite3.connect(out / "results.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM rows").fetchone()[0] > 0


# --- settings of a run ---------------------------------------------------------------------


def test_failed_run_leaves_no_settings_behind(tmp_path, capsys):
    out = tmp_path / "out"
    assert _search(out, "--mbs", "3") == 2  # a setting no workload can use
    assert "micro-batch size 3" in _one_line(capsys.readouterr().err)
    if (out / "results.sqlite").exists():  # the store may be opened before the failure
        with sqlite3.connect(out / "results.sqlite") as db:
            assert db.execute("SELECT COUNT(*) FROM meta").fetchone()[0] == 0
    with ResultStore(out, {"the corrected run": 1}) as store:  # is not refused
        assert store.count() == 0


def test_store_without_rows_accepts_other_arguments(tmp_path):
    # a store left by an earlier version with its settings but no rows
    with ResultStore(tmp_path, {"a": 1}):
        pass
    with sqlite3.connect(tmp_path / "results.sqlite") as db:
        db.execute("INSERT OR REPLACE INTO meta VALUES ('fingerprint', '{\"a\": 1}')")
    with ResultStore(tmp_path, {"a": 2}) as store:
        assert store.count() == 0


def test_micro_batch_order_and_repeats_are_the_same_search(finished, tmp_path, capsys):
    out = _copy(finished, tmp_path / "out")
    assert _search(out, "--mbs", "4,2,4") == 0
    assert " 0 placement rows" in capsys.readouterr().out  # resumed, nothing recomputed


def test_nothing_fits_exits_3_and_removes_a_stale_plot(finished, tmp_path, capsys):
    out = _copy(finished, tmp_path / "out")
    assert (out / "stages.png").exists()
    assert _search(out, "--hbm", "0.001", "--force") == 3
    text = capsys.readouterr().out
    assert "No design has a plan that fits in memory" in text
    assert not (out / "stages.png").exists()
    assert "stages.png" not in text
    assert json.loads((out / "best.json").read_text())["architecture"] is None


# --- workers ---------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (Linux /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry))
    return sorted(out)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_for_workers(pid: int, n: int = 1, timeout_s: float = 180) -> list[int]:
    """The worker processes of ``pid`` once ``n`` have started (``--jobs 2``: the parent
    computes a share and one worker the other)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        kids = _children(pid)
        if len(kids) >= n:
            return kids
        time.sleep(0.05)
    raise AssertionError(f"{n} workers of {pid} did not start in {timeout_s} s")


linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc to find worker processes"
)


#: ``phaze search`` (its arguments follow) whose forked processes (the bounds' workers, or
#: the second process of ``exact``, which searches its own area region) sleep 600 s before
#: computing bounds: for ``LONG`` they would end within seconds, too soon for a test to
#: signal one mid-work.
_SLOW_WORKERS = textwrap.dedent("""
    import os, sys, time
    from phaze.cli import main
    from phaze.joint.evaluator import WorkloadEvaluator
    parent = os.getpid()
    def slowed(real):
        def slow(self, *args):
            if os.getpid() != parent:  # (forked workers inherit it)
                time.sleep(600)
            return real(self, *args)
        return slow
    # the bounds of a worker of the bounds' pool, and of the second process of `exact`
    WorkloadEvaluator.latency_state = slowed(WorkloadEvaluator.latency_state)
    WorkloadEvaluator.score_upper_bound = slowed(WorkloadEvaluator.score_upper_bound)
    sys.exit(main(["search", *sys.argv[1:]]))
""")


def _with_slow_workers(out) -> list[str]:
    """The command of a ``LONG`` search with ``--jobs 2`` whose worker stays busy."""
    return [sys.executable, "-c", _SLOW_WORKERS, *LONG, "--jobs", "2", "--out", str(out)]


@pytest.mark.slow
@linux_only
def test_killing_a_worker_ends_the_search_within_seconds(tmp_path):
    proc = subprocess.Popen(
        _with_slow_workers(tmp_path),
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        workers = _wait_for_workers(proc.pid)
        os.kill(workers[0], signal.SIGKILL)
        started = time.monotonic()
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert time.monotonic() - started < 15
    assert proc.returncode == 2
    assert "a search worker process died (signal 9)" in _one_line(err)
    assert not any(_alive(p) for p in workers)


@pytest.mark.slow
@linux_only
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill", "term"])
def test_killing_the_parent_leaves_no_worker(sig, tmp_path):
    proc = subprocess.Popen(
        _with_slow_workers(tmp_path),
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers = _wait_for_workers(proc.pid)
    proc.send_signal(sig)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = [p for p in workers if _alive(p)]
    for p in survivors:  # do not leave them running if the test fails
        os.kill(p, signal.SIGKILL)
    assert survivors == []


@pytest.mark.slow
@linux_only
def test_ctrl_c_with_jobs_prints_one_line(tmp_path):
    proc = subprocess.Popen(
        _with_slow_workers(tmp_path),
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        workers = _wait_for_workers(proc.pid)
        time.sleep(1.0)  # let the workers get busy
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole group
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err == "phaze: interrupted\n"
    assert not any(_alive(p) for p in workers)


def _sleep_s(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@linux_only
def test_stopping_a_pool_after_a_half_sent_result_does_not_hang():
    """A worker killed while sending its result leaves half a message in the result pipe;
    stopping the pool must still end the pool's manager thread (the interpreter joins it
    at exit, which hung Ctrl-C with ``--jobs``)."""
    import multiprocessing as mp
    import struct
    from concurrent.futures import ProcessPoolExecutor

    from phaze.joint.workers import _stop

    executor = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("fork"))
    assert executor.submit(_sleep_s, 0.0).result(timeout=60) == 0.0
    executor.submit(_sleep_s, 30.0)  # the worker is busy; its result will never come
    manager = executor._executor_manager_thread
    # what a killed sender leaves: a header announcing 1,000 bytes, then 1 byte
    executor._result_queue._writer._send(struct.pack("!i", 1000) + b"x")
    time.sleep(0.5)  # the manager thread is now blocked reading the other 999 bytes
    assert manager.is_alive()
    _stop(executor, dict(executor._processes))
    manager.join(timeout=20)
    assert not manager.is_alive()


# --- atomic outputs ---------------------------------------------------------------------------

_STALL = textwrap.dedent("""
    import importlib, sys, time
    from pathlib import Path
    run = importlib.import_module("phaze.report")
    from phaze.cli import main
    real = run.write_results_csv
    def stalled(path, result):  # write, then be killed with half of it on disk
        real(path, result)
        text = Path(path).read_bytes()
        Path(path).write_bytes(text[: len(text) // 2])
        print("stalled", flush=True)
        time.sleep(600)
    run.write_results_csv = stalled
    sys.exit(main(["search", *sys.argv[1:]]))
""")


@pytest.mark.slow
def test_kill_during_the_final_write_leaves_the_previous_results_csv(finished, tmp_path):
    out = _copy(finished, tmp_path / "out")
    old = (out / "results.csv").read_bytes()
    with subprocess.Popen(
        [sys.executable, "-c", _STALL, *SMALL, "--out", str(out)],
        env=ENV,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout.readline().strip() == "stalled"
        finally:
            proc.kill()  # SIGKILL with half of the new file written
    assert (out / "results.csv").read_bytes() == old  # complete, never half
    assert any(p.name.startswith(".results.csv.") for p in out.iterdir())
    with OutputDir(out):  # the next run removes what the killed one left
        assert not any(p.name.startswith(".results.csv.") for p in out.iterdir())


# --- numba's cache, and CI running the README's commands ----------------------------------------

_CACHE_PROBE = textwrap.dedent("""
    import json, numba
    import phaze._kernels
    from phaze._kernels import vector
    vector.warmup()
    print(json.dumps({"cache_dir": numba.config.CACHE_DIR}))
""")


def test_numba_cache_goes_to_a_per_user_directory(tmp_path):
    env = {k: v for k, v in ENV.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    done = subprocess.run(
        [sys.executable, "-c", _CACHE_PROBE], env=env, capture_output=True, text=True, check=True
    )
    want = tmp_path / "xdg" / "phaze" / "numba"
    assert json.loads(done.stdout)["cache_dir"] == str(want)
    assert list(want.rglob("vector.*.nbi")), "vector kernels were not cached there"
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")  # an explicit choice is kept
    done = subprocess.run(
        [sys.executable, "-c", _CACHE_PROBE], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout)["cache_dir"] == str(tmp_path / "mine")
    assert list((tmp_path / "mine").rglob("vector.*.nbi"))


def test_ci_runs_the_readme_quickstart_commands_in_order():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Quickstart.*?```bash\n(.*?)```", readme, flags=re.S)
    commands = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(commands) == 2
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    # verbatim, each on a line of its own (a failure in its && chain ends the run)
    lines = [ci.index(f"{c} || exit $?") for c in commands]
    venv = next(i for i, line in enumerate(ci) if line.startswith("python3 -m venv"))
    slow = ci.index("pytest tests -m slow -p no:cacheprovider")
    assert venv < lines[0] < lines[1] < slow
    # one environment: nothing between the venv and the last step creates another
    assert sum("venv" in line and "python3 -m" in line for line in ci) == 1


def test_a_reader_that_closes_the_pipe_early_gets_no_error_message():
    """``phaze models | head -0``: the reader is gone before phaze writes; the command stops
    quietly (no traceback, no 'Broken pipe' line) with the shell's SIGPIPE status."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "phaze", "models"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    proc.stdout.close()  # long before phaze has imported numba and written its table
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert err == ""


def test_an_interrupt_inside_a_compiled_kernel_is_reported_as_one(monkeypatch, capsys):
    """numba turns a Ctrl-C that arrives while a kernel calls back into Python into a
    chain of SystemErrors caused by the KeyboardInterrupt: still "interrupted", 130."""
    import phaze._cli.models as models

    def interrupted_in_numba(args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise SystemError(
                "<function _numba_unpickle> returned a result with an exception set"
            ) from exc

    monkeypatch.setattr(models, "run", interrupted_in_numba)
    assert main(["models"]) == 130
    assert capsys.readouterr().err == "phaze: interrupted\n"
    # a SystemError of another cause is not hidden
    monkeypatch.setattr(models, "run", lambda args: (_ for _ in ()).throw(SystemError("x")))
    with pytest.raises(SystemError):
        main(["models"])


def test_writing_plots_leaves_the_callers_matplotlib_alone(tmp_path):
    """A notebook or application that uses pyplot keeps its backend and its open figures
    when phaze writes plots (in a child process: pyplot's state is global)."""
    code = textwrap.dedent(
        f"""
        import matplotlib
        matplotlib.use("svg")
        import matplotlib.pyplot as plt
        import numpy as np
        from phaze.report import plot_frontier
        from phaze.sweeps.report import plot_throughput_vs_area

        mine = plt.figure()
        plot_frontier({str(tmp_path / "f.png")!r}, np.array([1e8, 2e8]), np.array([1.0, 2.0]),
                      np.array([0, 1]), 1, "t")
        plot_throughput_vs_area({str(tmp_path / "s.png")!r}, [
            {{"model": "m", "area_budget_mm2": 100.0, "throughput_samples_per_s": 1.0}}])
        print(matplotlib.get_backend(), plt.get_fignums())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split("\n")[0] == "svg [1]", out.stdout + out.stderr
    for name in ("f.png", "s.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
