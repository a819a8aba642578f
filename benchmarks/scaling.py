"""Data-parallel and sharded-sweep throughput on 1, 2 and 4 devices, as ratios to one device.

In one run (the device count is fixed when JAX starts: on a CPU-only machine this script
simulates 4 CPU devices with ``--xla_force_host_platform_device_count=4``):

- data-parallel training: one epoch of a 64-256-256-10 MLP (ReLU, softmax cross-entropy,
  SGD with momentum, batch 512) as :func:`optlab.train_epoch` on one device (``one``), and as
  a :func:`optlab.train.sharding.data_parallel` step with rows over a ``data`` axis of 1, 2
  and 4 devices (``data1``...), and with the optimizer state sharded (``zero2``, ``zero4``);
  throughput in training rows per second;
- sharded sweep: a population of 8 members (seeds) of the same model, one epoch vmapped
  (``jax.vmap`` of the scanned epoch) on one device (``pop1``) and with the members over a
  ``pop`` axis of 2 and 4 devices (``pop2``, ``pop4``); throughput in member-epochs per
  second.

Every variant is compiled first (timed apart), then the variants are timed round-robin over
short repeats; ratios use each variant's best repeat. On a CPU machine the simulated devices
share the same cores, so the ratios measure the partitioning overheads, not a speed-up: near
1 is the expected result. On a machine with several accelerators they are the scaling.
Writes ``benchmarks/results/scaling.json``.

    python benchmarks/scaling.py [--quick] [--repeats 10]
"""

from __future__ import annotations

import os

if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    ).strip()

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import optlab as ol
from optlab.train.sharding import (
    data_parallel,
    replicate,
    shard_batches,
    shard_population,
    shard_state,
)
from optlab.train.step import scan_epoch

SIZES = (64, 256, 256, 10)
BATCH = 512
MEMBERS = 8


def xent(logits, labels):
    return -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=-1)[:, 0]


TX = ol.sgd(0.01, momentum=0.9)


def make_state(seed: int = 0):
    model = ol.nn.MLP(SIZES[0], SIZES[1:-1], SIZES[-1], activation="relu", rngs=seed)
    return ol.TrainState.create(model, TX, seed=seed)


def data(steps: int):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, BATCH, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], (steps, BATCH)).astype(np.int32)
    return jnp.asarray(x), jnp.asarray(y)


STEP = ol.make_train_step(xent, metrics=("accuracy",))


def data_parallel_variant(devices: int | None, zero: bool, steps: int):
    """A ``run()`` doing one epoch; ``devices=None`` is the plain single-device engine."""
    batches = data(steps)
    if devices is None:
        box, step = [make_state()], STEP
    else:
        mesh = jax.make_mesh((devices,), ("data",))
        box = [shard_state(make_state(), mesh, shard_optimizer_state=zero)]
        step = data_parallel(STEP, mesh, shard_optimizer_state=zero)
        batches = shard_batches(batches, mesh, stacked=True)

    def run():
        box[0], logs = ol.train_epoch(step, box[0], batches)
        jax.block_until_ready(logs)

    return run, steps * BATCH


def sweep_variant(devices: int | None, steps: int):
    """One vmapped epoch of a population of ``MEMBERS`` seeds; ``devices=None``: one device."""
    batches = data(steps)
    members = [make_state(seed) for seed in range(MEMBERS)]
    population = jax.tree.map(lambda *a: jnp.stack(a), *members)
    if devices is not None:
        mesh = jax.make_mesh((devices,), ("pop",))
        population = shard_population(population, mesh)
        batches = replicate(batches, mesh)
    epoch = jax.jit(
        jax.vmap(lambda st, b: scan_epoch(STEP, st, b), (0, None), 0),
        donate_argnums=0,
    )
    box = [population]

    def run():
        box[0], logs = epoch(box[0], batches)
        jax.block_until_ready(logs)

    return run, MEMBERS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "scaling.json"))
    args = parser.parse_args()
    steps = 4 if args.quick else 16
    repeats = 3 if args.quick else args.repeats
    available = jax.device_count()
    counts = [n for n in (1, 2, 4) if n <= available]

    variants = {"one": lambda: data_parallel_variant(None, False, steps)}
    for n in counts:
        variants[f"data{n}"] = lambda n=n: data_parallel_variant(n, False, steps)
        if n > 1:
            variants[f"zero{n}"] = lambda n=n: data_parallel_variant(n, True, steps)
    variants["pop1"] = lambda: sweep_variant(None, steps)
    for n in counts[1:]:
        variants[f"pop{n}"] = lambda n=n: sweep_variant(n, steps)

    runs, units, compile_s = {}, {}, {}
    for name, make in variants.items():
        run, units[name] = make()
        start = time.perf_counter()
        run()
        compile_s[name] = time.perf_counter() - start
        runs[name] = run
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):  # round-robin: every variant sees the same load
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)

    results = {}
    for name, ts in times.items():
        results[name] = {
            "median_s": statistics.median(ts),
            "min_s": min(ts),
            "max_s": max(ts),
            "compile_s": compile_s[name],
            "throughput": units[name] / min(ts),
            "unit": "member-epochs/s" if name.startswith("pop") else "rows/s",
        }
    for name, r in results.items():
        base = results["pop1" if name.startswith("pop") else "one"]["throughput"]
        r["ratio_to_one_device"] = r["throughput"] / base
    report = {
        "benchmark": "scaling",
        "jax": jax.__version__,
        "optlab": getattr(ol, "__version__", "dev"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "simulated_cpu_devices": jax.default_backend() == "cpu",
        "cpu_count": os.cpu_count(),
        "model": "-".join(map(str, SIZES)),
        "batch": BATCH,
        "steps_per_epoch": steps,
        "members": MEMBERS,
        "repeats": repeats,
        "note": (
            "simulated CPU devices share the machine's cores: ratios measure partitioning "
            "overheads, not speed-ups"
            if jax.default_backend() == "cpu"
            else "real devices"
        ),
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    width = max(map(len, results))
    print(f"jax {jax.__version__}, {jax.default_backend()}, {available} devices")
    for name, r in results.items():
        print(
            f"{name:<{width}}  {r['throughput']:12.1f} {r['unit']:<16} "
            f"x{r['ratio_to_one_device']:.2f}  (compile {r['compile_s']:.2f} s)"
        )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
