r"""Loss landscapes: a model's loss along a line or over a plane through parameter space.

Two ways to look (both evaluated as one compiled, ``vmap``-ed program over the points):

* **Linear interpolation** between two parameter sets (Goodfellow, Vinyals & Saxe 2015),
  typically the initialization and the trained weights:
  :math:`L\big((1 - \alpha)\,\theta_a + \alpha\,\theta_b\big)`.
* **Slices along filter-normalized random directions** (Li et al. 2018):
  :math:`L(\theta + \alpha\,\delta)` or :math:`L(\theta + \alpha\,\delta + \beta\,\eta)`, with
  each filter of :math:`\delta, \eta` rescaled to the norm of the same filter of
  :math:`\theta` (:func:`filter_normalize`), so the picture does not depend on the weights'
  scale (which BatchNorm or weight decay make arbitrary).

::

    import optlab as ol
    slice_2d = ol.diagnostics.landscape(model, directions=2, loss=loss, data=(x, y))
    fig = ol.diagnostics.plot_landscape(slice_2d)
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from optlab.core.validation import check_int_at_least, describe_structure_difference
from optlab.data.batching import batches
from optlab.nn.apply import functional

__all__ = ["Landscape", "filter_normalize", "landscape", "plot_landscape", "random_directions"]

Params = Any

_EPS = 1e-10  # Li et al.'s code: d * ||w|| / (||d|| + 1e-10)


@dataclasses.dataclass(frozen=True)
class Landscape:
    """Loss values along a line or over a plane in parameter space.

    Attributes:
      kind: ``"interpolation"`` (from ``params_a`` at :math:`\\alpha = 0` to ``params_b`` at 1),
        ``"1d"`` or ``"2d"`` (random directions).
      coords: ``(alphas,)``, or ``(alphas, betas)`` for ``"2d"``; 1-D NumPy arrays.
      values: the mean loss, ``(len(alphas),)``, or ``(len(alphas), len(betas))`` with
        ``values[i, j]`` at :math:`\\theta + \\alpha_i \\delta + \\beta_j \\eta` (``ij``
        indexing: rows follow the first direction; matplotlib's ``contour(alphas, betas, Z)``
        wants ``Z = values.T``).
      directions: the directions used, trees like the parameters: ``(theta_b - theta_a,)``
        for an interpolation, ``(delta,)`` or ``(delta, eta)`` otherwise.
      center: the parameters at :math:`\\alpha = \\beta = 0` (``params_a``).
    """

    kind: str
    coords: tuple[np.ndarray, ...]
    values: np.ndarray
    directions: tuple[Params, ...]
    center: Params


def filter_normalize(direction: Params, params: Params, *, ignore_bias_bn: bool = True) -> Params:
    r"""Rescales each filter of ``direction`` to the norm of the same filter of ``params``.

    .. math::

        d_{i,j} \leftarrow \frac{d_{i,j}}{\lVert d_{i,j} \rVert + 10^{-10}}\,
        \lVert \theta_{i,j} \rVert,

    where :math:`d_{i,j}` is the :math:`j`-th filter of layer :math:`i`. A filter is one output
    unit: for a Dense kernel ``(in, out)`` the column of unit :math:`j` (its incoming weights),
    for an ``HWIO`` convolution kernel the slice ``[..., j]``; in general the norm runs over
    every axis but the last. Leaves with at most one dimension (biases, BatchNorm/LayerNorm
    scales and offsets, PReLU slopes) have no filters: with ``ignore_bias_bn=True`` (the
    paper's choice, its code's ``--xignore biasbn``) their direction is zero, so they stay at
    their values; with ``False`` the direction is the parameter itself, as in the code's
    default.

    Args:
      direction: a tree like ``params`` (e.g. Gaussian noise).
      params: the parameters the direction starts from.
      ignore_bias_bn: zero the direction on leaves with ``ndim <= 1`` (else copy ``params``).

    Returns:
      The normalized direction, a tree like ``params``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> params = {"kernel": jnp.array([[3.0, 0.0], [4.0, 1.0]]), "bias": jnp.ones(2)}
      >>> d = {"kernel": jnp.array([[1.0, 2.0], [0.0, 0.0]]), "bias": jnp.ones(2)}
      >>> out = ol.diagnostics.filter_normalize(d, params)
      >>> print(out["kernel"], out["bias"])
      [[5. 1.]
       [0. 0.]] [0. 0.]

    References:
      Li, Xu, Taylor, Studer & Goldstein, `Visualizing the loss landscape of neural nets
      <https://arxiv.org/abs/1712.09913>`_, NeurIPS 2018.
    """
    _check_like("filter_normalize", "direction", direction, params)

    def leaf(d, p):
        d, p = jnp.asarray(d), jnp.asarray(p)
        if p.ndim <= 1:
            return jnp.zeros_like(p) if ignore_bias_bn else p
        axes = tuple(range(p.ndim - 1))
        d_norm = jnp.sqrt(jnp.sum(jnp.square(d), axis=axes, keepdims=True))
        p_norm = jnp.sqrt(jnp.sum(jnp.square(p), axis=axes, keepdims=True))
        return (d * (p_norm / (d_norm + _EPS))).astype(p.dtype)

    return jax.tree.map(leaf, direction, params)


def random_directions(
    params: Params, num: int = 1, *, seed: int = 0, ignore_bias_bn: bool = True
) -> tuple[Params, ...]:
    r"""``num`` filter-normalized Gaussian directions for ``params`` (Li et al. 2018).

    Each direction draws :math:`d \sim \mathcal{N}(0, I)` of the parameters' shapes (from
    ``jax.random.key(seed)``, one key per direction and leaf) and applies
    :func:`filter_normalize`. In many dimensions two such directions are nearly orthogonal.

    Args:
      params: the parameters (a tree of arrays).
      num: how many directions, at least 1.
      seed: the random seed.
      ignore_bias_bn: see :func:`filter_normalize`.

    Returns:
      A tuple of ``num`` trees like ``params``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> params = {"kernel": jnp.ones((3, 2)), "bias": jnp.ones(2)}
      >>> (d,) = ol.diagnostics.random_directions(params, seed=0)
      >>> print(jnp.linalg.norm(d["kernel"], axis=0).round(4), d["bias"])
      [1.7321 1.7321] [0. 0.]
    """
    check_int_at_least("random_directions", "num", num, 1)
    params = jax.tree.map(jnp.asarray, params)
    return _random_directions(params, jax.random.key(seed), num, bool(ignore_bias_bn))


@functools.partial(jax.jit, static_argnums=(2, 3))
def _random_directions(
    params: Params, key: jax.Array, num: int, ignore_bias_bn: bool
) -> tuple[Params, ...]:
    """One compiled program (rather than a small one per leaf and operation)."""
    leaves, treedef = jax.tree.flatten(params)
    out = []
    for k in jax.random.split(key, num):
        keys = jax.random.split(k, max(len(leaves), 1))
        noise = [jax.random.normal(k, p.shape, p.dtype) for k, p in zip(keys, leaves, strict=False)]
        out.append(
            filter_normalize(
                jax.tree.unflatten(treedef, noise), params, ignore_bias_bn=ignore_bias_bn
            )
        )
    return tuple(out)


def _check_like(fn: str, name: str, tree: Params, params: Params) -> None:
    if jax.tree.structure(tree) != jax.tree.structure(params):
        raise ValueError(
            f"{fn}: {name} must have the structure of the model's parameters "
            f"({describe_structure_difference(params, tree)})"
        )
    for (path, a), b in zip(
        jax.tree_util.tree_flatten_with_path(tree)[0], jax.tree.leaves(params), strict=True
    ):
        if jnp.shape(a) != jnp.shape(b):
            raise ValueError(
                f"{fn}: {name}{jax.tree_util.keystr(path)} has shape {jnp.shape(a)}, the "
                f"parameter has shape {jnp.shape(b)}"
            )


def _as_params(fn: str, name: str, value: Any, params: Params) -> Params:
    """A parameter tree from a tree or from an nnx model (its ``nnx.Param`` values)."""
    if isinstance(value, nnx.Module):
        value = nnx.to_pure_dict(nnx.state(value, nnx.Param))
    _check_like(fn, name, value, params)
    return jax.tree.map(jnp.asarray, value)


def _xy(fn: str, data: Any) -> tuple[Any, Any]:
    if hasattr(data, "x_train") and hasattr(data, "y_train"):
        return data.x_train, data.y_train
    if isinstance(data, tuple | list) and len(data) == 2:
        return data[0], data[1]
    raise TypeError(
        f"{fn}: data must be (x, y) or an optlab.data dataset (its training split is used), got "
        f"{type(data).__name__}"
    )


def _span(fn: str, span: Any, default: tuple[float, float]) -> tuple[float, float]:
    if span is None:
        return default
    try:
        low, high = (float(v) for v in span)
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: span must be (low, high), got span={span!r}") from None
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"{fn}: span must be finite with low < high, got span={span!r}")
    return low, high


def landscape(
    model: nnx.Module,
    params_a: Params | nnx.Module | None = None,
    params_b: Params | nnx.Module | None = None,
    *,
    directions: int | Params | Sequence[Params] | None = None,
    loss: Callable[[jax.Array, jax.Array], jax.Array],
    data: Any,
    num_points: int = 25,
    span: tuple[float, float] | None = None,
    seed: int = 0,
    ignore_bias_bn: bool = True,
    batch_size: int | None = None,
    chunk_size: int = 64,
) -> Landscape:
    r"""The mean loss of ``model`` along an interpolation or over random directions.

    Exactly one of ``params_b`` and ``directions`` says which:

    * ``params_b`` given: :math:`L(\theta_a + \alpha\,(\theta_b - \theta_a))` for ``num_points``
      values of :math:`\alpha` in ``span`` (default :math:`[-0.5, 1.5]`), so :math:`\alpha = 0`
      is :math:`\theta_a` and :math:`\alpha = 1` is :math:`\theta_b` (Goodfellow et al. 2015).
    * ``directions`` given: :math:`L(\theta_a + \alpha\,\delta)` (1-D) or
      :math:`L(\theta_a + \alpha\,\delta + \beta\,\eta)` on a ``num_points`` x ``num_points``
      grid (2-D), :math:`\alpha, \beta` in ``span`` (default :math:`[-1, 1]`, as Li et al.).
      ``directions=1`` or ``2`` draws filter-normalized Gaussian directions
      (:func:`random_directions` with ``seed`` and ``ignore_bias_bn``); a tree like the
      parameters, or a sequence of one or two, is used as given (normalize your own with
      :func:`filter_normalize`).

    :math:`L` is the mean of ``loss`` over ``data``, with the model in evaluation mode
    (``apply(..., train=False)`` of :func:`optlab.nn.functional`: no dropout, BatchNorm's
    running averages). Only ``nnx.Param`` values move: the model's other state (the running
    averages) is ``model``'s throughout. All the points are evaluated by one compiled program,
    ``vmap``-ed over ``chunk_size`` points at a time.

    Args:
      model: the nnx model (its structure, and its parameters unless ``params_a`` is given).
      params_a: :math:`\theta_a`, the center or start: a parameter tree like
        ``optlab.nn.functional(model)[1]``, or an nnx model of the same structure;
        ``None`` for ``model``'s parameters.
      params_b: :math:`\theta_b`, the end of the interpolation (a tree or an nnx model).
      directions: ``1``, ``2``, a direction tree (or an nnx model, its parameters), or a
        sequence of one or two.
      loss: ``loss(predictions, targets)``, per-example values (or a scalar when
        ``batch_size`` is ``None``), e.g. ``ol.nn.softmax_cross_entropy_with_integer_labels``.
      data: ``(x, y)``, or an ``optlab.data`` dataset (its training split).
      num_points: points per axis, at least 2.
      span: ``(low, high)`` for :math:`\alpha` (and :math:`\beta`).
      seed: the seed of random directions.
      ignore_bias_bn: zero random directions on biases and norm parameters (Li et al.).
      batch_size: evaluate the data in batches of this size (padded batches are masked);
        ``None`` evaluates all of it at once.
      chunk_size: how many points are ``vmap``-ed together (memory: ``chunk_size`` times one
        forward pass); at least 1.

    Returns:
      A :class:`Landscape`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import optlab as ol
      >>> model = ol.nn.MLP(2, (4,), 1, rngs=0)
      >>> x, y = jnp.ones((8, 2)), jnp.zeros((8, 1))
      >>> zero = jax.tree.map(jnp.zeros_like, ol.nn.functional(model)[1])
      >>> line = ol.diagnostics.landscape(model, zero, model, loss=ol.nn.squared_error,
      ...                                 data=(x, y), num_points=5, span=(0.0, 1.0))
      >>> print(line.kind, line.coords[0], float(line.values[0]))
      interpolation [0.   0.25 0.5  0.75 1.  ] 0.0

    References:
      Goodfellow, Vinyals & Saxe, `Qualitatively characterizing neural network optimization
      problems <https://arxiv.org/abs/1412.6544>`_, ICLR 2015.

      Li, Xu, Taylor, Studer & Goldstein, `Visualizing the loss landscape of neural nets
      <https://arxiv.org/abs/1712.09913>`_, NeurIPS 2018.
    """
    fn = "landscape"
    if not isinstance(model, nnx.Module):
        raise TypeError(f"{fn}: model must be an nnx module, got {type(model).__name__}")
    if not callable(loss):
        raise TypeError(f"{fn}: loss must be a function loss(predictions, targets), got {loss!r}")
    check_int_at_least(fn, "num_points", num_points, 2)
    check_int_at_least(fn, "chunk_size", chunk_size, 1)
    if batch_size is not None:
        check_int_at_least(fn, "batch_size", batch_size, 1)
    x, y = _xy(fn, data)
    apply, params, model_state = functional(model)
    center = params if params_a is None else _as_params(fn, "params_a", params_a, params)
    center = jax.tree.map(jnp.asarray, center)

    if (params_b is None) == (directions is None):
        raise ValueError(
            f"{fn}: pass exactly one of params_b (interpolate from params_a to params_b) and "
            f"directions (1 or 2 random directions, or your own), got "
            f"{'both' if params_b is not None else 'neither'}"
        )
    if params_b is not None:
        end = _as_params(fn, "params_b", params_b, params)
        dirs = (jax.tree.map(lambda b, a: b - a, end, center),)
        kind, low_high = "interpolation", _span(fn, span, (-0.5, 1.5))
    else:
        if isinstance(directions, int) and not isinstance(directions, bool):
            if directions not in (1, 2):
                raise ValueError(
                    f"{fn}: directions must be 1 or 2 (random directions) or direction trees, "
                    f"got directions={directions!r}"
                )
            dirs = random_directions(center, directions, seed=seed, ignore_bias_bn=ignore_bias_bn)
        else:
            is_one_tree = isinstance(directions, nnx.Module) or (
                jax.tree.structure(directions) == jax.tree.structure(params)
            )
            dirs = (directions,) if is_one_tree else tuple(directions)
            if len(dirs) not in (1, 2):
                raise ValueError(
                    f"{fn}: directions must hold one or two trees like the parameters, got "
                    f"{len(dirs)}"
                )
            dirs = tuple(_as_params(fn, f"directions[{i}]", d, params) for i, d in enumerate(dirs))
        kind, low_high = f"{len(dirs)}d", _span(fn, span, (-1.0, 1.0))

    axis = np.linspace(*low_high, num_points)
    if len(dirs) == 1:
        coeffs = axis[:, None]
    else:
        coeffs = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    mean_loss = _mean_loss(fn, apply, loss, model_state, x, y, batch_size)

    def program(center, dirs, coeffs):
        def at(c):
            theta = jax.tree.map(
                lambda p, *ds: p + sum(c[k].astype(p.dtype) * d for k, d in enumerate(ds)),
                center,
                *dirs,
            )
            return mean_loss(theta)

        return jax.lax.map(at, coeffs, batch_size=min(chunk_size, coeffs.shape[0]))

    dtype = jnp.result_type(*jax.tree.leaves(center))
    values = np.asarray(jax.jit(program)(center, dirs, jnp.asarray(coeffs, dtype)))
    if len(dirs) == 2:
        values = values.reshape(num_points, num_points)
    coords = (axis,) * len(dirs)
    return Landscape(kind=kind, coords=coords, values=values, directions=dirs, center=center)


def _mean_loss(
    fn: str, apply: Any, loss: Any, model_state: Any, x: Any, y: Any, batch_size: int | None
) -> Callable[[Params], jax.Array]:
    """``theta -> mean loss over (x, y)`` in evaluation mode, over all rows or in batches."""
    n = int(np.shape(jax.tree.leaves(x)[0])[0])

    def weighted(theta, xb, yb, mask):
        out, _ = apply(theta, model_state, xb, train=False)
        per = jnp.asarray(loss(out, yb), jnp.float32)
        if per.ndim == 0:
            if mask is not None:
                raise ValueError(
                    f"{fn}: with batch_size, loss must return per-example values (padded rows "
                    f"are masked out), got a scalar"
                )
            return per
        per = per.reshape(per.shape[0], -1).mean(axis=1)
        if mask is None:
            return per.mean()
        return jnp.sum(per * mask)

    if batch_size is None or batch_size >= n:
        xs, ys = jax.tree.map(jnp.asarray, x), jnp.asarray(y)
        return lambda theta: weighted(theta, xs, ys, None)
    stacked = batches(x, y, batch_size, 0, drop_remainder=False, shuffle=False)

    def mean_loss(theta):
        def body(total, batch):
            return total + weighted(theta, batch.x, batch.y, batch.mask), None

        total, _ = jax.lax.scan(body, jnp.zeros((), jnp.float32), stacked)
        return total / n

    return mean_loss


# ---------------------------------------------------------------------------------------------
# Plot


def plot_landscape(
    result: Landscape,
    *,
    ax: Any = None,
    levels: int = 30,
    log: bool = False,
    title: str | None = None,
) -> Any:
    """Draws a :class:`Landscape`: a line (interpolation, 1-D) or contours (2-D).

    The interpolation marks :math:`\\theta_a` (:math:`\\alpha = 0`) and :math:`\\theta_b`
    (:math:`\\alpha = 1`); a slice marks its center. 2-D contours are labelled with their loss.

    Args:
      result: what :func:`landscape` returned.
      ax: a matplotlib ``Axes`` to draw on; ``None`` makes a new figure.
      levels: the number of contour levels (2-D).
      log: a log loss axis (1-D) or log-spaced contour levels (2-D).
      title: the axes' title; ``None`` for a description of the slice.

    Returns:
      The matplotlib ``Figure`` (not registered with ``pyplot``; ``fig.savefig(path)``).

    Examples:
      >>> import numpy as np
      >>> import optlab as ol
      >>> line = ol.diagnostics.Landscape("1d", (np.linspace(-1, 1, 5),),
      ...                                 np.array([2.0, 1.0, 0.5, 1.0, 2.0]), (), None)
      >>> fig = ol.diagnostics.plot_landscape(line)
      >>> print(fig.axes[0].get_xlabel())
      $\\alpha$ along a filter-normalized direction
    """
    fn = "plot_landscape"
    if not isinstance(result, Landscape):
        raise TypeError(
            f"{fn}: result must be what landscape() returned, got {type(result).__name__}"
        )
    check_int_at_least(fn, "levels", levels, 2)
    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.0, 4.5), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    values = np.asarray(result.values, np.float64)
    if values.ndim == 1:
        alphas = result.coords[0]
        ax.plot(alphas, values, "-o", ms=3, color="C0")
        if result.kind == "interpolation":
            for at, label in ((0.0, r"$\theta_a$"), (1.0, r"$\theta_b$")):
                ax.axvline(at, color="gray", ls=":", lw=1)
                ax.annotate(
                    label,
                    (at, 1.0),
                    xycoords=("data", "axes fraction"),
                    xytext=(3, -12),
                    textcoords="offset points",
                )
            ax.set_xlabel(r"$\alpha$ in $(1 - \alpha)\,\theta_a + \alpha\,\theta_b$")
            default = "linear interpolation"
        else:
            ax.axvline(0.0, color="gray", ls=":", lw=1)
            ax.set_xlabel(r"$\alpha$ along a filter-normalized direction")
            default = "1-D slice"
        ax.set_ylabel("loss")
        if log:
            ax.set_yscale("log")
    else:
        from matplotlib.colors import LogNorm

        alphas, betas = result.coords
        finite = values[np.isfinite(values)]
        if log:
            low = max(finite.min(), finite.max() * 1e-6, np.finfo(np.float64).tiny)
            lv = np.geomspace(low, finite.max(), levels)
            cs = ax.contour(alphas, betas, values.T, levels=lv, norm=LogNorm(), cmap="viridis")
        else:
            cs = ax.contour(alphas, betas, values.T, levels=levels, cmap="viridis")
        ax.clabel(cs, cs.levels[:: max(1, len(cs.levels) // 8)], fontsize=7, fmt="%.3g")
        ax.plot(0.0, 0.0, "*", color="gold", mec="black", ms=12, label=r"$\theta$")
        ax.set_xlabel(r"$\alpha$ (direction $\delta$)")
        ax.set_ylabel(r"$\beta$ (direction $\eta$)")
        ax.set_aspect("equal", adjustable="box")
        default = "2-D slice, filter-normalized directions"
    ax.set_title(title if title is not None else default)
    return fig
