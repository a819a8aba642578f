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

from optlab.core.validation import (
    check_array,
    check_bool,
    check_in_range,
    check_int_range,
    check_real,
    check_seed,
)


def _check_labels(fn: str, y: Any) -> np.ndarray:
    y = np.asarray(check_array(fn, "y", y, min_ndim=1))
    if len(y) < 2:
        raise ValueError(f"{fn}: y must have at least 2 rows to split, got shape {y.shape}")
    return y


def _check_options(fn: str, seed: Any, stratify: Any) -> None:
    check_seed(fn, "seed", seed)
    check_bool(fn, "stratify", stratify)


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
    fn = "validation_indices"
    check_real(fn, "validation_split", validation_split)
    check_in_range(fn, "validation_split", validation_split, 0.0, 1.0, low_closed=False)
    _check_options(fn, seed, stratify)
    check_bool(fn, "shuffle", shuffle)
    y = _check_labels(fn, y)
    n = len(y)
    if not shuffle:
        if stratify:
            raise ValueError(f"{fn}: shuffle=False (Keras's last rows) needs stratify=False")
        split_at = int(n * (1.0 - validation_split))
        if not 0 < split_at < n:
            raise ValueError(
                f"{fn}: validation_split={validation_split} of {n} rows leaves an empty "
                f"{'training' if split_at == 0 else 'validation'} part"
            )
        return np.arange(split_at), np.arange(split_at, n)
    from sklearn.model_selection import train_test_split

    try:
        train, val = train_test_split(
            np.arange(n),
            test_size=validation_split,
            random_state=seed,
            stratify=y if stratify else None,
        )
    except ValueError as err:  # too few rows for the fraction, or a class with a single row
        raise ValueError(
            f"{fn}: cannot split {n} rows with validation_split={validation_split}"
            f"{' (stratified)' if stratify else ''}: {' '.join(str(err).split())}"
        ) from None
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
    fn = "train_val_split"
    check_real(fn, "validation_split", validation_split)
    check_in_range(fn, "validation_split", validation_split, 0.0, 1.0, low_closed=False)
    y = _check_labels(fn, y)
    parts = list(x) if isinstance(x, tuple | list) else [x]
    if not parts:
        raise ValueError(f"{fn}: x is an empty {type(x).__name__}; pass an array or arrays")
    for i, part in enumerate(parts):
        name = f"x[{i}]" if isinstance(x, tuple | list) else "x"
        a = check_array(fn, name, part, min_ndim=1)
        if len(a) != len(y):
            raise ValueError(f"{fn}: {name} has {len(a)} rows but y has {len(y)}")
    train, val = validation_indices(
        y, validation_split, seed=seed, stratify=stratify, shuffle=shuffle
    )

    def take(a, idx):
        if isinstance(a, tuple | list):
            return type(a)(np.asarray(v)[idx] for v in a)
        return np.asarray(a)[idx]

    return (take(x, train), y[train]), (take(x, val), y[val])


def kfold_indices(
    y: np.ndarray,
    num_folds: int = 5,
    *,
    seed: int = 0,
    stratify: bool = True,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``num_folds`` pairs ``(train, validation)`` of row indices; each row validates once.

    ``num_folds`` must be in ``[2, len(y)]``.

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

    fn = "kfold_indices"
    y = _check_labels(fn, y)
    check_int_range(fn, "num_folds", num_folds, 2, len(y))
    _check_options(fn, seed, stratify)
    splitter = (StratifiedKFold if stratify else KFold)(
        n_splits=num_folds, shuffle=True, random_state=seed
    )
    try:
        folds = list(splitter.split(np.zeros(len(y)), y))
    except ValueError as err:  # e.g. more folds than the rows of every class
        raise ValueError(
            f"{fn}: cannot make {num_folds} stratified folds of y: {' '.join(str(err).split())}"
        ) from None
    return [(np.sort(tr), np.sort(va)) for tr, va in folds]
