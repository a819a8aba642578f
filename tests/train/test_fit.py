"""fit: data order, determinism, validation, the metric passed to controllers, progress, errors."""

import io
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optlab as ol
import optlab.data
from optlab.train.fit import epoch_permutation
from tests.helpers import assert_trees_close
from tests.train.models import Tiny, blobs, xent

TX = ol.sgd(0.1, momentum=0.9)
DATA = blobs(96)
TIMING = ("time", "steps_per_second")


def _fit(tx=TX, data=DATA, **kw):
    args = dict(loss=xent, epochs=3, batch_size=16, progress=False, seed=0)
    args.update(kw)
    return ol.fit(Tiny(), tx, data, **args)


def test_same_seed_same_history_bitwise_other_seed_differs():
    h1, m1 = _fit(validation_split=0.25)
    h2, m2 = _fit(validation_split=0.25)
    h3, _ = _fit(validation_split=0.25, seed=1)
    for key in h1.keys():
        if key not in TIMING:
            assert h1[key] == h2[key], key
    for a, b in zip(jax.tree.leaves(_params(m1)), jax.tree.leaves(_params(m2)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert h1["loss"] != h3["loss"]  # the data order follows the seed
    assert set(h1.keys()) >= {
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "grad_norm",
        "learning_rate",
        "time",
        "steps_per_second",
    }


def test_epochs_follow_epoch_permutation_and_validation_is_the_tail():
    x, y = blobs(100, seed=4)
    history, model = _fit(data=(x, y), epochs=2, validation_split=0.2, batch_size=16)
    # Independent replay: the first 80 rows, visited in epoch_permutation order, 5 batches of
    # 16 per epoch (no remainder), through the public functional pieces.
    xt, yt = x[:80], y[:80]
    state = ol.TrainState.create(Tiny(), TX)
    step = ol.make_train_step(xent)
    for epoch in range(2):
        perm = epoch_permutation(0, epoch, 80)[:80].reshape(5, 16)
        state, logs = ol.train_epoch(step, state, (jnp.asarray(xt[perm]), jnp.asarray(yt[perm])))
        np.testing.assert_allclose(history["loss"][epoch], float(logs["loss"]), rtol=1e-6)
    assert_trees_close(_params(model), state.params, rtol=1e-6, atol=1e-7)
    ev = ol.make_eval_step(xent)
    val = jax.jit(ev)(state, (jnp.asarray(x[80:]), jnp.asarray(y[80:])))
    np.testing.assert_allclose(history["val_loss"][-1], float(val["loss"]), rtol=1e-6)


def _params(model):
    from flax import nnx

    return nnx.to_pure_dict(nnx.state(model, nnx.Param))


class _MetricSeen(NamedTuple):
    metric: jax.Array


def _metric_recorder():
    """SGD(0.1) that records the ``metric`` extra argument of its last update."""

    def init(params):
        return _MetricSeen(jnp.float32(jnp.nan))

    def update(updates, state, params=None, *, metric=jnp.nan, **kw):
        return jax.tree.map(lambda g: -0.1 * g, updates), _MetricSeen(jnp.float32(metric))

    return ol.GradientTransformation(init, update)


def test_tx_metric_passes_the_previous_validation_value():
    seen = []

    class Spy(ol.callbacks.Callback):
        def on_epoch_end(self, loop, epoch, logs):
            seen.append(float(loop.state.opt_state.metric))

    x, y = DATA
    val = (x[:32], y[:32])
    history, _ = _fit(
        tx=_metric_recorder(),
        data=(x[32:], y[32:]),
        validation_data=val,
        tx_metric="val_loss",
        callbacks=[Spy()],
    )
    untrained = ol.make_eval_step(xent)
    state0 = ol.TrainState.create(Tiny(), ol.identity())
    first = float(jax.jit(untrained)(state0, (jnp.asarray(val[0]), jnp.asarray(val[1])))["loss"])
    np.testing.assert_allclose(seen, [first, *history["val_loss"][:-1]], rtol=1e-6)


def test_progress_plain_lines_rich_bar_and_silence(capsys):
    _fit(epochs=2, progress=True)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[:2] for line in lines] == [["epoch", "1/2"], ["epoch", "2/2"]]
    assert "loss" in lines[0] and "steps/s" in lines[0]
    _fit(epochs=2, progress=False)
    assert capsys.readouterr().out == ""

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    from optlab.train.progress import Progress

    stream = Terminal()
    bar = Progress(2, stream=stream)
    assert bar.mode == "rich"
    bar.start()
    bar.epoch_end(0, {"loss": 0.5, "val_accuracy": 0.9, "steps_per_second": 10.0})
    bar.stop()
    assert "val_accuracy 0.9000" in stream.getvalue()


def test_fit_updates_the_model_in_place_and_accepts_a_dataset():
    ds = ol.data.load("blobs", num_samples=80)
    model = Tiny(din=ds.num_features, dout=ds.num_classes)
    before = jax.tree.map(np.asarray, _params(model))
    history, out = ol.fit(model, TX, ds, loss=xent, epochs=1, batch_size=1000, progress=False)
    assert out is model and len(history) == 1
    assert history["steps_per_second"][0] > 0  # full batch: one step
    assert not np.allclose(before["l1"]["kernel"], np.asarray(_params(model)["l1"]["kernel"]))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        pytest.param(
            {"epochs": -1}, ValueError, "fit: epochs must be an integer >= 0", id="negative-epochs"
        ),
        pytest.param(
            {"batch_size": 0},
            ValueError,
            "fit: batch_size must be an integer >= 1",
            id="zero-batch",
        ),
        pytest.param(
            {"validation_split": 1.0},
            ValueError,
            r"validation_split must be in \[0, 1\)",
            id="split-one",
        ),
        pytest.param(
            {"validation_split": 0.2, "validation_data": DATA},
            ValueError,
            "validation_split or validation_data, not both",
            id="both-validations",
        ),
        pytest.param(
            {"data": (np.zeros((3, 4)), np.zeros(2))},
            ValueError,
            "as many rows in x as in y",
            id="ragged-data",
        ),
        pytest.param(
            {"data": np.zeros((3, 4))}, ValueError, r"must be a pair \(x, y\)", id="not-a-pair"
        ),
        pytest.param(
            {"tx_metric": "val_loss"},
            ValueError,
            "needs validation data",
            id="tx-metric-without-validation",
        ),
        pytest.param(
            {"callbacks": [print]},
            TypeError,
            "callbacks must be optlab Callback",
            id="bad-callback",
        ),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        _fit(**kwargs)


def test_reduce_on_plateau_controller_gets_the_validation_loss_once_per_epoch():
    """fit(tx_metric=...) + a controller reading ``metric=``: replaying the controller alone
    on the values fit passed (the untrained model's val_loss, then each epoch's) gives the
    same scale."""
    x, y = DATA
    steps = 64 // 16
    controller = ol.reduce_on_plateau(
        factor=0.5, patience=0, accumulation_size=steps, monitor="metric"
    )
    tx = ol.chain(ol.sgd(0.05), controller)
    val = (x[64:], y[64:])
    history, _ = _fit(
        tx=tx, data=(x[:64], y[:64]), validation_data=val, epochs=4, tx_metric="val_loss"
    )
    state0 = ol.TrainState.create(Tiny(), ol.identity())
    first = float(
        jax.jit(ol.make_eval_step(xent))(state0, (jnp.asarray(val[0]), jnp.asarray(val[1])))["loss"]
    )
    seen = [first, *history["val_loss"][:-1]]
    replay = controller.init(jnp.zeros(1))
    for v in seen:
        for _ in range(steps):
            _, replay = controller.update(jnp.zeros(1), replay, metric=jnp.float32(v))
    np.testing.assert_allclose(
        float(ol.get(history.state.opt_state, "scale")), float(ol.get(replay, "scale")), rtol=1e-6
    )
