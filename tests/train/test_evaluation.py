"""evaluate and predict against an independent eval-mode forward pass written in NumPy."""

import jax
import numpy as np
import pytest
from flax import nnx

import optlab as ol
from tests.train.models import Tiny, blobs, xent


@pytest.fixture(scope="module")
def trained_tiny():
    """A Tiny MLP with BatchNorm and dropout whose running averages have moved, trained once
    for the module (evaluate and predict leave it alone: the predict test checks that)."""
    model = Tiny(batchnorm=True, dropout=0.5, seed=2)
    ol.fit(
        model, ol.adam(1e-2), blobs(64, seed=1), loss=xent, epochs=2, batch_size=16, progress=False
    )
    return model


def _numpy_forward(model, x):
    """Eval mode, float64: BatchNorm with the running averages, no dropout."""
    params = jax.tree.map(
        lambda a: np.asarray(a, np.float64),
        nnx.to_pure_dict(nnx.state(model, nnx.Not(nnx.RngState))),
    )
    h = x.astype(np.float64) @ params["l1"]["kernel"] + params["l1"]["bias"]
    bn = params["bn"]
    h = (h - bn["mean"]) / np.sqrt(bn["var"] + 1e-5) * bn["scale"] + bn["bias"]
    h = np.maximum(h, 0.0)
    return h @ params["l2"]["kernel"] + params["l2"]["bias"]


def _numpy_xent(logits, y):
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(y)), y]


@pytest.mark.parametrize("batch_size", [None, 7], ids=["default", "padded-batches"])
def test_evaluate_is_the_eval_mode_mean_over_every_row(trained_tiny, batch_size):
    model = trained_tiny
    x, y = blobs(30, seed=9)
    logs = ol.evaluate(model, (x, y), loss=xent, batch_size=batch_size)
    logits = _numpy_forward(model, x)
    assert sorted(logs) == ["accuracy", "loss"]  # integer labels: accuracy by default
    np.testing.assert_allclose(logs["loss"], _numpy_xent(logits, y).mean(), rtol=1e-5)
    np.testing.assert_allclose(logs["accuracy"], np.mean(logits.argmax(1) == y), rtol=1e-6)


def test_evaluate_reads_a_datasets_test_split_and_follows_the_task():
    ds = ol.data.load("blobs", num_samples=60)
    model = Tiny(din=ds.num_features, dout=ds.num_classes)
    logs = ol.evaluate(model, ds, loss=xent, metrics=())
    np.testing.assert_allclose(
        logs["loss"],
        _numpy_xent(np.asarray(model(ds.x_test), np.float64), ds.y_test).mean(),
        rtol=1e-5,
    )
    target = np.asarray(ds.x_test[:, 0], np.float32)
    mse = lambda p, t: (p[:, 0] - t) ** 2
    logs = ol.evaluate(model, (ds.x_test, target), loss=mse, batch_size=4)
    assert list(logs) == ["loss"]  # float targets: a regression reports no accuracy
    expected = np.mean((np.asarray(model(ds.x_test), np.float64)[:, 0] - target) ** 2)
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5)


def _arrays(model):
    return jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model, nnx.Not(nnx.RngState))))


def test_predict_matches_the_forward_pass_and_leaves_the_model_alone(trained_tiny):
    model = trained_tiny
    before = _arrays(model)
    x, _ = blobs(23, seed=4)
    for batch_size in (None, 5):
        out = ol.predict(model, x, batch_size=batch_size)
        assert out.shape == (23, 3)
        np.testing.assert_allclose(np.asarray(out), _numpy_forward(model, x), rtol=1e-5, atol=1e-5)
    after = _arrays(model)
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "call, error, match",
    [
        pytest.param(
            lambda m: ol.evaluate(m, blobs(8), loss="xent"),
            TypeError,
            "evaluate: loss must be a function",
            id="loss-name",
        ),
        pytest.param(
            lambda m: ol.evaluate(m, blobs(8), loss=xent, batch_size=0),
            ValueError,
            "evaluate: batch_size must be an integer >= 1",
            id="batch-zero",
        ),
        pytest.param(
            lambda m: ol.evaluate(m, np.zeros((3, 4)), loss=xent),
            ValueError,
            r"evaluate: data must be a pair \(x, y\)",
            id="not-a-pair",
        ),
        pytest.param(
            lambda m: ol.evaluate(object(), blobs(8), loss=xent),
            TypeError,
            "evaluate: model must be a flax.nnx.Module",
            id="not-a-model",
        ),
        pytest.param(
            lambda m: ol.predict(m, np.zeros((0, 4))),
            ValueError,
            "predict: x must have at least one row",
            id="no-rows",
        ),
        pytest.param(
            lambda m: ol.predict(m, np.zeros((2, 4)), batch_size=1.5),
            TypeError,
            "predict: batch_size must be an integer",
            id="batch-float",
        ),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call(Tiny())
