"""``optlab train --diagnostics`` and ``optlab diagnose RUN``: the files a monitored run holds,
a resumed run that keeps monitoring, the verdicts printed and written, one-line refusals."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import optlab as ol
from optlab.cli.diagnose import load_history
from optlab.cli.main import main

REPO = Path(__file__).resolve().parents[2]
SMALL = ["--hidden", "16", "--batch-size", "128", "--no-progress"]


@pytest.fixture(scope="module")
def monitored(tmp_path_factory):
    """Three epochs at a learning rate 1e4 times too low: the loss stays flat."""
    run = tmp_path_factory.mktemp("monitored") / "run"
    argv = ["train", "--epochs", "3", "--lr", "1e-7", "--diagnostics", "--output", str(run)]
    assert main([*argv, *SMALL]) == 0
    return run


def test_a_monitored_run_writes_statistics_verdicts_and_figure(monitored, capsys):
    for name in ("diagnostics.npz", "diagnostics.json", "diagnostics.png", "history.json"):
        assert (monitored / name).is_file(), name
    history = load_history(str(monitored))
    assert history.diagnostics.epoch == [1, 2, 3]
    assert history.diagnostics.rows("activation_std") == ["blocks/0/act"]
    written = json.loads((monitored / "diagnostics.json").read_text())["findings"]
    codes = [f["code"] for f in written]
    assert "lr_too_low" in codes and "update_ratio" in codes
    assert codes == [f.code for f in ol.diagnostics.diagnose(history)]
    assert main(["diagnose", str(monitored), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["findings"] == written


def test_resume_keeps_monitoring(monitored, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(monitored, run)
    before = load_history(str(run)).diagnostics
    assert main(["train", "--resume", str(run), "--epochs", "4", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "diagnostics: [warning] lr_too_low" in out
    after = load_history(str(run)).diagnostics
    assert after.epoch == [1, 2, 3, 4]
    np.testing.assert_array_equal(after["grad_norm"][:, :3], before["grad_norm"])


def test_diagnose_a_run_without_statistics(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    history = {"epoch": [1, 2, 3], "loss": [1.0, 1.2, 0.9], "val_loss": [1.0, None, 1.0]}
    (run / "history.json").write_text(json.dumps(history))
    assert main(["diagnose", str(run)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "diagnostics: no finding: the statistics look healthy",
        f"diagnostics: wrote {run / 'diagnostics.png'}",
    ]
    assert (run / "diagnostics.png").is_file() and not (run / "diagnostics.npz").exists()


@pytest.mark.parametrize(
    "setup, message",
    [
        (None, "is not a directory"),
        ("", "holds no history.json: not a run of optlab train"),
        ("{", "history.json: Expecting property name"),
        ('{"loss": [1]}', "history.json: not a history record (no epoch list)"),
    ],
)
def test_diagnose_refuses_what_is_not_a_run(tmp_path, capsys, setup, message):
    run = tmp_path / "run"
    if setup is not None:
        run.mkdir()
        if setup:
            (run / "history.json").write_text(setup)
    assert main(["diagnose", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("optlab: error: ") and message in err


def test_the_installed_command_refuses_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "optlab.cli.main", "diagnose", str(tmp_path / "nothing")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"optlab: error: RUN {str(tmp_path / 'nothing')!r} is not a directory\n"
