"""Every schedule against its published closed form (NumPy float64), optax, Keras' and torch's
documented formulas; resume exactness; no recompilation for traced hyperparameters."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optlab as ol
from tests.helpers import TraceCounter

# Step 0, every step through the boundaries of the (short) schedules below, and far past the end.
STEPS = np.concatenate([np.arange(0, 45), [59, 60, 61, 99, 100, 1000, 10**6]]).astype(np.int32)

# float32 schedules against float64 references: a few ulps of the largest value involved.
RTOL, ATOL = 2e-6, 1e-7


def _values(sched, steps):
    return np.asarray(jax.jit(jax.vmap(sched))(jnp.asarray(steps)), np.float64)


# ---------------------------------------------------------------------------------------------
# NumPy float64 references, written from the published formulas.


def np_polynomial(t, init, end, power, steps, begin=0):
    k = np.clip(t - begin, 0, steps)
    return (init - end) * (1 - k / steps) ** power + end


def np_piecewise_constant(t, init, bounds):
    return init * np.prod([s if t >= b else 1.0 for b, s in sorted(bounds.items())])


def np_exponential(t, init, steps, rate, begin=0, staircase=False, end=None):
    p = (t - begin) / steps
    p = math.floor(p) if staircase else p
    # Far past the end a growth overflows Python floats: it is then capped by end anyway.
    v = init if t - begin <= 0 else init * math.exp(min(p * math.log(rate), 700.0))
    if end is not None:
        v = max(v, end) if rate < 1 else min(v, end)
    return v


def keras_inverse_time_decay(step, initial_learning_rate, decay_steps, decay_rate, staircase):
    # keras.optimizers.schedules.InverseTimeDecay, as documented:
    # initial_learning_rate / (1 + decay_rate * step / decay_steps), floor() with staircase.
    p = step / decay_steps
    if staircase:
        p = np.floor(p)
    return initial_learning_rate / (1 + decay_rate * p)


def transformer_rate(step_num, d_model, warmup):
    # Vaswani et al. 2017, eq. (3): d^-0.5 * min(step^-0.5, step * warmup^-1.5), step from 1.
    return d_model**-0.5 * min(step_num**-0.5, step_num * warmup**-1.5)


def np_cosine(t, init, steps, alpha=0.0, exponent=1.0):
    t = min(t, steps)
    return init * ((1 - alpha) * (0.5 * (1 + math.cos(math.pi * t / steps))) ** exponent + alpha)


def np_warmup_cosine(t, init, peak, warmup, total, end=0.0, exponent=1.0):
    if t < warmup:
        return init + (peak - init) * t / warmup
    k = min(t - warmup, total - warmup)
    return end + (peak - end) * (0.5 * (1 + math.cos(math.pi * k / (total - warmup)))) ** exponent


def torch_cosine_warm_restarts(epoch, base_lr, T_0, T_mult, eta_min):
    # torch.optim.lr_scheduler.CosineAnnealingWarmRestarts.step(epoch), as documented.
    if T_mult == 1:
        T_cur, T_i = epoch % T_0, T_0
    else:
        n = int(math.log(epoch / T_0 * (T_mult - 1) + 1, T_mult))
        T_cur = epoch - T_0 * (T_mult**n - 1) / (T_mult - 1)
        T_i = T_0 * T_mult**n
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * T_cur / T_i)) / 2


def torch_cyclic(last_epoch, base_lr, max_lr, up, down, mode, gamma):
    # torch.optim.lr_scheduler.CyclicLR.get_lr, as documented.
    total = up + down
    step_ratio = up / total
    cycle = math.floor(1 + last_epoch / total)
    x = 1.0 + last_epoch / total - cycle
    scale_factor = x / step_ratio if x <= step_ratio else (x - 1) / (step_ratio - 1)
    height = (max_lr - base_lr) * scale_factor
    if mode == "triangular":
        return base_lr + height * 1.0
    if mode == "triangular2":
        return base_lr + height * math.ldexp(1.0, -(cycle - 1))  # 1 / 2**(cycle - 1)
    return base_lr + height * gamma**last_epoch


def np_interp_phases(t, points, kind):
    """Piecewise interpolation through ``[(step, value), ...]``, constant after the last."""
    for (b0, v0), (b1, v1) in itertools.pairwise(points):
        if b0 <= t < b1:
            x = (t - b0) / (b1 - b0)
            if kind == "linear":
                return v0 + (v1 - v0) * x
            return v1 + (v0 - v1) * (1 + math.cos(math.pi * x)) / 2
    return points[-1][1]


def np_wsd(t, peak, warmup, stable, decay, init, end, shape):
    if t < warmup:
        return init + (peak - init) * t / warmup
    x = min(max(t - warmup - stable, 0) / decay, 1.0)
    f = {"linear": 1 - x, "cosine": 0.5 * (1 + math.cos(math.pi * x)), "sqrt": 1 - math.sqrt(x)}
    return end + (peak - end) * f[shape]


# ---------------------------------------------------------------------------------------------
# The schedules under test: id -> (optlab schedule, NumPy reference, optax schedule or None).

CASES = {
    "constant": (
        lambda: ol.constant_schedule(0.3),
        lambda t: 0.3,
        lambda: optax.constant_schedule(0.3),
    ),
    "polynomial": (
        lambda: ol.polynomial_schedule(1.0, 0.01, power=2, transition_steps=20, transition_begin=5),
        lambda t: np_polynomial(t, 1.0, 0.01, 2, 20, 5),
        lambda: optax.polynomial_schedule(1.0, 0.01, 2, 20, 5),
    ),
    "linear": (
        lambda: ol.linear_schedule(0.5, 0.1, transition_steps=30),
        lambda t: np_polynomial(t, 0.5, 0.1, 1, 30),
        lambda: optax.linear_schedule(0.5, 0.1, 30),
    ),
    "piecewise_constant": (
        lambda: ol.piecewise_constant_schedule(0.1, {10: 0.1, 20: 0.5, 30: 0.1}),
        lambda t: np_piecewise_constant(t, 0.1, {10: 0.1, 20: 0.5, 30: 0.1}),
        lambda: optax.piecewise_constant_schedule(0.1, {10: 0.1, 20: 0.5, 30: 0.1}),
    ),
    "piecewise_interpolate_cosine": (
        lambda: ol.piecewise_interpolate_schedule("cosine", 1.0, {10: 0.5, 25: 0.1}),
        lambda t: np_interp_phases(t, [(0, 1.0), (10, 0.5), (25, 0.05)], "cosine"),
        lambda: optax.piecewise_interpolate_schedule("cosine", 1.0, {10: 0.5, 25: 0.1}),
    ),
    "exponential": (
        lambda: ol.exponential_decay(1.0, transition_steps=7, decay_rate=0.5, transition_begin=3),
        lambda t: np_exponential(t, 1.0, 7, 0.5, 3),
        lambda: optax.exponential_decay(1.0, 7, 0.5, 3),
    ),
    "exponential_staircase_end": (
        lambda: ol.exponential_decay(1.0, 4, 0.5, staircase=True, end_value=0.05),
        lambda t: np_exponential(t, 1.0, 4, 0.5, staircase=True, end=0.05),
        lambda: optax.exponential_decay(1.0, 4, 0.5, staircase=True, end_value=0.05),
    ),
    "exponential_growth_capped": (
        lambda: ol.exponential_decay(0.1, 5, 2.0, end_value=1.0),
        lambda t: np_exponential(t, 0.1, 5, 2.0, end=1.0),
        lambda: optax.exponential_decay(0.1, 5, 2.0, end_value=1.0),
    ),
    "inverse_time": (
        lambda: ol.inverse_time_decay(0.5, transition_steps=5, decay_rate=0.3),
        lambda t: keras_inverse_time_decay(t, 0.5, 5, 0.3, False),
        None,
    ),
    "inverse_time_staircase": (
        lambda: ol.inverse_time_decay(0.5, transition_steps=5, decay_rate=0.3, staircase=True),
        lambda t: keras_inverse_time_decay(t, 0.5, 5, 0.3, True),
        None,
    ),
    "inverse_sqrt_warmup": (
        lambda: ol.inverse_sqrt_schedule((64 * 10) ** -0.5, warmup_steps=10),
        lambda t: transformer_rate(t + 1, 64, 10),
        None,
    ),
    "inverse_sqrt": (
        lambda: ol.inverse_sqrt_schedule(0.2),
        lambda t: 0.2 / math.sqrt(t + 1),
        None,
    ),
    "cosine": (
        lambda: ol.cosine_decay_schedule(1.0, decay_steps=30),
        lambda t: np_cosine(t, 1.0, 30),
        lambda: optax.cosine_decay_schedule(1.0, 30),
    ),
    "cosine_alpha_exponent": (
        lambda: ol.cosine_decay_schedule(0.8, decay_steps=25, alpha=0.1, exponent=2.0),
        lambda t: np_cosine(t, 0.8, 25, 0.1, 2.0),
        lambda: optax.cosine_decay_schedule(0.8, 25, alpha=0.1, exponent=2.0),
    ),
    "warmup_cosine": (
        lambda: ol.warmup_cosine_decay_schedule(0.0, 1.0, 5, 40, end_value=0.1),
        lambda t: np_warmup_cosine(t, 0.0, 1.0, 5, 40, 0.1),
        lambda: optax.warmup_cosine_decay_schedule(0.0, 1.0, 5, 40, end_value=0.1),
    ),
    "warmup_cosine_no_warmup": (
        lambda: ol.warmup_cosine_decay_schedule(0.0, 1.0, 0, 30, exponent=1.5),
        lambda t: np_warmup_cosine(t, 0.0, 1.0, 0, 30, 0.0, 1.5),
        lambda: optax.warmup_cosine_decay_schedule(0.0, 1.0, 0, 30, exponent=1.5),
    ),
    "warmup_constant": (
        lambda: ol.warmup_constant_schedule(0.01, 0.5, 8),
        lambda t: 0.01 + (0.5 - 0.01) * min(t / 8, 1.0),
        lambda: optax.warmup_constant_schedule(0.01, 0.5, 8),
    ),
    "warmup_exponential": (
        lambda: ol.warmup_exponential_decay_schedule(0.0, 1.0, 6, 4, 0.7, 2, end_value=0.2),
        lambda t: t / 6 if t < 6 else np_exponential(t - 6, 1.0, 4, 0.7, 2, end=0.2),
        lambda: optax.warmup_exponential_decay_schedule(0.0, 1.0, 6, 4, 0.7, 2, end_value=0.2),
    ),
    "sgdr_torch": (
        lambda: ol.sgdr_schedule(
            [
                dict(init_value=1.0, peak_value=1.0, warmup_steps=0, decay_steps=n, end_value=0.01)
                for n in (5, 10, 20)
            ]
        ),
        lambda t: torch_cosine_warm_restarts(t, 1.0, 5, 2, 0.01) if t < 35 else 0.01,
        lambda: optax.sgdr_schedule(
            [
                dict(init_value=1.0, peak_value=1.0, warmup_steps=0, decay_steps=n, end_value=0.01)
                for n in (5, 10, 20)
            ]
        ),
    ),
    "sgdr_warmup": (
        lambda: ol.sgdr_schedule(
            [dict(init_value=0.0, peak_value=1.0, warmup_steps=3, decay_steps=12)] * 3
        ),
        lambda t: np_warmup_cosine(t % 12 if t < 36 else 12, 0.0, 1.0, 3, 12),
        lambda: optax.sgdr_schedule(
            [dict(init_value=0.0, peak_value=1.0, warmup_steps=3, decay_steps=12)] * 3
        ),
    ),
    "linear_onecycle": (
        lambda: ol.linear_onecycle_schedule(40, 1.0),
        lambda t: np_interp_phases(
            t, [(0, 0.04), (12, 1.0), (34, 0.04), (40, 0.04 / 1e4)], "linear"
        ),
        lambda: optax.linear_onecycle_schedule(40, 1.0),
    ),
    "cosine_onecycle": (
        lambda: ol.cosine_onecycle_schedule(30, 2.0, pct_start=0.2),
        lambda t: np_interp_phases(t, [(0, 0.08), (6, 2.0), (30, 0.08 / 1e4)], "cosine"),
        lambda: optax.cosine_onecycle_schedule(30, 2.0, pct_start=0.2),
    ),
    "cyclic_triangular": (
        lambda: ol.cyclic_schedule(0.1, 1.0, step_size_up=4),
        lambda t: torch_cyclic(t, 0.1, 1.0, 4, 4, "triangular", 1.0),
        None,
    ),
    "cyclic_triangular2_asymmetric": (
        lambda: ol.cyclic_schedule(0.1, 1.0, step_size_up=3, step_size_down=7, mode="triangular2"),
        lambda t: torch_cyclic(t, 0.1, 1.0, 3, 7, "triangular2", 1.0),
        None,
    ),
    "cyclic_exp_range": (
        lambda: ol.cyclic_schedule(0.01, 0.5, step_size_up=5, mode="exp_range", gamma=0.97),
        lambda t: torch_cyclic(t, 0.01, 0.5, 5, 5, "exp_range", 0.97),
        None,
    ),
    "wsd_linear": (
        lambda: ol.warmup_stable_decay_schedule(1.0, 5, 10, 20, end_value=0.1),
        lambda t: np_wsd(t, 1.0, 5, 10, 20, 0.0, 0.1, "linear"),
        None,
    ),
    "wsd_cosine": (
        lambda: ol.warmup_stable_decay_schedule(1.0, 0, 10, 20, decay_type="cosine"),
        lambda t: np_wsd(t, 1.0, 0, 10, 20, 0.0, 0.0, "cosine"),
        None,
    ),
    "wsd_sqrt": (
        lambda: ol.warmup_stable_decay_schedule(0.5, 4, 6, 16, init_value=0.05, decay_type="sqrt"),
        lambda t: np_wsd(t, 0.5, 4, 6, 16, 0.05, 0.0, "sqrt"),
        None,
    ),
    "join": (
        lambda: ol.join_schedules(
            [
                ol.linear_schedule(0.0, 1.0, 10),
                ol.constant_schedule(0.5),
                ol.exponential_decay(0.5, 5, 0.5),
            ],
            [10, 20],
        ),
        lambda t: t / 10 if t < 10 else (0.5 if t < 20 else 0.5 * 0.5 ** ((t - 20) / 5)),
        lambda: optax.join_schedules(
            [
                optax.linear_schedule(0.0, 1.0, 10),
                optax.constant_schedule(0.5),
                optax.exponential_decay(0.5, 5, 0.5),
            ],
            [10, 20],
        ),
    ),
}


@pytest.fixture(scope="module")
def ours():
    # Every schedule evaluated at STEPS in one compiled function (one compilation in all).
    return jax.jit(lambda t: {n: jax.vmap(c[0]())(t) for n, c in CASES.items()})(jnp.asarray(STEPS))


@pytest.fixture(scope="module")
def theirs():
    with_optax = {n: c[2] for n, c in CASES.items() if c[2] is not None}
    return jax.jit(lambda t: {n: jax.vmap(make())(t) for n, make in with_optax.items()})(
        jnp.asarray(STEPS)
    )


@pytest.mark.parametrize("name", list(CASES))
def test_matches_closed_form(name, ours):
    expected = np.array([CASES[name][1](int(t)) for t in STEPS], np.float64)
    np.testing.assert_allclose(np.asarray(ours[name], np.float64), expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c[2] is not None])
def test_matches_optax(name, ours, theirs):
    # Both are float32; the formulas are arranged differently (e.g. end + (peak - end) * c
    # against peak * ((1 - alpha) * c + alpha)), so a few ulps apart.
    np.testing.assert_allclose(
        np.asarray(ours[name], np.float64),
        np.asarray(theirs[name], np.float64),
        rtol=RTOL,
        atol=ATOL,
    )


def test_resume_continues_exactly_for_every_schedule():
    # An optimizer checkpointed at step 15 (state to NumPy and back) and continued by a freshly
    # built optimizer applies, bit for bit, the learning rates of the uninterrupted run (across
    # boundaries of most schedules above). Eager steps of one chain: nothing to compile.
    names = list(CASES)

    def build():
        return ol.named_chain(*((n, ol.scale_by_learning_rate(CASES[n][0]())) for n in names))

    def run(tx, state, steps):
        out = []
        for _ in range(steps):
            _, state = tx.update(jnp.ones([]), state)
            out.append({n: np.asarray(state[n].learning_rate) for n in names})
        return state, out

    tx = build()
    state, first = run(tx, tx.init(None), 15)
    _, uninterrupted = run(tx, state, 15)
    checkpoint = jax.tree.map(np.asarray, state)
    _, resumed = run(build(), jax.tree.map(jnp.asarray, checkpoint), 15)
    for n in names:
        got = [r[n] for r in resumed]
        np.testing.assert_array_equal(got, [r[n] for r in uninterrupted], err_msg=n)
        np.testing.assert_allclose(
            [r[n] for r in first] + got,
            [CASES[n][1](t) for t in range(30)],
            rtol=RTOL,
            atol=ATOL,
            err_msg=n,
        )


# Schedules whose numeric hyperparameters are passed as (traced) arguments.
TRACED = {
    "polynomial": lambda h: ol.polynomial_schedule(h["a"], h["b"], h["p"], 20, 2),
    "piecewise_constant": lambda h: ol.piecewise_constant_schedule(h["a"], {5: 0.5, 9: 0.1}),
    "exponential": lambda h: ol.exponential_decay(h["a"], 4, h["r"], end_value=h["b"]),
    "inverse_time": lambda h: ol.inverse_time_decay(h["a"], 3, h["r"], staircase=True),
    "inverse_sqrt": lambda h: ol.inverse_sqrt_schedule(h["a"], 4),
    "cosine": lambda h: ol.cosine_decay_schedule(h["a"], 20, h["r"], h["p"]),
    "warmup_cosine": lambda h: ol.warmup_cosine_decay_schedule(h["b"], h["a"], 3, 20, h["b"]),
    "warmup_exponential": lambda h: ol.warmup_exponential_decay_schedule(
        h["b"], h["a"], 3, 4, h["r"]
    ),
    "sgdr": lambda h: ol.sgdr_schedule(
        [dict(init_value=h["b"], peak_value=h["a"], warmup_steps=2, decay_steps=8)] * 2
    ),
    "onecycle": lambda h: ol.cosine_onecycle_schedule(20, h["a"]),
    "cyclic": lambda h: ol.cyclic_schedule(h["b"], h["a"], 3, mode="exp_range", gamma=h["r"]),
    "wsd": lambda h: ol.warmup_stable_decay_schedule(h["a"], 3, 3, 6, h["b"], h["b"]),
}


def test_traced_hyperparameters_do_not_recompile():
    def all_values(h, steps):
        return {n: jax.vmap(make(h))(steps) for n, make in TRACED.items()}

    counted = TraceCounter(all_values)
    jitted = jax.jit(counted)
    steps = jnp.arange(0, 30)
    for h in ({"a": 1.0, "b": 0.1, "p": 2.0, "r": 0.5}, {"a": 0.3, "b": 0.01, "p": 1.0, "r": 0.9}):
        got = jitted({k: jnp.asarray(v, jnp.float32) for k, v in h.items()}, steps)
        python_numbers = jax.jit(lambda s, h=h: all_values(h, s))(steps)
        for n in TRACED:  # the same values as with Python numbers
            np.testing.assert_allclose(got[n], python_numbers[n], rtol=1e-6, err_msg=n)
    assert counted.count == 1


def test_vmap_over_peak_value():
    peaks = jnp.asarray([0.1, 0.2, 0.4])
    vals = jax.jit(
        jax.vmap(lambda p: ol.warmup_cosine_decay_schedule(0.0, p, 2, 10)(jnp.asarray(5)))
    )(peaks)
    np.testing.assert_allclose(
        vals, [np_warmup_cosine(5, 0.0, float(p), 2, 10) for p in peaks], rtol=1e-6
    )


def test_epochs_to_steps_feeds_step_decay():
    # The seeds' ResNet rule: x0.1 at epochs 30, 60 and 90, here with 10 steps per epoch.
    sched = ol.piecewise_constant_schedule(
        0.1, ol.epochs_to_steps({30: 0.1, 60: 0.1, 90: 0.1}, steps_per_epoch=10)
    )
    steps = np.array([0, 299, 300, 599, 600, 899, 900, 5000])
    np.testing.assert_allclose(
        _values(sched, steps), [0.1, 0.1, 0.01, 0.01, 1e-3, 1e-3, 1e-4, 1e-4], rtol=1e-6
    )
    assert ol.epochs_to_steps([1, 4], 25) == [25, 100]
    assert ol.epochs_to_steps(3, 7) == 21


BAD = [
    (
        "poly_steps",
        lambda: ol.polynomial_schedule(1.0, 0.0, 1, 0),
        r"polynomial_schedule: transition_steps must be an integer >= 1, got transition_steps=0",
    ),
    (
        "poly_begin",
        lambda: ol.linear_schedule(1.0, 0.0, 10, -1),
        r"linear_schedule: transition_begin must be an integer >= 0",
    ),
    (
        "negative_rate",
        lambda: ol.linear_schedule(float("nan"), 0.0, 10),
        r"linear_schedule: init_value must be finite, got init_value=nan",
    ),
    (
        "exp_steps",
        lambda: ol.exponential_decay(1.0, -5, 0.5),
        r"exponential_decay: transition_steps must be an integer >= 1",
    ),
    (
        "exp_rate",
        lambda: ol.exponential_decay(1.0, 5, 0.0),
        r"exponential_decay: decay_rate must be > 0, got decay_rate=0.0",
    ),
    (
        "inv_time_rate",
        lambda: ol.inverse_time_decay(1.0, 5, -0.5),
        r"inverse_time_decay: decay_rate must be >= 0",
    ),
    (
        "inv_time_steps",
        lambda: ol.inverse_time_decay(1.0, 0, 0.5),
        r"inverse_time_decay: transition_steps must be an integer >= 1",
    ),
    (
        "inv_sqrt_warmup",
        lambda: ol.inverse_sqrt_schedule(1.0, -3),
        r"inverse_sqrt_schedule: warmup_steps must be an integer >= 0",
    ),
    (
        "cos_steps",
        lambda: ol.cosine_decay_schedule(1.0, 0),
        r"cosine_decay_schedule: decay_steps must be an integer >= 1",
    ),
    (
        "cos_fraction_steps",
        lambda: ol.cosine_decay_schedule(1.0, 10.5),
        r"cosine_decay_schedule: decay_steps must be an integer >= 1, got decay_steps=10.5",
    ),
    (
        "warmup_too_long",
        lambda: ol.warmup_cosine_decay_schedule(0.0, 1.0, 100, 50),
        r"warmup_steps must be < decay_steps .*got warmup_steps=100, decay_steps=50",
    ),
    (
        "warmup_inf_peak",
        lambda: ol.warmup_constant_schedule(0.0, float("inf"), 5),
        r"warmup_constant_schedule: peak_value must be finite",
    ),
    (
        "cos_alpha_above_one",
        lambda: ol.cosine_decay_schedule(1.0, 10, alpha=1.5),
        r"cosine_decay_schedule: alpha must be in \[0, 1\], got alpha=1.5",
    ),
    (
        "piecewise_scale",
        lambda: ol.piecewise_constant_schedule(1.0, {5: -0.1}),
        r"piecewise_constant_schedule: boundaries_and_scales\[5\] must be >= 0",
    ),
    (
        "piecewise_boundary",
        lambda: ol.piecewise_constant_schedule(1.0, {-5: 0.1}),
        r"piecewise_constant_schedule: boundaries_and_scales \(a boundary\) must be an integer",
    ),
    (
        "interp_type",
        lambda: ol.piecewise_interpolate_schedule("cubic", 1.0, {5: 0.1}),
        r"interpolate_type must be one of 'linear', 'cosine', got interpolate_type='cubic'",
    ),
    (
        "join_not_increasing",
        lambda: ol.join_schedules([lambda t: 1.0] * 3, [10, 5]),
        r"join_schedules: boundaries must be strictly increasing, got boundaries=\[10, 5\]",
    ),
    (
        "join_count",
        lambda: ol.join_schedules([lambda t: 1.0] * 3, [10]),
        r"join_schedules: boundaries must have one entry fewer than schedules",
    ),
    (
        "epochs_not_increasing",
        lambda: ol.epochs_to_steps([30, 30], 10),
        r"epochs_to_steps: epochs must be strictly increasing",
    ),
    (
        "steps_per_epoch",
        lambda: ol.epochs_to_steps([30], 0),
        r"epochs_to_steps: steps_per_epoch must be an integer >= 1",
    ),
    (
        "sgdr_empty",
        lambda: ol.sgdr_schedule([]),
        r"sgdr_schedule: cosine_kwargs must hold at least one cycle",
    ),
    (
        "sgdr_cycle_warmup",
        lambda: ol.sgdr_schedule(
            [dict(init_value=0.0, peak_value=1.0, warmup_steps=9, decay_steps=9)]
        ),
        r"warmup_cosine_decay_schedule: warmup_steps must be < decay_steps",
    ),
    (
        "onecycle_short",
        lambda: ol.linear_onecycle_schedule(2, 1.0),
        r"linear_onecycle_schedule: transition_steps=2 is too small",
    ),
    (
        "onecycle_pct",
        lambda: ol.cosine_onecycle_schedule(100, 1.0, pct_start=1.5),
        r"cosine_onecycle_schedule: pct_start must be in \(0, 1\), got pct_start=1.5",
    ),
    (
        "cyclic_mode",
        lambda: ol.cyclic_schedule(0.1, 1.0, mode="sine"),
        r"cyclic_schedule: mode must be one of 'triangular', 'triangular2', 'exp_range'",
    ),
    (
        "cyclic_order",
        lambda: ol.cyclic_schedule(1.0, 0.1),
        r"cyclic_schedule: max_value must be >= base_value",
    ),
    (
        "cyclic_gamma",
        lambda: ol.cyclic_schedule(0.1, 1.0, mode="exp_range", gamma=1.5),
        r"cyclic_schedule: gamma must be in \(0, 1\]",
    ),
    (
        "wsd_decay_steps",
        lambda: ol.warmup_stable_decay_schedule(1.0, 5, 5, 0),
        r"warmup_stable_decay_schedule: decay_steps must be an integer >= 1",
    ),
    (
        "wsd_type",
        lambda: ol.warmup_stable_decay_schedule(1.0, 5, 5, 5, decay_type="step"),
        r"decay_type must be one of 'linear', 'cosine', 'sqrt'",
    ),
]


@pytest.mark.parametrize(
    ("factory", "match"), [(f, m) for _, f, m in BAD], ids=[i for i, _, _ in BAD]
)
def test_bad_arguments_raise_naming_the_argument(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


TYPE_BAD = [
    ("str_value", lambda: ol.linear_schedule("0.1", 0.0, 10), r"linear_schedule: init_value"),
    ("none_value", lambda: ol.cosine_decay_schedule(None, 10), r"cosine_decay_schedule: init_"),
    ("str_steps", lambda: ol.exponential_decay(1.0, "5", 0.5), r"transition_steps must be a"),
    ("list_rate", lambda: ol.exponential_decay(1.0, 5, [0.5]), r"decay_rate must be a real number"),
    ("bool_staircase", lambda: ol.exponential_decay(1.0, 5, 0.5, staircase=1), r"staircase"),
    ("join_not_callable", lambda: ol.join_schedules([1.0, 2.0], [5]), r"schedules\[0\] must"),
    ("piecewise_list", lambda: ol.piecewise_constant_schedule(1.0, [5]), r"must be a dict"),
]


@pytest.mark.parametrize(
    ("factory", "match"), [(f, m) for _, f, m in TYPE_BAD], ids=[i for i, _, _ in TYPE_BAD]
)
def test_wrong_types_raise_type_errors(factory, match):
    with pytest.raises(TypeError, match=match):
        factory()


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (
            lambda: ol.piecewise_constant_schedule(-0.1, {3: 2.0, 6: 0.5}),
            lambda: optax.piecewise_constant_schedule(-0.1, {3: 2.0, 6: 0.5}),
        ),
        (
            lambda: ol.warmup_cosine_decay_schedule(0.2, 1.21, 50, 100, end_value=-3.0),
            lambda: optax.warmup_cosine_decay_schedule(0.2, 1.21, 50, 100, end_value=-3.0),
        ),
        (lambda: ol.linear_schedule(-1.0, 1.0, 10), lambda: optax.linear_schedule(-1.0, 1.0, 10)),
    ],
    ids=["piecewise", "warmup_cosine", "linear"],
)
def test_negative_values_are_accepted_as_in_optax(ours, theirs):
    # Schedules drive more than learning rates (momentum, a loss weight, ...): any finite
    # value is accepted; optax's schedule is the oracle (same closed forms, float32).
    steps = np.arange(0, 120, 7)
    np.testing.assert_allclose(
        _values(ours(), steps), _values(theirs(), steps), rtol=1e-5, atol=1e-6
    )


def test_cosine_decay_with_steps_past_int32():
    # decay_steps = 1e10 does not fit an int32: computed in floating point, as optax does.
    sched = ol.cosine_decay_schedule(1000.0, decay_steps=int(1e10))
    expected = 1000.0 * 0.5 * (1 + math.cos(math.pi * 1e9 / 1e10))
    np.testing.assert_allclose(float(jax.jit(sched)(int(1e9))), expected, rtol=1e-6)


def test_wsd_accepts_a_decay_shape_function():
    sched = ol.warmup_stable_decay_schedule(1.0, 2, 2, 4, decay_type=lambda x: (1 - x) ** 2)
    expected = [0.0, 0.5, 1.0, 1.0, 1.0, 0.5625, 0.25, 0.0625, 0.0, 0.0]
    np.testing.assert_allclose(_values(sched, np.arange(10)), expected, atol=1e-7)


def test_float64_under_x64(x64):
    # With x64 the schedules compute in float64: the closed forms then agree to 1e-12.
    steps = np.array([0, 3, 7, 12, 30, 100])
    for name in ("cosine_alpha_exponent", "inverse_time", "warmup_exponential", "cyclic_exp_range"):
        make, reference, _ = CASES[name]
        got = jax.jit(jax.vmap(make()))(jnp.asarray(steps))
        assert got.dtype == jnp.float64, name
        np.testing.assert_allclose(
            got, [reference(int(t)) for t in steps], rtol=1e-12, err_msg=name
        )
