"""The ``optlab`` command in process: train, resume, compare, evaluate, predict, refusals.

The failure paths that must hold for the installed command (one line, exit 2, no traceback)
are run through a subprocess in ``test_subprocess.py``; here ``main([...])`` keeps them fast.
"""

import argparse
import contextlib
import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from optlab.cli.main import build_parser, main

SMALL = ["--hidden", "16", "--batch-size", "64", "--no-progress"]


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("optlab: error: "), err
    assert "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-epoch run: cosine schedule (horizon 2 epochs), early stopping that does not stop."""
    run = tmp_path_factory.mktemp("trained") / "run"
    argv = ["train", "--epochs", "2", "--schedule", "cosine", "--lr", "0.01"]
    assert main([*argv, "--early-stopping", "5", "--output", str(run), *SMALL]) == 0
    return run


def test_a_run_writes_its_files(trained):
    for name in ("config.json", "run.json", "history.json", "history.csv", "curves.png"):
        assert (trained / name).is_file(), name
    assert (trained / "model").is_dir() and (trained / "checkpoints" / "2").is_dir()
    history = json.loads((trained / "history.json").read_text())
    assert history["epoch"] == [1, 2]
    with open(trained / "history.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["1", "2"]
    record = json.loads((trained / "run.json").read_text())
    assert record["completed_epochs"] == 2 and record["task"] == "classification"
    assert record["restored_epoch"] is None and record["stopped_early_at"] is None
    config = json.loads((trained / "config.json").read_text())
    assert (config["schedule"], config["schedule_epochs"], config["epochs"]) == ("cosine", 2, 2)


def _damage(checkpoint: Path) -> None:
    """Flips bytes in the largest array file of a checkpoint folder."""
    target = max((p for p in checkpoint.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(target.read_bytes())
    for i in range(0, len(data), max(len(data) // 64, 1)):
        data[i] ^= 0xFF
    target.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def resumed(trained, tmp_path_factory):
    """``trained`` copied, its latest checkpoint (epoch 2) damaged, then resumed to 3 epochs:
    epoch 2 runs again from checkpoint 1 and epoch 3 goes past the schedule's horizon.
    Returns the run directory, standard output and standard error."""
    run = tmp_path_factory.mktemp("resumed") / "run"
    shutil.copytree(trained, run)
    _damage(run / "checkpoints" / "2")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main(["train", "--resume", str(run), "--epochs", "3", "--no-progress"]) == 0
    return run, out.getvalue(), err.getvalue()


def test_resume_continues_past_the_horizon_at_the_schedules_final_value(trained, resumed):
    run, stdout, _ = resumed
    before = json.loads((trained / "history.json").read_text())
    out = stdout.splitlines()
    assert len(out) == 2 and "epoch 3 goes past the cosine schedule's horizon of 2 epochs" in out[0]
    assert out[1].startswith(f"adam: saved {run / 'model'}: val_loss ")
    after = json.loads((run / "history.json").read_text())
    assert after["epoch"] == [1, 2, 3]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
        assert after[key][:2] == before[key], key  # epoch 2 again, from checkpoint 1: exactly
    # Each epoch logs its last step's rate: epoch 3 stays at epoch 2's, the value at T - 1.
    steps = 1437 // 64
    expected = 0.005 * (1 + np.cos(np.pi * (2 * steps - 1) / (2 * steps)))
    assert after["learning_rate"][1] == pytest.approx(expected, rel=1e-4)  # float32 cancels
    assert after["learning_rate"][2] == after["learning_rate"][1]
    record = json.loads((run / "run.json").read_text())
    assert record["completed_epochs"] == 3
    # The final line reports the saved model's validation metrics, as run.json records them.
    assert f"val_loss {record['metrics']['val_loss']:.4f}" in out[1]
    assert json.loads((run / "config.json").read_text())["schedule_epochs"] == 2


def test_early_stopping_restores_and_saves_the_best_epoch(tmp_path, capsys):
    """Validation labels are the training labels flipped: the better the model fits the
    training rows, the worse its validation loss, so epoch 1 is the best one."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:64], y_test=1 - y[:64])
    run = tmp_path / "run"
    argv = ["train", "--dataset", str(tmp_path / "d.npz"), "--epochs", "6", "--lr", "0.05"]
    assert main([*argv, "--early-stopping", "1", "--output", str(run), *SMALL]) == 0
    final = capsys.readouterr().out.strip().splitlines()[-1]
    history = json.loads((run / "history.json").read_text())
    assert history["epoch"] == [1, 2] and history["val_loss"][1] > history["val_loss"][0]
    assert "restored epoch 1 (early stopping stopped the run at epoch 2)" in final
    record = json.loads((run / "run.json").read_text())
    assert (record["restored_epoch"], record["stopped_early_at"]) == (1, 2)
    # The saved model is epoch 1's: its metrics are that epoch's validation values.
    np.testing.assert_allclose(record["metrics"]["val_loss"], history["val_loss"][0], rtol=1e-5)
    assert f"val_loss {history['val_loss'][0]:.4f}" in final
    assert main(["train", "--resume", str(run), "--epochs", "8"]) == 0
    assert "early stopping ended it at epoch 2" in capsys.readouterr().out


def test_a_diverging_run_is_stopped_and_reported_in_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--optimizer", "sgd", "--lr", "1e30", "--epochs", "3", "--output", str(run)]
    assert main([*argv, *SMALL]) == 2
    err = _error(capsys)
    assert "training stopped at epoch 1" in err and "non-finite loss or gradient" in err
    assert (run / "history.json").is_file() and (run / "model").is_dir()


def test_a_damaged_latest_checkpoint_is_skipped_with_one_line(trained, resumed, tmp_path, capsys):
    run, _, stderr = resumed
    assert stderr.count("\n") == 1 and stderr.startswith("optlab: warning: ")
    assert f"{run / 'checkpoints' / '2'} is damaged" in stderr
    history = json.loads((run / "history.json").read_text())
    assert history["epoch"] == [1, 2, 3]  # epoch 2 ran again from checkpoint 1
    assert history["loss"][1] == json.loads((trained / "history.json").read_text())["loss"][1]
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    for checkpoint in (run / "checkpoints").iterdir():  # with none intact: one line, exit 2
        _damage(checkpoint)
    assert main(["train", "--resume", str(run), "--epochs", "3", "--no-progress"]) == 2
    assert "no intact checkpoint" in _error(capsys)


def test_output_holding_a_run_is_refused_and_overwrite_replaces_it(trained, tmp_path, capsys):
    assert main(["train", "--epochs", "1", "--output", str(trained), *SMALL]) == 2
    err = _error(capsys)
    assert f"--resume {trained}" in err and "--overwrite" in err
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "notes.txt").write_text("mine")
    assert main(["train", "--epochs", "1", "--output", str(run), "--overwrite", *SMALL]) == 0
    assert json.loads((run / "history.json").read_text())["epoch"] == [1]
    assert not (run / "checkpoints" / "2").exists()  # the old run's checkpoints are gone
    assert (run / "notes.txt").read_text() == "mine"  # files optlab did not write are kept
    other = tmp_path / "other"
    other.mkdir()
    (other / "data.csv").write_text("1,2\n")
    assert main(["train", "--output", str(other), *SMALL]) == 2
    assert "holds no optlab run" in _error(capsys)


def test_resume_refuses_changes_and_leaves_a_finished_run_alone(trained, capsys):
    before = (trained / "history.json").read_text()
    argv = ["train", "--resume", str(trained), "--lr", "0.5", "--hidden", "16", "--optimizer"]
    assert main([*argv, "sgd"]) == 2
    err = _error(capsys)
    # --hidden 16 is the run's own value: only the two changes are named.
    assert "--lr 0.5" in err and "--optimizer sgd" in err and "--hidden" not in err
    assert main(["train", "--resume", str(trained), "--no-progress"]) == 0
    assert "is finished (2 of 2 epochs done)" in capsys.readouterr().out
    assert main(["train", "--resume", str(trained), "--epochs", "1"]) == 2
    assert "already completed 2 epochs" in _error(capsys)
    assert (trained / "history.json").read_text() == before


def test_compare_tunes_each_learning_rate_and_prints_rates_schedules_and_progress(tmp_path, capsys):
    """``compare --tune 3``: the mini-batch optimizer trains at the best of 3 learning rates
    around its default, the full-batch L-BFGS (no learning rate to tune) as it is; the table
    shows the rates used."""
    import optlab as ol
    from optlab.optimizers.registry import optimizer_spec

    out = tmp_path / "cmp"
    argv = ["compare", "--dataset", "blobs", "--hidden", "4", "--seed", "1", "--tune", "3"]
    argv += ["--optimizers", "sgd,lbfgs", "--epochs", "2", "--output", str(out)]
    assert main([*argv, "--batch-size", "64"]) == 0
    stdout = capsys.readouterr().out
    lines = stdout.splitlines()
    assert sum(line.startswith("sgd ") and "epoch 1/2" in line for line in lines) == 1
    assert sum(line.startswith("lbfgs (full batch)") and "epoch 2/2" in line for line in lines) == 1
    header = next(line for line in lines if line.startswith("optimizer"))
    assert header.split()[:3] == ["optimizer", "lr", "schedule"]
    result = json.loads((out / "compare.json").read_text())
    runs = result["runs"]
    assert list(runs) == ["sgd", "lbfgs (full batch)"]
    default = optimizer_spec("sgd").defaults["learning_rate"]
    lr = runs["sgd"]["learning_rate"]
    assert default / 30 <= lr <= default * 30 and not np.isclose(lr, default)
    assert f"sgd: tuned lr {lr:.3g}" in stdout
    row = next(line for line in lines if line.startswith("sgd ") and "epoch" not in line)
    assert row.split()[1:3] == [f"{lr:.3g}", "constant"]
    assert not any(line.startswith("lbfgs: tuned") for line in lines)
    lbfgs = runs["lbfgs (full batch)"]
    assert (
        lbfgs["batch_size"] == len(ol.data.load("blobs").x_train) and lbfgs["learning_rate"] is None
    )
    for r in runs.values():
        assert r["history"]["epoch"] == [1, 2]
        i = int(np.argmin(r["history"]["val_loss"]))
        assert r["best_epoch"] == i + 1 and r["best_value"] == r["history"]["val_loss"][i]
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(argv) == 2  # the comparison is not overwritten
    assert "--overwrite" in _error(capsys)


def test_evaluate_and_predict_use_the_saved_model(trained, tmp_path, capsys):
    import optlab as ol
    from optlab.train.evaluation import predict
    from optlab.train.saved_model import load_model

    record = json.loads((trained / "run.json").read_text())
    assert main(["evaluate", str(trained), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["rows"] == 360 and metrics["data"] == "test split"
    np.testing.assert_allclose(metrics["loss"], record["metrics"]["val_loss"], rtol=1e-6)
    np.testing.assert_allclose(metrics["accuracy"], record["metrics"]["val_accuracy"])
    ds = ol.data.load("digits")
    x = ds.x_test[:25]
    np.save(tmp_path / "x.npy", x)
    np.savetxt(tmp_path / "x.csv", x, delimiter=",", header=",".join(f"p{i}" for i in range(64)))
    logits = np.asarray(predict(load_model(trained), x), np.float64)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    for source in ("x.npy", "x.csv"):
        target = tmp_path / f"p-{source}.csv"
        argv = ["predict", str(trained), "--input", str(tmp_path / source), "--output"]
        assert main([*argv, str(target)]) == 0
        with open(target) as f:
            rows = list(csv.reader(f))
        assert rows[0] == [f"prob_{j}" for j in range(10)] + ["predicted"]
        values = np.array([[float(v) for v in r[:-1]] for r in rows[1:]])
        np.testing.assert_allclose(values, probs, rtol=1e-5, atol=1e-7)
        assert [int(r[-1]) for r in rows[1:]] == list(np.argmax(logits, 1))
        assert main([*argv, str(target)]) == 2  # never overwritten without --overwrite
        assert "--overwrite" in _error(capsys)
    capsys.readouterr()


def test_a_regression_run_reports_no_accuracy(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 3))
    y = x @ [1.0, -2.0, 0.5]
    lines = ["a,b,c,y", *(",".join(map(str, [*r, t])) for r, t in zip(x, y, strict=True))]
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    argv = ["train", "--dataset", str(tmp_path / "data.csv"), "--target", "y", "--epochs", "2"]
    assert main([*argv, "--hidden", "8", "--output", str(run), "--no-progress"]) == 0
    final = capsys.readouterr().out
    assert "val_loss" in final and "accuracy" not in final
    history = json.loads((run / "history.json").read_text())
    assert "loss" in history and not any("accuracy" in k for k in history)
    assert json.loads((run / "run.json").read_text())["task"] == "regression"
    assert main(["evaluate", str(run), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"run", "data", "rows", "loss"}
    np.save(tmp_path / "x.npy", x[:5])
    out = tmp_path / "p.csv"
    assert (
        main(["predict", str(run), "--input", str(tmp_path / "x.npy"), "--output", str(out)]) == 0
    )
    rows = out.read_text().splitlines()
    assert rows[0] == "prediction" and len(rows) == 6
    np.save(tmp_path / "x4.npy", x[:5, :2])
    assert (
        main(["predict", str(run), "--input", str(tmp_path / "x4.npy"), "--output", "q.csv"]) == 2
    )
    assert "has 2 features per row but the model" in _error(capsys)


def test_help_documents_every_option():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subparsers.choices) == {
        "train",
        "compare",
        "evaluate",
        "predict",
        "diagnose",
        "lr-find",
        "check",
        "sweep",
        "bench",
    }
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            if action.dest != "help":
                assert action.help and len(action.help) > 10, (name, action.dest)
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--help"])
    assert exit_info.value.code == 0


# Each refusal: (argv, words of the one-line message). The ones marked [data] are found after
# loading the data; the others before jax is imported (test_subprocess.py checks that).
REFUSALS = [
    (["train", "--optimizer", "adamm"], "did you mean adam"),
    (["train", "--init", "he_nromal"], "did you mean he_normal"),
    (["train", "--activation", "rellu"], "did you mean relu"),
    (["train", "--norm", "btach"], "did you mean batch"),
    (["train", "--schedule", "cosin"], "did you mean cosine"),
    (["train", "--dataset", "digitz"], "did you mean digits"),
    (["compare", "--optimizers", "sgd,rmsprp"], "did you mean rmsprop"),
    (["compare", "--optimizers", "sgd,sgd"], "names sgd more than once"),
    (["compare", "--optimizers", ","], "at least one optimizer"),
    (["train", "--opt", "bogus=1"], "adam takes no option 'bogus'"),
    (["train", "--opt", "b1"], "--opt takes NAME=VALUE"),
    (["train", "--opt", "b1="], "the value is empty"),
    (["train", "--opt", "b1=1.5"], "b1 must be a number in [0, 1)"),
    (["train", "--opt", "b1=nan"], "b1 must be a number in [0, 1)"),
    (["train", "--opt", "nesterov=2"], "nesterov must be true or false"),
    (["train", "--opt", "learning_rate=0.1"], "give learning_rate with --lr"),
    (["train", "--opt", "eps=1", "--opt", "eps=2"], "--opt eps is given twice"),
    (["train", "--optimizer", "lbfgs", "--weight-decay", "0.1"], "lbfgs takes no weight_decay"),
    (["train", "--optimizer", "lbfgs", "--warmup-epochs", "1"], "no warmup_epochs"),
    (["train", "--optimizer", "lbfgs", "--lr", "0.1"], "takes no lr (--lr)"),
    (["train", "--optimizer", "lbfgs", "--batch-size", "8"], "no batch_size"),
    (["train", "--optimizer", "adam", "--momentum", "0.9"], "adam takes no momentum"),
    (["train", "--schedule", "step", "--schedule-opt", "bogus=1"], "did you mean"),
    (["train", "--schedule", "step", "--schedule-opt", "boundaries=30"], "must lie after"),
    (["train", "--schedule", "cyclic", "--schedule-opt", "mode=tri"], "mode must be one of"),
    (["train", "--schedule", "one-cycle", "--warmup-epochs", "2"], "does not take a warmup"),
    (["train", "--schedule", "warmup-cosine"], "needs warmup_epochs >= 1"),
    (["train", "--warmup-epochs", "20"], "warmup_epochs must be fewer than"),
    (["train", "--lr", "-0.1"], "--lr must be >= 0"),
    (["train", "--lr", "fast"], "--lr must be a number"),
    (["train", "--lr", "nan"], "--lr must be finite"),
    (["train", "--lr", "inf"], "--lr must be finite"),
    (["train", "--lr", ""], "--lr must be a number"),
    (["train", "--epochs", "0"], "--epochs must be >= 1"),
    (["train", "--epochs", "2.5"], "--epochs must be an integer"),
    (["train", "--epochs", "10000000"], "--epochs must be <= 1e+06"),
    (["train", "--batch-size", "-3"], "--batch-size must be >= 1"),
    (["train", "--dropout", "1"], "--dropout must be < 1"),
    (["train", "--momentum", "1.5"], "--momentum must be < 1"),
    (["train", "--clip-norm", "0"], "--clip-norm must be > 0"),
    (["train", "--seed", "-1"], "--seed must be >= 0"),
    (["train", "--validation-split", "1"], "--validation-split must be < 1"),
    (["train", "--hidden", "16,x"], "--hidden must be comma-separated integers"),
    (["train", "--hidden", ""], "--hidden must be comma-separated integers"),
    (["train", "--hidden", "0"], "--hidden widths must be integers in [1, 65536]"),
    (["train", "--dataset", ""], "--dataset must not be empty"),
    (["train", "--dataset", "digits", "--data-dir", "{tmp}"], "--data-dir applies to the IDX"),
    (["train", "--dataset", "digits", "--target", "y"], "--target applies to .csv files"),
    (["train", "--dataset", "{tmp}/missing.npz"], "no such file"),
    (["train", "--dataset", "{tmp}/dir.npz"], "not a regular file"),
    (["train", "--dataset", "{tmp}/x.csv"], "name its label column with --target"),
    (["train", "--dataset", "data.txt/"], "expected a .npz or .csv file"),
    (["train", "--dataset", "mnist", "--data-dir", "{tmp}/x.csv"], "not a directory"),
    (["train", "--bogus"], "unrecognized arguments: --bogus"),
    (["train", "--resume", "{tmp}/none"], "no such run directory"),
    (["train", "--resume", "{tmp}", "--overwrite"], "exclude each other"),
    (["evaluate", "{tmp}"], "no config.json"),
    (["predict", "{tmp}", "--input", "x.npy"], "the following arguments are required"),
    (["train", "--validation-split", "0.9999"], "[data] leaves 0 training"),
    (["train", "--dataset", "{tmp}/junk.npz"], "[data] is not a readable .npz archive"),
    (["train", "--dataset", "{tmp}/x.csv", "--target", "z"], "[data] has no column 'z'"),
    (["train", "--dataset", "fashion_mnist", "--data-dir", "{tmp}/empty"], "[data] apt-get"),
    (["train", "--hidden", "65536,65536,65536"], "[data] more than this command trains"),
]


@pytest.mark.parametrize("argv, expected", REFUSALS, ids=[" ".join(a) for a, _ in REFUSALS])
def test_bad_input_is_one_line_and_status_2(argv, expected, capsys, tmp_path):
    (tmp_path / "dir.npz").mkdir()
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.npz").write_bytes(b"junk")
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "train_only.npz",
        x_train=rng.standard_normal((40, 3)).astype(np.float32),
        y_train=rng.integers(0, 2, 40),
    )
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    new_run = argv[0] in ("train", "compare") and "--resume" not in argv
    out = ["--output", str(tmp_path / "out")] if new_run else []
    assert main([*argv, *out]) == 2
    assert expected.removeprefix("[data] ") in _error(capsys)
