r"""MLPs with every architecture choice of the seeds, and the topologies of Keras's functional API.

A hidden block computes, for ``norm_position="pre_activation"`` (Ioffe and Szegedy's order),

.. math::

   h = \operatorname{dropout}\big(\phi(\operatorname{norm}(x W + b))\big)

and for ``"post_activation"`` :math:`h = \operatorname{dropout}(\operatorname{norm}(\phi(xW + b)))`.
With ``residual=True`` a block returns :math:`x + \operatorname{droppath}(h)` (a bias-free linear
projection of :math:`x` replaces :math:`x` when the width changes). The output layer is a
plain Dense layer producing logits (no activation): pair it with the losses of
:mod:`optlab.nn.losses`, softmax cross-entropy for one label or sigmoid binary cross-entropy
for several independent labels (multi-label output).

Every model is called as ``model(x, *, train, rng)``: ``train`` is required (there is no mode
stored in the model to forget) and ``rng`` is a ``jax.random`` key, needed only when training a
model with randomness (dropout, DropConnect, RReLU, noise, stochastic depth). Use
:func:`optlab.nn.functional` for the pure ``apply(params, state, x, *, train, rng)`` form.

Inputs with more than two axes are flattened to ``(batch, features)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from optlab.core.validation import check_choice, check_in_range, check_int_at_least
from optlab.nn.activations import ActivationSpec
from optlab.nn.initializers import InitializerSpec
from optlab.nn.layers import (
    Dense,
    GaussianNoise,
    as_rngs,
    drop_path,
    dropout,
    make_activation,
)
from optlab.nn.norm import NormSpec, apply_norm, make_norm, parse_norm

Array = jax.Array


def _split(rng: Array | None, n: int) -> list[Array | None]:
    return [None] * n if rng is None else list(jax.random.split(rng, n))


class Block(nnx.Module):
    """One hidden layer: Dense, norm, activation, dropout, optionally a residual connection.

    Args are those of :class:`MLP`, for one layer. The activation layer, the norm and the
    projection shortcut are ``None`` where unused.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        activation: ActivationSpec = "relu",
        kernel_init: InitializerSpec = "glorot_uniform",
        bias_init: InitializerSpec = "zeros",
        norm: NormSpec = None,
        norm_position: str = "pre_activation",
        dropout: float = 0.0,
        dropconnect: float = 0.0,
        residual: bool = False,
        stochastic_depth: float = 0.0,
        rngs: nnx.Rngs | int,
    ):
        rngs = as_rngs(rngs)
        check_choice("MLP", "norm_position", norm_position, ("pre_activation", "post_activation"))
        check_in_range("MLP", "dropout", dropout, 0.0, 1.0)
        check_in_range("MLP", "stochastic_depth", stochastic_depth, 0.0, 1.0)
        act, width = make_activation(activation, out_features)
        self.dense = Dense(
            in_features,
            width,
            kernel_init=kernel_init,
            bias_init=bias_init,
            dropconnect=dropconnect,
            rngs=rngs,
        )
        self.pre_activation = norm_position == "pre_activation"
        self.norm = make_norm(norm, width if self.pre_activation else out_features, rngs=rngs)
        self.act = act
        self.dropout = float(dropout)
        self.residual = bool(residual)
        self.stochastic_depth = float(stochastic_depth)
        self.shortcut = (
            Dense(in_features, out_features, kernel_init=kernel_init, use_bias=False, rngs=rngs)
            if residual and in_features != out_features
            else None
        )

    def __call__(self, x: Array, *, train: bool, rng: Array | None = None) -> Array:
        k_dense, k_act, k_drop, k_path = _split(rng, 4)
        h = self.dense(x, train=train, rng=k_dense)
        if self.pre_activation:
            h = self.act(apply_norm(self.norm, h, train=train), train=train, rng=k_act)
        else:
            h = apply_norm(self.norm, self.act(h, train=train, rng=k_act), train=train)
        h = dropout(h, self.dropout, k_drop, train=train)
        if self.residual:
            skip = x if self.shortcut is None else self.shortcut(x, train=False)
            h = skip + drop_path(h, self.stochastic_depth, k_path, train=train)
        return h


