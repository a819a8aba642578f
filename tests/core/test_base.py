"""The protocol's primitives: identity, set_to_zero, stateless, apply_updates."""

import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optlab as ol
from tests.helpers import random_tree

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_fields_match_optax():
    # Field compatibility is what lets optax, flax and optlab exchange transformations.
    assert ol.GradientTransformation._fields == optax.GradientTransformation._fields


@pytest.mark.parametrize(
    ("name", "tx", "expected"),
    [
        ("identity", ol.identity(), lambda g: g),
        ("set_to_zero", ol.set_to_zero(), lambda g: 0.0 * g),
        (
            "stateless",
            ol.stateless(lambda u, p: jax.tree.map(lambda x: -2.0 * x, u)),
            lambda g: -2.0 * g,
        ),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_stateless_primitives(name, tx, expected, rng):
    grads = random_tree(rng)
    updates, state = tx.update(grads, tx.init(grads), unused_extra=1.0)
    assert state == ol.EmptyState()
    for u, g in zip(jax.tree.leaves(updates), jax.tree.leaves(grads), strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(expected(g)))
        assert u.dtype == g.dtype


def test_stateless_receives_params():
    tx = ol.stateless(lambda u, p: jax.tree.map(lambda x, y: x * y, u, p))
    u, _ = tx.update(jnp.array([2.0, 3.0]), tx.init(None), jnp.array([4.0, 5.0]))
    np.testing.assert_array_equal(np.asarray(u), [8.0, 15.0])


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32], ids=["bf16", "f32"])
def test_apply_updates_keeps_param_dtype(dtype, rng):
    params = random_tree(rng, dtype)
    updates = jax.tree.map(lambda p: jnp.ones_like(p, jnp.float32), params)
    new = ol.apply_updates(params, updates)
    expected = optax.apply_updates(params, updates)
    for n, e, p in zip(
        jax.tree.leaves(new), jax.tree.leaves(expected), jax.tree.leaves(params), strict=True
    ):
        assert n.dtype == p.dtype
        np.testing.assert_array_equal(np.asarray(n, np.float32), np.asarray(e, np.float32))


def test_apply_updates_passes_none_leaves():
    new = ol.apply_updates({"a": jnp.ones(2), "b": None}, {"a": jnp.ones(2), "b": None})
    assert new["b"] is None
    np.testing.assert_array_equal(np.asarray(new["a"]), [2.0, 2.0])


def test_optlab_transformations_run_inside_optax_chain():
    tx = optax.chain(ol.scale(2.0), optax.scale(-0.5), ol.scale_by_learning_rate(0.1))
    state = tx.init(jnp.zeros(2))
    u, _ = tx.update(jnp.array([1.0, 2.0]), state)
    np.testing.assert_allclose(np.asarray(u), [0.1, 0.2], rtol=1e-6)


def test_optlab_transformations_are_optax_extra_args_transformations():
    # optax's chain and with_extra_args_support pass value=/grad=/value_fn= only to instances of
    # GradientTransformationExtraArgs; other libraries check isinstance too.
    for tx in (ol.adam(1e-3), ol.chain(ol.identity()), ol.masked(ol.sgd(0.1), ["*"])):
        assert isinstance(tx, optax.GradientTransformationExtraArgs)
        assert isinstance(tx, ol.GradientTransformation)
    tx = ol.identity()
    assert optax.with_extra_args_support(tx) is tx


def test_states_use_optax_classes_when_it_is_installed():
    assert ol.EmptyState is optax.EmptyState
    assert ol.MaskedNode is optax.MaskedNode
    assert ol.MaskedState is optax.MaskedState


def test_optlab_works_without_optax_installed():
    # optax is optional at run time: hide it from the import system in a fresh interpreter and
    # run transformations, composition and a schedule; optlab must not try to import it again.
    code = """
import importlib.abc, sys

class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "optax" or name.startswith("optax."):
            raise ImportError("optax is hidden")

sys.meta_path.insert(0, Hide())
import optlab as ol
assert "jax" not in sys.modules, "import optlab must stay free of jax"
import jax.numpy as jnp
params = {"w": jnp.ones(3), "b": jnp.zeros(1)}
tx = ol.chain(ol.clip_by_global_norm(1.0),
              ol.masked(ol.adamw(ol.cosine_decay_schedule(0.1, 10)), ["w"]),
              ol.partition({"a": ol.sgd(0.1, momentum=0.9), "b": ol.identity()},
                           {"w": "a", "b": "b"}))
state = tx.init(params)
u, state = tx.update(params, state, params)
p = ol.apply_updates(params, u)
assert type(ol.EmptyState()).__module__ == "optlab.core.base"
assert ol.GradientTransformation.__mro__[1] is tuple
assert "optax" not in sys.modules
print(float(p["w"][0]), float(p["b"][0]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    w, b = map(float, out.stdout.split())
    # clip: g_w = 1/sqrt(3) > 0; adamw's first step is -lr (sign(g) + wd p) with wd = 1e-4;
    # sgd(0.1) then scales that direction by -0.1 (its first momentum trace is the input); b
    # has a zero gradient and goes through the identity.
    adamw_step = -0.1 * (1.0 + 1e-4 * 1.0)
    np.testing.assert_allclose(w, 1.0 - 0.1 * adamw_step, rtol=1e-6)
    assert b == 0.0
