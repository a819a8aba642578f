r"""Layers of the MLPs: Dense (with DropConnect), activations as layers, dropout, noise, DropPath.

Every layer here is a ``flax.nnx.Module`` called as ``layer(x, *, train, rng)``: ``train`` is a
Python bool chosen by the caller (never stored in the module, so it cannot be left in the wrong
mode) and ``rng`` a ``jax.random`` key, needed only by layers that are random while training.
At evaluation (``train=False``) every layer is deterministic and ``rng`` may be ``None``.

Inverted dropout (the convention of the seeds and of every framework) scales at training time so
that evaluation is the identity:

.. math::

   \tilde h = \frac{m \odot h}{1 - p}, \quad m_i \sim \mathrm{Bernoulli}(1 - p), \qquad
   \mathbb{E}[\tilde h] = h.

DropConnect applies the same rule to the weight matrix instead of the activations (one mask
per call, shared by the batch, and inverted scaling so evaluation uses :math:`W` itself; Wan et
al. approximate the evaluation-time distribution by a Gaussian instead).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from optlab.core.validation import check_in_range, check_int_at_least, check_nonnegative
from optlab.nn.activations import ActivationSpec, get_activation, parse_activation, prelu, rrelu
from optlab.nn.initializers import InitializerSpec, get_initializer

Array = jax.Array


def _need_rng(layer: str, rng: Array | None) -> Array:
    if rng is None:
        raise ValueError(
            f"{layer}: train=True is random for this layer and needs rng=a jax.random key "
            f"(pass rng=jax.random.key(seed), or train=False for evaluation)"
        )
    return rng


def dropout(x: Array, rate: float, rng: Array | None, *, train: bool) -> Array:
    r"""Inverted dropout: zero each element with probability ``rate`` and scale by ``1/(1-rate)``.

    Args:
      x: activations.
      rate: the drop probability :math:`p \in [0, 1)`.
      rng: a ``jax.random`` key (needed when ``train`` and ``rate > 0``).
      train: drop (``True``) or return ``x`` unchanged (``False``).

    Returns:
      ``x * mask / (1 - rate)`` while training, ``x`` at evaluation.

    Examples:
      >>> import optlab
      >>> x = jnp.ones(4)
      >>> print(optlab.nn.dropout(x, 0.5, None, train=False))
      [1. 1. 1. 1.]

    References:
      Srivastava et al., Dropout: A Simple Way to Prevent Neural Networks from Overfitting,
      2014. https://jmlr.org/papers/v15/srivastava14a.html
    """
    if not train or rate == 0.0:
        return x
    keep = jax.random.bernoulli(_need_rng("dropout", rng), 1.0 - rate, jnp.shape(x))
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


class Dense(nnx.Module):
    r"""A fully connected layer :math:`y = x W + b`, optionally with DropConnect.

    Args:
      in_features: input width.
      out_features: output width.
      kernel_init: initializer of :math:`W` by name or callable (see
        :func:`optlab.nn.get_initializer`); Keras's default ``"glorot_uniform"``.
      bias_init: initializer of :math:`b`; zeros by default.
      use_bias: whether the layer has a bias.
      dropconnect: probability of dropping each weight while training (inverted scaling).
      rngs: ``flax.nnx.Rngs`` (or an int seed) for the initial values.

    Examples:
      >>> import optlab
      >>> layer = optlab.nn.Dense(3, 2, kernel_init="ones", rngs=0)
      >>> print(layer(jnp.ones((1, 3)), train=False))
      [[3. 3.]]
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        kernel_init: InitializerSpec = "glorot_uniform",
        bias_init: InitializerSpec = "zeros",
        use_bias: bool = True,
        dropconnect: float = 0.0,
        rngs: nnx.Rngs | int,
    ):
        check_int_at_least("Dense", "in_features", in_features, 1)
        check_int_at_least("Dense", "out_features", out_features, 1)
        check_in_range("Dense", "dropconnect", dropconnect, 0.0, 1.0)
        rngs = as_rngs(rngs)
        self.in_features = in_features
        self.out_features = out_features
        self.dropconnect = float(dropconnect)
        kinit = get_initializer(kernel_init)
        self.kernel = nnx.Param(kinit(rngs.params(), (in_features, out_features), jnp.float32))
        if use_bias:
            binit = get_initializer(bias_init)
            self.bias = nnx.Param(binit(rngs.params(), (out_features,), jnp.float32))
        else:
            self.bias = None

    def __call__(self, x: Array, *, train: bool, rng: Array | None = None) -> Array:
        w = self.kernel[...]
        if train and self.dropconnect > 0.0:
            keep = jax.random.bernoulli(
                _need_rng("Dense(dropconnect)", rng), 1.0 - self.dropconnect, w.shape
            )
            w = jnp.where(keep, w / (1.0 - self.dropconnect), jnp.zeros_like(w))
        y = x @ w
        if self.bias is not None:
            y = y + self.bias[...]
        return y


