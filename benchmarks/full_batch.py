"""Full-batch L-BFGS against first-order methods, and L-BFGS on small noisy mini-batches.

The seeds' claim: L-BFGS "usually works very well in full batch, deterministic mode" and
"does not transfer very well to mini-batch setting". A Flax nnx MLP (64-32-10, tanh, L2
1e-4) is trained on scikit-learn's digits (standardized on the training split) with the same
budget of data passes (one pass = one evaluation of the loss and gradient on all training
samples) by:

- full batch: L-BFGS (``optlab.minimize``), gradient descent, momentum and Adam (each with the
  best of three learning rates, chosen on the final training loss);
- mini-batches of 32: momentum SGD, Adam, and L-BFGS (its line search run on each batch).

The table reports the final training loss and its gap to a reference optimum :math:`f^*`
(the loss after a long L-BFGS run from the same start, ``--reference-steps``): every method
approaches the same L2-regularized floor, so the gap is the number to compare (a negative gap:
a method found a lower local minimum). Each run is one compiled program; compilation is timed
separately and the run is repeated. Prints a table and writes JSON to
``benchmarks/results/full_batch.json``.

    python benchmarks/full_batch.py [--passes 100] [--batch 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Any

import flax
import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import optlab as ol

try:  # imported as benchmarks.NAME (tests, python -m)
    from benchmarks.common import machine, write_json
except ModuleNotFoundError:  # run as python benchmarks/NAME.py: its folder is sys.path[0]
    from common import machine, write_json

L2 = 1e-4


class MLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(64, 32, rngs=rngs)
        self.out = nnx.Linear(32, 10, rngs=rngs)

    def __call__(self, x):
        return self.out(jnp.tanh(self.hidden(x)))


def load():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    mean, std = x_tr.mean(0), x_tr.std(0) + 1e-8
    prep = lambda a: jnp.asarray((a - mean) / std, jnp.float32)
    return prep(x_tr), jnp.asarray(y_tr), prep(x_te), jnp.asarray(y_te)


def make_problem():
    graphdef, params = nnx.split(MLP(nnx.Rngs(0)), nnx.Param)

    def logits(p, x):
        return nnx.merge(graphdef, p)(x)

    def loss(p, x, y):
        data = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits(p, x), y))
        return data + 0.5 * L2 * sum(jnp.sum(w**2) for w in jax.tree.leaves(p))

    def accuracy(p, x, y):
        return jnp.mean(jnp.argmax(logits(p, x), -1) == y)

    return params, loss, accuracy


def timed(fn, repeats):
    """Compiles (first call, timed apart), then the median and spread of ``repeats`` runs."""
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return out, compile_s, float(np.median(times)), float(np.max(times) - np.min(times))


def full_batch(name, tx, params, loss, data, max_steps, repeats):
    x, y = data
    run = lambda: ol.minimize(loss, params, method=tx, tol=1e-9, max_steps=max_steps, args=(x, y))
    result, compile_s, median_s, spread_s = timed(run, repeats)
    return result.params, {
        "passes": int(result.num_fun_evals),
        "steps": int(result.num_steps),
        "compile_s": compile_s,
        "median_s": median_s,
        "spread_s": spread_s,
    }


def minibatch(name, tx, params, loss, data, batch, passes, repeats, seed=0):
    """One compiled scan over shuffled mini-batches; counts passes from the evaluations."""
    x, y = data
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    per_epoch = n // batch
    # Enough batches for the budget even for plain first-order methods (1 evaluation each).
    epochs = int(np.ceil(passes * n / (batch * per_epoch)))
    order = np.concatenate([rng.permutation(n)[: per_epoch * batch] for _ in range(epochs)])
    batches = jnp.asarray(order.reshape(-1, batch))
    budget = passes * n  # samples that may be evaluated

    @jax.jit
    def run(p):
        def step(carry, idx):
            p, state, used = carry
            xb, yb = x[idx], y[idx]
            value_fn = lambda q: loss(q, xb, yb)
            value, grad = jax.value_and_grad(value_fn)(p)
            u, new_state = tx.update(grad, state, p, value=value, grad=grad, value_fn=value_fn)
            evals = 1
            searches = [
                s
                for s in jax.tree.leaves(
                    new_state, is_leaf=lambda s: isinstance(s, ol.ScaleByZoomLinesearchState)
                )
                if isinstance(s, ol.ScaleByZoomLinesearchState)
            ]
            for s in searches:
                evals = evals + s.info.num_linesearch_steps
            go = used + evals * batch <= budget
            p = jax.tree.map(lambda a, b: jnp.where(go, a, b), ol.apply_updates(p, u), p)
            state = jax.tree.map(lambda a, b: jnp.where(go, a, b), new_state, state)
            return (p, state, jnp.where(go, used + evals * batch, used)), None

        (p, _, used), _ = jax.lax.scan(step, (p, tx.init(p), jnp.zeros([], jnp.int32)), batches)
        return p, used

    (p, used), compile_s, median_s, spread_s = timed(lambda: run(params), repeats)
    return p, {
        "passes": float(used) / n,
        "steps": None,
        "compile_s": compile_s,
        "median_s": median_s,
        "spread_s": spread_s,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=100, help="budget of data passes")
    parser.add_argument("--reference-steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--json", default=os.path.join(os.path.dirname(__file__), "results", "full_batch.json")
    )
    args = parser.parse_args(argv)

    x_tr, y_tr, x_te, y_te = load()
    params, loss, accuracy = make_problem()
    train, test = (x_tr, y_tr), (x_te, y_te)
    print(
        f"jax {jax.__version__}, flax {flax.__version__}, optlab, on "
        f"{jax.devices()[0].device_kind} ({platform.machine()}); digits: "
        f"{x_tr.shape[0]} train / {x_te.shape[0]} test; MLP 64-32-10 tanh, L2 {L2:g}; "
        f"budget {args.passes} data passes"
    )

    reference = ol.minimize(
        loss, params, method="lbfgs", tol=1e-7, max_steps=args.reference_steps, args=train
    )
    f_star = float(reference.value)
    print(
        f"reference optimum f* = {f_star:.6e} ({int(reference.num_steps)} L-BFGS steps, "
        f"gradient norm {float(reference.grad_norm):.1e})"
    )
    rows: dict[str, dict[str, Any]] = {}

    def record(name, p, info, extra=""):
        info = dict(info)
        info.update(
            train_loss=float(loss(p, *train)),
            gap=float(loss(p, *train)) - f_star,
            train_acc=float(accuracy(p, *train)),
            test_acc=float(accuracy(p, *test)),
            note=extra,
        )
        rows[name] = info

    # Full batch. L-BFGS first: the first-order methods then get exactly its evaluations.
    p, info = full_batch("lbfgs", "lbfgs", params, loss, train, args.passes, args.repeats)
    record("full-batch L-BFGS", p, info)
    steps = info["passes"] - 1
    grids = {
        "full-batch GD": lambda lr: ol.sgd(lr),
        "full-batch momentum 0.9": lambda lr: ol.sgd(lr, momentum=0.9),
        "full-batch Adam": lambda lr: ol.adam(lr),
    }
    lrs = {
        "full-batch GD": [0.3, 1.0, 3.0],
        "full-batch momentum 0.9": [0.03, 0.1, 0.3],
        "full-batch Adam": [3e-3, 1e-2, 3e-2],
    }
    for name, make in grids.items():
        best = None
        for lr in lrs[name]:
            p, info = full_batch(name, make(lr), params, loss, train, steps, args.repeats)
            value = float(loss(p, *train))
            if best is None or value < best[0]:
                best = (value, p, info, f"lr={lr:g}")
        record(name, best[1], best[2], best[3])

    # Mini-batches.
    mb = {
        f"mini-batch({args.batch}) momentum 0.9": (ol.sgd(0.03, momentum=0.9), "lr=0.03"),
        f"mini-batch({args.batch}) Adam": (ol.adam(1e-3), "lr=1e-3"),
        f"mini-batch({args.batch}) L-BFGS": (ol.lbfgs(), "zoom line search on each batch"),
    }
    for name, (tx, note) in mb.items():
        p, info = minibatch(name, tx, params, loss, train, args.batch, args.passes, args.repeats)
        record(name, p, info, note)

    header = (
        f"{'method':<30}{'passes':>8}{'train loss':>12}{'f - f*':>10}{'train acc':>10}"
        f"{'test acc':>9}{'compile s':>10}{'run s':>8}  note"
    )
    print(header)
    print("-" * len(header))
    for name, r in rows.items():
        print(
            f"{name:<30}{r['passes']:>8.0f}{r['train_loss']:>12.3e}{r['gap']:>10.2e}"
            f"{r['train_acc']:>10.3f}"
            f"{r['test_acc']:>9.3f}{r['compile_s']:>10.2f}{r['median_s']:>8.3f}  {r['note']}"
        )
    best_first_order = min(
        r["gap"] for n, r in rows.items() if n.startswith("full-batch") and "L-BFGS" not in n
    )
    lbfgs_full = rows["full-batch L-BFGS"]["gap"]
    lbfgs_mb = rows[f"mini-batch({args.batch}) L-BFGS"]["gap"]
    print(
        f"gap f - f*: full-batch L-BFGS / best full-batch first-order: "
        f"{lbfgs_full / best_first_order:.3g}; mini-batch / full-batch L-BFGS: "
        f"{lbfgs_mb / lbfgs_full:.3g}"
    )
    out = {
        "environment": machine(),
        "passes": args.passes,
        "f_star": f_star,
        "batch": args.batch,
        "l2": L2,
        "results": rows,
    }
    if args.json:
        write_json(out, args.json)
    return out


if __name__ == "__main__":
    main()
