"""fit: data order, determinism, validation, the metric passed to controllers, progress, errors."""

import io
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optlab as ol
import optlab.data
from optlab.train.fit import epoch_keys
from tests.helpers import assert_trees_close
from tests.train.models import Tiny, blobs, nan_after, xent

TX = ol.sgd(0.1, momentum=0.9)
DATA = blobs(96)
TIMING = ("time", "steps_per_second")
STEP = ol.make_train_step(xent)  # the replays' step: one object, so equal shapes share a program


def _fit(tx=TX, data=DATA, **kw):
    args = dict(loss=xent, epochs=3, batch_size=16, progress=False, seed=0)
    args.update(kw)
    return ol.fit(Tiny(), tx, data, **args)


def test_epoch_keys_are_a_split_of_the_epochs_fold_in():
    order, aug = epoch_keys(jax.random.key(3), 2)
    keys = jax.random.split(jax.random.fold_in(jax.random.key(3), 2))
    np.testing.assert_array_equal(jax.random.key_data(order), jax.random.key_data(keys[0]))
    np.testing.assert_array_equal(jax.random.key_data(aug), jax.random.key_data(keys[1]))


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
        "skipped_steps",
        "time",
        "steps_per_second",
    }


def _replay(x, y, epochs, *, batch_size, drop_remainder=True, seed=0, augment=None):
    """fit's epochs rebuilt from the public pieces: the keys of ``epoch_keys(key(seed), e)``,
    ``optlab.data.batches`` and ``train_epoch`` (augmentation applied here, per step)."""
    state = ol.TrainState.create(Tiny(), TX, seed=seed)
    losses = []
    for epoch in range(1, epochs + 1):
        order, aug = epoch_keys(jax.random.key(seed), epoch)
        b = ol.data.batches(x, y, batch_size, order, drop_remainder=drop_remainder)
        if augment is not None:
            parts = [
                augment(ol.data.Batches(b.x[i], b.y[i], b.mask[i]), jax.random.fold_in(aug, i))
                for i in range(b.x.shape[0])
            ]
            b = ol.data.Batches(*(jnp.stack(leaves) for leaves in zip(*parts, strict=True)))
        state, logs = ol.train_epoch(STEP, state, b)
        losses.append(float(logs["loss"]))
    return state, losses


def test_epochs_follow_data_batches_and_validation_is_the_tail():
    x, y = blobs(100, seed=4)
    history, model = _fit(data=(x, y), epochs=2, validation_split=0.2, batch_size=16)
    assert history.epoch == [1, 2]
    state, losses = _replay(x[:80], y[:80], 2, batch_size=16)
    np.testing.assert_allclose(history["loss"], losses, rtol=1e-6)
    assert_trees_close(_params(model), state.params, rtol=1e-6, atol=1e-7)
    ev = ol.make_eval_step(xent)
    val = jax.jit(ev)(state, (jnp.asarray(x[80:]), jnp.asarray(y[80:])))
    np.testing.assert_allclose(history["val_loss"][-1], float(val["loss"]), rtol=1e-6)


def _label_mean(predictions, targets):
    """A metric that reads the targets only: its epoch value is the mean label of the rows
    seen (weighted by the mask)."""
    del predictions
    return targets.astype(jnp.float32)


def test_drop_remainder_false_sees_every_row_every_epoch():
    x, y = blobs(50, seed=1)  # 50 = 3 x 16 + 2: the last batch holds 2 real rows, 14 padded
    y_float = np.arange(50, dtype=np.float32)  # distinct "labels", read by the metric only
    loss = lambda p, t: jnp.zeros(p.shape[0]) + 0.0 * jnp.sum(p, axis=1)
    kwargs = dict(data=(x, y_float), loss=loss, metrics=(_label_mean,), epochs=1, batch_size=16)
    history, _ = _fit(drop_remainder=False, **kwargs)
    np.testing.assert_allclose(history["_label_mean"], [np.mean(y_float)], rtol=1e-6)
    dropped, _ = _fit(drop_remainder=True, **kwargs)
    assert not np.allclose(dropped["_label_mean"], np.mean(y_float))  # 2 rows left out
    # And training with padding is fit's replay through the public pieces.
    history, model = _fit(data=(x, y), epochs=2, drop_remainder=False)
    state, losses = _replay(x, y, 2, batch_size=16, drop_remainder=False)
    np.testing.assert_allclose(history["loss"], losses, rtol=1e-6)
    assert_trees_close(_params(model), state.params, rtol=1e-6, atol=1e-7)


