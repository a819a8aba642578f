"""The compiled train step side by side: optlab's scanned epoch against hand-written loops.

For a 10-32-10 and a 784-512-512-10 MLP (ReLU, softmax cross-entropy, Adam 1e-3, batch 128,
random data), in one run:

- ``optlab``: ``TrainState`` + ``make_train_step`` + ``train_epoch`` (``lax.scan`` over the
  stacked batches, state donated, one dispatch per epoch), with everything ``fit`` logs
  (loss, accuracy, gradient norm, learning rate) and the non-finite guard on (the default);
- ``optlab_unguarded``: the same with ``make_train_step(skip_nonfinite=False)``;
- ``fit``: the whole ``optlab.fit`` epoch (the shuffle and gather of ``optlab.data.batches``
  inside the compiled epoch, the scan, fetching and logging the epoch's values), timed by
  ``fit`` itself (``history["time"]`` of a second epoch, compiled already);
- ``jit_scan``: a hand-written pure step over a dict of weights, ``jax.jit`` + ``lax.scan``,
  same optimizer (``optlab.adam``), donated;
- ``jit_loop``: the same step, one ``jax.jit`` call per step from Python;
- ``nnx_jit``: ``flax.nnx.Optimizer`` with ``nnx.jit`` per step (the Flax tutorial loop);
- ``torch``: eager PyTorch with ``torch.optim.Adam(fused=True)``, when torch is installed.

Each variant is compiled (or warmed up) first, then the variants are timed round-robin over
many short repeats (median, min, max); ratios use each variant's best repeat, the one least
disturbed on a shared machine. XLA's cost analysis of one compiled step (bytes accessed,
buffer copies) is printed beside the timings: it does not depend on the machine's load.
Steps/s is converted to achieved GFLOP/s with 6 x batch x (sum of fan-in x fan-out) per step
(forward 2, backward 4), and compared with a float32 matmul peak measured in the same run.
Also measured: the wall time for ``optlab.fit`` to reach 97% validation accuracy on digits,
compilation included. Writes ``benchmarks/results/train_step.json``.

    python benchmarks/train_step.py [--quick] [--repeats 40]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np

import optlab as ol

try:  # imported as benchmarks.NAME (tests, python -m)
    from benchmarks.common import machine, write_json
except ModuleNotFoundError:  # run as python benchmarks/NAME.py: its folder is sys.path[0]
    from common import machine, write_json

BATCH = 128
LR = 1e-3


def _timed(fn, repeats: int) -> dict[str, float]:
    """Median/min/max seconds of ``fn()`` over ``repeats`` calls (``fn`` blocks on its result)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def matmul_peak(repeats: int) -> float:
    """Achieved float32 GFLOP/s of square matmuls (512, 1024, 2048; the best of them, fastest
    repeat): the practical peak of this machine for the operation an MLP step is made of."""
    best = 0.0
    for n in (512, 1024, 2048):
        a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
        f = jax.jit(lambda x: x @ x)
        f(a).block_until_ready()
        t = _timed(lambda f=f, a=a: f(a).block_until_ready(), max(repeats, 10))["min"]
        best = max(best, 2 * n**3 / t / 1e9)
    return best


def xent(logits, labels):
    return -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=-1)[:, 0]


def data(sizes: tuple[int, ...], steps: int):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, BATCH, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], (steps, BATCH)).astype(np.int32)
    return jnp.asarray(x), jnp.asarray(y)


def flops_per_step(sizes: tuple[int, ...]) -> float:
    return 6.0 * BATCH * sum(a * b for a, b in itertools.pairwise(sizes))


def make_mlp(sizes: tuple[int, ...]):
    return ol.nn.MLP(sizes[0], sizes[1:-1], sizes[-1], activation="relu", rngs=0)


# ---------------------------------------------------------------------------------------------


def bench_optlab(sizes, steps, skip_nonfinite=True):
    xs, ys = data(sizes, steps)
    state = ol.TrainState.create(make_mlp(sizes), ol.adam(LR))
    step = ol.make_train_step(xent, metrics=("accuracy",), skip_nonfinite=skip_nonfinite)
    box = [state]

    def run():
        box[0], logs = ol.train_epoch(step, box[0], (xs, ys))
        jax.block_until_ready(logs)

    start = time.perf_counter()
    run()
    compile_s = time.perf_counter() - start
    return steps, run, compile_s


def bench_optlab_unguarded(sizes, steps):
    return bench_optlab(sizes, steps, skip_nonfinite=False)


