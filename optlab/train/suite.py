r"""The optimizer benchmark suite (``optlab bench``, ``benchmarks/suite.py``): AlgoPerf's
time to a target with quasi-random tuning studies, DeepOBS's learning-rate sensitivity and
final accuracy over seeds, performance profiles and the integrated score.

For every workload :math:`w` (a dataset, an MLP, an epoch budget) and optimizer :math:`o`:

- **defaults**: the registry's hyperparameters (:mod:`optlab.optimizers.registry`), one shot;
- **tuned**: :math:`S` studies of :math:`T` trials drawn from the optimizer's declared search
  space (:data:`SPACES`) by a scrambled Halton sequence (one per study, as AlgoPerf); a study's
  time is the fastest of its trials to reach the target, a miss is :math:`\infty`; the suite
  reports the median and interquartile range over studies;
- **final accuracy** of the chosen trial (the fastest, else the best final validation accuracy)
  and of the defaults, over :math:`F` seeds, on the test split;
- **learning-rate sensitivity**: the final validation accuracy at learning rates spread around
  the default, the other hyperparameters at their defaults.

A workload compiles one program per group of ``Budget.group`` mini-batch optimizers: every
optimizer's defaults, sensitivity points and trials (:math:`1 + K + ST` members each) run as
one vmapped program (:func:`optlab.train.benchmark.train_population`), each member's
optimizer chosen by a traced index (:func:`optlab.train.benchmark.select_transform`); the
final seeds (:math:`2F` members per optimizer, padded to the same count) reuse that compiled
program. Targets are validation accuracies from ``benchmarks/targets.json`` (AlgoPerf: the
median over seeds of the best accuracy a large-budget tuning of the baselines reached within
3/4 of the workload's epoch budget; :func:`derive_targets`). Full-batch L-BFGS has nothing
to tune: it runs ``Budget.full_batch_seeds`` seeds. Every seed derives from one ``seed``.

The suite trains with :func:`~optlab.train.benchmark.train_population` rather than
:func:`optlab.tune.sweep`: measured side by side they cost the same once compiled, but the
suite needs what a sweep's result does not hold (each trial with its own seed, the test
accuracy of the final parameters, the per-step cost apart from compilation).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from optlab.optimizers.registry import optimizer_spec
from optlab.train.benchmark import (
    integrated_score,
    performance_profile,
    select_transform,
    steps_to_target,
    summarize,
    train_population,
)

FORMAT = "optlab.bench/1"
R_MAX = 4.0
OPTIMIZERS = (
    "sgd",
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "adadelta",
    "adam",
    "adamw",
    "nadam",
    "lbfgs",
)
# --quick leaves L-BFGS out: its line search alone cost about 40% of a quick run (compiling
# it takes about 10 CPU-s per workload); --optimizers ...,lbfgs adds it back.
QUICK_OPTIMIZERS = ("sgd", "momentum", "adam")

# One declared search space per optimizer: name -> (low, high), sampled log-uniformly.
# ``one_minus_momentum`` / ``one_minus_b1`` search 1 - beta (AlgoPerf's parametrisation).
SPACES: dict[str, dict[str, tuple[float, float]]] = {
    "sgd": {"learning_rate": (1e-3, 1.0)},
    "momentum": {"learning_rate": (1e-3, 1.0), "one_minus_momentum": (0.01, 0.5)},
    "nesterov": {"learning_rate": (1e-3, 1.0), "one_minus_momentum": (0.01, 0.5)},
    "adagrad": {"learning_rate": (1e-3, 1.0)},
    "rmsprop": {"learning_rate": (1e-5, 1e-1)},
    "adadelta": {"learning_rate": (1e-2, 10.0)},
    "adam": {"learning_rate": (1e-4, 1e-1), "one_minus_b1": (0.01, 0.5)},
    "adamw": {"learning_rate": (1e-4, 1e-1), "weight_decay": (1e-4, 1.0)},
    "nadam": {"learning_rate": (1e-4, 1e-1), "one_minus_b1": (0.01, 0.5)},
}


@dataclasses.dataclass(frozen=True)
class Workload:
    """A dataset, an MLP and a budget.

    Attributes:
      name: the workload's name (a key of ``targets.json``).
      dataset: an :func:`optlab.data.load` name.
      hidden: hidden widths of the MLP.
      epochs: the epoch budget of the mini-batch optimizers.
      batch_size: rows per step.
      residual: residual flags of :class:`optlab.nn.MLP`.
      init: weight initializer.
      max_train: keep at most this many training rows (``None``: all).
      max_val: keep at most this many validation rows.
      lbfgs_epochs: full-batch L-BFGS iterations (``None``: L-BFGS does not fit).
    """

    name: str
    dataset: str
    hidden: tuple[int, ...]
    epochs: int
    batch_size: int
    residual: bool | tuple[bool, ...] = False
    init: str = "he_normal"
    max_train: int | None = None
    max_val: int | None = None
    lbfgs_epochs: int | None = None


WORKLOADS = {
    "digits": Workload("digits", "digits", (64,), 20, 64, lbfgs_epochs=100),
    "mnist1d": Workload(
        "mnist1d",
        "mnist1d",
        (100, 100),
        40,
        100,
        (False, True),
        "torch_default",
        lbfgs_epochs=100,
    ),
    "fashion_mnist": Workload(
        "fashion_mnist", "fashion_mnist", (64,), 8, 128, max_train=5000, max_val=2000
    ),
    "two_spirals": Workload("two_spirals", "two_spirals", (64, 64), 60, 32, lbfgs_epochs=200),
}


@dataclasses.dataclass(frozen=True)
class Budget:
    """How many studies, trials, sensitivity points and seeds (``F = (1 + K + ST) / 2``;
    full-batch L-BFGS, which has no search space, runs ``full_batch_seeds``), and how many
    mini-batch optimizers share one compiled program (``group``)."""

    studies: int = 3
    trials: int = 5
    lr_points: int = 4
    epoch_scale: float = 1.0
    full_batch_seeds: int = 5
    # Optimizers per compiled program: every member carries every state of its group and
    # computes every update rule, so a larger group compiles less but steps more (measured
    # under load: 9 per program cost more than 3 on MNIST-1D's MLP).
    group: int = 3

    @property
    def members(self) -> int:
        return 1 + self.lr_points + self.studies * self.trials

    @property
    def seeds(self) -> int:
        return self.members // 2


FULL = Budget()  # 20 members: 10 final seeds (L-BFGS: 5)
# --quick: fewer studies, trials and seeds (and, in run_suite, workloads and optimizers) at
# the full epoch budget, so its targets (set at 3/4 of it) stay reachable.
QUICK = Budget(studies=2, trials=3, lr_points=3)  # 10 members: 5 seeds


# ---------------------------------------------------------------------------------------------
# Data and search spaces


def load_workload(w: Workload, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``train``/``val`` (a stratified 20% of the training rows) and ``test`` arrays."""
    from optlab.data.datasets import load
    from optlab.data.splits import train_val_split

    ds = load(w.dataset)
    x = np.asarray(ds.x_train, np.float32).reshape(len(ds.x_train), -1)
    (xt, yt), (xv, yv) = train_val_split(x, np.asarray(ds.y_train), 0.2, seed=seed, stratify=True)
    xs = np.asarray(ds.x_test, np.float32).reshape(len(ds.x_test), -1)
    return {
        "train": (xt[: w.max_train], yt[: w.max_train]),
        "val": (xv[: w.max_val], yv[: w.max_val]),
        "test": (xs, np.asarray(ds.y_test)),
    }


