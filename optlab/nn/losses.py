r"""Losses (per example, numerically stable) and parameter penalties (the coupled regularizers).

Every loss returns one value per example (reduce with ``jnp.mean``); names, arguments and
defaults follow ``optax.losses`` where optax has the same loss, so ``optax.losses.X`` and
``optlab.nn.X`` are interchangeable. Log-probabilities are computed with the log-sum-exp trick
(:math:`\log\sum_j e^{z_j} = m + \log\sum_j e^{z_j - m}`, :math:`m = \max_j z_j`), so large logits
neither overflow nor lose the loss to rounding.

Penalties :math:`R(W)` are added to the data loss, :math:`L = \frac1N \sum_i L_i + \lambda R(W)`
(seed 001's regularized loss), over all parameters or a subset chosen by a mask (a pytree of
booleans, a function of the parameters, or glob patterns on parameter paths such as
``"*kernel"`` to leave biases and norm parameters out).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from optlab.core.paths import leaf_paths, resolve_mask
from optlab.core.validation import (
    check_array,
    check_in_range,
    check_integer,
    check_nonnegative,
    check_number,
)

Array = jax.Array


def _check_fraction(fn: str, name: str, value: Any) -> None:
    check_number(fn, name, value, allow_array=True)
    check_in_range(fn, name, value, 0.0, 1.0, high_closed=True)


def _arrays(fn: str, **arrays: Any) -> list[Array]:
    """Each named argument as a jax array; a ``TypeError`` naming the argument for a string,
    ``None``, an object or a ragged list (jax would say only "not a valid JAX array type")."""
    return [
        jnp.asarray(
            check_array(fn, name, value, kinds="biuf" if name in ("labels", "where") else "iuf")
        )
        for name, value in arrays.items()
    ]


def _broadcastable(fn: str, **arrays: Array) -> None:
    """A ``ValueError`` naming the arguments whose shapes do not broadcast together."""
    shapes = {name: jnp.shape(value) for name, value in arrays.items()}
    try:
        jnp.broadcast_shapes(*shapes.values())
    except ValueError:
        shown = ", ".join(f"{name}.shape={shape}" for name, shape in shapes.items())
        raise ValueError(f"{fn}: the shapes do not broadcast together: {shown}") from None


def _check_axis(fn: str, axis: Any, ndim: int, name: str = "logits") -> None:
    check_integer(fn, "axis", axis)
    if ndim == 0:
        raise ValueError(f"{fn}: axis={axis} needs {name} with an axis, got a scalar {name}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{fn}: axis must be in [-{ndim}, {ndim}), got axis={axis}")


def _check_labels_shape(
    fn: str, labels: Array, logits: Array, axis: int, scores: str = "scores"
) -> None:
    expected = logits.shape[:axis] + logits.shape[axis + 1 :]
    if labels.shape != expected:
        raise ValueError(
            f"{fn}: labels must have the shape of the {scores} without the class axis, "
            f"{expected}, got labels.shape={labels.shape} for {scores}.shape={logits.shape}"
        )


def smooth_labels(labels: Array, alpha: float) -> Array:
    r"""Label smoothing: :math:`(1 - \alpha)\, y + \alpha / K` for ``K`` classes.

    Args:
      labels: one-hot labels (or class probabilities), classes on the last axis.
      alpha: the smoothing factor in ``[0, 1]``.

    Returns:
      The smoothed labels.

    Examples:
      >>> import optlab
      >>> print(optlab.nn.smooth_labels(jnp.array([0.0, 1.0]), 0.2))
      [0.1 0.9]

    References:
      Müller, Kornblith and Hinton, When Does Label Smoothing Help?, 2019.
      https://arxiv.org/abs/1906.02629
    """
    _check_fraction("smooth_labels", "alpha", alpha)
    (labels,) = _arrays("smooth_labels", labels=labels)
    if labels.ndim == 0:
        raise ValueError("smooth_labels: labels must have a class axis, got a scalar")
    num_classes = labels.shape[-1]
    return (1.0 - alpha) * labels + alpha / num_classes


def softmax_cross_entropy(
    logits: Array,
    labels: Array,
    axis: int = -1,
    where: Array | None = None,
    *,
    label_smoothing: float = 0.0,
) -> Array:
    r"""Cross-entropy between ``softmax(logits)`` and one-hot labels (or class probabilities).

    Integer class labels (``logits.shape`` without ``axis``) are one-hot encoded first, so one
    loss serves a model trained on mixed targets (:class:`optlab.data.Mixup`) and validated on
    the original integer labels. optax's function accepts only the one-hot form.

    .. math::

       L_i = -\sum_j y_{ij} \log \frac{e^{z_{ij}}}{\sum_k e^{z_{ik}}}

    Args:
      logits: unnormalized log-probabilities ``(..., num_classes)``.
      labels: one-hot labels or target distributions, shaped like ``logits``, or integer class
        labels in ``[0, num_classes)`` shaped like ``logits`` without ``axis``.
      axis: the class axis.
      where: elements of ``logits`` to include (as in ``optax``), or ``None`` for all.
      label_smoothing: if positive, the labels are first smoothed (:func:`smooth_labels`).

    Returns:
      The loss of each example, ``logits.shape`` without ``axis``.

    Examples:
      >>> import numpy as np, optlab
      >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
      >>> labels = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
      >>> print(np.round(np.asarray(optlab.nn.softmax_cross_entropy(logits, labels)), 4))
      [0.2761 2.9518]
    """
    fn = "softmax_cross_entropy"
    logits, labels = _arrays(fn, logits=logits, labels=labels)
    _check_axis(fn, axis, logits.ndim)
    if jnp.issubdtype(labels.dtype, jnp.integer) and labels.ndim == logits.ndim - 1:
        axis = axis % logits.ndim
        _check_labels_shape(fn, labels, logits, axis, "logits")
        labels = jax.nn.one_hot(labels, logits.shape[axis], axis=axis)
    labels = labels.astype(logits.dtype)
    _broadcastable(fn, logits=logits, labels=labels)
    if where is not None:
        (where,) = _arrays(fn, where=where)
        _broadcastable(fn, logits=logits, where=where)
    _check_fraction(fn, "label_smoothing", label_smoothing)
    if label_smoothing:
        labels = jnp.moveaxis(
            smooth_labels(jnp.moveaxis(labels, axis, -1), label_smoothing), -1, axis
        )
    log_probs = jax.nn.log_softmax(logits, axis=axis, where=where)
    terms = jnp.where(labels == 0, 0.0, labels * log_probs)
    return -jnp.sum(terms, axis=axis, where=where)


def softmax_cross_entropy_with_integer_labels(
    logits: Array,
    labels: Array,
    axis: int = -1,
    where: Array | None = None,
    *,
    label_smoothing: float = 0.0,
) -> Array:
    r"""Softmax cross-entropy with integer class labels.

    .. math::

       L_i = \log\sum_k e^{z_{ik}} - z_{i y_i}, \quad\text{and with smoothing } \alpha:\quad
       L_i = \log\sum_k e^{z_{ik}} - (1 - \alpha) z_{i y_i} - \frac{\alpha}{K}\sum_k z_{ik}.

    Args:
      logits: unnormalized log-probabilities ``(..., num_classes)``.
      labels: integer labels in ``[0, num_classes)``, ``logits.shape`` without ``axis``.
      axis: the class axis.
      where: elements of ``logits`` to include, or ``None`` for all (no smoothing then).
      label_smoothing: the smoothing factor :math:`\alpha` in ``[0, 1]``.

    Returns:
      The loss of each example.

    Examples:
      >>> import numpy as np, optlab
      >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
      >>> labels = jnp.array([0, 1])
      >>> loss = optlab.nn.softmax_cross_entropy_with_integer_labels(logits, labels)
      >>> print(np.round(np.asarray(loss), 4))
      [0.2761 2.9518]
    """
    fn = "softmax_cross_entropy_with_integer_labels"
    logits, labels = _arrays(fn, logits=logits, labels=labels)
    _check_axis(fn, axis, logits.ndim)
    if where is not None:
        (where,) = _arrays(fn, where=where)
        _broadcastable(fn, logits=logits, where=where)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(
            f"softmax_cross_entropy_with_integer_labels: labels must be integers, got dtype "
            f"{labels.dtype}; for one-hot labels use softmax_cross_entropy"
        )
    _check_fraction("softmax_cross_entropy_with_integer_labels", "label_smoothing", label_smoothing)
    axis = axis % logits.ndim
    _check_labels_shape(fn, labels, logits, axis, "logits")
    label_logits = jnp.take_along_axis(logits, jnp.expand_dims(labels, axis), axis=axis)
    label_logits = jnp.squeeze(label_logits, axis)
    log_normalizers = jax.nn.logsumexp(logits, axis=axis, where=where)
    if not label_smoothing:
        return log_normalizers - label_logits
    if where is not None:
        raise ValueError(
            "softmax_cross_entropy_with_integer_labels: label_smoothing with where is not "
            "supported; smooth one-hot labels and use softmax_cross_entropy"
        )
    mean_logit = jnp.mean(logits, axis=axis)
    return log_normalizers - (1.0 - label_smoothing) * label_logits - label_smoothing * mean_logit


def sigmoid_binary_cross_entropy(logits: Array, labels: Array) -> Array:
    r"""Element-wise binary cross-entropy of independent sigmoids (multi-label outputs).

    .. math::

       L = -y \log\sigma(z) - (1 - y)\log(1 - \sigma(z)), \quad
       \log(1 - \sigma(z)) = \log\sigma(-z).

    Args:
      logits: one logit per label.
      labels: targets in ``[0, 1]``, shaped like ``logits``.

    Returns:
      The loss of every element (sum or average over the labels of an example as needed).

    Examples:
      >>> import optlab
      >>> print(optlab.nn.sigmoid_binary_cross_entropy(jnp.array([0.0, 100.0]),
      ...                                              jnp.array([1.0, 0.0])))
      [  0.6931 100.    ]
    """
    logits, labels = _arrays("sigmoid_binary_cross_entropy", logits=logits, labels=labels)
    _broadcastable("sigmoid_binary_cross_entropy", logits=logits, labels=labels)
    labels = labels.astype(logits.dtype)
    return -labels * jax.nn.log_sigmoid(logits) - (1.0 - labels) * jax.nn.log_sigmoid(-logits)


def squared_error(predictions: Array, targets: Array | None = None) -> Array:
    r"""Element-wise squared error :math:`(\hat y - y)^2` (``targets=None`` means zeros).

    Examples:
      >>> import optlab
      >>> print(optlab.nn.squared_error(jnp.array([1.0, 3.0]), jnp.array([0.0, 1.0])))
      [1. 4.]
    """
    (predictions,) = _arrays("squared_error", predictions=predictions)
    if targets is not None:
        (targets,) = _arrays("squared_error", targets=targets)
        if targets.shape != predictions.shape:  # as optax: no silent (n, 1) - (n,) broadcasting
            raise ValueError(
                f"squared_error: predictions and targets must have one shape, got "
                f"{predictions.shape} and {targets.shape}"
            )
    errors = predictions - targets if targets is not None else predictions
    return errors**2


def mean_squared_error(predictions: Array, targets: Array, axis: int = -1) -> Array:
    r"""Mean squared error of each example, :math:`\frac1d \sum_j (\hat y_{ij} - y_{ij})^2`.

    Averaged over ``axis`` (the output axis, as Keras's ``mean_squared_error``).

    Examples:
      >>> import optlab
      >>> print(optlab.nn.mean_squared_error(jnp.array([[1.0, 3.0]]), jnp.array([[0.0, 1.0]])))
      [2.5]
    """
    predictions, targets = _arrays("mean_squared_error", predictions=predictions, targets=targets)
    _check_axis("mean_squared_error", axis, predictions.ndim, "predictions")
    return jnp.mean(squared_error(predictions, targets), axis=axis)


def _check_integer_labels(fn: str, labels: Array, scores: Array) -> None:
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"{fn}: labels must be integer class indices, got dtype {labels.dtype}")
    if scores.ndim == 0:
        raise ValueError(f"{fn}: scores must have a class axis, got a scalar")
    _check_labels_shape(fn, labels, scores, scores.ndim - 1)


def multiclass_svm_loss(scores: Array, labels: Array, margin: float = 1.0) -> Array:
    r"""The multiclass SVM (hinge) loss of seed 001 (Weston and Watkins).

    .. math::

       L_i = \sum_{j \ne y_i} \max(0,\ s_j - s_{y_i} + \Delta)

    Note ``optax.losses.multiclass_hinge_loss`` (also here, :func:`multiclass_hinge_loss`) is a
    different loss: the maximum over classes (Crammer and Singer), not the sum.

    Args:
      scores: class scores ``(..., num_classes)``.
      labels: integer labels.
      margin: the margin :math:`\Delta \ge 0`.

    Returns:
      The loss of each example.

    Examples:
      >>> import optlab
      >>> scores = jnp.array([[3.2, 5.1, -1.7]])
      >>> print(optlab.nn.multiclass_svm_loss(scores, jnp.array([0])))
      [2.9]
    """
    check_number("multiclass_svm_loss", "margin", margin, allow_array=True)
    check_nonnegative("multiclass_svm_loss", "margin", margin)
    scores, labels = _arrays("multiclass_svm_loss", scores=scores, labels=labels)
    _check_integer_labels("multiclass_svm_loss", labels, scores)
    true = jnp.take_along_axis(scores, labels[..., None], axis=-1)
    hinge = jnp.maximum(0.0, scores - true + margin)
    not_true = jax.nn.one_hot(labels, scores.shape[-1], dtype=bool) == 0
    return jnp.sum(jnp.where(not_true, hinge, 0.0), axis=-1)


def multiclass_hinge_loss(scores: Array, labels: Array) -> Array:
    r"""optax's multiclass hinge loss (Crammer and Singer):
    :math:`\max_j (s_j + 1 - [j = y]) - s_y`.

    Examples:
      >>> import optlab
      >>> print(optlab.nn.multiclass_hinge_loss(jnp.array([[3.2, 5.1, -1.7]]), jnp.array([0])))
      [2.9]
    """
    scores, labels = _arrays("multiclass_hinge_loss", scores=scores, labels=labels)
    _check_integer_labels("multiclass_hinge_loss", labels, scores)
    one_hot = jax.nn.one_hot(labels, scores.shape[-1], dtype=scores.dtype)
    return jnp.max(scores + 1.0 - one_hot, axis=-1) - jnp.sum(scores * one_hot, axis=-1)


# ---------------------------------------------------------------------------------------------
# Penalties


def _masked_leaves(fn: str, params: Any, mask: Any) -> list[Array]:
    leaves = jax.tree.leaves(params)
    for path, x in zip(leaf_paths(params), leaves, strict=True):
        if not hasattr(x, "dtype") or not jnp.issubdtype(x.dtype, jnp.inexact):
            raise TypeError(
                f"{fn}: params must be a pytree of floating arrays, got the leaf "
                f"{path or '<root>'}={x!r} ({type(x).__name__})"
            )
    if mask is None:
        return leaves
    # resolve_mask refuses a glob that matches no parameter (listing the paths that exist).
    flags = jax.tree.leaves(resolve_mask(fn, mask, params))
    return [x for x, m in zip(leaves, flags, strict=True) if m]


def l1_penalty(params: Any, mask: Any = None) -> Array:
    r""":math:`R(W) = \sum_k |w_k|` over the parameters selected by ``mask``.

    Args:
      params: a pytree of parameters (e.g. the ``params`` of :func:`optlab.nn.functional`).
      mask: ``None`` (all), a pytree of booleans, a function of ``params``, or glob patterns
        on parameter paths (``"*kernel"``).

    Returns:
      A scalar.

    Examples:
      >>> import optlab
      >>> params = {"kernel": jnp.array([1.0, -2.0]), "bias": jnp.array([5.0])}
      >>> print(optlab.nn.l1_penalty(params, mask="*kernel"))
      3.0
    """
    leaves = _masked_leaves("l1_penalty", params, mask)
    return sum((jnp.sum(jnp.abs(x)) for x in leaves), jnp.zeros([], jnp.float32))


def l2_penalty(params: Any, mask: Any = None) -> Array:
    r""":math:`R(W) = \tfrac12 \sum_k w_k^2` over the parameters selected by ``mask``.

    The factor :math:`\tfrac12` makes :math:`\nabla (\lambda R) = \lambda w`, the coupled weight
    decay of ``add_decayed_weights(λ)``.

    Examples:
      >>> import optlab
      >>> params = {"kernel": jnp.array([1.0, -2.0]), "bias": jnp.array([5.0])}
      >>> print(optlab.nn.l2_penalty(params, mask="*kernel"))
      2.5
    """
    leaves = _masked_leaves("l2_penalty", params, mask)
    return 0.5 * sum((jnp.sum(jnp.square(x)) for x in leaves), jnp.zeros([], jnp.float32))


def elastic_net_penalty(params: Any, l1_ratio: float = 0.5, mask: Any = None) -> Array:
    r"""Elastic net :math:`R(W) = \rho \sum_k |w_k| + (1 - \rho)\,\tfrac12 \sum_k w_k^2`.

    Args:
      params: a pytree of parameters.
      l1_ratio: :math:`\rho \in [0, 1]`; 1 is the L1 penalty, 0 the L2 penalty.
      mask: which parameters (see :func:`l1_penalty`).

    Examples:
      >>> import optlab
      >>> params = {"kernel": jnp.array([1.0, -2.0])}
      >>> print(optlab.nn.elastic_net_penalty(params, l1_ratio=0.5))
      2.75
    """
    _check_fraction("elastic_net_penalty", "l1_ratio", l1_ratio)
    return l1_ratio * l1_penalty(params, mask) + (1.0 - l1_ratio) * l2_penalty(params, mask)
