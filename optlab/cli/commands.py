"""``optlab train`` and ``optlab compare``: each checks its arguments in plain Python, then
imports jax and calls :mod:`optlab.train.recipes`, the engine and :mod:`optlab.train.report`
(``evaluate`` and ``predict`` are in :mod:`optlab.cli.inference`).

Every failure a user can cause (a bad value, a damaged file, a run that does not match) is a
``UsageError``: one line on standard error and exit status 2.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
import warnings
from pathlib import Path
from typing import Any

from optlab.cli.options import (
    ACTIVATIONS,
    INITIALIZERS,
    NORMS,
    UsageError,
    check_dataset_options,
    choose,
    keywords,
    one_line,
)
from optlab.cli.rundir import prepare_output, read_json, read_run_config
from optlab.optimizers.recommended import recommended_fields
from optlab.optimizers.registry import optimizer_spec
from optlab.schedules.registry import schedule_spec

# Recipe's defaults (optlab.train.recipes, which imports jax); tests/cli checks they agree.
DEFAULTS: dict[str, Any] = {
    "dataset": "digits",
    "target": None,
    "data_dir": None,
    "hidden": (64,),
    "residual": False,
    "activation": "relu",
    "init": "he_normal",
    "norm": None,
    "dropout": 0.0,
    "optimizer": "adam",
    "lr": None,
    "momentum": None,
    "opt": {},
    "schedule": "constant",
    "schedule_opt": {},
    "warmup_epochs": 0,
    "clip_norm": None,
    "weight_decay": None,
    "epochs": 20,
    "schedule_epochs": None,
    "batch_size": None,
    "validation_split": 0.0,
    "seed": 0,
    "early_stopping": None,
    "checkpoint_every": 1,
}
# Options that do not change what a resumed run computes.
RESUMABLE = ("epochs", "checkpoint_every")
MAX_PARAMETERS = 200_000_000
MAX_STEPS = 2**31 - 1


def run(args: argparse.Namespace) -> int:
    """Runs ``args.command``; returns the exit status."""
    if args.command in ("evaluate", "predict"):
        from optlab.cli import inference

        return getattr(inference, args.command)(args)
    if args.command == "diagnose":
        from optlab.cli.diagnose import diagnose

        return diagnose(args)
    if args.command == "bench":
        from optlab.cli.bench import bench

        return bench(args)
    return {"train": train, "compare": compare}[args.command](args)


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def value_error(err: BaseException, prefix: str = "") -> UsageError:
    return UsageError(prefix + one_line(err))


# ---------------------------------------------------------------------------------------------
# Arguments -> configuration fields (plain Python)


def given_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The configuration fields given on the command line, normalised (names checked)."""
    fields: dict[str, Any] = {}
    for name in DEFAULTS:
        value = getattr(args, name, None)
        if value is not None:
            fields[name] = value
    if "opt" in fields:
        fields["opt"] = keywords(fields["opt"], "--opt")
    if "schedule_opt" in fields:
        fields["schedule_opt"] = keywords(fields["schedule_opt"], "--schedule-opt")
    if args.dataset is not None:
        fields["dataset"] = check_dataset_options(args)
    elif getattr(args, "target", None) is not None or getattr(args, "data_dir", None) is not None:
        args.dataset = DEFAULTS["dataset"]
        check_dataset_options(args)
    for name, kind, choices in (
        ("activation", "activation", ACTIVATIONS),
        ("init", "initializer", INITIALIZERS),
        ("norm", "norm", NORMS),
    ):
        if name in fields:
            fields[name] = choose(kind, fields[name], choices)
    if fields.get("norm") == "none":
        fields["norm"] = None
    try:
        if "optimizer" in fields:
            fields["optimizer"] = optimizer_spec(fields["optimizer"]).name
        if "schedule" in fields:
            fields["schedule"] = schedule_spec(fields["schedule"]).name
    except ValueError as err:
        raise value_error(err) from None
    return fields


