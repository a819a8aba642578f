"""Preprocessing: formulas against NumPy/scikit-learn; fitting never sees validation rows."""

import numpy as np
import pytest

import optlab.data as od

RNG = np.random.default_rng(0)
X = (RNG.normal(size=(200, 5)) @ RNG.normal(size=(5, 5)) + RNG.normal(size=5) * 3).astype(
    np.float32
)
Y = np.arange(200) % 4


def test_center_and_standardize():
    x = X.astype(np.float64)
    c = od.fit_preprocessor("center", X)
    np.testing.assert_allclose(c(X), x - x.mean(0), rtol=1e-5, atol=1e-5)
    s = od.fit_preprocessor("standardize", X, epsilon=1e-12)
    from sklearn.preprocessing import StandardScaler

    np.testing.assert_allclose(s(X), StandardScaler().fit(x).transform(x), rtol=1e-4, atol=1e-5)
    assert s(X).dtype == np.float32


def test_pca_matches_scikit_learn_up_to_sign():
    from sklearn.decomposition import PCA

    ours = od.fit_preprocessor("pca", X, num_components=3)(X).astype(np.float64)
    ref = PCA(n_components=3).fit_transform(X.astype(np.float64))
    signs = np.sign((ours * ref).sum(0))
    np.testing.assert_allclose(ours * signs, ref, rtol=1e-3, atol=1e-3)


def test_whitening_gives_identity_covariance_on_train():
    prep = od.fit_preprocessor("pca_whiten", X, epsilon=1e-9)
    w = prep(X).astype(np.float64)
    np.testing.assert_allclose(w.T @ w / len(w), np.eye(5), atol=1e-4)  # cov = X^T X / N
    # The seed's recipe written out: cov = X.T X / N; U, S, V = svd(cov); Xrot / sqrt(S + eps).
    xc = X.astype(np.float64) - X.mean(0)
    u, s, _ = np.linalg.svd(xc.T @ xc / len(xc))
    ref = xc @ u / np.sqrt(s + 1e-9)
    signs = np.sign((w * ref).sum(0))
    np.testing.assert_allclose(w * signs, ref, rtol=1e-3, atol=1e-3)


def test_per_channel_mean_on_images():
    images = RNG.uniform(size=(10, 4, 4, 3)).astype(np.float32) + np.array([0.0, 1.0, 2.0])
    prep = od.fit_preprocessor("per_channel_mean", images)
    np.testing.assert_allclose(prep.mean, images.reshape(-1, 3).mean(0), rtol=1e-6)
    np.testing.assert_allclose(prep(images).reshape(-1, 3).mean(0), 0.0, atol=1e-6)
    assert prep(images).shape == images.shape


@pytest.mark.parametrize("method", ["center", "standardize", "pca", "pca_whiten"])
def test_fitting_never_sees_validation_rows(method):
    # Poison the rows that the split will hold out: any statistic that touched them is NaN.
    train, val = od.validation_indices(Y, 0.25, seed=0)
    x = X.copy()
    x[val] = np.nan
    (x_tr, _), (_x_val, _) = od.train_val_split(x, Y, 0.25, seed=0)
    prep = od.fit_preprocessor(method, x_tr)
    assert prep.num_fit_rows == len(train) == 150
    assert np.all(np.isfinite(prep.mean)) and np.allclose(prep.mean, X[train].mean(0), rtol=1e-5)
    assert np.all(np.isfinite(prep(X[train])))
    _out_tr, out_val = od.preprocess(method, x_tr, X[val])
    np.testing.assert_allclose(out_val, prep(X[val]), rtol=1e-6)  # same fitted transform
    assert not np.allclose(prep.mean, X.mean(0))  # the full data would give another mean


def test_errors():
    with pytest.raises(ValueError, match="did you mean 'pca_whiten'"):
        od.fit_preprocessor("pca_whitening", X)
    with pytest.raises(ValueError, match="num_components=9 exceeds the 5 features"):
        od.fit_preprocessor("pca", X, num_components=9)
