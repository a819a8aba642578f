"""fold_batchnorm: eval outputs equal the unfolded model's to 1e-5; the original is untouched."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optlab.nn as onn

X = jnp.asarray(np.random.default_rng(0).normal(1.0, 2.0, (16, 4)), jnp.float32)


def _trained(model, steps=3):
    """Runs a few training-mode passes so the running statistics are not the defaults."""
    apply, params, state = onn.functional(model)
    for i in range(steps):
        _, state = apply(params, state, X * (i + 1) + i, train=True, rng=jax.random.key(i))
    return apply.merge(params, state)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="pre"),
        pytest.param({"norm_position": "post_activation"}, id="post"),
        pytest.param({"activation": "maxout", "hidden": (8, 8)}, id="maxout-2-layers"),
        pytest.param({"residual": True, "hidden": (4, 8)}, id="residual-pre"),
        pytest.param(
            {
                "dropout": 0.3,
                "dropconnect": 0.2,
                "norm_position": "post_activation",
                "activation": "prelu",
            },
            id="post-dropout-prelu",
        ),
    ],
)
def test_fold_equals_unfolded_in_eval_mode(options):
    options = {"hidden": (8,), **options}
    model = _trained(
        onn.MLP(4, out_features=3, norm=("batch", {"momentum": 0.5}), rngs=0, **options)
    )
    before = np.asarray(model(X, train=False))
    folded = onn.fold_batchnorm(model)
    np.testing.assert_allclose(np.asarray(folded(X, train=False)), before, rtol=1e-5, atol=1e-5)
    assert all(block.norm is None for block in folded.blocks)
    # The original model keeps its BatchNorm and its outputs.
    assert model.blocks[0].norm is not None
    np.testing.assert_array_equal(np.asarray(model(X, train=False)), before)


def test_fold_refuses_what_it_cannot_fold():
    model = onn.MLP(
        4, (4,), 3, norm="batch", norm_position="post_activation", residual=True, rngs=0
    )
    with pytest.raises(ValueError, match="inside a residual block"):
        onn.fold_batchnorm(model)
    tower = onn.MLP(4, (8,), None, norm="batch", norm_position="post_activation", rngs=0)
    with pytest.raises(ValueError, match="no following Dense layer"):
        onn.fold_batchnorm(tower)
