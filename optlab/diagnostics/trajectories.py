r"""Optimizer trajectories on 2-D test surfaces, computed in one compiled program and drawn.

:func:`trajectories` runs several gradient transformations from the same point on a surface
of :mod:`optlab.diagnostics.surfaces` (or any scalar function of a vector); the lectures'
picture of SGD, momentum, Nesterov, AdaGrad, RMSProp and Adam on a ravine and a saddle is then
one call of :func:`plot_trajectories`::

    import optlab as ol
    from optlab.diagnostics import surfaces

    result = ol.diagnostics.trajectories(
        {"sgd": ol.sgd(0.075), "momentum": ol.sgd(0.02, momentum=0.9), "adam": ol.adam(0.5)},
        surfaces.ravine(), steps=60)
    fig = ol.diagnostics.plot_trajectories(result, gif="ravine.gif")
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optlab.core.base import apply_updates
from optlab.core.combine import with_extra_args_support
from optlab.core.validation import check_int_at_least
from optlab.diagnostics.surfaces import Surface

__all__ = ["Trajectories", "plot_trajectories", "trajectories"]


@dataclasses.dataclass(frozen=True)
class Trajectories:
    """The paths of several optimizers from one starting point, as NumPy arrays.

    Attributes:
      paths: ``{name: (steps + 1, dim) array}``: the start, then the point after each step.
      values: ``{name: (steps + 1,) array}``: the surface's value at each point of the path.
      surface: the :class:`~optlab.diagnostics.surfaces.Surface` they ran on (``None`` for a
        plain function).
    """

    paths: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    surface: Surface | None = None

    @property
    def steps(self) -> int:
        """The number of steps each optimizer took."""
        return next(iter(self.paths.values())).shape[0] - 1


def _check_optimizers(fn: str, optimizers: Any) -> dict[str, Any]:
    if not isinstance(optimizers, Mapping) or not optimizers:
        raise TypeError(
            f"{fn}: optimizers must be a non-empty dict name -> gradient transformation, got "
            f"optimizers={optimizers!r}"
        )
    txs = {}
    for name, tx in optimizers.items():
        if not isinstance(name, str):
            raise TypeError(f"{fn}: every optimizer's name must be a str, got {name!r}")
        if not (callable(getattr(tx, "init", None)) and callable(getattr(tx, "update", None))):
            raise TypeError(
                f"{fn}: optimizers[{name!r}] must be a gradient transformation (optlab or "
                f"optax, with init and update), got {type(tx).__name__}"
            )
        txs[name] = with_extra_args_support(tx)
    return txs


def _surface_fn(fn: str, surface: Any) -> tuple[Callable[[jax.Array], jax.Array], Surface | None]:
    if isinstance(surface, Surface):
        return surface.fn, surface
    if callable(surface):
        return surface, None
    raise TypeError(
        f"{fn}: surface must be an optlab.diagnostics.surfaces.Surface or a function of a "
        f"vector, got {type(surface).__name__}"
    )


def trajectories(
    optimizers: Mapping[str, Any],
    surface: Surface | Callable[[jax.Array], jax.Array],
    x0: jax.typing.ArrayLike | None = None,
    steps: int = 100,
) -> Trajectories:
    r"""Runs every optimizer on ``surface`` from ``x0``, all in one compiled program.

    For each optimizer, with :math:`g_t = \nabla f(x_t)`:

    .. math::

        u_t, s_{t+1} = \mathrm{update}(g_t, s_t, x_t), \qquad x_{t+1} = x_t + u_t,

    for :math:`t = 0, \dots, T - 1`, with :math:`s_0 = \mathrm{init}(x_0)`. ``update`` also
    receives the extra arguments ``value`` (:math:`f(x_t)`), ``grad`` and ``value_fn``
    (:math:`f`), so line-search methods (``ol.lbfgs()``) and loss-driven controllers work; an
    optax transformation that takes none of them is called without them. Each optimizer's
    steps are one ``lax.scan``; the optimizers' scans (their states differ in structure) are
    traced side by side into one ``jit``: one compilation and one dispatch for all of them.

    Args:
      optimizers: ``{name: transformation}``, optlab or optax gradient transformations.
      surface: a :class:`~optlab.diagnostics.surfaces.Surface`, or any function ``f(x)``
        returning a scalar for a vector ``x`` (then ``x0`` is required).
      x0: the common starting point, a vector; ``None`` for the surface's standard start.
        Its dtype is kept if it is a float array (float32 by default; float64 under x64).
      steps: the number of steps :math:`T \ge 1`.

    Returns:
      :class:`Trajectories` holding ``paths[name]`` (``(steps + 1, dim)``, the start first)
      and ``values[name]`` (``(steps + 1,)``) as NumPy arrays. A diverging run keeps its
      infinities and NaNs.

    Examples:
      >>> import optlab as ol
      >>> from optlab.diagnostics import surfaces
      >>> result = ol.diagnostics.trajectories(
      ...     {"sgd": ol.sgd(0.1), "momentum": ol.sgd(0.1, momentum=0.9)},
      ...     surfaces.saddle(), x0=[1.0, 0.001], steps=10)
      >>> print(result.paths["sgd"].shape, result.paths["sgd"][1])
      (11, 2) [0.8    0.0012]
      >>> print(result.values["sgd"][0])
      0.999999
    """
    fn_name = "trajectories"
    txs = _check_optimizers(fn_name, optimizers)
    f, surf = _surface_fn(fn_name, surface)
    if x0 is None:
        if surf is None:
            raise ValueError(f"{fn_name}: x0 is required when surface is a plain function")
        x0 = surf.x0
    check_int_at_least(fn_name, "steps", steps, 1)
    start = np.asarray(x0)
    if start.ndim != 1 or start.size < 1 or not np.issubdtype(start.dtype, np.number):
        raise ValueError(f"{fn_name}: x0 must be a vector of numbers, got x0={x0!r}")
    if not np.all(np.isfinite(start)):
        raise ValueError(f"{fn_name}: x0 must be finite, got x0={x0!r}")
    if surf is not None and start.shape[0] != surf.dim:
        raise ValueError(
            f"{fn_name}: x0 must have {surf.dim} coordinates for surface {surf.name!r}, got "
            f"x0={x0!r}"
        )
    dtype = start.dtype if np.issubdtype(start.dtype, np.floating) else np.float64
    # Cast on the host and device_put: a device-side cast (or jnp.asarray staging the copy)
    # would be a compilation of its own.
    start = jax.device_put(start.astype(jax.dtypes.canonicalize_dtype(dtype)))
    out = jax.eval_shape(f, start)
    if getattr(out, "shape", None) != ():
        raise ValueError(
            f"{fn_name}: the surface must return a scalar for a vector x, got shape "
            f"{getattr(out, 'shape', type(out).__name__)} for x of shape {start.shape}"
        )

    def run(start):
        paths, values = {}, {}
        for name, tx in txs.items():

            def step(carry, _, tx=tx):
                x, state = carry
                value, grad = jax.value_and_grad(f)(x)
                updates, state = tx.update(grad, state, x, value=value, grad=grad, value_fn=f)
                return (apply_updates(x, updates), state), (x, value)

            (last, _), (xs, vs) = jax.lax.scan(step, (start, tx.init(start)), length=steps)
            paths[name] = jnp.concatenate([xs, last[None]])
            values[name] = jnp.concatenate([vs, f(last)[None]])
        return paths, values

    paths, values = jax.device_get(jax.jit(run)(start))
    return Trajectories(
        paths={k: np.asarray(paths[k]) for k in txs},
        values={k: np.asarray(values[k]) for k in txs},
        surface=surf,
    )


# ---------------------------------------------------------------------------------------------
# Plots


def _surface_grid(surface: Surface, domain: Any, resolution: int) -> tuple[np.ndarray, ...]:
    (x_low, x_high), (y_low, y_high) = domain
    xs, ys = np.meshgrid(
        np.linspace(x_low, x_high, resolution), np.linspace(y_low, y_high, resolution)
    )
    grid = jnp.asarray(np.stack([xs, ys], axis=-1).reshape(-1, 2))
    zs = np.asarray(jax.jit(jax.vmap(surface.fn))(grid), np.float64).reshape(xs.shape)
    return xs, ys, zs


def _draw(
    ax: Any,
    result: Trajectories,
    surface: Surface,
    *,
    domain: Any,
    levels: int,
    log_levels: bool,
    resolution: int,
    title: str | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Draws contours, minima, start and the full paths on ``ax``; returns the lines and the
    markers of the paths' last points (the GIF moves them)."""
    from matplotlib.colors import LogNorm

    xs, ys, zs = _surface_grid(surface, domain, resolution)
    finite = np.isfinite(zs)
    if log_levels:
        # Heights above the minimum, contoured at log-spaced levels: the valley floor and the
        # high walls both get lines.
        floor = np.min(zs[finite])
        if surface.min_value is not None:
            floor = min(floor, surface.min_value)
        height = np.where(finite, zs - floor, np.nan)
        top = np.nanmax(height)
        positive = height[height > 0]
        low = max(positive.min() if positive.size else top * 1e-6, top * 1e-6)
        ax.contour(
            xs,
            ys,
            height,
            levels=np.geomspace(low, top, levels),
            norm=LogNorm(),
            cmap="viridis",
            linewidths=0.7,
            alpha=0.8,
        )
    else:
        ax.contour(xs, ys, zs, levels=levels, cmap="viridis", linewidths=0.7, alpha=0.8)
    lines, heads = {}, {}
    colors = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9", "C7"]
    for i, (name, path) in enumerate(result.paths.items()):
        path = np.where(np.isfinite(path), path, np.nan)
        color = colors[i % len(colors)]
        (lines[name],) = ax.plot(
            path[:, 0], path[:, 1], "-o", color=color, lw=1.3, ms=2.5, label=name, zorder=3
        )
        (heads[name],) = ax.plot(
            path[-1:, 0], path[-1:, 1], "o", color=color, mec="black", ms=6, zorder=4
        )
    start = next(iter(result.paths.values()))[0]
    ax.plot(
        start[0], start[1], "o", color="black", ms=7, mfc="white", mew=1.5, label="start", zorder=5
    )
    marks = [
        (surface.minima, "*", "gold", 14, "minimum" if len(surface.minima) == 1 else "minima"),
        (surface.saddle_points, "X", "white", 10, "saddle point"),
    ]
    for points, marker, color, size, label in marks:
        if points:
            xy = np.asarray(points)
            ax.plot(
                xy[:, 0], xy[:, 1], marker, color=color, mec="black", ms=size, label=label, zorder=2
            )
    (x_low, x_high), (y_low, y_high) = domain
    ax.set_xlim(x_low, x_high)
    ax.set_ylim(y_low, y_high)
    ratio = (x_high - x_low) / (y_high - y_low)
    if 0.25 <= ratio <= 4:  # true geometry (the zig-zag's angles) unless far too elongated
        ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title if title is not None else f"{surface.name}, {result.steps} steps")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return lines, heads


