"""``optlab bench`` and the recommended recipes that ``optlab train --dataset NAME`` uses."""

import json

import pytest

from optlab.cli import bench as cli_bench
from optlab.cli import commands
from optlab.cli.main import main
from optlab.train import recipes, suite


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("optlab: error: "), err
    return err


def test_the_commands_copies_are_the_librarys():
    assert commands.RECOMMENDED == {k: dict(v) for k, v in recipes.RECOMMENDED.items()}
    assert commands.TIED == recipes.TIED
    assert cli_bench.WORKLOADS == tuple(suite.WORKLOADS)
    assert cli_bench.BENCH_OPTIMIZERS == suite.OPTIMIZERS
    assert cli_bench.REPORT_FILES == suite_report_files()


def suite_report_files():
    from optlab.train.suite_report import REPORT_FILES

    return REPORT_FILES


@pytest.mark.parametrize(
    "given, kept, dropped",
    [
        ({}, {"lr": 0.2, "residual": (False, True), "epochs": 150}, ()),
        ({"optimizer": "adam"}, {"schedule": "cosine", "batch_size": 100}, ("lr",)),
        ({"hidden": (32,)}, {"lr": 0.2}, ("residual", "hidden")),
        ({"optimizer": "lbfgs"}, {"hidden": (100, 100)}, ("batch_size", "schedule", "lr")),
        ({"lr": 0.05}, {"optimizer": "momentum"}, ("lr",)),
    ],
)
def test_explicit_options_override_the_recipe_and_what_is_tied_to_them(given, kept, dropped):
    fields = commands.recommended_fields("mnist1d", given)
    assert fields == recipes.recommended_fields("mnist1d", given)
    for key, value in kept.items():
        assert fields[key] == value
    for key in dropped:
        assert key not in fields


def test_train_uses_the_datasets_recipe_unless_told_otherwise(tmp_path):
    run = tmp_path / "run"
    argv = ["train", "--dataset", "mnist1d", "--epochs", "1", "--no-progress"]
    assert main([*argv, "--optimizer", "adam", "--output", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    want = {**recipes.RECOMMENDED["mnist1d"], "optimizer": "adam", "lr": None, "epochs": 1}
    for key, value in want.items():
        assert config[key] == (list(value) if isinstance(value, tuple) else value), key
    record = json.loads((run / "run.json").read_text())
    assert record["optimizer"]["name"] == "adam" and record["optimizer"]["learning_rate"] == 1e-3


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--workloads", "cifar"], "--workloads: unknown cifar"),
        (["--optimizers", "adam,adam"], "--optimizers names one more than once"),
        (["--targets", "{tmp}/none.json"], "unreadable"),
    ],
)
def test_bench_refuses_bad_input_in_one_line(argv, message, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["bench", "--quick", "--output", str(tmp_path / "b"), *argv]) == 2
    assert message in _error(capsys)


def test_quick_bench_writes_its_report(tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["bench", "--quick", "--workloads", "two_spirals", "--optimizers", "adam,lbfgs"]
    assert main([*argv, "--output", str(out)]) == 0
    for name in cli_bench.REPORT_FILES:
        assert (out / name).is_file(), name
    results = json.loads((out / "suite.json").read_text())
    pair = results["workloads"]["two_spirals"]["optimizers"]["adam"]
    for part in ("defaults", "tuned"):
        assert set(pair[part]["steps_to_target"]) == {"median", "q25", "q75"}
        assert pair[part]["repeats"] == (2 if part == "tuned" else 5)  # studies; seeds
        assert 0.4 <= pair[part]["test_accuracy_mean"] <= 1.0
    assert set(pair["tuned"]["hyperparameters"]) == {"learning_rate", "one_minus_b1"}
    assert len(pair["sensitivity"]["val_accuracy"]) == 3
    assert results["workloads"]["two_spirals"]["optimizers"]["lbfgs"]["full_batch"] is True
    scores = results["summary"]["tuned"]["score"]
    assert set(scores) == {"adam", "lbfgs"} and all(0 <= s <= 1 for s in scores.values())
    assert "## two_spirals" in (out / "report.md").read_text()
    # A second run into the same directory is refused.
    capsys.readouterr()
    assert main([*argv, "--output", str(out)]) == 2
    assert "already holds a report" in _error(capsys)
