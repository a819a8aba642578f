"""Composing transformations: chains, masks, per-parameter groups and frozen parameters."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import jax

from optlab.core.base import (
    GradientTransformation,
    Params,
    PyTree,
    set_to_zero,
)
from optlab.core.paths import LabelSpec, resolve_labels, resolve_mask


def _forwards_extra_args(tx: Any) -> bool:
    """Whether ``tx.update`` accepts ``**extra_args`` (optlab's always do; plain optax ones not)."""
    if isinstance(tx, GradientTransformation):
        return True
    try:
        sig = inspect.signature(tx.update)
    except (TypeError, ValueError):
        return True
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())


def with_extra_args_support(tx: Any) -> GradientTransformation:
    """Wraps any transformation so that its ``update`` accepts extra keyword arguments.

    optlab transformations already accept them and are returned as they are (re-wrapped in
    optlab's ``GradientTransformation``); an optax transformation whose ``update`` takes no
    ``**extra_args`` gets an ``update`` that drops them. The check runs once, here, not per
    step. optax has a function of the same name and purpose.

    Args:
      tx: an optlab or optax gradient transformation (anything with ``init`` and ``update``).

    Returns:
      A transformation whose ``update(updates, state, params=None, **extra_args)`` is safe to
      call with ``value``, ``grad``, ``value_fn``, ``metric``...

    Examples:
      >>> import jax.numpy as jnp
      >>> import optax
      >>> import optlab as ol
      >>> tx = ol.with_extra_args_support(optax.scale(2.0))
      >>> u, _ = tx.update(jnp.ones(1), tx.init(jnp.ones(1)), None, value=1.0)
      >>> print(u)
      [2.]
    """
    if not (hasattr(tx, "init") and hasattr(tx, "update")):
        raise TypeError(
            f"expected a gradient transformation with init and update, got {type(tx).__name__}"
        )
    if _forwards_extra_args(tx):
        return GradientTransformation(tx.init, tx.update)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        return tx.update(updates, state, params)

    return GradientTransformation(tx.init, update_fn)


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Applies transformations one after another: :math:`u = T_n(\\cdots T_1(g))`.

    Each transformation receives the previous one's output, the same ``params`` and the same
    extra keyword arguments. optax transformations may be mixed in; those that do not take
    extra arguments are called without them. The state is a tuple of the inner states.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.chain(ol.scale(2.0), ol.scale(-0.5))
      >>> u, _ = tx.update(jnp.array([1.0, 3.0]), tx.init(jnp.zeros(2)))
      >>> print(u)
      [-1. -3.]
    """
    updaters = [with_extra_args_support(t).update for t in transforms]

    def init_fn(params):
        return tuple(t.init(params) for t in transforms)

    def update_fn(updates, state, params=None, **extra_args):
        if len(state) != len(transforms):
            raise ValueError(
                f"chain: the state has {len(state)} entries but the chain has "
                f"{len(transforms)} transformations; was it initialized by another chain?"
            )
        new_state = []
        for update, s in zip(updaters, state, strict=True):
            updates, s = update(updates, s, params, **extra_args)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init_fn, update_fn)


def named_chain(*transforms: tuple[str, GradientTransformation]) -> GradientTransformation:
    """Like :func:`chain`, with each state stored under a name (``{"clip": ..., "adam": ...}``).

    The names become path components, so ``optlab.get(state, "clip/grad_norm")`` reads one
    entry unambiguously.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.named_chain(("double", ol.scale(2.0)), ("lr", ol.scale_by_learning_rate(0.1)))
      >>> state = tx.init(jnp.zeros(1))
      >>> sorted(state)
      ['double', 'lr']
    """
    names = [n for n, _ in transforms]
    if len(set(names)) != len(names):
        raise ValueError(f"named_chain: names must be unique, got {names}")
    updaters = [(n, with_extra_args_support(t).update) for n, t in transforms]

    def init_fn(params):
        return {n: t.init(params) for n, t in transforms}

    def update_fn(updates, state, params=None, **extra_args):
        new_state = {}
        for name, update in updaters:
            updates, new_state[name] = update(updates, state[name], params, **extra_args)
        return updates, new_state

    return GradientTransformation(init_fn, update_fn)


class MaskedNode(NamedTuple):
    """Stands in for a parameter that a masked transformation does not see (holds no leaves)."""


class MaskedState(NamedTuple):
    """The state of :func:`masked`: the inner state, over the masked-in leaves only."""

    inner_state: Any


def _is_masked_node(x: Any) -> bool:
    return isinstance(x, MaskedNode)


def _mask_leaves(tree: PyTree, flags: list[bool]) -> PyTree:
    leaves, treedef = jax.tree.flatten(tree)
    return treedef.unflatten([x if f else MaskedNode() for x, f in zip(leaves, flags, strict=True)])


def masked(
    inner: GradientTransformation,
    mask: PyTree | Callable[[Params], PyTree] | list[str] | str,
) -> GradientTransformation:
    """Applies ``inner`` to the leaves where ``mask`` is true; the others pass through unchanged.

    ``inner`` sees only the masked-in leaves (the others are replaced by an empty
    ``MaskedNode``), so it allocates no state for them.

    Args:
      inner: the transformation to apply.
      mask: a pytree of booleans with the structure of the parameters (or a prefix of it), a
        function ``params -> mask``, or glob patterns on parameter paths (``"*kernel"``,
        ``["encoder/*", "*bias"]``).

    Returns:
      A transformation whose state is ``MaskedState(inner_state)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.masked(ol.scale(0.0), {"w": True, "b": False})
      >>> params = {"w": jnp.ones(2), "b": jnp.ones(1)}
      >>> u, _ = tx.update(params, tx.init(params))
      >>> print(u["w"], u["b"])
      [0. 0.] [1.]
    """
    inner_update = with_extra_args_support(inner).update

    def flags_for(tree):
        return [bool(f) for f in jax.tree.leaves(resolve_mask("masked", mask, tree))]

    def init_fn(params):
        return MaskedState(inner.init(_mask_leaves(params, flags_for(params))))

    def update_fn(updates, state, params=None, **extra_args):
        flags = flags_for(params if params is not None else updates)
        leaves, treedef = jax.tree.flatten(updates)
        if len(flags) != len(leaves):
            raise ValueError(
                f"masked: the mask covers {len(flags)} leaves but the updates have {len(leaves)}"
            )
        masked_params = None if params is None else _mask_leaves(params, flags)
        new, inner_state = inner_update(
            _mask_leaves(updates, flags), state.inner_state, masked_params, **extra_args
        )
        new_leaves = jax.tree.leaves(new, is_leaf=_is_masked_node)
        out = [n if f else u for n, u, f in zip(new_leaves, leaves, flags, strict=True)]
        return treedef.unflatten(out), MaskedState(inner_state)

    return GradientTransformation(init_fn, update_fn)


class PartitionState(NamedTuple):
    """The state of :func:`partition`: one masked inner state per label."""

    inner_states: dict[Hashable, MaskedState]


def partition(
    transforms: Mapping[Hashable, GradientTransformation],
    labels: LabelSpec,
) -> GradientTransformation:
    """Applies a different transformation to each group of parameters.

    Each leaf carries one label; the transformation of that label updates it and holds its
    state (the others hold none for it).

    Args:
      transforms: label -> transformation.
      labels: a pytree of labels with the structure of the parameters (or a prefix), a
        function ``params -> labels``, or a mapping from glob patterns on parameter paths to
        labels, first match winning: ``{"*bias": "no_decay", "*": "decay"}``. Paths are keys
        joined by ``/`` and read the same on dicts and on ``flax.nnx.State``.

    Returns:
      A transformation whose state is ``PartitionState({label: MaskedState})``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> tx = ol.partition({"fast": ol.scale(-1.0), "slow": ol.scale(-0.1)},
      ...                   {"*bias": "slow", "*": "fast"})
      >>> params = {"kernel": jnp.ones(2), "bias": jnp.ones(1)}
      >>> u, _ = tx.update(params, tx.init(params))
      >>> print(u["kernel"], u["bias"])
      [-1. -1.] [-0.1]
    """
    transforms = dict(transforms)

    def labels_of(tree):
        tree_labels = jax.tree.leaves(resolve_labels("partition", labels, tree))
        unknown = sorted({str(label) for label in tree_labels} - {str(k) for k in transforms})
        if unknown:
            raise ValueError(
                f"partition: labels {unknown} have no transformation; transforms has "
                f"{sorted(map(str, transforms))}"
            )
        return tree_labels

    # Adapted once here, so the per-label ``masked`` built below hits the fast path.
    adapted = {label: with_extra_args_support(tx) for label, tx in transforms.items()}

    def masks_of(tree):
        """One boolean mask per label, from a single resolution of the labels."""
        tree_labels = labels_of(tree)
        structure = jax.tree.structure(tree)
        return {
            label: jax.tree.unflatten(structure, [lab == label for lab in tree_labels])
            for label in transforms
        }

    def init_fn(params):
        masks = masks_of(params)
        return PartitionState(
            {label: masked(tx, masks[label]).init(params) for label, tx in adapted.items()}
        )

    def update_fn(updates, state, params=None, **extra_args):
        masks = masks_of(params if params is not None else updates)
        new_states = {}
        for label, tx in adapted.items():
            updates, new_states[label] = masked(tx, masks[label]).update(
                updates, state.inner_states[label], params, **extra_args
            )
        return updates, PartitionState(new_states)

    return GradientTransformation(init_fn, update_fn)


def freeze(
    mask: PyTree | Callable[[Params], PyTree] | list[str] | str,
    inner: GradientTransformation | None = None,
) -> GradientTransformation:
    """Zeros the updates of frozen parameters (where ``mask`` is true).

    ``freeze(mask)`` alone, as in optax, is a stateless transformation to put in a chain.
    ``freeze(mask, inner)`` applies ``inner`` to the trainable parameters only, so ``inner``
    allocates no state (no moments) for the frozen ones.

    Args:
      mask: which parameters are frozen: a pytree of booleans, a function of the params, or
        glob patterns on parameter paths.
      inner: the optimizer of the trainable parameters, if any.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> params = {"encoder": jnp.ones(3), "head": jnp.ones(2)}
      >>> tx = ol.freeze("encoder*", ol.scale_by_learning_rate(0.1))
      >>> u, _ = tx.update(params, tx.init(params))
      >>> print(u["encoder"], u["head"])
      [0. 0. 0.] [-0.1 -0.1]
    """
    if inner is None:
        return masked(set_to_zero(), mask)

    def labels(tree):
        return jax.tree.map(
            lambda frozen: "frozen" if frozen else "trainable", resolve_mask("freeze", mask, tree)
        )

    return partition({"frozen": set_to_zero(), "trainable": inner}, labels)
