"""The command's options, fuzzed (issue 11): a bad value exits with status 2 and one line on
standard error (``optlab: error: ...``), never a traceback.

Every option that takes a value is enumerated from the parser itself (``build_parser``), so a new
option is fuzzed without editing this file. ``main([...])`` runs in process for speed; training
itself is replaced by a stub that stops the command once the data, the model and the
transformation are built (every check of a value runs before that point), so an accepted value
costs no training. A few cases go through the installed command in a subprocess.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optlab.cli.main import build_parser, main

# Values a user may mistype; hypothesis adds its own short texts and numbers.
HOSTILE = [
    "abc",
    "",
    " ",
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "1e400",
    "1e-400",
    "2.5",
    "0.9999",
    "1,,2",
    "-",
    "None",
    "[1]",
    "9" * 30,
]

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def value_options(command: str) -> list[str]:
    """The options of ``optlab <command>`` that take a value (long spelling)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(
        action.option_strings[-1]
        for action in sub.choices[command]._actions
        if action.option_strings and action.nargs != 0 and action.dest != "help"
    )


COMMANDS = ("train", "compare", "evaluate", "predict")


class Reached(Exception):
    """Raised by the stub in place of training: the command accepted every value."""


@pytest.fixture
def no_training(monkeypatch):
    # The module (optlab.train.fit, the attribute, is the function it defines).
    module = importlib.import_module("optlab.train.fit")

    def stub(*args, **kwargs):
        raise Reached

    monkeypatch.setattr(module, "fit", stub)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One real (tiny) run for evaluate and predict to read."""
    run = tmp_path_factory.mktemp("fuzz-cli") / "run"
    argv = ["train", "--dataset", "blobs", "--epochs", "1", "--hidden", "4", "--no-progress"]
    assert main([*argv, "--output", str(run)]) == 0
    return run


def base_argv(command: str, run, tmp_path) -> list[str]:
    out = str(tmp_path / "out")
    if command == "train":
        return ["train", "--dataset", "blobs", "--hidden", "4", "--output", out, "--no-progress"]
    if command == "compare":
        return ["compare", "--dataset", "blobs", "--hidden", "4", "--output", out]
    if command == "evaluate":
        return ["evaluate", str(run)]
    return ["predict", str(run), "--output", str(tmp_path / "predictions.csv")]


def check_outcome(argv: list[str], capsys) -> None:
    """Exit 2 with one line, or acceptance (status 0, or the training stub reached)."""
    try:
        status = main(argv)
    except Reached:
        return
    err = capsys.readouterr().err
    assert status in (0, 2), (argv, status, err)
    if status == 2:
        assert err.startswith("optlab: error: ") and err.count("\n") == 1, (argv, err)
    assert "Traceback" not in err, (argv, err)


def test_every_command_has_options_to_fuzz():
    for command in COMMANDS:
        assert value_options(command), command
    assert "--validation-split" in value_options("train")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_bad_option_value_exits_2_with_one_line(command, run_dir, tmp_path, capsys, no_training):
    options = value_options(command)

    @settings(FUZZ, max_examples=30 if command == "train" else 12)
    @given(
        option=st.sampled_from(options),
        value=st.sampled_from(HOSTILE) | st.text(max_size=4) | st.floats().map(repr),
    )
    def check(option, value):
        argv = [*base_argv(command, run_dir, tmp_path), option, value]
        check_outcome(argv, capsys)
        capsys.readouterr()

    check()


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--lr", "abc"],
        ["train", "--dataset", "blobs", "--validation-split", "1e400"],
        ["compare", "--optimizers", ",,"],
    ],
    ids=["lr-text", "split-overflow", "optimizers-empty"],
)
def test_the_installed_command_answers_in_one_line(argv, tmp_path):
    """Through a real process: what a user sees, with nothing caught by a test harness."""
    proc = subprocess.run(
        [sys.executable, "-m", "optlab.cli.main", *argv, "--output", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("optlab: error: ") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