class MLP(nnx.Module):
    """A multilayer perceptron; every architecture choice by name or by callable.

    Args:
      in_features: number of input features (inputs with more axes are flattened).
      hidden: widths of the hidden layers; ``()`` gives a linear (softmax-regression) model.
      out_features: number of outputs (logits); ``None`` for no output layer (the model then
        returns the last hidden activations, e.g. a tower of :class:`MultiInputMLP`).
      activation: name (see :func:`optlab.nn.activation_names`), ``(name, options)`` or a
        callable; ``"prelu"``, ``"rrelu"`` and ``"maxout"`` become layers.
      kernel_init: initializer of the weights by name (see :func:`optlab.nn.initializer_names`),
        ``(name, options)`` or callable. Keras's default ``"glorot_uniform"``.
      bias_init: initializer of the biases; zeros by default.
      norm: ``None``, ``"batch"``, ``"layer"``, ``"group"``, ``(name, options)`` or a
        callable ``(num_features, rngs) -> nnx.Module`` (see :mod:`optlab.nn.norm`).
      norm_position: ``"pre_activation"`` (norm between Dense and activation) or
        ``"post_activation"``.
      dropout: inverted-dropout rate after each hidden activation, or one rate per layer.
      input_dropout: dropout rate on the inputs.
      dropconnect: DropConnect rate on every hidden layer's weights.
      input_noise: standard deviation of Gaussian noise added to the inputs while training.
      residual: make every hidden layer a residual block.
      stochastic_depth: probability of dropping each residual branch while training.
      rngs: ``flax.nnx.Rngs`` or an int seed for the initial parameters.

    Examples:
      >>> import optlab
      >>> model = optlab.nn.MLP(4, (8, 8), 3, norm="batch", dropout=0.5, rngs=0)
      >>> print(model(jnp.ones((2, 4)), train=False).shape)
      (2, 3)
      >>> print(optlab.nn.count_params(model))
      171
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (64,),
        out_features: int | None = 10,
        *,
        activation: ActivationSpec = "relu",
        kernel_init: InitializerSpec = "glorot_uniform",
        bias_init: InitializerSpec = "zeros",
        norm: NormSpec = None,
        norm_position: str = "pre_activation",
        dropout: float | Sequence[float] = 0.0,
        input_dropout: float = 0.0,
        dropconnect: float = 0.0,
        input_noise: float = 0.0,
        residual: bool = False,
        stochastic_depth: float = 0.0,
        rngs: nnx.Rngs | int,
    ):
        check_int_at_least("MLP", "in_features", in_features, 1)
        for h in hidden:
            check_int_at_least("MLP", "hidden width", h, 1)
        if out_features is not None:
            check_int_at_least("MLP", "out_features", out_features, 1)
        check_in_range("MLP", "input_dropout", input_dropout, 0.0, 1.0)
        parse_norm(norm, "MLP")
        rngs = as_rngs(rngs)
        rates = [dropout] * len(hidden) if isinstance(dropout, int | float) else list(dropout)
        if len(rates) != len(hidden):
            raise ValueError(
                f"MLP: dropout must be one rate or one per hidden layer ({len(hidden)}), "
                f"got {len(rates)} rates"
            )
        self.in_features = in_features
        self.out_features = out_features
        self.input_dropout = float(input_dropout)
        self.noise = GaussianNoise(input_noise) if input_noise else None
        blocks, width = [], in_features
        for h, rate in zip(hidden, rates, strict=True):
            blocks.append(
                Block(
                    width,
                    h,
                    activation=activation,
                    kernel_init=kernel_init,
                    bias_init=bias_init,
                    norm=norm,
                    norm_position=norm_position,
                    dropout=rate,
                    dropconnect=dropconnect,
                    residual=residual,
                    stochastic_depth=stochastic_depth,
                    rngs=rngs,
                )
            )
            width = h
        self.blocks = nnx.List(blocks)
        self.features = width
        self.head = (
            Dense(width, out_features, kernel_init=kernel_init, bias_init=bias_init, rngs=rngs)
            if out_features is not None
            else None
        )

    def __call__(self, x: Array, *, train: bool, rng: Array | None = None) -> Array:
        if x.ndim > 2:
            x = x.reshape(x.shape[0], -1)
        keys = _split(rng, len(self.blocks) + 2)
        if self.noise is not None:
            x = self.noise(x, train=train, rng=keys[-1])
        x = dropout(x, self.input_dropout, keys[-2], train=train)
        for block, key in zip(self.blocks, keys, strict=False):
            x = block(x, train=train, rng=key)
        return x if self.head is None else self.head(x, train=train)


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
      >>> out = model((jnp.ones((2, 4)), jnp.ones((2, 4))), train=False)
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
        if len(in_features) != len(tower_hidden):
            raise ValueError(
                f"MultiInputMLP: one tower per input: got {len(in_features)} inputs and "
                f"{len(tower_hidden)} towers"
            )
        rngs = as_rngs(rngs)
        self.towers = nnx.List(
            [
                MLP(f, tuple(th), None, rngs=rngs, **options)
                for f, th in zip(in_features, tower_hidden, strict=True)
            ]
        )
        merged = sum(t.features for t in self.towers)
        self.head = MLP(merged, tuple(hidden), out_features, rngs=rngs, **options)

    def __call__(self, inputs: Sequence[Array], *, train: bool, rng: Array | None = None):
        if len(inputs) != len(self.towers):
            raise ValueError(
                f"MultiInputMLP: expected {len(self.towers)} inputs, got {len(inputs)}"
            )
        keys = _split(rng, len(self.towers) + 1)
        feats = [
            t(x, train=train, rng=k) for t, x, k in zip(self.towers, inputs, keys, strict=False)
        ]
        return self.head(jnp.concatenate(feats, axis=-1), train=train, rng=keys[-1])


class Ensemble(nnx.Module):
    """``num_members`` independently initialized copies of a model, stacked on a leading axis.

    The members' parameters are one pytree with a leading axis of size ``num_members`` and the
    forward pass is ``jax.vmap``-ed over it (no Python loop): calling the ensemble returns the
    stacked outputs ``(num_members, batch, ...)``. Train it on the sum of the members' losses
    (each member gets its own gradient) and combine predictions with
    :func:`average_predictions` or :func:`majority_vote`.

    Args:
      make_member: ``rngs -> model``, e.g. ``lambda rngs: MLP(64, (32,), 10, rngs=rngs)``.
      num_members: number of members.
      rngs: ``flax.nnx.Rngs`` or an int seed; each member gets its own key.

    Examples:
      >>> import optlab
      >>> ens = optlab.nn.Ensemble(lambda r: optlab.nn.MLP(4, (8,), 3, rngs=r), 5, rngs=0)
      >>> print(ens(jnp.ones((2, 4)), train=False).shape)
      (5, 2, 3)
    """

    def __init__(
        self,
        make_member: Callable[[nnx.Rngs], nnx.Module],
        num_members: int,
        *,
        rngs: nnx.Rngs | int,
    ):
        check_int_at_least("Ensemble", "num_members", num_members, 1)
        keys = jax.random.split(as_rngs(rngs).params(), num_members)
        # Members are created one by one (cheap: the initializers' compiled ops are shared by
        # all members) and their states stacked on a new leading axis.
        splits = [nnx.split(make_member(nnx.Rngs(k))) for k in keys]
        graphdef = splits[0][0]
        if any(g != graphdef for g, _ in splits[1:]):
            raise ValueError("Ensemble: make_member must build members of one structure")
        states = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[st for _, st in splits])
        self.num_members = num_members
        self.members = nnx.merge(graphdef, states)

    def __call__(self, x: Any, *, train: bool, rng: Array | None = None) -> Array:
        graphdef, state = nnx.split(self.members)
        keys = None if rng is None else jax.random.split(rng, self.num_members)

        def one(s, key):
            member = nnx.merge(graphdef, s)
            y = member(x, train=train, rng=key)
            return y, nnx.state(member)

        ys, new_state = jax.vmap(one, in_axes=(0, None if keys is None else 0))(state, keys)
        if train:
            nnx.update(self.members, new_state)
        return ys


def average_predictions(outputs: Array, *, logits: bool = True) -> Array:
    r"""The ensemble's mean class probabilities :math:`\frac1k\sum_j \mathrm{softmax}(z_j)`.

    Args:
      outputs: stacked member outputs ``(num_members, batch, num_classes)``.
      logits: whether ``outputs`` are logits (softmax applied) or already probabilities.

    Returns:
      ``(batch, num_classes)`` probabilities.
    """
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
    num_classes = outputs.shape[-1]
    votes = jax.nn.one_hot(jnp.argmax(outputs, axis=-1), num_classes, dtype=jnp.int32)
    return jnp.argmax(jnp.sum(votes, axis=0), axis=-1)


def count_params(model_or_tree: Any) -> int:
    """Number of trainable parameters (``nnx.Param`` entries) of a model, or leaves of a tree."""
    tree = (
        nnx.state(model_or_tree, nnx.Param)
        if isinstance(model_or_tree, nnx.Module)
        else model_or_tree
    )
    return int(sum(jnp.size(x) for x in jax.tree.leaves(tree)))
