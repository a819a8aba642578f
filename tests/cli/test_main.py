"""The ``optlab`` command in process: train, resume, compare, evaluate, predict, refusals.

The failure paths that must hold for the installed command (one line, exit 2, no traceback)
are run through a subprocess in ``test_subprocess.py``; here ``main([...])`` keeps them fast.
"""

import argparse
import csv
import json

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
    """A 2-epoch run with early stopping (patience large enough not to stop)."""
    run = tmp_path_factory.mktemp("trained") / "run"
    argv = ["train", "--epochs", "2", "--early-stopping", "5", "--output", str(run), *SMALL]
    assert main(argv) == 0
    return run


def test_train_writes_the_run_and_resume_continues_it(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--output", str(run), *SMALL]) == 0
    first = json.loads((run / "history.json").read_text())
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == ["adam", "adam"]
    for name in ("config.json", "run.json", "history.json", "history.csv", "curves.png"):
        assert (run / name).is_file(), name
    assert (run / "model").is_dir() and (run / "checkpoints" / "2").is_dir()
    resumed = json.loads((run / "history.json").read_text())
    assert resumed["epoch"] == [1, 2] and first["epoch"] == [1]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
        assert resumed[key][0] == first[key][0], key
    record = json.loads((run / "run.json").read_text())
    assert record["completed_epochs"] == 2 and record["task"] == "classification"
    # The final line reports the saved model's validation metrics, as run.json records them.
    assert f"val_loss {record['metrics']['val_loss']:.4f}" in out[-1]
    with open(run / "history.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["1", "2"]


def test_output_holding_a_run_is_refused_and_overwrite_replaces_it(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--epochs", "2", "--output", str(run), *SMALL]) == 0
    capsys.readouterr()
    assert main(["train", "--epochs", "1", "--output", str(run), *SMALL]) == 2
    err = _error(capsys)
    assert f"--resume {run}" in err and "--overwrite" in err
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


def test_resume_past_the_horizon_holds_the_schedules_final_value(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--epochs", "2", "--schedule", "cosine", "--lr", "0.01", "--output"]
    assert main([*argv, str(run), *SMALL]) == 0
    assert main(["train", "--resume", str(run), "--epochs", "4", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.count("go past the cosine schedule's horizon of 2 epochs") == 1
    lr = json.loads((run / "history.json").read_text())["learning_rate"]
    # Each epoch logs its last step's rate: epochs 3 and 4 stay at epoch 2's (t = T - 1).
    steps = 1437 // 64
    expected = 0.005 * (1 + np.cos(np.pi * (2 * steps - 1) / (2 * steps)))
    assert lr[1] == pytest.approx(expected, rel=1e-4)  # float32: 1 + cos(~pi) cancels
    assert lr[2] == lr[3] == lr[1]
    assert json.loads((run / "config.json").read_text())["schedule_epochs"] == 2


def test_compare_prints_rates_schedules_and_progress(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "--optimizers", "sgd,lbfgs", "--epochs", "2", "--output", str(out)]
    assert main([*argv, "--hidden", "16", "--batch-size", "64"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("sgd ") and "epoch 1/2" in line for line in lines) == 1
    assert sum(line.startswith("lbfgs (full batch)") and "epoch 2/2" in line for line in lines) == 1
    header = next(line for line in lines if line.startswith("optimizer"))
    assert header.split()[:3] == ["optimizer", "lr", "schedule"]
    row = next(line for line in lines if line.startswith("sgd ") and "epoch" not in line)
    assert row.split()[1:3] == ["0.1", "constant"]
    result = json.loads((out / "compare.json").read_text())
    assert list(result["runs"]) == ["sgd", "lbfgs (full batch)"]
    lbfgs = result["runs"]["lbfgs (full batch)"]
    assert lbfgs["batch_size"] == 1437 and lbfgs["learning_rate"] is None
    for r in result["runs"].values():
        assert r["history"]["epoch"] == [1, 2]
        i = int(np.argmin(r["history"]["val_loss"]))
        assert r["best_epoch"] == i + 1 and r["best_value"] == r["history"]["val_loss"][i]
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main([*argv, "--hidden", "16"]) == 2  # the comparison is not overwritten
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


def test_help_documents_every_option():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subparsers.choices) == {"train", "compare", "evaluate", "predict"}
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
    (["train", "--hidden", "16,x"], "comma-separated integers"),
    (["train", "--hidden", "0"], "hidden sizes must be integers in [1, 65536]"),
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
    (["train", "--dataset", "fashion_mnist", "--data-dir", "{tmp}/empty"], "[data] apt-get"),
    (["train", "--hidden", "65536,65536,65536"], "[data] more than this command trains"),
]


@pytest.mark.parametrize("argv, expected", REFUSALS, ids=[" ".join(a) for a, _ in REFUSALS])
def test_bad_input_is_one_line_and_status_2(argv, expected, capsys, tmp_path):
    (tmp_path / "dir.npz").mkdir()
    (tmp_path / "empty").mkdir()
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
