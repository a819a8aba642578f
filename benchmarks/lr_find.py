"""Does the verified LR-finder suggestion land near the best learning rate of a grid search?

For each dataset (digits, MNIST-1D, Fashion-MNIST when its IDX files are installed) and each
optimizer (SGD, momentum 0.9, Adam):

1. the grid: ``optlab.tune.sweep`` trains an MLP with ``--grid`` log-spaced learning rates x 3
   seeds for ``--epochs`` epochs; the best learning rate is the one with the lowest mean (over
   seeds) of the best validation loss;
2. the finder: ``optlab.tune.lr_find(..., verify=True)`` for each of ``--seeds`` seeds (a new
   model initialization and data order each), with one epoch of data at most for the range
   test (``num_steps = min(100, steps per epoch)``), then the verification (``{s/3, s, 3s}``
   around each suggestion, one epoch each, one vmapped program).

Reported: the grid's best rate, each seed's verified rate, whether it lies within 3x of the
grid's best, the seed-to-seed standard deviation of ``log10`` of the verified rate (target
<= 0.25), the grid's validation loss at the verified rate relative to its best (how much a
miss costs), and the cost of the range test and of the verification in epochs of data.
Fashion-MNIST is subsampled (``--fashion-rows`` training rows) to fit the shared machine.
Validation data: a stratified 20% of each training split. JSON to
``benchmarks/results/lr_find.json``.

    python benchmarks/lr_find.py [--quick] [--datasets digits,mnist1d,fashion_mnist]
"""

from __future__ import annotations

import argparse
import math
import os
import time
import warnings

import numpy as np

import optlab as ol
from optlab.tune.lr_find import candidates

try:  # imported as benchmarks.NAME (tests, python -m)
    from benchmarks.common import machine, write_json
except ModuleNotFoundError:  # run as python benchmarks/NAME.py: its folder is sys.path[0]
    from common import machine, write_json

OPTIMIZERS = {
    "sgd": lambda lr: ol.sgd(lr),
    "momentum": lambda lr: ol.sgd(lr, momentum=0.9),
    "adam": lambda lr: ol.adam(lr),
}
# the factories as the range test takes them (the learning rate first)
FACTORIES = {"sgd": ol.sgd, "momentum": OPTIMIZERS["momentum"], "adam": ol.adam}
HIDDEN = {"digits": (64,), "mnist1d": (128, 128), "fashion_mnist": (128,)}


def load(name: str, rows: int):
    ds = ol.data.load(name)
    x, y = np.asarray(ds.x_train), np.asarray(ds.y_train)
    if name == "fashion_mnist" and rows < len(y):
        keep = np.random.default_rng(0).permutation(len(y))[:rows]
        x, y = x[keep], y[keep]
    (x_tr, y_tr), (x_val, y_val) = ol.data.train_val_split(x, y, 0.2, seed=0)
    return x_tr, y_tr, x_val, y_val


def run(name: str, args) -> list[dict]:
    x, y, x_val, y_val = load(name, args.fashion_rows)
    din, classes = x.shape[1], int(y.max()) + 1
    hidden = HIDDEN[name]
    loss = ol.nn.softmax_cross_entropy_with_integer_labels
    steps_per_epoch = len(y) // args.batch
    num_steps = min(100, steps_per_epoch)
    grid = np.logspace(args.grid_low, args.grid_high, args.grid).tolist()
    rows = []
    for opt, make in OPTIMIZERS.items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ol.tune.TuningWarning)
            result = ol.tune.sweep(
                lambda c, rngs, hidden=hidden: ol.nn.MLP(din, hidden, classes, rngs=rngs),
                lambda c, make=make: make(c["learning_rate"]),
                [{"learning_rate": lr} for lr in grid],
                (x, y),
                loss=loss,
                epochs=args.epochs,
                batch_size=args.batch,
                seeds=3,
                validation_data=(x_val, y_val),
            )
        grid_time = time.perf_counter() - start
        scores = np.array(result.scores)
        best = grid[int(np.nanargmin(scores))]
        verified, suggestions, times = [], [], []
        for seed in range(args.seeds):
            model = ol.nn.MLP(din, hidden, classes, rngs=seed + 100)
            start = time.perf_counter()
            found = ol.tune.lr_find(
                model,
                FACTORIES[opt],
                (x, y),
                loss=loss,
                min_lr=args.min_lr,
                max_lr=args.max_lr,
                num_steps=num_steps,
                batch_size=args.batch,
                seed=seed + 100,
                smoothing=args.smoothing,
                verify=True,
                validation_data=(x_val, y_val),
            )
            times.append(time.perf_counter() - start)
            verified.append(found.verified if found.verified is not None else math.nan)
            suggestions.append(found.suggestions)
        logs = np.log10(verified)
        within = [bool(abs(v - math.log10(best)) <= math.log10(3.0) + 1e-9) for v in logs]
        at_verified = [
            float(np.interp(v, np.log10(grid), scores)) / float(np.nanmin(scores)) for v in logs
        ]
        verify_runs = [len(candidates(s)) for s in suggestions]
        row = {
            "dataset": name,
            "optimizer": opt,
            "train_rows": len(y),
            "grid_best_lr": best,
            "grid_scores": scores.tolist(),
            "grid": grid,
            "verified": verified,
            "suggestions": suggestions,
            "within_3x": within,
            "std_log10": float(np.std(logs)),
            "val_loss_ratio_at_verified": at_verified,
            "range_test_epochs": num_steps * args.batch / len(y),
            "verify_candidates": verify_runs,
            "grid_seconds": grid_time,
            "finder_seconds": times,
        }
        rows.append(row)
        print(
            f"{name:>13} {opt:>8}  grid best {best:8.3g}  verified "
            f"{' '.join(f'{v:.2g}' for v in verified):>30}  within 3x {sum(within)}/{len(within)}"
            f"  std log10 {row['std_log10']:.2f}  loss ratio {max(at_verified):.3f}",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="digits,mnist1d,fashion_mnist")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--grid", type=int, default=19)
    parser.add_argument("--grid-low", type=float, default=-4.0)
    parser.add_argument("--grid-high", type=float, default=0.5)
    parser.add_argument("--min-lr", type=float, default=1e-6)
    parser.add_argument("--max-lr", type=float, default=10.0)
    parser.add_argument("--smoothing", type=float, default=0.9)
    parser.add_argument("--fashion-rows", type=int, default=12000)
    parser.add_argument("--quick", action="store_true", help="2 seeds, 5 epochs, 10 grid points")
    parser.add_argument("--output", default=os.path.join("benchmarks", "results", "lr_find.json"))
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs, args.grid = 2, 5, 10
    names = args.datasets.split(",")
    if "fashion_mnist" in names and not os.path.isdir("/usr/share/datasets/fashion-mnist"):
        names.remove("fashion_mnist")
        print("fashion_mnist: IDX files not installed, skipped")
    start = time.perf_counter()
    rows = [row for name in names for row in run(name, args)]
    hits = sum(sum(r["within_3x"]) for r in rows)
    total = sum(len(r["within_3x"]) for r in rows)
    print(
        f"verified within 3x of the grid's best: {hits}/{total}; "
        f"std log10 <= 0.25 in {sum(r['std_log10'] <= 0.25 for r in rows)}/{len(rows)} cases"
    )
    record = {
        "benchmark": "lr_find",
        "settings": vars(args),
        "rows": rows,
        "within_3x": [hits, total],
        "seconds": time.perf_counter() - start,
        **machine(),
    }
    write_json(record, args.output)


if __name__ == "__main__":
    main()
