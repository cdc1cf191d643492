"""Sweeps: sweep files and their errors, identical records on every backend, resume after
kill -9, the store's refusal of a changed file, reports, the README's sweep example."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from phaze import ConfigError, SweepCell, sweep
from phaze.cli import main
from phaze.sweeps import RECORD_FIELDS, load_sweep, parse_sweep
from phaze.sweeps.store import SweepStore

ROOT = Path(__file__).resolve().parents[1]
HF = Path(__file__).parent / "data" / "hf_configs"

#: Shared settings of the test sweeps: 12-16 architectures and one setting per cell, so a
#: cell takes a fraction of a second.
SEARCH = """
[search]
seq_len = 128
global_batch = 512
hbm_gib = 16
micro_batch_sizes = 1
recompute = "on"
area_band = 0.0
devices = 64

[space]
num_tc = [1, 2, 4, 8]
num_vc = [2, 4]
tc_width = [32, 128]
tc_depth = [128]
glb_mib = [2, 128]
"""
GRID = """
[grid]
model = ["bert-large", "opt-350m"]
area_budget_mm2 = [30, 60, 120]
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _without_timing(records):
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in records]


def _stored(out: Path) -> list[tuple]:
    db = sqlite3.connect(out / "sweep.sqlite")
    try:
        return db.execute("SELECT key, position, attempt, record FROM cells").fetchall()
    finally:
        db.close()


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("sweep") / "sweep.toml", SEARCH + GRID)


@pytest.fixture(scope="module")
def serial(sweep_file) -> list[dict]:
    return sweep(sweep_file, backend="serial")


@pytest.fixture(scope="module")
def cli_run(sweep_file, tmp_path_factory) -> tuple[Path, str]:
    """``phaze sweep FILE --out DIR --jobs 2``: the output directory and what it printed."""
    out = tmp_path_factory.mktemp("cli") / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["sweep", str(sweep_file), "--out", str(out), "--jobs", "2", "--no-progress"])
    assert code == 0
    return out, printed.getvalue()


def _copy(out: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "copy"
    shutil.copytree(out, dest)
    return dest


# ----------------------------------------------------------------------------- the file


def test_grid_expands_in_file_order(sweep_file):
    spec = load_sweep(sweep_file)
    got = [(c.model.name, c.area_budget_um2) for c in spec.cells]
    want = [(m, a * 1e6) for m in ("bert-large", "opt-350m") for a in (30, 60, 120)]
    assert got == want
    c = spec.cells[0]
    assert c.hbm_bytes == (16 * 2**30,) and c.recompute == (True,)
    assert c.glb_bytes == (2 * 2**20, 128 * 2**20) and c.devices == 64
    assert len({cell.key for cell in spec.cells}) == 6


def test_keys_do_not_depend_on_key_order_or_comments(tmp_path, sweep_file):
    swapped = SEARCH + "\n# a comment\n[grid]\narea_budget_mm2 = [30, 60, 120]\n"
    swapped += 'model = ["bert-large", "opt-350m"]\n'
    a = load_sweep(sweep_file)
    b = load_sweep(_write(tmp_path / "b.toml", swapped))
    assert {c.key for c in a.cells} == {c.key for c in b.cells}
    assert a.cells[1].key != a.cells[0].key


def test_a_bom_and_crlf_or_cr_line_ends_read_as_lf(tmp_path, sweep_file):
    text = sweep_file.read_text(encoding="utf-8")
    want = [c.key for c in load_sweep(sweep_file).cells]
    for name, raw in (
        ("crlf.toml", text.replace("\n", "\r\n").encode()),
        ("cr.toml", text.replace("\n", "\r").encode()),
        ("bom.toml", b"\xef\xbb\xbf" + text.encode()),
    ):
        path = tmp_path / name
        path.write_bytes(raw)
        assert [c.key for c in load_sweep(path).cells] == want, name


def test_list_of_cells_and_set_valued_grid_values(tmp_path):
    text = (
        SEARCH
        + '[grid]\nhbm_gib = [16, [8, 16]]\n\n[[cell]]\nmodel = "opt-350m"\noptimizer = "adam"\n'
    )
    spec = load_sweep(_write(tmp_path / "s.toml", text))
    assert [c.hbm_bytes for c in spec.cells] == [
        (16 * 2**30,),
        (8 * 2**30, 16 * 2**30),
        (16 * 2**30,),
    ]
    assert spec.cells[2].optimizer == "adam" and spec.cells[2].model.name == "opt-350m"


def test_hf_config_path_is_relative_to_the_sweep_file(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.json").write_text((HF / "opt-350m.json").read_text())
    spec = load_sweep(_write(tmp_path / "s.toml", '[grid]\nmodel = ["cfg/config.json"]\n'))
    assert spec.cells[0].model.layers == 24


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[grid]\nmodels = ['bert-large']\n", "unknown key 'models'"),
        ("[serch]\ndevices = 4\n", "unknown table [serch]"),
        ("[grid]\ndevices = []\n", "empty list: the grid has no cells"),
        ("[grid]\n", "[grid] is empty"),
        ("[search]\ndevices = 4\n", "the sweep has no cells"),
        ("[grid]\ndevices = [0]\n", "devices=0; allowed: an integer >= 1"),
        ("[grid]\ndevices = 4\n", "allowed: a list of values"),
        ("[grid]\nmodel = ['gpt5']\n", "unknown model 'gpt5'"),
        ("[grid]\nmodel = ['nothere/config.json']\n", "no such file"),
        ("[grid]\nrecompute = ['sometimes']\n", "allowed: 'both', 'off', 'on'"),
        ("[grid]\narea_budget_mm2 = [-5]\n", "area_budget_mm2=-5; allowed: a number > 0"),
        ("[grid]\narea_budget_mm2 = [0.001]\n", "below the smallest configuration"),
        ("[grid]\nstrategy = ['greedy']\n", "strategy='greedy'; allowed: exact"),
        ("[grid]\ndevices = [4, 4]\n", "cells 0 and 1 are the same search"),
        ("[space]\nnum_tc = []\n[grid]\ndevices = [4]\n", "num_tc=[]"),
        ("[grid]\ndevices = [4\n", "not valid TOML"),
    ],
)
def test_bad_files_are_refused_with_the_key_and_value(tmp_path, text, message):
    path = _write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as err:
        load_sweep(path)
    assert message in str(err.value)
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()  # refused before any work


