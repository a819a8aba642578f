"""Callbacks against Keras's documented rules, and inside fit."""

import csv
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import optlab as ol
import optlab.train
from optlab.train.callbacks import (
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from optlab.train.checkpoint import complete_epochs
from tests.train.models import Tiny, blobs, xent

TX = ol.sgd(0.1, momentum=0.9)


class FakeLoop:
    """Just what the callbacks touch: a state with params and lr_scale, and stop_training."""

    def __init__(self):
        self.state = ol.TrainState.create(nnx.Linear(1, 1, rngs=nnx.Rngs(0)), ol.sgd(0.1))
        self.stop_training = False


def _drive(callback, values, key="val_loss", extra=None):
    """Feeds ``values`` epoch by epoch; returns the loop and the epoch at which it stopped."""
    loop = FakeLoop()
    callback.on_train_begin(loop)
    for epoch, v in enumerate(values):
        callback.on_epoch_end(loop, epoch, {key: v, **(extra or {})})
        if loop.stop_training:
            return loop, epoch
    return loop, None


# Expected stop epochs worked out by hand from Keras's EarlyStopping.on_epoch_end: `wait` grows
# by one each epoch, is reset by an improvement (value - min_delta better than best, and also
# better than baseline when one is set); stop when wait >= patience (and epoch > 0).
@pytest.mark.parametrize(
    "kwargs, values, stop, best_epoch",
    [
        pytest.param({"patience": 2}, [1.0, 0.9, 0.95, 0.93, 0.8], 3, 1, id="patience-2"),
        pytest.param({"patience": 0}, [1.0, 1.1], 1, 0, id="patience-0"),
        pytest.param(
            {"patience": 1, "min_delta": 0.1},
            [1.0, 0.95, 0.85],
            1,
            0,
            id="min-delta-hides-small-gains",
        ),
        pytest.param(
            {"patience": 1, "mode": "max", "monitor": "val_accuracy"},
            [0.5, 0.6, 0.6],
            2,
            1,
            id="max-mode-ties-do-not-count",
        ),
        # An improvement returns before the stop check, so the count passes patience while
        # the values improve without beating the baseline; it resets when 0.4 beats it.
        pytest.param(
            {"patience": 2, "baseline": 0.5}, [0.9, 0.8, 0.7, 0.4, 0.45, 0.44], 5, 3, id="baseline"
        ),
        pytest.param(
            {"patience": 1, "start_from_epoch": 3}, [1.0, 2.0, 3.0, 4.0, 5.0], 4, 3, id="warm-up"
        ),
        pytest.param({"patience": 1}, [-1.0, -2.0, -3.0], None, 2, id="negative-values"),
    ],
)
def test_early_stopping_keras_rule(kwargs, values, stop, best_epoch):
    monitor = kwargs.get("monitor", "val_loss")
    cb = EarlyStopping(**kwargs)
    _, stopped = _drive(cb, values, key=monitor)
    assert stopped == stop
    assert cb.best_epoch == best_epoch


# Keras's ReduceLROnPlateau.on_epoch_end, by hand: factor 0.5, patience 2, cooldown 1,
# min_delta 0 (improvement: v < best). In an epoch where the cooldown counter reaches 0 the
# count is reset and then, as the counter is 0, incremented in the same epoch.
def test_reduce_lr_on_plateau_keras_rule():
    cb = ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_delta=0.0, min_lr=0.01)
    loop = FakeLoop()
    cb.on_train_begin(loop)
    values = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5]
    lrs = []
    for epoch, v in enumerate(values):
        lr = 0.1 * float(loop.state.lr_scale)
        cb.on_epoch_end(loop, epoch, {"val_loss": v, "learning_rate": lr})
        lrs.append(0.1 * float(loop.state.lr_scale))
    # e0 best; e1 w1; e2 w2 -> 0.05, cc 1; e3 cc 0, w0 then w1; e4 w2 -> 0.025, cc 1;
    # e5 cc 0, w1; e6 w2 -> 0.0125; e7 cc 0, w1; e8 improves.
    np.testing.assert_allclose(
        lrs, [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125, 0.0125], rtol=1e-6
    )
    cb2 = ReduceLROnPlateau(factor=0.1, patience=0, min_lr=0.02)
    loop2 = FakeLoop()
    cb2.on_train_begin(loop2)
    for epoch in range(3):
        lr = 0.1 * float(loop2.state.lr_scale)
        cb2.on_epoch_end(loop2, epoch, {"val_loss": 1.0, "learning_rate": lr})
    np.testing.assert_allclose(0.1 * float(loop2.state.lr_scale), 0.02, rtol=1e-6)


