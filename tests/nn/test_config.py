"""model_config / from_config: a JSON round trip rebuilds the structure; copied arrays agree."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import optlab.nn as onn

X = jnp.asarray(np.random.default_rng(0).normal(size=(6, 4)), jnp.float32)

MODELS = {
    "mlp-defaults": lambda: onn.MLP(4, (8,), 3, rngs=0),
    "mlp-every-option": lambda: onn.MLP(
        4,
        (8, 6),
        3,
        activation=("leaky_relu", {"negative_slope": 0.2}),
        kernel_init=("normal", {"stddev": 0.05}),
        bias_init="torch_default",
        norm=("batch", {"momentum": 0.9}),
        norm_position="post_activation",
        dropout=(0.1, 0.2),
        input_dropout=0.05,
        dropconnect=0.1,
        input_noise=0.01,
        residual=(False, True),
        stochastic_depth=0.1,
        rngs=0,
    ),
    "mlp-maxout-group": lambda: onn.MLP(
        4, (8,), None, activation=("maxout", {"num_pieces": 3}), norm="group", rngs=0
    ),
    "mlp-prelu-rrelu": lambda: onn.MLP(4, (8,), 2, activation="rrelu", rngs=0),
    "multi-input": lambda: onn.MultiInputMLP(
        (4, 2), ((8,), (4, 4)), (8,), 3, norm="layer", dropout=0.1, rngs=0
    ),
    "ensemble": lambda: onn.Ensemble(
        lambda r: onn.MLP(4, (8,), 3, norm="batch", activation="prelu", rngs=r), 3, rngs=0
    ),
}


def _shapes(model):
    return jax.tree.map(lambda a: (a.shape, str(a.dtype)), nnx.to_pure_dict(nnx.state(model)))


def _call(model, x):
    if isinstance(model, onn.MultiInputMLP):
        return model((x, x[:, :2]), train=False)
    return model(x, train=False)


@pytest.mark.parametrize("name", list(MODELS))
def test_round_trip_rebuilds_structure_and_outputs(name):
    model = MODELS[name]()
    config = json.loads(json.dumps(onn.model_config(model)))  # JSON-serializable
    rebuilt = onn.from_config(config, rngs=1)
    assert nnx.graphdef(rebuilt) == nnx.graphdef(model)
    assert _shapes(rebuilt) == _shapes(model)
    assert onn.model_config(rebuilt) == config
    # Fresh parameters, then the saved arrays restored: the same function.
    nnx.update(rebuilt, nnx.state(model))
    np.testing.assert_array_equal(np.asarray(_call(rebuilt, X)), np.asarray(_call(model, X)))


def test_config_names_the_architecture():
    config = onn.model_config(MODELS["mlp-every-option"]())
    assert config["class"] == "MLP" and config["hidden"] == [8, 6]
    assert config["activation"] == ["leaky_relu", {"negative_slope": 0.2}]
    assert config["residual"] == [False, True] and config["norm"] == ["batch", {"momentum": 0.9}]
    ens = onn.model_config(MODELS["ensemble"]())
    assert ens["class"] == "Ensemble" and ens["num_members"] == 3
    assert ens["member"]["activation"] == "prelu"


@pytest.mark.parametrize(
    ("make", "what"),
    [
        pytest.param(
            lambda: onn.MLP(4, (8,), 3, activation=jnp.sin, rngs=0), "activation", id="act"
        ),
        pytest.param(
            lambda: onn.MLP(4, (8,), 3, kernel_init=jax.nn.initializers.ones, rngs=0),
            "kernel_init",
            id="init",
        ),
        pytest.param(
            lambda: onn.MLP(4, (8,), 3, norm=lambda n, rngs: nnx.RMSNorm(n, rngs=rngs), rngs=0),
            "norm",
            id="norm",
        ),
    ],
)
def test_callables_cannot_be_described(make, what):
    model = make()  # building works; describing it does not
    with pytest.raises(ValueError, match=f"model_config: this MLP cannot be described.*{what}"):
        onn.model_config(model)


def test_bad_models_and_configs():
    with pytest.raises(TypeError, match=r"model_config: model must be an optlab\.nn model"):
        onn.model_config(nnx.Linear(2, 2, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match="config\\['class'\\] must be one of"):
        onn.from_config({"class": "CNN"})
    with pytest.raises(ValueError, match=r"does not fit.*widht"):
        onn.from_config({"class": "MLP", "in_features": 4, "widht": 3})
    with pytest.raises(TypeError, match="from_config: config must be a dict"):
        onn.from_config("MLP")
    with pytest.raises(ValueError, match="Ensemble configuration has the keys"):
        onn.from_config({"class": "Ensemble", "num_members": 2})