def test_cli_error_is_one_line(tmp_path, capsys):
    path = _write(tmp_path / "bad.toml", "[grid]\nmodels = ['bert-large']\n")
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("phaze sweep: error:")


def test_parse_sweep_without_a_file():
    spec = parse_sweep({"grid": {"devices": [16, 64]}})
    assert [c.devices for c in spec.cells] == [16, 64]


# ------------------------------------------------------------------- results and backends


def test_records_hold_their_invariants(serial):
    assert len(serial) == 6
    assert [r["cell"] for r in serial] == list(range(6))
    for r in serial:
        assert set(RECORD_FIELDS) <= set(r)
        assert r["feasible"] and r["throughput_samples_per_s"] > 0
        assert r["area_mm2"] <= r["area_budget_mm2"] * (1 + 1e-12)
        assert r["speedup_vs_tpuv4_like"] == pytest.approx(
            r["throughput_samples_per_s"] / r["tpuv4_like_samples_per_s"]
        )
        front = [v for _, _, v in r["frontier"]]
        assert front == sorted(front) and front[-1] == r["throughput_samples_per_s"]
    # a larger budget (band 0) searches a superset of the architectures: never worse
    for model in ("bert-large", "opt-350m"):
        tput = [r["throughput_samples_per_s"] for r in serial if r["model"] == model]
        assert tput == sorted(tput)


def test_a_cell_equals_its_own_search(serial, sweep_file):
    from phaze import search

    cell = load_sweep(sweep_file).cells[4]
    settings = (cell.micro_batch_sizes, cell.hbm_bytes, cell.recompute)
    result = search(cell.workload(), cell.cluster(), cell.design_space(), *settings)
    assert serial[4]["throughput_samples_per_s"] == result.best.value
    assert serial[4]["arch"] == result.best.arch


def test_two_local_processes_give_identical_records(serial, cli_run):
    out, _ = cli_run
    stored = [json.loads(rec) for *_, rec in sorted(_stored(out), key=lambda row: row[1])]
    assert _without_timing(stored) == _without_timing(serial)


@pytest.mark.slow  # starts a scheduler and two worker processes: ~10 s
def test_dask_local_cluster_gives_identical_records(serial, sweep_file, monkeypatch):
    distributed = pytest.importorskip("distributed")
    clusters = []

    class Recording(distributed.LocalCluster):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            clusters.append(
                (self.scheduler_address, [w.address for w in self.workers.values()], kwargs)
            )

    monkeypatch.setattr(distributed, "LocalCluster", Recording)
    got = sweep(sweep_file, backend="dask", jobs=2)
    assert _without_timing(got) == _without_timing(serial)
    ((scheduler, workers, kwargs),) = clusters
    assert scheduler.startswith("tcp://127.0.0.1:")
    assert len(workers) == 2 and all(w.startswith("tcp://127.0.0.1:") for w in workers)
    assert kwargs["dashboard_address"] is None  # no HTTP server either


