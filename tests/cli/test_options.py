"""What the command checks before importing jax agrees with the library it stands in for."""

import dataclasses

import pytest

import optlab as ol
from optlab.cli import options
from optlab.cli.commands import DEFAULTS
from optlab.cli.options import UsageError, choose, hidden_sizes, keyword, number
from optlab.train.recipes import Recipe


def test_name_lists_are_the_librarys():
    assert sorted(options.DATASETS) == ol.data.dataset_names()
    assert sorted(options.ACTIVATIONS) == ol.nn.activation_names()
    assert sorted(options.INITIALIZERS) == ol.nn.initializer_names()
    assert sorted(n for n in options.NORMS if n != "none") == ol.nn.norm_names()


def test_defaults_are_the_recipes():
    assert DEFAULTS == {f.name: getattr(Recipe(), f.name) for f in dataclasses.fields(Recipe)}


def test_choose_normalises_and_suggests():
    assert choose("activation", "Leaky-ReLU", options.ACTIVATIONS) == "leaky_relu"
    with pytest.raises(UsageError, match=r"unknown initializer 'glorot'; did you mean "):
        choose("initializer", "glorot", options.INITIALIZERS)


@pytest.mark.parametrize(
    "parse, text, expected",
    [
        (number("--lr", minimum=0.0), "1e-3", 1e-3),
        (number("--epochs", minimum=1, integer=True), "7", 7),
        (hidden_sizes, "128,64", (128, 64)),
        (hidden_sizes, "none", ()),
        (keyword("--opt"), "b1=0.95", ("b1", 0.95)),
        (keyword("--opt"), "nesterov=True", ("nesterov", True)),
        (keyword("--schedule-opt"), "boundaries=10,15", ("boundaries", [10, 15])),
        (keyword("--schedule-opt"), "mode=triangular2", ("mode", "triangular2")),
    ],
)
def test_argument_types_parse(parse, text, expected):
    assert parse(text) == expected


def test_the_commands_share_one_definition_of_the_optimizer_options():
    from optlab.cli.main import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices

    def optimizer_group(command):
        (group,) = [g for g in commands[command]._action_groups if g.title == "optimizer"]
        return {a.dest: (a.help, a.metavar) for a in group._group_actions}

    train = optimizer_group("train")
    shared = {k: train[k] for k in ("optimizer", "lr", "momentum", "opt")}
    assert optimizer_group("check") == shared and optimizer_group("sweep") == shared
    assert optimizer_group("lr-find") == {k: v for k, v in shared.items() if k != "lr"}
    assert set(train) > set(shared)  # train adds its schedule, clipping, weight decay, ...
