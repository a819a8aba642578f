r"""Data augmentation as pure ``jax`` functions of a batch and a key (jit- and scan-friendly).

Each function draws everything from ``key`` (one draw per example) and returns a new batch; the
image functions expect ``(batch, height, width, channels)`` (load with ``flatten=False``, or
reshape). Apply them inside the compiled train step, with a fresh key per step.

.. math::

   \text{noise: } x + \sigma \varepsilon, \qquad
   \text{mixup: } \tilde x = \lambda x_i + (1 - \lambda) x_j,\ \
   \tilde y = \lambda y_i + (1 - \lambda) y_j,\ \ \lambda \sim \mathrm{Beta}(\alpha, \alpha).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from optlab.core.validation import check_in_range, check_int_at_least, check_nonnegative

Array = jax.Array


def _check_images(fn: str, x: Array) -> None:
    if jnp.ndim(x) != 4:
        raise ValueError(
            f"{fn}: expects image batches (batch, height, width, channels), got shape "
            f"{jnp.shape(x)}; load the dataset with flatten=False or reshape the batch"
        )


def gaussian_noise(x: Array, key: Array, stddev: float = 0.1) -> Array:
    r"""Adds :math:`\mathcal N(0, \sigma^2)` noise to every input element.

    Examples:
      >>> import jax, jax.numpy as jnp, optlab
      >>> print(optlab.data.gaussian_noise(jnp.ones(3), jax.random.key(0), 0.0))
      [1. 1. 1.]
    """
    check_nonnegative("gaussian_noise", "stddev", stddev)
    return x + stddev * jax.random.normal(key, jnp.shape(x), jnp.result_type(x))


def mixup(x: Array, y: Array, key: Array, alpha: float = 0.2) -> tuple[Array, Array]:
    r"""Mixup: convex combinations of pairs of examples and of their one-hot labels.

    Each example :math:`i` is mixed with example :math:`\pi(i)` of a random permutation
    :math:`\pi` of the batch, with its own :math:`\lambda_i \sim \mathrm{Beta}(\alpha, \alpha)`.

    Args:
      x: inputs ``(batch, ...)``.
      y: one-hot labels or class probabilities ``(batch, num_classes)`` (floats).
      key: a ``jax.random`` key.
      alpha: the Beta distribution's parameter.

    Returns:
      ``(x_mixed, y_mixed)``; train with :func:`optlab.nn.softmax_cross_entropy`.

    References:
      Zhang et al., mixup: Beyond Empirical Risk Minimization, 2018.
      https://arxiv.org/abs/1710.09412
    """
    if not jnp.issubdtype(jnp.result_type(y), jnp.floating):
        raise ValueError(
            "mixup: y must be one-hot (float) labels, e.g. jax.nn.one_hot(labels, num_classes)"
        )
    check_in_range("mixup", "alpha", alpha, 0.0, float("inf"), low_closed=False)
    k_lam, k_perm = jax.random.split(key)
    n = jnp.shape(x)[0]
    lam = jax.random.beta(k_lam, alpha, alpha, (n,))
    perm = jax.random.permutation(k_perm, n)
    lx = lam.reshape((n,) + (1,) * (jnp.ndim(x) - 1)).astype(jnp.result_type(x))
    ly = lam.reshape((n,) + (1,) * (jnp.ndim(y) - 1)).astype(jnp.result_type(y))
    return lx * x + (1 - lx) * x[perm], ly * y + (1 - ly) * y[perm]


def cutout(x: Array, key: Array, size: int = 4) -> Array:
    """Zeroes one ``size`` x ``size`` square per image, centred at a uniformly random pixel.

    The square is clipped at the image border, as in DeVries and Taylor.

    References:
      DeVries and Taylor, Improved Regularization of Convolutional Neural Networks with Cutout,
      2017. https://arxiv.org/abs/1708.04552
    """
    _check_images("cutout", x)
    check_int_at_least("cutout", "size", size, 1)
    n, h, w, _ = x.shape
    k_y, k_x = jax.random.split(key)
    cy = jax.random.randint(k_y, (n, 1, 1), 0, h)
    cx = jax.random.randint(k_x, (n, 1, 1), 0, w)
    rows = jnp.arange(h)[None, :, None]
    cols = jnp.arange(w)[None, None, :]
    top, left = cy - size // 2, cx - size // 2
    inside = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    return jnp.where(inside[..., None], jnp.zeros_like(x), x)


def random_shift(x: Array, key: Array, max_shift: int = 2) -> Array:
    """Translates each image by integers ``(dy, dx)`` drawn from ``[-max_shift, max_shift]``.

    Pixels shifted in from outside are zero: ``out[i, j] = x[i - dy, j - dx]``.
    """
    _check_images("random_shift", x)
    check_int_at_least("random_shift", "max_shift", max_shift, 0)
    n, h, w, c = x.shape
    s = max_shift
    shifts = jax.random.randint(key, (n, 2), -s, s + 1)
    padded = jnp.pad(x, ((0, 0), (s, s), (s, s), (0, 0)))

    def one(img, shift):
        return jax.lax.dynamic_slice(img, (s - shift[0], s - shift[1], 0), (h, w, c))

    return jax.vmap(one)(padded, shifts)


def random_flip_left_right(x: Array, key: Array, probability: float = 0.5) -> Array:
    """Mirrors each image horizontally with the given probability."""
    _check_images("random_flip_left_right", x)
    check_in_range("random_flip_left_right", "probability", probability, 0.0, 1.0, high_closed=True)
    flip = jax.random.bernoulli(key, probability, (x.shape[0], 1, 1, 1))
    return jnp.where(flip, x[:, :, ::-1, :], x)