def _shift_and_zero_labels(batch, key):
    """A pure augmentation: adds uniform noise to x and sets every label to 0."""
    noise = jax.random.uniform(key, batch.x.shape, minval=-0.5, maxval=0.5)
    return ol.data.Batches(batch.x + noise, jnp.zeros_like(batch.y), batch.mask)


def test_augment_runs_inside_the_epoch_and_never_in_evaluation():
    x, y = blobs(64, seed=2)
    y_float = (np.arange(64) % 5).astype(np.float32)
    loss = lambda p, t: jnp.sum(p, axis=1) * 0.0
    history, _ = _fit(
        data=(x, y_float),
        loss=loss,
        metrics=(_label_mean,),
        validation_split=0.25,
        augment=_shift_and_zero_labels,
        epochs=1,
    )
    assert history["_label_mean"] == [0.0]  # the augmented labels were trained on
    np.testing.assert_allclose(history["val__label_mean"], [np.mean(y_float[48:])], rtol=1e-6)
    # The augmented epochs are the replay's, key for key.
    history, model = _fit(data=(x, y), augment=_shift_and_zero_labels, epochs=1)
    state, losses = _replay(x, y, 1, batch_size=16, augment=_shift_and_zero_labels)
    np.testing.assert_allclose(history["loss"], losses, rtol=1e-6)
    assert_trees_close(_params(model), state.params, rtol=1e-6, atol=1e-7)


def test_eval_batch_size_changes_nothing_but_rounding():
    h_small, _ = _fit(validation_split=0.25, eval_batch_size=5, epochs=1)
    h_large, _ = _fit(validation_split=0.25, epochs=1)
    np.testing.assert_allclose(h_small["val_loss"], h_large["val_loss"], rtol=1e-6)
    assert h_small["val_accuracy"] == h_large["val_accuracy"]


def test_default_metrics_follow_the_task():
    history, _ = _fit(epochs=1)
    assert "accuracy" in history  # integer class labels
    x, _ = DATA
    target = x[:, 0] - 2.0 * x[:, 1]
    mse = lambda p, t: jnp.mean((p - t[:, None]) ** 2, axis=1)
    history, _ = ol.fit(
        Tiny(dout=1),
        TX,
        (x, target),
        loss=mse,
        epochs=1,
        batch_size=16,
        progress=False,
        validation_split=0.25,
    )
    assert not any("accuracy" in k for k in history.keys())  # a regression has none
    assert {"loss", "val_loss", "grad_norm", "skipped_steps"} <= set(history.keys())


def test_nan_input_rows_are_named_instead_of_trained_on():
    x, y = blobs(96, seed=3)
    x = x.copy()
    x[[7, 41], 1] = np.nan
    model = Tiny()
    before = jax.tree.map(np.asarray, _params(model))
    with pytest.raises(ValueError, match=r"2 rows \(7, 41\) of the training data hold NaN"):
        ol.fit(model, TX, (x, y), loss=xent, epochs=3, batch_size=16, progress=False)
    # The batches holding them were skipped, the others trained: the model is finite.
    after = _params(model)
    assert all(np.isfinite(np.asarray(v)).all() for v in jax.tree.leaves(after))
    assert not np.allclose(before["l1"]["kernel"], np.asarray(after["l1"]["kernel"]))
    x_val = blobs(16, seed=5)[0]
    x_val[3, 0] = np.inf
    with pytest.raises(ValueError, match=r"1 row \(3\) of the validation data"):
        _fit(data=blobs(96), validation_data=(x_val, blobs(16, seed=5)[1]), epochs=1)


