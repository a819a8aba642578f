"""Small models, data and a loss shared by the tuning tests."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import optlab as ol


def xent(logits, labels):
    """Softmax cross-entropy with integer labels, per example (written out, not imported)."""
    logp = jax.nn.log_softmax(logits)
    return -jnp.take_along_axis(logp, labels[:, None], axis=-1)[:, 0]


def blobs(n: int = 96, din: int = 4, classes: int = 3, seed: int = 0, spread: float = 2.0):
    """Gaussian blobs: float32 features, int32 labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n).astype(np.int32)
    centers = rng.standard_normal((classes, din)) * spread
    x = (centers[y] + rng.standard_normal((n, din))).astype(np.float32)
    return x, y


class Net(nnx.Module):
    """A plain nnx MLP with BatchNorm and dropout (modes switched by train()/eval())."""

    def __init__(self, din: int, width: int, dout: int, *, rngs: nnx.Rngs, dropout: float = 0.2):
        self.l1 = nnx.Linear(din, width, rngs=rngs)
        self.bn = nnx.BatchNorm(width, rngs=rngs)
        self.do = nnx.Dropout(dropout, rngs=rngs)
        self.l2 = nnx.Linear(width, dout, rngs=rngs)

    def __call__(self, x):
        return self.l2(self.do(nnx.relu(self.bn(self.l1(x)))))


def mlp(config, rngs):
    """An optlab MLP with BatchNorm and dropout; ``config["width"]`` when given."""
    return ol.nn.MLP(4, (config.get("width", 8),), 3, norm="batch", dropout=0.2, rngs=rngs)


def sgd(config):
    return ol.sgd(config["lr"], momentum=config.get("momentum"))


def assert_histories_close(actual, expected, rtol=2e-5, atol=2e-6):
    """Every value the sweep records equals the solo run's (timings aside)."""
    keys = [k for k in expected.keys() if k not in ("time", "steps_per_second")]
    assert sorted(actual.keys()) == sorted(keys)
    assert actual.epoch == expected.epoch
    for k in keys:
        np.testing.assert_allclose(actual[k], expected[k], rtol=rtol, atol=atol, err_msg=k)