def check_run(fields: dict[str, Any], *, recommended: bool = False) -> dict[str, Any]:
    """All the fields of a run (defaults filled in: with ``recommended``, first the recipe of
    the dataset given, :data:`optlab.optimizers.recommended.RECOMMENDED`); refuses the options
    its optimizer or schedule does not use, before jax is imported."""
    # Only a dataset named with --dataset brings its recipe: plain `optlab train` stays the
    # quick 20-epoch digits MLP of DEFAULTS.
    base = (
        recommended_fields(fields["dataset"], fields) if recommended and "dataset" in fields else {}
    )
    full = {**DEFAULTS, **base, **fields}
    try:
        optimizer_spec(full["optimizer"]).check_run(
            epochs=full["schedule_epochs"] or full["epochs"],
            lr=full["lr"],
            momentum=full["momentum"],
            opt=full["opt"],
            schedule=full["schedule"],
            schedule_opt=full["schedule_opt"],
            warmup_epochs=full["warmup_epochs"],
            weight_decay=full["weight_decay"],
            batch_size=full["batch_size"],
        )
    except ValueError as err:
        raise value_error(err) from None
    return full


# ---------------------------------------------------------------------------------------------
# The library side (imports jax)


def enable_compilation_cache(enabled: bool) -> None:
    """JAX's persistent compilation cache under ``$OPTLAB_CACHE_DIR/jax`` (or
    ``~/.cache/optlab/jax``), unless ``$JAX_COMPILATION_CACHE_DIR`` chooses another place."""
    if not enabled:
        return
    import jax

    from optlab.data.datasets import cache_dir

    if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        jax.config.update("jax_compilation_cache_dir", os.path.join(cache_dir(), "jax"))
    # Cache every program: an epoch compiles in well under the default 1 s threshold.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _build(config: Any) -> tuple[Any, Any, Any]:
    """``(data, model, optimizer)`` of a configuration; every refusal a UsageError."""
    from optlab.train import recipes

    try:
        data = recipes.load_data(config)
    except (ValueError, TypeError, OSError) as err:
        raise value_error(err) from None
    watchers = recipes.needs_validation(config)
    if watchers and data.validation is None:
        raise UsageError(
            f"{' and '.join(watchers)} watch val_loss, but {config.dataset!r} has no test "
            "split: give --validation-split"
        )
    widths = [data.train[0].shape[1], *config.hidden, data.task.num_outputs]
    count = sum((a + 1) * b for a, b in itertools.pairwise(widths))
    if count > MAX_PARAMETERS:
        raise UsageError(
            f"--hidden {','.join(map(str, config.hidden))} makes a model of {count:,} "
            f"parameters, more than this command trains ({MAX_PARAMETERS:,})"
        )
    try:
        model = recipes.build_model(config, data)
        opt = recipes.build_optimizer(config, data)
    except (ValueError, TypeError) as err:
        raise value_error(err) from None
    if config.epochs * opt.steps_per_epoch > MAX_STEPS:
        raise UsageError(
            f"--epochs {config.epochs} makes {config.epochs * opt.steps_per_epoch:,} steps "
            f"({opt.steps_per_epoch} per epoch), more than the step counter holds ({MAX_STEPS:,})"
        )
    return data, model, opt


def _config(fields: dict[str, Any]) -> Any:
    from optlab.train.recipes import Recipe

    try:
        return Recipe(**fields)
    except (ValueError, TypeError) as err:
        raise value_error(err) from None


# ---------------------------------------------------------------------------------------------
# train


