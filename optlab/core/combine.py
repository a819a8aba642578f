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
    gated_update,
    is_extra_args_transformation,
    optax_module,
    register_gated,
    set_to_zero,
)
from optlab.core.paths import LabelSpec, resolve_labels, resolve_mask
from optlab.core.validation import (
    check_bool,
    check_mask_spec,
    check_transformation,
    describe_structure_difference,
)


def _forwards_extra_args(tx: Any) -> bool:
    """Whether ``tx.update`` accepts ``**extra_args``: optlab's and optax's
    ``GradientTransformationExtraArgs`` do; others are asked through their signature."""
    if is_extra_args_transformation(tx):
        return True
    try:
        sig = inspect.signature(tx.update)
    except (TypeError, ValueError):
        return True
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())


def with_extra_args_support(tx: Any) -> GradientTransformation:
    """Wraps any transformation so that its ``update`` accepts extra keyword arguments.

    optlab transformations (and optax's ``GradientTransformationExtraArgs``) already accept
    them and are returned as they are (re-wrapped in optlab's ``GradientTransformation``); an
    optax ``GradientTransformation`` whose ``update`` takes no ``**extra_args`` gets an
    ``update`` that drops them. The check runs once, here, not per step. optax has a function
    of the same name and purpose.

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
    check_transformation("with_extra_args_support", "tx", tx)
    if isinstance(tx, GradientTransformation):
        return tx
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
    for i, t in enumerate(transforms):
        check_transformation("chain", f"transforms[{i}]", t)
    adapted = [with_extra_args_support(t) for t in transforms]
    updaters = [t.update for t in adapted]

    def init_fn(params):
        return tuple(t.init(params) for t in transforms)

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, tuple) or len(state) != len(transforms):
            got = f"{len(state)} entries" if isinstance(state, tuple) else type(state).__name__
            raise ValueError(
                f"chain: the state has {got} but the chain has "
                f"{len(transforms)} transformations; was it initialized by another chain?"
            )
        new_state = []
        for update, s in zip(updaters, state, strict=True):
            updates, s = update(updates, s, params, **extra_args)
            new_state.append(s)
        return updates, tuple(new_state)

    def gated(state):
        parts = [gated_update(t, s) for t, s in zip(adapted, state, strict=True)]
        if any(part is None for part in parts):
            return None

        def run(updates, state, params, keep, **extra_args):
            new_state = []
            for part, s in zip(parts, state, strict=True):
                updates, s = part(updates, s, params, keep, **extra_args)
                new_state.append(s)
            return updates, tuple(new_state)

        return run

    return register_gated(GradientTransformation(init_fn, update_fn), gated)


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
    for i, item in enumerate(transforms):
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError(
                f"named_chain: each argument must be a (name, transformation) pair with a string "
                f"name, got argument {i}: {item!r:.80}"
            )
        check_transformation("named_chain", f"the transformation named {item[0]!r}", item[1])
    names = [n for n, _ in transforms]
    if len(set(names)) != len(names):
        raise ValueError(f"named_chain: names must be unique, got {names}")
    adapted = [(n, with_extra_args_support(t)) for n, t in transforms]

    def init_fn(params):
        return {n: t.init(params) for n, t in transforms}

    def update_fn(updates, state, params=None, **extra_args):
        new_state = {}
        for name, tx in adapted:
            updates, new_state[name] = tx.update(updates, state[name], params, **extra_args)
        return updates, new_state

    def gated(state):
        parts = {name: gated_update(tx, state[name]) for name, tx in adapted}
        if any(part is None for part in parts.values()):
            return None

        def run(updates, state, params, keep, **extra_args):
            new_state = {}
            for name, part in parts.items():
                updates, new_state[name] = part(updates, state[name], params, keep, **extra_args)
            return updates, new_state

        return run

    return register_gated(GradientTransformation(init_fn, update_fn), gated)


if optax_module() is not None:
    MaskedNode = optax_module().MaskedNode
    MaskedState = optax_module().MaskedState
else:

    class MaskedNode(NamedTuple):  # type: ignore[no-redef]
        """Stands in for a parameter (or a whole subtree) that a masked transformation does not
        see; it holds no leaves. ``optax.MaskedNode`` itself when optax is installed, so masked
        states of both libraries are the same trees."""

    class MaskedState(NamedTuple):  # type: ignore[no-redef]
        """The state of :func:`masked`: the inner state, over the masked-in leaves only
        (``optax.MaskedState`` when optax is installed)."""

        inner_state: Any


def _mask_pytree(tree: PyTree, mask_tree: PyTree) -> PyTree:
    """``tree`` with every subtree whose mask flag is false replaced by one ``MaskedNode``."""
    return jax.tree.map(lambda m, sub: sub if m else MaskedNode(), mask_tree, tree)


def masked(
    inner: GradientTransformation,
    mask: PyTree | Callable[[Params], PyTree] | list[str] | str,
    *,
    mask_compatible_extra_args: bool = False,
) -> GradientTransformation:
    """Applies ``inner`` to the leaves where ``mask`` is true; the others pass through unchanged.

    ``inner`` sees only the masked-in leaves: a masked-out leaf, or a subtree covered by one
    false flag of a prefix mask, is replaced by one empty ``MaskedNode`` (optax's layout), so
    ``inner`` allocates no state for it. A tree without leaves is passed to ``inner`` as it is.

    Args:
      inner: the transformation to apply.
      mask: a pytree of Python booleans with the structure of the parameters (or a prefix of
        it), a function ``params -> mask``, or glob patterns on parameter paths (``"*kernel"``,
        ``["encoder/*", "*bias"]``; a pattern that matches no parameter raises).
      mask_compatible_extra_args: also mask the extra arguments of ``update`` whose tree has the
        structure of the updates (per-parameter tags), as optax does.

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
    return _masked("masked", inner, mask, mask_compatible_extra_args)


def _masked(
    fn: str, inner: GradientTransformation, mask: Any, mask_compatible_extra_args: bool
) -> GradientTransformation:
    """:func:`masked`, with ``fn`` (the public function) named in its errors."""
    check_transformation(fn, "inner", inner)
    check_mask_spec(fn, "mask", mask, none=False)
    check_bool(fn, "mask_compatible_extra_args", mask_compatible_extra_args)
    inner_update = with_extra_args_support(inner).update

    def mask_for(tree):
        return resolve_mask(fn, mask, tree, static=True)

    def init_fn(params):
        if not jax.tree.leaves(params):  # nothing to mask (also optax's tree_map_params probe)
            return MaskedState(inner.init(params))
        return MaskedState(inner.init(_mask_pytree(params, mask_for(params))))

    def update_fn(updates, state, params=None, **extra_args):
        if not jax.tree.leaves(updates):
            new, inner_state = inner_update(updates, state.inner_state, params, **extra_args)
            return new, MaskedState(inner_state)
        mask_tree = mask_for(params if params is not None else updates)
        if mask_compatible_extra_args:
            structure = jax.tree.structure(updates)
            extra_args = {
                k: _mask_pytree(v, mask_tree) if jax.tree.structure(v) == structure else v
                for k, v in extra_args.items()
            }
        masked_params = None if params is None else _mask_pytree(params, mask_tree)
        try:
            masked_updates = _mask_pytree(updates, mask_tree)
        except ValueError as err:
            raise ValueError(
                f"{fn}: the updates do not have the structure of the mask and parameters "
                f"({describe_structure_difference(mask_tree, updates)})"
            ) from err
        new, inner_state = inner_update(
            masked_updates, state.inner_state, masked_params, **extra_args
        )
        out = jax.tree.map(lambda m, n, u: n if m else u, mask_tree, new, updates)
        return out, MaskedState(inner_state)

    return GradientTransformation(init_fn, update_fn)


if optax_module() is not None:
    PartitionState = optax_module().transforms.PartitionState
else:

    class PartitionState(NamedTuple):  # type: ignore[no-redef]
        """The state of :func:`partition`: one masked inner state per label
        (``optax.transforms.PartitionState`` when optax is installed)."""

        inner_states: dict[Hashable, MaskedState]


def partition(
    transforms: Mapping[Hashable, GradientTransformation],
    labels: LabelSpec,
    *,
    mask_compatible_extra_args: bool = False,
) -> GradientTransformation:
    """Applies a different transformation to each group of parameters.

    Each leaf carries one label; the transformation of that label updates it and holds its
    state (the others hold none for it).

    Args:
      transforms: label -> transformation.
      labels: a pytree of labels with the structure of the parameters (or a prefix), a
        function ``params -> labels``, or a mapping from glob patterns on parameter paths to
        labels, first match winning: ``{"*bias": "no_decay", "*": "decay"}``. Paths are keys
        joined by ``/`` and read the same on dicts and on ``flax.nnx.State``. (optax calls this
        argument ``param_labels``.)
      mask_compatible_extra_args: passed to each group's :func:`masked`.

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
    if not isinstance(transforms, Mapping):
        raise TypeError(
            f"partition: transforms must be a mapping label -> transformation, got "
            f"transforms={transforms!r:.80} ({type(transforms).__name__})"
        )
    for label, tx in transforms.items():
        check_transformation("partition", f"transforms[{label!r}]", tx)
    if labels is None:
        raise TypeError("partition: labels must be a pytree of labels, a function or patterns")
    transforms = {k: with_extra_args_support(v) for k, v in transforms.items()}

    def masks_of(tree):
        """One boolean mask (a tree or prefix) per label, from one resolution of the labels."""
        tree_labels = resolve_labels("partition", labels, tree, prefix=True)
        unknown = sorted(
            {str(label) for label in jax.tree.leaves(tree_labels)} - {str(k) for k in transforms}
        )
        if unknown:
            raise ValueError(
                f"partition: labels {unknown} have no transformation; transforms has "
                f"{sorted(map(str, transforms))}"
            )
        return {
            group: jax.tree.map(lambda label, g=group: label == g, tree_labels)
            for group in transforms
        }

    def grouped(mask, tx):
        return masked(tx, mask, mask_compatible_extra_args=mask_compatible_extra_args)

    def init_fn(params):
        masks = masks_of(params)
        return PartitionState(
            {group: grouped(masks[group], tx).init(params) for group, tx in transforms.items()}
        )

    def update_fn(updates, state, params=None, **extra_args):
        masks = masks_of(params if params is not None else updates)
        new_states = {}
        for group, tx in transforms.items():
            updates, new_states[group] = grouped(masks[group], tx).update(
                updates, state.inner_states[group], params, **extra_args
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
      mask: which parameters are frozen: a pytree of Python booleans (or a prefix), a function
        of the params, or glob patterns on parameter paths (a pattern that matches no
        parameter raises, so a typo cannot leave everything trainable).
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
    check_mask_spec("freeze", "mask", mask, none=False)
    if inner is None:
        return _masked("freeze", set_to_zero(), mask, False)
    check_transformation("freeze", "inner", inner)

    def labels(tree):
        return jax.tree.map(
            lambda frozen: "frozen" if frozen else "trainable",
            resolve_mask("freeze", mask, tree, static=True),
        )

    return partition({"frozen": set_to_zero(), "trainable": inner}, labels)
