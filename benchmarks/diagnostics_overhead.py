"""What the per-layer statistics of ``optlab.diagnostics.Monitor`` cost inside the train step.

Two models carry the targets of issue 13, each trained as optlab trains it, with softmax
cross-entropy and each epoch one compiled ``optlab.train_epoch`` (``lax.scan`` over the
stacked batches, state donated):

- ``784-512-512-10``: the MLP of the issue (ReLU, He init, batch 128 of random data, Adam
  1e-3); target: statistics on every step at most +15%;
- ``digits recipe``: the digits MLP, the model ``optlab train --dataset digits`` trains
  (``optlab.train.recipes.recommended("digits")``: 64-256-256-10, ReLU, dropout 0.2, batch
  32 of the real digits rows, Adam 3e-3 on a cosine schedule), built by the recipe's own
  functions; target: at most +25%.

Two more digits MLPs are measured for information, without a target: the same 64-256-256-10
without its dropout (a cheaper step, so a larger share) and a 64-64-10 (a step of a few dozen
microseconds, where every extra kernel's launch shows: the worst case).

Variants, in one run:

- ``off``: ``make_train_step(loss)``, no monitor (the step ``fit`` compiles without
  ``diagnostics=``);
- ``every1``: ``Monitor(every=1, histograms=True)``, statistics on every step (activations and
  pre-activations: mean, std, dead/saturated fractions, 32-bin histograms; per parameter:
  gradient norm and RMS, update ratio, effective learning rate), folded into the carry;
- ``every1_nohist``: the same without histograms;
- ``every10``: ``Monitor(every=10)``, statistics on one step in ten (the epoch runs in chunks
  of ten steps: one monitored, nine plain, no branch); target +5%.

and a control:

- ``off_again``: the unmonitored step once more, compiled apart: its "overhead" is the run's
  noise floor (it would be 0 on a quiet machine).

The variants are compiled first, then timed round-robin over repeats (a digits sample is
several epochs back to back): each round times every variant once, in an order shuffled per
round (seeded), so that no variant always runs right after the same other one, and the
overhead of a variant is the median over the rounds of ``time(variant) / time(off) - 1`` (the
drift of a shared machine's speed between rounds cancels), with the quartiles of those ratios
beside it; the ratio of the fastest repeats, ``min(variant) / min(off) - 1``, is kept too.
XLA's own cost analysis of each compiled epoch (floating-point operations and bytes accessed,
per step) is printed too: it does not depend on the machine's load. Writes
``benchmarks/results/diagnostics_overhead.json`` (``diagnostics_overhead_only.json`` with
``--only``, which measures some of the models).

    python benchmarks/diagnostics_overhead.py [--quick] [--repeats 11] [--only MODEL ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import optlab as ol

# every=1 targets (issue 13); None: measured for information
TARGETS = {
    "784-512-512-10": 0.15,
    "digits recipe": 0.25,
    "digits 256-256 no dropout": None,
    "digits 64-64-10": None,
}
EVERY10_TARGET = 0.05


def _variants() -> dict[str, ol.diagnostics.Monitor | None]:
    return {
        "off": None,
        "every1": ol.diagnostics.Monitor(every=1, histograms=True),
        "every1_nohist": ol.diagnostics.Monitor(every=1, histograms=False),
        "every10": ol.diagnostics.Monitor(every=10, histograms=True),
        "off_again": None,
    }


def _problems(quick: bool) -> dict[str, tuple]:
    """``name: (model factory, transformation, xs, ys, epochs per timed sample)``."""
    from optlab.train.recipes import build_model, build_optimizer, load_data, recommended

    rng = np.random.default_rng(0)
    steps = 10 if quick else 40
    x = rng.normal(size=(steps, 128, 784)).astype(np.float32)
    y = rng.integers(0, 10, size=(steps, 128)).astype(np.int32)
    config = recommended("digits")
    data = load_data(config)
    opt = build_optimizer(config, data)
    rows, labels = data.train
    n = (rows.shape[0] // opt.batch_size) * opt.batch_size
    dx = np.asarray(rows[:n], np.float32).reshape(-1, opt.batch_size, rows.shape[1])
    dy = np.asarray(labels[:n]).reshape(-1, opt.batch_size)

    def mlp(inputs: int, hidden: tuple) -> Callable[[], Any]:
        return lambda: ol.nn.MLP(inputs, hidden, 10, kernel_init="he_normal", rngs=0)

    # The last number: epochs per timed sample (a digits epoch is a few ms: several of them
    # make one sample long enough that the timer and the dispatch do not dominate it).
    return {
        "784-512-512-10": (mlp(784, (512, 512)), ol.adam(1e-3), x, y, 1),
        "digits recipe": (lambda: build_model(config, data), opt.tx, dx, dy, 5),
        "digits 256-256 no dropout": (mlp(64, (256, 256)), ol.adam(1e-3), dx, dy, 5),
        "digits 64-64-10": (mlp(64, (64,)), ol.adam(1e-3), dx, dy, 20),
    }


def _cost(compiled, steps: int) -> dict[str, float]:
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list):  # older jax: one dict per computation
        analysis = analysis[0]
    return {
        "flops_per_step": float(analysis.get("flops", float("nan"))) / steps,
        "bytes_per_step": float(analysis.get("bytes accessed", float("nan"))) / steps,
    }


def run(repeats: int, quick: bool, only: list[str] | None = None) -> dict:
    loss = ol.nn.softmax_cross_entropy_with_integer_labels
    results: dict = {}
    for name, (make_model, tx, x, y, inner) in _problems(quick).items():
        if only and name not in only:
            continue
        batches = (jnp.asarray(x), jnp.asarray(y))
        steps = int(x.shape[0])
        entries = {}
        for variant, monitor in _variants().items():
            state = ol.TrainState.create(make_model(), tx)
            step = ol.make_train_step(loss, monitor=monitor)
            start = time.perf_counter()
            compiled = ol.train_epoch.lower(step, state, batches).compile()
            compile_s = time.perf_counter() - start
            state, _ = ol.train_epoch(step, state, batches)  # warm up
            jax.block_until_ready(state)
            entries[variant] = {
                "step": step,
                "state": state,
                "times": [],
                "compile_s": compile_s,
                **_cost(compiled, steps),
            }
        order = random.Random(0)
        for _ in range(repeats):  # round-robin: every variant sees the same load
            names = list(entries)
            order.shuffle(names)
            for entry in (entries[n] for n in names):
                start = time.perf_counter()
                for _ in range(inner):
                    entry["state"], logs = ol.train_epoch(entry["step"], entry["state"], batches)
                jax.block_until_ready((entry["state"], logs))
                entry["times"].append((time.perf_counter() - start) / inner)
        base = entries["off"]["times"]
        out = {}
        for variant, entry in entries.items():
            times = entry["times"]
            # each round's variant against that round's unmonitored epoch: the drift of a
            # shared machine's speed between rounds cancels
            ratios = [t / b for t, b in zip(times, base, strict=True)]
            q25, _, q75 = statistics.quantiles(ratios, n=4)
            out[variant] = {
                "ms_per_step_median": 1e3 * statistics.median(times) / steps,
                "ms_per_step_min": 1e3 * min(times) / steps,
                "ms_per_step_max": 1e3 * max(times) / steps,
                "overhead": statistics.median(ratios) - 1.0,
                "overhead_q25": q25 - 1.0,
                "overhead_q75": q75 - 1.0,
                "overhead_min": min(times) / min(base) - 1.0,
                "flops_ratio": entry["flops_per_step"] / entries["off"]["flops_per_step"],
                "bytes_ratio": entry["bytes_per_step"] / entries["off"]["bytes_per_step"],
                "compile_s": entry["compile_s"],
                "flops_per_step": entry["flops_per_step"],
                "bytes_per_step": entry["bytes_per_step"],
            }
        target = TARGETS[name]
        out["targets"] = {"every1": target, "every10": None if target is None else EVERY10_TARGET}
        results[name] = out
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument(
        "--only", nargs="+", choices=list(TARGETS), metavar="MODEL", help="measure these only"
    )
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    results = run(repeats, args.quick, args.only)
    header = (
        f"{'model':<27}{'variant':<15}{'ms/step':>9}{'overhead':>10}{'quartiles':>17}"
        f"{'of mins':>9}{'flops':>8}{'bytes':>8}{'compile s':>11}"
    )
    print(header)
    for name, out in results.items():
        for variant, r in out.items():
            if variant == "targets":
                continue
            print(
                f"{name:<27}{variant:<15}{r['ms_per_step_min']:>9.3f}{r['overhead']:>+10.1%}"
                f"{r['overhead_q25']:>+9.1%}{r['overhead_q75']:>+8.1%}"
                f"{r['overhead_min']:>+9.1%}{r['flops_ratio']:>8.3f}{r['bytes_ratio']:>8.3f}"
                f"{r['compile_s']:>11.1f}"
            )
    record = {
        "benchmark": "diagnostics_overhead",
        "jax": jax.__version__,
        "device": str(jax.devices()[0]),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "repeats": repeats,
        "quick": args.quick,
        "only": args.only,
        "results": results,
    }
    # a run of some models only does not replace the full record
    name = "diagnostics_overhead_only.json" if args.only else "diagnostics_overhead.json"
    out = Path(__file__).parent / "results" / name
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(record, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
