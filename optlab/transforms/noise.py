r"""Annealed Gaussian gradient noise."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optlab.core.base import GradientTransformation, Numeric
from optlab.core.numerics import compute_dtype, safe_increment, zero_count
from optlab.core.validation import check_integer, check_nonnegative, is_real_number


class AddNoiseState(NamedTuple):
    """State of :func:`add_noise`.

    Attributes:
      count: number of updates applied.
      rng_key: the key the next noise is drawn from.
    """

    count: jax.Array
    rng_key: jax.Array


def _is_key_array(key: Any) -> bool:
    if not isinstance(key, jax.Array):
        return False
    return jnp.issubdtype(key.dtype, jax.dtypes.prng_key) or (
        key.dtype == jnp.uint32 and key.shape == (2,)
    )


def _canonical_key(key: jax.Array | int) -> jax.Array:
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    if isinstance(key, jax.Array) and key.dtype == jnp.uint32 and key.shape == (2,):
        return jax.random.wrap_key_data(key)
    return jax.random.key(int(key))


def add_noise(
    eta: Numeric, gamma: Numeric, key: jax.Array | int | None = None, *, seed: int | None = None
) -> GradientTransformation:
    r"""Adds annealed Gaussian noise to the updates.

    .. math::

        u_t = g_t + \sigma_t\, \xi_t, \qquad \xi_t \sim \mathcal N(0, I), \qquad
        \sigma_t^2 = \frac{\eta}{(1 + t)^{\gamma}}

    with :math:`t = 0` at the first update (optax's convention). Put it before the learning
    rate: ``ol.chain(ol.add_noise(0.01, 0.55, key=0), ol.sgd(0.1))``.

    Args:
      eta: :math:`\eta`, the initial variance; finite and ``>= 0`` (or a jax array).
      gamma: :math:`\gamma`, the annealing exponent; finite and ``>= 0`` (0.55 in the paper).
      key: a ``jax.random.key`` or an integer seed (default 0).
      seed: the integer seed, another spelling of ``key`` (give at most one of the two).

    Returns:
      A transformation whose state is ``AddNoiseState(count, rng_key)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.add_noise(eta=0.0, gamma=0.55, key=0)  # no variance: no noise
      >>> u, state = tx.update(jnp.array([1.0, 2.0]), tx.init(None))
      >>> print(u, ol.get(state, "count"))
      [1. 2.] 1

    References:
      Neelakantan et al., Adding Gradient Noise Improves Learning for Very Deep Networks,
      2015. https://arxiv.org/abs/1511.06807
    """
    check_nonnegative("add_noise", "eta", eta)
    check_nonnegative("add_noise", "gamma", gamma)
    check_integer("add_noise", "seed", seed, none=True)
    if seed is not None:
        if key is not None:
            raise ValueError("add_noise: give key or seed, not both")
        key = seed
    key = 0 if key is None else key
    if not (is_real_number(key) and float(key).is_integer()) and not _is_key_array(key):
        raise TypeError(
            f"add_noise: key must be a jax.random.key, a raw uint32 key of shape (2,) or an "
            f"integer seed, got key={key!r:.60} ({type(key).__name__})"
        )

    def init_fn(params):
        del params
        return AddNoiseState(count=zero_count(), rng_key=_canonical_key(key))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        count = safe_increment(state.count)
        variance = eta / jnp.asarray(count, jnp.float32) ** gamma
        std = jnp.sqrt(variance)
        rng_key, sample_key = jax.random.split(state.rng_key)
        leaves, treedef = jax.tree.flatten(updates)
        keys = jax.random.split(sample_key, max(len(leaves), 1))
        noisy = []
        for leaf, k in zip(leaves, keys, strict=False):
            dt = compute_dtype(leaf.dtype)
            xi = jax.random.normal(k, leaf.shape, dt)
            noisy.append((leaf.astype(dt) + std.astype(dt) * xi).astype(leaf.dtype))
        return treedef.unflatten(noisy), AddNoiseState(count=count, rng_key=rng_key)

    return GradientTransformation(init_fn, update_fn)
