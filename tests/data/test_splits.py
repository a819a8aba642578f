"""Validation splits and k-fold indices: stratified, seeded, Keras's rows on request."""

import numpy as np
import pytest

import optlab.data as od

Y = np.repeat(np.arange(4), [30, 20, 40, 10])  # sorted by class, unbalanced


def test_stratified_split_keeps_class_proportions_and_partitions():
    train, val = od.validation_indices(Y, 0.2, seed=3)
    assert len(val) == 20 and len(train) == 80
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(100))
    np.testing.assert_array_equal(np.bincount(Y[val]), [6, 4, 8, 2])
    again = od.validation_indices(Y, 0.2, seed=3)
    np.testing.assert_array_equal(val, again[1])
    assert not np.array_equal(val, od.validation_indices(Y, 0.2, seed=4)[1])


def test_keras_semantics_last_rows_before_shuffling():
    _train, val = od.validation_indices(Y, 0.2, stratify=False, shuffle=False)
    # Keras: split_at = int(n * (1 - validation_split)); validation = rows[split_at:]
    np.testing.assert_array_equal(val, np.arange(80, 100))
    assert set(Y[val]) == {2, 3}  # why a stratified split is the default
    with pytest.raises(ValueError, match="needs stratify=False"):
        od.validation_indices(Y, 0.2, shuffle=False)


def test_train_val_split_of_arrays_and_tuples():
    x = np.arange(100.0)[:, None] * np.ones((1, 3))
    (x_tr, _y_tr), (x_val, y_val) = od.train_val_split(x, Y, 0.25, seed=0)
    np.testing.assert_array_equal(Y[x_val[:, 0].astype(int)], y_val)
    assert x_tr.shape == (75, 3) and x_val.shape == (25, 3)
    (xs_tr, _), (xs_val, _) = od.train_val_split((x, x[:, :1]), Y, 0.25, seed=0)
    np.testing.assert_array_equal(xs_val[0], x_val)
    assert isinstance(xs_tr, tuple) and xs_tr[1].shape == (75, 1)
    with pytest.raises(ValueError, match=r"validation_split must be in \(0, 1\)"):
        od.train_val_split(x, Y, 1.0)


@pytest.mark.parametrize("stratify", [True, False], ids=["stratified", "plain"])
def test_kfold_each_row_validates_once(stratify):
    folds = od.kfold_indices(Y, 5, seed=0, stratify=stratify)
    assert len(folds) == 5
    vals = np.concatenate([v for _, v in folds])
    np.testing.assert_array_equal(np.sort(vals), np.arange(100))
    for train, val in folds:
        assert not set(train) & set(val) and len(train) + len(val) == 100
        if stratify:
            np.testing.assert_array_equal(np.bincount(Y[val], minlength=4), [6, 4, 8, 2])
    again = od.kfold_indices(Y, 5, seed=0, stratify=stratify)
    np.testing.assert_array_equal(folds[2][1], again[2][1])
    with pytest.raises(ValueError, match="num_folds must be an integer >= 2"):
        od.kfold_indices(Y, 1)
