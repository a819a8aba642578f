"""NumPy float64 formulas of the test surfaces and their gradients, written from the textbook
definitions (not from optlab's code): the oracle of the surface and trajectory tests."""

from __future__ import annotations

import numpy as np


def rosenbrock(x, b=100.0):
    x = np.asarray(x, np.float64)
    return np.sum(b * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosenbrock_grad(x, b=100.0):
    x = np.asarray(x, np.float64)
    g = np.zeros_like(x)
    g[:-1] += -4.0 * b * x[:-1] * (x[1:] - x[:-1] ** 2) - 2.0 * (1.0 - x[:-1])
    g[1:] += 2.0 * b * (x[1:] - x[:-1] ** 2)
    return g


def beale(p):
    x, y = np.asarray(p, np.float64)
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def beale_grad(p):
    x, y = np.asarray(p, np.float64)
    t1, t2, t3 = 1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3
    return np.array(
        [
            2 * t1 * (y - 1) + 2 * t2 * (y**2 - 1) + 2 * t3 * (y**3 - 1),
            2 * t1 * x + 2 * t2 * 2 * x * y + 2 * t3 * 3 * x * y**2,
        ]
    )


def himmelblau(p):
    x, y = np.asarray(p, np.float64)
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


def himmelblau_grad(p):
    x, y = np.asarray(p, np.float64)
    a, b = x**2 + y - 11, x + y**2 - 7
    return np.array([4 * x * a + 2 * b, 2 * a + 4 * y * b])


def ravine_curvatures(condition, dim):
    """lambda_i = kappa^((i - 1)/(n - 1)), i = 1..n."""
    return np.array([condition ** (i / (dim - 1)) for i in range(dim)], np.float64)


def ravine(x, condition):
    x = np.asarray(x, np.float64)
    return 0.5 * np.sum(ravine_curvatures(condition, x.size) * x**2)


def ravine_grad(x, condition):
    x = np.asarray(x, np.float64)
    return ravine_curvatures(condition, x.size) * x


def saddle(p):
    x, y = np.asarray(p, np.float64)
    return x**2 - y**2


def saddle_grad(p):
    x, y = np.asarray(p, np.float64)
    return np.array([2 * x, -2 * y])


def plateau(x, width=1.0):
    x = np.asarray(x, np.float64)
    return 1.0 - np.exp(-np.sum(x**2) / (2 * width**2))


def plateau_grad(x, width=1.0):
    x = np.asarray(x, np.float64)
    return x / width**2 * np.exp(-np.sum(x**2) / (2 * width**2))
