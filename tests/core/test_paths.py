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
        paths.resolve_labels("f", {"*bias": "nd"}, {"w": jnp.ones(1)})


def test_mask_prefix_broadcasts_over_subtree():
    tree = {"enc": {"a": jnp.ones(1), "b": jnp.ones(1)}, "head": jnp.ones(1)}
    mask = paths.resolve_mask("f", {"enc": True, "head": False}, tree)
    assert jax.tree.leaves(mask) == [True, True, False]


def test_mask_from_patterns():
    tree = {"enc": {"a": jnp.ones(1)}, "head": jnp.ones(1)}
    assert paths.resolve_mask("f", ["enc/*"], tree) == {"enc": {"a": True}, "head": False}
