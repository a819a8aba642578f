"""Building an ``optlab.nn.MLP``: host-side initializers against eager ``jax.random`` ones.

Each build uses layer widths never seen before in the process, so nothing is cached. In one run:

- ``optlab``: ``MLP(...)`` as shipped: initializers drawn with NumPy from the key's data and
  moved to the device, norms traced abstractly and filled with their constants (no compilation);
- ``eager_jax``: the same architecture with ``kernel_init=jax.nn.initializers.glorot_uniform()``
  and ``norm=lambda n, rngs: nnx.BatchNorm(n, rngs=rngs)``: eager ``jax.random`` and ``jnp``
  calls, each compiling a small XLA program per new shape (how optlab built models before).

The first build of the process (JAX's backend start-up included) is reported on its own. The
variants alternate over repeats; the median, min and max seconds per build are reported.
Writes ``benchmarks/results/nn_build.json``.

    python benchmarks/nn_build.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import flax.nnx as nnx
import jax

import optlab as ol

try:  # imported as benchmarks.NAME (tests, python -m)
    from benchmarks.common import machine, write_json
except ModuleNotFoundError:  # run as python benchmarks/NAME.py: its folder is sys.path[0]
    from common import machine, write_json


def _build(variant: str, widths: tuple[int, int]) -> float:
    options = {"norm": "batch", "dropout": 0.1}
    if variant == "eager_jax":
        options = {
            "norm": lambda n, rngs: nnx.BatchNorm(n, rngs=rngs),
            "kernel_init": jax.nn.initializers.glorot_uniform(),
            "dropout": 0.1,
        }
    start = time.perf_counter()
    model = ol.nn.MLP(64 + widths[0] % 7, widths, 10, rngs=0, **options)
    jax.block_until_ready(nnx.state(model))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    start = time.perf_counter()
    ol.nn.MLP(64, (128, 64), 10, norm="batch", dropout=0.1, rngs=0)
    first = time.perf_counter() - start

    times: dict[str, list[float]] = {"optlab": [], "eager_jax": []}
    for i in range(args.repeats):
        for j, variant in enumerate(times):
            widths = (100 + 2 * i + 50 * j, 40 + 2 * i + 50 * j)  # new shapes every build
            times[variant].append(_build(variant, widths))

    def summary(ts: list[float]) -> dict[str, float]:
        return {"median": statistics.median(ts), "min": min(ts), "max": max(ts)}

    results = {
        "description": "seconds to build MLP(~64, (w1, w2), 10, norm=batch, dropout=0.1), new "
        "widths each build, after the process's first MLP",
        "first_build_s": first,
        "optlab_s": summary(times["optlab"]),
        "eager_jax_s": summary(times["eager_jax"]),
        "speedup_median": statistics.median(times["eager_jax"])
        / statistics.median(times["optlab"]),
        "environment": machine(),
        "repeats": args.repeats,
    }
    out = write_json(results, "nn_build.json")
    print(f"first MLP of the process: {first:.3f} s")
    for name in times:
        s = results[f"{name}_s"]
        print(f"{name:>10}: median {s['median']:.3f} s  (min {s['min']:.3f}, max {s['max']:.3f})")
    print(f"speedup (median): {results['speedup_median']:.1f}x  -> {out}")


if __name__ == "__main__":
    main()