def test_dask_scheduler_address_gives_identical_records(serial, sweep_file):
    """The ``scheduler=`` path, against an in-process cluster (one threaded worker: fast;
    the two-process ``LocalCluster`` run is the slow test above)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, processes=False, dashboard_address=None, protocol="tcp", host="127.0.0.1"
    ) as cluster:
        got = sweep(sweep_file, backend="dask", scheduler=cluster.scheduler_address)
    assert _without_timing(got) == _without_timing(serial)


def test_local_processes_open_no_network_connection(monkeypatch):
    import socket

    def refuse(self, address):
        raise AssertionError(f"network connection to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)  # inherited by forked workers
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    one = dict(num_tc=(8,), num_vc=(2,), tc_width=(128,), tc_depth=(128,), glb_bytes=(2**27,))
    small = dict(seq_len=128, global_batch=512, hbm_bytes=(16 * 2**30,), area_band=0.0)
    cells = [
        SweepCell(
            "bert-large", devices=n, micro_batch_sizes=(1,), recompute=(True,), **one, **small
        )
        for n in (16, 64)
    ]
    records = sweep(cells, backend="processes", jobs=2)
    assert all(r["feasible"] for r in records)


def test_importing_phaze_does_not_import_dask():
    code = "import sys, phaze; print(any(m.split('.')[0] in ('dask', 'distributed') "
    code += "for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_dask_backend_without_dask_says_how_to_install(tmp_path, sweep_file, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    assert main(["sweep", str(sweep_file), "--dask", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'phaze[dask]'" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------- store and resume


def test_kill_9_then_rerun_gives_identical_results_and_no_duplicates(tmp_path, serial, sweep_file):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "phaze", "sweep", str(sweep_file), "--out", str(out)]
    cmd += ["--jobs", "1", "--no-progress"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 120
    before = []
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "sweep.sqlite").exists():
            try:
                before = _stored(out)
            except sqlite3.OperationalError:  # schema not written yet
                before = []
            if before:
                break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 1 <= len(before) < 6, "the sweep must be killed part-way"
    killed = _stored(out)
    assert 1 <= len(killed) < 6
    assert main(["sweep", str(sweep_file), "--out", str(out), "--jobs", "2", "--no-progress"]) == 0
    final = _stored(out)
    assert len(final) == 6 and len({k for k, *_ in final}) == 6
    # the cells finished before the kill were not recomputed
    first = {k: (a, rec) for k, _, a, rec in killed}
    for k, _, attempt, rec in final:
        if k in first:
            assert (attempt, rec) == first[k]
        else:
            assert attempt == 2
    records = [json.loads(r) for *_, r in sorted(final, key=lambda row: row[1])]
    assert _without_timing(records) == _without_timing(serial)


def test_rerun_computes_nothing(tmp_path, sweep_file, cli_run, monkeypatch):
    out = _copy(cli_run[0], tmp_path)
    stored = _stored(out)

    def boom(cell):
        raise AssertionError("a stored cell was recomputed")

    monkeypatch.setattr("phaze.sweeps.backends.run_cell", boom)
    calls = []
    again = sweep(sweep_file, backend="serial", out=out, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(6, 6)]
    assert [r["cell"] for r in again] == list(range(6))
    assert sorted(_stored(out)) == sorted(stored)


def test_changed_file_is_refused_unless_force(tmp_path, sweep_file, cli_run, capsys):
    out = _copy(cli_run[0], tmp_path)
    before = {k: rec for k, _, _, rec in _stored(out)}
    changed = _write(tmp_path / "changed.toml", SEARCH + GRID.replace("120", "100"))
    assert main(["sweep", str(changed), "--out", str(out), "--no-progress"]) == 2
    assert "different sweep" in capsys.readouterr().err
    assert {k: rec for k, _, _, rec in _stored(out)} == before  # refused: nothing lost
    records = sweep(changed, backend="serial", out=out, force=True)
    assert [r["area_budget_mm2"] for r in records[:3]] == [30, 60, 100]
    after = _stored(out)
    assert len(after) == 6
    new_keys = {c.key for c in load_sweep(changed).cells}
    assert {k for k, *_ in after} == new_keys
    # cells still in the file were kept, not recomputed
    kept = [k for k in new_keys if k in before]
    assert len(kept) == 4
    assert all(dict((k, rec) for k, _, _, rec in after)[k] == before[k] for k in kept)


def test_store_never_duplicates_a_key(tmp_path):
    with SweepStore(tmp_path, "f", keys=["k"]) as store:
        assert store.add("k", 0, {"x": 1})
        assert not store.add("k", 0, {"x": 2})
        assert store.count() == 1 and store.records() == {"k": {"x": 1}}


# ---------------------------------------------------------------------------- reports


def test_cli_writes_csv_plots_and_summary_again(tmp_path, cli_run, capsys):
    out, printed = cli_run
    lines = (out / "sweep.csv").read_text().splitlines()
    assert lines[0].split(",") == list(RECORD_FIELDS)
    assert len(lines) == 1 + 6
    assert (out / "throughput_vs_area.png").stat().st_size > 0
    assert (out / "best_arch_heatmap.png").stat().st_size > 0
    assert main(["sweep", "--summary", str(out)]) == 0
    again = capsys.readouterr().out
    table = printed.split("\n6 of 6 cells")[0]
    assert table.count("\n") == 6 and again.startswith(table)
    assert main(["sweep", "--summary", str(tmp_path / "nothing")]) == 2


def test_python_api_takes_cells():
    small = dict(
        seq_len=128,
        global_batch=512,
        hbm_bytes=(16 * 2**30,),
        micro_batch_sizes=(1,),
        recompute=(True,),
        num_tc=(4, 8),
        num_vc=(2,),
        tc_width=(128,),
        tc_depth=(128,),
        glb_bytes=(2**27,),
        area_band=0.0,
    )
    cells = [SweepCell("bert-large", devices=n, **small) for n in (16, 64)]
    records = sweep(cells, backend="serial")
    assert [r["devices"] for r in records] == [16, 64]
    # more devices, same chip choice set: data parallelism cannot lower throughput
    assert records[1]["throughput_samples_per_s"] > records[0]["throughput_samples_per_s"]
    with pytest.raises(ConfigError, match="backend='threads'"):
        sweep(cells, backend="threads")
    with pytest.raises(ConfigError, match="jobs=0"):
        sweep(cells, jobs=0)


# ---------------------------------------------------------------------- README example


def test_readme_sweep_example_runs_as_written(tmp_path):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(.*?)```", text, flags=re.S)
    assert block is not None, "README.md has no toml block"
    assert "phaze sweep FILE --out DIR" in text or "phaze sweep sweep.toml --out" in text
    path = _write(tmp_path / "sweep.toml", block.group(1))
    cells = len(load_sweep(path).cells)
    assert 2 <= cells <= 12
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--jobs", "2", "--no-progress"]) == 0
    rows = (out / "sweep.csv").read_text().splitlines()
    assert len(rows) == 1 + cells
    header = rows[0].split(",")
    tput = header.index("throughput_samples_per_s")
    assert all(float(r.split(",")[tput]) > 0 for r in rows[1:])


def test_a_sweep_cell_on_a_real_network_runs_the_search_phaze_search_would(tmp_path):
    from phaze import search
    from phaze.sweeps.cell import run_cell
    from phaze.systems import load_system

    text = SEARCH + '\n[[cell]]\nmodel = "bert-large"\nnetwork = "a100-selene"\n'
    text += '\n[[cell]]\nmodel = "bert-large"\n'
    on_net, plain = load_sweep(_write(tmp_path / "s.toml", text)).cells
    assert on_net.network == "a100-selene" and plain.network is None
    assert on_net.cluster().network == load_system("a100-selene").network
    assert plain.cluster().network is None and "network" not in plain.to_dict()
    assert on_net.key != plain.key
    rec = run_cell(on_net)
    assert rec["network"] == "a100-selene" and rec["feasible"]
    settings = (on_net.micro_batch_sizes, on_net.hbm_bytes, on_net.recompute)
    result = search(on_net.workload(), on_net.cluster(), on_net.design_space(), *settings)
    assert rec["throughput_samples_per_s"] == result.best.value
    # the network prices the data-parallel all-reduce differently from the 4 GiB/s link
    assert rec["throughput_samples_per_s"] != run_cell(plain)["throughput_samples_per_s"]
    for bad in ("a100", 3):
        with pytest.raises(ConfigError, match=f"network={bad!r}; allowed: a100-vtrain, a100-sel"):
            parse_sweep({"search": {"network": bad}})
