"""The test surfaces: values and gradients against NumPy float64 formulas, known minima."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optlab as ol
from optlab.diagnostics import surfaces
from tests.diagnostics import reference as ref

# (surface, NumPy value, NumPy gradient): the formulas are written out in reference.py.
CASES = {
    "rosenbrock": (surfaces.rosenbrock(), ref.rosenbrock, ref.rosenbrock_grad),
    "rosenbrock-5d": (surfaces.rosenbrock(5), ref.rosenbrock, ref.rosenbrock_grad),
    "rosenbrock-b10": (
        surfaces.rosenbrock(b=10.0),
        lambda x: ref.rosenbrock(x, b=10.0),
        lambda x: ref.rosenbrock_grad(x, b=10.0),
    ),
    "beale": (surfaces.beale(), ref.beale, ref.beale_grad),
    "himmelblau": (surfaces.himmelblau(), ref.himmelblau, ref.himmelblau_grad),
    "ravine": (
        surfaces.ravine(),
        lambda x: ref.ravine(x, 50.0),
        lambda x: ref.ravine_grad(x, 50.0),
    ),
    "ravine-3d": (
        surfaces.ravine(condition=9.0, dim=3),
        lambda x: ref.ravine(x, 9.0),
        lambda x: ref.ravine_grad(x, 9.0),
    ),
    "saddle": (surfaces.saddle(), ref.saddle, ref.saddle_grad),
    "plateau": (surfaces.plateau(), ref.plateau, ref.plateau_grad),
    "plateau-wide-3d": (
        surfaces.plateau(width=2.0, dim=3),
        lambda x: ref.plateau(x, 2.0),
        lambda x: ref.plateau_grad(x, 2.0),
    ),
}


def _points(surface, rng, n=6):
    """Random points over the plotting domain (extra coordinates in [-1.5, 1.5])."""
    (xl, xh), (yl, yh) = surface.domain
    pts = rng.uniform(-1.5, 1.5, (n, surface.dim))
    pts[:, 0] = rng.uniform(xl, xh, n)
    pts[:, 1] = rng.uniform(yl, yh, n)
    return np.concatenate([pts, np.asarray([surface.x0])])


@pytest.mark.parametrize("name", CASES)
def test_values_and_gradients_match_the_formulas(name, rng, x64):
    surface, value, grad = CASES[name]
    grad_fn = jax.jit(jax.value_and_grad(surface.fn))
    for p in _points(surface, rng):
        v, g = grad_fn(jnp.asarray(p, jnp.float64))
        np.testing.assert_allclose(float(v), value(p), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(np.asarray(g), grad(p), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("name", CASES)
def test_known_minima_have_the_known_value_and_are_stationary(name, x64):
    surface, value, grad = CASES[name]
    for s in surface.saddle_points:
        np.testing.assert_allclose(grad(s), 0.0, atol=1e-15)
    if not surface.minima:
        return
    minima = np.asarray(surface.minima)
    for m in minima:
        assert value(m) == pytest.approx(surface.min_value, abs=1e-24)
        np.testing.assert_allclose(grad(m), 0.0, atol=2e-14)  # stationary by the formula
    values, grads = jax.jit(jax.vmap(jax.value_and_grad(surface.fn)))(jnp.asarray(minima))
    np.testing.assert_allclose(np.asarray(values), surface.min_value, atol=1e-24)
    # Rounding of terms of size ~200 (Himmelblau's 4 x (x^2 + y - 11) at |x| ~ 3.8): 1e-13.
    np.testing.assert_allclose(np.asarray(grads), 0.0, atol=1e-13)
    # ... and (float32 too) the lowest point of its neighbourhood.
    offsets = np.random.default_rng(1).normal(0.0, 1e-2, (64, surface.dim))
    f32 = jax.jit(surface.fn)
    for m in minima:
        around = f32(jnp.asarray(m + offsets, jnp.float32))
        assert float(f32(jnp.asarray(m, jnp.float32))) <= float(jnp.min(around))


def test_himmelblau_has_its_four_minima_with_value_zero():
    s = surfaces.himmelblau()
    assert len(s.minima) == 4
    assert len({(round(x, 3), round(y, 3)) for x, y in s.minima}) == 4
    # The textbook's rounded coordinates.
    expected = {(3.0, 2.0), (-2.805118, 3.131313), (-3.77931, -3.283186), (3.584428, -1.848127)}
    assert {(round(x, 6), round(y, 6)) for x, y in s.minima} == expected


def test_ravine_condition_number_and_orientation(x64):
    for condition, angle in [(50.0, 0.0), (10.0, 30.0), (1.0, 0.0)]:
        s = surfaces.ravine(condition=condition, angle=angle)
        hessian = np.asarray(jax.jit(jax.hessian(s.fn))(jnp.zeros(2)))
        eigenvalues, vectors = np.linalg.eigh(hessian)
        np.testing.assert_allclose(eigenvalues, [1.0, condition], rtol=1e-12)
        np.testing.assert_allclose(np.linalg.cond(hessian), condition, rtol=1e-12)
        if condition > 1:  # the shallow axis points at `angle` degrees
            phi = np.radians(angle)
            assert abs(vectors[:, 0] @ [np.cos(phi), np.sin(phi)]) == pytest.approx(1.0)


def test_saddle_is_indefinite_and_unbounded_below(x64):
    s = surfaces.saddle()
    assert s.minima == () and s.min_value is None
    hessian = jax.jit(jax.hessian(s.fn))(jnp.zeros(2))
    np.testing.assert_allclose(np.asarray(hessian), np.diag([2.0, -2.0]))
    assert float(s([0.0, 100.0])) == -1e4


def test_plateau_is_flat_at_the_start():
    """The docstring's numbers: at (2.5, 2.5) the gradient norm is 0.0068 and f is 0.998."""
    s = surfaces.plateau()
    g = ref.plateau_grad(s.x0)
    assert np.linalg.norm(g) == pytest.approx(0.0068, abs=5e-5)
    assert ref.plateau(s.x0) > 0.998