def train(args: argparse.Namespace) -> int:
    """``optlab train``: a new run, or ``--resume``."""
    if args.resume is not None:
        return _resume(args)
    fields = check_run(given_fields(args), recommended=True)
    out = prepare_output(args.output or "runs/train", overwrite=args.overwrite)
    enable_compilation_cache(args.compilation_cache)
    config = _config(fields)
    return _fit_and_save(
        config, out, resumed=False, progress=not args.no_progress, diagnostics=args.diagnostics
    )


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _resume(args: argparse.Namespace) -> int:
    path = args.resume
    if args.overwrite:
        raise UsageError(
            "--overwrite and --resume exclude each other: --resume continues the run in DIR, "
            "--overwrite would delete it"
        )
    if args.output is not None and Path(args.output).resolve() != Path(path).resolve():
        raise UsageError(f"--output: a resumed run writes into its own directory ({path})")
    saved = read_run_config(path, "--resume")
    given = given_fields(args)
    changed = []
    for name, value in given.items():
        if name in RESUMABLE:
            continue
        old = saved.get(name, DEFAULTS[name])
        new = list(value) if isinstance(value, tuple) else value
        if new != old:
            changed.append((name, value, old))
    if changed:
        raise UsageError(
            f"--resume {path}: "
            + ", ".join(f"{_flag(n)} {_shown(v)}" for n, v, _ in changed)
            + " would change the run (it has "
            + ", ".join(f"{n}={_shown(o)}" for n, _, o in changed)
            + "); resume without them, or start a new run with another --output"
        )
    run_dir = Path(path)
    record = _read_record(run_dir)
    target = given.get("epochs", saved.get("epochs", DEFAULTS["epochs"]))
    done = int(record.get("completed_epochs") or 0)
    stopped = record.get("stopped_early_at")
    if done > target:
        raise UsageError(
            f"--epochs {target}: the run in {path} has already completed {done} epochs"
        )
    if stopped or (done and done >= target):
        why = (
            f"early stopping ended it at epoch {stopped}"
            if stopped
            else f"{done} of {target} epochs done"
        )
        more = "" if stopped else f"; pass --epochs N > {done} to train on"
        print(f"optlab: the run in {path} is finished ({why}); nothing to train{more}")
        return 0
    enable_compilation_cache(args.compilation_cache)
    from optlab.train.checkpoint import latest_epoch
    from optlab.train.recipes import Recipe

    try:
        config = Recipe.from_dict(saved)
    except (ValueError, TypeError) as err:
        raise value_error(err, f"--resume {path}: config.json: ") from None
    config = config.replace(**{k: given[k] for k in RESUMABLE if k in given})
    if latest_epoch(run_dir / "checkpoints") is None:
        raise UsageError(f"--resume {path}: no complete checkpoint in {run_dir / 'checkpoints'}")
    monitored = args.diagnostics or (run_dir / "diagnostics.npz").is_file()
    return _fit_and_save(
        config, run_dir, resumed=True, progress=not args.no_progress, diagnostics=monitored
    )


def _read_record(run_dir: Path) -> dict[str, Any]:
    return read_json(run_dir / "run.json", "run.json") if (run_dir / "run.json").is_file() else {}


def _horizon_note(config: Any, opt: Any) -> None:
    from optlab.train.recipes import final_learning_rate

    spec = schedule_spec(config.schedule)
    if config.epochs <= config.horizon or opt.learning_rate is None:
        return
    if not (spec.horizon or config.warmup_epochs):
        return
    lr = final_learning_rate(config, opt.steps_per_epoch)
    first, last = config.horizon + 1, config.epochs
    which = f"epoch {first} goes" if first == last else f"epochs {first}-{last} go"
    print(
        f"optlab: {which} past the {spec.name} schedule's horizon of {config.horizon} epochs, "
        f"at its final learning rate {lr:.3g}",
        flush=True,
    )


def _fit_and_save(
    config: Any, out: Path, *, resumed: bool, progress: bool, diagnostics: bool = False
) -> int:
    from optlab.train import recipes, report
    from optlab.train.fit import fit

    data, model, opt = _build(config)
    callbacks = recipes.build_callbacks(config, out / "checkpoints")
    if resumed:
        _horizon_note(config, opt)
    report.write_json(out / "config.json", config.to_dict())
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # fit warns when it stops a run whose steps kept failing; reported below, once.
            warnings.filterwarnings("ignore", r"fit: stopped at epoch", RuntimeWarning)
            history, model = fit(
                model,
                opt.tx,
                data.train,
                **recipes.fit_arguments(config, data, opt),
                callbacks=callbacks,
                progress=progress,
                resume_from=(out / "checkpoints") if resumed else None,
                diagnostics=_monitor() if diagnostics else None,
            )
    except (ValueError, FileNotFoundError) as err:
        raise value_error(err, f"--resume {out}: " if resumed else "") from None
    elapsed = time.perf_counter() - start
    if history.diagnostics is not None:
        from optlab.cli import diagnose

        diagnose.print_findings(diagnose.write(out, history))
    return _save_run(config, out, data, model, history, callbacks, opt, elapsed, resumed)


def _monitor() -> Any:
    from optlab.diagnostics import Monitor

    return Monitor()


def _early_stopping(callbacks: list[Any]) -> Any:
    from optlab.train.callbacks import EarlyStopping

    return next((cb for cb in callbacks if isinstance(cb, EarlyStopping)), None)


