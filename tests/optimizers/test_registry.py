"""The registry's description of each method and schedule matches the library's functions."""

import inspect

import pytest

from optlab.optimizers.registry import (
    OPTIMIZERS,
    REGISTRY,
    SCHEDULE_ALIASES,
    SCHEDULES,
    Param,
    optimizer_spec,
    parse_value,
    schedule_spec,
)

# Factory arguments a command cannot set by name: Python objects, or set by their own option.
NOT_OPTIONS = {
    "learning_rate",
    "weight_decay",
    "accumulator_dtype",
    "mu_dtype",
    "nu_dtype",
    "mask",
    "weight_decay_mask",
    "linesearch",
}
KIND_OF = {bool: "bool", int: "int", float: "float"}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_options_are_the_factorys_keywords(name):
    spec = OPTIMIZERS[name]
    params = inspect.signature(spec.factory).parameters
    assert set(spec.options) | NOT_OPTIONS >= set(params)
    for option, param in spec.options.items():
        default = params[option].default
        assert default is not inspect.Parameter.empty, option
        # momentum defaults to None (no momentum); every other default has the option's kind.
        assert default is None or param.kind == KIND_OF[type(default)], option
    assert ("weight_decay" in params) == (spec.weight_decay == "decoupled"), name
    assert set(spec.defaults) <= set(params)


def test_full_batch_methods_and_lookup():
    assert [n for n, s in OPTIMIZERS.items() if s.full_batch] == ["lbfgs"]
    assert set(REGISTRY) == set(OPTIMIZERS) - {"lbfgs"}
    assert optimizer_spec("Rmsprop-Centered").name == "rmsprop_centered"
    with pytest.raises(ValueError, match=r"unknown optimizer 'adma'; did you mean adamax or adam"):
        optimizer_spec("adma")


@pytest.mark.parametrize(
    "options, message",
    [
        ({"weight_decay": 0.1}, "lbfgs takes no weight_decay"),
        ({"lr": 0.1, "warmup_epochs": 1}, "takes no lr (--lr), warmup_epochs"),
        ({"schedule": "cosine"}, "takes no schedule 'cosine'"),
        ({"batch_size": 16}, "takes no batch_size"),
        ({"opt": {"memory_size": 0}}, "memory_size must be an integer >= 1"),
        ({"opt": {"momentum": 0.9}}, "lbfgs takes no option 'momentum'"),
    ],
)
def test_a_full_batch_method_refuses_what_it_does_not_use(options, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        OPTIMIZERS["lbfgs"].check_run(epochs=10, **options)


def test_check_run_converts_options_and_routes_momentum():
    sgd = OPTIMIZERS["sgd"].check_run(epochs=5, momentum=0.9, opt={"nesterov": True})
    assert sgd == {"nesterov": True, "momentum": 0.9}
    with pytest.raises(ValueError, match="adam takes no momentum"):
        OPTIMIZERS["adam"].check_run(epochs=5, momentum=0.9)
    with pytest.raises(ValueError, match=r"did you mean b1\?"):
        OPTIMIZERS["adam"].check_run(epochs=5, opt={"b11": 0.9})


@pytest.mark.parametrize(
    "param, value, expected",
    [
        (Param("float", "x", low=0.0, low_open=True), 2, 2),
        (Param("int", "x", low=1), 3.0, 3),
        (Param("bool", "x"), True, True),
        (Param("epoch_list", "x"), 5, [5]),
        (Param(("a", "b"), "x"), "b", "b"),
    ],
)
def test_param_accepts(param, value, expected):
    assert param.check("f", "p", value) == expected


@pytest.mark.parametrize(
    "param, value, rule",
    [
        (Param("float", "x", low=0.0, low_open=True), 0.0, "a number > 0"),
        (Param("float", "x", 0.0, 0.0, 1.0, True, True), 1.0, "a number in (0, 1)"),
        (Param("float", "x"), float("nan"), "a number"),
        (Param("float", "x"), True, "a number"),
        (Param("float", "x"), "0.1", "a number"),
        (Param("int", "x", low=1), 2.5, "an integer >= 1"),
        (Param("bool", "x"), 1, "true or false"),
        (Param("epochs", "x"), -1, "a number of epochs > 0"),
        (Param("epoch_list", "x"), [5, 3], "comma-separated increasing epochs"),
        (Param(("linear", "cosine"), "x"), "cosin", "one of linear, cosine"),
    ],
)
def test_param_refuses_with_the_rule(param, value, rule):
    with pytest.raises(
        ValueError, match=rf"f: p must be {rule.replace('(', '.').replace(')', '.')}"
    ):
        param.check("f", "p", value)


def test_parse_value():
    assert parse_value(" true ") is True
    assert parse_value("3") == 3 and isinstance(parse_value("3"), int)
    assert parse_value("1e-3") == 1e-3
    assert parse_value("10,20") == [10, 20]
    assert parse_value("cosine") == "cosine"
    assert parse_value("a,1") == "a,1"


def test_schedules_by_name_and_their_checks():
    assert schedule_spec("Warmup_Cosine").name == "warmup-cosine"
    assert {schedule_spec(a).name for a in SCHEDULE_ALIASES} <= set(SCHEDULES)
    with pytest.raises(ValueError, match=r"unknown schedule 'sgrd'; did you mean sgdr"):
        schedule_spec("sgrd")
    step = SCHEDULES["step"].check({"boundaries": [4, 8]}, epochs=10, warmup_epochs=1)
    assert step == {"boundaries": [4, 8], "factor": 0.1}
    with pytest.raises(ValueError, match="boundaries must lie after the warmup"):
        SCHEDULES["step"].check({"boundaries": [1, 8]}, epochs=10, warmup_epochs=2)
    with pytest.raises(ValueError, match="does not take a warmup"):
        SCHEDULES["one-cycle"].check({}, epochs=10, warmup_epochs=2)
    with pytest.raises(ValueError, match="warmup_epochs must be fewer than"):
        SCHEDULES["cosine"].check({}, epochs=3, warmup_epochs=3)
    assert [n for n, s in SCHEDULES.items() if not s.horizon] == ["constant", "reduce-on-plateau"]
