"""The ``optlab`` command: train, resume, compare, help, and the one-line error contract."""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from optlab.cli.main import build_parser, main

REPO = Path(__file__).resolve().parents[2]
SMALL = ["--hidden", "16", "--batch-size", "64", "--no-progress"]


def test_train_then_resume(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--output", str(run), *SMALL]) == 0
    first = json.loads((run / "history.json").read_text())
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.count("adam: loss") == 2 and "val_accuracy" in out
    for name in ("history.json", "history.csv", "curves.png", "config.json"):
        assert (run / name).is_file(), name
    resumed = json.loads((run / "history.json").read_text())
    # The resumed run keeps epoch 1 from the checkpoint and adds epoch 2 (fit's resume is
    # checked bitwise against a straight run in tests/train/test_checkpoint.py).
    assert resumed["epoch"] == [1, 2]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
        assert resumed[key][0] == first[key][0], key
    assert (run / "checkpoints" / "2").is_dir()
    assert json.loads((run / "config.json").read_text())["epochs"] == 2


def test_compare_writes_table_png_and_json(tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(
        ["compare", "--optimizers", "sgd,lbfgs", "--epochs", "2", "--output", str(out), *SMALL]
    )
    assert code == 0
    text = capsys.readouterr().out
    header = next(line for line in text.splitlines() if line.startswith("optimizer"))
    assert header.split() == [
        "optimizer",
        "train",
        "loss",
        "train",
        "acc",
        "val",
        "loss",
        "val",
        "acc",
        "best",
        "epoch",
        "time",
        "s",
        "steps/s",
    ]
    result = json.loads((out / "compare.json").read_text())
    assert list(result["runs"]) == ["sgd", "lbfgs (full batch)"]
    png = (out / "compare.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    for run in result["runs"].values():
        assert run["epochs"] == 2
        assert 0.0 <= run["val_accuracy"] <= 1.0
        np.testing.assert_allclose(run["val_loss"], run["history"]["val_loss"][-1])
    assert result["runs"]["lbfgs (full batch)"]["batch_size"] == 1437  # digits' training rows
    assert result["runs"]["sgd"]["optimizer"] == {"name": "sgd", "learning_rate": 0.1}


def test_help_documents_every_option():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert action.help and len(action.help) > 10, (name, action.dest)
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--help"])
    assert exit_info.value.code == 0


@pytest.mark.parametrize(
    "argv, expected",
    [
        pytest.param(["train", "--optimizer", "adamm"], "did you mean adam", id="optimizer"),
        pytest.param(
            ["compare", "--optimizers", "sgd,rmsprp"],
            "did you mean rmsprop",
            id="compare-optimizer",
        ),
        pytest.param(["train", "--activation", "rellu"], "did you mean relu", id="activation"),
        pytest.param(["train", "--opt", "bogus=1"], "adam does not take bogus", id="opt-name"),
        pytest.param(["train", "--opt", "b1"], "--opt takes NAME=VALUE", id="opt-form"),
        pytest.param(["train", "--opt", "b1=1.5"], "adam: b1 must be in [0, 1)", id="opt-range"),
        pytest.param(["train", "--lr", "-0.1"], "learning rate must be >= 0", id="negative-lr"),
        pytest.param(["train", "--lr", "fast"], "learning rate must be a number", id="text-lr"),
        pytest.param(  # an empty directory: the test must not depend on what is installed
            ["train", "--dataset", "fashion_mnist", "--data-dir", "{empty}"],
            "apt-get install",
            id="missing-dataset",
        ),
        pytest.param(["train", "--dataset", "digitz"], "did you mean digits", id="dataset"),
        pytest.param(["train", "--epochs", "0"], "epochs must be >= 1", id="epochs"),
        pytest.param(["train", "--bogus"], "unrecognized arguments: --bogus", id="argparse"),
        pytest.param(
            ["train", "--resume", "/nonexistent/run"], "no readable config.json", id="resume"
        ),
    ],
)
def test_bad_input_is_one_line_and_status_2(argv, expected, capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    argv = [a.replace("{empty}", str(tmp_path / "empty")) for a in argv]
    assert main([*argv, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("optlab: error: "), err
    assert expected in err


def test_unwritable_output_directory(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["train", "--output", str(blocker / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("optlab: error: cannot write to the output directory")
    assert err.count("\n") == 1


def test_the_installed_command_fails_with_one_line_and_no_traceback(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "optlab.cli.main",
            "train",
            "--optimizer",
            "adamm",
            "--output",
            str(tmp_path),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("optlab: error: unknown optimizer 'adamm'; did you mean adam")


def test_train_options_reach_the_optimizer(tmp_path):
    """Schedule with warmup, clipping, weight decay, norm and dropout: the logged learning rate
    follows linear warmup then cosine decay, written out here."""
    run = tmp_path / "run"
    argv = [
        "train",
        "--optimizer",
        "nesterov",
        "--lr",
        "0.05",
        "--schedule",
        "cosine",
        "--warmup-epochs",
        "1",
        "--clip-norm",
        "1.0",
        "--weight-decay",
        "1e-4",
        "--norm",
        "batch",
        "--dropout",
        "0.1",
        "--activation",
        "tanh",
        "--epochs",
        "3",
        "--early-stopping",
        "5",
        "--output",
        str(run),
        *SMALL,
    ]
    assert main(argv) == 0
    history = json.loads((run / "history.json").read_text())
    spe = 1437 // 64  # digits' training rows per batch of 64
    total = 3 * spe
    expected = []
    for epoch in range(3):
        t = (epoch + 1) * spe - 1  # the count of the epoch's last update
        if t < spe:
            expected.append(0.05 * t / spe)
        else:
            expected.append(0.05 * 0.5 * (1 + np.cos(np.pi * (t - spe) / (total - spe))))
    np.testing.assert_allclose(history["learning_rate"], expected, rtol=1e-5)
    config = json.loads((run / "config.json").read_text())
    assert config["optimizer"] == "nesterov" and config["norm"] == "batch"