def plot_trajectories(
    result: Trajectories,
    surface: Surface | None = None,
    *,
    ax: Any = None,
    domain: tuple[tuple[float, float], tuple[float, float]] | None = None,
    levels: int = 30,
    log_levels: bool | None = None,
    resolution: int = 200,
    title: str | None = None,
    gif: str | os.PathLike[str] | None = None,
    fps: int = 12,
    max_frames: int = 80,
    overwrite: bool = False,
) -> Any:
    """Draws the paths over the surface's contours; optionally writes them as an animated GIF.

    The start is a white circle, the known minima gold stars, saddle points white crosses;
    each optimizer's path is a line with a dot per step, labelled in a legend beside the axes.
    Where the surface spans decades (``surface.log_levels``: Rosenbrock, Beale, Himmelblau,
    the ravine) the contour levels are log-spaced heights above the minimum, so both the valley
    floor and the walls get lines. The axes keep equal scales unless the domain is more than
    4:1, so the angles of a zig-zag are the true ones. Paths leaving the domain are clipped.

    Args:
      result: what :func:`trajectories` returned (2-D surfaces only).
      surface: the surface to contour; ``None`` for ``result.surface``.
      ax: a matplotlib ``Axes`` to draw on (e.g. one panel of a grid); ``None`` makes a new
        figure.
      domain: ``((x_low, x_high), (y_low, y_high))``; ``None`` for the surface's.
      levels: the number of contour levels.
      log_levels: force log-spaced (``True``) or linear (``False``) levels; ``None`` follows
        ``surface.log_levels``.
      resolution: grid points per axis for the contours.
      title: the axes' title; ``None`` for the surface's name and the number of steps.
      gif: a path to write an animation of the paths being drawn (matplotlib's
        ``PillowWriter``), or ``None``.
      fps: frames per second of the GIF.
      max_frames: at most this many frames (steps are subsampled evenly; the last is shown).
      overwrite: replace an existing ``gif`` file; by default an existing file is an error.

    Returns:
      The matplotlib ``Figure`` (``ax.figure`` when ``ax`` was given). It is not registered
      with ``pyplot``: save it with ``fig.savefig(path)``; notebooks display it.

    Examples:
      >>> import optlab as ol
      >>> from optlab.diagnostics import surfaces
      >>> result = ol.diagnostics.trajectories({"sgd": ol.sgd(0.1)}, surfaces.saddle(), steps=5)
      >>> fig = ol.diagnostics.plot_trajectories(result)
      >>> print(fig.axes[0].get_title())
      saddle, 5 steps
    """
    fn = "plot_trajectories"
    if not isinstance(result, Trajectories):
        raise TypeError(
            f"{fn}: result must be what trajectories() returned, got {type(result).__name__}"
        )
    surface = result.surface if surface is None else surface
    if not isinstance(surface, Surface):
        raise TypeError(
            f"{fn}: surface must be an optlab.diagnostics.surfaces.Surface (the result holds "
            f"none: pass surface=), got {type(surface).__name__}"
        )
    dim = next(iter(result.paths.values())).shape[1]
    if dim != 2 or surface.dim != 2:
        raise ValueError(
            f"{fn}: only 2-D trajectories can be drawn over contours, got dim={dim} on surface "
            f"{surface.name!r} (dim={surface.dim})"
        )
    check_int_at_least(fn, "levels", levels, 2)
    check_int_at_least(fn, "resolution", resolution, 2)
    check_int_at_least(fn, "fps", fps, 1)
    check_int_at_least(fn, "max_frames", max_frames, 2)
    if domain is not None:
        surface = dataclasses.replace(surface, domain=domain)  # validates the domain
    options = dict(
        domain=surface.domain,
        levels=levels,
        log_levels=surface.log_levels if log_levels is None else bool(log_levels),
        resolution=resolution,
        title=title,
    )
    target = None
    if gif is not None:
        target = pathlib.Path(gif)
        if target.exists() and not overwrite:
            raise FileExistsError(
                f"{fn}: {str(target)!r} exists; pass overwrite=True to replace it"
            )
    if ax is None:
        fig = _new_figure(options["domain"])
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    _draw(ax, result, surface, **options)
    if target is not None:
        _write_gif(result, surface, target, fps=fps, max_frames=max_frames, options=options)
    return fig


