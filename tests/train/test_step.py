"""The compiled train/eval steps and the scanned epoch, against hand-written optax loops."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import optlab as ol
from optlab.data import Batches
from optlab.train.step import accuracy, evaluate_batches, weighted_mean
from tests.helpers import TraceCounter, assert_trees_close
from tests.train.models import Tiny, blobs, xent

STEP = ol.make_train_step(xent)
EVAL = ol.make_eval_step(xent)


def _batches(num_batches=6, batch=16, seed=0):
    x, y = blobs(num_batches * batch, seed=seed)
    return jnp.asarray(x.reshape(num_batches, batch, -1)), jnp.asarray(y.reshape(num_batches, -1))


def _forward(p, x):
    h = jax.nn.relu(x @ p["l1"]["kernel"] + p["l1"]["bias"])
    return h @ p["l2"]["kernel"] + p["l2"]["bias"]


def _reference(tx, params, batches):
    """A hand-written optax loop over the same batches: params, losses, accs, grad norms."""
    opt_state = tx.init(params)
    losses, accs, norms = [], [], []

    def objective(p, x, y):
        logits = _forward(p, x)
        return jnp.mean(xent(logits, y)), logits

    @jax.jit
    def step(params, opt_state, x, y):  # one jitted call per step: a plain Python loop
        (value, logits), g = jax.value_and_grad(objective, has_aux=True)(params, x, y)
        u, opt_state = tx.update(g, opt_state, params)
        return optax.apply_updates(params, u), opt_state, value, logits, g

    for x, y in zip(*batches, strict=True):
        params, opt_state, value, logits, g = step(params, opt_state, x, y)
        losses.append(float(value))
        accs.append(float(np.mean(np.argmax(np.asarray(logits), -1) == np.asarray(y))))
        norms.append(float(optax.tree.norm(g)))
    return params, losses, accs, norms


@pytest.mark.parametrize("which", ["adam", "sgd_momentum"])
def test_epoch_matches_hand_written_optax_loop(which):
    batches = _batches()
    make = {"adam": lambda: ol.adam(1e-2), "sgd_momentum": lambda: ol.sgd(0.1, momentum=0.9)}
    oracle = {"adam": optax.adam(1e-2), "sgd_momentum": optax.sgd(0.1, momentum=0.9)}[which]
    state = ol.TrainState.create(Tiny(), make[which]())
    ref_params, losses, accs, norms = _reference(oracle, state.params, batches)
    state, logs = ol.train_epoch(STEP, state, batches)
    # float32, 6 steps: the compiled scan fuses differently from the eager loop.
    assert_trees_close(state.params, ref_params, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(float(logs["loss"]), np.mean(losses), rtol=1e-5)
    np.testing.assert_allclose(float(logs["accuracy"]), np.mean(accs), rtol=1e-6)
    np.testing.assert_allclose(float(logs["grad_norm"]), np.mean(norms), rtol=1e-5)
    assert int(state.step) == 6 and int(logs["skipped_steps"]) == 0


def test_learning_rate_is_the_last_steps_value_of_a_schedule():
    schedule = lambda n: 0.1 / (1.0 + n)
    state = ol.TrainState.create(Tiny(), ol.scale_by_learning_rate(schedule))
    state, logs = ol.train_epoch(STEP, state, _batches())
    # The 6th step (count 5) used 0.1 / 6.
    np.testing.assert_allclose(float(logs["learning_rate"]), 0.1 / 6, rtol=1e-6)


def test_one_compilation_per_step_function_and_state_is_donated():
    counted = TraceCounter(ol.make_train_step(xent, metrics=()))
    tx = ol.scale_by_learning_rate(0.1)
    state = ol.TrainState.create(Tiny(), tx)
    batches = _batches()
    for _ in range(3):
        old = state
        state, _ = ol.train_epoch(counted, state, batches)
    assert counted.count == 1  # traced once: the three epochs share one executable
    assert all(leaf.is_deleted() for leaf in jax.tree.leaves(old.params))
    assert int(state.step) == 18


class _Recorder(NamedTuple):
    value: jax.Array
    metric: jax.Array
    grad_norm: jax.Array


def _recording_tx():
    """Records the extra arguments it gets; updates are plain SGD with rate 0.1."""

    def init(params):
        z = jnp.zeros((), jnp.float32)
        return _Recorder(z, z, z)

    def update(updates, state, params=None, *, value, grad, value_fn, metric=jnp.nan, **kw):
        del state, kw
        check = value_fn(params)  # the batch loss as a function of the parameters
        rec = _Recorder(
            jnp.asarray(value - check + value, jnp.float32),
            jnp.asarray(metric, jnp.float32),
            optax.tree.norm(grad),
        )
        return jax.tree.map(lambda g: -0.1 * g, updates), rec

    return ol.GradientTransformation(init, update)


def test_extra_arguments_reach_the_transformation():
    state = ol.TrainState.create(Tiny(), _recording_tx())
    x, y = blobs(16)
    params = state.params
    state, logs = jax.jit(STEP)(state, (jnp.asarray(x), jnp.asarray(y)), jnp.float32(0.75))
    expected = jnp.mean(xent(_forward(params, jnp.asarray(x)), jnp.asarray(y)))
    np.testing.assert_allclose(float(state.opt_state.value), float(expected), rtol=1e-6)
    np.testing.assert_allclose(float(state.opt_state.metric), 0.75)
    np.testing.assert_allclose(
        float(state.opt_state.grad_norm), float(logs["grad_norm"]), rtol=1e-6
    )


def test_plain_optax_transformation_without_extra_args():
    batches = _batches(num_batches=2)
    state = ol.TrainState.create(Tiny(), optax.sgd(0.1))
    ref_params, _, _, _ = _reference(optax.sgd(0.1), state.params, batches)
    state, logs = ol.train_epoch(STEP, state, batches)
    assert_trees_close(state.params, ref_params, rtol=2e-5, atol=2e-6)
    assert "learning_rate" not in logs  # optax.sgd records no learning rate


def test_lr_scale_multiplies_every_update():
    batches = _batches(num_batches=1)
    base = ol.TrainState.create(Tiny(), ol.scale_by_learning_rate(0.1))
    p0 = base.params
    half = base.replace(lr_scale=jnp.float32(0.5))
    full, _ = jax.jit(STEP)(base, (batches[0][0], batches[1][0]))
    halved, logs = jax.jit(STEP)(half, (batches[0][0], batches[1][0]))
    delta_full = jax.tree.map(lambda a, b: a - b, full.params, p0)
    delta_half = jax.tree.map(lambda a, b: a - b, halved.params, p0)
    assert_trees_close(
        delta_half, jax.tree.map(lambda d: 0.5 * d, delta_full), rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(float(logs["learning_rate"]), 0.05)


def test_eval_uses_running_statistics_and_no_dropout():
    model = Tiny(batchnorm=True, dropout=0.5)
    state = ol.TrainState.create(model, ol.scale_by_learning_rate(0.05))
    state, _ = ol.train_epoch(STEP, state, _batches())
    x, y = blobs(32, seed=3)
    stacked = (jnp.asarray(x)[None], jnp.asarray(y)[None])
    logs_a = evaluate_batches(EVAL, state, stacked)
    logs_b = evaluate_batches(EVAL, state, stacked)
    assert float(logs_a["loss"]) == float(logs_b["loss"])
    # Independent evaluation: BatchNorm with the running averages, written out.
    p, s = state.params, state.model_state
    bn_p, bn_s = p["bn"], s["bn"]
    h = x @ np.asarray(p["l1"]["kernel"]) + np.asarray(p["l1"]["bias"])
    h = (h - np.asarray(bn_s["mean"])) / np.sqrt(np.asarray(bn_s["var"]) + 1e-5)
    h = np.maximum(h * np.asarray(bn_p["scale"]) + np.asarray(bn_p["bias"]), 0.0)
    logits = h @ np.asarray(p["l2"]["kernel"]) + np.asarray(p["l2"]["bias"])
    ref = np.mean(np.asarray(xent(jnp.asarray(logits), jnp.asarray(y))))
    np.testing.assert_allclose(float(logs_a["loss"]), ref, rtol=1e-5)
    assert not np.allclose(np.asarray(s["bn"]["mean"]), 0.0)  # training moved the averages


def test_accuracy_forms():
    logits = jnp.array([[2.0, 0.1], [0.3, 0.9], [1.0, 0.0], [0.0, 3.0]])
    np.testing.assert_array_equal(accuracy(logits, jnp.array([0, 1, 1, 1])), [1, 1, 0, 1])
    onehot = jax.nn.one_hot(jnp.array([0, 0, 0, 1]), 2)
    np.testing.assert_array_equal(accuracy(logits, onehot), [1, 0, 1, 1])
    np.testing.assert_array_equal(accuracy(jnp.array([[1.0], [-1.0]]), jnp.array([1, 1])), [1, 0])


def test_bad_arguments():
    with pytest.raises(ValueError, match="make_train_step: unknown metric 'auc'"):
        ol.make_train_step(xent, metrics=("auc",))
    with pytest.raises(TypeError, match="make_eval_step: loss must be a function"):
        ol.make_eval_step("cross_entropy")
    with pytest.raises(TypeError, match="make_train_step: metrics must be a sequence"):
        ol.make_train_step(xent, metrics="accuracy")
    with pytest.raises(TypeError, match="make_train_step: skip_nonfinite must be a bool"):
        ol.make_train_step(xent, skip_nonfinite="yes")
    state = ol.TrainState.create(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), ol.sgd(0.1))
    batch = (jnp.ones((4, 2)), jnp.zeros((4,), jnp.int32))
    with pytest.raises(TypeError, match="train step: carry is a monitor's epoch carry"):
        ol.make_train_step(xent)(state, batch, None, {"step_sq": state.params})
    with pytest.raises(TypeError, match=r"TrainState\.create: model must be a flax\.nnx\.Module"):
        ol.TrainState.create(object(), ol.identity())
    with pytest.raises(TypeError, match="tx must be a gradient transformation"):
        ol.TrainState.create(nnx.Linear(1, 1, rngs=nnx.Rngs(0)), 0.1)


def _numpy_xent(params, x, y):
    """Per-example softmax cross-entropy of the Tiny MLP (no BatchNorm/dropout), float64."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    h = np.maximum(x @ p["l1"]["kernel"] + p["l1"]["bias"], 0.0)
    z = h @ p["l2"]["kernel"] + p["l2"]["bias"]
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(y)), y]


