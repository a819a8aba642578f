"""``optlab bench``, and the recommended recipes that ``optlab train`` and ``optlab compare``
take their defaults from (one table: optlab.optimizers.recommended)."""

import dataclasses
import json
import subprocess
import sys

import pytest

from optlab.cli import bench as cli_bench
from optlab.cli import commands
from optlab.cli.main import build_parser, main
from optlab.optimizers import recommended
from optlab.train import recipes, suite, suite_report


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("optlab: error: "), err
    return err


def test_the_commands_names_are_the_suites():
    from optlab.train.suite_report import REPORT_FILES

    assert cli_bench.WORKLOADS == tuple(suite.WORKLOADS)
    assert cli_bench.BENCH_OPTIMIZERS == suite.OPTIMIZERS
    assert cli_bench.REPORT_FILES == REPORT_FILES


def test_the_recipe_table_is_jax_free_and_read_by_the_command_and_the_library():
    code = "import sys, optlab.cli.commands; assert 'jax' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
    # One table: the command and the library hold no copy of it.
    assert commands.recommended_fields is recommended.recommended_fields
    assert not hasattr(commands, "RECOMMENDED") and not hasattr(recipes, "RECOMMENDED")
    for name, table in recommended.RECOMMENDED.items():
        assert dataclasses.asdict(recipes.recommended(name)) == dataclasses.asdict(
            recipes.Recipe(dataset=name, **table)
        )


def _train_fields(*argv):
    args = build_parser().parse_args(["train", *argv])
    return commands.check_run(commands.given_fields(args), recommended=True)


def test_train_defaults_come_from_the_datasets_recipe():
    fields = _train_fields("--dataset", "mnist1d")
    assert {k: fields[k] for k in recommended.RECOMMENDED["mnist1d"]} == dict(
        recommended.RECOMMENDED["mnist1d"]
    )
    # Another optimizer keeps the architecture and schedule, not the recipe's learning rate.
    fields = _train_fields("--dataset", "mnist1d", "--optimizer", "adam", "--epochs", "3")
    assert (fields["optimizer"], fields["lr"], fields["epochs"]) == ("adam", None, 3)
    assert fields["hidden"] == (100, 100) and fields["schedule"] == "cosine"
    # No --dataset: the plain 20-epoch digits MLP, not digits' recipe.
    fields = _train_fields()
    assert fields["hidden"] == commands.DEFAULTS["hidden"] and fields["epochs"] == 20


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
    fields = recommended.recommended_fields("mnist1d", given)
    for key, value in kept.items():
        assert fields[key] == value
    for key in dropped:
        assert key not in fields


def test_compare_uses_the_datasets_recipe_and_gives_its_rate_to_its_own_optimizer():
    fields = {"dataset": "mnist1d"}
    runs = commands.compare_fields(fields, ["momentum", "adam", "lbfgs"], None)
    recipe = recommended.RECOMMENDED["mnist1d"]
    for run in runs.values():
        assert (run["hidden"], run["residual"], run["init"]) == (
            recipe["hidden"],
            recipe["residual"],
            recipe["init"],
        )
        assert run["epochs"] == recipe["epochs"]
    assert (runs["momentum"]["lr"], runs["momentum"]["schedule"]) == (0.2, "cosine")
    assert (runs["adam"]["lr"], runs["adam"]["schedule"]) == (None, "cosine")
    assert runs["adam"]["batch_size"] == runs["momentum"]["batch_size"] == 100
    assert (runs["lbfgs"]["batch_size"], runs["lbfgs"]["schedule"]) == (None, "constant")
    # Explicit options win; without --dataset, the plain defaults (as before).
    runs = commands.compare_fields({"dataset": "mnist1d", "epochs": 2}, ["momentum"], None)
    assert runs["momentum"]["epochs"] == 2 and runs["momentum"]["lr"] == 0.2
    runs = commands.compare_fields({}, ["momentum", "lbfgs"], 7)
    assert runs["momentum"]["hidden"] == commands.DEFAULTS["hidden"]
    assert runs["momentum"]["lr"] is None and runs["lbfgs"]["epochs"] == 7


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


def test_quick_bench_writes_its_report(tmp_path, capsys, monkeypatch):
    # A tiny two_spirals (4 epochs of a 16-unit MLP, 10 L-BFGS steps) with --quick's budget:
    # the command's whole path, a fraction of its cost. Momentum and Adam (different search
    # spaces) share one vmapped program.
    tiny = dataclasses.replace(
        suite.WORKLOADS["two_spirals"], hidden=(16,), epochs=4, lbfgs_epochs=10
    )
    monkeypatch.setitem(suite.WORKLOADS, "two_spirals", tiny)
    out = tmp_path / "bench"
    names = ["momentum", "adam", "lbfgs"]
    argv = ["bench", "--quick", "--workloads", "two_spirals", "--optimizers", ",".join(names)]
    assert main([*argv, "--output", str(out)]) == 0
    for name in cli_bench.REPORT_FILES:
        assert (out / name).is_file(), name
    results = json.loads((out / "suite.json").read_text())
    assert results["workloads"]["two_spirals"]["workload"]["hidden"] == [16]
    budget = suite.QUICK
    for name, space in [("momentum", "one_minus_momentum"), ("adam", "one_minus_b1")]:
        pair = results["workloads"]["two_spirals"]["optimizers"][name]
        assert pair["epochs"] == 4  # --quick keeps the workload's epoch budget
        for part in ("defaults", "tuned"):
            assert set(pair[part]["steps_to_target"]) == {"median", "q25", "q75"}
            assert pair[part]["repeats"] == (budget.studies if part == "tuned" else budget.seeds)
            assert 0.4 <= pair[part]["test_accuracy_mean"] <= 1.0
        assert set(pair["tuned"]["hyperparameters"]) == {"learning_rate", space}
        assert pair["defaults"]["hyperparameters"] == suite.default_point(name)
        assert len(pair["tuned"]["trial_steps"]) == budget.studies * budget.trials
        assert len(pair["sensitivity"]["val_accuracy"]) == budget.lr_points
    lbfgs = results["workloads"]["two_spirals"]["optimizers"]["lbfgs"]
    assert lbfgs["full_batch"] is True and lbfgs["epochs"] == 10
    scores = results["summary"]["tuned"]["score"]
    assert set(scores) == set(names) and all(0 <= s <= 1 for s in scores.values())
    assert "## two_spirals" in (out / "report.md").read_text()
    # The README's tables are regenerated from the JSON: between the markers, and only there.
    doc = f"intro\n{suite_report.BEGIN}\nold tables\n{suite_report.END}\ntail\n"
    new = suite_report.embed(doc, results, images="bench/")
    assert new.startswith(f"intro\n{suite_report.BEGIN}\n#### optlab optimizer benchmark")
    assert new.endswith(f"{suite_report.END}\ntail\n") and "old tables" not in new
    assert "##### two_spirals" in new and "](bench/profiles.png)" in new
    assert suite_report.embed(new, results, images="bench/") == new
    with pytest.raises(ValueError, match="embed: the document must hold"):
        suite_report.embed("no markers", results)
    # A second run into the same directory is refused.
    capsys.readouterr()
    assert main([*argv, "--output", str(out)]) == 2
    assert "already holds a report" in _error(capsys)
