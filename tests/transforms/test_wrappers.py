"""Tests of optlab.transforms.wrappers: apply_if_finite, MultiSteps, zero_nans."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optlab as ol
from tests.helpers import assert_trees_close


def small_tree(rng, dtype=jnp.float32):
    """Two leaves: MultiSteps' scans compile faster on a small tree."""
    return {
        "w": jnp.asarray(rng.standard_normal((3, 4)), dtype),
        "b": jnp.asarray(rng.standard_normal(4), dtype),
    }


# ---------------------------------------------------------------------------------------------
# apply_if_finite


def test_apply_if_finite_1000_steps_with_injected_nans():
    rng = np.random.default_rng(1)
    steps = 1000
    bad = rng.random(steps) < 0.1
    kind = rng.integers(0, 3, steps)  # 0: NaN, 1: +Inf, 2: -Inf
    poison = np.where(kind == 0, np.nan, np.where(kind == 1, np.inf, -np.inf))
    target = jnp.asarray([1.0, -2.0, 0.5])
    params = {"w": jnp.zeros(3), "b": jnp.ones(2)}

    def make(lib):
        return lib.apply_if_finite(optax.adam(1e-2), max_consecutive_errors=5)

    def run(tx):
        def step(carry, inp):
            p, s = carry
            is_bad, value = inp
            g = {"w": p["w"] - target, "b": p["b"]}
            g = jax.tree.map(lambda x: jnp.where(is_bad, x.at[0].set(value), x), g)
            u, s = tx.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        (p, s), _ = jax.lax.scan(
            step, (params, tx.init(params)), (jnp.asarray(bad), jnp.asarray(poison, jnp.float32))
        )
        return p, s

    p, state = jax.jit(lambda: run(make(ol)))()
    p_ref, _ = jax.jit(lambda: run(make(optax)))()
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(p))
    assert int(ol.get(state, "total_notfinite")) == int(bad.sum()) > 50
    # Same wrapper semantics as optax's: identical trajectories (same float ops).
    assert_trees_close(p, p_ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(p["w"]), np.asarray(target), atol=1e-2)


def test_apply_if_finite_skip_leaves_inner_state_and_policy():
    tx = ol.apply_if_finite(
        ol.named_chain(
            ("clip", ol.clip_by_global_norm(10.0)), ("lr", ol.scale_by_learning_rate(0.5))
        ),
        max_consecutive_errors=2,
    )
    params = jnp.ones(2)
    state = tx.init(params)
    u, state = tx.update(jnp.asarray([1.0, 1.0]), state, params)
    good_inner = state.inner_state
    nan = jnp.asarray([jnp.nan, 1.0])
    for expected_consecutive in (1, 2):
        u, state = tx.update(nan, state, params, value=3.0)  # extra args are accepted
        np.testing.assert_array_equal(np.asarray(u), 0.0)
        assert jax.tree.all(
            jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), state.inner_state, good_inner)
        )
        assert int(ol.get(state, "notfinite_count")) == expected_consecutive
        assert not bool(ol.get(state, "last_finite"))
    # The third consecutive failure exceeds max_consecutive_errors=2: it goes through.
    u, state = tx.update(nan, state, params)
    assert np.isnan(np.asarray(u)[0])
    assert int(ol.get(state, "lr/count")) == 2
    assert int(ol.get(state, "total_notfinite")) == 3
    # A finite step resets the consecutive count, not the total.
    _, state = tx.update(jnp.ones(2), state, params)
    assert int(ol.get(state, "notfinite_count")) == 0
    assert int(ol.get(state, "total_notfinite")) == 3


def test_apply_if_finite_bad_argument():
    with pytest.raises(
        ValueError,
        match="apply_if_finite: max_consecutive_errors must be an "
        "integer >= 0, got max_consecutive_errors=-1",
    ):
        ol.apply_if_finite(ol.identity(), -1)


# ---------------------------------------------------------------------------------------------
# MultiSteps


