"""reduce_on_plateau, bold_driver and early_stopping: step for step against pure-Python
references of Keras' documented callbacks and of the seeds' bold-driver rule, under jit,
lax.scan and vmap."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optlab as ol

# ---------------------------------------------------------------------------------------------
# References


class KerasReduceLROnPlateau:
    """keras.callbacks.ReduceLROnPlateau.on_epoch_end as Keras documents and implements it,
    with the learning rate starting at 1 (so it is optlab's scale). ``rtol`` generalizes Keras'
    absolute ``min_delta`` to the margin ``rtol * |best| + min_delta`` (0 in Keras)."""

    def __init__(self, factor, patience, min_delta, cooldown, min_lr, mode, rtol=0.0):
        def margin(best):
            return rtol * abs(best) + min_delta if math.isfinite(best) else 0.0

        if mode == "min":
            self.monitor_op = lambda a, b: a < b - margin(b)
            self.best = math.inf
        else:
            self.monitor_op = lambda a, b: a > b + margin(b)
            self.best = -math.inf
        self.factor, self.patience, self.cooldown, self.min_lr = factor, patience, cooldown, min_lr
        self.cooldown_counter = 0
        self.wait = 0
        self.lr = 1.0

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def on_epoch_end(self, current):
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor_op(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = self.lr
                if old_lr > np.float32(self.min_lr):
                    self.lr = max(old_lr * self.factor, self.min_lr)
                    self.cooldown_counter = self.cooldown
                    self.wait = 0
        return self.lr


def keras_early_stopping(values, patience, min_delta, mode):
    """keras.callbacks.EarlyStopping's wait/best bookkeeping (flax's EarlyStopping is the same
    rule): returns (should_stop, best_step) after each value; stopped runs stay stopped."""
    best, best_step, wait, stopped, out = None, 0, 0, False, []
    for t, v in enumerate(values):
        if not stopped:
            if best is None or (v < best - min_delta if mode == "min" else v > best + min_delta):
                best, best_step, wait = v, t, 0
            else:
                wait += 1
                stopped = wait >= patience
        out.append((stopped, best_step))
    return out


def bold_driver_reference(values, increase, decrease):
    """The seeds' rule: after the first cost, grow the step after a decrease of the cost, cut
    it when the cost did not decrease."""
    scale, previous, out = 1.0, None, []
    for v in values:
        if previous is not None:
            scale = scale * increase if v < previous else scale * decrease
        previous = v
        out.append(scale)
    return out


def _scan(tx, values, **kwargs):
    """Runs ``tx`` under jit and lax.scan over a loss sequence; the gradient is always 1."""

    def run(values):
        def step(state, v):
            u, state = tx.update(jnp.ones(1), state, **{kwargs.get("monitor", "value"): v})
            return state, (u[0], state)

        return jax.lax.scan(step, tx.init(jnp.zeros(1)), values)

    return jax.jit(run)(jnp.asarray(values, jnp.float32))


# ---------------------------------------------------------------------------------------------
# reduce_on_plateau

PLATEAU = [
    5.0,
    4.0,
    4.0,
    4.0,
    4.0,
    3.5,
    3.5,
    3.5,
    3.5,
    3.5,
    3.5,
    2.0,
    2.0,
    2.0,
    2.0,
    2.0,
    2.0,
    2.0,
    2.0,
    2.0,
    1.0,
    1.25,
    1.0,
    1.0,
    0.75,
    0.75,
    0.75,
    0.75,
    0.75,
    0.75,
]


def _noisy(seed, negative=False):
    # A decreasing trend with noise, on a grid of 0.25 so no comparison is a float32 borderline.
    r = np.random.default_rng(seed)
    v = np.round((6.0 - 0.15 * np.arange(30) + r.normal(0, 0.6, 30)) * 4) / 4
    return list(-20.0 + v if negative else v)


SEQUENCES = {
    "plateau_ties": PLATEAU,
    "negative": [v - 10.0 for v in PLATEAU],
    "noisy": _noisy(0),
    "noisy_negative": _noisy(1, negative=True),
}
CONFIGS = {  # factor, patience, atol, cooldown, min_scale, rtol
    "defaults_like": (0.1, 3, 0.0, 0, 0.0, 0.0),
    "halve_patience0": (0.5, 0, 0.0, 0, 0.0, 0.0),
    "cooldown": (0.5, 1, 0.0, 2, 0.0, 0.0),
    "atol_min_scale": (0.5, 2, 0.3, 1, 0.2, 0.0),
    "rtol": (0.5, 2, 0.0, 0, 0.0, 0.07),
}


def test_reduce_on_plateau_matches_keras_step_for_step():
    # Every (configuration, sequence) pair in one compiled vmap over traced hyperparameters.
    pairs = [(c, s) for c in CONFIGS for s in SEQUENCES]
    hp = np.array([CONFIGS[c] for c, _ in pairs], np.float32)
    seqs = jnp.asarray([SEQUENCES[s] for _, s in pairs], jnp.float32)

    def one(h, values):
        tx = ol.reduce_on_plateau(
            factor=h[0],
            patience=h[1].astype(jnp.int32),
            atol=h[2],
            cooldown=h[3].astype(jnp.int32),
            min_scale=h[4],
            rtol=h[5],
        )

        def step(state, v):
            u, state = tx.update(jnp.ones(1), state, value=v)
            return state, (u[0], state.scale)

        return jax.lax.scan(step, tx.init(jnp.zeros(1)), values)[1]

    updates, scales = jax.jit(jax.vmap(one))(jnp.asarray(hp), seqs)
    for i, (c, s) in enumerate(pairs):
        factor, patience, atol, cooldown, min_scale, rtol = CONFIGS[c]
        keras = KerasReduceLROnPlateau(factor, patience, atol, cooldown, min_scale, "min", rtol)
        expected = [keras.on_epoch_end(v) for v in SEQUENCES[s]]
        np.testing.assert_allclose(scales[i], expected, rtol=1e-6, err_msg=f"{c}/{s}")
        np.testing.assert_allclose(updates[i], expected, rtol=1e-6, err_msg=f"{c}/{s}")


def test_reduce_on_plateau_reduces_for_negative_losses():
    # A flat negative loss is a plateau (optax's (1 - rtol) * best never sees one: PR #1767).
    _, (_, state) = _scan(ol.reduce_on_plateau(factor=0.5, patience=2), [-3.0] * 7)
    np.testing.assert_allclose(state.scale, [1, 1, 0.5, 0.5, 0.25, 0.25, 0.125])


def test_reduce_on_plateau_mode_max_matches_keras():
    accuracy = [0.5, 0.6, 0.6, 0.6, 0.7, 0.7, 0.7, 0.7, 0.65, 0.8, 0.8, 0.8, 0.8]
    tx = ol.reduce_on_plateau(
        factor=0.5, patience=2, rtol=0.0, atol=0.01, cooldown=1, mode="max", monitor="metric"
    )
    _, (_, state) = _scan(tx, accuracy, monitor="metric")
    keras = KerasReduceLROnPlateau(0.5, 2, 0.01, 1, 0.0, "max")
    np.testing.assert_allclose(state.scale, [keras.on_epoch_end(v) for v in accuracy], rtol=1e-6)


def test_reduce_on_plateau_accumulates_windows():
    values = _noisy(3)
    tx = ol.reduce_on_plateau(factor=0.5, patience=1, rtol=0.0, accumulation_size=3)
    _, (_, state) = _scan(tx, values)
    keras = KerasReduceLROnPlateau(0.5, 1, 0.0, 0, 0.0, "min")
    expected = []
    for w in range(10):  # the scale changes only at the end of each window of 3 values
        before = keras.lr
        after = keras.on_epoch_end(float(np.mean(np.float32(values[3 * w : 3 * w + 3]))))
        expected += [before, before, after]
    np.testing.assert_allclose(state.scale, expected, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# bold_driver


def test_bold_driver_matches_the_seeds_rule_under_scan():
    values = [*_noisy(4), -1.0, -1.0, -2.0, -1.5]  # ties and negative costs count too
    _, (u, state) = _scan(ol.bold_driver(increase=1.1, decrease=0.5), values)
    expected = bold_driver_reference(values, 1.1, 0.5)
    np.testing.assert_allclose(state.scale, expected, rtol=1e-5)
    np.testing.assert_allclose(u, expected, rtol=1e-5)


def _quadratic_run(tx, steps=25, scaled=True):
    """Minimizes f(x) = x^2 from x = 1 with the given transformation, under jit and scan."""

    def run(x):
        def step(carry, _):
            x, state = carry
            loss, g = jax.value_and_grad(lambda y: jnp.sum(y**2))(x)
            u, state = tx.update(g, state, x, value=loss)
            scale = ol.get(state, "scale") if scaled else loss
            return (ol.apply_updates(x, u), state), (x[0], loss, scale)

        return jax.lax.scan(step, (x, tx.init(x)), length=steps)

    return jax.jit(run)(jnp.ones(1))


def test_bold_driver_with_rejection_converges_where_plain_sgd_diverges():
    # lr = 1.2 overshoots x^2 (x <- -1.4 x): plain descent diverges.
    _, (xs, _, _) = _quadratic_run(ol.sgd(1.2), scaled=False)
    assert abs(float(xs[-1])) > 100
    (x, _), (xs, _, scales) = _quadratic_run(
        ol.chain(ol.sgd(1.2), ol.bold_driver(1.1, 0.5, reject=True))
    )
    assert abs(float(x[0])) < 1e-3
    # Reference in float64: a rejected step puts x back where it was.
    xr, ref_loss, scale, rejected, last = 1.0, None, 1.0, False, 0.0
    for t in range(25):
        np.testing.assert_allclose(xs[t], xr, rtol=1e-5, atol=1e-7)
        loss = xr**2
        if t > 0 and not rejected and loss >= ref_loss:
            scale *= 0.5
            xr, last, rejected = xr - last, 0.0, True  # undo the last step
            continue
        if t > 0 and not rejected:
            scale *= 1.1
        rejected = False
        ref_loss = loss
        last = -1.2 * 2 * xr * scale
        xr = xr + last
    steps = np.diff(np.asarray(scales))
    assert (steps > 0).any() and (steps < 0).any()  # both rules fired


# ---------------------------------------------------------------------------------------------
# early_stopping


@pytest.mark.parametrize(
    ("mode", "patience", "min_delta", "values"),
    [
        ("min", 3, 0.0, PLATEAU),
        ("min", 2, 0.3, [v - 10.0 for v in PLATEAU]),
        ("max", 2, 0.0, [0.5, 0.6, 0.6, 0.7, 0.7, 0.7, 0.9, 0.8, 0.85]),
        ("min", 0, 0.0, [3.0, 2.0, 2.0, 1.0]),
    ],
    ids=["ties", "negative_min_delta", "max", "patience0"],
)
def test_early_stopping_matches_keras_under_scan(mode, patience, min_delta, values):
    tx = ol.early_stopping(patience, min_delta, mode)
    _, (u, state) = _scan(tx, values)
    expected = keras_early_stopping(values, patience, min_delta, mode)
    assert [bool(s) for s in state.should_stop] == [e[0] for e in expected]
    assert [int(s) for s in state.best_step] == [e[1] for e in expected]
    # freeze=True: the updates, and the readable scale, are zero from the stopping call on.
    np.testing.assert_array_equal(u, [0.0 if e[0] else 1.0 for e in expected])
    np.testing.assert_array_equal(state.scale, [0.0 if e[0] else 1.0 for e in expected])
    assert float(state.best_value[-1]) == pytest.approx(values[expected[-1][1]])


def test_early_stopping_without_freeze_keeps_updates_and_scale():
    tx = ol.early_stopping(patience=0, freeze=False)
    state = tx.init(None)
    for loss in [1.0, 2.0]:
        u, state = tx.update(jnp.ones(1), state, value=loss)
    assert bool(ol.get(state, "should_stop"))
    assert float(ol.get(state, "scale")) == 1.0
    np.testing.assert_array_equal(np.asarray(u), [1.0])


def test_controllers_vmap_over_loss_sequences():
    seqs = [_noisy(5), _noisy(6, negative=True), PLATEAU]
    tx = ol.chain(ol.reduce_on_plateau(0.5, 2, rtol=0.0), ol.early_stopping(4), ol.bold_driver())

    def run(values):
        def step(state, v):
            _, state = tx.update(jnp.ones(1), state, value=v)
            return state, (state[0].scale, state[1].should_stop, state[2].scale)

        return jax.lax.scan(step, tx.init(jnp.zeros(1)), values)[1]

    plateau, stop, bold = jax.jit(jax.vmap(run))(jnp.asarray(seqs, jnp.float32))
    for i, values in enumerate(seqs):
        keras = KerasReduceLROnPlateau(0.5, 2, 0.0, 0, 0.0, "min")
        np.testing.assert_allclose(plateau[i], [keras.on_epoch_end(v) for v in values], rtol=1e-6)
        keras_stop = [e[0] for e in keras_early_stopping(values, 4, 0.0, "min")]
        assert [bool(s) for s in stop[i]] == keras_stop
        np.testing.assert_allclose(bold[i], bold_driver_reference(values, 1.1, 0.5), rtol=1e-5)


def test_scale_is_readable_with_get_in_a_chain():
    tx = ol.chain(ol.sgd(0.1), ol.reduce_on_plateau(factor=0.5, patience=0))
    params = {"w": jnp.ones(2)}
    state = tx.init(params)
    update = jax.jit(tx.update)
    for loss in [1.0, 1.0, 1.0]:
        u, state = update({"w": jnp.ones(2)}, state, params, value=loss)
    assert float(ol.get(state, "scale")) == pytest.approx(0.25)
    np.testing.assert_allclose(u["w"], [-0.025, -0.025], rtol=1e-6)


@pytest.mark.parametrize(
    ("tx", "call"),
    [
        (ol.reduce_on_plateau(), "value=loss"),
        (ol.bold_driver(), "value=loss"),
        (ol.early_stopping(monitor="metric"), "metric=loss"),
    ],
    ids=["plateau", "bold_driver", "early_stopping_metric"],
)
def test_missing_value_says_what_to_pass(tx, call):
    with pytest.raises(ValueError, match=rf"call tx\.update\(grads, state, params, {call}\)"):
        tx.update(jnp.ones(1), tx.init(jnp.zeros(1)), value=None)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: ol.reduce_on_plateau(factor=1.5), r"reduce_on_plateau: factor must be in \(0, 1"),
        (lambda: ol.reduce_on_plateau(patience=-1), "patience must be an integer >= 0"),
        (lambda: ol.reduce_on_plateau(accumulation_size=0), "accumulation_size must be an int"),
        (lambda: ol.reduce_on_plateau(atol=-0.1), "atol must be >= 0, got atol=-0.1"),
        (lambda: ol.reduce_on_plateau(mode="best"), "mode must be one of 'min', 'max'"),
        (lambda: ol.bold_driver(increase=0.9), r"bold_driver: increase must be in \[1, inf\)"),
        (lambda: ol.bold_driver(decrease=1.0), r"bold_driver: decrease must be in \(0, 1\)"),
        (lambda: ol.early_stopping(min_delta=-1.0), "early_stopping: min_delta must be >= 0"),
        (lambda: ol.bold_driver(reject=True).init(None), "call tx.init\\(params\\)"),
    ],
    ids=[
        "factor",
        "patience",
        "accumulation",
        "atol",
        "mode",
        "increase",
        "decrease",
        "min_delta",
        "reject_needs_params",
    ],
)
def test_bad_arguments(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


@pytest.mark.parametrize(
    "make",
    [
        lambda: ol.reduce_on_plateau(),
        lambda: ol.bold_driver(reject=True),
        lambda: ol.early_stopping(),
    ],
    ids=["plateau", "bold_driver", "early_stopping"],
)
def test_abstract_init_and_x64_state_dtype(make, x64):
    params = {
        "w": jax.ShapeDtypeStruct((3,), jnp.float64),
        "b": jax.ShapeDtypeStruct((), jnp.int32),
    }
    state = make().init(params)
    floats = [x for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.floating)]
    assert floats and all(x.dtype == jnp.float64 for x in floats)
    u, _ = make().update(
        {"w": jnp.ones(3), "b": jnp.zeros((), jnp.int32)},
        make().init({"w": jnp.zeros(3), "b": jnp.zeros((), jnp.int32)}),
        value=jnp.asarray(1.0, jnp.float64),
    )
    assert u["w"].dtype == jnp.float64