def test_functions_broadcast_over_leading_axes(rng):
    for surface, value, _ in CASES.values():
        grid = rng.uniform(-2.0, 2.0, (3, 4, surface.dim))
        out = np.asarray(jax.jit(surface.fn)(jnp.asarray(grid, jnp.float32)))
        assert out.shape == (3, 4)
        expected = np.array([[value(p) for p in row] for row in grid])
        np.testing.assert_allclose(out, expected, rtol=2e-5, atol=1e-5)


def test_standard_starts_and_domains():
    for surface, _, _ in CASES.values():
        assert len(surface.x0) == surface.dim
        (xl, xh), (yl, yh) = surface.domain
        assert xl < surface.x0[0] < xh and yl < surface.x0[1] < yh
        for m in surface.minima:
            assert xl <= m[0] <= xh and yl <= m[1] <= yh
    assert surfaces.rosenbrock(5).x0 == (-1.2, 1.0, -1.2, 1.0, -1.2)


def test_surface_is_hashable_and_normalizes_points():
    s = ol.diagnostics.Surface(
        "bowl",
        lambda x: jnp.sum(x**2, -1),
        [np.array([0, 0])],
        0,
        np.array([1, 2]),
        [[-1, 1], [-2, 3]],
    )
    assert s.x0 == (1.0, 2.0) and s.minima == ((0.0, 0.0),)
    assert s.domain == ((-1.0, 1.0), (-2.0, 3.0))
    assert hash(s) == hash(dataclasses.replace(s))
    assert float(s([1.0, 2.0])) == 5.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(x0=(1.0,)), "at least 2 coordinates"),
        (dict(x0=(1.0, float("nan"))), "finite"),
        (dict(minima=((0.0, 0.0, 0.0),)), "must have 2 coordinates"),
        (dict(min_value=None), "min_value is required"),
        (dict(domain=((1.0, -1.0), (0.0, 1.0))), "low < high"),
        (dict(domain=((0.0, 1.0),)), "domain must be"),
    ],
)
def test_surface_rejects_bad_fields(kwargs, match):
    fields = dict(
        name="s",
        fn=lambda x: x[..., 0],
        minima=((0.0, 0.0),),
        min_value=0.0,
        x0=(1.0, 1.0),
        domain=((-1.0, 1.0), (-1.0, 1.0)),
    )
    with pytest.raises(ValueError, match=match):
        ol.diagnostics.Surface(**{**fields, **kwargs})
    with pytest.raises(TypeError, match="fn must be a function"):
        ol.diagnostics.Surface(**{**fields, "fn": 3})


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: surfaces.rosenbrock(dim=1), "rosenbrock: dim must be an integer >= 2"),
        (lambda: surfaces.rosenbrock(b=-1.0), "rosenbrock: b must be > 0"),
        (lambda: surfaces.ravine(condition=0.5), "ravine: condition must be >= 1"),
        (lambda: surfaces.ravine(condition=float("inf")), "ravine: condition must be finite"),
        (lambda: surfaces.ravine(angle=float("nan")), "ravine: angle must be finite"),
        (lambda: surfaces.plateau(width=0.0), "plateau: width must be > 0"),
        (lambda: surfaces.plateau(dim=2.0), "plateau: dim must be an integer"),
    ],
)
def test_constructors_reject_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()
