"""Minimizes Rosenbrock (2-D, 10-D) and an ill-conditioned quadratic with every registered
first-order optimizer and prints a table: steps to reach f < tol, and the final value.

Each optimizer's whole run (all problems, every step) is one compiled ``lax.scan``.

    python benchmarks/convergence.py [--steps 10000] [--tol 1e-6] [--json out.json]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import optlab as ol
from optlab.optimizers.registry import REGISTRY

try:  # imported as benchmarks.NAME (tests, python -m)
    from benchmarks.common import machine, write_json
except ModuleNotFoundError:  # run as python benchmarks/NAME.py: its folder is sys.path[0]
    from common import machine, write_json


def rosenbrock(x: jax.Array) -> jax.Array:
    """:math:`\\sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2`, minimum 0 at all ones."""
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def make_quadratic(dim: int = 10, condition: float = 100.0, seed: int = 0):
    """:math:`\\tfrac12 (x - 1)^\\top A (x - 1)` with eigenvalues from 1 to ``condition``,
    rotated by a fixed random orthogonal matrix (so no optimizer sees a diagonal problem)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    a = jnp.asarray((q * np.logspace(0, np.log10(condition), dim)) @ q.T, jnp.float32)

    def quadratic(x):
        d = x - 1.0
        return 0.5 * d @ (a @ d)

    return quadratic


PROBLEMS = {
    # name: (function, start, which tuned hyperparameters to use)
    "rosenbrock-2d": (rosenbrock, jnp.array([-1.2, 1.0]), "rosenbrock"),
    "rosenbrock-10d": (rosenbrock, jnp.tile(jnp.array([-1.2, 1.0]), 5), "rosenbrock"),
    "quadratic-cond100": (make_quadratic(), jnp.zeros(10), "quadratic"),
}


def run(name: str, steps: int) -> dict[str, np.ndarray]:
    """Runs optimizer ``name`` on every problem; returns the loss after each step."""
    spec = REGISTRY[name]
    txs = {p: spec.factory(**spec.kwargs(kind)) for p, (_, _, kind) in PROBLEMS.items()}

    @jax.jit
    def minimize(starts):
        def step(carry, _):
            new, losses = {}, {}
            for p, (f, _, _) in PROBLEMS.items():
                x, s = carry[p]
                value, g = jax.value_and_grad(f)(x)
                u, s = txs[p].update(g, s, x, value=value)
                x = ol.apply_updates(x, u)
                new[p], losses[p] = (x, s), f(x)
            return new, losses

        init = {p: (x, txs[p].init(x)) for p, x in starts.items()}
        _, losses = jax.lax.scan(step, init, None, length=steps)
        return losses

    starts = {p: x for p, (_, x, _) in PROBLEMS.items()}
    return {p: np.asarray(v) for p, v in jax.block_until_ready(minimize(starts)).items()}


def steps_to(losses: np.ndarray, tol: float) -> int | None:
    hit = np.flatnonzero(losses < tol)
    return int(hit[0]) + 1 if hit.size else None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)

    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}; {args.steps} steps; "
        f"steps to f < {args.tol:g} (-: not reached), final f"
    )
    header = f"{'optimizer':<17}" + "".join(f"{p:>30}" for p in PROBLEMS)
    print(header)
    print("-" * len(header))
    results: dict = {}
    start = time.perf_counter()
    for name in REGISTRY:
        losses = run(name, args.steps)
        row = {}
        cells = []
        for p in PROBLEMS:  # (the compiled function returns its dict with sorted keys)
            curve = losses[p]
            n, final = steps_to(curve, args.tol), float(curve[-1])
            row[p] = {"steps_to_tol": n, "final": final}
            cells.append(f"{'-' if n is None else n:>15} {final:>14.3e}")
        results[name] = row
        print(f"{name:<17}" + "".join(f"{c:>30}" for c in cells))
    print(f"({time.perf_counter() - start:.1f} s, one compiled scan per optimizer)")
    if args.json:
        record = {"steps": args.steps, "tol": args.tol, "results": results}
        write_json({**record, "environment": machine()}, args.json)
    return results


if __name__ == "__main__":
    main()
