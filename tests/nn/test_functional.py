"""The one functional form: optlab models and plain nnx modules, train/eval, rng, jit/grad/vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import optlab.nn as onn


@pytest.fixture(scope="module")
def bn_dropout_model():
    return onn.MLP(4, (8,), 3, norm="batch", dropout=0.5, rngs=0)


def _x(seed=0, n=16):
    return jnp.asarray(np.random.default_rng(seed).normal(2.0, 3.0, (n, 4)), jnp.float32)


class PlainNet(nnx.Module):
    """A plain nnx module (Flax's own layers, mode by flags, RNG stream held by the Dropout)."""

    def __init__(self, rngs):
        self.linear = nnx.Linear(4, 8, rngs=rngs)
        self.bn = nnx.BatchNorm(8, rngs=rngs)
        self.drop = nnx.Dropout(0.5, rngs=rngs)
        self.head = nnx.Linear(8, 3, rngs=rngs)

    def __call__(self, x):
        return self.head(self.drop(nnx.relu(self.bn(self.linear(x)))))


def _numpy_forward(p, mean, var, x):
    """The eval-mode forward pass of MLP(4, (8,), 3, norm="batch") in float64."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), p)
    h = (
        np.asarray(x, np.float64) @ p["blocks"][0]["dense"]["kernel"]
        + p["blocks"][0]["dense"]["bias"]
    )
    n = p["blocks"][0]["norm"]
    h = (h - mean) / np.sqrt(var + 1e-5) * n["scale"] + n["bias"]
    return np.maximum(h, 0.0) @ p["head"]["kernel"] + p["head"]["bias"]


def test_params_and_state_are_plain_dicts(bn_dropout_model):
    _apply, params, state = onn.functional(bn_dropout_model)
    assert isinstance(params, dict) and isinstance(state, dict)
    assert set(params["blocks"][0]) == {"dense", "norm"}
    assert set(state["blocks"][0]["norm"]) == {"mean", "var"}
    assert set(state["rngs"]) == {"key", "count"}  # the model's own dropout stream
    assert all(isinstance(x, jax.Array) for x in jax.tree.leaves((params, state)))


def test_eval_is_deterministic_and_uses_running_statistics(bn_dropout_model):
    apply, params, state = onn.functional(bn_dropout_model)
    x = _x()
    # Running statistics that differ from the batch's: eval must use them, not the batch's.
    mean, var = np.linspace(-1.0, 1.0, 8), np.linspace(0.5, 2.0, 8)
    state["blocks"][0]["norm"] = {
        "mean": jnp.asarray(mean, jnp.float32),
        "var": jnp.asarray(var, jnp.float32),
    }
    y1, s1 = apply(params, state, x, train=False)
    y2, _ = apply(params, state, x, train=False, rng=jax.random.key(3))
    np.testing.assert_array_equal(np.asarray(y1), np.asarray(y2))
    assert s1 is state
    np.testing.assert_allclose(
        np.asarray(y1), _numpy_forward(params, mean, var, x), rtol=1e-5, atol=1e-5
    )


def test_train_uses_batch_statistics_and_updates_running_averages():
    model = onn.MLP(4, (8,), 3, norm="batch", rngs=0)  # no dropout: output is checkable
    apply, params, state = onn.functional(model)
    x = _x()
    y, new_state = apply(params, state, x, train=True, rng=jax.random.key(0))
    p = jax.tree.map(np.asarray, params)
    h = np.asarray(x) @ p["blocks"][0]["dense"]["kernel"] + p["blocks"][0]["dense"]["bias"]
    mu, var = h.mean(0), h.var(0)
    np.testing.assert_allclose(
        np.asarray(y), _numpy_forward(params, mu, var, x), rtol=1e-4, atol=1e-4
    )
    stats = new_state["blocks"][0]["norm"]
    np.testing.assert_allclose(np.asarray(stats["mean"]), 0.01 * mu, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(stats["var"]), 0.99 + 0.01 * var, rtol=1e-4)
    np.testing.assert_array_equal(
        np.asarray(state["blocks"][0]["norm"]["mean"]), 0.0
    )  # not mutated


def test_jit_grad_vmap_scan_and_no_retrace(bn_dropout_model):
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
    assert sum(float(np.abs(np.asarray(g)).sum()) for g in jax.tree.leaves(grads)) > 0
    loss(params, new_state, x, y, jax.random.key(1))
    loss(params, new_state, x, y, jax.random.key(2))
    assert len(traces) == 1  # grad reuses the traced jaxpr; later calls hit the cache
    # vmap over keys (each key its own masks, as the unbatched call) and lax.scan over steps
    # (the state threaded through, the stream advancing once per step), in one compilation.
    keys = jax.random.split(jax.random.key(5), 3)

    @jax.jit
    def batched_and_scanned(keys, state):
        ys, _ = jax.vmap(lambda k: apply(params, state, x, train=True, rng=k))(keys)
        single, _ = apply(params, state, x, train=True, rng=keys[1])

        def body(s, _):
            out, s = apply(params, s, x, train=True)
            return s, out

        final, outs = jax.lax.scan(body, state, None, length=3)
        return ys, single, final, outs

    ys, single, final, outs = batched_and_scanned(keys, state)
    np.testing.assert_allclose(np.asarray(ys[1]), np.asarray(single), rtol=1e-6, atol=1e-6)
    assert int(final["rngs"]["count"]) == int(state["rngs"]["count"]) + 3
    assert not np.allclose(np.asarray(outs[0]), np.asarray(outs[1]))


def test_rng_none_draws_from_the_models_stream_as_the_nnx_call_does():
    model = onn.MLP(4, (8,), 3, dropout=0.5, rngs=nnx.Rngs(params=0, dropout=7))
    apply, params, state = onn.functional(model)
    x = _x()
    y_pure, new_state = apply(params, state, x, train=True)
    y_nnx = model(x)  # built in training mode, draws from the same stream
    np.testing.assert_array_equal(np.asarray(y_pure), np.asarray(y_nnx))
    assert int(new_state["rngs"]["count"]) == int(state["rngs"]["count"]) + 1
    # An explicit key leaves the stream alone and decides the masks by itself.
    a, s_a = apply(params, state, x, train=True, rng=jax.random.key(0))
    b, _ = apply(params, state, x, train=True, rng=jax.random.key(1))
    c, _ = apply(params, new_state, x, train=True, rng=jax.random.key(0))
    assert not np.allclose(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(c))
    assert int(s_a["rngs"]["count"]) == int(state["rngs"]["count"])
    np.testing.assert_array_equal(
        np.asarray(a), np.asarray(model(x, train=True, rng=jax.random.key(0)))
    )


def test_plain_nnx_module_matches_its_own_train_and_eval_calls():
    model = PlainNet(nnx.Rngs(0))
    apply, params, state = onn.functional(model)
    assert model.drop.deterministic is False  # functional does not touch the model's mode
    x = _x()
    y_train, new_state = apply(params, state, x, train=True)
    reference = PlainNet(nnx.Rngs(0))
    reference.train()
    np.testing.assert_array_equal(np.asarray(y_train), np.asarray(reference(x)))
    np.testing.assert_allclose(
        np.asarray(new_state["bn"]["mean"]), np.asarray(reference.bn.mean[...]), rtol=1e-6
    )
    reference.eval()
    y_eval, s = apply(params, new_state, x, train=False)
    np.testing.assert_array_equal(np.asarray(y_eval), np.asarray(reference(x)))
    assert s is new_state
    # rng= reseeds the module's streams for the call: a function of the key, streams kept.
    a, s_a = apply(params, state, x, train=True, rng=jax.random.key(0))
    b, _ = apply(params, new_state, x, train=True, rng=jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(a), np.asarray(y_train))
    np.testing.assert_array_equal(
        np.asarray(s_a["drop"]["rngs"]["count"]), np.asarray(state["drop"]["rngs"]["count"])
    )


def test_train_must_be_given_as_bool(bn_dropout_model):
    apply, params, state = onn.functional(bn_dropout_model)
    with pytest.raises(TypeError, match="train"):
        apply(params, state, _x())  # train is a required keyword
    with pytest.raises(TypeError, match="train must be a Python bool"):
        apply(params, state, _x(), train=jnp.asarray(True))
    with pytest.raises(TypeError, match=r"functional: model must be a flax\.nnx\.Module"):
        onn.functional(lambda x: x)


def test_layer_without_a_stream_needs_a_key():
    apply, params, state = onn.functional(onn.Dropout(0.5))  # built without rngs
    with pytest.raises(
        ValueError, match=r"Dropout: training mode is random .* holds no RNG stream"
    ):
        apply(params, state, _x(), train=True)
    y, _ = apply(params, state, _x(), train=True, rng=jax.random.key(0))
    assert 0 < int(jnp.sum(y == 0)) < y.size


def test_merge_roundtrip_in_eval_mode(bn_dropout_model):
    apply, params, state = onn.functional(bn_dropout_model)
    model = apply.merge(params, state)
    assert model.deterministic and model.blocks[0].norm.use_running_average
    np.testing.assert_array_equal(
        np.asarray(model(_x())), np.asarray(apply(params, state, _x(), train=False)[0])
    )
    # Hashable by structure, whatever mode the model it came from was in.
    again = onn.functional(model)[0]
    assert apply == again and hash(apply) == hash(again)
