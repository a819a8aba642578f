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
# A large rate makes validation accuracy noisy, so the best epoch is rarely the last. One
# object for the three runs that use it: they share one compiled epoch.
NOISY = ol.sgd(0.8)


def _run(tx=None, skip_nonfinite=True):
    """A real Run around a one-weight model (what callbacks get from fit)."""
    model = nnx.Linear(1, 1, rngs=nnx.Rngs(0))
    state = ol.TrainState.create(model, tx if tx is not None else ol.sgd(0.1))
    config = ol.train.RunConfig(seed=0, batch_size=1, skip_nonfinite=skip_nonfinite)
    return ol.train.Run(state, config=config, epochs=100, callbacks=[])


def _drive(callback, values, key="val_loss", extra=None):
    """Feeds ``values`` epoch by epoch (1-based); returns the run and the epoch it stopped."""
    run = _run()
    callback.on_train_begin(run)
    for epoch, v in enumerate(values, start=1):
        callback.on_epoch_end(run, epoch, {key: v, **(extra or {})})
        if run.stop_training:
            return run, epoch
    return run, None


# Expected stop epochs worked out by hand from Keras's EarlyStopping.on_epoch_end, with epochs
# counted from 1: `wait` grows by one each epoch, is reset by an improvement (value - min_delta
# better than best, and also better than baseline when one is set); stop when wait >= patience
# (and the epoch is not the first). A NaN is never an improvement.
@pytest.mark.parametrize(
    "kwargs, values, stop, best_epoch",
    [
        pytest.param({"patience": 2}, [1.0, 0.9, 0.95, 0.93, 0.8], 4, 2, id="patience-2"),
        pytest.param({"patience": 0}, [1.0, 1.1], 2, 1, id="patience-0"),
        pytest.param(
            {"patience": 1, "min_delta": 0.1},
            [1.0, 0.95, 0.85],
            2,
            1,
            id="min-delta-hides-small-gains",
        ),
        pytest.param(
            {"patience": 1, "mode": "max", "monitor": "val_accuracy"},
            [0.5, 0.6, 0.6],
            3,
            2,
            id="max-mode-ties-do-not-count",
        ),
        # An improvement returns before the stop check, so the count passes patience while
        # the values improve without beating the baseline; it resets when 0.4 beats it.
        pytest.param(
            {"patience": 2, "baseline": 0.5}, [0.9, 0.8, 0.7, 0.4, 0.45, 0.44], 6, 4, id="baseline"
        ),
        pytest.param(
            {"patience": 1, "start_from_epoch": 3}, [1.0, 2.0, 3.0, 4.0, 5.0], 5, 4, id="warm-up"
        ),
        pytest.param({"patience": 1}, [-1.0, -2.0, -3.0], None, 3, id="negative-values"),
        pytest.param(
            {"patience": 2}, [1.0, 0.9, math.nan, math.nan], 4, 2, id="nan-is-no-improvement"
        ),
        pytest.param({"patience": 1}, [math.nan, math.nan], 2, 0, id="nan-from-the-start"),
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
    run = _run()
    cb.on_train_begin(run)
    values = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5]
    lrs = []
    for epoch, v in enumerate(values, start=1):
        lr = 0.1 * float(run.state.lr_scale)
        cb.on_epoch_end(run, epoch, {"val_loss": v, "learning_rate": lr})
        lrs.append(0.1 * float(run.state.lr_scale))
    # e0 best; e1 w1; e2 w2 -> 0.05, cc 1; e3 cc 0, w0 then w1; e4 w2 -> 0.025, cc 1;
    # e5 cc 0, w1; e6 w2 -> 0.0125; e7 cc 0, w1; e8 improves.
    np.testing.assert_allclose(
        lrs, [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125, 0.0125], rtol=1e-6
    )
    cb2 = ReduceLROnPlateau(factor=0.1, patience=0, min_lr=0.02)
    run2 = _run()
    cb2.on_train_begin(run2)
    for epoch in range(1, 4):
        lr = 0.1 * float(run2.state.lr_scale)
        cb2.on_epoch_end(run2, epoch, {"val_loss": 1.0, "learning_rate": lr})
    np.testing.assert_allclose(0.1 * float(run2.state.lr_scale), 0.02, rtol=1e-6)


def test_terminate_on_nan_and_missing_monitor():
    run, stopped = _drive(TerminateOnNaN(), [1.0, math.nan, 1.0], key="loss")
    assert stopped == 2 and run.stop_reason == "TerminateOnNaN: the training loss of epoch 2 is nan"
    with pytest.raises(KeyError, match="monitor='val_loss' is not among this run's values: loss"):
        _drive(EarlyStopping(), [1.0], key="loss")


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        pytest.param(
            EarlyStopping, {"patience": -1}, "patience must be an integer >= 0", id="es-patience"
        ),
        pytest.param(
            EarlyStopping,
            {"mode": "best"},
            r"mode must be one of \['auto', 'max', 'min'\], got mode='best'",
            id="es-mode",
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


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        pytest.param(EarlyStopping, {"monitor": 3}, "monitor must be a string", id="es-monitor"),
        pytest.param(
            ModelCheckpoint,
            {"directory": "x", "max_to_keep": 2.5},
            r"max_to_keep must be an integer, got max_to_keep=2\.5 \(float\)",
            id="ckpt-keep-float",
        ),
        pytest.param(
            EarlyStopping, {"patience": 1.5}, "patience must be an integer, got", id="es-float"
        ),
        pytest.param(
            EarlyStopping, {"min_delta": "0.1"}, "min_delta must be a real number", id="es-delta"
        ),
        pytest.param(
            EarlyStopping, {"baseline": "low"}, "baseline must be a real number", id="es-base"
        ),
        pytest.param(
            EarlyStopping,
            {"restore_best_weights": "yes"},
            "restore_best_weights must be True or False",
            id="es-restore",
        ),
        pytest.param(
            ReduceLROnPlateau, {"factor": "half"}, "factor must be a real", id="plateau-factor"
        ),
        pytest.param(ReduceLROnPlateau, {"min_lr": None}, "min_lr must be a real", id="min-lr"),
        pytest.param(
            ModelCheckpoint, {"directory": 3}, "directory must be a path", id="ckpt-directory"
        ),
        pytest.param(
            ModelCheckpoint,
            {"directory": "x", "save_best_only": "yes"},
            "save_best_only must be True or False",
            id="ckpt-best",
        ),
        pytest.param(CSVLogger, {"filename": None}, "filename must be a path", id="csv-file"),
        pytest.param(
            LambdaCallback, {"on_epoch_end": 3}, "on_epoch_end must be a function", id="lambda"
        ),
    ],
)
def test_wrong_types_are_refused_at_construction(cls, kwargs, match):
    with pytest.raises(TypeError, match=f"{cls.__name__}: {match}"):
        cls(**kwargs)


