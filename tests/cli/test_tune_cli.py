"""``optlab sweep``, ``lr-find`` and ``check`` through ``main([...])``: tiny models on the blobs
dataset, one epoch. The installed command's own process (entry point, one-line errors, the
compilation cache) is tested in ``test_subprocess.py``; ``compare --tune`` with the other
``compare`` checks in ``test_main.py``."""

import csv
import json
import shlex

import numpy as np
import pytest

from optlab.cli.main import build_parser, main
from tests.cli.test_main import _error

SMALL = ["--dataset", "blobs", "--hidden", "4", "--seed", "1"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sweep", "--param", "lr=1e-1:1e-3:log"], "--param lr: needs finite LO < HI"),
        (["sweep", "--param", "lr=0:1:log"], "--param lr: a log range needs LO > 0"),
        (["sweep", "--param", "lr=1:2:exp"], "--param lr: the scale must be log, lin or int"),
        (["sweep", "--param", "width=1:2"], "--param width: not a hyperparameter of adam"),
        (["sweep", "--lr", "0.1", "--param", "lr=1e-3:1e-1:log"], "--lr fixes lr"),
        (["lr-find", "--optimizer", "lbfgs"], "lbfgs chooses its own step by line search"),
        (["lr-find", "--min-lr", "1", "--max-lr", "0.1"], "--min-lr must be < --max-lr"),
    ],
)
def test_refusals_are_one_line_with_status_2(argv, message, tmp_path, capsys):
    assert main([*argv, "--output", str(tmp_path / "out")]) == 2
    assert message in _error(capsys)
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_sweep_writes_the_table_and_the_best_run_as_a_train_command(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", *SMALL, "--optimizer", "momentum", "--epochs", "1", "--trials", "3"]
    argv += ["--seeds", "2", "--param", "lr=1e-3:0.3:log", "--param", "momentum=0.5:0.95"]
    assert main([*argv, "--output", str(out)]) == 0
    stdout = capsys.readouterr().out
    with open(out / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {r["seed"] for r in rows} == {"1", "2"}
    # the best configuration: the lowest mean over seeds of the best val_loss, from the CSV
    scores: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        scores.setdefault((r["lr"], r["momentum"]), []).append(float(r["best_val_loss"]))
    lr, momentum = min(scores, key=lambda k: np.mean(scores[k]))
    best = json.loads((out / "best.json").read_text())
    assert best["config"] == pytest.approx({"lr": float(lr), "momentum": float(momentum)})
    assert 1e-3 <= best["config"]["lr"] <= 0.3 and 0.5 <= best["config"]["momentum"] <= 0.95
    command = shlex.split(best["command"])
    assert command[:2] == ["optlab", "train"] and best["command"] in stdout
    args = build_parser().parse_args(command[1:])  # a command line optlab train accepts
    assert (args.optimizer, args.epochs, args.seed) == ("momentum", 1, 1)
    assert args.lr == pytest.approx(float(lr), rel=1e-5)
    assert args.momentum == pytest.approx(float(momentum), rel=1e-5)
    assert {p.name for p in out.iterdir()} >= {"sweep.json", "metric.png", "curves.png"}
    assert main([*argv, "--output", str(out)]) == 2  # never overwritten unasked
    assert "already holds" in _error(capsys)


def test_lr_find_and_check(tmp_path, capsys):
    out = tmp_path / "lr"
    assert main(["lr-find", *SMALL, "--num-steps", "30", "--output", str(out)]) == 0
    stdout = capsys.readouterr().out
    record = json.loads((out / "lr_find.json").read_text())
    np.testing.assert_allclose(record["lrs"], np.geomspace(1e-7, 10.0, 30), rtol=1e-12)
    counted = record["num_counted"]
    assert all(v is not None for v in record["smoothed"][:counted])
    assert all(v is None for v in record["smoothed"][counted:])
    take = record["suggestions"]["valley"]
    assert 1e-7 < take < 10.0 and f"--lr {take:.6g}" in stdout
    assert (out / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    code = main(["check", *SMALL, "--json"])
    verdicts = json.loads(capsys.readouterr().out)
    assert [v["check"] for v in verdicts][:2] == ["initial_loss", "l2_raises_loss"]
    failed = [v for v in verdicts if v["verdict"] == "FAIL"]
    assert code == (1 if failed else 0)
    assert all(v["advice"] for v in failed)


def test_the_tuning_commands_use_the_compilation_cache(monkeypatch, tmp_path, capsys):
    """As ``optlab train`` does: the installed command (``compilation_cache=True``) turns JAX's
    persistent cache on once the arguments are checked, before the data are loaded."""
    from optlab.cli import commands
    from optlab.train import recipes

    calls = []
    monkeypatch.setattr(commands, "enable_compilation_cache", calls.append)

    def stop(config):
        raise ValueError(f"stopped before loading {config.dataset}")

    monkeypatch.setattr(recipes, "load_data", stop)
    sweep = ["sweep", "--param", "lr=1e-3:1e-1:log", "--output", str(tmp_path / "sweep")]
    for argv in (["lr-find", "--output", str(tmp_path / "lr")], ["check"], sweep):
        assert main([*argv, *SMALL], compilation_cache=True) == 2
        assert "stopped before loading blobs" in _error(capsys)
    assert calls == [True, True, True]
