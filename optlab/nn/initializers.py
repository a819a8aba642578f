r"""Weight initializers by name, drawn on the host so that building a model compiles nothing.

For a kernel of shape ``(fan_in, fan_out)`` (more generally ``(*receptive, fan_in, fan_out)``,
the receptive field multiplying both fans) the variance-scaling family draws weights with

.. math::

   \operatorname{std}(W) = \sqrt{\frac{s}{n}}, \qquad
   \begin{array}{lll}
   \text{lecun}: & s = 1, & n = \mathrm{fan\_in} \\
   \text{glorot (xavier)}: & s = 1, & n = (\mathrm{fan\_in} + \mathrm{fan\_out}) / 2 \\
   \text{he (kaiming)}: & s = 2, & n = \mathrm{fan\_in}
   \end{array}

The ``*_normal`` variants draw from a normal truncated at two standard deviations and rescaled to
that standard deviation (as Keras and ``jax.nn.initializers`` do); the ``*_uniform`` ones from
:math:`U(-l, l)` with :math:`l = \sqrt{3 s / n}`. ``torch_default`` is PyTorch's default for
``nn.Linear``: ``kaiming_uniform_(a=sqrt(5))`` for the weights, whose gain
:math:`\sqrt{2 / (1 + a^2)} = \sqrt{1/3}` makes the bound :math:`l = 1/\sqrt{\mathrm{fan\_in}}`,
and the same :math:`U(-1/\sqrt{\mathrm{fan\_in}}, 1/\sqrt{\mathrm{fan\_in}})` for the biases (a
bias initializer needs the layer's ``fan_in``, which :class:`optlab.nn.Dense` supplies).
``zeros`` and ``constant`` exist to show the symmetry problem (every unit of a layer computes the
same function and gets the same gradient); ``normal`` with a small ``stddev`` (the seeds' 0.01 or
0.05) shows vanishing activations in deep nets.

Names: see :func:`initializer_names`; options are given as keyword arguments or a
``(name, options)`` pair: ``("normal", {"stddev": 0.05})``, ``("constant", {"value": 0.1})``.

Every initializer has the ``jax.nn.initializers`` signature ``(key, shape, dtype=float32) ->
array``. The values are drawn with NumPy from a generator seeded by the key's data, then moved
to the device: eager ``jax.random`` calls would compile a few XLA programs for every new shape
(about 0.3 s per layer), whereas this costs microseconds. Under a JAX transformation (a traced
key: ``nnx.jit``, ``nnx.vmap``, ``nnx.eval_shape``) the same host function runs through
``jax.pure_callback``, so a model built eagerly or under ``jit`` gets the same values from the
same key.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optlab.core.validation import (
    check_choice,
    check_finite,
    check_integer,
    check_nonnegative,
    check_number,
)

Initializer = Callable[..., jax.Array]
InitializerSpec = str | tuple[str, Mapping[str, Any]] | Initializer

# A standard normal truncated to [-2, 2] has standard deviation 0.87962566103423978; the
# variance-scaling normals divide by it so the truncated draw has the intended variance.
_TRUNCATED_STD = 0.87962566103423978


def _fans(name: str, shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) < 2:
        raise ValueError(
            f"get_initializer: {name!r} scales by the fans of a kernel and needs a shape with "
            f"at least 2 axes (fan_in, fan_out), got shape={shape}; initialize biases with "
            f"'zeros', 'constant' or 'torch_default'"
        )
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_normal(gen: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal draws conditioned on [-2, 2] (rejected draws are drawn again)."""
    z = gen.standard_normal(shape)
    bad = np.abs(z) > 2.0
    while bad.any():
        z[bad] = gen.standard_normal(int(bad.sum()))
        bad = np.abs(z) > 2.0
    return z


