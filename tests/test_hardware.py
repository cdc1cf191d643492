"""Accelerator template, area model, design space and the ``phaze arch`` command."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from phaze.cli import main
from phaze.errors import ConfigError
from phaze.hardware import (
    ACCELERATOR_PRESETS,
    MIB,
    SRAM_AREA_TABLE,
    Accelerator,
    ArchTable,
    DesignSpace,
    area_um2,
    sram_area_um2,
)

DATA = Path(__file__).parent / "data"
CORES_SHA256 = "f7cb136795d3485fd3c1decd005df309d3b54cce2ea480d0fc9bd36a390af17f"


@pytest.fixture(scope="module")
def cores():
    raw = gzip.decompress((DATA / "cores.json.gz").read_bytes())
    assert hashlib.sha256(raw).hexdigest() == CORES_SHA256
    rows = json.loads(raw)
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


@pytest.fixture(scope="module")
def space_table():
    return DesignSpace().enumerate()


# --- area ----------------------------------------------------------------------------------
def test_area_matches_every_reference_row(cores, space_table):
    tc_sram = np.maximum(1024, 16 * cores["width"] * cores["depth"])
    vc_sram = np.maximum(1024, 16 * cores["width_vc"])
    from phaze.hardware import area_um2_columns

    area = area_um2_columns(
        cores["num_tc"],
        cores["width"],
        cores["depth"],
        cores["num_vc"],
        cores["width_vc"],
        cores["GLB_Buffer"],
        tc_sram,
        vc_sram,
    )
    rel = np.abs(area / cores["area"] - 1)
    assert rel.max() <= 1e-6, (rel.max(), int(rel.argmax()))
    # and through the scalar path on a sample
    for i in range(0, len(area), 997):
        acc = Accelerator(
            num_tc=int(cores["num_tc"][i]),
            tc_width=int(cores["width"][i]),
            tc_depth=int(cores["depth"][i]),
            num_vc=int(cores["num_vc"][i]),
            vc_width=int(cores["width_vc"][i]),
            glb_bytes=int(cores["GLB_Buffer"][i]),
        )
        assert area_um2(acc) == pytest.approx(cores["area"][i], rel=1e-6)


def test_default_space_is_the_reference_list_in_order(cores, space_table):
    t = space_table
    assert len(t) == 29_360
    pairs = [
        ("num_tc", "num_tc"),
        ("num_vc", "num_vc"),
        ("tc_width", "width"),
        ("tc_depth", "depth"),
        ("vc_width", "width_vc"),
        ("glb_bytes", "GLB_Buffer"),
    ]
    for ours, theirs in pairs:
        np.testing.assert_array_equal(getattr(t, ours), cores[theirs], err_msg=ours)
    assert np.abs(t.area_um2 / cores["area"] - 1).max() <= 1e-6
    assert (len(t.tc), len(t.vc)) == (4186, 697)


def test_unique_core_configs_map_back_to_every_architecture(space_table):
    t = space_table
    for name in ("num_tc", "tc_width", "tc_depth", "glb_bytes", "tc_sram_bytes"):
        np.testing.assert_array_equal(t.tc.columns[name][t.tc_index], getattr(t, name))
    for name in ("num_vc", "vc_width", "glb_bytes"):
        np.testing.assert_array_equal(t.vc.columns[name][t.vc_index], getattr(t, name))
    assert t.tc_index[0] == 0
    assert t.vc_index[0] == 0


def test_sram_table_is_the_reference_csv():
    with open(DATA / "sram_area_um2.csv", newline="") as fh:
        rows = [(int(r["bytes"]), float(r["area_um2"])) for r in csv.DictReader(fh)]
    assert rows == [(int(s), float(a)) for s, a in SRAM_AREA_TABLE]
    for s, a in rows:
        assert sram_area_um2(s) == a  # exact at table points


@given(st.floats(512, 2**28))
def test_sram_interpolation_is_log_log_and_monotone(size):
    sizes = np.array([s for s, _ in SRAM_AREA_TABLE], dtype=float)
    areas = np.array([a for _, a in SRAM_AREA_TABLE], dtype=float)
    i = int(np.clip(np.searchsorted(sizes, size, side="right") - 1, 0, len(sizes) - 2))
    x = (np.log(size) - np.log(sizes[i])) / (np.log(sizes[i + 1]) - np.log(sizes[i]))
    want = np.exp(np.log(areas[i]) + x * (np.log(areas[i + 1]) - np.log(areas[i])))
    assert sram_area_um2(size) == pytest.approx(want, rel=1e-12)
    assert sram_area_um2(size * 1.01) > sram_area_um2(size)


def test_sram_midpoint_is_the_geometric_mean():
    a, b = SRAM_AREA_TABLE[3], SRAM_AREA_TABLE[4]
    mid = sram_area_um2(np.sqrt(a[0] * b[0]))
    assert mid == pytest.approx(np.sqrt(a[1] * b[1]), rel=1e-12)
    with pytest.raises(ValueError, match="> 0 bytes"):
        sram_area_um2(0)


# --- accelerator and presets ---------------------------------------------------------------
def test_presets():
    assert set(ACCELERATOR_PRESETS) == {"phaze", "tpuv4-like"}
    tpu = Accelerator.preset("tpuv4-like")
    assert tpu.peak_flops == pytest.approx(275e12, rel=1e-3)  # TPUv4 bf16 peak
    assert (tpu.num_tc, tpu.tc_width, tpu.tc_depth, tpu.num_vc, tpu.vc_width, tpu.glb_bytes) == (
        8,
        128,
        128,
        2,
        128,
        128 * MIB,
    )
    assert tpu.area_um2 == pytest.approx(278_826_676, abs=1)
    assert (tpu.hbm_bytes, tpu.hbm_bandwidth_Bps) == (32 * 2**30, 1200e9)
    ph = Accelerator.preset("phaze")
    assert ph.hbm_words_per_cycle == pytest.approx(128)
    assert (ph.sram_pe_words_per_cycle, ph.glb_sram_words_per_cycle) == (64, 256)
    assert not ph.sram_pe_per_core
    assert not ph.glb_sram_per_core
    assert not ph.vc_memory_term
    assert ph.register_words == 32
    assert ph.frequency_hz == 1.05e9
    with pytest.raises(ConfigError, match="unknown accelerator preset 'tpu'"):
        Accelerator.preset("tpu")


def test_derived_sram_and_replace():
    acc = Accelerator(tc_width=2, tc_depth=4, vc_width=8)
    assert (acc.tc_sram_bytes, acc.vc_sram_bytes) == (1024, 1024)
    big = acc.replace(tc_width=256, tc_depth=256)
    assert big.tc_sram_bytes == 16 * 256 * 256
    assert acc.replace(tc_sram_bytes=4096).tc_sram_bytes == 4096


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_tc", 0),
        ("tc_width", -1),
        ("tc_depth", 0),
        ("num_vc", 0),
        ("vc_width", 0),
        ("glb_bytes", 0),
        ("hbm_bytes", -5),
        ("register_words", 0),
        ("word_bytes", 0),
        ("tc_sram_bytes", 0),
        ("frequency_hz", 0.0),
        ("frequency_hz", -1e9),
        ("hbm_bandwidth_Bps", 0.0),
        ("sram_pe_words_per_cycle", -1.0),
        ("glb_sram_words_per_cycle", float("inf")),
        ("num_tc", 2.5),
        ("num_tc", True),
        ("sram_pe_per_core", 1),
    ],
)
def test_bad_accelerator_fields_name_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        Accelerator(**{field: value})


# --- design space ----------------------------------------------------------------------------
def test_custom_space_order_and_untied_vector_width():
    space = DesignSpace(
        num_tc=(2, 8),
        num_vc=(1,),
        tc_width=(64, 128),
        tc_depth=(128,),
        vc_width=(32, 128),
        glb_bytes=(2 * MIB,),
        area_band=0.0,
    )
    t = space.enumerate()
    assert list(zip(t.num_tc, t.tc_width, t.vc_width, strict=True)) == [
        (2, 64, 32),
        (2, 64, 128),
        (2, 128, 32),
        (2, 128, 128),
        (8, 64, 32),
        (8, 64, 128),
        (8, 128, 32),
        (8, 128, 128),
    ]
    assert len(t.tc) == 4
    assert len(t.vc) == 2


def test_area_budget_and_band():
    space = DesignSpace(area_budget_um2=50e6, area_band=0.5)
    t = space.enumerate()
    single = (t.num_tc == 1) | (t.num_vc == 1)
    assert t.area_um2.max() <= 50e6
    assert t.area_um2[~single].min() >= 25e6
    assert DesignSpace().budget_um2 == pytest.approx(278_826_676.31216)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"area_budget_um2": 1.0}, "area_budget_um2"),
        ({"area_budget_um2": -5.0}, "area_budget_um2"),
        ({"area_band": 1.5}, "area_band"),
        ({"num_tc": ()}, "num_tc"),
        ({"tc_width": (0, 2)}, "tc_width"),
        ({"glb_bytes": (2, 2)}, "glb_bytes"),
        ({"vc_width": (-4,)}, "vc_width"),
    ],
)
def test_bad_space_names_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        DesignSpace(**kwargs)


def test_arch_table_round_trips_accelerators():
    accs = [Accelerator.preset("tpuv4-like"), Accelerator(num_tc=4, glb_bytes=2 * MIB)]
    t = ArchTable.from_accelerators(accs)
    assert [t.accelerator(i) for i in range(2)] == accs
    assert t.take([1]).accelerator(0) == accs[1]
    assert len(t.take(slice(0, 1))) == 1
    np.testing.assert_allclose(t.area_um2, [a.area_um2 for a in accs])
    with pytest.raises(ConfigError, match="out of range"):
        t.accelerator(5)
    with pytest.raises(ConfigError, match="Accelerator"):
        ArchTable.from_accelerators([])


# --- CLI -------------------------------------------------------------------------------------
def test_arch_command_prints_area_and_peak(capsys):
    assert main(["arch", "--preset", "tpuv4-like"]) == 0
    out = capsys.readouterr().out
    assert "278.827 mm^2" in out
    assert "275.3 TFLOP/s" in out
    assert (
        main(
            [
                "arch",
                "--num-tc",
                "1",
                "--tc-width",
                "2",
                "--tc-depth",
                "2",
                "--num-vc",
                "1",
                "--vc-width",
                "2",
                "--glb-mib",
                "2",
                "--json",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["area_um2"] == pytest.approx(3_355_047.77325, rel=1e-9)  # last cores.json row


@pytest.mark.parametrize(
    "argv", [["arch", "--num-tc", "0"], ["arch", "--preset", "x"], ["arch", "--glb-mib", "-1"]]
)
def test_arch_command_bad_input_exits_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "error:" in err


def _unique_rows_reference(cols: dict, key: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows by sorting whole rows (``np.unique(axis=0)``), in order of first
    appearance: (row index of each distinct row, each row's index among them)."""
    mat = np.stack([np.asarray(cols[k], dtype=np.float64) for k in key], axis=1)
    _, first, inverse = np.unique(mat, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return first[order], rank[inverse.reshape(-1)]


@given(
    st.integers(1, 60).flatmap(
        lambda n: st.lists(
            st.one_of(
                st.lists(st.integers(1, 4), min_size=n, max_size=n),
                st.lists(st.sampled_from([0.5, 1.0, 1e9, 3.0e-3]), min_size=n, max_size=n),
                st.lists(st.integers(1, 2**40), min_size=n, max_size=n),
            ),
            min_size=1,
            max_size=12,
        )
    )
)
def test_unique_rows_agree_with_sorting_whole_rows(columns):
    from phaze.hardware.archtable import _unique_rows

    cols = {f"c{i}": np.asarray(c) for i, c in enumerate(columns)}
    key = tuple(cols)
    rows, index = _unique_rows_reference(cols, key)
    configs, got = _unique_rows(cols, key)
    assert got.tolist() == index.tolist()
    for k in key:
        assert configs.columns[k].tolist() == cols[k][rows].tolist()
