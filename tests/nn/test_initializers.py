"""Initializers against the published formulas (and torch's), the same values under jit/vmap,
and building a model without compiling anything."""

import logging
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

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
    if name.endswith("normal") and name != "normal":  # truncated at 2 sigma of the unscaled draw
        sigma = std / 0.87962566103423978
        assert np.abs(w).max() <= 2 * sigma * (1 + 1e-6)
        assert np.abs(w).max() > 1.9 * sigma


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


def _torch_default_bound(fan_in):
    """torch.nn.init.kaiming_uniform_(w, a=sqrt(5)) as documented: gain = sqrt(2 / (1 + a^2)),
    std = gain / sqrt(fan_in), bound = sqrt(3) * std."""
    gain = math.sqrt(2.0 / (1.0 + 5.0))
    return math.sqrt(3.0) * gain / math.sqrt(fan_in)


@pytest.mark.parametrize(("fan_in", "fan_out"), [(300, 200), (7, 1000)])
def test_torch_default_is_uniform_within_the_documented_bound(fan_in, fan_out):
    layer = onn.Dense(
        fan_in, fan_out, kernel_init="torch_default", bias_init="torch_default", rngs=0
    )
    bound = _torch_default_bound(fan_in)
    assert math.isclose(bound, 1 / math.sqrt(fan_in))  # the documented simplification
    w = np.asarray(layer.kernel[...], np.float64).ravel()
    b = np.asarray(layer.bias[...], np.float64)
    for values in (w, b):  # nn.Linear's bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as well
        assert np.abs(values).max() <= bound * (1 + 1e-6)
    assert np.abs(w).max() > 0.99 * bound  # fills the interval
    assert stats.kstest(w, "uniform", args=(-bound, 2 * bound)).pvalue > 1e-3
    assert stats.kstest(b, "uniform", args=(-bound, 2 * bound)).pvalue > 1e-3


def test_torch_default_matches_torch_itself():
    torch = pytest.importorskip(
        "torch", reason="torch is optional (the bench extra); the NumPy reference above runs"
    )
    torch.manual_seed(0)
    reference = torch.nn.Linear(300, 200)
    ours = onn.Dense(300, 200, kernel_init="torch_default", bias_init="torch_default", rngs=0)
    # Different generators: the same distribution (two-sample KS) and the same bounds.
    tw = reference.weight.detach().numpy().ravel()
    ow = np.asarray(ours.kernel[...]).ravel()
    assert stats.ks_2samp(tw, ow).pvalue > 1e-3
    assert abs(np.abs(tw).max() - np.abs(ow).max()) < 1e-3
    tb = reference.bias.detach().numpy()
    assert stats.ks_2samp(tb, np.asarray(ours.bias[...])).pvalue > 1e-3


def test_torch_default_on_a_bias_needs_its_fan_in():
    with pytest.raises(ValueError, match="needs the layer's fan_in"):
        onn.get_initializer("torch_default")(jax.random.key(0), (5,))
    b = onn.get_initializer("torch_default", fan_in=4)(jax.random.key(0), (1000,))
    assert np.abs(np.asarray(b)).max() <= 0.5


@pytest.mark.parametrize("name", ["he_normal", "glorot_uniform", "orthogonal", "torch_default"])
def test_same_values_eagerly_under_jit_and_vmap(name):
    init = onn.get_initializer(name)
    key = jax.random.key(3)
    eager = np.asarray(init(key, (6, 5)))
    np.testing.assert_array_equal(np.asarray(jax.jit(lambda k: init(k, (6, 5)))(key)), eager)
    keys = jax.random.split(key, 3)
    stacked = jax.vmap(lambda k: init(k, (6, 5)))(keys)
    np.testing.assert_array_equal(np.asarray(stacked[1]), np.asarray(init(keys[1], (6, 5))))
    assert not np.allclose(np.asarray(stacked[0]), np.asarray(stacked[1]))
    bf16 = init(key, (6, 5), jnp.bfloat16)
    assert bf16.dtype == jnp.bfloat16
    np.testing.assert_array_equal(
        np.asarray(bf16, np.float32), eager.astype(jnp.bfloat16).astype(np.float32)
    )


def test_building_a_new_architecture_compiles_nothing():
    options = {"norm": "batch", "dropout": 0.1, "activation": "prelu", "residual": (False, True)}
    onn.MLP(3, (5, 5), 2, rngs=0, **options)  # the process's one-time compilations
    onn.Ensemble(lambda r: onn.MLP(3, (5,), 2, rngs=r, **{**options, "residual": False}), 2, rngs=0)
    compiled = []

    class Recorder(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("Compiling"):
                compiled.append(record.getMessage())

    handler = Recorder()
    logging.getLogger("jax").addHandler(handler)
    try:
        with jax.log_compiles(True):
            onn.MLP(37, (53, 29), 7, rngs=1, **options)
            onn.MLP(11, (13,), 3, norm="layer", kernel_init="torch_default", rngs=1)
            onn.Ensemble(lambda r: onn.MLP(6, (9,), 4, norm="group", rngs=r), 4, rngs=1)
    finally:
        logging.getLogger("jax").removeHandler(handler)
    assert compiled == []
