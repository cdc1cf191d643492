"""Command line: output and one-line errors with exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from phaze.cli import main


def test_models_lists_every_preset(capsys):
    from phaze.models import preset_names

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in preset_names():
        assert name in out
    assert "6.738B" in out  # llama2-7b parameters


def test_models_skips_presets_a_width_does_not_fit(capsys):
    assert main(["models", "--tp", "8"]) == 0
    out = capsys.readouterr().out
    assert "skipped gpt2-xl: tensor width t=8 must divide heads (25)" in out


@pytest.mark.parametrize("argv", [["models", "--mbs", "0"], ["models", "--seq", "100000"]])
def test_bad_input_exits_2_with_one_line(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "error:" in err
    assert "Traceback" not in err


def test_python_dash_m_runs_the_cli():
    done = subprocess.run(
        [sys.executable, "-m", "phaze", "models", "--seq", "128"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "gpt3-175b" in done.stdout