def test_masked_loss_is_the_mean_over_the_real_rows():
    """A padded batch: the loss, accuracy and gradient ignore the masked rows entirely."""
    x, y = blobs(10, seed=8)
    mask = np.array([1, 1, 1, 1, 1, 1, 1, 0, 0, 0], np.float32)
    # The padded rows hold wild values: were they weighted at all, the loss would show it.
    x_pad = x.copy()
    x_pad[7:] = 1e3
    state = ol.TrainState.create(Tiny(), ol.sgd(0.1))
    params = jax.tree.map(np.asarray, state.params)
    batch = Batches(jnp.asarray(x_pad), jnp.asarray(y), jnp.asarray(mask))
    new_state, logs = jax.jit(STEP)(state, batch)
    expected = _numpy_xent(params, x[:7].astype(np.float64), y[:7]).mean()
    np.testing.assert_allclose(float(logs["loss"]), expected, rtol=1e-6)
    real_only = ol.TrainState.create(Tiny(), ol.sgd(0.1))
    ref_state, ref_logs = jax.jit(STEP)(real_only, (jnp.asarray(x[:7]), jnp.asarray(y[:7])))
    assert_trees_close(new_state.params, ref_state.params, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(float(logs["accuracy"]), float(ref_logs["accuracy"]), rtol=1e-6)
    np.testing.assert_allclose(float(logs["grad_norm"]), float(ref_logs["grad_norm"]), rtol=1e-5)
    assert float(weighted_mean(jnp.array([1.0, jnp.nan]), jnp.array([1.0, 0.0]))) == 1.0


def test_epoch_means_weight_steps_by_their_real_rows():
    """Two batches of 4 and 2 real rows: the epoch loss is the mean over the 6 rows (float64
    oracle: each step's losses at the parameters of that step), not the mean of two means."""
    x, y = blobs(8, seed=9)
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], np.float32)
    tx = ol.sgd(0.1)
    state = ol.TrainState.create(Tiny(), tx)
    p0 = jax.tree.map(np.asarray, state.params)
    batches = Batches(jnp.asarray(x.reshape(2, 4, -1)), jnp.asarray(y.reshape(2, 4)), mask)
    after_one, _ = jax.jit(STEP)(
        ol.TrainState.create(Tiny(), tx), Batches(batches.x[0], batches.y[0], batches.mask[0])
    )
    p1 = jax.tree.map(np.asarray, after_one.params)
    state, logs = ol.train_epoch(STEP, state, batches)
    losses = np.concatenate([_numpy_xent(p0, x[:4], y[:4]), _numpy_xent(p1, x[4:6], y[4:6])])
    np.testing.assert_allclose(float(logs["loss"]), losses.mean(), rtol=1e-5)