def test_terminate_on_nan_and_missing_monitor():
    _, stopped = _drive(TerminateOnNaN(), [1.0, math.nan, 1.0], key="loss")
    assert stopped == 1
    with pytest.raises(KeyError, match="monitor='val_loss' is not among this run's values: loss"):
        _drive(EarlyStopping(), [1.0], key="loss")


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        pytest.param(
            EarlyStopping, {"patience": -1}, "patience must be an integer >= 0", id="es-patience"
        ),
        pytest.param(
            EarlyStopping, {"mode": "best"}, "mode must be 'auto', 'min' or 'max'", id="es-mode"
        ),
        pytest.param(
            ReduceLROnPlateau, {"factor": 1.0}, r"factor must be in \(0, 1\)", id="plateau-factor"
        ),
        pytest.param(
            ModelCheckpoint,
            {"directory": "x", "every_n_epochs": 0},
            "every_n_epochs must be an integer >= 1",
            id="ckpt-every",
        ),
    ],
)
def test_bad_callback_arguments(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def _snapshots():
    """A callback recording the parameters after every epoch."""
    seen = []

    class Snap(ol.callbacks.Callback):
        def on_epoch_end(self, loop, epoch, logs):
            seen.append(jax.tree.map(np.asarray, loop.state.params))

    return Snap(), seen


def _params(model):
    return nnx.to_pure_dict(nnx.state(model, nnx.Param))


@pytest.mark.parametrize(
    "patience", [pytest.param(1, id="stopped-early"), pytest.param(100, id="ran-all-epochs")]
)
def test_restore_best_weights_however_training_ends(patience):
    x, y = blobs(96, seed=5)
    snap, seen = _snapshots()
    es = EarlyStopping(monitor="val_accuracy", patience=patience)
    # A large rate makes validation accuracy noisy, so the best epoch is rarely the last.
    history, model = ol.fit(
        Tiny(),
        ol.sgd(0.8),
        (x, y),
        loss=xent,
        epochs=6,
        batch_size=8,
        validation_split=0.25,
        callbacks=[es, snap],
        progress=False,
    )
    best_epoch, _ = history.best("val_accuracy")
    assert es.best_epoch == best_epoch
    for a, b in zip(
        jax.tree.leaves(_params(model)), jax.tree.leaves(seen[best_epoch]), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), b)
    assert best_epoch < len(history) - 1  # the best is not the last epoch: the restore shows
    if patience == 100:
        assert len(history) == 6 and es.stopped_epoch == 0


def test_plateau_and_loggers_inside_fit(tmp_path):
    rows = []
    cbs = [
        ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=10.0),
        CSVLogger(tmp_path / "log.csv"),
        LambdaCallback(on_epoch_end=lambda epoch, logs: rows.append((epoch, logs["loss"]))),
    ]
    history, _ = ol.fit(
        Tiny(),
        ol.sgd(0.1),
        blobs(64),
        loss=xent,
        epochs=3,
        batch_size=16,
        callbacks=cbs,
        progress=False,
    )
    # min_delta=10: only the first epoch improves (on best=inf); the rate halves after each
    # later epoch, and an epoch logs the rate it trained with.
    np.testing.assert_allclose(history["learning_rate"], [0.1, 0.1, 0.05], rtol=1e-6)
    assert rows == list(enumerate(history["loss"]))
    with open(tmp_path / "log.csv") as f:
        table = list(csv.DictReader(f))
    assert [float(r["loss"]) for r in table] == history["loss"]
    history.save_csv(tmp_path / "h.csv")
    history.save_json(tmp_path / "h.json")
    assert ol.History.from_dict(history.to_dict())["loss"] == history["loss"]


def test_model_checkpoint_schedules(tmp_path):
    x, y = blobs(64, seed=6)
    every = ModelCheckpoint(tmp_path / "every", every_n_epochs=2)
    last = ModelCheckpoint(tmp_path / "last", max_to_keep=1)
    best = ModelCheckpoint(tmp_path / "best", monitor="val_loss", save_best_only=True)
    history, _ = ol.fit(
        Tiny(),
        TX,
        (x, y),
        loss=xent,
        epochs=4,
        batch_size=16,
        validation_split=0.25,
        callbacks=[every, last, best],
        progress=False,
    )
    assert complete_epochs(tmp_path / "every") == [2, 4]
    assert complete_epochs(tmp_path / "last") == [4]
    val = history["val_loss"]
    improved = [e + 1 for e in range(4) if val[e] < min(val[:e], default=math.inf)]
    assert complete_epochs(tmp_path / "best") == improved
    # Checkpoint times do not enter the state: restoring gives the trained parameters back.
    state = ol.TrainState.create(Tiny(), TX)
    restored, meta = ol.train.restore_checkpoint(tmp_path / "last", state)
    assert meta["epoch"] == 4 and int(restored.step) == 4 * 3
    assert jnp.isfinite(restored.params["l1"]["kernel"]).all()
    with pytest.raises(
        ValueError, match="was written with batch_size=16, but this call has batch_size=8"
    ):
        ol.fit(
            Tiny(),
            TX,
            (x, y),
            loss=xent,
            epochs=5,
            batch_size=8,
            validation_split=0.25,
            progress=False,
            resume_from=tmp_path / "last",
        )


def test_restore_best_weights_after_an_exception():
    x, y = blobs(96, seed=5)
    snap, seen = _snapshots()
    es = EarlyStopping(monitor="val_accuracy", patience=100)
    logs_seen = []

    class Crash(ol.callbacks.Callback):
        def on_epoch_end(self, loop, epoch, logs):
            logs_seen.append(logs["val_accuracy"])
            if epoch == 3:
                raise RuntimeError("power cut")

    model = Tiny()
    with pytest.raises(RuntimeError, match="power cut"):
        ol.fit(
            model,
            ol.sgd(0.8),
            (x, y),
            loss=xent,
            epochs=6,
            batch_size=8,
            validation_split=0.25,
            callbacks=[es, snap, Crash()],
            progress=False,
        )
    best = int(np.argmax(logs_seen))  # the first of the best values, as Keras keeps it
    assert es.best_epoch == best < 3  # not the epoch that crashed: the restore is visible
    for a, b in zip(jax.tree.leaves(_params(model)), jax.tree.leaves(seen[best]), strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)
