"""Tiny models, data and a loss shared by the engine's tests (and the fresh-process resume job)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import optlab as ol


class Tiny(nnx.Module):
    """A plain nnx MLP (mode by flags): Linear -> BatchNorm -> relu -> Dropout -> Linear."""

    def __init__(
        self,
        din: int = 4,
        hidden: int = 8,
        dout: int = 3,
        *,
        dropout: float = 0.0,
        batchnorm: bool = False,
        seed: int = 0,
    ):
        rngs = nnx.Rngs(seed)
        self.l1 = nnx.Linear(din, hidden, rngs=rngs)
        self.bn = nnx.BatchNorm(hidden, rngs=rngs) if batchnorm else None
        self.do = nnx.Dropout(dropout, rngs=rngs) if dropout else None
        self.l2 = nnx.Linear(hidden, dout, rngs=rngs)

    def __call__(self, x):
        h = self.l1(x)
        if self.bn is not None:
            h = self.bn(h)
        h = nnx.relu(h)
        if self.do is not None:
            h = self.do(h)
        return self.l2(h)


def xent(logits, labels):
    """Softmax cross-entropy with integer labels, per example (written out, not imported)."""
    logp = jax.nn.log_softmax(logits)
    return -jnp.take_along_axis(logp, labels[:, None], axis=-1)[:, 0]


def blobs(n: int = 96, din: int = 4, classes: int = 3, seed: int = 0):
    """Gaussian blobs: float32 features, int32 labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n).astype(np.int32)
    centers = rng.standard_normal((classes, din)) * 2.0
    x = (centers[y] + rng.standard_normal((n, din))).astype(np.float32)
    return x, y


class _Count(NamedTuple):
    count: jax.Array


def nan_after(steps: int, lr: float = 0.1):
    """SGD whose updates turn NaN from step ``steps`` on (counted from 0): a diverging
    optimizer, whose gradients and loss stay finite until the parameters are NaN."""

    def init(params):
        return _Count(jnp.zeros((), jnp.int32))

    def update(updates, state, params=None, **kw):
        bad = jnp.where(state.count >= steps, jnp.nan, 0.0)
        return jax.tree.map(lambda g: -lr * g + bad, updates), _Count(state.count + 1)

    return ol.GradientTransformation(init, update)