def _state_leaves(state):
    out = []
    for leaf in jax.tree.leaves((state.params, state.model_state, state.opt_state)):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        out.append(np.asarray(leaf))
    return out


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
def test_nonfinite_step_is_skipped_and_leaves_the_state_bitwise_unchanged(bad):
    model = Tiny(batchnorm=True, dropout=0.2)
    state = ol.TrainState.create(model, ol.adam(1e-2), seed=1)
    x, y = blobs(16, seed=3)
    state, _ = jax.jit(STEP)(state, (jnp.asarray(x), jnp.asarray(y)))  # moments, BN stats
    before = _state_leaves(state)
    x_bad = x.copy()
    x_bad[5, 2] = bad
    after, logs = jax.jit(STEP)(state, (jnp.asarray(x_bad), jnp.asarray(y)))
    assert int(logs["skipped"]) == 1 and int(after.nonfinite_streak) == 1
    assert int(after.step) == int(state.step) + 1  # the counter advances: new dropout masks
    for a, b in zip(_state_leaves(after), before, strict=True):
        np.testing.assert_array_equal(a, b)
    # A finite step afterwards moves on and resets the streak.
    moved, logs = jax.jit(STEP)(after, (jnp.asarray(x), jnp.asarray(y)))
    assert int(logs["skipped"]) == 0 and int(moved.nonfinite_streak) == 0
    assert not np.array_equal(_state_leaves(moved)[0], before[0])


