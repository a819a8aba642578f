r"""Test surfaces for optimizers: pure ``jnp`` functions with known minima.

Each constructor returns a :class:`Surface`: the function ``fn(x)`` of a vector ``x`` of
shape ``(..., dim)`` (leading axes broadcast, so a whole grid is one call), its known global
minimizers and the value there, a plotting domain for the first two coordinates and a standard
starting point. They are the lectures' pictures of what makes optimization hard:

============================  =====================================================  =====
surface                       what it shows                                          dim
============================  =====================================================  =====
:func:`ravine`                high condition number: "jitter along the steep          n
                              direction, slow progress along the shallow one"
:func:`saddle`                zero gradient at a saddle point: "gradient descent      2
                              gets stuck"; momentum escapes
:func:`plateau`               a flat region with a vanishing gradient: adaptive        n
                              methods "accelerate on plateaus"
:func:`rosenbrock`            a curved, narrow valley (a ravine that bends)           n
:func:`beale`                 sharp ridges and flat regions, values over decades      2
:func:`himmelblau`            four minima: where a run ends depends on its path        2
============================  =====================================================  =====
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from optlab.core.validation import check_int_at_least, check_positive

Array = jax.Array
Point = tuple[float, ...]

__all__ = ["Surface", "beale", "himmelblau", "plateau", "ravine", "rosenbrock", "saddle"]


@dataclasses.dataclass(frozen=True)
class Surface:
    """A test function with its known minima, a plotting domain and a standard start.

    Attributes:
      name: a short label for plots (``"rosenbrock"``, ``"ravine (condition 50)"``).
      fn: ``fn(x) -> value``, a pure ``jnp`` function of ``x`` of shape ``(..., dim)``.
      minima: the known global minimizers, each a tuple of ``dim`` floats (Himmelblau has
        four; the saddle none).
      min_value: the value at every listed minimizer; ``None`` when there is none.
      x0: the standard starting point, ``dim`` floats.
      domain: ``((x_low, x_high), (y_low, y_high))``, the plotting window of the first two
        coordinates.
      saddle_points: known saddle points (stationary, not minima), each ``dim`` floats.
      log_levels: whether the values over ``domain`` span decades, so contour levels should be
        log-spaced above ``min_value`` (see :func:`optlab.diagnostics.plot_trajectories`).
    """

    name: str
    fn: Callable[[Array], Array]
    minima: tuple[Point, ...]
    min_value: float | None
    x0: Point
    domain: tuple[tuple[float, float], tuple[float, float]]
    saddle_points: tuple[Point, ...] = ()
    log_levels: bool = True

    def __post_init__(self) -> None:
        fn = "Surface"
        if not callable(self.fn):
            raise TypeError(f"{fn}: fn must be a function of x, got fn={self.fn!r}")
        # Plain tuples of floats: the surface stays hashable and immutable.
        x0 = _point(fn, "x0", self.x0)
        if len(x0) < 2:
            raise ValueError(f"{fn}: x0 must have at least 2 coordinates, got x0={self.x0!r}")
        object.__setattr__(self, "x0", x0)
        for what in ("minima", "saddle_points"):
            points = tuple(_point(fn, what, p) for p in getattr(self, what))
            for point in points:
                if len(point) != len(x0):
                    raise ValueError(
                        f"{fn}: every point of {what} must have {len(x0)} coordinates (the "
                        f"length of x0), got {point!r}"
                    )
            object.__setattr__(self, what, points)
        if self.minima and self.min_value is None:
            raise ValueError(f"{fn}: min_value is required when minima are given")
        try:
            domain = tuple((float(lo), float(hi)) for lo, hi in self.domain)
        except (TypeError, ValueError):
            domain = ()
        if len(domain) != 2 or not all(lo < hi for lo, hi in domain):
            raise ValueError(
                f"{fn}: domain must be ((x_low, x_high), (y_low, y_high)) with low < high, got "
                f"domain={self.domain!r}"
            )
        object.__setattr__(self, "domain", domain)

    @property
    def dim(self) -> int:
        """The number of coordinates of ``x``."""
        return len(self.x0)

    def __call__(self, x: jax.typing.ArrayLike) -> Array:
        """``fn(x)``."""
        return self.fn(jnp.asarray(x))


def _point(fn: str, name: str, value: object) -> Point:
    try:
        point = tuple(float(v) for v in np.asarray(value, np.float64).reshape(-1))
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: {name} must hold points of numbers, got {value!r}") from None
    if np.ndim(value) != 1 or not all(math.isfinite(v) for v in point):
        raise ValueError(f"{fn}: {name} must hold finite 1-D points, got {value!r}")
    return point


def _tile_start(start: Point, dim: int) -> Point:
    return tuple(float(start[i % len(start)]) for i in range(dim))


def rosenbrock(dim: int = 2, b: float = 100.0) -> Surface:
    r"""Rosenbrock's banana valley, in ``dim`` dimensions.

    .. math::

        f(x) = \sum_{i=1}^{n-1} b\,(x_{i+1} - x_i^2)^2 + (1 - x_i)^2,

    minimum :math:`f(1, \dots, 1) = 0`. The valley floor :math:`x_{i+1} = x_i^2` is a ravine
    that bends: its steep direction turns as the optimizer moves along it. Start: the classic
    :math:`(-1.2, 1)` (repeated in higher dimensions).

    Args:
      dim: number of coordinates, at least 2.
      b: the valley's steepness, > 0 (100 is the classic).

    Returns:
      A :class:`Surface` with log-spaced contour levels.

    Examples:
      >>> import optlab as ol
      >>> s = ol.diagnostics.surfaces.rosenbrock()
      >>> print(float(s([-1.2, 1.0])), float(s(s.minima[0])), s.x0)
      24.2 0.0 (-1.2, 1.0)

    References:
      Rosenbrock, `An automatic method for finding the greatest or least value of a function
      <https://doi.org/10.1093/comjnl/3.3.175>`_, 1960.
    """
    check_int_at_least("rosenbrock", "dim", dim, 2)
    check_positive("rosenbrock", "b", b)

    def fn(x):
        head, tail = x[..., :-1], x[..., 1:]
        return jnp.sum(b * (tail - head**2) ** 2 + (1.0 - head) ** 2, axis=-1)

    name = "rosenbrock" if dim == 2 else f"rosenbrock ({dim}-D)"
    return Surface(
        name=name,
        fn=fn,
        minima=((1.0,) * dim,),
        min_value=0.0,
        x0=_tile_start((-1.2, 1.0), dim),
        domain=((-2.0, 2.0), (-1.0, 3.0)),
    )


def beale() -> Surface:
    r"""Beale's function: flat regions between sharp ridges, values over five decades.

    .. math::

        f(x, y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2,

    minimum :math:`f(3, 0.5) = 0`. Start :math:`(1, 1.5)`, on the ridge side of the valley.

    Returns:
      A 2-D :class:`Surface` with log-spaced contour levels over :math:`[-4.5, 4.5]^2`.

    Examples:
      >>> import optlab as ol
      >>> s = ol.diagnostics.surfaces.beale()
      >>> print(float(s([3.0, 0.5])), round(float(s([0.0, 0.0])), 4))
      0.0 14.2031

    References:
      Beale, `On an iterative method for finding a local minimum of a function of more than
      one variable <https://apps.dtic.mil/sti/citations/AD0211089>`_, 1958.
    """

    def fn(x):
        u, v = x[..., 0], x[..., 1]
        return (1.5 - u + u * v) ** 2 + (2.25 - u + u * v**2) ** 2 + (2.625 - u + u * v**3) ** 2

    return Surface(
        name="beale",
        fn=fn,
        minima=((3.0, 0.5),),
        min_value=0.0,
        x0=(1.0, 1.5),
        domain=((-4.5, 4.5), (-4.5, 4.5)),
    )


# Newton's method in float64 from (3, 2), (-2.8, 3.1), (-3.8, -3.3), (3.6, -1.8): the gradient
# there is below 2e-14 (tests/diagnostics/test_surfaces.py checks it against the formula).
_HIMMELBLAU_MINIMA = (
    (3.0, 2.0),
    (-2.805118086952745, 3.131312518250573),
    (-3.779310253377747, -3.283185991286169),
    (3.5844283403304917, -1.8481265269644034),
)


def himmelblau() -> Surface:
    r"""Himmelblau's function: four minima of equal value, so the path decides the answer.

    .. math::

        f(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2,

    zero at :math:`(3, 2)`, :math:`(-2.805118, 3.131313)`, :math:`(-3.779310, -3.283186)` and
    :math:`(3.584428, -1.848127)`, with a local maximum at :math:`(-0.270845, -0.923039)` between
    them. Start :math:`(-0.5, 0)`; which minimum a run reaches depends on where it starts and on
    how far its steps carry it.

    Returns:
      A 2-D :class:`Surface` with log-spaced contour levels over :math:`[-5, 5]^2`.

    Examples:
      >>> import optlab as ol
      >>> s = ol.diagnostics.surfaces.himmelblau()
      >>> print(len(s.minima), float(s([3.0, 2.0])), float(s([0.0, 0.0])))
      4 0.0 170.0

    References:
      Himmelblau, *Applied Nonlinear Programming*, McGraw-Hill, 1972.
    """

    def fn(x):
        u, v = x[..., 0], x[..., 1]
        return (u**2 + v - 11.0) ** 2 + (u + v**2 - 7.0) ** 2

    return Surface(
        name="himmelblau",
        fn=fn,
        minima=_HIMMELBLAU_MINIMA,
        min_value=0.0,
        x0=(-0.5, 0.0),
        domain=((-5.0, 5.0), (-5.0, 5.0)),
    )


def ravine(condition: float = 50.0, dim: int = 2, angle: float = 0.0) -> Surface:
    r"""An ill-conditioned quadratic bowl: the lectures' ravine.

    .. math::

        f(x) = \tfrac12 \sum_{i=1}^n \lambda_i\, (R x)_i^2, \qquad
        \lambda_i = \kappa^{(i-1)/(n-1)},

    so the Hessian :math:`R^\top \operatorname{diag}(\lambda) R` has eigenvalues from 1 (the
    shallow first coordinate) to the condition number :math:`\kappa` (the steep last one), and
    the minimum is :math:`f(0) = 0`. Gradient descent is stable only for :math:`\alpha <
    2/\kappa`, and at such a step it crawls along the shallow direction (a factor :math:`1 -
    \alpha` per step) while it jitters across the steep one (a factor :math:`1 - \alpha\kappa`,
    negative for :math:`\alpha > 1/\kappa`). :math:`R` turns the ravine by ``angle`` degrees
    in the first two coordinates (its shallow axis points along :math:`(\cos\phi,
    \sin\phi)`): at 0 the ravine is aligned with the axes, which per-coordinate methods
    (AdaGrad, RMSProp, Adam) exploit; turned, they no longer can. Start: :math:`(-8, 1.5)`
    (then 0), far along the shallow axis and off the floor.

    Args:
      condition: :math:`\kappa \ge 1`, the ratio of the largest to the smallest curvature.
      dim: number of coordinates, at least 2.
      angle: :math:`\phi`, the direction of the shallow axis in the first two coordinates, in
        degrees.

    Returns:
      A :class:`Surface` with log-spaced contour levels over :math:`[-9, 4] \times [-2.5, 2.5]`.

    Examples:
      >>> import optlab as ol
      >>> s = ol.diagnostics.surfaces.ravine(condition=25.0)
      >>> print(float(s([1.0, 0.0])), float(s([0.0, 1.0])))
      0.5 12.5
    """
    fn_name = "ravine"
    check_positive(fn_name, "condition", condition)
    if float(condition) < 1.0:
        raise ValueError(f"{fn_name}: condition must be >= 1, got condition={condition!r}")
    check_int_at_least(fn_name, "dim", dim, 2)
    if not math.isfinite(float(angle)):
        raise ValueError(f"{fn_name}: angle must be finite, got angle={angle!r}")
    curvature = np.geomspace(1.0, float(condition), dim)
    theta = math.radians(float(angle))
    rotation = np.eye(dim)
    rotation[:2, :2] = [[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]]
    # The Hessian R^T diag(lambda) R, formed once in float64 (exactly diagonal at angle 0).
    hessian = rotation.T @ np.diag(curvature) @ rotation

    def fn(x):
        h = jnp.asarray(hessian, x.dtype)
        return 0.5 * jnp.sum(x * (x @ h), axis=-1)

    turned = f", {float(angle):g} deg" if angle else ""
    name = f"ravine (condition {float(condition):g}{turned})"
    return Surface(
        name=name,
        fn=fn,
        minima=((0.0,) * dim,),
        min_value=0.0,
        x0=(-8.0, 1.5) + (0.0,) * (dim - 2),
        domain=((-9.0, 4.0), (-2.5, 2.5)),
    )


def saddle() -> Surface:
    r"""The saddle :math:`f(x, y) = x^2 - y^2`: a stationary point that is not a minimum.

    The gradient :math:`(2x, -2y)` vanishes at the origin. The :math:`x` axis is the stable
    manifold: gradient descent with step :math:`\alpha` shrinks :math:`x` by :math:`1 - 2\alpha`
    per step and grows :math:`y` by only :math:`1 + 2\alpha`, so a run started near the axis
    slows down next to the saddle point before it escapes; momentum builds up speed along
    :math:`y` and escapes sooner. The surface is unbounded below (no minima). Start
    :math:`(-1, 10^{-3})`.

    Returns:
      A 2-D :class:`Surface` with linear contour levels over :math:`[-1.5, 1.5]^2`.

    Examples:
      >>> import optlab as ol
      >>> s = ol.diagnostics.surfaces.saddle()
      >>> print(s.minima, s.saddle_points, float(s([1.0, 2.0])))
      () ((0.0, 0.0),) -3.0

    References:
      Dauphin et al., `Identifying and attacking the saddle point problem in high-dimensional
      non-convex optimization <https://arxiv.org/abs/1406.2572>`_, 2014.
    """

    def fn(x):
        return x[..., 0] ** 2 - x[..., 1] ** 2

    return Surface(
        name="saddle",
        fn=fn,
        minima=(),
        min_value=None,
        x0=(-1.0, 1e-3),
        domain=((-1.5, 1.5), (-1.5, 1.5)),
        saddle_points=((0.0, 0.0),),
        log_levels=False,
    )


def plateau(width: float = 1.0, dim: int = 2) -> Surface:
    r"""A Gaussian well in a plateau: a large flat region where the gradient all but vanishes.

    .. math::

        f(x) = 1 - \exp\!\left(-\frac{\lVert x \rVert^2}{2 w^2}\right), \qquad
        \nabla f(x) = \frac{x}{w^2} \exp\!\left(-\frac{\lVert x \rVert^2}{2 w^2}\right),

    minimum :math:`f(0) = 0`; far from the well :math:`f \to 1` and the gradient decays like a
    Gaussian. This is the surface for the lectures' "accelerate on plateaus": an SGD step is
    proportional to the gradient, so from the start :math:`(2.5, 2.5)` (gradient norm
    :math:`0.0068\,/w`) it creeps, whereas AdaGrad, RMSProp and Adam divide by the gradient's
    root mean square and step about :math:`\alpha` per coordinate however flat the surface
    is. A Gaussian well was chosen over a sigmoid cliff because it has one isotropic minimum:
    the only difficulty left is the flatness. Higher dimensions start at 2.5 in every
    coordinate.

    Args:
      width: :math:`w > 0`, the radius of the well.
      dim: number of coordinates, at least 2.

    Returns:
      A :class:`Surface` with linear contour levels over :math:`[-3.5, 3.5]^2` (scaled by
      :math:`w`).

    Examples:
      >>> import optlab as ol
      >>> s = ol.diagnostics.surfaces.plateau()
      >>> print(float(s([0.0, 0.0])), round(float(s(s.x0)), 4))
      0.0 0.9981
    """
    check_positive("plateau", "width", width)
    check_int_at_least("plateau", "dim", dim, 2)
    w = float(width)

    def fn(x):
        return 1.0 - jnp.exp(-jnp.sum(x**2, axis=-1) / (2.0 * w**2))

    return Surface(
        name="plateau" if dim == 2 else f"plateau ({dim}-D)",
        fn=fn,
        minima=((0.0,) * dim,),
        min_value=0.0,
        x0=(2.5 * w,) * dim,
        domain=((-3.5 * w, 3.5 * w), (-3.5 * w, 3.5 * w)),
        log_levels=False,
    )
