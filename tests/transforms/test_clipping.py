"""Tests of optlab.transforms.clipping against NumPy formulas, optax and torch's semantics."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optlab as ol
from tests.helpers import TraceCounter, assert_trees_close, random_tree, to_numpy64

# ---------------------------------------------------------------------------------------------
# NumPy float64 references of the published rules


def np_clip(g, delta):
    return jax.tree.map(lambda x: np.clip(x, -delta, delta), g)


def np_clip_by_norm(g, c, axis=None):
    def one(x):
        n = np.sqrt(np.sum(x * x, axis=axis, keepdims=True))
        return x * c / np.maximum(n, c)

    return jax.tree.map(one, g)


def np_block_rms(g, tau):
    return jax.tree.map(lambda x: x / max(1.0, np.sqrt(np.mean(x * x)) / tau), g)


def np_global_norm(g):
    return np.sqrt(sum(np.sum(x * x) for x in jax.tree.leaves(g)))


def np_clip_global_optax(g, c):
    n = np_global_norm(g)
    return jax.tree.map(lambda x: x * c / max(n, c), g)


def np_clip_global_torch(g, max_norm):
    # torch.nn.utils.clip_grad_norm_ (norm_type=2): total_norm = sqrt(sum of squares),
    # clip_coef = max_norm / (total_norm + 1e-6), grads *= clamp(clip_coef, max=1).
    total_norm = np_global_norm(g)
    clip_coef = max_norm / (total_norm + 1e-6)
    return jax.tree.map(lambda x: x * min(clip_coef, 1.0), g)


def _unit_axes(x):
    if x.ndim <= 1 or np.squeeze(x).ndim <= 1:
        return tuple(range(x.ndim))
    if x.ndim in (2, 3):
        return 0
    return tuple(range(x.ndim - 1))


def np_agc(g, p, lam, eps):
    def one(gx, px):
        ax = _unit_axes(gx)
        gn = np.sqrt(np.sum(gx * gx, axis=ax, keepdims=True))
        pn = np.sqrt(np.sum(px * px, axis=ax, keepdims=True))
        mx = lam * np.maximum(pn, eps)
        return np.where(gn < mx, gx, gx * mx / np.maximum(gn, 1e-6))

    return jax.tree.map(one, g, p)


# Scale 3 so that some leaves are clipped and others (the scalar, small leaves) are not.
CASES = {
    "clip": (lambda: ol.clip(1.5), lambda: optax.clip(1.5), lambda g, p: np_clip(g, 1.5)),
    "clip_by_norm": (lambda: ol.clip_by_norm(4.0), None, lambda g, p: np_clip_by_norm(g, 4.0)),
    "clip_by_block_rms": (
        lambda: ol.clip_by_block_rms(2.0),
        lambda: optax.clip_by_block_rms(2.0),
        lambda g, p: np_block_rms(g, 2.0),
    ),
    "clip_by_global_norm": (
        lambda: ol.clip_by_global_norm(5.0),
        lambda: optax.clip_by_global_norm(5.0),
        lambda g, p: np_clip_global_optax(g, 5.0),
    ),
    "adaptive_grad_clip": (
        lambda: ol.adaptive_grad_clip(0.5),
        lambda: optax.adaptive_grad_clip(0.5),
        lambda g, p: np_agc(g, p, 0.5, 1e-3),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_numpy_and_optax(name, rng):
    make, make_ref, np_fn = CASES[name]
    tx = make()
    ref = make_ref() if make_ref else None
    params = random_tree(rng)
    state = tx.init(params)
    ref_state = ref.init(params) if ref else None
    update = jax.jit(tx.update)
    ref_update = jax.jit(ref.update) if ref else None
    clipped_any = False
    for step in range(10):
        g = random_tree(rng, scale=3.0)
        u, state = update(g, state, params)
        # f32 arithmetic against float64: a few ulps of the results.
        if step < 3:
            expected = np_fn(to_numpy64(g), to_numpy64(params))
            assert_trees_close(u, expected, rtol=2e-6, atol=1e-6)
        if ref is not None:
            v, ref_state = ref_update(g, ref_state, params)
            # optax divides then multiplies (or uses a select); one rounding apart.
            assert_trees_close(u, v, rtol=2e-6, atol=1e-6)
        clipped_any |= any(
            not np.allclose(a, b)
            for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(g), strict=True)
        )
        params = ol.apply_updates(params, jax.tree.map(lambda x: -0.01 * x, u))
    assert clipped_any  # the case exercised the clipping branch


def test_clip_by_norm_axis_matches_tf_semantics(rng):
    # tf.clip_by_norm(t, c, axes=1): each row rescaled to norm <= c.
    g = {"w": jnp.asarray(rng.standard_normal((5, 7)) * 2, jnp.float32)}
    u, _ = ol.clip_by_norm(1.0, axis=1).update(g, ol.EmptyState())
    assert_trees_close(u, np_clip_by_norm(to_numpy64(g), 1.0, axis=1), rtol=2e-6, atol=1e-7)
    assert np.all(np.linalg.norm(np.asarray(u["w"]), axis=1) <= 1.0 + 1e-6)


def test_global_norm_torch_relationship(rng):
    g = random_tree(rng, scale=3.0)
    g64 = to_numpy64(g)
    n = np_global_norm(g64)
    tx = ol.clip_by_global_norm(1.0)
    u, state = tx.update(g, tx.init(g))
    torch_ref = np_clip_global_torch(g64, 1.0)
    # Clipping: ours == torch * (n + 1e-6) / n, so ours has norm exactly max_norm and torch's
    # is smaller by the factor n / (n + 1e-6).
    assert_trees_close(
        u, jax.tree.map(lambda x: x * (n + 1e-6) / n, torch_ref), rtol=2e-6, atol=1e-7
    )
    np.testing.assert_allclose(float(ol.global_norm(u)), 1.0, rtol=1e-6)
    assert np_global_norm(torch_ref) < 1.0
    np.testing.assert_allclose(float(ol.get(state, "grad_norm")), n, rtol=1e-6)
    # Inside the ball both leave the gradient untouched (torch's factor is clamped at 1).
    big = ol.clip_by_global_norm(2 * n)
    u2, _ = big.update(g, big.init(g))
    assert_trees_close(u2, np_clip_global_torch(g64, 2 * n), rtol=0, atol=0)


def test_grad_norm_readable_in_a_chain_and_scan(rng):
    params = random_tree(rng)
    tx = ol.named_chain(
        ("clip", ol.clip_by_global_norm(1.0)), ("sgd", ol.scale_by_learning_rate(0.1))
    )
    grads = jnp.stack([2.0 * jnp.ones(()), 0.5 * jnp.ones(())])

    def step(carry, scale):
        p, s = carry
        g = jax.tree.map(lambda x: scale * x, params)
        u, s = tx.update(g, s, p)
        return (ol.apply_updates(p, u), s), ol.get(s, "clip/grad_norm")

    (_, state), norms = jax.lax.scan(step, (params, tx.init(params)), grads)
    n0 = np_global_norm(to_numpy64(params))
    np.testing.assert_allclose(np.asarray(norms), [2.0 * n0, 0.5 * n0], rtol=1e-6)
    np.testing.assert_allclose(float(ol.get(state, "grad_norm")), 0.5 * n0, rtol=1e-6)


def test_zero_gradient_and_zero_norm_give_no_nan():
    tx = ol.clip_by_global_norm(jnp.asarray(0.0))  # traced values are not validated
    u, state = tx.update({"a": jnp.zeros(3)}, tx.init(None))
    assert np.all(np.asarray(u["a"]) == 0.0)
    assert float(state.grad_norm) == 0.0
    u, _ = ol.clip_by_norm(1.0).update({"a": jnp.zeros(3)}, ol.EmptyState())
    assert np.all(np.isfinite(np.asarray(u["a"])))


def test_adaptive_grad_clip_shapes_and_axis(rng):
    params = {
        "conv": jnp.asarray(rng.standard_normal((3, 3, 2, 4)), jnp.float32),
        "w": jnp.asarray(rng.standard_normal((4, 5)), jnp.float32),
        "b": jnp.asarray(rng.standard_normal(5), jnp.float32),
    }
    grads = jax.tree.map(lambda x: 5.0 * x[::-1], params)

    @jax.jit
    def both(g, p):  # one compilation for all four calls
        out = []
        for lib, axis, gg, pp in [
            (ol, None, g, p),
            (optax, None, g, p),
            (ol, 1, g["w"], p["w"]),
            (optax, 1, g["w"], p["w"]),
        ]:
            out.append(lib.adaptive_grad_clip(0.2, axis=axis).update(gg, lib.EmptyState(), pp)[0])
        return out

    u, v, u1, v1 = both(grads, params)
    assert_trees_close(u, v, rtol=2e-6, atol=1e-6)
    assert_trees_close(u1, v1, rtol=2e-6, atol=1e-6)
    with pytest.raises(ValueError, match="adaptive_grad_clip: cannot choose the unit"):
        ol.adaptive_grad_clip(0.2).update(jnp.ones((2,) * 6), ol.EmptyState(), jnp.ones((2,) * 6))
    with pytest.raises(ValueError, match="adaptive_grad_clip: this transformation needs"):
        ol.adaptive_grad_clip(0.2).update(grads, ol.EmptyState())


def test_dtypes_kept(rng):
    # Shapes and dtypes only: traced with eval_shape, nothing compiled.
    g = {"bf16": random_tree(rng, jnp.bfloat16, 3.0), "f32": random_tree(rng, jnp.float32, 3.0)}
    for name, (make, _, _) in CASES.items():
        tx = make()
        u = jax.eval_shape(lambda g, tx=tx: tx.update(g, tx.init(g), g)[0], g)
        assert jax.tree.map(lambda x: x.dtype, u) == jax.tree.map(lambda x: x.dtype, g), name
    state = ol.clip_by_global_norm(1.0).init(g)
    assert state.grad_norm.dtype == jnp.float32


def test_f64(x64, rng):
    g = random_tree(rng, dtype=np.float64, scale=3.0)
    tx = ol.clip_by_global_norm(1.0)
    u, state = tx.update(g, tx.init(g))
    assert_trees_close(u, np_clip_global_optax(to_numpy64(g), 1.0), rtol=1e-13, atol=0)
    assert state.grad_norm.dtype == jnp.float64


def test_jit_no_recompile_with_traced_threshold(rng):
    g = random_tree(rng, scale=3.0)

    def run(c, grads):
        tx = ol.chain(ol.clip(c), ol.clip_by_global_norm(c))
        return tx.update(grads, tx.init(grads))

    counted = TraceCounter(run)
    jitted = jax.jit(counted)
    eager_u, _ = run(1.0, g)
    jit_u, _ = jitted(jnp.float32(1.0), g)
    jitted(jnp.float32(2.0), g)
    assert counted.count == 1  # the second threshold reused the compiled step
    assert_trees_close(jit_u, eager_u, rtol=1e-6, atol=1e-7)


def test_abstract_init():
    spec = {"w": jax.ShapeDtypeStruct((3, 2), jnp.bfloat16)}
    state = jax.eval_shape(ol.clip_by_global_norm(1.0).init, spec)
    assert state.grad_norm.dtype == jnp.float32


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: ol.clip(-1.0), r"clip: max_delta must be >= 0, got max_delta=-1.0"),
        (lambda: ol.clip(float("inf")), r"clip: max_delta must be finite"),
        (lambda: ol.clip_by_norm(0.0), r"clip_by_norm: max_norm must be > 0"),
        (lambda: ol.clip_by_block_rms(float("nan")), r"clip_by_block_rms: threshold must be"),
        (lambda: ol.clip_by_global_norm(-2.0), r"clip_by_global_norm: max_norm must be > 0"),
        (lambda: ol.adaptive_grad_clip(1.0, eps=-1.0), r"adaptive_grad_clip: eps must be >= 0"),
        (lambda: ol.adaptive_grad_clip(float("inf")), r"adaptive_grad_clip: clipping must be"),
    ],
    ids=["clip_neg", "clip_inf", "norm_zero", "rms_nan", "global_neg", "agc_eps", "agc_inf"],
)
def test_bad_arguments(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_extra_args_ignored(rng):
    g = random_tree(rng)
    for make, _, _ in CASES.values():
        tx = make()
        u = jax.eval_shape(lambda g, tx=tx: tx.update(g, tx.init(g), g, value=1.0, metric=0.5), g)
        assert jax.tree.structure(u[0]) == jax.tree.structure(g)
