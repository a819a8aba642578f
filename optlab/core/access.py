"""Reading named values (learning rate, step count, gradient norm...) out of any state.

States are trees of NamedTuples, tuples (``chain``) and dicts (``named_chain``, partitions,
injected hyperparameters). Every NamedTuple field and dict key has a path such as
``"1/learning_rate"`` or ``"clip/grad_norm"``; :func:`get` finds a value by its name or by any
trailing part of its path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jax
import numpy as np

from optlab.core.base import OptState
from optlab.core.validation import check_state, check_str


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _walk(node: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Yields ``(path, value)`` for every named entry, descending through containers."""
    if _is_namedtuple(node):
        items = [(f, getattr(node, f)) for f in node._fields]
    elif isinstance(node, dict):
        items = [(str(k), v) for k, v in node.items()]
    elif isinstance(node, list | tuple):
        items = [(str(i), v) for i, v in enumerate(node)]
        for key, value in items:  # positions are not names: only descend
            yield from _walk(value, (*path, key))
        return
    else:
        return
    for key, value in items:
        yield (*path, key), value
        yield from _walk(value, (*path, key))


def named_values(state: OptState) -> dict[str, Any]:
    """Every named scalar of a state, keyed by its full path (``"0/count"``...).

    Useful for logging everything an optimizer exposes at once.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.chain(ol.scale_by_schedule(lambda n: 0.1), ol.identity())
      >>> sorted(named_values(tx.init(jnp.zeros(2))))
      ['0/count']
    """
    return {
        "/".join(p): v
        for p, v in _walk(state, ())
        if isinstance(v, jax.Array | np.ndarray | np.generic | int | float) and np.ndim(v) == 0
    }


def _child(node: Any, key: str) -> Any:
    if _is_namedtuple(node):
        return getattr(node, key)
    if isinstance(node, dict):
        return {str(k): v for k, v in node.items()}[key]
    return node[int(key)]


def _is_injected(node: Any) -> bool:
    return (
        _is_namedtuple(node)
        and "hyperparams" in node._fields
        and "inner_state" in node._fields
        and isinstance(node.hyperparams, dict)
    )


def _drop_shadowed_by_injection(
    state: OptState, matches: list[tuple[tuple[str, ...], Any]]
) -> list[tuple[tuple[str, ...], Any]]:
    """Keeps an injected hyperparameter (or step count) over its copies in the inner state.

    A state made by ``inject_hyperparams`` (any NamedTuple with a ``hyperparams`` dict and an
    ``inner_state``, optax's included) holds the value in force at ``.../hyperparams/x`` and
    ``.../count``; the wrapped transformation may record the same name inside
    ``.../inner_state/...`` (``scale_by_learning_rate`` records ``learning_rate``). The wrapper's
    entry is the one ``set_hyperparams`` overwrites, so it wins.
    """
    paths = {p for p, _ in matches}

    def shadowed(path: tuple[str, ...]) -> bool:
        node = state
        for i, part in enumerate(path[:-1]):
            if part == "inner_state" and _is_injected(node):
                prefix, key = path[:i], path[-1]
                if (*prefix, "hyperparams", key) in paths or (
                    key in node._fields and (*prefix, key) in paths
                ):
                    return True
            node = _child(node, part)
        return False

    kept = [(p, v) for p, v in matches if not shadowed(p)]
    return kept if kept else matches


def find(state: OptState, name: str) -> list[tuple[str, Any]]:
    """Every ``(path, value)`` whose path ends with ``name`` (a field name or a trailing
    ``/``-separated path), in the order of the state; empty when there is none.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.chain(ol.scale_by_schedule(lambda n: 0.1), ol.scale_by_schedule(lambda n: 1.0))
      >>> [path for path, _ in find(tx.init(jnp.zeros(2)), "count")]
      ['0/count', '1/count']
    """
    wanted = tuple(part for part in name.split("/") if part)
    if not wanted:
        return []
    return [("/".join(p), v) for p, v in _walk(state, ()) if p[-len(wanted) :] == wanted]


def get(state: OptState, name: str) -> Any:
    """Reads one named value out of an optimizer state, however deeply chained.

    ``name`` is a field name (``"learning_rate"``, ``"count"``, ``"grad_norm"``...) or a
    trailing part of its path (``"1/count"``, ``"clip/grad_norm"``). When the name occurs more
    than once, the value is returned if every occurrence holds the same concrete value (the
    step counts of a chain advance together); otherwise, or when the values are traced inside
    ``jit``, a ``KeyError`` lists the paths to choose from. Under ``inject_hyperparams`` the
    injected value (``hyperparams/learning_rate``, the wrapper's ``count``) is returned in
    preference to the copies the wrapped transformation records in its ``inner_state``: it is
    the value in force (the one ``set_hyperparams`` overwrites), also inside ``jit``.

    Args:
      state: any optimizer state (``tx.init(params)`` or the state after updates).
      name: a field name or a ``/``-separated trailing path.

    Returns:
      The value stored there (usually a scalar array).

    Raises:
      TypeError: ``state`` is not a state (a NamedTuple, tuple or dict) or ``name`` not a
        string.
      KeyError: the name is absent (the message lists the names that are there) or ambiguous.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.scale_by_schedule(lambda n: 0.1 * (n + 1))
      >>> state = tx.init(jnp.zeros(2))
      >>> _, state = tx.update(jnp.ones(2), state)
      >>> print(ol.get(state, "count"))
      1
    """
    check_state("get", "state", state)
    check_str("get", "name", name)
    wanted = tuple(part for part in name.split("/") if part)
    if not wanted:
        raise KeyError("get: name must be a non-empty field name or path, got ''")
    matches = [(p, v) for p, v in _walk(state, ()) if p[-len(wanted) :] == wanted]
    if not matches:
        names = sorted({"/".join(p) for p, _ in _walk(state, ())})
        raise KeyError(
            f"get: no value named {name!r} in this state; the state holds: "
            f"{', '.join(names) if names else '(nothing: the state is empty)'}"
        )
    if len(matches) > 1:
        matches = _drop_shadowed_by_injection(state, matches)
    if len(matches) == 1:
        return matches[0][1]
    values = [v for _, v in matches]
    if all(not isinstance(v, jax.core.Tracer) for v in jax.tree.leaves(values)):
        first = jax.tree.leaves(values[0])
        same = all(
            jax.tree.structure(v) == jax.tree.structure(values[0])
            and all(
                np.array_equal(np.asarray(a), np.asarray(b))
                for a, b in zip(jax.tree.leaves(v), first, strict=True)
            )
            for v in values[1:]
        )
        if same:
            return values[0]
    paths = ", ".join("/".join(p) for p, _ in matches)
    raise KeyError(
        f"get: {name!r} occurs {len(matches)} times with different (or traced) values, at: "
        f"{paths}; pass a longer trailing path, e.g. get(state, {'/'.join(matches[0][0])!r})"
    )
