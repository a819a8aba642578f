"""The learning-rate range test: the ramp and the smoothing against NumPy, purity, the
suggestions against a curve with known answers, the verification against solo fits."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from flax import nnx
from scipy.optimize import brentq

import optlab as ol
from optlab.train.fit import epoch_keys
from optlab.tune.lr_find import candidates, suggest
from tests.tune.common import blobs, xent


def snapshot(tree):
    """Host copies of every leaf (typed RNG keys as their raw key data)."""

    def copy(a):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a = jax.random.key_data(a)
        return np.array(a)

    return jax.tree.map(copy, tree)


def mse(pred, target):
    return (pred[:, 0] - target) ** 2


def test_range_test_matches_a_float64_numpy_ramp():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.3).astype(np.float32)
    model = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
    w, b = np.asarray(model.kernel[...], np.float64), np.asarray(model.bias[...], np.float64)
    result = ol.tune.lr_find(
        model,
        ol.sgd,
        (x, y),
        loss=mse,
        min_lr=1e-3,
        max_lr=30.0,
        num_steps=24,
        batch_size=8,
        seed=4,
        smoothing=0.7,
    )
    rows = np.concatenate(
        [
            np.asarray(jax.random.permutation(epoch_keys(jax.random.key(4), e)[0], 64))
            for e in (1, 2, 3)
        ]
    )
    lrs = 1e-3 * (30.0 / 1e-3) ** (np.arange(24) / 23)
    losses, smooth, avg, best = [], [], 0.0, math.inf
    for t in range(24):
        idx = rows[8 * t : 8 * t + 8]
        xb, yb = x[idx].astype(np.float64), y[idx].astype(np.float64)
        err = xb @ w[:, 0] + b[0] - yb
        loss = np.mean(err**2)
        avg = 0.7 * avg + 0.3 * loss
        s = avg / (1 - 0.7 ** (t + 1))
        if not np.isfinite(s) or s > 4.0 * best:
            break
        best = min(best, s)
        losses.append(loss)
        smooth.append(s)
        w = w - lrs[t] * (2 * xb.T @ err / 8)[:, None]
        b = b - lrs[t] * np.array([2 * err.mean()])
    assert 5 < len(losses) < 24  # the ramp diverged and the test stopped counting
    assert result.num_counted == len(losses)
    np.testing.assert_allclose(result.lrs, lrs, rtol=1e-12)
    np.testing.assert_allclose(result.losses[: len(losses)], losses, rtol=2e-4)
    np.testing.assert_allclose(result.smoothed[: len(smooth)], smooth, rtol=2e-4)
    assert np.isnan(result.losses[len(losses) :]).all()


def test_suggestions_on_a_curve_with_known_answers():
    """L(u) = 2 - tanh(u + 2.5) + (u + 0.5)_+^2, u = log10(lr): steepest at u = -2.5
    (slope -1), its minimum where tanh' = 2 (u + 0.5), and the other answers by root finding."""
    u = np.linspace(-6, 1, 701)
    loss = 2 - np.tanh(u + 2.5) + np.maximum(u + 0.5, 0) ** 2

    def slope(v):
        return -(1 - np.tanh(v + 2.5) ** 2) + 2 * max(v + 0.5, 0)

    u_min = brentq(slope, -0.5, 1.0)
    valley_lo = brentq(lambda v: slope(v) + 0.05, -5, -2.5)
    valley_hi = brentq(lambda v: slope(v) + 0.05, -2.5, u_min)
    slide = brentq(lambda v: slope(v) + 0.5, -2.5, u_min)
    s = suggest(10**u, loss)
    step = 0.01  # the grid's spacing in u
    assert math.log10(s["steep"]) == pytest.approx(-2.5, abs=step)
    assert math.log10(s["minimum"]) == pytest.approx(u_min - 1, abs=step)
    assert math.log10(s["valley"]) == pytest.approx((valley_lo + valley_hi) / 2, abs=step)
    assert math.log10(s["slide"]) == pytest.approx(slide, abs=step)


def test_suggestions_of_a_curve_that_never_falls_are_nan():
    u = np.linspace(-6, 1, 50)
    assert all(math.isnan(v) for v in suggest(10**u, 1 + 0.1 * (u + 6)).values())
    assert all(math.isnan(v) for v in suggest(10 ** u[:4], np.array([3.0, 2.0, 1.0, 0.5])).values())


