"""``exact`` with ``jobs=2``: two processes, each searching an area region
(:mod:`phaze.joint.regions`), against the one-process search and the exhaustive one."""

from __future__ import annotations

import functools
import os
import signal

import numpy as np
import pytest

from phaze import GIB, Cluster, DesignSpace, Workload, preset, search
from phaze.errors import PhazeError
from phaze.joint import core, regions
from phaze.rows import ROW_FIELDS
from phaze.store import ResultStore

SPACE = DesignSpace(
    num_tc=(1, 4, 16),
    num_vc=(1, 4),
    tc_width=(8, 32, 128),
    tc_depth=(8, 128),
    glb_bytes=(2**21, 2**27),
    area_band=0.0,
)
CLUSTER = Cluster(devices=64)
SETTINGS = dict(micro_batch_sizes=(1, 4), hbm_sizes=(2 * GIB, 16 * GIB), recompute=(False, True))
BERT = Workload(preset("bert-large"), seq_len=128, global_batch=512)
OPT = Workload(preset("opt-350m"), seq_len=256, global_batch=512, optimizer="adam")
MODELS = {"bert": (BERT,), "bert+opt": (BERT, OPT)}


@pytest.fixture(autouse=True)
def _small_spaces_split(monkeypatch):
    """Split even these small spaces (searched in one process otherwise)."""
    monkeypatch.setattr(regions, "MIN_ARCHS", 2)


@functools.cache
def _reference(models: str, objective: str, strategy: str):
    return search(
        list(MODELS[models]), CLUSTER, SPACE, strategy=strategy, objective=objective, **SETTINGS
    )


def _row_dict(rows: dict) -> dict:
    keys = zip(
        *(
            rows[k].tolist()
            for k in ("workload", "arch", "micro_batch_size", "hbm_bytes", "recompute")
        ),
        strict=True,
    )
    values = zip(*(rows[f].tolist() for f in ROW_FIELDS), strict=True)
    return dict(zip(keys, values, strict=True))


def _split_calls(monkeypatch) -> list:
    """Records each call of exact_in_regions (the parent's regions)."""
    calls, real = [], regions.exact_in_regions

    def spy(*args, **kw):
        calls.append(kw.get("regions", args[-1]))
        return real(*args, **kw)

    monkeypatch.setattr(core, "exact_in_regions", spy)
    return calls


def test_the_space_is_split():
    area = SPACE.enumerate().area_um2
    assert len(area) >= 60
    lower, upper = regions.split_by_area(area, 0.3)
    assert len(lower) == int(0.3 * len(area))
    assert sorted([*lower.tolist(), *upper.tolist()]) == list(range(len(area)))
    order = np.lexsort((np.arange(len(area)), area)).tolist()
    position = {a: i for i, a in enumerate(order)}
    assert max(position[a] for a in lower.tolist()) < min(position[a] for a in upper.tolist())
    assert regions.split_by_area(area, 0.0) is None
    assert regions.split_by_area(area, 1.0) is None
    assert regions.split_by_area(area[:1], 0.5) is None


@pytest.mark.parametrize("share", [0.1, 0.3, 0.9])
@pytest.mark.parametrize("models", sorted(MODELS))
@pytest.mark.parametrize("objective", ["throughput", "energy-per-sample"])
def test_two_regions_give_the_one_process_result(share, models, objective, monkeypatch):
    monkeypatch.setattr(regions, "LOWER_SHARE", share)
    calls = _split_calls(monkeypatch)
    parent, parent_best_first = os.getpid(), []
    real_best_first = regions._Region.best_first

    def best_first(self):
        if os.getpid() == parent:
            parent_best_first.append(True)
        return real_best_first(self)

    monkeypatch.setattr(regions._Region, "best_first", best_first)
    one = _reference(models, objective, "exact")
    full = _reference(models, objective, "exhaustive")
    two = search(list(MODELS[models]), CLUSTER, SPACE, jobs=2, objective=objective, **SETTINGS)
    assert len(calls) == 1
    lower = calls[0][0]
    assert two.best == one.best == full.best
    assert two.frontier.tolist() == one.frontier.tolist() == full.frontier.tolist()
    np.testing.assert_array_equal(two.frontier_value, one.frontier_value)
    for a, b in zip(two.details, one.details, strict=True):
        assert (a["own_best"], a["throughput"], repr(a["plan"])) == (
            b["own_best"],
            b["throughput"],
            repr(b["plan"]),
        )
    # every row evaluated is exact: the same as the exhaustive search's
    got, want = _row_dict(two.rows), _row_dict(full.rows)
    assert got and all(want[k] == v for k, v in got.items())
    # the two processes' counters are merged: the schedules computed are still their parts
    c = two.counters
    assert c["layer_schedules"] == c["bound_closed"] + c["enumerated"] + c["solved"] > 0
    # when the parent's region holds the best design, the parent searched it for one
    if int(two.best.arch) in set(lower.tolist()):
        assert parent_best_first
    if share == 0.9 and models == "bert":
        assert int(two.best.arch) in set(lower.tolist())  # (so the case above is tested)


