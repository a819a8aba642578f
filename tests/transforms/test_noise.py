"""Tests of optlab.transforms.noise.add_noise: statistics against the formula and optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optlab as ol
from tests.helpers import TraceCounter

N = 200_000


def _noise_samples(tx, steps=3):
    params = {"a": jnp.zeros(N // 2), "b": jnp.zeros((N // 4, 2))}
    zeros = jax.tree.map(jnp.zeros_like, params)

    def step(state, _):
        u, state = tx.update(zeros, state, params)
        return state, jnp.concatenate([x.ravel() for x in jax.tree.leaves(u)])

    _, samples = jax.jit(lambda: jax.lax.scan(step, tx.init(params), None, length=steps))()
    return np.asarray(samples, np.float64)


def test_statistics_match_formula_and_optax():
    eta, gamma = 0.3, 0.55
    ours = _noise_samples(ol.add_noise(eta, gamma, key=1))
    ref = _noise_samples(optax.add_noise(eta, gamma, key=jax.random.key(2)))
    for t in range(3):
        var = eta / (1 + t) ** gamma
        # Standard errors with N samples: mean sqrt(var/N), variance var*sqrt(2/N); 5 sigma.
        for s in (ours[t], ref[t]):
            assert abs(s.mean()) < 5 * np.sqrt(var / N)
            assert abs(s.var() - var) < 5 * var * np.sqrt(2 / N)
    # Fresh noise every step, and not the same draws as optax's.
    assert np.corrcoef(ours[0], ours[1])[0, 1] < 0.02


def test_deterministic_and_key_or_seed():
    g = jnp.zeros(8)
    a, _ = ol.add_noise(1.0, 0.0, key=5).update(g, ol.add_noise(1.0, 0.0, key=5).init(g))
    b_tx = ol.add_noise(1.0, 0.0, seed=5)
    b, _ = b_tx.update(g, b_tx.init(g))
    c_tx = ol.add_noise(1.0, 0.0, key=jax.random.key(6))
    c, _ = c_tx.update(g, c_tx.init(g))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(a), np.asarray(c))
    with pytest.raises(ValueError, match="add_noise: give key or seed, not both"):
        ol.add_noise(1.0, 0.5, key=1, seed=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eta": -1.0, "gamma": 0.5}, r"add_noise: eta must be >= 0, got eta=-1\.0"),
        ({"eta": 1.0, "gamma": float("nan")}, "add_noise: gamma must be finite"),
    ],
    ids=["neg_eta", "nan_gamma"],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ol.add_noise(**kwargs)


def test_dtype_kept_and_count():
    g = {"w": jnp.ones((3, 2), jnp.bfloat16), "b": jnp.ones(2, jnp.float32)}
    tx = ol.add_noise(0.01, 0.55, key=0)
    state = tx.init(g)
    u, state = tx.update(g, state, None, value=1.0)
    assert u["w"].dtype == jnp.bfloat16 and u["b"].dtype == jnp.float32
    assert int(ol.get(state, "count")) == 1


def test_jit_equals_eager_without_recompiling():
    tx = ol.add_noise(0.5, 0.55, key=3)
    g = {"w": jnp.ones((2, 3))}
    counted = TraceCounter(tx.update)
    jitted = jax.jit(counted)
    s_jit = s_eager = tx.init(g)
    for _ in range(2):
        u_jit, s_jit = jitted(g, s_jit)
        u_eager, s_eager = tx.update(g, s_eager)
        # Same key, same draws: identical up to float32 rounding of the fused multiply-add.
        np.testing.assert_allclose(np.asarray(u_jit["w"]), np.asarray(u_eager["w"]), rtol=1e-6)
    assert counted.count == 1
    assert int(s_jit.count) == 2
