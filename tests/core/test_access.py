"""optlab.get and named_values: reading named values out of nested states."""

import jax
import jax.numpy as jnp
import pytest

import optlab as ol


def _state():
    tx = ol.named_chain(
        ("sched", ol.scale_by_schedule(lambda n: 1.0)),
        ("lr", ol.scale_by_learning_rate(lambda n: 0.1 * (n + 1))),
    )
    state = tx.init(jnp.zeros(2))
    for _ in range(3):
        _, state = tx.update(jnp.ones(2), state)
    return state


def test_get_reads_the_last_learning_rate():
    assert float(ol.get(_state(), "learning_rate")) == pytest.approx(0.3)


def test_equal_duplicates_are_returned():
    # Both counters advanced together: the ambiguous name has one value.
    assert int(ol.get(_state(), "count")) == 3


def test_trailing_path_selects_one_entry():
    assert int(ol.get(_state(), "sched/count")) == 3


def test_different_duplicates_list_their_paths():
    state = ({"count": jnp.asarray(1)}, {"count": jnp.asarray(2)})
    with pytest.raises(KeyError, match=r"'count' occurs 2 times.*0/count, 1/count"):
        ol.get(state, "count")


def test_traced_duplicates_are_ambiguous_inside_jit():
    with pytest.raises(KeyError, match="different \\(or traced\\) values"):
        jax.jit(lambda s: ol.get(s, "count"))(_state())


def test_absent_name_lists_what_is_there():
    with pytest.raises(KeyError, match=r"no value named 'grad_norm'.*lr/learning_rate"):
        ol.get(_state(), "grad_norm")


def test_named_values_lists_every_scalar():
    assert set(ol.named_values(_state())) == {"sched/count", "lr/count", "lr/learning_rate"}
