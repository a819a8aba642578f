"""optlab and optax transformations mix in either library's chain, and extra arguments
(``value``, ``grad``, ``value_fn``) reach every transformation that reads them (issue 17).

Each test runs the same transformations in optax's ``chain`` and in optlab's: mixing must not
change a single number, so the two trajectories are compared exactly."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optlab as ol


def f(x):
    return jnp.sum((x - jnp.asarray([1.0, -2.0])) ** 2) + 0.1 * jnp.sum(x**4)


X0 = jnp.asarray([3.0, 3.0])


def run(tx, steps=8, **fixed):
    linesearch = fixed.get("linesearch", False)

    @jax.jit
    def step(grad, state, x, loss):
        extra = {"grad": grad, "value_fn": f} if linesearch else {}
        return tx.update(grad, state, x, value=loss, **extra)

    x = X0
    state = tx.init(x)
    for t in range(steps):
        value, grad = jax.value_and_grad(f)(x)
        # a plateau: the loss passed to the controller stops improving after 3 steps
        loss = fixed.get("loss", lambda t, v: v)(t, value)
        u, state = step(grad, state, x, loss)
        x = ol.apply_updates(x, u)
    return x, state


def plateau(t, v):
    return jnp.where(t < 3, 10.0 - t, 7.0)


@functools.cache
def reference(make, *args, **fixed):
    """The trajectory of ``make(*args)`` (transformations in their own library's chain), run once
    and shared by the parametrizations of the outer chain that compare against it."""
    return run(make(*args), **fixed)


def optlab_plateau_in_optlab_chain():
    return ol.chain(ol.sgd(0.01), ol.reduce_on_plateau(0.5, 1, 0.0))


def optax_plateau():
    return optax.contrib.reduce_on_plateau(factor=0.5, patience=1, rtol=1e-3)


def optax_plateau_in_optax_chain():
    return optax.chain(optax.sgd(0.01), optax_plateau())


@pytest.mark.parametrize("outer", [optax.chain, ol.chain], ids=["optax.chain", "ol.chain"])
def test_optlab_reduce_on_plateau_gets_the_value_in_either_chain(outer):
    tx = outer(optax.sgd(0.01), ol.reduce_on_plateau(factor=0.5, patience=1, rtol=0.0))
    x, state = run(tx, loss=plateau)
    # steps 3..7 see 7.0 (no improvement on the best 7.0 from step 3): one reduction per
    # window of patience 1 after the first non-improving call: 1, 0.5 at t=4, 0.25 at t=5...
    scale = float(ol.get(state, "scale"))
    assert scale == 0.5**4
    ref_x, _ = reference(optlab_plateau_in_optlab_chain, loss=plateau)
    np.testing.assert_array_equal(np.asarray(x), np.asarray(ref_x))


@pytest.mark.parametrize("outer", [optax.chain, ol.chain], ids=["optax.chain", "ol.chain"])
def test_optax_reduce_on_plateau_gets_the_value_in_either_chain(outer):
    x, state = run(outer(ol.sgd(0.01), optax_plateau()), loss=plateau)
    ref_x, ref_state = reference(optax_plateau_in_optax_chain, loss=plateau)
    assert float(state[1].scale) == float(ref_state[1].scale) < 1.0
    np.testing.assert_allclose(np.asarray(x), np.asarray(ref_x), rtol=1e-6)


def in_own_chain(lib, search):
    own_chain = ol.chain if lib is ol else optax.chain
    return own_chain(optax.sgd(1.0), search(lib))


@pytest.mark.parametrize("outer", [optax.chain, ol.chain], ids=["optax.chain", "ol.chain"])
@pytest.mark.parametrize(
    "search",
    [
        lambda lib: lib.scale_by_backtracking_linesearch(max_backtracking_steps=20),
        lambda lib: lib.scale_by_zoom_linesearch(max_linesearch_steps=20),
    ],
    ids=["backtracking", "zoom"],
)
@pytest.mark.parametrize("lib", [ol, optax], ids=["optlab-search", "optax-search"])
def test_line_search_gets_value_grad_value_fn_in_either_chain(outer, search, lib):
    # The same line search inside the other library's chain takes the same steps as inside
    # its own library's chain.
    x, state = run(outer(ol.sgd(1.0), search(lib)), linesearch=True)
    ref_x, _ = reference(in_own_chain, lib, search, linesearch=True)
    np.testing.assert_allclose(np.asarray(x), np.asarray(ref_x), rtol=1e-6, atol=1e-7)
    assert float(f(x)) < 0.1 * float(f(X0))
    assert int(ol.get(state, "num_linesearch_steps")) >= 1


def test_nnx_optimizer_and_optax_tree_helpers_accept_optlab_states():
    tx = optax.chain(ol.clip_by_global_norm(1.0), ol.adam(0.1))
    state = tx.init({"w": jnp.ones(3)})
    # optax's tree helpers find optlab's state fields (two counts: Adam's and the rate's)
    assert float(optax.tree.get(state, "grad_norm")) == 0.0
    counts = optax.tree_utils.tree_get_all_with_path(state, "count")
    assert [int(c) for _, c in counts] == [0, 0]
    updated = optax.tree_utils.tree_map_params(tx, lambda p: p * 0, state)
    assert jax.tree.structure(updated) == jax.tree.structure(state)
