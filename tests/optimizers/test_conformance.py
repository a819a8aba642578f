"""Registry-driven conformance: every first-order optimizer converges, tolerates extra
arguments, takes a traced learning rate (no recompiles, vmappable), trains an nnx model inside
``flax.nnx.Optimizer`` and mixes with optax in both directions."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import optlab as ol
from optlab.optimizers.registry import REGISTRY, make
from tests.helpers import TraceCounter, random_tree

NAMES = sorted(REGISTRY)


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


# The convergence benchmark's quadratic, for which the registry's learning rates are tuned.
_Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((10, 10)))
_A = jnp.asarray((_Q * np.logspace(0, 2, 10)) @ _Q.T, jnp.float32)


def quadratic(x):  # condition number 100, rotated, minimum 0 at all ones
    d = x - 1.0
    return 0.5 * d @ (_A @ d)


def _descend(name, problem, f, x0, steps):
    tx = make(name, problem)

    def step(carry, _):
        x, s = carry
        u, s = tx.update(jax.grad(f)(x), s, x)
        return (ol.apply_updates(x, u), s), None

    (x, _), _ = jax.lax.scan(step, (x0, tx.init(x0)), None, length=steps)
    return f(x)


def test_converges_on_quadratic_and_rosenbrock():
    """With the registry's tuned learning rates, 10000 steps (a scan: milliseconds once
    compiled) cut both the quadratic's value and Rosenbrock's (24.2 at (-1.2, 1)) by 100x, for
    every optimizer. The slowest, adadelta and rmsprop, need most of those steps. Every
    optimizer's two problems are in one compiled function: compiling it costs less than half
    of compiling one function per optimizer."""
    x_quad, x_rosen = jnp.zeros(10), jnp.array([-1.2, 1.0])

    @jax.jit
    def run():
        return {
            name: (
                _descend(name, "quadratic", quadratic, x_quad, 10_000),
                _descend(name, "rosenbrock", rosenbrock, x_rosen, 10_000),
            )
            for name in NAMES
        }

    f0_quad, f0_rosen = float(quadratic(x_quad)), float(rosenbrock(x_rosen))
    values = {name: (float(q), float(r)) for name, (q, r) in run().items()}
    slow = {n: v for n, v in values.items() if not (v[0] < f0_quad / 100 and v[1] < f0_rosen / 100)}
    assert not slow, f"(quadratic, rosenbrock) not cut 100x: {slow}"


@pytest.mark.parametrize("name", NAMES)
def test_extra_arguments_are_ignored(name, rng):
    params, grads = random_tree(rng), random_tree(rng)
    tx = make(name)
    state = tx.init(params)
    plain, _ = tx.update(grads, state, params)
    extra, _ = tx.update(
        grads,
        state,
        params,
        value=jnp.asarray(1.0),
        grad=grads,
        value_fn=lambda p: 0.0,
        metric=0.5,
        something_new="ignored",
    )
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(extra), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_traced_learning_rate_no_recompile_and_vmap(rng):
    """Every optimizer's two steps from one traced learning rate, all in one compiled function
    (one compilation for all of them instead of one each): new rates do not recompile, and the
    vmapped function gives the steps of the single calls."""
    params, grads = random_tree(rng), random_tree(rng)

    def two_steps(lr):
        out = {}
        for name in NAMES:
            tx = make(name, learning_rate=lr)
            state = tx.init(params)
            u, state = tx.update(grads, state, params)
            u, state = tx.update(grads, state, ol.apply_updates(params, u))
            out[name] = u
        return out

    counter = TraceCounter(two_steps)
    jitted = jax.jit(counter)
    lrs = jnp.array([0.01, 0.02, 0.05], jnp.float32)
    singles = [jitted(lr) for lr in lrs]
    assert counter.count == 1, "recompiled for a new learning rate"
    # compiled: an eager vmap would compile each of the updates' operations on its own
    swept = jax.jit(jax.vmap(two_steps))(lrs)
    for name in NAMES:
        for i, single in enumerate(singles):
            for a, b in zip(
                jax.tree.leaves(jax.tree.map(lambda x, i=i: x[i], swept[name])),
                jax.tree.leaves(single[name]),
                strict=True,
            ):
                # the same float32 computation, batched or not: only fusion order may differ.
                np.testing.assert_allclose(
                    np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7, err_msg=name
                )
        # the learning rate really is used: different rates give different steps
        first, last = singles[0][name], singles[2][name]
        assert not np.allclose(
            np.asarray(jax.tree.leaves(first)[0]), np.asarray(jax.tree.leaves(last)[0])
        ), name


def test_trains_nnx_linear_inside_nnx_optimizer():
    """A tiny linear regression (exactly solvable): 100 steps of a compiled nnx train step
    with the registry's default (MLP) hyperparameters lower the loss by at least 10%, for every
    optimizer (all in one compiled function: one compilation instead of one each)."""
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((32, 4)), jnp.float32)
    y = x @ jnp.asarray(rng.standard_normal((4, 2)), jnp.float32) + 0.5
    models = {name: nnx.Linear(4, 2, rngs=nnx.Rngs(0)) for name in NAMES}
    opts = {name: nnx.Optimizer(models[name], make(name), wrt=nnx.Param) for name in NAMES}

    def loss_fn(m):
        return jnp.mean((m(x) - y) ** 2)

    def body(i, carry):
        model, opt = carry
        grads = nnx.grad(loss_fn)(model)
        opt.update(model, grads)
        return model, opt

    @nnx.jit
    def train(models, opts):
        for name in NAMES:
            nnx.fori_loop(0, 100, body, (models[name], opts[name]))
        return {name: loss_fn(models[name]) for name in NAMES}

    before = {name: float(loss_fn(m)) for name, m in models.items()}
    after = {name: float(v) for name, v in train(models, opts).items()}
    assert len(set(before.values())) == 1  # every optimizer starts from the same model
    slow = {n: (before[n], after[n]) for n in NAMES if not after[n] < 0.9 * before[n]}
    assert not slow, f"(before, after) less than 10% lower: {slow}"


@pytest.mark.parametrize("name", NAMES)
def test_mixes_with_optax_chain_both_ways(name, rng):
    """optlab inside optax.chain and optax inside optlab.chain give the updates of the pure
    optax chain (optax's function of the same name with the same arguments)."""
    spec = REGISTRY[name]
    ours = spec.factory(**spec.defaults)
    theirs = getattr(optax, spec.optax_name)(**spec.defaults)
    chains = [
        optax.chain(optax.clip_by_global_norm(1.0), ours),
        ol.chain(optax.clip_by_global_norm(1.0), ours),
    ]
    reference = optax.chain(optax.clip_by_global_norm(1.0), theirs)
    params = random_tree(rng)
    states = [c.init(params) for c in chains]
    ref_state = reference.init(params)
    for _ in range(10):
        g = random_tree(rng)
        expected, ref_state = reference.update(g, ref_state, params)
        for k, c in enumerate(chains):
            u, states[k] = c.update(g, states[k], params)
            for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(expected), strict=True):
                # float32, algebraically equal formulas: see common.check_against_optax.
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=1e-7)


def test_registry_is_complete_and_buildable():
    exported = {
        "sgd",
        "adagrad",
        "rmsprop",
        "adadelta",
        "adam",
        "adamw",
        "nadam",
        "nadamw",
        "amsgrad",
        "adamax",
    }
    assert exported <= {s.factory.__name__ for s in REGISTRY.values()}
    for spec in REGISTRY.values():
        assert spec.optax_name is not None and hasattr(optax, spec.optax_name)
        assert set(spec.tuned) == {"quadratic", "rosenbrock"}
        assert isinstance(make(spec.name), ol.GradientTransformation)
    with pytest.raises(ValueError, match=r"make: name must be one of .*got name='adma'"):
        make("adma")
