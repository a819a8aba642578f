"""The registry's description of each method matches the library's factories."""

import inspect

import pytest

from optlab.optimizers.registry import OPTIMIZERS, REGISTRY, optimizer_spec

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