def _save_run(config, out, data, model, history, callbacks, opt, elapsed, resumed) -> int:
    from optlab.train import report
    from optlab.train.evaluation import evaluate
    from optlab.train.saved_model import save_model

    save_model(model, out / "model", overwrite=resumed)  # a resumed run replaces its own
    metrics = {}
    if data.validation is not None:
        logs = evaluate(model, data.validation, loss=data.task.loss, metrics=data.task.metrics)
        metrics = {f"val_{k}": float(logs[k]) for k in sorted(logs, key=lambda k: k != "loss")}
    es = _early_stopping(callbacks)
    epochs = report.epochs_of(history)
    stopped = es.stopped_epoch if es is not None and es.stopped_epoch else None
    restored = getattr(history, "restored_epoch", None)  # a no-op when it is the last epoch
    restored = restored if restored and epochs and restored != epochs[-1] else None
    record = {
        "format": "optlab.runrecord/1",
        "task": data.task.kind,
        "num_features": int(data.train[0].shape[1]),
        "num_outputs": int(data.task.num_outputs),
        "completed_epochs": epochs[-1] if epochs else 0,
        "stopped_early_at": stopped,
        "restored_epoch": restored,
        "validation": data.validation_name,
        "metrics": metrics,
        "optimizer": opt.description,
    }
    report.write_json(out / "run.json", record)
    report.write_json(out / "history.json", report.history_record(history))
    report.write_history_csv(out / "history.csv", history)
    label = opt.description["name"]
    monitor = "val_loss" if data.validation is not None else "loss"
    fig = report.plot_histories(
        {label: history},
        title=f"{label} on {data.dataset.name}, MLP {_shown(config.hidden) or 'linear'}",
        monitor=monitor,
    )
    report.save_figure(fig, out / "curves.png")
    where = f" on the {data.validation_name} ({len(data.validation[0])} rows)" if metrics else ""
    note = f"; restored epoch {restored}" if restored else ""
    if stopped:
        note += f" (early stopping stopped the run at epoch {stopped})"
    print(
        f"{label}: saved {out / 'model'}: {report.metrics_line(metrics) or 'no validation data'}"
        f"{where}{note} ({len(history)} epoch{'s' * (len(history) != 1)}, {elapsed:.1f} s)"
    )
    reason = getattr(history, "stop_reason", None) or ""
    if "non-finite" in reason:
        raise UsageError(
            f"training stopped at epoch {epochs[-1] if epochs else 0}: {reason} (a learning "
            "rate too large? the run's files are in " + str(out) + ")"
        )
    return 0


# ---------------------------------------------------------------------------------------------
# compare


def compare(args: argparse.Namespace) -> int:
    """``optlab compare``: every optimizer of ``--optimizers`` on the same MLP and data."""

    names = [n.strip() for n in args.optimizers.split(",") if n.strip()]
    if not names:
        raise UsageError("--optimizers must name at least one optimizer")
    try:
        specs = [optimizer_spec(n) for n in names]
    except ValueError as err:
        raise value_error(err) from None
    seen = [s.name for s in specs]
    dupes = sorted({n for n in seen if seen.count(n) > 1})
    if dupes:
        raise UsageError(f"--optimizers names {', '.join(dupes)} more than once")
    fields = given_fields(args)
    mini = [s for s in specs if not s.full_batch]
    if not mini and any(k in fields for k in ("schedule", "schedule_opt", "warmup_epochs")):
        raise UsageError(
            "--schedule, --schedule-opt and --warmup-epochs apply to mini-batch "
            "optimizers; --optimizers lists only full-batch ones"
        )
    if not mini and "batch_size" in fields:
        raise UsageError(
            "--batch-size applies to mini-batch optimizers; --optimizers lists only full-batch ones"
        )
    if args.full_batch_epochs is not None and len(mini) == len(specs):
        raise UsageError(
            "--full-batch-epochs applies to full-batch optimizers (lbfgs); --optimizers lists none"
        )
    runs = compare_fields(fields, [s.name for s in specs], args.full_batch_epochs)
    out = prepare_output(args.output or "runs/compare", overwrite=args.overwrite, command="compare")
    enable_compilation_cache(args.compilation_cache)
    if getattr(args, "tune", None):
        from optlab.cli.tuning import tune_learning_rates

        runs = {n: check_run(f) for n, f in tune_learning_rates(runs, args.tune).items()}
    return _compare(runs, out, progress=not args.no_progress)


