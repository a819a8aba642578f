"""chain, named_chain, masked, partition and freeze against optax's combinators."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import optlab as ol
from tests.helpers import assert_trees_close, random_tree

# optax's own building blocks are the inner transformations, so each test compares optlab's
# combinator alone against optax's combinator; exact float ops are the same, hence tight tolerance.
TOL = {"rtol": 1e-6, "atol": 1e-7}


def _run(tx, grads_seq, params):
    state = tx.init(params)
    outs = []
    for g in grads_seq:
        u, state = tx.update(g, state, params)
        outs.append(u)
    return outs, state


def test_chain_matches_optax_chain(rng):
    params = random_tree(rng)
    grads = [random_tree(rng) for _ in range(10)]
    ours, _ = _run(ol.chain(optax.scale_by_adam(), optax.scale(-0.1)), grads, params)
    ref, _ = _run(optax.chain(optax.scale_by_adam(), optax.scale(-0.1)), grads, params)
    for a, b in zip(ours, ref, strict=True):
        assert_trees_close(a, b, **TOL)


def test_chain_forwards_extra_args_and_drops_them_for_optax():
    seen = {}

    def spy(updates, state, params=None, **extra):
        seen.update(extra)
        return updates, state

    tx = ol.chain(optax.scale(2.0), ol.GradientTransformation(lambda p: (), spy))
    u, _ = tx.update(jnp.ones(1), tx.init(jnp.ones(1)), None, value=3.0)
    assert seen == {"value": 3.0}
    np.testing.assert_array_equal(np.asarray(u), [2.0])


def test_chain_rejects_foreign_state():
    tx = ol.chain(ol.identity(), ol.identity())
    with pytest.raises(ValueError, match="chain: the state has 1 entries"):
        tx.update(jnp.ones(1), (ol.EmptyState(),))


def test_named_chain_matches_optax(rng):
    params = random_tree(rng)
    grads = [random_tree(rng) for _ in range(5)]
    ours, state = _run(
        ol.named_chain(("adam", optax.scale_by_adam()), ("lr", ol.scale(-0.1))), grads, params
    )
    ref, _ = _run(
        optax.named_chain(("adam", optax.scale_by_adam()), ("lr", optax.scale(-0.1))), grads, params
    )
    assert set(state) == {"adam", "lr"}
    for a, b in zip(ours, ref, strict=True):
        assert_trees_close(a, b, **TOL)
    with pytest.raises(ValueError, match="names must be unique"):
        ol.named_chain(("a", ol.identity()), ("a", ol.identity()))


def _mask(params):
    return jax.tree.map(lambda x: x.ndim >= 2, params)


@pytest.mark.parametrize("as_function", [False, True], ids=["tree", "function"])
def test_masked_matches_optax_masked(as_function, rng):
    params = random_tree(rng)
    grads = [random_tree(rng) for _ in range(10)]
    mask = _mask if as_function else _mask(params)
    ours, state = _run(ol.masked(optax.scale_by_adam(), mask), grads, params)
    ref, _ = _run(optax.masked(optax.scale_by_adam(), mask), grads, params)
    for a, b in zip(ours, ref, strict=True):
        assert_trees_close(a, b, **TOL)
    # The inner state holds moments for the masked-in leaves only.
    n_in = sum(int(m) for m in jax.tree.leaves(_mask(params)))
    assert len(jax.tree.leaves(state.inner_state.mu)) == n_in


def test_masked_accepts_glob_patterns_and_prefix_masks(rng):
    params = random_tree(rng)
    grads = random_tree(rng)
    by_glob = ol.masked(ol.set_to_zero(), "inner/*")
    by_prefix = ol.masked(ol.set_to_zero(), {"w": False, "b": False, "s": False, "inner": True})
    for tx in (by_glob, by_prefix):
        u, _ = tx.update(grads, tx.init(params), params)
        np.testing.assert_array_equal(np.asarray(u["inner"]["k"]), 0.0)
        np.testing.assert_array_equal(np.asarray(u["w"]), np.asarray(grads["w"]))


def test_masked_mismatched_mask_shows_the_difference(rng):
    params = random_tree(rng)
    with pytest.raises(ValueError, match=r"mask tree does not match the parameters"):
        ol.masked(ol.identity(), {"w": True}).init(params)


def test_partition_matches_optax_partition(rng):
    params = random_tree(rng)
    grads = [random_tree(rng) for _ in range(10)]
    labels = jax.tree.map(lambda x: "big" if x.ndim >= 2 else "small", params)
    inner = {"big": optax.adam(1e-2), "small": optax.sgd(1e-1, momentum=0.9)}
    ours, _ = _run(ol.partition(inner, labels), grads, params)
    ref, _ = _run(optax.partition(inner, labels), grads, params)
    for a, b in zip(ours, ref, strict=True):
        assert_trees_close(a, b, **TOL)


def test_partition_with_globs_on_nnx_state():
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    params = nnx.state(model, nnx.Param)
    tx = ol.partition(
        {"slow": ol.scale(0.0), "fast": ol.scale(1.0)}, {"*bias": "slow", "*": "fast"}
    )
    grads = jax.tree.map(jnp.ones_like, params)
    u, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_array_equal(np.asarray(u["bias"][...]), 0.0)
    np.testing.assert_array_equal(np.asarray(u["kernel"][...]), 1.0)


def test_partition_unknown_label_is_named(rng):
    params = random_tree(rng)
    with pytest.raises(ValueError, match=r"labels \['c'\] have no transformation"):
        ol.partition({"a": ol.identity()}, lambda p: jax.tree.map(lambda _: "c", p)).init(params)


def test_freeze_alone_matches_optax(rng):
    params = random_tree(rng)
    grads = random_tree(rng)
    mask = _mask(params)
    ours, _ = ol.freeze(mask).update(grads, ol.freeze(mask).init(params), params)
    ref, _ = optax.transforms.freeze(mask).update(
        grads, optax.transforms.freeze(mask).init(params), params
    )
    assert_trees_close(ours, ref, rtol=0, atol=0)


def test_freeze_with_inner_allocates_no_state_for_frozen_leaves(rng):
    params = random_tree(rng)
    tx = ol.freeze("inner/*", optax.adam(1e-2))
    state = tx.init(params)
    trainable = state.inner_states["trainable"].inner_state
    adam_state = trainable[0]
    assert len(jax.tree.leaves(adam_state.mu)) == 3  # w, b, s: not inner/k
    u, _ = tx.update(params, state, params)
    np.testing.assert_array_equal(np.asarray(u["inner"]["k"]), 0.0)
    assert np.all(np.asarray(u["w"]) != 0.0)


def test_combinators_jit_and_train_with_nnx_optimizer():
    model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
    tx = ol.partition(
        {"d": ol.scale_by_learning_rate(0.1), "n": ol.set_to_zero()}, {"*kernel": "d", "*": "n"}
    )
    opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
    x = jnp.array([[1.0, 2.0], [0.5, -1.0]])
    y = jnp.array([[1.0], [0.0]])

    @nnx.jit
    def step(model, opt):
        grads = nnx.grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
        opt.update(model, grads)

    bias_before = np.asarray(model.bias[...])
    loss0 = float(jnp.mean((model(x) - y) ** 2))
    for _ in range(20):
        step(model, opt)
    assert float(jnp.mean((model(x) - y) ** 2)) < loss0
    np.testing.assert_array_equal(np.asarray(model.bias[...]), bias_before)
