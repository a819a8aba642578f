"""Topologies of Keras's functional API built from MLPs: several inputs, and ensembles.

:class:`MultiInputMLP` runs one MLP tower per input and a shared MLP on their concatenation.
:class:`Ensemble` holds ``k`` independently initialized members whose parameters are stacked on
a leading axis and runs them with ``jax.vmap``; :func:`average_predictions` and
:func:`majority_vote` combine their outputs. Both follow the nnx conventions of
:mod:`optlab.nn.mlp` (``model.train()`` / ``model.eval()``, ``model(x)``, and ``train=`` /
``rng=`` overrides).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from optlab.core.validation import check_array, check_bool, check_integer
from optlab.nn.layers import as_rngs, calls_with_mode, check_train, split_key
from optlab.nn.mlp import MLP, describe

Array = jax.Array


class MultiInputMLP(nnx.Module):
    """Several inputs, each through its own tower, concatenated and fed to a shared MLP.

    The multi-input topology of Keras's functional API (seed 002): e.g. image features and
    metadata merged before the decision.

    Args:
      in_features: the width of each input.
      tower_hidden: the hidden widths of each tower (one sequence per input).
      hidden: hidden widths of the MLP after the merge.
      out_features: number of outputs.
      rngs: ``flax.nnx.Rngs`` or an int seed.
      **options: the other :class:`MLP` options, shared by towers and head.

    Examples:
      >>> import optlab
      >>> model = optlab.nn.MultiInputMLP((4, 4), ((8,), (8,)), (8,), 3, rngs=0)
      >>> out = model((jnp.ones((2, 4)), jnp.ones((2, 4))))
      >>> print(out.shape)
      (2, 3)
    """

    def __init__(
        self,
        in_features: Sequence[int],
        tower_hidden: Sequence[Sequence[int]],
        hidden: Sequence[int] = (32,),
        out_features: int = 10,
        *,
        rngs: nnx.Rngs | int,
        **options: Any,
    ):
        for name, value in [("in_features", in_features), ("tower_hidden", tower_hidden)]:
            if not isinstance(value, list | tuple) or not value:
                raise TypeError(
                    f"MultiInputMLP: {name} must be a non-empty tuple (one entry per input), "
                    f"got {name}={value!r}"
                )
        if len(in_features) != len(tower_hidden):
            raise ValueError(
                f"MultiInputMLP: one tower per input: got {len(in_features)} inputs and "
                f"{len(tower_hidden)} towers"
            )
        for th in tower_hidden:
            if not isinstance(th, list | tuple):
                raise TypeError(
                    f"MultiInputMLP: each entry of tower_hidden must be a tuple of widths, "
                    f"got {th!r} ({type(th).__name__})"
                )
        self._config, self._config_problem = describe(
            "MultiInputMLP",
            in_features=list(in_features),
            tower_hidden=[list(t) for t in tower_hidden],
            hidden=list(hidden) if isinstance(hidden, list | tuple) else hidden,
            out_features=out_features,
            **options,
        )
        rngs = as_rngs(rngs, "MultiInputMLP")
        self.towers = nnx.List(
            [
                MLP(f, tuple(th), None, rngs=rngs, **options)
                for f, th in zip(in_features, tower_hidden, strict=True)
            ]
        )
        merged = sum(t.features for t in self.towers)
        self.head = MLP(merged, hidden, out_features, rngs=rngs, **options)

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments as JSON (see :func:`optlab.nn.model_config`)."""
        if self._config is None:
            raise ValueError(
                f"model_config: this MultiInputMLP cannot be described by a configuration: "
                f"{self._config_problem}; give activations, initializers and norms by name"
            )
        return json.loads(self._config)

    def __call__(
        self, inputs: Sequence[Array], *, train: bool | None = None, rng: Array | None = None
    ) -> Array:
        check_train("MultiInputMLP", train)
        if not isinstance(inputs, list | tuple) or len(inputs) != len(self.towers):
            got = len(inputs) if isinstance(inputs, list | tuple) else type(inputs).__name__
            raise ValueError(
                f"MultiInputMLP: expected a tuple of {len(self.towers)} inputs, got {got}"
            )
        keys = split_key(rng, len(self.towers) + 1)
        feats = [
            t(x, train=train, rng=k) for t, x, k in zip(self.towers, inputs, keys, strict=False)
        ]
        return self.head(jnp.concatenate(feats, axis=-1), train=train, rng=keys[-1])


def _stack(leaves: Sequence[Any]) -> jax.Array:
    """Stacks the members' values on a new leading axis on the host (no compilation)."""
    if jax.dtypes.issubdtype(leaves[0].dtype, jax.dtypes.prng_key):
        data = np.stack([np.asarray(jax.random.key_data(x)) for x in leaves])
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaves[0]))
    return jax.device_put(np.stack([np.asarray(x) for x in leaves]))