def halton(space: dict[str, tuple[float, float]], n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` points of a scrambled Halton sequence, log-uniform in each ``(low, high)``."""
    from scipy.stats import qmc

    u = qmc.Halton(d=len(space), scramble=True, seed=seed).random(n)
    out = {}
    for j, (name, (lo, hi)) in enumerate(space.items()):
        out[name] = np.exp(np.log(lo) + u[:, j] * (np.log(hi) - np.log(lo)))
    return out


def default_point(name: str) -> dict[str, float]:
    """The registry defaults in the coordinates of ``SPACES[name]``."""
    spec = optimizer_spec(name)
    d = spec.defaults
    values = {
        "learning_rate": d["learning_rate"],
        "one_minus_momentum": 1.0 - d.get("momentum", 0.9),
        "one_minus_b1": 0.1,
        "weight_decay": d.get("weight_decay", 0.0),
    }
    return {k: float(values[k]) for k in SPACES[name]}


@functools.cache
def tx_fn(name: str) -> Callable[..., Any]:
    """The factory ``make(**point) -> transformation`` of the optimizer ``name``.

    Cached: one factory per name, so compiled programs are reused."""
    spec = optimizer_spec(name)

    def make(**point: Any) -> Any:
        kwargs = dict(spec.defaults)
        if not spec.full_batch:
            kwargs["learning_rate"] = point["learning_rate"]
        if "one_minus_momentum" in point:
            kwargs["momentum"] = 1.0 - point["one_minus_momentum"]
        if "one_minus_b1" in point:
            kwargs["b1"] = 1.0 - point["one_minus_b1"]
        if "weight_decay" in point:
            kwargs["weight_decay"] = point["weight_decay"]
        return spec.factory(**kwargs)

    return make


@functools.cache
def switch_fn(names: tuple[str, ...]) -> Callable[..., Any]:
    """``make(index, **point)``: the optimizer ``names[index]`` at ``point`` (the union of
    their search spaces' coordinates; each takes its own), as one transformation
    (:func:`~optlab.train.benchmark.select_transform`). Cached: one factory per tuple, so a
    workload's programs are compiled once for all its optimizers."""
    makes = [tx_fn(n) for n in names]

    def make(index: Any, **point: Any) -> Any:
        txs = [m(**{k: point[k] for k in SPACES[n]}) for m, n in zip(makes, names, strict=True)]
        return select_transform(index, txs)

    return make


# A coordinate an optimizer does not search: its members carry this (their branch ignores it).
_FILL = {"learning_rate": 1e-3, "one_minus_momentum": 0.1, "one_minus_b1": 0.1, "weight_decay": 0.0}


def _model_fn(w: Workload, n_in: int, n_out: int) -> Callable[[int], Any]:
    from optlab.nn.mlp import MLP

    bias = "torch_default" if w.init == "torch_default" else "zeros"
    return lambda s: MLP(
        n_in, w.hidden, n_out, residual=w.residual, kernel_init=w.init, bias_init=bias, rngs=s
    )


def _members(name: str, budget: Budget, seed: int) -> tuple[dict[str, list[float]], np.ndarray]:
    """An optimizer's ``1 + K + ST`` members: its defaults, the ``K`` learning rates of the
    sensitivity curve (other coordinates at their defaults), then each study's trials."""
    default = default_point(name)
    points = {k: [v] for k, v in default.items()}
    lrs = default["learning_rate"] * 10.0 ** np.linspace(-1.5, 1.5, budget.lr_points)
    for lr in lrs:
        for k, v in default.items():
            points[k].append(lr if k == "learning_rate" else v)
    for s in range(budget.studies):
        study = halton(SPACES[name], budget.trials, seed * 100 + s)
        for k in SPACES[name]:
            points[k].extend(study[k])
    return points, lrs


def _stacked(names: Sequence[str], rows: Sequence[dict[str, list[float]]]) -> dict[str, list]:
    """Every optimizer's members one after the other, with ``index`` and every coordinate."""
    keys = sorted({k for n in names for k in SPACES[n]})
    out: dict[str, list] = {"index": []}
    for i, r in enumerate(rows):
        size = len(next(iter(r.values())))
        out["index"] += [i] * size
        for k in keys:
            out.setdefault(k, []).extend(r.get(k, [_FILL[k]] * size))
    return out


# ---------------------------------------------------------------------------------------------
# One workload: every optimizer


def run_workload(
    w: Workload,
    names: Sequence[str],
    data: dict,
    target: float,
    budget: Budget,
    seed: int,
) -> dict[str, Any]:
    """Defaults, sensitivity, tuning studies and final seeds of each optimizer of ``names`` on
    one workload: the mini-batch optimizers' members (``1 + K + ST`` each) in one vmapped
    program per group of ``budget.group`` optimizers, whose final seeds (``2F`` per
    optimizer, padded to the same count) reuse it; each full-batch optimizer in its own.
    Returns name -> result."""
    from optlab.nn.losses import softmax_cross_entropy_with_integer_labels as loss

    n_out = int(max(data["train"][1].max(), data["test"][1].max())) + 1
    model_fn = _model_fn(w, data["train"][0].shape[1], n_out)
    common = dict(loss=loss, test=data["test"], cache={})
    base = 1000 * seed
    out: dict[str, Any] = {}
    for name in [n for n in names if optimizer_spec(n).full_batch]:  # no search space
        F = min(budget.seeds, budget.full_batch_seeds)
        epochs = max(1, round(w.lbfgs_epochs * budget.epoch_scale))
        pop = train_population(
            model_fn,
            tx_fn(name),
            {},
            [base + i for i in range(F)],
            data["train"],
            data["val"],
            epochs=epochs,
            batch_size=None,
            **common,
        )
        steps = steps_to_target(pop.val_accuracy, target, pop.steps_per_epoch)
        per_step = pop.seconds / (F * epochs)
        part = _part(steps, per_step, pop.test_accuracy, {}, pop.val_accuracy[:, -1])
        out[name] = {
            "full_batch": True,
            "epochs": epochs,
            "defaults": part,
            "tuned": part,
            "sensitivity": None,
            "seconds": pop.compile_seconds + pop.seconds,
        }
    batch = tuple(n for n in names if not optimizer_spec(n).full_batch)
    for i in range(0, len(batch), budget.group):  # one program per group of optimizers
        group = batch[i : i + budget.group]
        out.update(_run_minibatch(w, group, data, target, budget, seed, model_fn, common))
    return {n: out[n] for n in names}


def _run_minibatch(w, batch, data, target, budget, seed, model_fn, common) -> dict[str, Any]:
    base = 1000 * seed
    M, F, K = budget.members, budget.seeds, budget.lr_points
    epochs = max(1, round(w.epochs * budget.epoch_scale))
    first = 1 + K
    rows = [_members(n, budget, seed) for n in batch]
    run = functools.partial(
        train_population,
        model_fn,
        switch_fn(batch),
        train=data["train"],
        validation=data["val"],
        epochs=epochs,
        batch_size=w.batch_size,
        **common,
    )
    # Every optimizer's member j has seed base + j (common random numbers across optimizers).
    pop = run(_stacked(batch, [r[0] for r in rows]), [base + j for j in range(M)] * len(batch))
    spe = pop.steps_per_epoch
    per_step = pop.seconds / (len(batch) * M * epochs * spe)
    picked, final = [], []
    for i, name in enumerate(batch):
        points, space, default = rows[i][0], SPACES[name], default_point(name)
        trial_val = pop.val_accuracy[i * M + first : (i + 1) * M]
        trial_steps = steps_to_target(trial_val, target, spe)
        order = np.lexsort((-trial_val[:, -1], trial_steps))  # fastest, then best final accuracy
        chosen = {k: float(points[k][first + int(order[0])]) for k in space}
        picked.append((trial_steps, chosen))
        # The final seeds: F of the chosen trial, F of the defaults, padded to M members.
        final.append({k: [chosen[k]] * F + [default[k]] * (M - F) for k in space})
    fin = run(_stacked(batch, final), [base + 500 + j for j in range(M)] * len(batch))
    fin_steps = steps_to_target(fin.val_accuracy, target, spe)
    share = (pop.compile_seconds + pop.seconds + fin.compile_seconds + fin.seconds) / len(batch)
    out = {}
    for i, name in enumerate(batch):
        trial_steps, chosen = picked[i]
        study_steps = trial_steps.reshape(budget.studies, budget.trials).min(axis=1)
        t, d = slice(i * M, i * M + F), slice(i * M + F, i * M + 2 * F)
        tuned = _part(study_steps, per_step, fin.test_accuracy[t], chosen, fin.val_accuracy[t, -1])
        tuned["trial_steps"] = [_num(s) for s in trial_steps]
        defaults = _part(
            fin_steps[d],
            per_step,
            fin.test_accuracy[d],
            default_point(name),
            fin.val_accuracy[d, -1],
        )
        out[name] = {
            "full_batch": False,
            "epochs": epochs,
            "steps_per_epoch": spe,
            "defaults": defaults,
            "tuned": tuned,
            "sensitivity": {
                "learning_rate": [float(v) for v in rows[i][1]],
                "val_accuracy": [float(v) for v in pop.val_accuracy[i * M + 1 : i * M + first, -1]],
                "default_learning_rate": default_point(name)["learning_rate"],
            },
            "seconds": share,
        }
    return out


def _num(v: float) -> float | str:
    return float(v) if np.isfinite(v) else "inf"


def _part(steps, per_step, test_acc, point, val_acc) -> dict[str, Any]:
    st = summarize(steps)
    return {
        "hyperparameters": point,
        "steps_to_target": {k: _num(v) for k, v in st.items()},
        "seconds_to_target": {k: _num(v * per_step) for k, v in st.items()},
        "hits": int(np.isfinite(steps).sum()),
        "repeats": len(steps),
        "test_accuracy_mean": float(np.mean(test_acc)),
        "test_accuracy_std": float(np.std(test_acc)),
        "val_accuracy_final_mean": float(np.mean(val_acc)),
        "seconds_per_step": per_step,
    }


# ---------------------------------------------------------------------------------------------
# The suite


def run_suite(
    *,
    quick: bool = False,
    seed: int = 0,
    workloads: Sequence[str] | None = None,
    optimizers: Sequence[str] | None = None,
    targets: dict[str, Any],
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Runs every (workload, optimizer) pair; returns the JSON-able results with profiles and
    scores (:func:`summarize_results`)."""
    from optlab.data.datasets import load

    budget = QUICK if quick else FULL
    names = list(workloads or (("digits", "two_spirals") if quick else WORKLOADS))
    opts = list(optimizers or (QUICK_OPTIMIZERS if quick else OPTIMIZERS))
    results: dict[str, Any] = {
        "format": FORMAT,
        "quick": quick,
        "seed": seed,
        "budget": dataclasses.asdict(budget),
        "spaces": {k: {p: list(r) for p, r in v.items()} for k, v in SPACES.items() if k in opts},
        "workloads": {},
        "skipped": {},
    }
    start, cpu, load0 = time.perf_counter(), time.process_time(), os.getloadavg()[0]
    for wname in names:
        w = WORKLOADS[wname]
        try:
            if w.dataset == "fashion_mnist":
                load(w.dataset)
        except (OSError, ValueError) as err:  # the files are not installed: how to get them
            why = " ".join(str(err).split())
            results["skipped"][wname] = why
            log(f"{wname}: skipped ({why})")
            continue
        data = load_workload(w, seed)
        target = float(targets[wname]["target"])
        entry = {"workload": dataclasses.asdict(w), "target": target, "optimizers": {}}
        fits = [n for n in opts if w.lbfgs_epochs is not None or not optimizer_spec(n).full_batch]
        ran = run_workload(w, fits, data, target, budget, seed)
        for name in opts:
            r = entry["optimizers"][name] = ran.get(name)
            if r is None:
                continue
            t = r["tuned"]
            log(
                f"{wname:<13} {name:<9} tuned steps {t['steps_to_target']['median']}, test "
                f"{t['test_accuracy_mean']:.4f}; defaults steps "
                f"{r['defaults']['steps_to_target']['median']} ({r['seconds']:.1f} s)"
            )
        results["workloads"][wname] = entry
    results["seconds"] = time.perf_counter() - start
    results["cpu_seconds"] = time.process_time() - cpu  # this process's CPU time, all threads
    # The conditions: the machine's 1-minute load average when the run started and ended.
    results["load_average"] = {"start": load0, "end": os.getloadavg()[0], "cpus": os.cpu_count()}
    results["summary"] = summarize_results(results)
    return results


def summarize_results(results: dict[str, Any]) -> dict[str, Any]:
    """Performance profiles and integrated scores (r_max = 4) of the tuned and the default
    runs, from the median steps to target (``tuned``, ``defaults``) and from the median
    seconds to target (``tuned_seconds``, ``defaults_seconds``: AlgoPerf's measure, fair to
    full-batch steps); a missing pair counts as a miss."""
    wnames = list(results["workloads"])
    opts: list[str] = []
    for w in wnames:
        opts += [o for o in results["workloads"][w]["optimizers"] if o not in opts]
    taus = np.exp(np.linspace(0.0, np.log(R_MAX), 61))
    out: dict[str, Any] = {"optimizers": opts, "workloads": wnames, "taus": taus.tolist()}
    if not wnames or not opts:
        return out
    kinds = [(k, k, "steps_to_target") for k in ("tuned", "defaults")]
    kinds += [(f"{k}_seconds", k, "seconds_to_target") for k in ("tuned", "defaults")]
    for key, kind, measure in kinds:
        table = np.full((len(opts), len(wnames)), np.inf)
        for j, w in enumerate(wnames):
            for i, o in enumerate(opts):
                r = results["workloads"][w]["optimizers"].get(o)
                if r is not None:
                    table[i, j] = float(r[kind][measure]["median"])
        out[key] = {
            "steps": [[_num(v) for v in row] for row in table],
            "profile": performance_profile(table, taus).tolist(),
            "score": dict(zip(opts, integrated_score(table, R_MAX).tolist(), strict=True)),
        }
    return out


def load_targets(path: str | Path) -> dict[str, Any]:
    """``targets.json``: per workload, ``target`` and how it was derived."""
    return json.loads(Path(path).read_text())["workloads"]


TARGET_FRACTION = 0.75
"""Targets are set at this fraction of a workload's epoch budget (see :func:`derive_targets`)."""


def derive_targets(
    workload: str,
    *,
    seed: int = 0,
    baselines: Sequence[str] = ("adam", "nesterov"),
    trials: int = 16,
    fraction: float = TARGET_FRACTION,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """A workload's target, the AlgoPerf way: the validation accuracy the best of the
    baselines reaches under a large tuning budget.

    Each baseline runs ``trials`` scrambled-Halton trials of its search space for
    ``round(fraction * epochs)`` epochs; its best trial (by the best validation accuracy
    reached) is rerun with ``trials`` fresh seeds, and its score is the median over those
    seeds of the best validation accuracy reached. The target is the highest score. As
    AlgoPerf gives a workload more steps than its target-setting runs took, the suite runs the
    full epoch budget (``1 / fraction`` times as long): a well-tuned method reaches the target
    in most seeds, a 5-trial study of a weaker one may not.

    Returns:
      The record of ``targets.json`` for the workload: ``target``, ``rule`` (the sentence
      above, with the numbers), ``budget`` (epochs, batch size, trials, seeds, baselines) and,
      per baseline, the chosen hyperparameters, the per-seed peaks and their median.
    """
    from optlab.nn.losses import softmax_cross_entropy_with_integer_labels as loss

    w = WORKLOADS[workload]
    epochs = max(1, round(fraction * w.epochs))
    data = load_workload(w, seed)
    n_out = int(max(data["train"][1].max(), data["test"][1].max())) + 1
    model_fn = _model_fn(w, data["train"][0].shape[1], n_out)
    cache: dict = {}
    record: dict[str, Any] = {
        "budget": {
            "epochs": epochs,
            "workload_epochs": w.epochs,
            "batch_size": w.batch_size,
            "trials": trials,
            "seeds": trials,
            "baselines": list(baselines),
            "search_seed": seed,
        },
        "baselines": {},
    }
    for name in baselines:
        points = halton(SPACES[name], trials, seed * 100 + 99)
        kw = dict(epochs=epochs, batch_size=w.batch_size, loss=loss, cache=cache)
        seeds = [1000 * seed + 700 + i for i in range(trials)]
        pop = train_population(
            model_fn, tx_fn(name), points, seeds, data["train"], data["val"], **kw
        )
        best = int(np.argmax(pop.val_accuracy.max(axis=1)))
        chosen = {k: float(v[best]) for k, v in points.items()}
        again = {k: np.full(trials, v) for k, v in chosen.items()}
        seeds = [1000 * seed + 800 + i for i in range(trials)]
        rep = train_population(
            model_fn, tx_fn(name), again, seeds, data["train"], data["val"], **kw
        )
        peaks = rep.val_accuracy.max(axis=1)
        record["baselines"][name] = {
            "chosen": chosen,
            "median_best_val_accuracy": float(np.median(peaks)),
            "best_val_accuracy_per_seed": [round(float(p), 6) for p in peaks],
        }
        log(f"{workload}: {name} {chosen} -> median best val accuracy {np.median(peaks):.4f}")
    top = max(record["baselines"], key=lambda n: record["baselines"][n]["median_best_val_accuracy"])
    record["target"] = record["baselines"][top]["median_best_val_accuracy"]
    record["rule"] = (
        f"the highest, over the baselines {', '.join(baselines)}, of the median over {trials} "
        f"seeds of the best validation accuracy within {epochs} epochs ({fraction:g} of the "
        f"workload's {w.epochs}) of the best of {trials} scrambled-Halton trials (search seed "
        f"{seed}); set by {top}"
    )
    return record