def test_candidates_surround_each_suggestion_and_merge_neighbours():
    out = candidates({"valley": 0.01, "steep": 0.0101, "minimum": math.nan, "slide": 0.1})
    # by hand: 1/3, 1 and 3 times each, sorted; a rate within 5% of the last kept one joins it
    # (0.0101 joins 0.01, 0.0303 joins 0.03; 0.0333 is 11% above 0.03: its own candidate)
    assert [round(lr, 6) for lr, _ in out] == [0.003333, 0.01, 0.03, 0.033333, 0.1, 0.3]
    assert [names for _, names in out] == [
        ["valley", "steep"],
        ["valley", "steep"],
        ["valley", "steep"],
        ["slide"],
        ["slide"],
        ["slide"],
    ]


def momentum(lr):
    return ol.sgd(lr, momentum=0.9)


@pytest.fixture(scope="module")
def found():
    # overlapping classes (the loss stays away from zero, where rounding differences between a
    # vmapped and a solo program would be amplified)
    x, y = blobs(136, spread=0.7)
    model = ol.nn.MLP(4, (16,), 3, norm="batch", dropout=0.1, rngs=0)
    model.train()
    optimizer = nnx.Optimizer(model, ol.adam(1e-3), wrt=nnx.Param)
    before = snapshot((nnx.state(model), nnx.state(optimizer)))
    graph = nnx.graphdef(model)
    result = ol.tune.lr_find(
        model,
        momentum,
        (x[:96], y[:96]),
        loss=xent,
        min_lr=1e-5,
        max_lr=10.0,
        num_steps=30,
        batch_size=8,
        seed=1,
        smoothing=0.9,
        verify=True,
        verify_epochs=2,
        validation_data=(x[96:], y[96:]),
    )
    return result, model, optimizer, before, graph, (x, y)


def test_the_test_is_pure(found):
    result, model, optimizer, before, graph, _ = found
    after = snapshot((nnx.state(model), nnx.state(optimizer)))
    assert jax.tree.structure(after) == jax.tree.structure(before)
    for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(before), strict=True):
        np.testing.assert_array_equal(a, b)  # weights, BatchNorm statistics, RNG counts, moments
    assert nnx.graphdef(model) == graph  # still in training mode
    assert not any(a.is_deleted() for a in jax.tree.leaves(nnx.state(model)))
    assert result.num_counted > 10


def test_verification_runs_are_solo_fits_and_the_winner_is_their_best(found):
    result, _, _, _, _, (x, y) = found
    rows = result.verification
    assert [r["lr"] for r in rows] == [lr for lr, _ in candidates(result.suggestions)]
    assert result.verified == min(rows, key=lambda r: r["val_loss"])["lr"]
    # the two ends of the candidates (a solo fit compiles once per transformation object)
    for row in (rows[0], rows[-1]):
        model = ol.nn.MLP(4, (16,), 3, norm="batch", dropout=0.1, rngs=0)
        history, _ = ol.fit(
            model,
            momentum(row["lr"]),
            (x[:96], y[:96]),
            loss=xent,
            epochs=2,
            batch_size=8,
            seed=1,
            validation_data=(x[96:], y[96:]),
            metrics=(),
            progress=False,
        )
        assert row["val_loss"] == pytest.approx(history["val_loss"][-1], rel=1e-4)
    assert result.suggestion == result.verified


def test_plot_marks_the_suggestions_and_the_winner(found):
    result = found[0]
    fig = result.plot()
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[:2] == ["loss (per step)", "smoothed loss"]
    assert sum(label.startswith(("valley", "steep", "minimum", "slide")) for label in labels) == 4
    assert labels[-1].startswith("verified")


def test_injected_transformations_and_bad_arguments():
    x, y = blobs(32)
    model = ol.nn.MLP(4, (8,), 3, rngs=0)
    injected = ol.inject_hyperparams(ol.sgd)(learning_rate=0.1, momentum=0.9)
    result = ol.tune.lr_find(model, injected, (x, y), loss=xent, num_steps=8, batch_size=8)
    assert result.lrs.shape == (8,)
    with pytest.raises(TypeError, match="holds no injected learning_rate"):
        ol.tune.lr_find(model, ol.adam(1e-3), (x, y), loss=xent)
    with pytest.raises(ValueError, match="lr_find: min_lr must be < max_lr"):
        ol.tune.lr_find(model, ol.adam, (x, y), loss=xent, min_lr=1.0, max_lr=0.1)
    with pytest.raises(ValueError, match="lr_find: diverge_factor must be > 1"):
        ol.tune.lr_find(model, ol.adam, (x, y), loss=xent, diverge_factor=1.0)
    with pytest.raises(TypeError, match=r"lr_find: model must be a flax\.nnx\.Module"):
        ol.tune.lr_find("model", ol.adam, (x, y), loss=xent)