class Ensemble(nnx.Module):
    """``num_members`` independently initialized copies of a model, stacked on a leading axis.

    The members' parameters are one pytree with a leading axis of size ``num_members`` and the
    forward pass is ``jax.vmap``-ed over it (no Python loop): calling the ensemble returns the
    stacked outputs ``(num_members, batch, ...)``. Train it on the sum of the members' losses
    (each member gets its own gradient) and combine predictions with
    :func:`average_predictions` or :func:`majority_vote`. Each member keeps its own random
    stream, so their dropout masks differ.

    Args:
      make_member: ``rngs -> model``, e.g. ``lambda rngs: MLP(64, (32,), 10, rngs=rngs)``; the
        model must take ``train=`` and ``rng=`` (every optlab model does).
      num_members: number of members.
      rngs: ``flax.nnx.Rngs`` or an int seed; each member gets its own key.

    Examples:
      >>> import optlab
      >>> ens = optlab.nn.Ensemble(lambda r: optlab.nn.MLP(4, (8,), 3, rngs=r), 5, rngs=0)
      >>> print(ens(jnp.ones((2, 4))).shape)
      (5, 2, 3)
    """

    def __init__(
        self,
        make_member: Callable[[nnx.Rngs], nnx.Module],
        num_members: int,
        *,
        rngs: nnx.Rngs | int,
    ):
        if not callable(make_member):
            raise TypeError(
                f"Ensemble: make_member must be a function rngs -> model, got "
                f"make_member={make_member!r} ({type(make_member).__name__})"
            )
        check_integer("Ensemble", "num_members", num_members, 1)
        # fold_in(key, i), not split(key, n): one compiled program for any number of members.
        key = as_rngs(rngs, "Ensemble").params()
        members = [make_member(nnx.Rngs(jax.random.fold_in(key, i))) for i in range(num_members)]
        if not all(isinstance(m, nnx.Module) and calls_with_mode(m) for m in members):
            raise TypeError(
                f"Ensemble: make_member must return an nnx model called as model(x, *, train, "
                f"rng) (an optlab.nn model), got {type(members[0]).__name__}"
            )
        splits = [nnx.split(m) for m in members]
        graphdef = splits[0][0]
        if any(g != graphdef for g, _ in splits[1:]):
            raise ValueError("Ensemble: make_member must build members of one structure")
        states = jax.tree.map(lambda *leaves: _stack(leaves), *[st for _, st in splits])
        self.num_members = int(num_members)
        self.members = nnx.merge(graphdef, states)

    def get_config(self) -> dict[str, Any]:
        """The members' configuration and their number (see :func:`optlab.nn.model_config`)."""
        get = getattr(self.members, "get_config", None)
        if get is None:
            raise TypeError(
                f"model_config: the ensemble's members ({type(self.members).__name__}) are not "
                f"optlab.nn models, so no configuration describes them"
            )
        return {"class": "Ensemble", "num_members": self.num_members, "member": get()}

    def __call__(self, x: Any, *, train: bool | None = None, rng: Array | None = None) -> Array:
        check_train("Ensemble", train)
        graphdef, state = nnx.split(self.members)
        keys = None if rng is None else jax.random.split(rng, self.num_members)

        def one(s, key):
            member = nnx.merge(graphdef, s)
            y = member(x, train=train, rng=key)
            return y, nnx.state(member)

        ys, new_state = jax.vmap(one, in_axes=(0, None if keys is None else 0))(state, keys)
        nnx.update(self.members, new_state)
        return ys


def average_predictions(outputs: Array, *, logits: bool = True) -> Array:
    r"""The ensemble's mean class probabilities :math:`\frac1k\sum_j \mathrm{softmax}(z_j)`.

    Args:
      outputs: stacked member outputs ``(num_members, batch, num_classes)``.
      logits: whether ``outputs`` are logits (softmax applied) or already probabilities.

    Returns:
      ``(batch, num_classes)`` probabilities.

    Examples:
      >>> import optlab
      >>> probs = jnp.array([[[0.2, 0.8]], [[0.6, 0.4]]])
      >>> print(optlab.nn.average_predictions(probs, logits=False))
      [[0.4 0.6]]
    """
    check_bool("average_predictions", "logits", logits)
    outputs = jnp.asarray(check_array("average_predictions", "outputs", outputs))
    if outputs.ndim < 2:
        raise ValueError(
            f"average_predictions: outputs must be stacked member outputs (num_members, ..., "
            f"num_classes), got shape {outputs.shape}"
        )
    probs = jax.nn.softmax(outputs, axis=-1) if logits else outputs
    return jnp.mean(probs, axis=0)


def majority_vote(outputs: Array) -> Array:
    """The class predicted by most members (ties go to the smallest class index).

    Args:
      outputs: stacked member scores ``(num_members, batch, num_classes)``.

    Returns:
      ``(batch,)`` integer class labels.

    Examples:
      >>> import optlab
      >>> scores = jnp.array([[[0.0, 1.0]], [[1.0, 0.0]], [[0.0, 2.0]]])
      >>> print(optlab.nn.majority_vote(scores))
      [1]
    """
    outputs = jnp.asarray(check_array("majority_vote", "outputs", outputs))
    if outputs.ndim < 2:
        raise ValueError(
            f"majority_vote: outputs must be stacked member scores (num_members, ..., "
            f"num_classes), got shape {outputs.shape}"
        )
    num_classes = outputs.shape[-1]
    votes = jax.nn.one_hot(jnp.argmax(outputs, axis=-1), num_classes, dtype=jnp.int32)
    return jnp.argmax(jnp.sum(votes, axis=0), axis=-1)