def _variance_scaling(scale: float, mode: str, distribution: str, name: str):
    def sample(gen, shape):
        fan_in, fan_out = _fans(name, shape)
        n = {"fan_in": fan_in, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
        variance = scale / max(n, 1.0)
        if distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return gen.uniform(-limit, limit, shape)
        return _truncated_normal(gen, shape) * (math.sqrt(variance) / _TRUNCATED_STD)

    return sample


def _orthogonal(scale: float):
    def sample(gen, shape):
        if len(shape) < 2:
            raise ValueError(
                f"get_initializer: 'orthogonal' needs a shape with at least 2 axes, got "
                f"shape={shape}"
            )
        n_cols = shape[-1]
        n_rows = math.prod(shape) // n_cols if n_cols else 0
        if n_rows == 0 or n_cols == 0:
            return np.zeros(shape)
        a = gen.standard_normal((max(n_rows, n_cols), min(n_rows, n_cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))  # the Haar measure (Mezzadri's sign correction)
        if n_rows < n_cols:
            q = q.T
        return scale * q.reshape(shape)

    return sample


def _torch_default(fan_in: int | None):
    def sample(gen, shape):
        n = fan_in
        if n is None:
            if len(shape) < 2:
                raise ValueError(
                    f"get_initializer: 'torch_default' on a bias (shape={shape}) needs the "
                    f"layer's fan_in: ('torch_default', {{'fan_in': n}}); optlab.nn.Dense "
                    f"passes it for bias_init='torch_default'"
                )
            n = math.prod(shape[:-1])
        bound = 1.0 / math.sqrt(n) if n > 0 else 0.0
        return gen.uniform(-bound, bound, shape)

    return sample


def _check_scale(name: str, option: str, value: Any, *, positive: bool = False) -> None:
    fn = f"get_initializer({name!r})"
    check_number(fn, option, value)
    check_nonnegative(fn, option, value) if positive else check_finite(fn, option, value)


def _fan_in_option(fan_in: Any) -> int | None:
    if fan_in is not None:
        check_integer("get_initializer('torch_default')", "fan_in", fan_in, 0)
    return fan_in


# name -> (factory of a NumPy sampler ``(generator, shape) -> float64 array``, default options).
_REGISTRY: dict[str, tuple[Callable[..., Callable], dict[str, Any]]] = {
    "zeros": (lambda: lambda gen, shape: np.zeros(shape), {}),
    "ones": (lambda: lambda gen, shape: np.ones(shape), {}),
    "constant": (lambda value: lambda gen, shape: np.full(shape, float(value)), {"value": 0.0}),
    "normal": (
        lambda stddev: lambda gen, shape: stddev * gen.standard_normal(shape),
        {"stddev": 0.01},
    ),
    "truncated_normal": (
        lambda stddev: lambda gen, shape: stddev * _truncated_normal(gen, shape),
        {"stddev": 0.01},
    ),
    "uniform": (lambda scale: lambda gen, shape: gen.uniform(0.0, scale, shape), {"scale": 0.01}),
    "glorot_normal": (
        lambda: _variance_scaling(1.0, "fan_avg", "normal", "glorot_normal"),
        {},
    ),
    "glorot_uniform": (
        lambda: _variance_scaling(1.0, "fan_avg", "uniform", "glorot_uniform"),
        {},
    ),
    "he_normal": (lambda: _variance_scaling(2.0, "fan_in", "normal", "he_normal"), {}),
    "he_uniform": (lambda: _variance_scaling(2.0, "fan_in", "uniform", "he_uniform"), {}),
    "lecun_normal": (lambda: _variance_scaling(1.0, "fan_in", "normal", "lecun_normal"), {}),
    "lecun_uniform": (lambda: _variance_scaling(1.0, "fan_in", "uniform", "lecun_uniform"), {}),
    "orthogonal": (_orthogonal, {"scale": 1.0}),
    "torch_default": (lambda fan_in: _torch_default(_fan_in_option(fan_in)), {"fan_in": None}),
}
_ALIASES = {
    "xavier_normal": "glorot_normal",
    "xavier_uniform": "glorot_uniform",
    "kaiming_normal": "he_normal",
    "kaiming_uniform": "he_uniform",
}
# Options that must be finite numbers (and, second entry, non-negative).
_NUMERIC_OPTIONS = {
    "constant": {"value": False},
    "normal": {"stddev": True},
    "truncated_normal": {"stddev": True},
    "uniform": {"scale": True},
    "orthogonal": {"scale": False},
}


def initializer_names() -> list[str]:
    """Every name accepted by :func:`get_initializer` (aliases included)."""
    return sorted([*_REGISTRY, *_ALIASES])


def _seed(key_data: np.ndarray) -> np.random.Generator:
    return np.random.default_rng(np.asarray(key_data, np.uint32).ravel().tolist())


def _draw(sample: Callable, shape: tuple[int, ...], dtype: Any, key_data: np.ndarray) -> Any:
    return np.asarray(sample(_seed(key_data), shape), np.float64).astype(dtype)


def _host_initializer(name: str, sample: Callable) -> Initializer:
    def init(key: jax.Array, shape: Any, dtype: Any = jnp.float32, out_sharding: Any = None):
        shape = tuple(int(d) for d in shape)
        dtype = jnp.dtype(dtype)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise ValueError(
                f"get_initializer({name!r}): dtype must be a real floating dtype, got {dtype}"
            )
        data = key
        if jax.dtypes.issubdtype(getattr(key, "dtype", np.uint32), jax.dtypes.prng_key):
            data = jax.random.key_data(key)
        if isinstance(data, jax.core.Tracer):  # under jit/vmap: the same host draw, as a callback
            out = jax.ShapeDtypeStruct(shape, dtype)
            fn = functools.partial(_draw, sample, shape, dtype)
            return jax.pure_callback(fn, out, data, vmap_method="sequential")
        values = _draw(sample, shape, dtype, np.asarray(data))
        return jax.device_put(values, out_sharding)

    init.__name__ = name
    return init


def _split_spec(
    spec: Any, options: Mapping[str, Any], fn: str, argument: str = "initializer"
) -> tuple[str, dict[str, Any]]:
    if isinstance(spec, tuple):
        if len(spec) != 2 or not isinstance(spec[0], str) or not isinstance(spec[1], Mapping):
            raise TypeError(
                f"{fn}: an initializer given as a tuple must be (name, dict_of_options), "
                f"got {spec!r}"
            )
        return spec[0], {**spec[1], **options}
    if isinstance(spec, str):
        return spec, dict(options)
    raise TypeError(
        f"{fn}: {argument} must be an initializer name, (name, options) or a callable (key, "
        f"shape, dtype) -> array, got {argument}={spec!r} ({type(spec).__name__})"
    )


def parse_initializer(
    spec: Any, fn: str = "get_initializer", *, argument: str = "initializer", **options: Any
) -> tuple[str, dict]:
    """``(canonical name, options with defaults)`` of a named initializer spec, checked
    (``argument`` names the argument in the messages, e.g. ``kernel_init``)."""
    name, opts = _split_spec(spec, options, fn, argument)
    name = name.lower()
    check_choice(fn, argument, name, initializer_names())
    name = _ALIASES.get(name, name)
    defaults = _REGISTRY[name][1]
    unknown = sorted(set(opts) - set(defaults))
    if unknown:
        raise ValueError(
            f"{fn}: initializer {name!r} has no option(s) {unknown}; its options are "
            f"{sorted(defaults)}"
        )
    merged = {**defaults, **opts}
    for option, nonnegative in _NUMERIC_OPTIONS.get(name, {}).items():
        _check_scale(name, option, merged[option], positive=nonnegative)
    return name, merged


def get_initializer(spec: InitializerSpec, **options: Any) -> Initializer:
    """The initializer named ``spec`` (a callable is returned unchanged).

    Args:
      spec: a name from :func:`initializer_names`, a ``(name, options)`` pair, or a callable
        ``(key, shape, dtype) -> array`` (e.g. a ``jax.nn.initializers`` function).
      **options: options of the initializer (``stddev`` for ``normal`` and
        ``truncated_normal``, ``value`` for ``constant``, ``scale`` for ``orthogonal`` and
        ``uniform`` (:math:`U[0, \\mathrm{scale})`), ``fan_in`` for ``torch_default`` on a bias).

    Returns:
      An initializer ``(key, shape, dtype=float32) -> array``.

    Examples:
      >>> import optlab
      >>> init = optlab.nn.get_initializer("constant", value=0.5)
      >>> print(init(jax.random.key(0), (2,)))
      [0.5 0.5]
      >>> w = optlab.nn.get_initializer("torch_default")(jax.random.key(0), (16, 4))
      >>> print(bool(jnp.all(jnp.abs(w) <= 1 / 4)))  # U(-1/sqrt(fan_in), 1/sqrt(fan_in))
      True
    """
    if callable(spec) and not isinstance(spec, str | tuple):
        if options:
            raise TypeError(
                f"get_initializer: options {sorted(options)} apply to a named initializer, "
                f"not to the callable {spec!r}"
            )
        return spec
    name, opts = parse_initializer(spec, argument="spec", **options)
    factory = _REGISTRY[name][0]
    return _host_initializer(name, factory(**opts))


def check_initializer(fn: str, argument: str, spec: Any) -> None:
    """Raises naming ``fn`` and ``argument`` unless ``spec`` is a callable or a valid named
    initializer spec (what :func:`get_initializer` accepts)."""
    if not (callable(spec) and not isinstance(spec, str | tuple)):
        parse_initializer(spec, fn, argument=argument)


def bias_initializer(spec: InitializerSpec, fan_in: int) -> Initializer:
    """:func:`get_initializer` for a layer's bias: ``torch_default`` gets the layer's ``fan_in``."""
    if callable(spec) and not isinstance(spec, str | tuple):
        return spec
    name, opts = parse_initializer(spec)
    if name == "torch_default" and opts["fan_in"] is None:
        opts["fan_in"] = fan_in
    return _host_initializer(name, _REGISTRY[name][0](**opts))