def test_too_many_skipped_steps_in_a_row_stop_the_run():
    """A loss that is NaN on every batch: every step is skipped, the parameters never move,
    and the run stops at the end of the epoch where the streak reached the limit. Without the
    guard, a step whose update is NaN moves the parameters to NaN."""

    def exploding(predictions, targets):
        return xent(predictions, targets) * jnp.where(jnp.abs(predictions).max() > 0, jnp.nan, 1)

    with pytest.warns(RuntimeWarning, match="6 steps in a row had a non-finite loss"):
        history, model = _fit(loss=exploding, epochs=3, max_consecutive_nonfinite=6)
    assert len(history) == 1 and history["skipped_steps"] == [6.0]
    assert "max_consecutive_nonfinite=6" in history.stop_reason
    fresh = _params(Tiny())
    assert_trees_close(_params(model), fresh, rtol=0, atol=0)  # never moved
    history, model = _fit(loss=exploding, epochs=2, max_consecutive_nonfinite=100)
    assert history["skipped_steps"] == [6.0, 6.0] and history.stop_reason is None
    history, model = _fit(tx=nan_after(8), epochs=2, skip_nonfinite=False)
    assert "skipped_steps" not in history
    assert np.isnan(np.asarray(_params(model)["l1"]["kernel"])).all()


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
        def on_epoch_end(self, run, epoch, logs):
            seen.append(float(run.state.opt_state.metric))

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
        pytest.param(
            {"validation_split": "abc"},
            TypeError,
            "fit: validation_split must be a real number, got validation_split='abc'",
            id="split-string",
        ),
        pytest.param(
            {"epochs": 2.5},
            TypeError,
            "fit: epochs must be an integer, got epochs=2.5",
            id="float-epochs",
        ),
        pytest.param({"loss": "xent"}, TypeError, "fit: loss must be a function", id="loss-str"),
        pytest.param({"tx": 0.1}, TypeError, "fit: tx must be a gradient", id="tx-number"),
        pytest.param({"seed": None}, TypeError, "fit: seed must be an integer", id="seed-none"),
        pytest.param({"progress": "no"}, TypeError, "fit: progress must be True or", id="progress"),
        pytest.param(
            {"drop_remainder": 0}, TypeError, "fit: drop_remainder must be True", id="drop"
        ),
        pytest.param({"augment": 3}, TypeError, "fit: augment must be a function", id="augment"),
        pytest.param(
            {"eval_batch_size": 0},
            ValueError,
            "fit: eval_batch_size must be an integer >= 1",
            id="eval-batch",
        ),
        pytest.param(
            {"max_consecutive_nonfinite": 0},
            ValueError,
            "fit: max_consecutive_nonfinite must be an integer >= 1",
            id="max-nonfinite",
        ),
        pytest.param(
            {"resume_from": 3}, TypeError, "fit: resume_from must be a path", id="resume-int"
        ),
        pytest.param({"tx_metric": 1}, TypeError, "fit: tx_metric must be a string", id="txm"),
        pytest.param(
            {"callbacks": ol.callbacks.TerminateOnNaN()},
            TypeError,
            "fit: callbacks must be a list",
            id="callbacks-not-a-list",
        ),
        pytest.param(
            {"metrics": "accuracy"}, TypeError, "metrics must be a sequence", id="metrics-str"
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


def test_mixup_on_integer_labels_trains_and_validates_on_the_original_labels():
    """Mixup turns the training labels into probability rows while validation keeps the
    integers: ``softmax_cross_entropy`` reads both, and the logged validation loss and accuracy
    are those of the final model on the integer labels."""
    x, y = blobs(64, seed=5)
    history, model = _fit(
        data=(x, y),
        loss=ol.nn.softmax_cross_entropy,
        augment=ol.data.Mixup(0.4, num_classes=3),
        validation_split=0.25,
        epochs=2,
    )
    assert set(history.keys()) >= {"accuracy", "val_accuracy"}
    held = ol.evaluate(
        model,
        (x[48:], y[48:]),
        loss=ol.nn.softmax_cross_entropy_with_integer_labels,
        metrics=("accuracy",),
    )
    np.testing.assert_allclose(history["val_loss"][-1], held["loss"], rtol=1e-5)
    assert history["val_accuracy"][-1] == pytest.approx(held["accuracy"])


def test_default_metrics_read_one_hot_and_probability_rows_as_classes():
    from optlab.train.evaluation import default_metrics

    y = np.array([0, 2, 1, 1])
    assert default_metrics(y) == ("accuracy",)
    assert default_metrics(np.eye(3, dtype=np.float32)[y]) == ("accuracy",)
    assert default_metrics(np.array([[0.3, 0.7], [0.5, 0.5]], np.float32)) == ("accuracy",)
    assert default_metrics(np.array([[0.3, 0.9], [0.5, 0.5]], np.float32)) == ()  # regression
    assert default_metrics(np.linspace(0, 1, 4, dtype=np.float32)) == ()