def test_two_regions_write_every_row_and_resume(tmp_path, monkeypatch):
    calls = _split_calls(monkeypatch)
    out = tmp_path / "run"
    first = search([BERT], CLUSTER, SPACE, jobs=2, out=out, **SETTINGS)
    assert len(calls) == 1
    upper = set(calls[0][1].tolist())
    assert upper & set(first.rows["arch"].tolist()), "no row of the child's region"
    with _open(out) as store:
        assert store.count() == len(first.rows["arch"])
    again = search([BERT], CLUSTER, SPACE, jobs=2, out=out, **SETTINGS)
    assert again.counters["exact_rows"] == 0
    assert again.counters["stored_rows_reused"] == len(first.rows["arch"])
    assert again.best == first.best
    assert again.frontier.tolist() == first.frontier.tolist()
    one = search([BERT], CLUSTER, SPACE, out=out, **SETTINGS)  # one process, same store
    assert one.best == first.best
    assert one.frontier.tolist() == first.frontier.tolist()


def _open(out):
    from phaze.joint.core import fingerprint

    space_rows = fingerprint(
        [BERT], CLUSTER, SPACE, [1, 4], [2 * GIB, 16 * GIB], [False, True], "exact"
    )
    return ResultStore(out, space_rows)


def test_an_interrupted_two_region_search_keeps_the_child_rows(tmp_path, monkeypatch):
    calls = _split_calls(monkeypatch)
    real_handle, seen, pids = regions._Child.handle, [], []

    def handle(self, msg):
        pids.append(self.pid)
        real_handle(self, msg)
        if msg[0] == "rows":
            seen.append(msg[5])
            if len(seen) == 3:
                raise KeyboardInterrupt

    monkeypatch.setattr(regions._Child, "handle", handle)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        search([BERT], CLUSTER, SPACE, jobs=2, out=out, flush_every_s=0.0, **SETTINGS)
    with pytest.raises(ChildProcessError):  # the child was stopped and reaped
        os.waitpid(pids[0], os.WNOHANG)
    upper = set(calls[0][1].tolist())
    sent = {a for archs in seen for a in archs}
    assert sent and sent <= upper
    full = _row_dict(_reference("bert", "throughput", "exhaustive").rows)
    with _open(out) as store:
        stored = {}
        for m in (1, 4):
            for h in (2 * GIB, 16 * GIB):
                for r in (False, True):
                    got = store.load(BERT.name, m, h, r)
                    for i, a in enumerate(got["arch"].tolist()):
                        stored[(0, a, m, h, r)] = tuple(got[f][i].item() for f in ROW_FIELDS)
    assert sent <= {k[1] for k in stored}
    assert all(full[k] == v for k, v in stored.items())
    monkeypatch.setattr(regions._Child, "handle", real_handle)
    resumed = search([BERT], CLUSTER, SPACE, jobs=2, out=out, **SETTINGS)
    assert resumed.counters["stored_rows_reused"] == len(stored)
    one = _reference("bert", "throughput", "exact")
    assert resumed.best == one.best
    assert resumed.frontier.tolist() == one.frontier.tolist()


@pytest.mark.parametrize("how", ["raises", "killed"])
def test_a_failing_child_stops_the_search_with_one_error(how, monkeypatch):
    parent, real = os.getpid(), regions._Region.best_first

    def failing(self):
        if os.getpid() != parent:
            if how == "killed":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("no more room")
        return real(self)

    monkeypatch.setattr(regions._Region, "best_first", failing)
    message = {
        "raises": r"the search's second process failed: RuntimeError: no more room",
        "killed": r"a search worker process died \(signal 9\) while searching its share",
    }[how]
    with pytest.raises(PhazeError, match=message):
        search([BERT], CLUSTER, SPACE, jobs=2, **SETTINGS)