def _snapshots():
    """A callback recording the parameters after every epoch."""
    seen = []

    class Snap(ol.callbacks.Callback):
        def on_epoch_end(self, run, epoch, logs):
            seen.append(jax.tree.map(np.asarray, run.state.params))

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
    history, model = ol.fit(
        Tiny(),
        NOISY,
        (x, y),
        loss=xent,
        epochs=6,
        batch_size=8,
        validation_split=0.25,
        callbacks=[es, snap],
        progress=False,
    )
    best_epoch, _ = history.best("val_accuracy")  # 1-based, as seen[best_epoch - 1]
    assert es.best_epoch == best_epoch == history.restored_epoch
    for a, b in zip(
        jax.tree.leaves(_params(model)), jax.tree.leaves(seen[best_epoch - 1]), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), b)
    assert best_epoch < len(history)  # the best is not the last epoch: the restore shows
    if patience == 100:
        assert len(history) == 6 and es.stopped_epoch == 0 and history.stop_reason is None
    else:
        assert history.stop_reason.startswith("early stopping: val_accuracy did not improve")


def test_plateau_and_loggers_inside_fit(tmp_path):
    rows = []
    cbs = [
        ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=10.0),
        CSVLogger(tmp_path / "log.csv"),
        LambdaCallback(on_epoch_end=lambda epoch, logs: rows.append((epoch, logs["loss"]))),
    ]
    history, _ = ol.fit(
        Tiny(),
        TX,  # the rate logged is the same with momentum; the program is the next test's
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
    assert rows == list(enumerate(history["loss"], start=1))
    with open(tmp_path / "log.csv") as f:
        table = list(csv.DictReader(f))
    assert [float(r["loss"]) for r in table] == history["loss"]
    assert [int(r["epoch"]) for r in table] == [1, 2, 3]
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
    assert history.restored_epoch == improved[-1]  # save_best_only keeps the best weights
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
        def on_epoch_end(self, run, epoch, logs):
            logs_seen.append(logs["val_accuracy"])
            if epoch == 4:
                raise RuntimeError("power cut")

    model = Tiny()
    with pytest.raises(RuntimeError, match="power cut"):
        ol.fit(
            model,
            NOISY,
            (x, y),
            loss=xent,
            epochs=6,
            batch_size=8,
            validation_split=0.25,
            callbacks=[es, snap, Crash()],
            progress=False,
        )
    best = int(np.argmax(logs_seen))  # the first of the best values, as Keras keeps it
    assert es.best_epoch == best + 1 < 4  # not the epoch that crashed: the restore is visible
    for a, b in zip(jax.tree.leaves(_params(model)), jax.tree.leaves(seen[best]), strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)


def test_one_improvement_rule_for_the_three_monitors(tmp_path):
    """EarlyStopping, ReduceLROnPlateau and ModelCheckpoint(save_best_only) decide the same
    improving epochs from the same values (min_delta 0): one rule, MonitorCallback's."""
    values = [1.0, 0.8, 0.8, math.nan, 0.9, 0.7, 0.70000001, 0.2]
    improving = [1, 2, 6, 8]  # strictly below the best so far; NaN and ties never improve
    es = EarlyStopping(patience=100, restore_best_weights=False)
    plateau = ReduceLROnPlateau(patience=100, min_delta=0.0)
    ckpt = ModelCheckpoint(tmp_path / "c", save_best_only=True)
    run = _run()
    for cb in (es, plateau, ckpt):
        assert isinstance(cb, ol.train.MonitorCallback)
        cb.on_train_begin(run)
    seen = {name: [] for name in ("es", "plateau", "ckpt")}
    for epoch, v in enumerate(values, start=1):
        logs = {"val_loss": v, "loss": 1.0}
        for name, cb in (("es", es), ("plateau", plateau)):
            before = cb.best_epoch
            cb.on_epoch_end(run, epoch, logs)
            if cb.best_epoch != before:
                seen[name].append(epoch)
        if ckpt.should_save(run, epoch, logs):
            seen["ckpt"].append(epoch)
    ckpt.on_train_end(run)
    assert seen == {"es": improving, "plateau": improving, "ckpt": improving}
    assert es.best == plateau.best == ckpt.best == 0.2


def _lr_run(tx):
    run = _run(tx)
    x = jnp.ones((4, 1))
    step = ol.make_train_step(lambda p, y: (p[:, 0] - y) ** 2, metrics=())
    run.state, logs = jax.jit(step)(run.state, (x, jnp.zeros(4)))
    return run, float(logs["learning_rate"])


def test_plateau_sets_an_injected_learning_rate_and_scales_otherwise():
    cb = ReduceLROnPlateau(factor=0.5, patience=0)
    run, lr = _lr_run(ol.inject_hyperparams(ol.adam)(learning_rate=0.1))
    cb.on_train_begin(run)
    for epoch in (1, 2):
        cb.on_epoch_end(run, epoch, {"val_loss": 1.0, "learning_rate": lr})
    # Epoch 2 did not improve: the injected rate itself was halved, the multiplier untouched.
    np.testing.assert_allclose(float(ol.get(run.state.opt_state, "learning_rate")), 0.05)
    assert float(run.state.lr_scale) == 1.0
    for tx in (ol.adam(0.1), ol.inject_hyperparams(ol.adam)(learning_rate=lambda n: 0.1 + 0 * n)):
        cb = ReduceLROnPlateau(factor=0.5, patience=0)
        run, lr = _lr_run(tx)
        cb.on_train_begin(run)
        for epoch in (1, 2):
            cb.on_epoch_end(run, epoch, {"val_loss": 1.0, "learning_rate": lr})
        # A plain rate, or an injected schedule (recomputed every update): the multiplier.
        assert float(run.state.lr_scale) == 0.5
        np.testing.assert_allclose(float(ol.get(run.state.opt_state, "learning_rate")), 0.1)


def test_plateau_inside_fit_with_an_injected_rate_matches_the_scaled_run():
    """The two ways of lowering the rate train the same model (Adam's update is linear in
    the rate), and the injected one reads back through ol.get."""
    kwargs = dict(loss=xent, epochs=3, batch_size=16, progress=False, validation_split=0.25)
    data = blobs(64, seed=2)
    cb = lambda: [ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=10.0)]
    h_inj, m_inj = ol.fit(
        Tiny(), ol.inject_hyperparams(ol.adam)(learning_rate=0.01), data, callbacks=cb(), **kwargs
    )
    h_scl, m_scl = ol.fit(Tiny(), ol.adam(0.01), data, callbacks=cb(), **kwargs)
    np.testing.assert_allclose(h_inj["learning_rate"], [0.01, 0.01, 0.005], rtol=1e-6)
    np.testing.assert_allclose(h_inj["learning_rate"], h_scl["learning_rate"], rtol=1e-6)
    np.testing.assert_allclose(float(ol.get(h_inj.state.opt_state, "learning_rate")), 0.0025)
    assert float(h_inj.state.lr_scale) == 1.0 and float(h_scl.state.lr_scale) == 0.25
    for a, b in zip(jax.tree.leaves(_params(m_inj)), jax.tree.leaves(_params(m_scl)), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_terminate_on_nan_writes_nothing_and_keeps_the_last_finite_weights(tmp_path):
    """Unguarded steps (skip_nonfinite=False) and an optimizer whose update turns NaN at step
    8 (epoch 3 of 4 steps): the run stops after epoch 2's weights, no NaN checkpoint."""
    from tests.train.models import nan_after

    snap, seen = _snapshots()
    ckpt = ModelCheckpoint(tmp_path / "c")
    with pytest.warns(RuntimeWarning, match="epoch 3's loss or parameters are not finite"):
        history, model = ol.fit(
            Tiny(),
            nan_after(8),
            blobs(64),
            loss=xent,
            epochs=5,
            batch_size=16,
            progress=False,
            skip_nonfinite=False,
            callbacks=[ckpt, TerminateOnNaN(), snap],
        )
    assert len(history) == 3 and history.restored_epoch == 2
    assert history.stop_reason == "TerminateOnNaN: the training loss of epoch 3 is nan"
    assert complete_epochs(tmp_path / "c") == [1, 2]
    for a, b in zip(jax.tree.leaves(_params(model)), jax.tree.leaves(seen[1]), strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)


def test_model_checkpoint_refuses_another_runs_directory(tmp_path):
    kwargs = dict(loss=xent, epochs=1, batch_size=16, progress=False)
    ol.fit(Tiny(), TX, blobs(64), callbacks=[ModelCheckpoint(tmp_path)], **kwargs)
    with pytest.raises(ValueError, match=r"already holds checkpoints of epochs \[1\]"):
        ol.fit(Tiny(), TX, blobs(64), callbacks=[ModelCheckpoint(tmp_path)], **kwargs)
    ol.fit(
        Tiny(),
        TX,
        blobs(64, seed=1),
        callbacks=[ModelCheckpoint(tmp_path, overwrite=True)],
        **{**kwargs, "epochs": 2},
    )
    assert complete_epochs(tmp_path) == [1, 2]
