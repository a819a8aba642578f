"""Flax nnx conventions: train()/eval(), model(x), RNG streams held by the model, flax's loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import optlab as ol
import optlab.nn as onn

RNG = np.random.default_rng(0)
Y = RNG.integers(0, 3, 64).astype(np.int32)
X = (RNG.normal(size=(3, 4))[Y] * 2.0 + RNG.normal(size=(64, 4))).astype(np.float32)


def _data(a):
    """An array's values; a PRNG key's underlying integers."""
    if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
        a = jax.random.key_data(a)
    return np.asarray(a)


def _loss(model, x, y):
    return onn.softmax_cross_entropy_with_integer_labels(model(x), y).mean()


@nnx.jit
def _train_step(model, optimizer, x, y):
    loss, grads = nnx.value_and_grad(_loss)(model, x, y)
    optimizer.update(model, grads)
    return loss


def test_flax_loop_trains_an_mlp_with_batchnorm_and_dropout():
    model = onn.MLP(4, (16,), 3, norm="batch", dropout=0.2, rngs=0)
    optimizer = nnx.Optimizer(model, ol.adam(1e-3), wrt=nnx.Param)
    model.train()
    losses = [float(_train_step(model, optimizer, X, Y)) for _ in range(60)]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    assert int(model.rngs.count[...]) == 60  # one draw from the model's stream per step
    model.eval()
    a, b = model(X), model(X)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # eval: deterministic
    # Eval mode is the NumPy forward pass with the running averages and no dropout.
    arrays = nnx.to_pure_dict(nnx.state(model, nnx.Not(nnx.RngState)))
    p = jax.tree.map(lambda v: np.asarray(v, np.float64), arrays)
    block = p["blocks"][0]
    h = X.astype(np.float64) @ block["dense"]["kernel"] + block["dense"]["bias"]
    norm = block["norm"]
    h = (h - norm["mean"]) / np.sqrt(norm["var"] + 1e-5) * norm["scale"] + norm["bias"]
    ref = np.maximum(h, 0) @ p["head"]["kernel"] + p["head"]["bias"]
    np.testing.assert_allclose(np.asarray(a), ref, rtol=1e-4, atol=1e-4)


def test_one_flax_step_equals_the_same_step_through_functional():
    def make():
        return onn.MLP(4, (8, 8), 3, norm="batch", dropout=0.3, dropconnect=0.2, rngs=1)

    nnx_model = make()
    optimizer = nnx.Optimizer(nnx_model, ol.adam(1e-3), wrt=nnx.Param)
    loss_nnx = _train_step(nnx_model, optimizer, X, Y)

    apply, params, state = onn.functional(make())
    tx = ol.adam(1e-3)

    def loss_fn(p):
        logits, new_state = apply(p, state, X, train=True)  # rng=None: the model's stream
        return onn.softmax_cross_entropy_with_integer_labels(logits, Y).mean(), new_state

    @jax.jit
    def pure_step(params):
        (loss, new_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, _ = tx.update(grads, tx.init(params), params)
        return loss, ol.apply_updates(params, updates), new_state

    loss_pure, new_params, new_state = pure_step(params)
    # Same arithmetic compiled in two programs: equal to float32 rounding (1 ulp of fusion).
    close = lambda a, b: np.testing.assert_allclose(_data(a), _data(b), rtol=1e-6, atol=1e-7)
    close(loss_pure, loss_nnx)
    jax.tree.map(close, nnx.to_pure_dict(nnx.state(nnx_model, nnx.Param)), new_params)
    jax.tree.map(close, nnx.to_pure_dict(nnx.state(nnx_model, nnx.Not(nnx.Param))), new_state)


def test_train_and_eval_switch_every_layer_and_calls_can_override():
    model = onn.MLP(
        4, (8,), 3, norm="batch", dropout=0.5, input_noise=0.1, activation="rrelu", rngs=0
    )
    flags = lambda: {
        m.deterministic for _, m in nnx.iter_modules(model) if hasattr(m, "deterministic")
    }
    assert flags() == {False} and model.blocks[0].norm.use_running_average is False
    model.eval()
    assert flags() == {True} and model.blocks[0].norm.use_running_average is True
    count = int(model.rngs.count[...])
    y = model(X)
    assert int(model.rngs.count[...]) == count  # evaluation draws nothing
    # train= overrides the mode for one call; rng= decides the masks.
    a = model(X, train=True, rng=jax.random.key(0))
    b = model(X, train=True, rng=jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(a), np.asarray(y))
    # Still in eval mode (the training calls did move BatchNorm's averages, as in Flax).
    count = int(model.rngs.count[...])
    np.testing.assert_array_equal(np.asarray(model(X)), np.asarray(model(X)))
    assert int(model.rngs.count[...]) == count
    # nnx.view gives an evaluation-mode view without touching the model.
    model.train()
    view = nnx.view(model, deterministic=True, use_running_average=True)
    assert not model.deterministic and view.deterministic
    np.testing.assert_array_equal(np.asarray(view(X)), np.asarray(view(X)))
    # Freezing one kind of layer with Flax's set_attributes works as on Flax's own layers.
    model.train()
    model.set_attributes(nnx.BatchNorm, use_running_average=True)
    before = np.asarray(model.blocks[0].norm.mean[...])
    model(X)
    np.testing.assert_array_equal(np.asarray(model.blocks[0].norm.mean[...]), before)


def test_rngs_streams_follow_flax_and_reseed_replays_the_masks():
    model = onn.MLP(4, (32,), 3, dropout=0.5, rngs=nnx.Rngs(params=0, dropout=1))
    same_params = onn.MLP(4, (32,), 3, dropout=0.5, rngs=nnx.Rngs(params=0, dropout=2))
    np.testing.assert_array_equal(  # "params" draws the weights, "dropout" only the masks
        np.asarray(model.blocks[0].dense.kernel[...]),
        np.asarray(same_params.blocks[0].dense.kernel[...]),
    )
    first, second = model(X), model(X)
    assert not np.allclose(np.asarray(first), np.asarray(second))
    nnx.reseed(model, dropout=3)
    replay = model(X)
    nnx.reseed(model, dropout=3)
    np.testing.assert_array_equal(np.asarray(model(X)), np.asarray(replay))
    with pytest.raises(ValueError, match="'dropout' stream of rngs"):
        onn.MLP(4, (8,), 3, dropout=0.5, rngs=nnx.Rngs(params=0))
    # Without randomness the model holds no stream at all.
    assert onn.MLP(4, (8,), 3, rngs=0).rngs is None


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: onn.Dropout(0.5, rngs=0), id="Dropout"),
        pytest.param(lambda: onn.Dense(4, 4, dropconnect=0.5, rngs=0), id="Dense-dropconnect"),
        pytest.param(lambda: onn.RReLU(rngs=0), id="RReLU"),
        pytest.param(lambda: onn.GaussianNoise(0.5, rngs=0), id="GaussianNoise"),
        pytest.param(
            lambda: onn.Block(4, 4, dropout=0.3, residual=True, stochastic_depth=0.5, rngs=0),
            id="Block",
        ),
    ],
)
def test_random_layers_use_their_own_stream_in_training_mode_only(make):
    layer = make()
    x = -jnp.abs(jnp.asarray(X[:8]))  # negative inputs: RReLU's slopes show
    a, b = layer(x), layer(x)
    assert not np.allclose(np.asarray(a), np.asarray(b))
    layer.eval()
    c, d = layer(x), layer(x)
    np.testing.assert_array_equal(np.asarray(c), np.asarray(d))


def test_ensemble_members_draw_their_own_masks():
    ens = onn.Ensemble(lambda r: onn.MLP(4, (8,), 3, dropout=0.5, rngs=r), 3, rngs=0)
    keys = np.asarray(jax.random.key_data(ens.members.rngs.key[...]))
    assert len({tuple(k) for k in keys}) == 3  # one stream per member
    ys = ens(X)
    assert ys.shape == (3, 64, 3)
    np.testing.assert_array_equal(np.asarray(ens.members.rngs.count[...]), [1, 1, 1])
    # Member i in training mode is that member alone, called with the key its stream drew.
    graphdef, state = nnx.split(ens.members)
    member = nnx.merge(graphdef, jax.tree.map(lambda a: a[1], state))
    stream_key = jax.random.wrap_key_data(keys[1])  # a stream's n-th draw: fold_in(key, n)
    alone = member(X, train=True, rng=jax.random.fold_in(stream_key, 0))
    np.testing.assert_allclose(np.asarray(ys[1]), np.asarray(alone), rtol=1e-6, atol=1e-6)
    ens.eval()
    np.testing.assert_array_equal(np.asarray(ens(X)), np.asarray(ens(X)))


def test_readme_minimize_snippet_runs():
    model = onn.MLP(4, (8,), 3, rngs=0)
    x, y = jnp.asarray(X), jnp.asarray(Y)

    def cross_entropy(logits, labels):
        return onn.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    graphdef, params = nnx.split(model, nnx.Param)
    loss = lambda p, x, y: cross_entropy(nnx.merge(graphdef, p)(x), y)
    result = ol.minimize(loss, params, method="lbfgs", tol=1e-6, max_steps=50, args=(x, y))
    initial = float(loss(params, x, y))
    assert float(result.value) < 0.5 * initial
    np.testing.assert_allclose(float(loss(result.params, x, y)), float(result.value), rtol=1e-5)
    # The same objective through the functional form (evaluation mode) agrees.
    apply, _, state = onn.functional(model)
    pure = cross_entropy(apply(nnx.to_pure_dict(result.params), state, x, train=False)[0], y)
    np.testing.assert_allclose(float(pure), float(result.value), rtol=1e-5)
