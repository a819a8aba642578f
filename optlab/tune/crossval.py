r"""k-fold cross-validation with the k folds trained as one vmapped program.

The rows are split by :func:`optlab.data.kfold_indices` (stratified for class labels); fold
:math:`f` trains on every row outside its validation part :math:`V_f` and is scored on
:math:`V_f`. The cross-validated score is the mean over folds of the final epoch's metric,

.. math::

    \bar s = \frac{1}{k} \sum_{f=1}^{k} s_f, \qquad
    \sigma = \sqrt{\frac{1}{k} \sum_{f=1}^{k} (s_f - \bar s)^2}

(Imperial College's notes, "Tuning Hyperparameters": split the data into K folds, train K
times leaving a different fold out, average the K scores). The k runs are members of one
:class:`~optlab.tune.population.Population` with their own data, so fold :math:`f` trains
exactly as ``optlab.fit(model, tx, train_f, validation_data=V_f, seed=seed)`` would. When
:math:`n` is not a multiple of :math:`k` the training parts differ by a row; the larger ones
drop their last row(s) so the folds share one shape (every validation row still counts once).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from optlab.core.validation import check_bool, check_int_range, check_str
from optlab.data.batching import Batches
from optlab.data.splits import kfold_indices
from optlab.train.evaluation import as_arrays, default_metrics, eval_batches, resolve_batch_size
from optlab.train.history import History
from optlab.train.step import check_loss
from optlab.tune.lr_find import base_state
from optlab.tune.population import Population, engine_steps, replicate
from optlab.tune.sweep import check_finite_rows


@dataclasses.dataclass
class CrossValidation:
    """The folds of :func:`cross_validate`.

    Attributes:
      folds: ``(train_rows, validation_rows)`` per fold (the training rows as trained).
      histories: each fold's :class:`~optlab.train.history.History`.
      metric: the metric scored.
      scores: each fold's final value of the metric.
    """

    folds: list[tuple[np.ndarray, np.ndarray]]
    histories: list[History]
    metric: str
    scores: list[float]

    @property
    def mean(self) -> float:
        """The mean score over the folds."""
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        """The standard deviation of the fold scores."""
        return float(np.std(self.scores))

    def __repr__(self) -> str:
        return (
            f"CrossValidation(k={len(self.folds)}, {self.metric}={self.mean:.4g} "
            f"+/- {self.std:.2g})"
        )


def _stack_eval(parts: list[Batches]) -> Batches:
    """Evaluation batches of several folds stacked: shorter batches padded with masked rows,
    fewer batches with empty ones (mask 0)."""
    count = max(int(p.mask.shape[0]) for p in parts)
    rows = max(int(p.mask.shape[1]) for p in parts)

    def pad_rows(a: jax.Array) -> jax.Array:
        widths = [(0, 0)] * a.ndim
        widths[1] = (0, rows - int(a.shape[1]))
        return jnp.pad(a, widths)

    def pad(p: Batches) -> Batches:
        p = jax.tree.map(pad_rows, p)  # zero rows with mask 0
        extra = count - int(p.mask.shape[0])
        if not extra:
            return p
        filler = jax.tree.map(lambda a: jnp.repeat(a[:1], extra, axis=0), p)
        filler = filler._replace(mask=jnp.zeros_like(filler.mask))
        return jax.tree.map(lambda a, b: jnp.concatenate([a, b]), p, filler)

    return jax.tree.map(lambda *a: jnp.stack(a), *[pad(p) for p in parts])


def cross_validate(
    model: nnx.Module,
    tx: Any,
    data: Any,
    *,
    loss: Callable[[jax.Array, jax.Array], jax.Array],
    k: int = 5,
    epochs: int = 1,
    batch_size: int = 32,
    seed: int = 0,
    metric: str = "val_loss",
    metrics: Sequence[Any] | str | None = "auto",
    stratify: bool = True,
    drop_remainder: bool = True,
    eval_batch_size: int | None = None,
) -> CrossValidation:
    """Trains ``model`` with ``tx`` on k folds at once and scores each on its held-out part.

    Args:
      model: an nnx model (not modified): every fold starts from its weights.
      tx: the gradient transformation.
      data: ``(x, y)`` or a dataset (its training split).
      loss: per-example loss, as for :func:`optlab.fit`.
      k: the number of folds (2 <= k <= n).
      epochs: epochs per fold.
      batch_size: rows per step.
      seed: the folds' split, the data order and dropout (the same for every fold).
      metric: the validation value scored (``"val_loss"``, ``"val_accuracy"``...).
      metrics: as :func:`optlab.fit`.
      stratify: stratify the folds by class (integer labels only).
      drop_remainder, eval_batch_size: as :func:`optlab.fit`.

    Returns:
      A :class:`CrossValidation` (``scores``, ``mean``, ``std``, ``histories``).

    Examples:
      >>> ds = ol.data.load("digits")
      >>> cv = ol.tune.cross_validate(ol.nn.MLP(64, (32,), 10, rngs=0), ol.adam(3e-3), ds,
      ...                             loss=ol.nn.softmax_cross_entropy_with_integer_labels,
      ...                             k=3, epochs=2, metric="val_accuracy")
      >>> print(len(cv.scores), cv.mean > 0.8)
      3 True
    """
    fn = "cross_validate"
    if not isinstance(model, nnx.Module):
        raise TypeError(f"{fn}: model must be a flax.nnx.Module, got {type(model).__name__}")
    if not (hasattr(tx, "init") and hasattr(tx, "update")):
        raise TypeError(f"{fn}: tx must be a gradient transformation, got {type(tx).__name__}")
    check_loss(fn, loss)
    check_int_range(fn, "epochs", epochs, 1)
    check_int_range(fn, "batch_size", batch_size, 1)
    check_int_range(fn, "seed", seed, 0)
    check_str(fn, "metric", metric)
    if not metric.startswith("val_"):
        raise ValueError(
            f"{fn}: metric must be a validation value such as 'val_loss', got metric={metric!r}"
        )
    check_bool(fn, "stratify", stratify)
    check_bool(fn, "drop_remainder", drop_remainder)
    x, y = as_arrays(fn, data, "data")
    check_finite_rows(fn, (x, y))
    labels = np.asarray(y)
    classes = labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer)
    check_int_range(fn, "k", k, 2, len(labels))
    folds = kfold_indices(labels, k, seed=seed, stratify=bool(stratify and classes))
    m = min(len(tr) for tr, _ in folds)
    folds = [(tr[:m], va) for tr, va in folds]
    if isinstance(metrics, str) and metrics == "auto":
        metrics = default_metrics(y)
    step_fn, eval_fn = engine_steps(loss, metrics or ())
    size = resolve_batch_size(fn, "eval_batch_size", eval_batch_size, max(len(v) for _, v in folds))
    val = _stack_eval([eval_batches(x[va], y[va], size) for _, va in folds])
    train_rows = jnp.asarray(np.stack([tr for tr, _ in folds]))
    population = Population(
        replicate(base_state(model, tx, seed), k),
        replicate(jax.random.key(seed), k),
        step_fn=step_fn,
        eval_fn=eval_fn,
        x=jax.tree.map(lambda a: a[train_rows], x),
        y=y[train_rows],
        val=val,
        batch_size=min(batch_size, m),
        drop_remainder=drop_remainder,
        member_data=True,
    )
    population.run(epochs)
    histories = [population.histories[f] for f in range(k)]
    if metric not in histories[0]:
        raise ValueError(f"{fn}: metric={metric!r} is not one of {', '.join(histories[0].keys())}")
    scores = [h[metric][-1] for h in histories]
    return CrossValidation(folds, histories, metric, scores)
