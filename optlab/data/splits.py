"""Validation splits and k-fold indices taken from the training data, reproducible with a seed.

Keras's ``fit(validation_split=f)`` takes the *last* fraction ``f`` of the rows, before any
shuffling, so a dataset sorted by class gets a validation set of one class. Here the default
is a **stratified, seeded** split instead: every class keeps its proportion in both parts
(``sklearn.model_selection.train_test_split(stratify=y, random_state=seed)``).
``stratify=False, shuffle=False`` reproduces Keras's choice of rows exactly: validation is
rows ``[int(n * (1 - f)), n)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from optlab.core.validation import check_in_range, check_int_at_least


def validation_indices(
    y: np.ndarray,
    validation_split: float = 0.2,
    *,
    seed: int = 0,
    stratify: bool = True,
    shuffle: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, validation)`` of a validation split of the training data.

    Args:
      y: training labels (class labels when ``stratify``).
      validation_split: the fraction of rows held out, in ``(0, 1)``.
      seed: the seed of the permutation.
      stratify: keep every class's proportion in both parts (default).
      shuffle: ``False`` (only with ``stratify=False``) holds out the last rows, as Keras
        does: validation rows ``[int(n * (1 - validation_split)), n)``.

    Returns:
      Two sorted integer arrays that partition ``range(len(y))``.

    Examples:
      >>> import numpy as np, optlab
      >>> train, val = optlab.data.validation_indices(np.array([0, 0, 0, 0, 1, 1, 1, 1]), 0.5)
      >>> print(len(train), len(val), np.bincount(np.array([0, 0, 0, 0, 1, 1, 1, 1])[val]))
      4 4 [2 2]
    """
    check_in_range(
        "validation_indices", "validation_split", validation_split, 0.0, 1.0, low_closed=False
    )
    y = np.asarray(y)
    n = len(y)
    if not shuffle:
        if stratify:
            raise ValueError(
                "validation_indices: shuffle=False (Keras's last rows) needs stratify=False"
            )
        split_at = int(n * (1.0 - validation_split))
        return np.arange(split_at), np.arange(split_at, n)
    from sklearn.model_selection import train_test_split

    train, val = train_test_split(
        np.arange(n),
        test_size=validation_split,
        random_state=seed,
        stratify=y if stratify else None,
    )
    return np.sort(train), np.sort(val)


def train_val_split(
    x: Any,
    y: np.ndarray,
    validation_split: float = 0.2,
    *,
    seed: int = 0,
    stratify: bool = True,
    shuffle: bool = True,
) -> tuple[tuple[Any, np.ndarray], tuple[Any, np.ndarray]]:
    """Splits ``(x, y)`` into ``((x_train, y_train), (x_val, y_val))``.

    ``x`` may be an array or a tuple/list of arrays (multi-input models) sharing the first
    axis. The arguments are those of :func:`validation_indices`.

    Examples:
      >>> import optlab
      >>> ds = optlab.data.load("digits")
      >>> (x_tr, y_tr), (x_val, y_val) = optlab.data.train_val_split(ds.x_train, ds.y_train)
      >>> print(x_tr.shape, x_val.shape)
      (1149, 64) (288, 64)
    """
    train, val = validation_indices(
        y, validation_split, seed=seed, stratify=stratify, shuffle=shuffle
    )

    def take(a, idx):
        if isinstance(a, tuple | list):
            return type(a)(np.asarray(v)[idx] for v in a)
        return np.asarray(a)[idx]

    y = np.asarray(y)
    return (take(x, train), y[train]), (take(x, val), y[val])


def kfold_indices(
    y: np.ndarray,
    num_folds: int = 5,
    *,
    seed: int = 0,
    stratify: bool = True,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``num_folds`` pairs ``(train, validation)`` of row indices; each row validates once.

    Uses ``sklearn.model_selection.StratifiedKFold`` (or ``KFold`` when ``stratify=False``)
    with ``shuffle=True, random_state=seed``.

    Examples:
      >>> import numpy as np, optlab
      >>> folds = optlab.data.kfold_indices(np.arange(10) % 2, 5)
      >>> rows = np.concatenate([val for _, val in folds])
      >>> print(len(folds), sorted(rows.tolist()) == list(range(10)))
      5 True
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    check_int_at_least("kfold_indices", "num_folds", num_folds, 2)
    y = np.asarray(y)
    splitter = (StratifiedKFold if stratify else KFold)(
        n_splits=num_folds, shuffle=True, random_state=seed
    )
    return [(np.sort(tr), np.sort(va)) for tr, va in splitter.split(np.zeros(len(y)), y)]
