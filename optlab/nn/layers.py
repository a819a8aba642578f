r"""Layers of the MLPs: Dense (with DropConnect), activations as layers, dropout, noise, DropPath.

Every layer is a ``flax.nnx.Module`` that follows Flax's conventions: a random layer has a
``deterministic`` attribute (``False`` at construction, like ``nnx.Dropout``) that
``model.train()`` / ``model.eval()`` switch, and draws its masks from the ``nnx.Rngs`` stream it
holds (the ``"dropout"`` stream of the ``rngs`` it was built with, else ``"default"``). A call
``layer(x)`` follows that mode; ``layer(x, train=..., rng=...)`` overrides it: ``train`` (a
Python bool) chooses the mode for this call and ``rng`` (a ``jax.random`` key) the masks, which
is how the pure :func:`optlab.nn.functional` form calls them. At evaluation every layer is
deterministic and draws nothing.

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

import inspect
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from optlab.core.validation import (
    check_array,
    check_bool,
    check_finite,
    check_in_range,
    check_integer,
    check_key,
    check_nonnegative,
    check_number,
    is_real_number,
)
from optlab.nn.activations import (
    ActivationSpec,
    check_rrelu_bounds,
    get_activation,
    parse_activation,
    prelu,
    rrelu,
)
from optlab.nn.initializers import (
    InitializerSpec,
    bias_initializer,
    check_initializer,
    get_initializer,
)

Array = jax.Array


# ---------------------------------------------------------------------------------------------
# Modes and random streams, shared by every optlab module


def as_rngs(rngs: Any, fn: str = "optlab.nn") -> nnx.Rngs:
    """``flax.nnx.Rngs`` from an ``Rngs``, an int seed or a ``jax.random`` key."""
    if isinstance(rngs, nnx.Rngs):
        return rngs
    if isinstance(rngs, int | np.integer) and not isinstance(rngs, bool):
        return nnx.Rngs(int(rngs))
    if isinstance(rngs, jax.Array) and (
        jax.dtypes.issubdtype(rngs.dtype, jax.dtypes.prng_key)
        or (rngs.dtype == jnp.uint32 and rngs.shape == (2,))
    ):
        return nnx.Rngs(rngs)
    raise TypeError(
        f"{fn}: rngs must be a flax.nnx.Rngs, an int seed or a jax.random key, "
        f"got rngs={rngs!r} ({type(rngs).__name__})"
    )


def random_stream(rngs: Any, fn: str) -> nnx.RngStream:
    """A fork of the ``"dropout"`` stream of ``rngs`` (else its ``"default"`` one), as
    ``nnx.Dropout`` takes it: the masks of a random layer come from it."""
    if isinstance(rngs, nnx.RngStream):
        return rngs.fork()
    rngs = as_rngs(rngs, fn)
    try:
        return rngs.dropout.fork()
    except AttributeError:
        raise ValueError(
            f"{fn}: this layer is random while training and takes its masks from the 'dropout' "
            f"stream of rngs (or 'default'), which has neither: pass nnx.Rngs(params=..., "
            f"dropout=...) or an int seed"
        ) from None


def calls_with_mode(module: Any) -> bool:
    """Whether ``module(x, *, train, rng)`` is how it is called (the optlab convention)."""
    try:
        params = inspect.signature(module.__call__).parameters
    except (TypeError, ValueError):
        return False
    return {"train", "rng"} <= set(params)


def check_train(fn: str, train: Any) -> None:
    """``train`` is ``None`` (follow the module's mode) or a Python bool (override it)."""
    if train is not None and not isinstance(train, bool):
        raise TypeError(
            f"{fn}: train must be None (use the mode set by .train()/.eval()) or a Python bool "
            f"(static: it selects the computation), got train={train!r}"
        )


def is_training(train: bool | None, deterministic: bool) -> bool:
    """The mode of one call: ``train`` when given, else the module's ``deterministic`` flag."""
    return (not deterministic) if train is None else train


def layer_key(fn: str, module: nnx.Module, rng: Array | None) -> Array:
    """The key of a random layer that is training: ``rng`` if given, else one drawn from the
    stream the layer holds."""
    if rng is not None:
        return rng
    stream = getattr(module, "rngs", None)
    if stream is not None:
        return stream()
    raise ValueError(
        f"{fn}: training mode is random for this layer and it holds no RNG stream: pass "
        f"rng=jax.random.key(seed), build it with rngs=nnx.Rngs(seed), or evaluate "
        f"(.eval() or train=False)"
    )


def composite_key(module: nnx.Module, rng: Array | None, train: bool | None) -> Array | None:
    """The key a model splits among its random layers: ``rng`` if given, else one drawn from
    the model's stream when some layer will train (``None`` when nothing is random)."""
    stream = getattr(module, "rngs", None)
    if rng is not None or stream is None:
        return rng
    if train is None:
        train = any(getattr(m, "deterministic", True) is False for _, m in nnx.iter_modules(module))
    return stream() if train else None


class Stochastic(nnx.Module):
    """Base of the modules that are random while training: a ``deterministic`` flag that
    ``.train()`` / ``.eval()`` set, and ``set_view`` so ``nnx.view(model, deterministic=True)``
    works as on ``nnx.Dropout``."""

    def set_view(self, deterministic: bool | None = None) -> None:
        """Used by ``nnx.view``.

        Args:
          deterministic: if True, no masks are drawn (evaluation mode).
        """
        if deterministic is not None:
            self.deterministic = deterministic


def split_key(rng: Array | None, n: int) -> list[Array | None]:
    """``n`` independent keys (or ``n`` times ``None``)."""
    return [None] * n if rng is None else list(jax.random.split(rng, n))


def check_rate(fn: str, name: str, value: Any) -> None:
    """A drop probability: a real number in ``[0, 1)``."""
    check_number(fn, name, value)
    check_in_range(fn, name, value, 0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# Functions


def dropout(x: Array, rate: float | Array, rng: Array | None, *, train: bool) -> Array:
    r"""Inverted dropout: zero each element with probability ``rate`` and scale by ``1/(1-rate)``.

    Args:
      x: activations.
      rate: the drop probability :math:`p \in [0, 1)` (a jax array may be traced, e.g. swept).
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
    array = check_array("dropout", "x", x)
    check_number("dropout", "rate", rate, allow_array=True)
    check_in_range("dropout", "rate", rate, 0.0, 1.0)
    check_bool("dropout", "train", train)
    if not train or (is_real_number(rate) and rate == 0.0):
        return x
    if rng is None:
        raise ValueError("dropout: train=True needs rng=a jax.random key")
    check_key("dropout", "rng", rng)
    x = jnp.asarray(array)
    keep = jax.random.bernoulli(rng, 1.0 - rate, jnp.shape(x))
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


def drop_path(x: Array, rate: float | Array, rng: Array | None, *, train: bool) -> Array:
    r"""Stochastic depth for a residual branch: drop the whole branch per example.

    While training each example's branch output is kept with probability :math:`1 - p` and
    scaled by :math:`1/(1 - p)` (the "row" mode of torchvision's ``StochasticDepth``); at
    evaluation it is returned unchanged.

    Args:
      x: the branch's output, examples on the first axis.
      rate: the drop probability :math:`p \in [0, 1)`.
      rng: a ``jax.random`` key (needed when ``train`` and ``rate > 0``).
      train: drop (``True``) or return ``x`` unchanged (``False``).

    Returns:
      ``x`` with whole rows zeroed (the others scaled by :math:`1/(1-p)`) while training.

    Examples:
      >>> import optlab
      >>> print(optlab.nn.drop_path(jnp.ones((2, 2)), 0.5, None, train=False))
      [[1. 1.]
       [1. 1.]]

    References:
      Huang et al., Deep Networks with Stochastic Depth, 2016. https://arxiv.org/abs/1603.09382
    """
    array = check_array("drop_path", "x", x, min_ndim=1)
    check_number("drop_path", "rate", rate, allow_array=True)
    check_in_range("drop_path", "rate", rate, 0.0, 1.0)
    check_bool("drop_path", "train", train)
    if not train or (is_real_number(rate) and rate == 0.0):
        return x
    if rng is None:
        raise ValueError("drop_path: train=True needs rng=a jax.random key")
    check_key("drop_path", "rng", rng)
    x = jnp.asarray(array)
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    keep = jax.random.bernoulli(rng, 1.0 - rate, shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


# ---------------------------------------------------------------------------------------------
# Layers


class Dense(Stochastic):
    r"""A fully connected layer :math:`y = x W + b`, optionally with DropConnect.

    Args:
      in_features: input width.
      out_features: output width.
      kernel_init: initializer of :math:`W` by name or callable (see
        :func:`optlab.nn.get_initializer`); Keras's default ``"glorot_uniform"``.
      bias_init: initializer of :math:`b`; zeros by default (``"torch_default"`` draws
        :math:`U(\pm 1/\sqrt{\text{in\_features}})` as ``torch.nn.Linear`` does).
      use_bias: whether the layer has a bias.
      dropconnect: probability of dropping each weight while training (inverted scaling).
      deterministic: start in evaluation mode (``.train()`` / ``.eval()`` switch it).
      keep_rngs: keep a stream for the DropConnect masks (``False`` inside the MLPs, which pass
        keys down from their own stream).
      rngs: ``flax.nnx.Rngs`` (or an int seed) for the initial values and the masks.

    Examples:
      >>> import optlab
      >>> layer = optlab.nn.Dense(3, 2, kernel_init="ones", rngs=0)
      >>> print(layer(jnp.ones((1, 3))))
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
        deterministic: bool = False,
        keep_rngs: bool = True,
        rngs: nnx.Rngs | int,
    ):
        check_integer("Dense", "in_features", in_features, 1)
        check_integer("Dense", "out_features", out_features, 1)
        check_bool("Dense", "use_bias", use_bias)
        check_rate("Dense", "dropconnect", dropconnect)
        check_bool("Dense", "deterministic", deterministic)
        check_bool("Dense", "keep_rngs", keep_rngs)
        check_initializer("Dense", "kernel_init", kernel_init)
        check_initializer("Dense", "bias_init", bias_init)
        kinit = get_initializer(kernel_init)
        binit = bias_initializer(bias_init, in_features) if use_bias else None
        rngs = as_rngs(rngs, "Dense")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.dropconnect = float(dropconnect)
        self.deterministic = bool(deterministic)
        self.kernel = nnx.Param(kinit(rngs.params(), (in_features, out_features), jnp.float32))
        if binit is not None:
            self.bias = nnx.Param(binit(rngs.params(), (out_features,), jnp.float32))
        else:
            self.bias = None
        self.rngs = random_stream(rngs, "Dense") if keep_rngs and self.dropconnect else None

    def __call__(self, x: Array, *, train: bool | None = None, rng: Array | None = None) -> Array:
        check_train("Dense", train)
        w = self.kernel[...]
        if self.dropconnect > 0.0 and is_training(train, self.deterministic):
            key = layer_key("Dense(dropconnect)", self, rng)
            keep = jax.random.bernoulli(key, 1.0 - self.dropconnect, w.shape)
            w = jnp.where(keep, w / (1.0 - self.dropconnect), jnp.zeros_like(w))
        y = x @ w
        if self.bias is not None:
            y = y + self.bias[...]
        return y


class Activation(nnx.Module):
    """A stateless activation as a layer (the name is kept static, so models compare equal).

    Examples:
      >>> import optlab
      >>> print(optlab.nn.Activation(("leaky_relu", {"negative_slope": 0.5}))(-jnp.ones(2)))
      [-0.5 -0.5]
    """

    def __init__(self, spec: ActivationSpec = "relu"):
        if callable(spec) and not isinstance(spec, str | tuple):
            self.name, self.options, self.fn = getattr(spec, "__name__", "custom"), (), spec
        else:
            name, opts = parse_activation(spec, "Activation", "spec")
            # Only the name and options are kept (a functools.partial compares by identity,
            # which would make two equal models' graph definitions differ).
            self.name, self.options, self.fn = name, tuple(sorted(opts.items())), None

    def __call__(self, x: Array, *, train: bool | None = None, rng: Array | None = None) -> Array:
        del train, rng
        fn = self.fn if self.fn is not None else get_activation(self.name, **dict(self.options))
        return fn(x)


class PReLU(nnx.Module):
    """Parametric ReLU with a learned slope, one for the layer or one per unit.

    Args:
      num_features: width of the input (used when ``per_unit``).
      init: initial slope (0.25 in He et al.), a finite number.
      per_unit: one slope per unit (``True``) or one per layer (``False``).

    Examples:
      >>> import optlab
      >>> layer = optlab.nn.PReLU(2, init=0.5)
      >>> print(layer(jnp.array([-2.0, 2.0])))
      [-1.  2.]
    """

    def __init__(self, num_features: int = 1, *, init: float = 0.25, per_unit: bool = False):
        check_integer("PReLU", "num_features", num_features, 1)
        check_number("PReLU", "init", init)
        check_finite("PReLU", "init", init)
        check_bool("PReLU", "per_unit", per_unit)
        shape = (num_features,) if per_unit else ()
        self.alpha = nnx.Param(jax.device_put(np.full(shape, init, np.float32)))

    def __call__(self, x: Array, *, train: bool | None = None, rng: Array | None = None) -> Array:
        del train, rng
        return prelu(x, self.alpha[...])


class RReLU(Stochastic):
    """Randomized leaky ReLU (see :func:`optlab.nn.rrelu`) as a layer.

    Args:
      lower: lower bound of the random slope (finite, ``>= 0``).
      upper: upper bound (finite, ``>= lower``).
      deterministic: start in evaluation mode (the mean slope).
      rngs: ``nnx.Rngs`` or a seed for the slopes drawn while training; ``None`` when every
        training call passes ``rng=``.

    Examples:
      >>> import optlab
      >>> layer = optlab.nn.RReLU(lower=0.1, upper=0.3)
      >>> layer.eval()
      >>> print(layer(jnp.array([-1.0, 1.0])))
      [-0.2  1. ]
    """

    def __init__(
        self,
        *,
        lower: float = 1.0 / 8.0,
        upper: float = 1.0 / 3.0,
        deterministic: bool = False,
        rngs: nnx.Rngs | int | None = None,
    ):
        check_rrelu_bounds("RReLU", lower, upper)
        check_bool("RReLU", "deterministic", deterministic)
        self.lower, self.upper = float(lower), float(upper)
        self.deterministic = bool(deterministic)
        self.rngs = None if rngs is None else random_stream(rngs, "RReLU")

    def __call__(self, x: Array, *, train: bool | None = None, rng: Array | None = None) -> Array:
        check_train("RReLU", train)
        training = is_training(train, self.deterministic)
        key = layer_key("RReLU", self, rng) if training else None
        return rrelu(x, key, lower=self.lower, upper=self.upper, train=training)


def make_activation(
    spec: ActivationSpec, num_features: int, fn: str = "MLP"
) -> tuple[nnx.Module, int]:
    """The activation layer for ``spec`` and the width its input must have.

    Maxout needs ``num_pieces`` times ``num_features`` inputs; every other activation keeps the
    width. Used by the MLPs (whose random layers get keys from the model's stream).
    """
    if callable(spec) and not isinstance(spec, str | tuple):
        return Activation(spec), num_features
    name, opts = parse_activation(spec, fn)
    if name == "prelu":
        return PReLU(num_features, init=opts["init"], per_unit=opts["per_unit"]), num_features
    if name == "rrelu":
        return RReLU(lower=opts["lower"], upper=opts["upper"]), num_features
    if name == "maxout":
        return Activation(spec), num_features * opts["num_pieces"]
    return Activation(spec), num_features


class Dropout(Stochastic):
    """Inverted dropout as a layer (see :func:`optlab.nn.dropout`), like ``nnx.Dropout``.

    Args:
      rate: the drop probability, in ``[0, 1)``.
      deterministic: start in evaluation mode (``.train()`` / ``.eval()`` switch it).
      rngs: ``nnx.Rngs`` or a seed for the masks; ``None`` when every training call passes
        ``rng=``.

    Examples:
      >>> import optlab
      >>> layer = optlab.nn.Dropout(0.5, rngs=0)
      >>> layer.eval()
      >>> print(layer(jnp.ones(3)))
      [1. 1. 1.]
    """

    def __init__(
        self,
        rate: float = 0.5,
        *,
        deterministic: bool = False,
        rngs: nnx.Rngs | int | None = None,
    ):
        check_rate("Dropout", "rate", rate)
        check_bool("Dropout", "deterministic", deterministic)
        self.rate = float(rate)
        self.deterministic = bool(deterministic)
        self.rngs = None if rngs is None else random_stream(rngs, "Dropout")

    def __call__(self, x: Array, *, train: bool | None = None, rng: Array | None = None) -> Array:
        check_train("Dropout", train)
        if self.rate == 0.0 or not is_training(train, self.deterministic):
            return x
        return dropout(x, self.rate, layer_key("Dropout", self, rng), train=True)


class GaussianNoise(Stochastic):
    r"""Adds :math:`\mathcal N(0, \sigma^2)` noise while training; the identity at evaluation.

    Args:
      stddev: the noise's standard deviation :math:`\sigma \ge 0`.
      deterministic: start in evaluation mode.
      rngs: ``nnx.Rngs`` or a seed for the noise; ``None`` when every training call passes
        ``rng=``.

    Examples:
      >>> import optlab
      >>> print(optlab.nn.GaussianNoise(0.1)(jnp.ones(2), train=False))
      [1. 1.]
    """

    def __init__(
        self,
        stddev: float,
        *,
        deterministic: bool = False,
        rngs: nnx.Rngs | int | None = None,
    ):
        check_number("GaussianNoise", "stddev", stddev)
        check_nonnegative("GaussianNoise", "stddev", stddev)
        check_bool("GaussianNoise", "deterministic", deterministic)
        self.stddev = float(stddev)
        self.deterministic = bool(deterministic)
        self.rngs = None if rngs is None else random_stream(rngs, "GaussianNoise")

    def __call__(self, x: Array, *, train: bool | None = None, rng: Array | None = None) -> Array:
        check_train("GaussianNoise", train)
        if self.stddev == 0.0 or not is_training(train, self.deterministic):
            return x
        key = layer_key("GaussianNoise", self, rng)
        return x + self.stddev * jax.random.normal(key, jnp.shape(x), x.dtype)
