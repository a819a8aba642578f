"""A sweep of N configurations in one compiled program against N sequential ``ol.fit`` calls.

The task: a digits MLP (64-64-10, ReLU), SGD with momentum, ``learning_rate`` log-uniform in
[1e-3, 0.3] and ``momentum`` uniform in [0.8, 0.99] (quasi-random points), batch 32, 10 epochs,
validated on a stratified 20% of the training split after every epoch. Measured side by side
in one process (ratios, not absolute times):

1. ``sequential``: N calls of ``ol.fit`` (each configuration's transformation is a new object,
   so each call compiles its epoch and its validation: what a user looping over ``fit`` pays);
2. ``sweep``: one ``ol.tune.sweep`` of the N configurations (compilation included: the first
   call for each N compiles its population program);
3. the throughput, warm (programs compiled): ``sweep``'s time in its epochs against a
   hand-written ``jax.jit(jax.vmap(...))`` of a scanned epoch plus the same validation, over the
   same member-epochs (median of ``--repeats``);
4. successive halving (``HalvingConfig(eta=3, min_epochs=1)``) on the same N: member-epochs
   trained and the best validation loss found, against the full sweep.

Writes ``benchmarks/results/sweep.json``. The development machine's two cores are shared with
other jobs; the JSON records the load average.

    python benchmarks/sweep.py [--members 8,32,128] [--epochs 10] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
import warnings

import jax
import jax.numpy as jnp
from flax import nnx

import optlab as ol

try:  # imported as benchmarks.NAME (tests, python -m)
    from benchmarks.common import machine, write_json
except ModuleNotFoundError:  # run as python benchmarks/NAME.py: its folder is sys.path[0]
    from common import machine, write_json

LOSS = ol.nn.softmax_cross_entropy_with_integer_labels
SPACE = ol.tune.Space(
    learning_rate=ol.tune.log_uniform(1e-3, 0.3), momentum=ol.tune.uniform(0.8, 0.99)
)


def model_fn(config, rngs):
    return ol.nn.MLP(64, (64,), 10, rngs=rngs)


def tx_fn(config):
    return ol.sgd(config["learning_rate"], momentum=config["momentum"])


def data():
    ds = ol.data.load("digits")
    (x, y), (xv, yv) = ol.data.train_val_split(ds.x_train, ds.y_train, 0.2, seed=0)
    return jnp.asarray(x), jnp.asarray(y), jnp.asarray(xv), jnp.asarray(yv)


def sequential(configs, x, y, xv, yv, epochs, batch):
    start = time.perf_counter()
    for c in configs:
        ol.fit(
            model_fn(c, nnx.Rngs(0)),
            tx_fn(c),
            (x, y),
            loss=LOSS,
            epochs=epochs,
            batch_size=batch,
            validation_data=(xv, yv),
            progress=False,
            seed=0,
        )
    return time.perf_counter() - start


def run_sweep(configs, x, y, xv, yv, epochs, batch, halving=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ol.tune.TuningWarning)
        return ol.tune.sweep(
            model_fn,
            tx_fn,
            configs,
            (x, y),
            loss=LOSS,
            epochs=epochs,
            batch_size=batch,
            validation_data=(xv, yv),
            halving=halving,
        )


def hand_written(configs, x, y, xv, yv, epochs, batch):
    """A plain jit(vmap(scanned epoch)) with the same validation: returns (seconds warm, loss)."""
    step = ol.make_train_step(LOSS, metrics=("accuracy",))
    ev = ol.make_eval_step(LOSS, metrics=("accuracy",))
    tx = ol.inject_hyperparams(ol.sgd)(learning_rate=0.01, momentum=0.9)
    base = ol.TrainState.create(model_fn(None, nnx.Rngs(0)), tx, seed=0)
    lrs = jnp.asarray([c["learning_rate"] for c in configs], jnp.float32)
    moms = jnp.asarray([c["momentum"] for c in configs], jnp.float32)
    val = ol.data.batches(xv, yv, len(yv), 0, shuffle=False)

    @jax.jit
    def fresh():
        return jax.vmap(
            lambda lr, m: base.replace(
                opt_state=ol.set_hyperparams(base.opt_state, learning_rate=lr, momentum=m)
            )
        )(lrs, moms)

    @functools.partial(jax.jit, donate_argnums=0)
    def epoch(states, e):
        def one(state):
            key = jax.random.fold_in(jax.random.key(0), e)
            batches = ol.data.batches(x, y, batch, key)
            state, logs = jax.lax.scan(step, state, batches)
            val_logs = jax.lax.map(lambda b: ev(state, b), val)
            return state, (jnp.mean(logs["loss"]), jnp.mean(val_logs["loss"]))

        return jax.vmap(one)(states)

    states = fresh()
    states, _ = epoch(states, 1)  # compile
    jax.block_until_ready(states)
    states = fresh()
    start = time.perf_counter()
    for e in range(1, epochs + 1):
        states, (loss, val_loss) = epoch(states, e)
        jax.device_get((loss, val_loss))  # fetched every epoch, as a sweep does
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", default="8,32,128")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="8 and 32 members, 1 repeat")
    parser.add_argument("--output", default=os.path.join("benchmarks", "results", "sweep.json"))
    args = parser.parse_args()
    if args.quick:
        args.members, args.repeats = "8,32", 1
    x, y, xv, yv = data()
    rows = []
    print(
        f"{'members':>8} {'fit loop s':>11} {'sweep s':>8} {'speedup':>8} "
        f"{'warm sweep s':>13} {'hand vmap s':>12} {'throughput':>10}",
        flush=True,
    )
    for n in (int(v) for v in args.members.split(",")):
        configs = ol.tune.quasi_random(SPACE, n, seed=0)
        seq = sequential(configs, x, y, xv, yv, args.epochs, args.batch)
        cold = run_sweep(configs, x, y, xv, yv, args.epochs, args.batch)
        warm, hand = [], []
        for _ in range(args.repeats):
            warm.append(run_sweep(configs, x, y, xv, yv, args.epochs, args.batch).train_time)
            hand.append(hand_written(configs, x, y, xv, yv, args.epochs, args.batch))
        row = {
            "members": n,
            "epochs": args.epochs,
            "sequential_fit_seconds": seq,
            "sweep_seconds": cold.wall_time,
            "speedup": seq / cold.wall_time,
            "sweep_compilations": cold.compilations,
            "warm_sweep_epoch_seconds": warm,
            "hand_written_seconds": hand,
            "throughput_vs_hand_written": statistics.median(hand) / statistics.median(warm),
            "best_val_loss": cold.best_score,
        }
        rows.append(row)
        print(
            f"{n:>8} {seq:>11.2f} {cold.wall_time:>8.2f} {row['speedup']:>7.1f}x "
            f"{statistics.median(warm):>13.3f} {statistics.median(hand):>12.3f} "
            f"{row['throughput_vs_hand_written']:>9.2f}x",
            flush=True,
        )
    halving = []
    for n in (int(v) for v in args.members.split(",")):
        configs = ol.tune.quasi_random(SPACE, n, seed=0)
        full = run_sweep(configs, x, y, xv, yv, args.epochs, args.batch)
        half = run_sweep(
            configs,
            x,
            y,
            xv,
            yv,
            args.epochs,
            args.batch,
            ol.tune.HalvingConfig(eta=3, min_epochs=1),
        )
        row = {
            "members": n,
            "full_member_epochs": full.member_epochs,
            "halving_member_epochs": half.member_epochs,
            "epochs_saved": 1 - half.member_epochs / full.member_epochs,
            "full_best": full.best_score,
            "halving_best": half.best_score,
            "same_best_config": full.best_config == half.best_config,
            "full_seconds": full.wall_time,
            "halving_seconds": half.wall_time,
            "halving_compilations": half.compilations,
        }
        halving.append(row)
        print(
            f"halving {n:>4}: member-epochs {half.member_epochs}/{full.member_epochs} "
            f"({100 * row['epochs_saved']:.0f}% saved), best val_loss {half.best_score:.4f} vs "
            f"{full.best_score:.4f} (same configuration: {row['same_best_config']}), "
            f"{half.wall_time:.2f} s vs {full.wall_time:.2f} s",
            flush=True,
        )
    record = {
        "benchmark": "sweep",
        "settings": vars(args),
        "rows": rows,
        "halving": halving,
        **machine(),
    }
    write_json(record, args.output)
    print(f"load average {os.getloadavg()}: the machine is shared; read the ratios", flush=True)


if __name__ == "__main__":
    main()
