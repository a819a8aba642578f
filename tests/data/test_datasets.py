"""Datasets load offline with the documented splits and metadata."""

import numpy as np
import pytest

import optlab.data as od


def test_digits_split_is_fixed_stratified_and_documented():
    from sklearn.datasets import load_digits

    ds = od.load("digits")
    assert (ds.num_train, ds.num_test, ds.num_classes, ds.input_shape) == (1437, 360, 10, (64,))
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    # Stratified: class proportions in test match the full set to within one example.
    full = np.bincount(load_digits().target, minlength=10) / 1797
    assert np.all(np.abs(np.bincount(ds.y_test, minlength=10) - full * 360) <= 1)
    # Fixed: a second load gives the same split; the rows are a partition of the data.
    again = od.load("digits")
    np.testing.assert_array_equal(ds.x_test, again.x_test)
    rows = {r.tobytes() for r in np.concatenate([ds.x_train, ds.x_test])}
    assert len(np.unique(load_digits().data, axis=0)) == len(rows)


def test_digits_images():
    ds = od.load("digits", flatten=False)
    assert ds.x_train.shape == (1437, 8, 8, 1) and ds.input_shape == (8, 8, 1)


def test_unknown_name_suggests():
    with pytest.raises(ValueError, match="did you mean 'digits'"):
        od.load("digit")