def _new_figure(domain: Any) -> Any:
    from matplotlib.figure import Figure

    # Sized to the domain's aspect (about 5.5 in of axes, room for the legend beside them).
    (x_low, x_high), (y_low, y_high) = domain
    height = min(max(5.5 * (y_high - y_low) / (x_high - x_low), 2.5), 5.5) + 0.9
    # A Figure outside pyplot: no global state, no backend switch, no figure left open.
    return Figure(figsize=(7.6, height), layout="constrained")


def _write_gif(
    result: Trajectories,
    surface: Surface,
    target: pathlib.Path,
    *,
    fps: int,
    max_frames: int,
    options: dict[str, Any],
) -> None:
    """Writes the paths growing step by step, through a temporary file renamed at the end."""
    from matplotlib.animation import PillowWriter

    fig = _new_figure(options["domain"])
    ax = fig.add_subplot()
    lines, heads = _draw(ax, result, surface, **options)
    frames = np.unique(np.linspace(0, result.steps, min(result.steps + 1, max_frames)).round())
    partial = target.with_name(f".{target.stem}.partial{target.suffix or '.gif'}")
    fig.draw_without_rendering()  # lay the figure out once: the frames only move the paths
    fig.set_layout_engine("none")
    writer = PillowWriter(fps=fps)
    try:
        with writer.saving(fig, str(partial), dpi=60):
            for k in frames.astype(int):
                for name, line in lines.items():
                    path = np.where(np.isfinite(result.paths[name]), result.paths[name], np.nan)
                    line.set_data(path[: k + 1, 0], path[: k + 1, 1])
                    heads[name].set_data(path[k : k + 1, 0], path[k : k + 1, 1])
                ax.set_title(f"{options['title'] or surface.name}, step {k}")
                writer.grab_frame()
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
