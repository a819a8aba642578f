"""Layers and activations: dropout expectation, DropConnect, PReLU, RReLU, maxout, noise, names."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optlab.nn as onn


@pytest.mark.parametrize("rate", [pytest.param(0.2, id="p0.2"), pytest.param(0.5, id="p0.5")])
def test_inverted_dropout_preserves_the_expected_activation(rate):
    x = jnp.full((200_000,), 3.0)
    y = np.asarray(onn.dropout(x, rate, jax.random.key(0), train=True))
    kept = y != 0
    # Kept units are scaled by 1/(1-p); the drop fraction is p (binomial, 5 sigma bounds).
    np.testing.assert_allclose(y[kept], 3.0 / (1 - rate), rtol=1e-6)
    sigma = np.sqrt(rate * (1 - rate) / x.size)
    assert abs((1 - kept.mean()) - rate) < 5 * sigma
    assert abs(y.mean() - 3.0) < 5 * 3.0 / (1 - rate) * sigma
    np.testing.assert_array_equal(np.asarray(onn.dropout(x, rate, None, train=False)), 3.0)


def test_dropconnect_drops_weights_with_inverted_scaling():
    layer = onn.Dense(512, 4, kernel_init="ones", bias_init="zeros", dropconnect=0.25, rngs=0)
    x = jnp.ones((2, 512))
    y = np.asarray(layer(x, train=True, rng=jax.random.key(0)))
    # Each output is (number of kept weights) / 0.75: a multiple of 1/0.75, near 512 on average.
    kept = y * 0.75
    np.testing.assert_allclose(kept, np.round(kept), atol=1e-3)
    sigma = np.sqrt(512 * 0.25 * 0.75) / 0.75
    assert np.all(np.abs(y - 512) < 5 * sigma) and not np.allclose(y, 512)
    # One mask per call, shared by the batch (rows equal); eval uses the weights themselves.
    np.testing.assert_array_equal(y[0], y[1])
    np.testing.assert_array_equal(np.asarray(layer(x, train=False)), 512.0)


def test_prelu_learns_its_slope():
    layer = onn.PReLU(3, init=0.25, per_unit=True)
    x = jnp.array([[-2.0, 1.0, -4.0]])
    np.testing.assert_allclose(layer(x, train=False), [[-0.5, 1.0, -1.0]])
    grad = jax.grad(lambda a: onn.prelu(x, a).sum())(jnp.full(3, 0.25))
    np.testing.assert_allclose(grad, [-2.0, 0.0, -4.0])  # d/d alpha = min(x, 0)


def test_rrelu_random_slopes_in_range_and_mean_at_eval():
    x = -jnp.ones((10_000,))
    y = -np.asarray(onn.rrelu(x, jax.random.key(0), lower=0.1, upper=0.3, train=True))
    assert y.min() >= 0.1 and y.max() <= 0.3 and y.std() > 0.05
    np.testing.assert_allclose(np.asarray(onn.rrelu(x, lower=0.1, upper=0.3)), -0.2)
    np.testing.assert_array_equal(np.asarray(onn.rrelu(-x, jax.random.key(0), train=True)), 1.0)
    with pytest.raises(ValueError, match="needs key"):
        onn.rrelu(x, train=True)


def test_maxout_against_numpy():
    z = np.random.default_rng(0).normal(size=(5, 12))
    np.testing.assert_allclose(onn.maxout(jnp.asarray(z), 3), z.reshape(5, 4, 3).max(-1), rtol=1e-6)
    with pytest.raises(ValueError, match="multiple of num_pieces=5"):
        onn.maxout(jnp.asarray(z), 5)


def test_gaussian_noise_and_drop_path():
    x = jnp.zeros((50_000,))
    noisy = np.asarray(onn.GaussianNoise(0.3)(x, train=True, rng=jax.random.key(0)))
    assert abs(noisy.std() - 0.3) < 0.01 and abs(noisy.mean()) < 0.01
    np.testing.assert_array_equal(np.asarray(onn.GaussianNoise(0.3)(x, train=False)), 0.0)
    np.testing.assert_array_equal(
        np.asarray(onn.drop_path(jnp.ones((4, 2)), 0.5, None, train=False)), 1.0
    )


@pytest.mark.parametrize(
    ("name", "options", "reference"),
    [
        pytest.param("relu", {}, lambda z: np.maximum(z, 0), id="relu"),
        pytest.param(
            "leaky_relu",
            {"negative_slope": 0.1},
            lambda z: np.maximum(0.1 * z, z),
            id="leaky_relu-0.1",
        ),
        pytest.param("leaky_relu", {}, lambda z: np.maximum(0.01 * z, z), id="leaky_relu"),
        pytest.param("elu", {}, lambda z: np.where(z < 0, np.expm1(z), z), id="elu"),
        pytest.param("sigmoid", {}, lambda z: 1 / (1 + np.exp(-z)), id="sigmoid"),
        pytest.param("tanh", {}, np.tanh, id="tanh"),
        pytest.param("swish", {}, lambda z: z / (1 + np.exp(-z)), id="swish"),
        pytest.param(
            "selu",
            {},
            lambda z: 1.0507009873554805 * np.where(z > 0, z, 1.6732632423543772 * np.expm1(z)),
            id="selu",
        ),
    ],
)
def test_activations_against_numpy(name, options, reference):
    z = np.linspace(-3, 3, 13)
    f = onn.get_activation(name, **options)
    np.testing.assert_allclose(np.asarray(f(jnp.asarray(z))), reference(z), rtol=1e-5, atol=1e-6)


def test_name_errors_suggest_close_names():
    with pytest.raises(ValueError, match="did you mean 'relu'"):
        onn.get_activation("rleu")
    with pytest.raises(ValueError, match="has no option"):
        onn.get_activation("relu", negative_slope=0.1)
    with pytest.raises(ValueError, match=r"use optlab\.nn\.PReLU"):
        onn.get_activation("prelu")
    with pytest.raises(ValueError, match="did you mean 'he_normal'"):
        onn.get_initializer("he_norml")
    with pytest.raises(ValueError, match=r"Dense: dropconnect must be in \[0, 1\)"):
        onn.Dense(2, 2, dropconnect=1.5, rngs=0)
