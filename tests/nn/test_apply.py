"""The pure apply contract: train/eval modes, running statistics, jit, grad, no mutation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optlab.nn as onn


@pytest.fixture(scope="module")
def bn_dropout_model():
    return onn.MLP(4, (8,), 3, norm="batch", dropout=0.5, rngs=0)


def _x(seed=0, n=16):
    return jnp.asarray(np.random.default_rng(seed).normal(2.0, 3.0, (n, 4)), jnp.float32)


def test_params_and_state_are_plain_dicts(bn_dropout_model):
    _apply, params, state = onn.functional(bn_dropout_model)
    assert isinstance(params, dict) and isinstance(state, dict)
    assert set(params["blocks"][0]) == {"dense", "norm"}
    assert set(state["blocks"][0]["norm"]) == {"mean", "var"}
    assert all(isinstance(x, jax.Array) for x in jax.tree.leaves((params, state)))


def test_eval_is_deterministic_and_uses_running_statistics(bn_dropout_model):
    apply, params, state = onn.functional(bn_dropout_model)
    x = _x()
    # Running statistics that differ from the batch's: eval must use them, not the batch's.
    mean = jnp.linspace(-1.0, 1.0, 8)
    var = jnp.linspace(0.5, 2.0, 8)
    state = {"blocks": {0: {"norm": {"mean": mean, "var": var}}}}
    y1, s1 = apply(params, state, x, train=False)
    y2, _ = apply(params, state, x, train=False, rng=jax.random.key(3))
    np.testing.assert_array_equal(np.asarray(y1), np.asarray(y2))
    assert s1 is state
    # NumPy reference of the eval-mode forward pass.
    p = jax.tree.map(np.asarray, params)
    h = np.asarray(x) @ p["blocks"][0]["dense"]["kernel"] + p["blocks"][0]["dense"]["bias"]
    n = p["blocks"][0]["norm"]
    h = (h - np.asarray(mean)) / np.sqrt(np.asarray(var) + 1e-5) * n["scale"] + n["bias"]
    h = np.maximum(h, 0.0)
    ref = h @ p["head"]["kernel"] + p["head"]["bias"]
    np.testing.assert_allclose(np.asarray(y1), ref, rtol=1e-5, atol=1e-5)


def test_train_uses_batch_statistics_and_updates_running_averages(bn_dropout_model):
    model = onn.MLP(4, (8,), 3, norm="batch", rngs=0)  # no dropout: output is checkable
    apply, params, state = onn.functional(model)
    x = _x()
    y, new_state = apply(params, state, x, train=True, rng=jax.random.key(0))
    p = jax.tree.map(np.asarray, params)
    h = np.asarray(x) @ p["blocks"][0]["dense"]["kernel"] + p["blocks"][0]["dense"]["bias"]
    mu, var = h.mean(0), h.var(0)
    hn = (h - mu) / np.sqrt(var + 1e-5) * p["blocks"][0]["norm"]["scale"]
    ref = np.maximum(hn + p["blocks"][0]["norm"]["bias"], 0) @ p["head"]["kernel"]
    np.testing.assert_allclose(np.asarray(y), ref + p["head"]["bias"], rtol=1e-4, atol=1e-4)
    stats = new_state["blocks"][0]["norm"]
    np.testing.assert_allclose(
        np.asarray(stats["mean"]), 0.99 * 0.0 + 0.01 * mu, rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(np.asarray(stats["var"]), 0.99 * 1.0 + 0.01 * var, rtol=1e-4)
    # The input state is not mutated.
    np.testing.assert_array_equal(np.asarray(state["blocks"][0]["norm"]["mean"]), 0.0)


def test_jit_grad_and_no_retrace(bn_dropout_model):
    apply, params, state = onn.functional(bn_dropout_model)
    traces = []

    @jax.jit
    def loss(params, state, x, y, key):
        traces.append(1)
        logits, new_state = apply(params, state, x, train=True, rng=key)
        return onn.softmax_cross_entropy_with_integer_labels(logits, y).mean(), new_state

    x, y = _x(), jnp.arange(16) % 3
    grads, new_state = jax.grad(loss, has_aux=True)(params, state, x, y, jax.random.key(0))
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    loss(params, new_state, x, y, jax.random.key(1))
    loss(params, new_state, x, y, jax.random.key(2))
    assert len(traces) == 1  # grad reuses the traced jaxpr; later calls hit the cache


def test_dropout_rng_changes_training_output_only(bn_dropout_model):
    apply, params, state = onn.functional(bn_dropout_model)
    x = _x()
    a, _ = apply(params, state, x, train=True, rng=jax.random.key(0))
    b, _ = apply(params, state, x, train=True, rng=jax.random.key(1))
    c, _ = apply(params, state, x, train=True, rng=jax.random.key(0))
    assert not np.allclose(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(c))


def test_train_must_be_given_as_bool(bn_dropout_model):
    apply, params, state = onn.functional(bn_dropout_model)
    with pytest.raises(TypeError, match="train"):
        apply(params, state, _x())  # train is a required keyword
    with pytest.raises(ValueError, match="train must be a Python bool"):
        apply(params, state, _x(), train=jnp.asarray(True))


def test_training_randomness_without_rng_is_a_clear_error(bn_dropout_model):
    apply, params, state = onn.functional(bn_dropout_model)
    with pytest.raises(ValueError, match=r"needs rng=a jax\.random key"):
        apply(params, state, _x(), train=True)


def test_merge_roundtrip(bn_dropout_model):
    apply, params, state = onn.functional(bn_dropout_model)
    model = apply.merge(params, state)
    np.testing.assert_array_equal(
        np.asarray(model(_x(), train=False)),
        np.asarray(apply(params, state, _x(), train=False)[0]),
    )
    assert apply == onn.functional(model)[0] and hash(apply) == hash(onn.functional(model)[0])


def test_functional_rejects_modules_without_the_convention():
    from flax import nnx

    with pytest.raises(ValueError, match="must take the keywords train and rng"):
        onn.functional(nnx.Linear(2, 2, rngs=nnx.Rngs(0)))