def test_unguarded_step_lets_nan_through():
    step = ol.make_train_step(xent, skip_nonfinite=False)
    state = ol.TrainState.create(Tiny(), ol.sgd(0.1))
    x, y = blobs(8, seed=3)
    x[0, 0] = np.nan
    state, logs = jax.jit(step)(state, (jnp.asarray(x), jnp.asarray(y)))
    assert "skipped" not in logs
    assert np.isnan(np.asarray(state.params["l1"]["kernel"])).any()


def test_epoch_with_skipped_steps_averages_the_others():
    """Steps 2 and 3 of 4 hold a NaN row: they are skipped, the epoch loss is the mean over
    the real rows of the two others, and the longest run of skipped steps is 2."""
    x, y = blobs(32, seed=4)
    xs = x.reshape(4, 8, -1).copy()
    xs[1, 0, 0] = np.nan
    xs[2, 3, 1] = np.nan
    ys = y.reshape(4, 8)
    state = ol.TrainState.create(Tiny(), ol.sgd(0.1))
    p0 = jax.tree.map(np.asarray, state.params)
    state, logs = ol.train_epoch(STEP, state, (jnp.asarray(xs), jnp.asarray(ys)))
    assert int(logs["skipped_steps"]) == 2 and int(logs["nonfinite_streak"]) == 2
    ref = ol.TrainState.create(Tiny(), ol.sgd(0.1))
    ref, _ = jax.jit(STEP)(ref, (jnp.asarray(xs[0]), jnp.asarray(ys[0])))
    p1 = jax.tree.map(np.asarray, ref.params)
    ref, _ = jax.jit(STEP)(ref, (jnp.asarray(xs[3]), jnp.asarray(ys[3])))
    assert_trees_close(state.params, ref.params, rtol=1e-6, atol=1e-7)
    losses = np.concatenate([_numpy_xent(p0, xs[0], ys[0]), _numpy_xent(p1, xs[3], ys[3])])
    np.testing.assert_allclose(float(logs["loss"]), losses.mean(), rtol=1e-5)


def test_evaluate_batches_weights_by_real_rows():
    """Evaluation in padded batches of 4 equals one pass over all 10 rows (float64 oracle)."""
    x, y = blobs(10, seed=2)
    state = ol.TrainState.create(Tiny(), ol.identity())
    stacked = ol.data.batches(x, y, 4, drop_remainder=False, shuffle=False)
    logs = evaluate_batches(EVAL, state, stacked)
    params = jax.tree.map(np.asarray, state.params)
    np.testing.assert_allclose(
        float(logs["loss"]), _numpy_xent(params, x.astype(np.float64), y).mean(), rtol=1e-6
    )