def _regression_data(rng, n=32, d=3):
    x = rng.standard_normal((n, d))
    y = x @ np.asarray([1.0, -2.0, 0.5]) + 0.1 * rng.standard_normal(n)
    return x, y


def test_multisteps_equals_one_large_batch(rng):
    k, lr = 4, 0.1
    x, y = _regression_data(rng)
    w0 = jnp.zeros(3)

    def loss(w, xb, yb):
        return 0.5 * jnp.mean((xb @ w - yb) ** 2)

    ms = ol.MultiSteps(ol.scale_by_learning_rate(lr), every_k_schedule=k)
    state = ms.init(w0)
    w = w0
    w_ref = np.zeros(3)
    grad = jax.jit(jax.grad(loss))
    update = jax.jit(ms.update)
    for _ in range(3):
        for xb, yb in zip(np.split(x, k), np.split(y, k), strict=True):
            u, state = update(grad(w, xb, yb), state, w)
            w = ol.apply_updates(w, u)
        assert bool(ms.has_updated(state))
        # NumPy full-batch gradient of the mean squared error.
        w_ref = w_ref - lr * x.T @ (x @ w_ref - y) / len(y)
        # float32 accumulation of 4 running-mean updates vs float64: ~1e-6 relative.
        np.testing.assert_allclose(np.asarray(w), w_ref, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("every_k", "use_grad_mean", "skip"),
    [
        (3, True, None),
        (lambda step: 1 + step, True, None),
        (2, False, "not_finite"),
    ],
    ids=["k3_mean", "growing_k", "k2_sum_skip_not_finite"],
)
def test_multisteps_matches_optax(every_k, use_grad_mean, skip, rng):
    params = small_tree(rng)
    kw = {"use_grad_mean": use_grad_mean}
    ours = ol.MultiSteps(
        optax.adam(1e-2),
        every_k,
        should_skip_update_fn=(ol.skip_not_finite if skip else None),
        **kw,
    )
    ref = optax.MultiSteps(
        optax.adam(1e-2),
        every_k,
        should_skip_update_fn=(optax.skip_not_finite if skip else None),
        **kw,
    )
    grads = [small_tree(rng) for _ in range(12)]
    if skip:
        grads[4] = jax.tree.map(lambda x: x * jnp.nan, grads[4])

    def run(tx):
        def step(carry, g):
            p, s = carry
            u, s = tx.update(g, s, p)
            return (optax.apply_updates(p, u), s), (u, tx.has_updated(s))

        stacked = jax.tree.map(lambda *x: jnp.stack(x), *grads)
        return jax.lax.scan(step, (params, tx.init(params)), stacked)

    (p, s), (us, updated) = run(ours)
    (p_ref, s_ref), (us_ref, updated_ref) = run(ref)
    np.testing.assert_array_equal(np.asarray(updated), np.asarray(updated_ref))
    # Same accumulation arithmetic; the inner Adam is optax's in both.
    assert_trees_close(p, p_ref, rtol=1e-6, atol=1e-6)
    assert_trees_close(us, us_ref, rtol=1e-6, atol=1e-6)
    assert int(s.gradient_step) == int(s_ref.gradient_step) >= 3


def test_multisteps_memory_is_one_params_buffer(rng):
    params = small_tree(rng)
    inner = ol.scale_by_learning_rate(0.1)
    state = ol.MultiSteps(inner, 4).init(params)
    own = state._replace(inner_opt_state=())
    params_size = sum(x.size for x in jax.tree.leaves(params))
    own_leaves = jax.tree.leaves(own)
    # mini_step and gradient_step (scalars) plus exactly one params-shaped accumulator.
    assert len(own_leaves) == len(jax.tree.leaves(params)) + 2
    assert sum(x.size for x in own_leaves) == params_size + 2
    assert jax.tree.structure(state.acc_grads) == jax.tree.structure(params)


