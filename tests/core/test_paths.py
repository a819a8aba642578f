"""Path strings, glob labels and masks on dicts, lists and nnx.State."""

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from optlab.core import paths


def test_paths_of_nested_containers():
    tree = {"a": [jnp.ones(1), {"b": jnp.ones(1)}], "c": jnp.ones(1)}
    assert paths.leaf_paths(tree) == ["a/0", "a/1/b", "c"]


def test_paths_of_nnx_state_drop_variable_value():
    model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    assert sorted(paths.leaf_paths(nnx.state(model, nnx.Param))) == ["bias", "kernel"]


def test_first_matching_pattern_wins():
    tree = {"dense": {"kernel": jnp.ones(2), "bias": jnp.ones(2)}}
    labels = paths.resolve_labels("f", {"*bias": "nd", "dense/*": "d", "*": "x"}, tree)
    assert labels == {"dense": {"kernel": "d", "bias": "nd"}}


def test_unmatched_path_asks_for_a_catch_all():
    with pytest.raises(ValueError, match=r"no pattern matches the parameter path 'w'.*'\*' last"):
        paths.resolve_labels("f", {"*bias": "nd"}, {"w": jnp.ones(1), "bias": jnp.ones(1)})


@pytest.mark.parametrize(
    "resolve",
    [
        lambda t: paths.resolve_mask("masked", ["*kernel"], t),
        lambda t: paths.resolve_mask("masked", "*kernel", t, static=True),
        lambda t: paths.resolve_labels("partition", {"*kernel": "a", "*": "b"}, t),
    ],
    ids=["mask", "static-mask", "labels"],
)
def test_pattern_matching_no_parameter_lists_the_paths(resolve):
    tree = {"w": jnp.ones(1), "layer": {"b": jnp.ones(1)}}
    with pytest.raises(
        ValueError, match=r"pattern '\*kernel' matches no parameter; .* 'w', 'layer/b'|'layer/b'"
    ):
        resolve(tree)


def test_catch_all_pattern_that_catches_nothing_is_fine():
    tree = {"bias": jnp.ones(1)}
    assert paths.resolve_labels("f", {"*bias": "nd", "*": "d"}, tree) == {"bias": "nd"}


def test_patterns_on_an_empty_tree_are_not_an_error():
    assert paths.resolve_mask("f", ["*kernel"], {}) == {}


@pytest.mark.parametrize(
    ("mask", "error"),
    [
        (jnp.array([True, False]), TypeError),
        (1.0, TypeError),
        ("", TypeError),
        (["*kernel", 3], TypeError),
        ({"w": jnp.array([True, False])}, TypeError),
    ],
    ids=["array", "number", "empty-pattern", "mixed-list", "array-leaf"],
)
def test_static_mask_says_what_a_mask_may_be(mask, error):
    with pytest.raises(error, match=r"masked: mask .*pytree of Python booleans"):
        paths.resolve_mask("masked", mask, {"w": jnp.ones(2)}, static=True)


def test_static_prefix_mask_is_kept_whole():
    tree = {"enc": {"a": jnp.ones(1), "b": jnp.ones(1)}, "head": jnp.ones(1)}
    assert paths.resolve_mask("f", {"enc": False, "head": True}, tree, static=True) == {
        "enc": False,
        "head": True,
    }


def test_callable_pytree_is_a_mask_tree_not_a_function():
    class Module:  # an equinox-style callable pytree
        def __init__(self, w):
            self.w = w

        def __call__(self, x):
            return self.w * x

    jax.tree_util.register_pytree_node(Module, lambda m: ((m.w,), None), lambda _, c: Module(*c))
    assert not paths.is_mask_function(Module(False))
    assert paths.is_mask_function(lambda p: p)


def test_mask_prefix_broadcasts_over_subtree():
    tree = {"enc": {"a": jnp.ones(1), "b": jnp.ones(1)}, "head": jnp.ones(1)}
    mask = paths.resolve_mask("f", {"enc": True, "head": False}, tree)
    assert jax.tree.leaves(mask) == [True, True, False]


def test_mask_from_patterns():
    tree = {"enc": {"a": jnp.ones(1)}, "head": jnp.ones(1)}
    assert paths.resolve_mask("f", ["enc/*"], tree) == {"enc": {"a": True}, "head": False}
