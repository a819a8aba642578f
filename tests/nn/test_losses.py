"""Losses against optax.losses and NumPy float64; penalties against NumPy; stability."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.special import log_softmax as np_log_softmax

import optlab.nn as onn

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(0, 3, (12, 5)).astype(np.float32)
LABELS = RNG.integers(0, 5, 12)
ONE_HOT = np.eye(5, dtype=np.float32)[LABELS]

# float32 logits of size ~3: agreement with optax (same float32 arithmetic, different order)
# and with float64 NumPy to a few ulps of the loss values.
TOL = {"rtol": 1e-5, "atol": 1e-5}


def test_softmax_cross_entropy_matches_optax_and_numpy():
    ours = onn.softmax_cross_entropy(LOGITS, ONE_HOT)
    np.testing.assert_allclose(ours, optax.losses.softmax_cross_entropy(LOGITS, ONE_HOT), **TOL)
    ref = -(ONE_HOT * np_log_softmax(LOGITS.astype(np.float64), axis=-1)).sum(-1)
    np.testing.assert_allclose(ours, ref, **TOL)
    ints = onn.softmax_cross_entropy_with_integer_labels(LOGITS, LABELS)
    np.testing.assert_allclose(ints, ref, **TOL)
    np.testing.assert_allclose(
        ints, optax.losses.softmax_cross_entropy_with_integer_labels(LOGITS, LABELS), **TOL
    )
    # Integer labels given to the one-hot form are one-hot encoded (optlab's extension), on
    # any class axis, with smoothing applied to the encoded rows.
    np.testing.assert_allclose(onn.softmax_cross_entropy(LOGITS, LABELS), ref, **TOL)
    np.testing.assert_allclose(onn.softmax_cross_entropy(LOGITS.T, LABELS, axis=0), ref, **TOL)
    np.testing.assert_allclose(
        onn.softmax_cross_entropy(LOGITS, LABELS, label_smoothing=0.1),
        onn.softmax_cross_entropy(LOGITS, ONE_HOT, label_smoothing=0.1),
        **TOL,
    )
    with pytest.raises(ValueError, match="softmax_cross_entropy"):
        onn.softmax_cross_entropy(LOGITS, LABELS[:5])


def test_where_matches_optax():
    where = RNG.uniform(size=LOGITS.shape) < 0.7
    where[np.arange(12), LABELS] = True
    np.testing.assert_allclose(
        onn.softmax_cross_entropy(LOGITS, ONE_HOT, where=where),
        optax.losses.softmax_cross_entropy(LOGITS, ONE_HOT, where=where),
        **TOL,
    )
    np.testing.assert_allclose(
        onn.softmax_cross_entropy_with_integer_labels(LOGITS, LABELS, where=where),
        optax.losses.softmax_cross_entropy_with_integer_labels(LOGITS, LABELS, where=where),
        **TOL,
    )


@pytest.mark.parametrize("alpha", [pytest.param(0.1, id="a0.1"), pytest.param(1.0, id="a1")])
def test_label_smoothing_matches_optax(alpha):
    ref = optax.losses.softmax_cross_entropy(LOGITS, optax.smooth_labels(ONE_HOT, alpha))
    np.testing.assert_allclose(
        onn.smooth_labels(ONE_HOT, alpha), optax.smooth_labels(ONE_HOT, alpha), **TOL
    )
    np.testing.assert_allclose(
        onn.softmax_cross_entropy(LOGITS, ONE_HOT, label_smoothing=alpha), ref, **TOL
    )
    np.testing.assert_allclose(
        onn.softmax_cross_entropy_with_integer_labels(LOGITS, LABELS, label_smoothing=alpha),
        ref,
        **TOL,
    )


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [-5e3, 5e3, 0.0]], np.float32)
    labels = np.array([1, 1])
    ours = np.asarray(onn.softmax_cross_entropy_with_integer_labels(logits, labels))
    np.testing.assert_allclose(ours, [1e4, 0.0], rtol=1e-6)
    ours = np.asarray(onn.softmax_cross_entropy(logits, np.eye(3, dtype=np.float32)[labels]))
    np.testing.assert_allclose(ours, [1e4, 0.0], rtol=1e-6)
    bce = np.asarray(
        onn.sigmoid_binary_cross_entropy(np.array([-1e4, 1e4], np.float32), np.array([1.0, 1.0]))
    )
    np.testing.assert_allclose(bce, [1e4, 0.0], rtol=1e-6)


def test_float64_under_x64(x64):
    logits = RNG.normal(0, 3, (4, 5))
    labels = RNG.integers(0, 5, 4)
    ours = onn.softmax_cross_entropy_with_integer_labels(jnp.asarray(logits), jnp.asarray(labels))
    assert ours.dtype == jnp.float64
    ref = -np_log_softmax(logits, axis=-1)[np.arange(4), labels]
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_integer_labels_dtype_is_checked():
    with pytest.raises(ValueError, match="labels must be integers"):
        onn.softmax_cross_entropy_with_integer_labels(LOGITS, ONE_HOT[:, 0])


def test_sigmoid_binary_cross_entropy_multi_label():
    targets = (RNG.uniform(size=LOGITS.shape) < 0.5).astype(np.float32)
    ours = onn.sigmoid_binary_cross_entropy(LOGITS, targets)
    np.testing.assert_allclose(
        ours, optax.losses.sigmoid_binary_cross_entropy(LOGITS, targets), **TOL
    )
    z = LOGITS.astype(np.float64)
    p = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(ours, -targets * np.log(p) - (1 - targets) * np.log1p(-p), **TOL)


def test_squared_errors():
    targets = RNG.normal(size=LOGITS.shape).astype(np.float32)
    np.testing.assert_allclose(
        onn.squared_error(LOGITS, targets), optax.losses.squared_error(LOGITS, targets), **TOL
    )
    np.testing.assert_allclose(
        onn.mean_squared_error(LOGITS, targets),
        ((LOGITS.astype(np.float64) - targets) ** 2).mean(-1),
        **TOL,
    )


def test_multiclass_svm_loss_against_numpy_loops():
    def reference(scores, labels, margin):  # seed 001: L_i = sum_{j != y_i} max(0, s_j - s_y + 1)
        out = []
        for s, y in zip(scores.astype(np.float64), labels, strict=True):
            out.append(sum(max(0.0, s[j] - s[y] + margin) for j in range(len(s)) if j != y))
        return np.array(out)

    for margin in (1.0, 0.5):
        np.testing.assert_allclose(
            onn.multiclass_svm_loss(LOGITS, LABELS, margin),
            reference(LOGITS, LABELS, margin),
            **TOL,
        )
    # The seed's worked example (cat scores 3.2, 5.1, -1.7): loss 2.9.
    np.testing.assert_allclose(
        onn.multiclass_svm_loss(jnp.array([[3.2, 5.1, -1.7]]), jnp.array([0])), [2.9], rtol=1e-6
    )


def test_multiclass_hinge_loss_matches_optax():
    np.testing.assert_allclose(
        onn.multiclass_hinge_loss(LOGITS, LABELS),
        optax.losses.multiclass_hinge_loss(LOGITS, LABELS),
        **TOL,
    )


PARAMS = {
    "blocks": {0: {"dense": {"kernel": RNG.normal(size=(3, 4)), "bias": RNG.normal(size=4)}}},
    "head": {"kernel": RNG.normal(size=(4, 2)), "bias": RNG.normal(size=2)},
}
KERNELS = [PARAMS["blocks"][0]["dense"]["kernel"], PARAMS["head"]["kernel"]]
ALL = [*KERNELS, PARAMS["blocks"][0]["dense"]["bias"], PARAMS["head"]["bias"]]


@pytest.mark.parametrize(
    ("mask", "leaves"),
    [
        pytest.param(None, ALL, id="all"),
        pytest.param("*kernel", KERNELS, id="glob"),
        pytest.param(
            lambda p: {
                "blocks": {0: {"dense": {"kernel": True, "bias": False}}},
                "head": {"kernel": True, "bias": False},
            },
            KERNELS,
            id="callable",
        ),
        pytest.param(
            {"blocks": False, "head": True},
            [PARAMS["head"]["kernel"], PARAMS["head"]["bias"]],
            id="prefix",
        ),
    ],
)
def test_penalties_against_numpy(mask, leaves):
    l1 = sum(np.abs(x).sum() for x in leaves)
    l2 = 0.5 * sum((x**2).sum() for x in leaves)
    tree = {k: v for k, v in PARAMS.items()}
    np.testing.assert_allclose(onn.l1_penalty(tree, mask), l1, rtol=1e-5)
    np.testing.assert_allclose(onn.l2_penalty(tree, mask), l2, rtol=1e-5)
    np.testing.assert_allclose(
        onn.elastic_net_penalty(tree, 0.3, mask), 0.3 * l1 + 0.7 * l2, rtol=1e-5
    )


def test_penalty_validation():
    with pytest.raises(ValueError, match=r"l1_ratio must be in \[0, 1\]"):
        onn.elastic_net_penalty(PARAMS, 1.5)
