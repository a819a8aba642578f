r"""Data augmentation as pure ``jax`` functions of a key (jit-, vmap- and scan-friendly).

Two forms of each augmentation:

* **functions of arrays** (lowercase): ``gaussian_noise(x, key, stddev)``, ``mixup(x, y, key,
  alpha)``, ``cutout(x, key, size)``, ``random_shift(x, key, max_shift)``,
  ``random_flip_left_right(x, key, probability)``, to call in your own train step;
* **batch augmentations** (CamelCase, configured once): :class:`GaussianNoise`,
  :class:`Mixup`, :class:`Cutout`, :class:`RandomShift`, :class:`RandomFlipLeftRight`. Each is a
  pure ``augment(batch, key) -> batch`` on one step's :class:`~optlab.data.Batches` ``(x, y,
  mask)``; :func:`compose` chains them. ``fit(..., augment=...)`` applies one inside the
  compiled epoch with a fresh key per step (evaluation never augments). Like
  ``torch.nn.functional.dropout`` and ``torch.nn.Dropout``.

Every function draws everything from ``key`` (one draw per example). The image functions expect
``(batch, height, width, channels)`` (load with ``flatten=False``, or reshape).

Padded rows (``mask == 0``, the filler of the last batch when ``drop_remainder=False``): a batch
augmentation returns them exactly as they came in (for :class:`Mixup`, their labels become
one-hot like every row's), and :class:`Mixup` mixes real rows only with real rows, so padding
never leaks into the examples that are trained on. When ``x`` is a pytree (a multi-input
model), each floating leaf gets its own key, ``jax.random.split(key, num_leaves)``.

.. math::

   \text{noise: } x + \sigma \varepsilon, \qquad
   \text{mixup: } \tilde x_i = \lambda_i x_i + (1 - \lambda_i) x_{\pi(i)},\ \
   \tilde y_i = \lambda_i y_i + (1 - \lambda_i) y_{\pi(i)},\ \
   \lambda_i \sim \mathrm{Beta}(\alpha, \alpha).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from optlab.core.validation import (
    check_array,
    check_in_range,
    check_int_range,
    check_key,
    check_nonnegative,
    check_positive,
    check_real,
    describe_value,
)
from optlab.data.batching import Batches

Array = jax.Array


def _check_images(fn: str, x: Array) -> Array:
    x = check_array(fn, "x", x, kinds="f")
    if jnp.ndim(x) != 4:
        raise ValueError(
            f"{fn}: expects image batches (batch, height, width, channels), got shape "
            f"{jnp.shape(x)}; load the dataset with flatten=False or reshape the batch"
        )
    return x


def gaussian_noise(x: Array, key: Array, stddev: float = 0.1) -> Array:
    r"""Adds :math:`\mathcal N(0, \sigma^2)` noise to every input element:
    ``x + stddev * jax.random.normal(key, x.shape, x.dtype)``.

    Examples:
      >>> import jax, jax.numpy as jnp, optlab
      >>> print(optlab.data.gaussian_noise(jnp.ones(3), jax.random.key(0), 0.0))
      [1. 1. 1.]
    """
    x = check_array("gaussian_noise", "x", x, kinds="f")
    check_key("gaussian_noise", "key", key)
    check_real("gaussian_noise", "stddev", stddev)
    check_nonnegative("gaussian_noise", "stddev", stddev)
    return x + stddev * jax.random.normal(key, jnp.shape(x), jnp.result_type(x))


def _partners(key: Array, n: int, mask: Array | None) -> Array:
    """The mixing partner :math:`\\pi(i)` of each row: a random permutation of the batch, or,
    with a ``mask``, a random permutation of the real rows (padded rows are their own)."""
    if mask is None:
        return jax.random.permutation(key, n)
    real = jnp.asarray(mask) > 0
    k1, k2 = jax.random.split(key)
    # Real rows first, in two independent random orders; row o1[k] is mixed with row o2[k].
    o1 = jnp.argsort(jnp.where(real, 0.0, 2.0) + jax.random.uniform(k1, (n,)))
    o2 = jnp.argsort(jnp.where(real, 0.0, 2.0) + jax.random.uniform(k2, (n,)))
    return jnp.zeros(n, o1.dtype).at[o1].set(jnp.where(real[o1], o2, o1))


def mixup(
    x: Array, y: Array, key: Array, alpha: float = 0.2, *, mask: Array | None = None
) -> tuple[Array, Array]:
    r"""Mixup: convex combinations of pairs of examples and of their one-hot labels.

    Each example :math:`i` is mixed with example :math:`\pi(i)` of a random permutation
    :math:`\pi` of the batch, with its own :math:`\lambda_i \sim \mathrm{Beta}(\alpha, \alpha)`:
    ``k_lam, k_perm = jax.random.split(key)``, ``lam = jax.random.beta(k_lam, alpha, alpha,
    (n,))``, ``perm = jax.random.permutation(k_perm, n)``.

    With ``mask``, :math:`\pi` permutes the real rows (``mask > 0``) among themselves
    (``k1, k2 = jax.random.split(k_perm)``; the real rows ordered by ``jax.random.uniform(k1,
    (n,))`` are mixed with the real rows ordered by ``jax.random.uniform(k2, (n,))``), and
    padded rows come back unchanged.

    Args:
      x: inputs ``(batch, ...)``.
      y: one-hot labels or class probabilities ``(batch, num_classes)`` (floats).
      key: a ``jax.random`` key.
      alpha: the Beta distribution's parameter, > 0.
      mask: optional ``(batch,)`` weights; rows with 0 are padding.

    Returns:
      ``(x_mixed, y_mixed)``; train with :func:`optlab.nn.softmax_cross_entropy`.

    References:
      Zhang et al., mixup: Beyond Empirical Risk Minimization, 2018.
      https://arxiv.org/abs/1710.09412
    """
    x = check_array("mixup", "x", x, kinds="f", min_ndim=1)
    y = check_array("mixup", "y", y, kinds="biuf", min_ndim=1)
    if not jnp.issubdtype(jnp.result_type(y), jnp.floating):
        raise ValueError(
            "mixup: y must be one-hot (float) labels, e.g. jax.nn.one_hot(labels, num_classes), "
            f"got dtype {jnp.result_type(y)}"
        )
    check_key("mixup", "key", key)
    check_real("mixup", "alpha", alpha)
    check_positive("mixup", "alpha", alpha)
    n = jnp.shape(x)[0]
    if jnp.shape(y)[0] != n or (mask is not None and jnp.shape(mask) != (n,)):
        raise ValueError(
            f"mixup: x, y (and mask) need the same number of rows, got shapes {jnp.shape(x)}, "
            f"{jnp.shape(y)}" + ("" if mask is None else f" and {jnp.shape(mask)}")
        )
    lam, perm = _mixup_draws(key, n, alpha, mask)
    return _mix(x, lam, perm), _mix(y, lam, perm)


def _mixup_draws(key: Array, n: int, alpha: float, mask: Array | None) -> tuple[Array, Array]:
    k_lam, k_perm = jax.random.split(key)
    lam = jax.random.beta(k_lam, alpha, alpha, (n,))
    if mask is not None:
        lam = jnp.where(jnp.asarray(mask) > 0, lam, 1.0)
    return lam, _partners(k_perm, n, mask)


def _mix(a: Array, lam: Array, perm: Array) -> Array:
    la = lam.reshape((-1,) + (1,) * (jnp.ndim(a) - 1)).astype(jnp.result_type(a))
    return la * a + (1 - la) * a[perm]


def cutout(x: Array, key: Array, size: int = 4) -> Array:
    """Zeroes one ``size`` x ``size`` square per image, centred at a uniformly random pixel.

    ``k_y, k_x = jax.random.split(key)``; the centre of image ``i`` is ``(cy, cx)`` from
    ``jax.random.randint(k_y, (n, 1, 1), 0, h)`` and ``randint(k_x, (n, 1, 1), 0, w)``; pixels
    with ``cy - size // 2 <= row < cy - size // 2 + size`` (and likewise for columns) become 0.
    The square is clipped at the image border, as in DeVries and Taylor.

    References:
      DeVries and Taylor, Improved Regularization of Convolutional Neural Networks with Cutout,
      2017. https://arxiv.org/abs/1708.04552
    """
    x = _check_images("cutout", x)
    check_key("cutout", "key", key)
    check_int_range("cutout", "size", size, 1)
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
    """Translates each image by integers ``(dy, dx)`` drawn from ``[-max_shift, max_shift]``
    (``jax.random.randint(key, (n, 2), -max_shift, max_shift + 1)``).

    Pixels shifted in from outside are zero: ``out[i, j] = x[i - dy, j - dx]``.
    """
    x = _check_images("random_shift", x)
    check_key("random_shift", "key", key)
    check_int_range("random_shift", "max_shift", max_shift, 0)
    n, h, w, c = x.shape
    s = max_shift
    shifts = jax.random.randint(key, (n, 2), -s, s + 1)
    padded = jnp.pad(x, ((0, 0), (s, s), (s, s), (0, 0)))

    def one(img, shift):
        return jax.lax.dynamic_slice(img, (s - shift[0], s - shift[1], 0), (h, w, c))

    return jax.vmap(one)(padded, shifts)


def random_flip_left_right(x: Array, key: Array, probability: float = 0.5) -> Array:
    """Mirrors each image horizontally with the given probability
    (``jax.random.bernoulli(key, probability, (n, 1, 1, 1))``)."""
    x = _check_images("random_flip_left_right", x)
    check_key("random_flip_left_right", "key", key)
    check_real("random_flip_left_right", "probability", probability)
    check_in_range("random_flip_left_right", "probability", probability, 0.0, 1.0, high_closed=True)
    flip = jax.random.bernoulli(key, probability, (x.shape[0], 1, 1, 1))
    return jnp.where(flip, x[:, :, ::-1, :], x)


# --- batch augmentations: augment(batch, key) -> batch ---------------------------------------


def _check_batch(fn: str, batch: Any, key: Any) -> None:
    if not isinstance(batch, Batches):
        raise TypeError(
            f"{fn}: batch must be one step's optlab.data.Batches(x, y, mask), got "
            f"{describe_value(batch)}"
        )
    check_key(fn, "key", key)
    shape = jnp.shape(batch.mask) if batch.mask is not None else None
    if shape is None or len(shape) != 1:
        raise ValueError(
            f"{fn}: batch.mask must have shape (batch_size,) (one step's batch), got "
            f"{shape if shape is not None else 'None'}; slice an epoch's Batches along its "
            f"first axis (lax.scan does)"
        )
    for leaf in jax.tree.leaves((batch.x, batch.y)):
        if jnp.ndim(leaf) == 0 or jnp.shape(leaf)[0] != shape[0]:
            raise ValueError(
                f"{fn}: every array of the batch needs {shape[0]} rows like its mask, got "
                f"shape {jnp.shape(leaf)}"
            )


def _map_inputs(batch: Batches, key: Array, fn: Callable[[Array, Array], Array]) -> Batches:
    """Applies ``fn(x, key)`` to every floating leaf of ``batch.x`` (one key each), keeping the
    rows whose mask is 0 as they were."""
    leaves, treedef = jax.tree.flatten(batch.x)
    keys = [key] if len(leaves) == 1 else list(jax.random.split(key, len(leaves)))
    out = []
    for leaf, k in zip(leaves, keys, strict=True):
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            out.append(leaf)
            continue
        keep = (batch.mask > 0).reshape((-1,) + (1,) * (jnp.ndim(leaf) - 1))
        out.append(jnp.where(keep, fn(leaf, k), leaf))
    return batch._replace(x=jax.tree.unflatten(treedef, out))


@dataclasses.dataclass(frozen=True)
class GaussianNoise:
    """Batch form of :func:`gaussian_noise`: ``augment(batch, key) -> batch``.

    Examples:
      >>> import jax, jax.numpy as jnp, optlab
      >>> batch = optlab.data.Batches(jnp.zeros((2, 3)), jnp.array([0, 1]), jnp.array([1.0, 0.0]))
      >>> out = optlab.data.GaussianNoise(0.1)(batch, jax.random.key(0))
      >>> print(bool(jnp.all(out.x[0] != 0)), out.x[1])  # the padded row is untouched
      True [0. 0. 0.]
    """

    stddev: float = 0.1

    def __post_init__(self) -> None:
        check_real("GaussianNoise", "stddev", self.stddev)
        check_nonnegative("GaussianNoise", "stddev", self.stddev)

    def __call__(self, batch: Batches, key: Array) -> Batches:
        _check_batch("GaussianNoise", batch, key)
        return _map_inputs(batch, key, lambda x, k: gaussian_noise(x, k, self.stddev))


@dataclasses.dataclass(frozen=True)
class Mixup:
    """Batch form of :func:`mixup`, with the batch's mask: padded rows are neither mixed nor
    mixed into real rows.

    Mixup needs probability targets. Integer labels are one-hot encoded with ``num_classes``
    first (required for them; float labels must already be ``(batch, num_classes)``), so the
    returned ``y`` is float: train with a loss of probabilities. With ``optlab.fit``, whose
    validation uses the same loss on the original labels, take
    ``loss=optlab.nn.softmax_cross_entropy``: it reads both the mixed rows and integer labels.

    Args:
      alpha: the Beta distribution's parameter, > 0 (0.2 as in the paper's ImageNet runs).
      num_classes: the number of classes, to one-hot integer labels.
    """

    alpha: float = 0.2
    num_classes: int | None = None

    def __post_init__(self) -> None:
        check_real("Mixup", "alpha", self.alpha)
        check_positive("Mixup", "alpha", self.alpha)
        if self.num_classes is not None:
            check_int_range("Mixup", "num_classes", self.num_classes, 2)

    def __call__(self, batch: Batches, key: Array) -> Batches:
        _check_batch("Mixup", batch, key)
        y = batch.y
        dtype = jnp.result_type(y)
        if jnp.issubdtype(dtype, jnp.integer) or dtype == jnp.bool_:
            if self.num_classes is None or jnp.ndim(y) != 1:
                raise ValueError(
                    f"Mixup: the batch holds integer labels of shape {jnp.shape(y)}; pass "
                    f"num_classes= to one-hot (batch,) labels, e.g. Mixup(alpha, num_classes=10)"
                )
            y = jax.nn.one_hot(y, self.num_classes, dtype=jnp.float32)
        elif self.num_classes is not None and jnp.shape(y)[-1] != self.num_classes:
            raise ValueError(
                f"Mixup: float labels must be (batch, num_classes={self.num_classes}), got "
                f"shape {jnp.shape(y)}"
            )
        for leaf in jax.tree.leaves(batch.x):
            check_array("Mixup", "x", leaf, kinds="f", min_ndim=1)
        lam, perm = _mixup_draws(key, jnp.shape(batch.mask)[0], self.alpha, batch.mask)
        x = jax.tree.map(lambda a: _mix(a, lam, perm), batch.x)
        return Batches(x, _mix(y, lam, perm), batch.mask)


@dataclasses.dataclass(frozen=True)
class Cutout:
    """Batch form of :func:`cutout` (image batches ``(batch, height, width, channels)``)."""

    size: int = 4

    def __post_init__(self) -> None:
        check_int_range("Cutout", "size", self.size, 1)

    def __call__(self, batch: Batches, key: Array) -> Batches:
        _check_batch("Cutout", batch, key)
        return _map_inputs(batch, key, lambda x, k: cutout(x, k, self.size))


@dataclasses.dataclass(frozen=True)
class RandomShift:
    """Batch form of :func:`random_shift` (image batches)."""

    max_shift: int = 2

    def __post_init__(self) -> None:
        check_int_range("RandomShift", "max_shift", self.max_shift, 0)

    def __call__(self, batch: Batches, key: Array) -> Batches:
        _check_batch("RandomShift", batch, key)
        return _map_inputs(batch, key, lambda x, k: random_shift(x, k, self.max_shift))


@dataclasses.dataclass(frozen=True)
class RandomFlipLeftRight:
    """Batch form of :func:`random_flip_left_right` (image batches)."""

    probability: float = 0.5

    def __post_init__(self) -> None:
        fn = "RandomFlipLeftRight"
        check_real(fn, "probability", self.probability)
        check_in_range(fn, "probability", self.probability, 0.0, 1.0, high_closed=True)

    def __call__(self, batch: Batches, key: Array) -> Batches:
        _check_batch("RandomFlipLeftRight", batch, key)
        return _map_inputs(batch, key, lambda x, k: random_flip_left_right(x, k, self.probability))


@dataclasses.dataclass(frozen=True)
class _Composed:
    augmentations: tuple[Callable[[Batches, Array], Batches], ...]

    def __call__(self, batch: Batches, key: Array) -> Batches:
        _check_batch("compose", batch, key)
        if not self.augmentations:
            return batch
        keys = jax.random.split(key, len(self.augmentations))
        for i, augment in enumerate(self.augmentations):
            batch = augment(batch, keys[i])
            if not isinstance(batch, Batches):
                raise TypeError(
                    f"compose: augmentation {i} ({augment!r}) returned "
                    f"{describe_value(batch)}, not a Batches(x, y, mask)"
                )
        return batch

    def __repr__(self) -> str:
        return f"compose({', '.join(repr(a) for a in self.augmentations)})"


def compose(*augmentations: Callable[[Batches, Array], Batches]) -> Callable[..., Batches]:
    """Chains batch augmentations into one ``augment(batch, key) -> batch``.

    The ``k``-th augmentation gets ``jax.random.split(key, len(augmentations))[k]``; they run
    in the order given. ``compose()`` is the identity. Any pure ``fn(batch, key) -> batch``
    may take part, not only optlab's. The result is hashable (equal configurations compare
    equal), so a compiled epoch is reused.

    Examples:
      >>> import jax, jax.numpy as jnp, optlab
      >>> augment = optlab.data.compose(optlab.data.RandomShift(1), optlab.data.GaussianNoise(0.0))
      >>> print(augment)
      compose(RandomShift(max_shift=1), GaussianNoise(stddev=0.0))
      >>> batch = optlab.data.Batches(jnp.ones((2, 3, 3, 1)), jnp.array([0, 1]), jnp.ones(2))
      >>> print(jax.jit(augment)(batch, jax.random.key(0)).x.shape)
      (2, 3, 3, 1)
    """
    for i, augment in enumerate(augmentations):
        if not callable(augment):
            raise TypeError(
                f"compose: augmentation {i} must be a function (batch, key) -> batch, got "
                f"{describe_value(augment)}"
            )
    return _Composed(tuple(augmentations))
