"""Property test of the command line: for random argument vectors -- every flag of
``phaze search / models / arch / schedule / place`` with random strings and numbers --
the CLI succeeds (0; 1 for ``place`` and 3 for ``search`` when nothing fits) or exits 2
with exactly one line on stderr and no traceback.

Successful runs are kept cheap by construction: values that set the amount of work
(``--area-budget``, ``--devices``, ``--jobs``, ``--time-limit``) are drawn from invalid
values and cheap valid ones only (the search's area budget is always given: 3
architectures), and ``--out`` is a fresh temporary directory.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phaze.cli import main

DATA = Path(__file__).parent / "data"

#: Numbers in every notation and magnitude, as the shell passes them: text.
NUMBERS = st.one_of(
    st.integers(-(10**40), 10**40).map(str),
    st.integers(-3, 300).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0", "-0", "1e30", "1e-300", "nan", "inf", "-inf", "0x10", "1_0", "", " "]),
)
#: Any short text (control characters and non-ASCII included).
TEXT = st.text(max_size=12)
ANY = st.one_of(NUMBERS, TEXT)


def _mix(*cheap):
    """Values of a work-setting flag: invalid ones, or one of the cheap valid ``cheap``."""
    return st.one_of(st.sampled_from(cheap), TEXT, NUMBERS.filter(lambda v: v not in cheap))


def _files(tmp: Path) -> dict[str, Path]:
    tmp.mkdir(parents=True, exist_ok=True)
    cfg = json.loads((DATA / "hf_configs" / "gpt2-xl.json").read_text(encoding="utf-8"))
    cfg.update(n_layer=2, n_embd=64, n_head=4, n_positions=128, vocab_size=1000, name="tiny")
    files = {
        "hf": tmp / "tiny-gpt2.json",
        "instance": DATA / "placement" / "tiny6_8dev.instance.json",
        "latencies": tmp / "latencies.json",
        "bad": tmp / "bad.json",
        "dir": tmp,
    }
    files["hf"].write_text(json.dumps(cfg), encoding="utf-8")
    files["latencies"].write_text(json.dumps({"lat_one": [1.0], "lat_all": [0.5]}))
    files["bad"].write_bytes(b"\xff[[[")
    return files


def _paths(files):
    return st.one_of(st.sampled_from(sorted(str(p) for p in files.values())), TEXT)


def _flags(command: str, files: dict) -> dict:
    """flag -> strategy of its value (None: a switch without a value)."""
    paths = _paths(files)
    if command == "search":
        return {
            "--model": st.one_of(st.sampled_from(["bert-large", "gpt2-xl", "opt-350m"]), TEXT),
            "--hf-config": paths,
            "--seq": ANY,
            "--batch": st.one_of(st.sampled_from(["64", "512"]), ANY),
            "--optimizer": st.one_of(st.sampled_from(["sgd", "adam"]), TEXT),
            "--max-tp": ANY,
            "--devices": _mix("1", "8", "64", "4096"),
            "--link-gibps": ANY,
            "--network": st.one_of(st.sampled_from(["a100-selene", "nope"]), paths),
            "--hbm": st.one_of(st.sampled_from(["32", "0.5,80", "1e-3", "32,x"]), ANY),
            "--mbs": st.one_of(st.sampled_from(["1,2", "4", "3", "8,8"]), ANY),
            "--recompute": st.one_of(st.sampled_from(["both", "on", "off"]), TEXT),
            "--area-budget": _mix("3.36"),
            "--area-band": ANY,
            "--strategy": st.one_of(st.sampled_from(["exact", "phaze", "exhaustive"]), TEXT),
            "--jobs": _mix("1"),
            "--force": None,
        }
    if command == "models":
        return {"--seq": ANY, "--mbs": ANY, "--tensor-width": ANY}
    if command == "arch":
        flags = {f: ANY for f in ("--num-tc", "--tc-width", "--tc-depth", "--num-vc")}
        flags.update(
            {
                "--preset": st.one_of(st.sampled_from(["phaze", "tpuv4-like"]), TEXT),
                "--vc-width": ANY,
                "--glb-mib": ANY,
                "--json": None,
            }
        )
        return flags
    if command == "schedule":
        return {
            "--model": st.one_of(st.sampled_from(["bert-large", "opt-350m"]), TEXT),
            "--seq": ANY,
            "--mbs": ANY,
            "--tensor-width": ANY,
            "--layer": st.one_of(st.sampled_from(["embedding", "block", "head", "0"]), ANY),
            "--pass": st.one_of(st.sampled_from(["fwd", "bwd"]), TEXT),
            "--arch": st.one_of(st.sampled_from(["phaze", "tpuv4-like"]), TEXT),
            "--num-tc": ANY,
            "--tc-width": ANY,
            "--tc-depth": ANY,
            "--num-vc": ANY,
            "--vc-width": ANY,
            "--glb-mib": ANY,
            "--latencies": paths,
            "--method": st.one_of(st.sampled_from(["auto", "enumerate", "ilp"]), TEXT),
            "--time-limit": _mix("0.2"),
            "--json": None,
        }
    return {"--instance": paths, "--json": None}


@st.composite
def argvs(draw, command: str, files: dict):
    flags = _flags(command, files)
    chosen = draw(st.lists(st.sampled_from(sorted(flags)), max_size=4, unique=True))
    argv = [command]
    for flag in chosen:
        argv.append(flag)
        if flags[flag] is not None:
            argv.append(draw(flags[flag]))
    if command == "place" and "--instance" not in chosen:
        argv += ["--instance", str(files["instance"])]
    if command == "search" and "--area-budget" not in chosen:
        argv += ["--area-budget", "3.36"]  # 3 architectures (the default space has 29,360)
    return argv


#: Exit statuses of a run that did not fail: 0, and "nothing fits" (place 1, search 3).
_OK = {"search": {0, 3}, "models": {0}, "arch": {0}, "schedule": {0}, "place": {0, 1}}
#: Examples per command: the search's successes take about a second each.
_EXAMPLES = {"search": 15, "models": 40, "arch": 60, "schedule": 25, "place": 40}


@pytest.mark.parametrize("command", sorted(_OK))
def test_cli_succeeds_or_exits_2_with_one_line(command, tmp_path_factory, capsys):
    files = _files(tmp_path_factory.mktemp("files"))
    runs = itertools.count()

    @settings(
        max_examples=_EXAMPLES[command],
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(argvs(command, files))
    def check(argv):
        if command == "search":
            argv = [*argv, "--no-progress", "--out", str(files["dir"] / f"out{next(runs)}")]
        capsys.readouterr()
        status = main(argv)
        err = capsys.readouterr().err
        assert "Traceback" not in err, (argv, err)
        if status == 2:
            assert err.count("\n") == 1 and err.endswith("\n"), (argv, err)
            assert "error:" in err, (argv, err)
        else:
            assert status in _OK[command], (argv, status, err)

    check()
