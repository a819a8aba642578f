r"""Preprocessing fitted on the training rows only, then applied unchanged to every split.

.. math::

   \text{center: } x - \mu, \qquad \text{standardize: } \frac{x - \mu}{\sigma}, \qquad
   \text{PCA: } (x - \mu) U_k, \qquad
   \text{whitening: } \frac{(x - \mu) U_k}{\sqrt{\lambda_k + \epsilon}},

with :math:`\mu, \sigma` the per-feature mean and standard deviation of the training rows,
:math:`\Sigma = \frac1N X_c^\top X_c = U \operatorname{diag}(\lambda) U^\top` their covariance
(seed 001's slides: ``cov = X.T @ X / N; U, S, V = svd(cov); Xrot = X @ U;
Xwhite = Xrot / sqrt(S + 1e-5)``), and :math:`U_k` its first ``k`` eigenvectors. Per-channel
mean subtracts one mean per channel (the last axis) of image-shaped inputs.

The statistics are computed in float64 from the rows passed to :func:`fit_preprocessor` and
nothing else: fit on ``x_train`` (after taking a validation split out of it), then call the
fitted object on validation and test inputs. :func:`preprocess` does both.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from optlab.core.validation import (
    check_array,
    check_choice,
    check_int_range,
    check_positive,
    check_real,
    check_str,
)

METHODS = ("center", "standardize", "pca", "pca_whiten", "per_channel_mean")


@dataclasses.dataclass(frozen=True, eq=False)
class Preprocessor:
    """A fitted preprocessing step; call it on any split: ``prep(x) -> x'``.

    Attributes:
      method: one of ``"center"``, ``"standardize"``, ``"pca"``, ``"pca_whiten"``,
        ``"per_channel_mean"``.
      mean: the training mean (per feature, or per channel).
      scale: per-feature standard deviations (standardize) or :math:`\\sqrt{\\lambda + \\epsilon}`
        (whitening); ``None`` otherwise.
      components: :math:`U_k`, shape ``(num_features, k)`` (PCA and whitening).
      eigenvalues: :math:`\\lambda` of all components, largest first (PCA and whitening).
      num_fit_rows: how many rows the statistics were computed from.
    """

    method: str
    mean: np.ndarray
    scale: np.ndarray | None = None
    components: np.ndarray | None = None
    eigenvalues: np.ndarray | None = None
    num_fit_rows: int = 0

    def __post_init__(self) -> None:
        check_str("Preprocessor", "method", self.method)
        check_choice("Preprocessor", "method", self.method, METHODS)
        check_array("Preprocessor", "mean", self.mean, ndim=1, kinds="f")

    def __call__(self, x: Any) -> np.ndarray:
        x = np.asarray(check_array(f"Preprocessor({self.method!r})", "x", x, min_ndim=1))
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
        if self.method == "per_channel_mean":
            if x.ndim < 2 or x.shape[-1] != len(self.mean):
                raise ValueError(
                    f"Preprocessor('per_channel_mean'): x must be (n, ..., {len(self.mean)}) "
                    f"like the training inputs, got shape {x.shape}"
                )
            return (x - self.mean).astype(dtype)
        features = int(np.prod(x.shape[1:]))
        if features != len(self.mean):
            raise ValueError(
                f"Preprocessor({self.method!r}): x has {features} features per row (shape "
                f"{x.shape}), the training inputs had {len(self.mean)}"
            )
        flat = x.reshape(len(x), -1).astype(np.float64) - self.mean
        if self.method == "center":
            out = flat
        elif self.method == "standardize":
            out = flat / self.scale
        else:
            out = flat @ self.components
            if self.method == "pca_whiten":
                out = out / self.scale
            return out.astype(dtype)
        return out.reshape(x.shape).astype(dtype)


def fit_preprocessor(
    method: str,
    x_train: Any,
    *,
    num_components: int | None = None,
    epsilon: float = 1e-5,
) -> Preprocessor:
    """Fits a preprocessing step on the training rows ``x_train`` only.

    Args:
      method: ``"center"``, ``"standardize"``, ``"pca"``, ``"pca_whiten"`` or
        ``"per_channel_mean"``.
      x_train: the training inputs ``(n, ...)`` (flattened to ``(n, features)`` except for
        per-channel mean, where the last axis is the channel).
      num_components: the ``k`` of PCA/whitening (default: all features).
      epsilon: added to variances before dividing (standardize uses it as a floor for
        constant features; whitening adds it to the eigenvalues, 1e-5 as in the seed).

    Returns:
      A fitted :class:`Preprocessor`.

    Examples:
      >>> import numpy as np, optlab
      >>> prep = optlab.data.fit_preprocessor("standardize", np.array([[0.0], [2.0]]))
      >>> print(prep(np.array([[1.0], [4.0]])).round(3))
      [[0.]
       [3.]]
    """
    fn = "fit_preprocessor"
    check_str(fn, "method", method)
    check_choice(fn, "method", method, METHODS)
    check_real(fn, "epsilon", epsilon)
    check_positive(fn, "epsilon", epsilon)
    if num_components is not None:
        check_int_range(fn, "num_components", num_components, 1)
    x = np.asarray(check_array(fn, "x_train", x_train, min_ndim=1), np.float64)
    n = len(x)
    if n < 2:
        raise ValueError(f"{fn}: need at least 2 training rows, got {n}")
    bad = ~np.isfinite(x.reshape(n, -1)).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{fn}: x_train row {int(np.argmax(bad))} (counted from 0) is not finite; "
            f"{int(bad.sum())} row(s) hold NaN or infinity, which would make every statistic NaN"
        )
    if method == "per_channel_mean":
        if x.ndim < 2:
            raise ValueError("fit_preprocessor: per_channel_mean needs inputs (n, ..., channels)")
        mean = x.reshape(-1, x.shape[-1]).mean(axis=0)
        return Preprocessor(method, mean, num_fit_rows=n)
    flat = x.reshape(n, -1)
    mean = flat.mean(axis=0)
    if method == "center":
        return Preprocessor(method, mean, num_fit_rows=n)
    if method == "standardize":
        std = np.sqrt(flat.var(axis=0) + epsilon)
        return Preprocessor(method, mean, scale=std, num_fit_rows=n)
    d = flat.shape[1]
    k = d if num_components is None else num_components
    if k > d:
        raise ValueError(f"fit_preprocessor: num_components={k} exceeds the {d} features")
    centered = flat - mean
    cov = centered.T @ centered / n
    u, s, _ = np.linalg.svd(cov)
    scale = np.sqrt(s[:k] + epsilon) if method == "pca_whiten" else None
    return Preprocessor(method, mean, scale, u[:, :k], s, num_fit_rows=n)


def preprocess(method: str, x_train: Any, *others: Any, **options: Any) -> tuple[np.ndarray, ...]:
    """Fits ``method`` on ``x_train`` and applies it to ``x_train`` and every other split.

    Examples:
      >>> import optlab
      >>> ds = optlab.data.load("digits")
      >>> x_tr, x_te = optlab.data.preprocess("pca_whiten", ds.x_train, ds.x_test,
      ...                                     num_components=10)
      >>> print(x_tr.shape, x_te.shape)
      (1437, 10) (360, 10)
    """
    check_str("preprocess", "method", method)
    check_choice("preprocess", "method", method, METHODS)
    prep = fit_preprocessor(method, x_train, **options)
    for i, x in enumerate(others):
        x = check_array("preprocess", f"others[{i}]", x, min_ndim=1)
        if (
            method != "per_channel_mean"
            and (  # per channel: any image size, same channels
                int(np.prod(np.shape(x)[1:])) != int(np.prod(np.shape(x_train)[1:]))
            )
        ):
            raise ValueError(
                f"preprocess: x (others[{i}]) has shape {np.shape(x)}, whose rows do not match "
                f"x_train's {np.shape(x_train)[1:]}"
            )
    return tuple(prep(x) for x in (x_train, *others))