def bench_fit(sizes, steps):
    """``optlab.fit`` for two epochs of ``steps`` steps each; the run returns the second
    epoch's time as ``fit`` measured it (dispatch of the compiled epoch, shuffle and gather
    on the device, scan, fetching the logs; compiled in the first epoch)."""
    xs, ys = data(sizes, steps)
    x, y = np.asarray(xs).reshape(steps * BATCH, -1), np.asarray(ys).reshape(-1)
    model = make_mlp(sizes)

    def run() -> float:
        history, _ = ol.fit(
            model, ol.adam(LR), (x, y), loss=xent, epochs=2, batch_size=BATCH, progress=False
        )
        return history["time"][1]

    start = time.perf_counter()
    run()
    compile_s = time.perf_counter() - start
    return steps, run, compile_s


def _hand_params(sizes):
    keys = jax.random.split(jax.random.key(0), len(sizes) - 1)
    return [
        {
            "w": jax.random.normal(k, (a, b), jnp.float32) * np.sqrt(2.0 / a),
            "b": jnp.zeros((b,), jnp.float32),
        }
        for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


def _hand_forward(params, x):
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def _hand_step(tx):
    def step(carry, batch):
        params, opt_state = carry
        x, y = batch

        def loss_fn(p):
            logits = _hand_forward(p, x)
            return jnp.mean(xent(logits, y)), logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = ol.apply_updates(params, updates)
        acc = jnp.mean(jnp.argmax(logits, -1) == y)
        return (params, opt_state), (loss, acc)

    return step


def bench_jit_scan(sizes, steps):
    xs, ys = data(sizes, steps)
    tx = ol.adam(LR)
    params = _hand_params(sizes)
    step = _hand_step(tx)

    @jax.jit
    def epoch(carry, xs, ys):
        carry, (loss, acc) = jax.lax.scan(step, carry, (xs, ys))
        return carry, jnp.mean(loss), jnp.mean(acc)

    epoch = jax.jit(epoch.__wrapped__, donate_argnums=0)
    box = [(params, tx.init(params))]

    def run():
        box[0], loss, acc = epoch(box[0], xs, ys)
        jax.block_until_ready((loss, acc))

    start = time.perf_counter()
    run()
    compile_s = time.perf_counter() - start
    return steps, run, compile_s


def bench_jit_loop(sizes, steps):
    xs, ys = data(sizes, steps)
    tx = ol.adam(LR)
    params = _hand_params(sizes)
    one = jax.jit(_hand_step(tx), donate_argnums=0)
    box = [(params, tx.init(params))]
    batches = [(xs[i], ys[i]) for i in range(steps)]

    def run():
        carry = box[0]
        for b in batches:
            carry, out = one(carry, b)
        jax.block_until_ready(out)
        box[0] = carry

    start = time.perf_counter()
    box[0], out = one(box[0], batches[0])
    jax.block_until_ready(out)
    compile_s = time.perf_counter() - start
    return steps, run, compile_s


def bench_nnx_jit(sizes, steps):
    xs, ys = data(sizes, steps)
    model = make_mlp(sizes)
    optimizer = nnx.Optimizer(model, ol.adam(LR), wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer, x, y):
        def loss_fn(m):
            logits = m(x, train=True)
            return jnp.mean(xent(logits, y)), logits

        (loss, logits), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
        optimizer.update(model, grads)
        return loss, jnp.mean(jnp.argmax(logits, -1) == y)

    batches = [(xs[i], ys[i]) for i in range(steps)]

    def run():
        for x, y in batches:
            out = train_step(model, optimizer, x, y)
        jax.block_until_ready(out)

    start = time.perf_counter()
    jax.block_until_ready(train_step(model, optimizer, *batches[0]))
    compile_s = time.perf_counter() - start
    return steps, run, compile_s


def bench_torch(sizes, steps):
    import torch

    torch.manual_seed(0)
    # One thread for the tiny model (its ops are too small to split; extra threads only spin),
    # every core for the large one.
    small = sum(a * b for a, b in itertools.pairwise(sizes)) < 100_000
    torch.set_num_threads(1 if small else (os.cpu_count() or 1))
    layers: list[Any] = []
    for a, b in itertools.pairwise(sizes):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    opt = torch.optim.Adam(model.parameters(), lr=LR, fused=True)
    xs, ys = data(sizes, steps)
    xs_t = torch.from_numpy(np.array(xs))
    ys_t = torch.from_numpy(np.array(ys)).long()
    loss_fn = torch.nn.CrossEntropyLoss()

    def run():
        for i in range(steps):
            opt.zero_grad(set_to_none=True)
            logits = model(xs_t[i])
            loss = loss_fn(logits, ys_t[i])
            loss.backward()
            opt.step()
            (logits.argmax(-1) == ys_t[i]).float().mean()  # the same metric work as the others
        loss.item()

    start = time.perf_counter()
    run()
    warm_s = time.perf_counter() - start
    return steps, run, warm_s


def hlo_cost(sizes) -> dict[str, dict[str, float]]:
    """XLA's cost analysis of one compiled step (state donated) of optlab's step, guarded and
    unguarded, and of the hand-written one: bytes accessed, flops, and the number of buffer
    copies XLA inserted (timings on a shared machine are noisy; these numbers are not)."""
    xs, ys = data(sizes, 1)
    batch = (xs[0], ys[0])
    out = {}
    for name, guard in (("optlab", True), ("optlab_unguarded", False)):
        state = ol.TrainState.create(make_mlp(sizes), ol.adam(LR))
        step = ol.make_train_step(xent, metrics=("accuracy",), skip_nonfinite=guard)
        out[name] = jax.jit(step, donate_argnums=0).lower(state, batch).compile()
    tx = ol.adam(LR)
    params = _hand_params(sizes)
    hand = jax.jit(_hand_step(tx), donate_argnums=0)
    out["jit_scan"] = hand.lower((params, tx.init(params)), batch).compile()
    costs = {}
    for name, compiled in out.items():
        analysis = compiled.cost_analysis()
        analysis = analysis[0] if isinstance(analysis, list) else analysis
        costs[name] = {
            "bytes": float(analysis.get("bytes accessed", 0.0)),
            "flops": float(analysis.get("flops", 0.0)),
            "copies": compiled.as_text().count(" copy("),
        }
    return costs


# ---------------------------------------------------------------------------------------------


class _StopAt(ol.callbacks.Callback):
    def __init__(self, target: float):
        self.target = target
        self.epoch: int | None = None

    def on_epoch_end(self, loop, epoch, logs):
        if logs["val_accuracy"] >= self.target:
            self.epoch = epoch
            loop.stop_training = True


def time_to_accuracy(target: float = 0.97, max_epochs: int = 60) -> dict[str, Any]:
    """Wall seconds of ``optlab.fit`` until ``target`` validation accuracy on digits,
    compilation included (the dataset and the model are built before the clock starts; the
    model's construction is timed separately)."""
    ds = ol.data.load("digits")
    start = time.perf_counter()
    model = ol.nn.MLP(64, (128,), 10, kernel_init="he_normal", rngs=0)
    build = time.perf_counter() - start
    stop = _StopAt(target)
    start = time.perf_counter()
    history, _ = ol.fit(
        model,
        ol.adam(3e-3),
        ds,
        loss=ol.nn.softmax_cross_entropy_with_integer_labels,
        epochs=max_epochs,
        batch_size=32,
        validation_data=(ds.x_test, ds.y_test),
        callbacks=[stop],
        progress=False,
    )
    seconds = time.perf_counter() - start
    return {
        "target": target,
        "seconds": seconds,
        "reached": stop.epoch is not None,
        "epochs": len(history),
        "val_accuracy": history["val_accuracy"][-1],
        "first_epoch_seconds": history["time"][0],
        "model_build_seconds": build,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few steps and repeats")
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--output", default="benchmarks/results/train_step.json")
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    scale = 0.2 if args.quick else 1.0

    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = None

    info = {**machine(), "torch": torch_version, "platform": platform.platform(), "batch": BATCH}
    print(" ".join(f"{k}={v}" for k, v in info.items()))
    peak = matmul_peak(repeats)
    print(f"matmul peak (float32, best of 512/1024/2048): {peak:.1f} GFLOP/s")

    models = {"10-32-10": (10, 32, 10), "784-512-512-10": (784, 512, 512, 10)}
    # Steps per timed repeat: short runs (~5-50 ms), many repeats. On a shared machine the
    # fastest of many short repeats is the one least disturbed by other processes, a steadier
    # estimate than a few long ones.
    plan = {
        "10-32-10": {
            "optlab": 300,
            "optlab_unguarded": 300,
            "fit": 300,
            "jit_scan": 300,
            "jit_loop": 200,
            "nnx_jit": 30,
            "torch": 100,
        },
        "784-512-512-10": {
            "optlab": 6,
            "optlab_unguarded": 6,
            "fit": 6,
            "jit_scan": 6,
            "jit_loop": 6,
            "nnx_jit": 6,
            "torch": 6,
        },
    }
    benches = {
        "optlab": bench_optlab,
        "optlab_unguarded": bench_optlab_unguarded,
        "fit": bench_fit,
        "jit_scan": bench_jit_scan,
        "jit_loop": bench_jit_loop,
        "nnx_jit": bench_nnx_jit,
    }
    if torch_version is not None:
        benches["torch"] = bench_torch
    results: dict[str, Any] = {"info": info, "matmul_peak_gflops": peak, "models": {}}
    for label, sizes in models.items():
        prepared = {}
        for name, fn in benches.items():
            prepared[name] = fn(sizes, max(int(plan[label][name] * scale), 10))
        # Repeats run round-robin over the variants, so a burst of load from elsewhere on the
        # machine hits every variant alike. A run that returns a time (fit) measured itself.
        times: dict[str, list[float]] = {name: [] for name in prepared}
        for _ in range(repeats):
            for name, (_, run, _) in prepared.items():
                start = time.perf_counter()
                measured = run()
                elapsed = time.perf_counter() - start
                times[name].append(measured if isinstance(measured, float) else elapsed)
        rows = {}
        for name, (steps, _, compile_s) in prepared.items():
            t = {
                "median": statistics.median(times[name]),
                "min": min(times[name]),
                "max": max(times[name]),
            }
            sps = steps / t["median"]
            gflops = flops_per_step(sizes) * sps / 1e9
            rows[name] = {
                "steps": steps,
                "seconds": t,
                "steps_per_second": sps,
                "steps_per_second_best": steps / t["min"],
                "gflops": gflops,
                "fraction_of_peak": gflops / peak,
                "compile_or_warmup_seconds": compile_s,
            }
            print(
                f"{label:>15} {name:>9}: {sps:10.0f} steps/s (median; best "
                f"{steps / t['min']:.0f})  {gflops:7.2f} GFLOP/s "
                f"({100 * gflops / peak:5.1f}% of peak)  [{t['min']:.3f}-{t['max']:.3f} s "
                f"per {steps} steps; first call {compile_s:.2f} s]"
            )
        # Ratios of the best repeats: on a shared machine the fastest repeat is the one least
        # disturbed by other processes (medians are in the JSON as well).
        base = rows["optlab"]["steps_per_second_best"]
        ratios = {
            f"optlab/{k}": base / v["steps_per_second_best"]
            for k, v in rows.items()
            if k != "optlab"
        }
        hand = rows["jit_scan"]["steps_per_second_best"]
        for k in ("optlab_unguarded", "fit"):
            ratios[f"{k}/jit_scan"] = rows[k]["steps_per_second_best"] / hand
        print(f"{label:>15} ratios: " + "  ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
        cost = hlo_cost(sizes)
        print(
            f"{label:>15} XLA cost of one step: "
            + "  ".join(
                f"{k} {v['bytes'] / 1e6:.2f} MB, {v['copies']} copies" for k, v in cost.items()
            )
        )
        results["models"][label] = {
            "hlo_cost_per_step": cost,
            "sizes": list(sizes),
            "flops_per_step": flops_per_step(sizes),
            "runs": rows,
            "ratios": ratios,
        }
    # The peak again, after the runs: the larger of the two measurements is kept (on a shared
    # machine either one may have been slowed down).
    peak_after = matmul_peak(repeats)
    if peak_after > peak:
        peak = peak_after
        for model in results["models"].values():
            for row in model["runs"].values():
                row["fraction_of_peak"] = row["gflops"] / peak
    results["matmul_peak_gflops"] = peak
    fractions = []
    for label, m in results["models"].items():
        for name, r in m["runs"].items():
            best = flops_per_step(tuple(m["sizes"])) * r["steps_per_second_best"] / 1e9
            r["fraction_of_peak_best"] = best / peak
            fractions.append(f"{label} {name} {100 * best / peak:.0f}%")
    print(
        f"matmul peak, best of before/after: {peak:.1f} GFLOP/s; best repeats reach "
        + ", ".join(fractions)
    )
    tta = time_to_accuracy()
    print(
        f"digits: {tta['seconds']:.2f} s to {100 * tta['target']:.0f}% validation accuracy "
        f"({tta['epochs']} epochs, first epoch incl. compile {tta['first_epoch_seconds']:.2f} s,"
        f" reached={tta['reached']}; building the model took "
        f"{tta['model_build_seconds']:.2f} s more)"
    )
    results["time_to_accuracy"] = tta
    out = write_json(results, Path(args.output))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