def test_multisteps_accumulator_dtype_and_params_forwarded(rng):
    params = small_tree(rng, jnp.bfloat16)
    inner = ol.chain(ol.add_decayed_weights(0.5), ol.scale_by_learning_rate(1.0))  # needs params
    ms = ol.MultiSteps(inner, 2, accumulator_dtype=jnp.float32)
    state = ms.init(params)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.acc_grads))
    g = jax.tree.map(jnp.ones_like, params)
    update = jax.jit(ms.update)
    u, state = update(g, state, params, value=1.0)
    u, state = update(g, state, params, value=1.0)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(u))
    expected = jax.tree.map(lambda p: -(1.0 + 0.5 * np.asarray(p, np.float64)), params)
    assert_trees_close(u, expected, rtol=1e-2, atol=1e-2)  # bf16 rounding
    keep = ol.MultiSteps(inner, 2, accumulator_dtype=None).init(params)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(keep.acc_grads))


def test_multisteps_in_chain_and_bad_k():
    ms = ol.MultiSteps(ol.scale_by_learning_rate(1.0), 2)
    tx = ol.chain(ol.clip(1.0), ms.gradient_transformation())
    state = tx.init(jnp.zeros(2))
    _, state = tx.update(jnp.asarray([3.0, 0.5]), state)
    u, state = tx.update(jnp.asarray([0.0, 0.5]), state)
    np.testing.assert_allclose(np.asarray(u), [-0.5, -0.5])
    assert ms.inner_opt is not None
    with pytest.raises(ValueError, match="MultiSteps: every_k_schedule must be an integer >= 1"):
        ol.MultiSteps(ol.identity(), 0)


def test_multisteps_skip_large_updates():
    ms = ol.MultiSteps(
        ol.scale_by_learning_rate(1.0),
        2,
        should_skip_update_fn=functools.partial(ol.skip_large_updates, max_squared_norm=4.0),
    )
    state = ms.init(jnp.zeros(1))
    _, state = ms.update(jnp.asarray([1.0]), state)
    _, state = ms.update(jnp.asarray([10.0]), state)  # skipped: 100 >= 4
    assert int(state.mini_step) == 1
    np.testing.assert_allclose(float(state.skip_state["norm_squared"]), 100.0)
    u, state = ms.update(jnp.asarray([1.5]), state)
    np.testing.assert_allclose(np.asarray(u), [-1.25])


# ---------------------------------------------------------------------------------------------
# zero_nans


def test_zero_nans_matches_optax():
    g = {"a": jnp.asarray([1.0, jnp.nan, jnp.inf]), "b": jnp.asarray([2.0])}
    tx, ref = ol.zero_nans(), optax.zero_nans()
    u, s = tx.update(g, tx.init(g), None, value=1.0)
    v, s_ref = ref.update(g, ref.init(g))
    assert_trees_close(u, v, rtol=0, atol=0)
    assert (
        jax.tree.map(bool, s.found_nan)
        == jax.tree.map(bool, s_ref.found_nan)
        == {"a": True, "b": False}
    )