def compare_fields(
    fields: dict[str, Any], names: list[str], full_batch_epochs: int | None = None
) -> dict[str, dict[str, Any]]:
    """The checked fields of each optimizer's run of ``optlab compare``.

    As ``optlab train``, a dataset named with ``--dataset`` brings its recommended recipe
    (:data:`optlab.optimizers.recommended.RECOMMENDED`) for every option not given: the
    architecture, epochs, batch size and schedule are shared by all the runs, and the recipe's
    learning rate (and options) go to its own optimizer only (the others keep their registry
    defaults: ``--tune N`` tunes each). A full-batch method runs ``full_batch_epochs`` (default:
    the epochs) line-searched steps on every row, without a schedule.
    """
    runs = {}
    for name in names:
        spec = optimizer_spec(name)
        chosen = {**fields, "optimizer": spec.name}
        recipe = recommended_fields(fields["dataset"], chosen) if "dataset" in fields else {}
        run_fields = {**DEFAULTS, **recipe, **chosen}
        if spec.full_batch:
            run_fields.update(
                epochs=full_batch_epochs or run_fields["epochs"],
                batch_size=None,
                schedule="constant",
                schedule_opt={},
                warmup_epochs=0,
            )
        runs[spec.name] = check_run(run_fields)
    return runs


def _compare(runs_fields: dict[str, dict[str, Any]], out: Path, *, progress: bool) -> int:
    from optlab.train import recipes, report
    from optlab.train.fit import fit
    from optlab.train.progress import ProgressCallback

    labels = {
        name: f"{name} (full batch)" if f["batch_size"] is None and _full(name) else name
        for name, f in runs_fields.items()
    }
    width = max(map(len, labels.values()))
    runs: dict[str, Any] = {}
    histories: dict[str, Any] = {}
    first = None
    for name, fields in runs_fields.items():
        config = _config(fields)
        data, model, opt = _build(config)
        first = first or (config, data, opt)
        label = labels[name]
        callbacks = (
            [] if not progress else [ProgressCallback(config.epochs, prefix=f"{label:<{width}}  ")]
        )
        start = time.perf_counter()
        history, _ = fit(
            model,
            opt.tx,
            data.train,
            **recipes.fit_arguments(config, data, opt),
            callbacks=callbacks,
            progress=False,
        )
        elapsed = time.perf_counter() - start
        histories[label] = history
        runs[label] = _compare_record(history, data, opt, elapsed)
    config, data, opt = first
    ds = data.dataset
    sizes = "-".join(map(str, [data.train[0].shape[1], *config.hidden, data.task.num_outputs]))
    print(
        f"\n{ds.name}: MLP {sizes} ({config.activation}, {config.init}), {config.epochs} "
        f"epochs, batch {opt.batch_size}, seed {config.seed}; validation = "
        f"{data.validation_name}"
    )
    print(report.compare_table(runs))
    monitor = "val_loss" if data.validation is not None else "loss"
    fig = report.plot_histories(
        histories,
        title=f"{ds.name}: optimizers on one MLP ({config.epochs} epochs, batch {opt.batch_size})",
        monitor=monitor,
    )
    report.save_figure(fig, out / "compare.png")
    report.write_json(
        out / "compare.json",
        {"config": {k: v for k, v in config.to_dict().items() if k != "optimizer"}, "runs": runs},
    )
    print(f"wrote {out / 'compare.png'} and {out / 'compare.json'}")
    return 0


def _full(name: str) -> bool:

    return optimizer_spec(name).full_batch


def _compare_record(history: Any, data: Any, opt: Any, elapsed: float) -> dict[str, Any]:
    import numpy as np

    from optlab.train import report

    monitor = "val_loss" if data.validation is not None else "loss"
    best = report.best_epoch(history, monitor)
    steady = history["steps_per_second"][1:] or history["steps_per_second"]
    record = {
        "optimizer": opt.description,
        "learning_rate": opt.learning_rate,
        "schedule": opt.schedule,
        "epochs": len(history),
        "batch_size": opt.batch_size,
        "train_loss": history["loss"][-1],
    }
    for key in ("accuracy", "val_loss", "val_accuracy"):
        if key in history:
            record["train_" + key if key == "accuracy" else key] = history[key][-1]
    record.update(
        best_epoch=best[0] if best else None,
        best_value=best[1] if best else None,
        seconds=elapsed,
        steps_per_second=float(np.median(steady)),
        history=report.history_record(history),
    )
    return record
