"""The recommended recipes (optlab.train.recipes.RECOMMENDED) measured: test accuracy over 3 seeds.

Each recipe trains on the dataset's full training split and is scored on its test split, its 3
seeds vmapped in one program (optlab.train.benchmark.train_population: the engine's epoch, the
same batches and steps as ``optlab train``, with the data order drawn from each seed). With
``--sweep`` it also reruns the candidates the recipes were chosen from, each on a stratified
20% validation split of the training rows (the test split is never used to choose). Writes
benchmarks/results/recipes.json. Heavy (minutes): run it once.

    .venv/bin/python benchmarks/recipes.py [--sweep] [--datasets mnist1d,digits]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax

from optlab.train import recipes
from optlab.train.benchmark import train_population

SEEDS = (0, 1, 2)
# Published or asked-for targets: test accuracy, mean over 3 seeds (issue 14).
TARGETS = {"mnist1d": 0.68, "digits": 0.98, "fashion_mnist": 0.895, "mnist1d_logistic": 0.32}
# The candidates of the sweep: overrides of the recommended recipe (first: the one compared to).
CANDIDATES = {
    "mnist1d": {
        "paper: adam 1e-2 constant": {"optimizer": "adam", "lr": 1e-2, "schedule": "constant"},
        "adam 1e-2 cosine": {"optimizer": "adam", "lr": 1e-2},
        "adam 3e-3 cosine": {"optimizer": "adam", "lr": 3e-3},
        "momentum 0.1 constant": {"lr": 0.1, "schedule": "constant"},
        "momentum 0.1 cosine": {"lr": 0.1},
        "momentum 0.2 cosine (chosen)": {},
        "momentum 0.4 cosine": {"lr": 0.4},
        "adamw 1e-2 wd 0.2 constant": {
            "optimizer": "adamw",
            "lr": 1e-2,
            "weight_decay": 0.2,
            "schedule": "constant",
        },
    },
    "digits": {
        "mlp 128 adam 3e-3 constant": {"hidden": (128,), "dropout": 0.0, "schedule": "constant"},
        "mlp 256 adam 3e-3 cosine": {"hidden": (256,), "dropout": 0.0},
        "mlp 512 dropout 0.2 adam 3e-3 cosine": {"hidden": (512,)},
        "mlp 256 adamw 3e-3 wd 0.1 cosine": {
            "hidden": (256,),
            "dropout": 0.0,
            "optimizer": "adamw",
            "lr": 3e-3,
            "weight_decay": 0.1,
        },
        "mlp 256 momentum 0.1 cosine": {
            "hidden": (256,),
            "dropout": 0.0,
            "optimizer": "momentum",
            "lr": 0.1,
        },
        "mlp 256-256 dropout 0.2 adam 3e-3 cosine (chosen)": {},
    },
    "fashion_mnist": {"mlp 512-256 adam 1e-3 cosine (chosen)": {}},
}


# How each recipe was chosen (the README's "Recommended recipes" gives the sweep's numbers).
CHOSEN_BY = {
    "mnist1d": "the paper's MLP, batch and 6000 steps kept; optimizer, learning rate and "
    "schedule chosen by the best mean validation accuracy (3 seeds, a stratified 20% of the "
    "training rows) among CANDIDATES['mnist1d']: SGD momentum 0.9, lr 0.2, cosine (65.5% vs "
    "the paper's constant Adam 1e-2 at 62.7%)",
    "digits": "best mean validation accuracy (3 seeds, stratified 20% of the training rows) "
    "among CANDIDATES['digits']: MLP 256-256 with dropout 0.2 and Adam 3e-3 cosine (97.8%)",
    "fashion_mnist": "not swept (one candidate, a common MLP setting): kept because it clears "
    "the 89.5% target",
}


def measure(config: recipes.Recipe, *, split: float = 0.0) -> dict:
    """Trains ``config`` with each seed of SEEDS; accuracy on the test split (or validation)."""
    config = config.replace(validation_split=split)
    data = recipes.load_data(config)
    opt = recipes.build_optimizer(config, data)
    pop = train_population(
        lambda s: recipes.build_model(config.replace(seed=s), data),
        lambda: opt.tx,
        {},
        SEEDS,
        data.train,
        data.validation,
        loss=data.task.loss,
        epochs=config.epochs,
        batch_size=opt.batch_size,
    )
    final = pop.val_accuracy[:, -1]
    return {
        "accuracy_mean": float(final.mean()),
        "accuracy_std": float(final.std()),
        "accuracy_per_seed": [float(a) for a in final],
        "evaluated_on": data.validation_name,
        "train_rows": len(data.train[0]),
        "steps": pop.steps_per_epoch * config.epochs,
        "seconds": pop.compile_seconds + pop.seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="rerun the candidates too")
    parser.add_argument("--datasets", default="mnist1d,digits,fashion_mnist")
    parser.add_argument("--output", default="benchmarks/results/recipes.json")
    args = parser.parse_args()
    out = {
        "format": "optlab.bench.recipes/1",
        "versions": {"jax": jax.__version__, "python": platform.python_version()},
        "device": str(jax.devices()[0]),
        "cpu_count": os.cpu_count(),
        "note": "measured on a shared 2-core machine under load (times are indicative only)",
        "seeds": list(SEEDS),
        "targets": TARGETS,
        "recipes": {},
    }
    path = Path(args.output)
    if path.is_file():  # keep what an earlier run measured for the datasets not run now
        out["recipes"] = json.loads(path.read_text()).get("recipes", {})
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        try:
            base = recipes.recommended(name)
            recipes.load_data(base)
        except (OSError, ValueError) as err:
            print(f"{name}: skipped ({' '.join(str(err).split())})")
            continue
        entry = {
            "recipe": {k: v for k, v in base.to_dict().items() if k != "format"},
            "chosen_by": CHOSEN_BY.get(name),
        }
        start = time.perf_counter()
        entry["test"] = measure(base)
        print(
            f"{name}: {entry['test']['accuracy_mean']:.4f} +- {entry['test']['accuracy_std']:.4f}"
            f" (target {TARGETS[name]}; {time.perf_counter() - start:.0f} s)",
            flush=True,
        )
        if name == "mnist1d":  # the paper's logistic regression: a linear model, its training
            logistic = recipes.recommended(
                name, hidden=(), optimizer="adam", lr=1e-2, schedule="constant"
            )
            entry["logistic_regression"] = {
                "recipe": {k: v for k, v in logistic.to_dict().items() if k != "format"},
                "test": measure(logistic),
            }
            r = entry["logistic_regression"]["test"]
            print(f"{name} logistic: {r['accuracy_mean']:.4f} +- {r['accuracy_std']:.4f}")
        if args.sweep:
            entry["sweep"] = {}
            for label, changes in CANDIDATES.get(name, {}).items():
                res = measure(recipes.recommended(name, **changes), split=0.2)
                entry["sweep"][label] = {"changes": changes, "validation": res}
                print(f"  {label}: validation {res['accuracy_mean']:.4f}", flush=True)
        out["recipes"][name] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=list) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