class Activation(nnx.Module):
    """A stateless activation as a layer (the name is kept static, so models compare equal)."""

    def __init__(self, spec: ActivationSpec = "relu"):
        if callable(spec) and not isinstance(spec, str | tuple):
            self.name, self.options, self.fn = getattr(spec, "__name__", "custom"), (), spec
        else:
            name, opts = parse_activation(spec, "Activation")
            self.name, self.options = name, tuple(sorted(opts.items()))
            self.fn = get_activation(name, **opts)

    def __call__(self, x: Array, *, train: bool, rng: Array | None = None) -> Array:
        del train, rng
        return self.fn(x)


class PReLU(nnx.Module):
    """Parametric ReLU with a learned slope, one for the layer or one per unit.

    Args:
      num_features: width of the input (used when ``per_unit``).
      init: initial slope (0.25 in He et al.).
      per_unit: one slope per unit (``True``) or one per layer (``False``).

    Examples:
      >>> import optlab
      >>> layer = optlab.nn.PReLU(2, init=0.5)
      >>> print(layer(jnp.array([-2.0, 2.0]), train=False))
      [-1.  2.]
    """

    def __init__(self, num_features: int = 1, *, init: float = 0.25, per_unit: bool = False):
        shape = (num_features,) if per_unit else ()
        self.alpha = nnx.Param(jnp.full(shape, init, jnp.float32))

    def __call__(self, x: Array, *, train: bool, rng: Array | None = None) -> Array:
        del train, rng
        return prelu(x, self.alpha[...])


class RReLU(nnx.Module):
    """Randomized leaky ReLU (see :func:`optlab.nn.rrelu`) as a layer."""

    def __init__(self, *, lower: float = 1.0 / 8.0, upper: float = 1.0 / 3.0):
        self.lower, self.upper = float(lower), float(upper)

    def __call__(self, x: Array, *, train: bool, rng: Array | None = None) -> Array:
        key = _need_rng("RReLU", rng) if train else None
        return rrelu(x, key, lower=self.lower, upper=self.upper, train=train)


def make_activation(spec: ActivationSpec, num_features: int) -> tuple[nnx.Module, int]:
    """The activation layer for ``spec`` and the width its input must have.

    Maxout needs ``num_pieces`` times ``num_features`` inputs; every other activation keeps the
    width. Used by the MLPs.
    """
    if callable(spec) and not isinstance(spec, str | tuple):
        return Activation(spec), num_features
    name, opts = parse_activation(spec, "MLP")
    if name == "prelu":
        return PReLU(num_features, init=opts["init"], per_unit=opts["per_unit"]), num_features
    if name == "rrelu":
        return RReLU(lower=opts["lower"], upper=opts["upper"]), num_features
    if name == "maxout":
        return Activation(spec), num_features * opts["num_pieces"]
    return Activation(spec), num_features


class Dropout(nnx.Module):
    """Inverted dropout as a layer (see :func:`optlab.nn.dropout`)."""

    def __init__(self, rate: float = 0.5):
        check_in_range("Dropout", "rate", rate, 0.0, 1.0)
        self.rate = float(rate)

    def __call__(self, x: Array, *, train: bool, rng: Array | None = None) -> Array:
        return dropout(x, self.rate, rng, train=train)


class GaussianNoise(nnx.Module):
    r"""Adds :math:`\mathcal N(0, \sigma^2)` noise while training; the identity at evaluation.

    Examples:
      >>> import optlab
      >>> print(optlab.nn.GaussianNoise(0.1)(jnp.ones(2), train=False))
      [1. 1.]
    """

    def __init__(self, stddev: float):
        check_nonnegative("GaussianNoise", "stddev", stddev)
        self.stddev = float(stddev)

    def __call__(self, x: Array, *, train: bool, rng: Array | None = None) -> Array:
        if not train or self.stddev == 0.0:
            return x
        noise = jax.random.normal(_need_rng("GaussianNoise", rng), jnp.shape(x), x.dtype)
        return x + self.stddev * noise


def drop_path(x: Array, rate: float, rng: Array | None, *, train: bool) -> Array:
    r"""Stochastic depth for a residual branch: drop the whole branch per example.

    While training each example's branch output is kept with probability :math:`1 - p` and
    scaled by :math:`1/(1 - p)` (the "row" mode of torchvision's ``StochasticDepth``); at
    evaluation it is returned unchanged.

    References:
      Huang et al., Deep Networks with Stochastic Depth, 2016. https://arxiv.org/abs/1603.09382
    """
    if not train or rate == 0.0:
        return x
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    keep = jax.random.bernoulli(_need_rng("drop_path", rng), 1.0 - rate, shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


def as_rngs(rngs: Any) -> nnx.Rngs:
    """``flax.nnx.Rngs`` from an ``Rngs``, an int seed or a key."""
    return rngs if isinstance(rngs, nnx.Rngs) else nnx.Rngs(rngs)
