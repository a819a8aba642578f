r"""MLPs with every architecture choice of the seeds, as Flax nnx modules.

A hidden block computes, for ``norm_position="pre_activation"`` (Ioffe and Szegedy's order),

.. math::

   h = \operatorname{dropout}\big(\phi(\operatorname{norm}(x W + b))\big)

and for ``"post_activation"`` :math:`h = \operatorname{dropout}(\operatorname{norm}(\phi(xW + b)))`.
A residual block returns :math:`x + \operatorname{droppath}(h)` (a bias-free linear projection
of :math:`x` replaces :math:`x` when the width changes); ``residual`` is chosen per block
(``residual=(False, True)``: only the second block, as in the MNIST-1D paper's MLP) or for all.
The output layer is a plain Dense layer producing logits (no activation): pair it with the losses
of :mod:`optlab.nn.losses`, softmax cross-entropy for one label or sigmoid binary cross-entropy
for several independent labels (multi-label output).

The models follow Flax nnx's conventions: they are built in training mode, ``model.eval()`` /
``model.train()`` switch every layer (dropout and the other random layers through their
``deterministic`` flag, BatchNorm through ``use_running_average``), and ``model(x)`` runs in that
mode, drawing the random masks of dropout, DropConnect, RReLU, input noise and stochastic depth
from the ``"dropout"`` stream of the ``rngs`` the model was built with (else ``"default"``).
``model(x, train=..., rng=...)`` overrides both for one call; :func:`optlab.nn.functional` gives
the pure ``apply(params, state, x, *, train, rng)`` form.

Inputs with more than two axes are flattened to ``(batch, features)``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from optlab.core.validation import (
    check_bool,
    check_choice,
    check_integer,
    check_nonnegative,
    check_number,
)
from optlab.nn.activations import ActivationSpec, parse_activation
from optlab.nn.initializers import InitializerSpec, parse_initializer
from optlab.nn.layers import (
    Dense,
    GaussianNoise,
    RReLU,
    Stochastic,
    as_rngs,
    check_rate,
    check_train,
    composite_key,
    drop_path,
    dropout,
    is_training,
    layer_key,
    make_activation,
    random_stream,
    split_key,
)
from optlab.nn.norm import NormSpec, apply_norm, make_norm, parse_norm
from optlab.nn.spec import NotDescribable, json_spec, json_value

Array = jax.Array


def _check_spec(fn: str, kind: str, spec: Any, argument: str) -> None:
    if callable(spec) and not isinstance(spec, str | tuple):
        return
    if kind == "activation":
        parse_activation(spec, fn, argument)
    elif kind == "norm":
        parse_norm(spec, fn)
    else:
        parse_initializer(spec, fn, argument=argument)


def _per_block(fn: str, name: str, value: Any, n: int, check: Any) -> list:
    """One value for every hidden block: a scalar is repeated, a sequence must have ``n``."""
    if isinstance(value, list | tuple):
        if len(value) != n:
            raise ValueError(
                f"{fn}: {name} must be one value or one per hidden layer ({n}), got "
                f"{len(value)} values: {name}={value!r}"
            )
        values = list(value)
    else:
        values = [value] * n
    for v in values:
        check(fn, name, v)
    return values


def describe(cls: str, **arguments: Any) -> tuple[str | None, str | None]:
    """``(JSON of the class and arguments, None)``, or ``(None, why it cannot be described)``."""
    specs = {"activation", "kernel_init", "bias_init", "norm"}
    try:
        config = {
            k: json_spec(k, v) if k in specs else json_value(k, v) for k, v in arguments.items()
        }
    except NotDescribable as err:
        return None, str(err)
    return json.dumps({"class": cls, **config}, sort_keys=True), None


class Block(Stochastic):
    """One hidden layer: Dense, norm, activation, dropout, optionally a residual connection.

    Args are those of :class:`MLP` for one layer (``residual`` a bool), and ``keep_rngs``: keep
    a stream for the random masks (``False`` inside an :class:`MLP`, which passes keys down from
    its own stream). The activation layer, the norm and the projection shortcut are ``None``
    where unused.
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
        keep_rngs: bool = True,
        rngs: nnx.Rngs | int,
    ):
        check_integer("Block", "in_features", in_features, 1)
        check_integer("Block", "out_features", out_features, 1)
        check_choice("Block", "norm_position", norm_position, ("pre_activation", "post_activation"))
        check_rate("Block", "dropout", dropout)
        check_rate("Block", "dropconnect", dropconnect)
        check_rate("Block", "stochastic_depth", stochastic_depth)
        check_bool("Block", "residual", residual)
        check_bool("Block", "keep_rngs", keep_rngs)
        rngs = as_rngs(rngs, "Block")
        act, width = make_activation(activation, out_features, "Block")
        self.dense = Dense(
            in_features,
            width,
            kernel_init=kernel_init,
            bias_init=bias_init,
            dropconnect=dropconnect,
            keep_rngs=False,
            rngs=rngs,
        )
        self.pre_activation = norm_position == "pre_activation"
        self.norm = make_norm(norm, width if self.pre_activation else out_features, rngs=rngs)
        self.act = act
        self.dropout = float(dropout)
        self.residual = bool(residual)
        self.stochastic_depth = float(stochastic_depth) if residual else 0.0
        self.deterministic = False
        self.shortcut = (
            Dense(in_features, out_features, kernel_init=kernel_init, use_bias=False, rngs=rngs)
            if residual and in_features != out_features
            else None
        )
        random = self.dropout or self.stochastic_depth or dropconnect or isinstance(act, RReLU)
        self.rngs = random_stream(rngs, "Block") if keep_rngs and random else None

    def __call__(self, x: Array, *, train: bool | None = None, rng: Array | None = None) -> Array:
        check_train("Block", train)
        k_dense, k_act, k_drop, k_path = split_key(composite_key(self, rng, train), 4)
        h = self.dense(x, train=train, rng=k_dense)
        if self.pre_activation:
            h = self.act(apply_norm(self.norm, h, train=train), train=train, rng=k_act)
        else:
            h = apply_norm(self.norm, self.act(h, train=train, rng=k_act), train=train)
        training = is_training(train, self.deterministic)
        if self.dropout and training:
            h = dropout(h, self.dropout, layer_key("Block(dropout)", self, k_drop), train=True)
        if not self.residual:
            return h
        if self.stochastic_depth and training:
            key = layer_key("Block(stochastic_depth)", self, k_path)
            h = drop_path(h, self.stochastic_depth, key, train=True)
        return (x if self.shortcut is None else self.shortcut(x, train=False)) + h


