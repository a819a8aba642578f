"""The babysitting checks: a healthy setup passes, each planted bug fails its check."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import optlab as ol
from tests.tune.common import blobs, xent

X, Y = blobs(160, classes=4, spread=3.0)
KW = dict(loss=xent, overfit_steps=100, batch_size=16)
# One transformation object for every check that does not need its own: the stepping programs
# take it as a static argument, so the tests that share it (and the model's structure, the
# loss and the shapes) reuse the healthy setup's compilations instead of compiling their own.
ADAM = ol.adam(3e-2)


class Plain(nnx.Module):
    """Linear -> BatchNorm -> tanh -> Linear (zero-initialized head: logits 0, loss log C;
    with ``mix`` a head of small weights, so that gradients reach the inputs)."""

    def __init__(self, *, rngs, mix=False, zero=False):
        init = nnx.initializers.zeros if zero else nnx.initializers.lecun_normal()
        head = nnx.initializers.normal(1e-2) if mix else nnx.initializers.zeros
        self.l1 = nnx.Linear(4, 16, kernel_init=init, rngs=rngs)
        self.bn = nnx.BatchNorm(16, rngs=rngs)
        self.l2 = nnx.Linear(16, 4, kernel_init=head, rngs=rngs)
        self.mix = mix

    def __call__(self, x):
        if self.mix:  # the planted bug: every example sees the batch mean
            x = x - x.mean(axis=0)
        return self.l2(jnp.tanh(self.bn(self.l1(x))))


def verdicts(report):
    return {c.name: c.passed for c in report.checks}


@pytest.fixture(scope="module")
def healthy():
    model = Plain(rngs=nnx.Rngs(0))
    return model, ol.tune.sanity_checks(model, ADAM, (X, Y), **KW)


def test_a_healthy_setup_passes_every_check(healthy):
    model, report = healthy
    assert report.passed and report.failed == []
    assert list(verdicts(report)) == [
        "initial_loss",
        "l2_raises_loss",
        "overfit_small_sample",
        "input_independent_baseline",
        "per_example_independence",
        "no_nan_first_steps",
    ]
    # the measured values, against independent computations
    assert report["initial_loss"].value == pytest.approx(math.log(4), rel=1e-6)  # zero head
    kernel = np.asarray(model.l1.kernel[...], np.float64)
    assert report["l2_raises_loss"].value == pytest.approx(
        0.5 * 1e-2 * np.sum(kernel**2), rel=1e-5
    )  # l2's kernel is zero
    # the zero head leaves no gradient through the model; the loss's Jacobian is diagonal
    assert report["per_example_independence"].value == 0.0
    assert report["no_nan_first_steps"].value == 0.0
    text = str(report)
    assert text.splitlines()[0].split() == ["check", "value", "verdict", "rule"]
    assert "FAIL" not in text


def test_a_model_that_mixes_the_batch_is_caught():
    report = ol.tune.sanity_checks(Plain(rngs=nnx.Rngs(0), mix=True), ADAM, (X, Y), **KW)
    assert [c.name for c in report.failed] == ["per_example_independence"]
    assert report["per_example_independence"].value > 1e-3
    assert "mixes the batch" in str(report)


def test_a_loss_on_the_wrong_axis_is_caught():
    def wrong_axis(logits, labels):  # softmax over the batch instead of the classes
        logp = jax.nn.log_softmax(logits, axis=0)
        return -jnp.take_along_axis(logp, labels[:, None], axis=-1)[:, 0]

    report = ol.tune.sanity_checks(
        Plain(rngs=nnx.Rngs(0)), ADAM, (X, Y), **{**KW, "loss": wrong_axis}
    )
    assert report["per_example_independence"].passed is False
    assert report["initial_loss"].passed is False  # log(batch) instead of log(C)


def test_shuffled_labels_are_caught_by_the_baseline():
    y = np.random.default_rng(1).permutation(Y)
    report = ol.tune.sanity_checks(Plain(rngs=nnx.Rngs(0)), ADAM, (X, y), **KW)
    assert report["input_independent_baseline"].passed is False
    assert report["input_independent_baseline"].value > 0.95
    assert report["overfit_small_sample"].passed  # memorizing 20 examples still works


def test_a_learning_rate_of_zero_cannot_overfit():
    report = ol.tune.sanity_checks(Plain(rngs=nnx.Rngs(0)), ol.sgd(0.0), (X, Y), **KW)
    assert report["overfit_small_sample"].passed is False
    assert report["overfit_small_sample"].value == pytest.approx(1.0, abs=1e-6)


def test_zero_weights_and_an_exploding_rate_are_caught():
    zero = Plain(rngs=nnx.Rngs(0), zero=True)
    report = ol.tune.sanity_checks(zero, ADAM, (X, Y), **KW)
    assert report["l2_raises_loss"].passed is False and report["l2_raises_loss"].value == 0.0
    report = ol.tune.sanity_checks(Plain(rngs=nnx.Rngs(0)), ol.sgd(1e30), (X * 1e6, Y), **KW)
    assert report["no_nan_first_steps"].passed is False
    assert report["no_nan_first_steps"].value >= 1


def test_models_and_transformations_are_unchanged(healthy):
    model, _ = healthy
    before = jax.tree.map(np.array, nnx.state(model))
    ol.tune.sanity_checks(model, ADAM, (X, Y), **KW)
    for a, b in zip(jax.tree.leaves(nnx.state(model)), jax.tree.leaves(before), strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)


def test_bad_arguments():
    model = Plain(rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="sanity_checks: tx must be a gradient transformation"):
        ol.tune.sanity_checks(model, ol.adam, (X, Y), loss=xent)
    with pytest.raises(ValueError, match="sanity_checks: overfit_steps must be an integer >= 20"):
        ol.tune.sanity_checks(model, ol.adam(1e-3), (X, Y), loss=xent, overfit_steps=5)
