"""Initializer statistics on a 1024x1024 layer against the published formulas."""

import math

import jax
import numpy as np
import pytest

import optlab.nn as onn

N = 1024  # fan_in = fan_out = N


@pytest.mark.parametrize(
    ("name", "options", "std"),
    [
        pytest.param("glorot_normal", {}, math.sqrt(2 / (N + N)), id="glorot_normal"),
        pytest.param("xavier_uniform", {}, math.sqrt(2 / (N + N)), id="xavier_uniform"),
        pytest.param("he_normal", {}, math.sqrt(2 / N), id="he_normal"),
        pytest.param("kaiming_uniform", {}, math.sqrt(2 / N), id="kaiming_uniform"),
        pytest.param("lecun_normal", {}, math.sqrt(1 / N), id="lecun_normal"),
        pytest.param("lecun_uniform", {}, math.sqrt(1 / N), id="lecun_uniform"),
        pytest.param("normal", {"stddev": 0.05}, 0.05, id="normal-0.05"),
        pytest.param("normal", {}, 0.01, id="normal-default-0.01"),
    ],
)
def test_empirical_std_matches_formula(name, options, std):
    layer = onn.Dense(N, N, kernel_init=(name, options), rngs=0)
    w = np.asarray(layer.kernel[...], np.float64)
    assert abs(w.std() / std - 1) < 0.05
    assert abs(w.mean()) < 0.05 * std
    np.testing.assert_array_equal(np.asarray(layer.bias[...]), 0.0)  # biases default to zeros
    if name.endswith("uniform"):  # U(-l, l) with l = sqrt(3) std
        assert np.abs(w).max() <= math.sqrt(3) * std * (1 + 1e-6)


def test_orthogonal_columns_are_orthonormal():
    # A QR decomposition of 1024x1024 is slow on a shared CPU; 256 suffices: orthonormal
    # columns imply entries of std 1/sqrt(n).
    n = 256
    w = np.asarray(onn.get_initializer("orthogonal")(jax.random.key(0), (n, n)), np.float64)
    np.testing.assert_allclose(w.T @ w, np.eye(n), atol=1e-5)
    assert abs(w.std() * math.sqrt(n) - 1) < 0.05


def test_zeros_and_constant_show_the_symmetry_problem():
    model = onn.MLP(4, (8,), 3, kernel_init=("constant", {"value": 0.1}), rngs=0)
    k = np.asarray(model.blocks[0].dense.kernel[...])
    assert np.all(k == 0.1)  # every hidden unit computes the same function
    h = np.asarray(model.blocks[0](np.ones((2, 4), np.float32), train=False))
    assert np.all(h == h[:, :1])
    z = onn.get_initializer("zeros")(jax.random.key(0), (3, 3))
    np.testing.assert_array_equal(np.asarray(z), 0.0)


def test_callable_passes_through_and_bad_options():
    init = jax.nn.initializers.normal(0.5)
    assert onn.get_initializer(init) is init
    with pytest.raises(ValueError, match="has no option"):
        onn.get_initializer("he_normal", stddev=1.0)
    with pytest.raises(TypeError, match=r"must be \(name, dict_of_options\)"):
        onn.get_initializer(("normal", 0.1))