class MLP(Stochastic):
    """A multilayer perceptron; every architecture choice by name or by callable.

    Args:
      in_features: number of input features (inputs with more axes are flattened).
      hidden: widths of the hidden layers; ``()`` gives a linear (softmax-regression) model.
      out_features: number of outputs (logits); ``None`` for no output layer (the model then
        returns the last hidden activations, e.g. a tower of :class:`MultiInputMLP`).
      activation: name (see :func:`optlab.nn.activation_names`), ``(name, options)`` or a
        callable; ``"prelu"``, ``"rrelu"`` and ``"maxout"`` become layers.
      kernel_init: initializer of the weights by name (see :func:`optlab.nn.initializer_names`),
        ``(name, options)`` or callable. Keras's default ``"glorot_uniform"``;
        ``"torch_default"`` is PyTorch's.
      bias_init: initializer of the biases; zeros by default (``"torch_default"`` for
        PyTorch's :math:`U(\\pm 1/\\sqrt{\\text{fan\\_in}})`).
      norm: ``None``, ``"batch"``, ``"layer"``, ``"group"``, ``(name, options)`` or a
        callable ``(num_features, rngs) -> nnx.Module`` (see :mod:`optlab.nn.norm`).
      norm_position: ``"pre_activation"`` (norm between Dense and activation) or
        ``"post_activation"``.
      dropout: inverted-dropout rate after each hidden activation, or one rate per layer.
      input_dropout: dropout rate on the inputs.
      dropconnect: DropConnect rate on every hidden layer's weights.
      input_noise: standard deviation of Gaussian noise added to the inputs while training.
      residual: make every hidden layer a residual block (``True``), or one bool per layer.
      stochastic_depth: probability of dropping each residual branch while training.
      rngs: ``flax.nnx.Rngs`` or an int seed: its ``"params"`` stream (else ``"default"``)
        draws the initial parameters, its ``"dropout"`` stream (else ``"default"``) seeds the
        model's own stream for the random masks.

    Examples:
      >>> import optlab
      >>> model = optlab.nn.MLP(4, (8, 8), 3, norm="batch", dropout=0.5, rngs=0)
      >>> model.eval()  # running averages, no dropout
      >>> print(model(jnp.ones((2, 4))).shape)
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
        residual: bool | Sequence[bool] = False,
        stochastic_depth: float = 0.0,
        rngs: nnx.Rngs | int,
    ):
        check_integer("MLP", "in_features", in_features, 1)
        if not isinstance(hidden, list | tuple):
            raise TypeError(
                f"MLP: hidden must be a tuple of layer widths, e.g. (128, 64), "
                f"got hidden={hidden!r} ({type(hidden).__name__})"
            )
        for width in hidden:
            check_integer("MLP", "hidden width", width, 1)
        if out_features is not None:
            check_integer("MLP", "out_features", out_features, 1)
        for kind, spec, argument in [
            ("activation", activation, "activation"),
            ("initializer", kernel_init, "kernel_init"),
            ("initializer", bias_init, "bias_init"),
            ("norm", norm, "norm"),
        ]:
            _check_spec("MLP", kind, spec, argument)
        check_choice("MLP", "norm_position", norm_position, ("pre_activation", "post_activation"))
        rates = _per_block("MLP", "dropout", dropout, len(hidden), check_rate)
        residuals = _per_block("MLP", "residual", residual, len(hidden), check_bool)
        for name, rate in [
            ("input_dropout", input_dropout),
            ("dropconnect", dropconnect),
            ("stochastic_depth", stochastic_depth),
        ]:
            check_rate("MLP", name, rate)
        check_number("MLP", "input_noise", input_noise)
        check_nonnegative("MLP", "input_noise", input_noise)
        if stochastic_depth and not any(residuals):
            raise ValueError(
                f"MLP: stochastic_depth drops residual branches, and no block is residual: "
                f"give residual=True (or one bool per layer), got "
                f"stochastic_depth={stochastic_depth}, residual={residual!r}"
            )
        rngs = as_rngs(rngs, "MLP")
        self._config, self._config_problem = describe(
            "MLP",
            in_features=in_features,
            hidden=list(hidden),
            out_features=out_features,
            activation=activation,
            kernel_init=kernel_init,
            bias_init=bias_init,
            norm=norm,
            norm_position=norm_position,
            dropout=dropout,
            input_dropout=input_dropout,
            dropconnect=dropconnect,
            input_noise=input_noise,
            residual=residual,
            stochastic_depth=stochastic_depth,
        )
        self.in_features = int(in_features)
        self.out_features = out_features
        self.input_dropout = float(input_dropout)
        self.deterministic = False
        self.noise = GaussianNoise(input_noise) if input_noise else None
        blocks, width = [], in_features
        for h, rate, res in zip(hidden, rates, residuals, strict=True):
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
                    residual=res,
                    stochastic_depth=stochastic_depth,
                    keep_rngs=False,
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
        random = self.input_dropout or input_noise or dropconnect
        random = random or any(b.dropout or b.stochastic_depth for b in blocks)
        random = random or any(isinstance(b.act, RReLU) for b in blocks)
        self.rngs = random_stream(rngs, "MLP") if random else None

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments as JSON (see :func:`optlab.nn.model_config`)."""
        if self._config is None:
            raise ValueError(
                f"model_config: this MLP cannot be described by a configuration: "
                f"{self._config_problem}; give activations, initializers and norms by name "
                f"(see optlab.nn.activation_names(), initializer_names(), norm_names())"
            )
        return json.loads(self._config)

    def __call__(self, x: Array, *, train: bool | None = None, rng: Array | None = None) -> Array:
        check_train("MLP", train)
        if x.ndim > 2:
            x = x.reshape(x.shape[0], -1)
        keys = split_key(composite_key(self, rng, train), len(self.blocks) + 2)
        if self.noise is not None:
            x = self.noise(x, train=train, rng=keys[-1])
        if self.input_dropout and is_training(train, self.deterministic):
            key = layer_key("MLP(input_dropout)", self, keys[-2])
            x = dropout(x, self.input_dropout, key, train=True)
        for block, key in zip(self.blocks, keys, strict=False):
            x = block(x, train=train, rng=key)
        return x if self.head is None else self.head(x, train=train)


def count_params(model_or_tree: Any) -> int:
    """Number of trainable parameters (``nnx.Param`` entries) of a model, or leaves of a tree.

    Examples:
      >>> import optlab
      >>> print(optlab.nn.count_params(optlab.nn.MLP(4, (8,), 3, rngs=0)))
      67
    """
    if model_or_tree is None:
        raise TypeError("count_params: expects an nnx model or a pytree of arrays, got None")
    if isinstance(model_or_tree, nnx.Module):
        tree = nnx.state(model_or_tree, nnx.Param)
    else:
        tree = model_or_tree
    leaves = jax.tree.leaves(tree)
    bad = [x for x in leaves if not hasattr(x, "shape")]
    if bad:
        raise TypeError(
            f"count_params: expects an nnx model or a pytree of arrays, got a leaf "
            f"{bad[0]!r} ({type(bad[0]).__name__})"
        )
    return int(sum(jnp.size(x) for x in leaves))
