"""Shuffled mini-batches of one epoch as stacked arrays, ready for ``jax.lax.scan``.

``batches(x, y, batch_size, key)`` permutes the rows with ``key`` and returns
``Batches(x, y, mask)`` with leading axes ``(num_batches, batch_size)``; an epoch is then one
``lax.scan`` over the first axis. Pass a different key each epoch (e.g.
``jax.random.fold_in(key, epoch)``) for a new order.

Remainder policy (``n`` rows, batch size ``b``):

* ``drop_remainder=True`` (default): ``n // b`` full batches; the ``n % b`` rows left over are
  not used this epoch. Since the order is reshuffled every epoch, a different random subset is
  left out each time, every row is used equally often in expectation, and every step averages
  exactly ``b`` gradients. ``mask`` is all ones.
* ``drop_remainder=False``: ``ceil(n / b)`` batches; the last one is padded with copies of
  earlier rows whose ``mask`` is 0. Weight per-example losses with the mask,
  ``sum(loss * mask) / sum(mask)``, so padded rows contribute nothing.

Special cases: ``batch_size=None`` (or ``>= n``) is full-batch gradient descent: one batch of
all ``n`` rows; ``batch_size=1`` is stochastic gradient descent: ``n`` batches of one row.

``x`` and ``y`` may be pytrees of arrays (e.g. a tuple of inputs for a multi-input model)
sharing the leading axis. The function is written in ``jax.numpy`` and can be jitted with
``batch_size``, ``drop_remainder`` and ``shuffle`` static.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optlab.core.validation import (
    check_array,
    check_bool,
    check_int_range,
    check_key,
    check_seed,
    describe_value,
)


class Batches(NamedTuple):
    """One epoch of mini-batches: leading axes ``(num_batches, batch_size)`` on every leaf.

    Sliced along the first axis (as ``lax.scan`` does), it is one step's batch, the input of
    an augmentation ``augment(batch, key) -> batch``.

    Attributes:
      x: the inputs (an array or a pytree of arrays).
      y: the targets, or ``None``.
      mask: float32 ``(num_batches, batch_size)``: 1 for real rows, 0 for the padding of the
        last batch when ``drop_remainder=False``.
    """

    x: Any
    y: Any
    mask: jax.Array


def _as_key(fn: str, key: Any) -> jax.Array:
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        check_seed(fn, "key", key)
        return jax.random.key(int(key))
    if not isinstance(key, jax.Array):
        raise TypeError(
            f"{fn}: key must be a jax.random key or an integer seed, got key={describe_value(key)}"
        )
    check_key(fn, "key", key)
    return key


def num_batches(num_examples: int, batch_size: int | None, drop_remainder: bool = True) -> int:
    """The number of batches :func:`batches` makes (see the remainder policy above).

    Examples:
      >>> import optlab
      >>> print(optlab.data.num_batches(10, 4), optlab.data.num_batches(10, 4, False))
      2 3
    """
    check_int_range("num_batches", "num_examples", num_examples, 1)
    if batch_size is not None:
        check_int_range("num_batches", "batch_size", batch_size, 1)
    check_bool("num_batches", "drop_remainder", drop_remainder)
    if batch_size is None or batch_size >= num_examples:
        return 1
    if drop_remainder:
        return num_examples // batch_size
    return -(-num_examples // batch_size)


def _rows(fn: str, x: Any, y: Any) -> int:
    """The common number of rows of every leaf of ``x`` and ``y``."""
    paths = jax.tree_util.tree_flatten_with_path({"x": x, "y": y})[0]
    if not paths or not jax.tree.leaves(x):
        raise ValueError(f"{fn}: x holds no arrays")
    n = first = None
    for path, leaf in paths:
        where = jax.tree_util.keystr(path).replace("['x']", "x", 1).replace("['y']", "y", 1)
        if isinstance(leaf, str | bytes) or np.ndim(leaf) == 0:
            raise ValueError(
                f"{fn}: every leaf of x and y must be an array with a leading row axis, got "
                f"{where}={describe_value(leaf)} (pass arrays, not lists of numbers)"
            )
        check_array(fn, where, leaf, kinds="biuf")
        rows = int(np.shape(leaf)[0])
        if n is None:
            n, first = rows, where
        elif rows != n:
            raise ValueError(
                f"{fn}: every array needs the same number of rows, got {n} ({first}) and "
                f"{rows} ({where})"
            )
    if n == 0:
        raise ValueError(f"{fn}: no rows to batch")
    return n


def batches(
    x: Any,
    y: Any,
    batch_size: int | None,
    key: Any = 0,
    *,
    drop_remainder: bool = True,
    shuffle: bool = True,
) -> Batches:
    """One epoch of shuffled mini-batches stacked as ``(num_batches, batch_size, ...)``.

    Jittable with ``batch_size``, ``drop_remainder`` and ``shuffle`` static and ``key`` traced
    (the training engine calls it inside its compiled epoch with a key folded from the seed and
    the epoch); the result is the same as eager.

    Args:
      x: inputs (an array or a pytree of arrays with a common leading axis).
      y: targets (same leading axis), or ``None``.
      batch_size: rows per batch; ``None`` for the full batch.
      key: a ``jax.random`` key (typed, or a raw ``PRNGKey``) or an int seed for the
        permutation.
      drop_remainder: drop the last incomplete batch (default) or pad it and mask it.
      shuffle: permute the rows first (``False`` keeps their order).

    Returns:
      :class:`Batches` ``(x, y, mask)``; ``mask`` is float32, 1 for real rows and 0 for
      padding.

    Examples:
      >>> import optlab
      >>> b = optlab.data.batches(np.arange(10.0), np.arange(10), 4, 0, shuffle=False)
      >>> print(b.x.shape, b.mask.shape)
      (2, 4) (2, 4)
      >>> b = optlab.data.batches(np.arange(10.0), np.arange(10), 4, drop_remainder=False,
      ...                         shuffle=False)
      >>> print(b.y[-1], b.mask[-1])
      [8 9 0 1] [1. 1. 0. 0.]
    """
    fn = "batches"
    check_bool(fn, "drop_remainder", drop_remainder)
    check_bool(fn, "shuffle", shuffle)
    if batch_size is not None:
        check_int_range(fn, "batch_size", batch_size, 1)
    n = _rows(fn, x, y)
    size = n if batch_size is None or batch_size >= n else batch_size
    count = num_batches(n, batch_size, drop_remainder)
    if shuffle:
        order = jax.random.permutation(_as_key(fn, key), n)
    else:
        _as_key(fn, key)  # still checked, so a wrong key fails the same way with shuffle=False
        order = jnp.arange(n)
    total = count * size
    if total <= n:
        index = order[:total]
        mask = jnp.ones((total,), jnp.float32)
    else:  # pad with rows from the start of the permutation, masked out
        index = jnp.concatenate([order, order[: total - n]])
        mask = (jnp.arange(total) < n).astype(jnp.float32)

    def take(a):
        a = jnp.asarray(a)
        return jnp.take(a, index, axis=0).reshape(count, size, *a.shape[1:])

    return Batches(jax.tree.map(take, x), jax.tree.map(take, y), mask.reshape(count, size))