def test_apply_if_finite_detects_any_position_and_dtype():
    # The finiteness check is a float reduction: a NaN/Inf anywhere, in any leaf of any float
    # dtype (half-precision ones included) and under jit, must reject the step; an empty leaf
    # and an integer leaf must not disturb it.
    tx = ol.apply_if_finite(ol.scale_by_learning_rate(1.0), max_consecutive_errors=20)
    step = jax.jit(tx.update)
    for dtype in (jnp.float32, jnp.bfloat16, jnp.float16):
        g = {
            "a": jnp.ones((300, 40), dtype),
            "b": jnp.ones(3, dtype),
            "empty": jnp.ones((0, 5), dtype),
            "c": jnp.ones(2, jnp.float32),
        }
        state = tx.init(g)
        for value in (jnp.nan, jnp.inf, -jnp.inf):
            for leaf, index in (("a", (0, 0)), ("a", (150, 17)), ("a", (299, 39)), ("b", 2)):
                bad = {**g, leaf: g[leaf].at[index].set(value)}
                u, state = step(bad, state)
                assert not bool(state.last_finite)
                assert all(np.all(np.asarray(x, np.float32) == 0) for x in jax.tree.leaves(u))
        assert int(state.total_notfinite) == 12
        u, state = step(g, state)
        assert bool(state.last_finite)
        assert_trees_close(u, jax.tree.map(lambda x: -x, g), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------
# The fused guard (optlab optimizers gate their own state)


FUSED = {
    "adam": lambda: ol.adam(1e-2),
    "nadamw": lambda: ol.nadamw(1e-2, weight_decay=1e-2),
    "amsgrad": lambda: ol.amsgrad(1e-2),
    "adamax": lambda: ol.adamax(1e-2),
    "sgd_nesterov": lambda: ol.sgd(1e-2, momentum=0.9, nesterov=True),
    "rmsprop_centered": lambda: ol.rmsprop(1e-2, centered=True, momentum=0.5),
    "adagrad": lambda: ol.adagrad(1e-1),
    "adadelta": lambda: ol.adadelta(1.0),
    "clip_adamw_schedule": lambda: ol.named_chain(
        ("clip", ol.clip_by_global_norm(1.0)),
        ("opt", ol.adamw(ol.cosine_decay_schedule(1e-2, 20), weight_decay=1e-2)),
    ),
    "injected_adam": lambda: ol.inject_hyperparams(ol.adam)(learning_rate=1e-2, b1=0.8),
}


@pytest.mark.parametrize("name", list(FUSED))
def test_fused_guard_equals_skipping_the_bad_steps(name):
    # Reference: the same optimizer run on the finite steps only (the guard's semantics when
    # fewer than max_consecutive_errors bad steps come in a row), independent of the guard.
    rng = np.random.default_rng(3)
    steps = 12
    bad = {2, 3, 7}
    target = {"w": jnp.asarray(rng.standard_normal((3, 2)), jnp.float32), "b": jnp.zeros(2)}
    params = {"w": jnp.zeros((3, 2)), "b": jnp.ones(2)}

    def grad(p, t):
        g = jax.tree.map(lambda x, y: x - y, p, target)
        if t in bad:
            g = {"w": g["w"].at[1, 0].set(jnp.nan), "b": g["b"].at[0].set(jnp.inf)}
        return g

    guarded = ol.apply_if_finite(FUSED[name](), max_consecutive_errors=3)
    plain = FUSED[name]()
    step = jax.jit(guarded.update)
    p, s = params, guarded.init(params)
    q, r = params, plain.init(params)
    for t in range(steps):
        u, s = step(grad(p, t), s, p)
        p = ol.apply_updates(p, u)
        if t not in bad:
            v, r = plain.update(grad(q, t), r, q)
            q = ol.apply_updates(q, v)
    assert int(ol.get(s, "total_notfinite")) == len(bad)
    assert_trees_close(p, q, rtol=1e-6, atol=1e-7)
    assert_trees_close(s.inner_state, r, rtol=1e-6, atol=1e-7)


def test_fused_guard_compiles_without_a_conditional():
    # The guard is absorbed by the optimizer's own elementwise loops (a select per output),
    # not a lax.cond around the whole update (which XLA:CPU runs as a separate computation),
    # and it costs one extra read of the float32 gradient (4 bytes per parameter in XLA's
    # cost analysis of the donated step), no copy of the moments. (Compiled, not run: on
    # leaves of a few thousand elements XLA repeats the reduction in each consumer loop.)
    params = {"w": jnp.ones((256, 400)), "b": jnp.ones(400)}
    n = 256 * 400 + 400

    def compiled(tx):
        def step(p, s, g):
            u, s = tx.update(g, s, p)
            return ol.apply_updates(p, u), s

        return jax.jit(step, donate_argnums=(0, 1)).lower(params, tx.init(params), params).compile()

    def has_conditional(c):
        return re.search(r"\sconditional\(", c.as_text()) is not None  # an HLO conditional op

    def bytes_accessed(c):
        cost = c.cost_analysis()
        return float((cost[0] if isinstance(cost, list) else cost)["bytes accessed"])

    guarded = compiled(ol.apply_if_finite(ol.adamw(1e-3), 5))
    assert not has_conditional(guarded)
    extra = bytes_accessed(guarded) - bytes_accessed(compiled(ol.adamw(1e-3)))
    assert 4 * n <= extra < 4.1 * n  # the read (a copy of a moment would add 8 B/param)
    injected = ol.inject_hyperparams(ol.adam)(learning_rate=1e-3)
    assert not has_conditional(compiled(ol.apply_if_finite(injected, 5)))
    assert has_conditional(compiled(ol.apply_if_finite(optax.adam(1e-3), 5)))  # the fallback


def test_fused_guard_policy_lets_the_step_through_after_max_errors():
    tx = ol.apply_if_finite(ol.sgd(1.0, momentum=0.5), max_consecutive_errors=1)
    params = jnp.zeros(2)
    state = tx.init(params)
    nan = jnp.asarray([jnp.nan, 1.0])
    u, state = tx.update(nan, state, params)  # skipped
    np.testing.assert_array_equal(np.asarray(u), 0.0)
    np.testing.assert_array_equal(np.asarray(state.inner_state[0].trace), 0.0)
    u, state = tx.update(nan, state, params)  # 2 > 1 in a row: goes through (optax's policy)
    assert np.isnan(np.asarray(u)[0]) and float(u[1]) == -1.0


def test_zero_nonfinite_replaces_nan_and_inf():
    g = {"a": jnp.asarray([1.0, jnp.nan, jnp.inf, -jnp.inf]), "b": jnp.asarray([2.0])}
    tx = ol.zero_nonfinite()
    u, s = tx.update(g, tx.init(g), None, value=1.0)
    expected = {k: np.where(np.isfinite(np.asarray(v)), np.asarray(v), 0.0) for k, v in g.items()}
    assert_trees_close(u, expected, rtol=0, atol=0)
    assert jax.tree.map(bool, s.found_nan) == {"a": True, "b": False}


@pytest.mark.parametrize(
    ("factory", "error", "match"),
    [
        (lambda: ol.apply_if_finite(ol.adam, 3), TypeError, r"inner must be a gradient .*call"),
        (lambda: ol.MultiSteps("sgd", 2), TypeError, r"MultiSteps: opt must be a gradient"),
        (lambda: ol.MultiSteps(ol.sgd(1.0), 2.5), ValueError, r"every_k_schedule must be an"),
        (lambda: ol.MultiSteps(ol.sgd(1.0), 2, use_grad_mean="yes"), TypeError, r"True or False"),
        (
            lambda: ol.MultiSteps(ol.sgd(1.0), 2, should_skip_update_fn=3),
            TypeError,
            r"should_skip_update_fn must be a function",
        ),
        (
            lambda: ol.MultiSteps(ol.sgd(1.0), 2, accumulator_dtype="int8"),
            TypeError,
            r"accumulator_dtype must be a floating or complex dtype",
        ),
    ],
    ids=["factory", "str", "fraction", "bool", "skip-fn", "dtype"],
)
def test_wrapper_arguments(factory, error, match):
    with pytest.raises(error, match=match):
        factory()


def test_multisteps_names_the_differing_leaf():
    ms = ol.MultiSteps(ol.sgd(1.0), 2)
    state = ms.init({"w": jnp.zeros((3, 2))})
    with pytest.raises(ValueError, match=r"MultiSteps: the update at \['w'\] has shape \(1, 2\)"):
        ms.update({"w": jnp.ones((1, 2))}, state)
