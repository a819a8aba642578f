"""The command's options, fuzzed (issue 11): a bad value exits with status 2 and one line on
standard error (``optlab: error: ...``), never a traceback.

Every command, and every option that takes a value, is enumerated from the parser itself
(``build_parser``), so a new command or option is fuzzed without editing this file (a command
needs only a base command line in :func:`base_argv`). ``main([...])`` runs in process for speed;
the work each command does once its arguments are checked (training, the range test, the
sanity checks, the sweep, the benchmark suite, the diagnostics figure) is replaced by a stub
that stops the command there (every check of a value runs before that point), so an accepted
value costs no training. A few cases go through the installed command in a subprocess.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import subprocess
import sys

import numpy as np
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


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def value_options(command: str) -> list[str]:
    """The options of ``optlab <command>`` that take a value (long spelling)."""
    return sorted(
        action.option_strings[-1]
        for action in _subparsers()[command]._actions
        if action.option_strings and action.nargs != 0 and action.dest != "help"
    )


def has_positional(command: str) -> bool:
    """Whether ``optlab <command>`` takes a positional argument (a run directory)."""
    return any(not a.option_strings for a in _subparsers()[command]._actions)


COMMANDS = tuple(sorted(_subparsers()))

# Where each command's work starts once its arguments are checked: ``(module, function)``,
# replaced by a stub raising Reached. The module is patched, not the caller: the commands
# import these functions when they run.
WORK = [
    ("optlab.train.fit", "fit"),  # train, compare
    ("optlab.tune.lr_find", "lr_find"),  # lr-find
    ("optlab.tune.sanity", "sanity_checks"),  # check
    ("optlab.tune.sweep", "sweep"),  # sweep, compare --tune
    ("optlab.train.suite", "run_suite"),  # bench
    ("optlab.cli.diagnose", "write"),  # diagnose: the verdicts and the figure
]


class Reached(Exception):
    """Raised by the stubs in place of the work: the command accepted every value."""


@pytest.fixture
def no_training(monkeypatch):
    def stub(*args, **kwargs):
        raise Reached

    for module, name in WORK:
        monkeypatch.setattr(importlib.import_module(module), name, stub)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One real (tiny) run for evaluate, predict and diagnose to read, and inputs for predict
    (``inputs.npy`` beside it: blobs has 2 features)."""
    run = tmp_path_factory.mktemp("fuzz-cli") / "run"
    argv = ["train", "--dataset", "blobs", "--epochs", "1", "--hidden", "4", "--no-progress"]
    assert main([*argv, "--output", str(run)]) == 0
    np.save(run.parent / "inputs.npy", np.linspace(-1.0, 1.0, 6).reshape(3, 2))
    return run


def base_argv(command: str, run, tmp_path) -> list[str]:
    """A valid command line of ``command`` (small: blobs, 4 hidden units), which the fuzzed
    option is appended to (the last value of an option wins)."""
    out = str(tmp_path / "out")
    small = ["--dataset", "blobs", "--hidden", "4"]
    return {
        "train": ["train", *small, "--output", out, "--no-progress"],
        "compare": ["compare", *small, "--output", out],
        "evaluate": ["evaluate", str(run)],
        "predict": [
            "predict",
            str(run),
            "--input",
            str(run.parent / "inputs.npy"),
            "--output",
            str(tmp_path / "predictions.csv"),
            "--overwrite",
        ],
        "diagnose": ["diagnose", str(run)],
        "lr-find": ["lr-find", *small, "--output", out],
        "check": ["check", *small],
        "sweep": ["sweep", *small, "--param", "lr=1e-3:1e-1:log", "--trials", "2", "--output", out],
        "bench": ["bench", "--quick", "--output", out],
    }[command]


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
    assert set(COMMANDS) >= {"train", "compare", "evaluate", "predict", "diagnose", "lr-find"}
    assert set(COMMANDS) >= {"check", "sweep", "bench"}
    for command in COMMANDS:
        assert value_options(command) or has_positional(command), command
    assert "--validation-split" in value_options("train")
    assert "--param" in value_options("sweep") and has_positional("diagnose")


@pytest.fixture(scope="module")
def damaged_runs(run_dir, tmp_path_factory) -> list[str]:
    """RUN arguments that are not runs: a file, an empty directory, a history.json that is not
    JSON or not a history, a run whose diagnostics.npz is garbage."""
    root = tmp_path_factory.mktemp("fuzz-runs")
    (root / "file").write_text("x")
    (root / "empty").mkdir()
    for name, text in (("garbled", "{"), ("not-history", '{"epoch": 3}')):
        (root / name).mkdir()
        (root / name / "history.json").write_text(text)
    shutil.copytree(run_dir, root / "bad-npz")
    (root / "bad-npz" / "diagnostics.npz").write_bytes(b"PK\x03\x04garbage")
    return [str(root / n) for n in ("file", "empty", "garbled", "not-history", "bad-npz")]


@pytest.mark.parametrize("command", COMMANDS)
def test_each_base_command_line_is_accepted(command, run_dir, tmp_path, capsys, no_training):
    """The baseline each fuzzed call varies reaches the command's work (or succeeds), so a
    refusal below is the hostile value's doing."""
    try:
        status = main(base_argv(command, run_dir, tmp_path))
    except Reached:
        status = "reached"
    assert status in ("reached", 0), (status, capsys.readouterr().err)


def test_a_damaged_run_is_refused_in_one_line(damaged_runs, capsys, no_training):
    for run in damaged_runs:
        # evaluate reads no diagnostics.npz: the run with a garbage one is a run to it
        for command in ("diagnose",) if run.endswith("bad-npz") else ("diagnose", "evaluate"):
            assert main([command, run]) == 2, (command, run)
            err = capsys.readouterr().err
            assert err.startswith("optlab: error: ") and err.count("\n") == 1, err


# Examples per command: more where there are more options (each call costs milliseconds up to
# a second: the data and the model are built before the stub).
EXAMPLES = {"train": 30, "sweep": 20, "lr-find": 16, "compare": 14, "check": 14, "diagnose": 8}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_bad_option_value_exits_2_with_one_line(
    command, run_dir, damaged_runs, tmp_path, capsys, no_training
):
    options = value_options(command) + (["RUN"] if has_positional(command) else [])
    hostile = st.sampled_from(HOSTILE) | st.text(max_size=4) | st.floats().map(repr)

    @settings(FUZZ, max_examples=EXAMPLES.get(command, 12))
    @given(data=st.data())
    def check(data):
        option = data.draw(st.sampled_from(options), label="option")
        argv = base_argv(command, run_dir, tmp_path)
        if option == "RUN":  # the positional: the run directory
            value = data.draw(st.sampled_from(damaged_runs) | hostile, label="RUN")
            argv = [command, value, *argv[2:]]
        else:
            argv = [*argv, option, data.draw(hostile, label="value")]
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
