"""``optlab lr-find``, ``optlab check``, ``optlab sweep`` and ``optlab compare --tune N``.

Thin commands over :mod:`optlab.tune`: the data and the model come from the same recipe as
``optlab train`` (:mod:`optlab.train.recipes`), the optimizer from the registry with its
defaults overridden by ``--lr``, ``--momentum`` and ``--opt``. Arguments are checked in plain
Python first (a bad ``--param`` answers before jax is imported); every failure a user can
cause is a :class:`~optlab.cli.options.UsageError`: one line on standard error, exit status 2.
"""

from __future__ import annotations

import argparse
import math
import shlex
from collections.abc import Callable
from typing import Any

from optlab.cli.options import (
    UsageError,
    add_batch_size,
    add_optimizer_options,
    add_seed,
    nonempty,
    number,
    one_line,
)
from optlab.cli.rundir import prepare_output
from optlab.optimizers.registry import optimizer_spec

SAMPLERS = ("quasi_random", "random", "grid")
# compare --tune: each optimizer's learning rate searched in [default / 30, default * 30]
TUNE_RANGE = 30.0
# sweep and compare --tune tune on held-out training rows, never on the test split
TUNE_SPLIT = 0.2
BATCH_HELP = "rows per step (default: 32)"
SEED_HELP = "seed of the initial weights and the data order (default: 0)"


# ---------------------------------------------------------------------------------------------
# Parsers (registered by optlab.cli.main)


def _output(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument(
        "--output",
        type=nonempty("--output"),
        default=None,
        metavar="DIR",
        help=f"output directory; refused if it already holds results (default: {default})",
    )
    p.add_argument("--overwrite", action="store_true", help="replace the results in --output")


def add_commands(
    sub: Any,
    *,
    data_options: Callable[..., None],
    model_options: Callable[..., None],
    run_options: Callable[..., None],
) -> None:
    """Adds ``lr-find``, ``check`` and ``sweep`` to the subparsers ``sub`` (with the data,
    model and run option groups of ``optlab train``)."""
    lr_find = sub.add_parser(
        "lr-find",
        allow_abbrev=False,
        help="the learning-rate range test: curve, suggestions, the verified learning rate",
        description="Train on an exponential ramp of learning rates (one compiled scan), "
        "smooth the loss and suggest learning rates read off d loss / d log10(lr); with "
        "--verify, train {s/3, s, 3s} around each suggestion in one vmapped program and "
        "take the best. Writes lr_find.json and lr_find.png to --output.",
    )
    data_options(lr_find, defaults=False)
    model_options(lr_find)
    add_optimizer_options(lr_find, lr=False)
    g = lr_find.add_argument_group("range test")
    g.add_argument(
        "--min-lr",
        type=number("--min-lr", positive=True),
        default=1e-7,
        help="the ramp's first learning rate (default: %(default)s)",
    )
    g.add_argument(
        "--max-lr",
        type=number("--max-lr", positive=True),
        default=10.0,
        help="the ramp's last learning rate (default: %(default)s)",
    )
    g.add_argument(
        "--num-steps",
        type=number("--num-steps", minimum=5, integer=True, maximum=100_000),
        default=100,
        help="steps of the ramp (default: %(default)s)",
    )
    g.add_argument("--verify", action="store_true", help="train around each suggestion")
    add_batch_size(g, BATCH_HELP)
    add_seed(g, SEED_HELP)
    _output(lr_find, "runs/lr-find")

    check = sub.add_parser(
        "check",
        allow_abbrev=False,
        help="sanity checks before training: initial loss, overfitting 20 examples, ...",
        description="Run the babysitting checks (optlab.tune.sanity_checks) on the model, "
        "optimizer and data of a training run and print their verdicts. Exit status 1 when "
        "a check fails.",
    )
    data_options(check, defaults=False)
    model_options(check)
    add_optimizer_options(check)
    g = check.add_argument_group("checks")
    add_batch_size(g, BATCH_HELP)
    add_seed(g, SEED_HELP)
    g.add_argument("--json", action="store_true", help="print the verdicts as JSON")

    sweep = sub.add_parser(
        "sweep",
        allow_abbrev=False,
        help="train N configurations x S seeds in one compiled program; table, plots, JSON",
        description="Search the optimizer's hyperparameters: --trials configurations "
        "(quasi-random by default) x --seeds seeds, all trained in one vmapped program, "
        "ranked by --metric on held-out training rows (--validation-split, default 0.2). "
        "Writes sweep.csv, sweep.json, metric.png, curves.png and best.json (with the best "
        "configuration as an optlab train command line) to --output.",
    )
    data_options(sweep, defaults=False)
    model_options(sweep)
    add_optimizer_options(sweep)
    g = sweep.add_argument_group("search")
    g.add_argument(
        "--param",
        action="append",
        required=True,
        type=param_spec,
        metavar="NAME=SPEC",
        help="a hyperparameter of the optimizer and its range: lr=1e-4:1e-1:log "
        "(log-uniform), momentum=0.8:0.99 (uniform), NAME=LO:HI:int, or NAME=a,b,c "
        "(choices); repeatable",
    )
    g.add_argument(
        "--trials",
        type=number("--trials", minimum=1, integer=True, maximum=100_000),
        default=16,
        help="configurations (for --sampler grid: values per hyperparameter; default: 16)",
    )
    g.add_argument(
        "--seeds",
        type=number("--seeds", minimum=1, integer=True, maximum=10_000),
        default=1,
        help="seeds per configuration (default: 1)",
    )
    g.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default="quasi_random",
        help="how trials are drawn from the ranges (default: %(default)s)",
    )
    g.add_argument(
        "--halving",
        type=number("--halving", minimum=2, integer=True, maximum=1000),
        default=None,
        metavar="ETA",
        help="successive halving: keep the best 1/ETA at epochs 1, ETA, ETA^2, ...",
    )
    g.add_argument(
        "--metric",
        type=nonempty("--metric"),
        default="val_loss",
        help="the value that ranks configurations (default: %(default)s)",
    )
    run_options(sweep, output="runs/sweep")


def add_compare_tune(compare: argparse.ArgumentParser) -> None:
    """``optlab compare --tune N``."""
    compare.add_argument(
        "--tune",
        type=number("--tune", minimum=1, integer=True, maximum=10_000),
        default=None,
        metavar="N",
        help="before comparing, tune each optimizer's learning rate with N quasi-random "
        f"trials in [default/{TUNE_RANGE:g}, default*{TUNE_RANGE:g}] (one vmapped program "
        f"each; ranked on {TUNE_SPLIT * 100:.0f}%% of the training rows)",
    )


# ---------------------------------------------------------------------------------------------
# Plain Python: --param


def param_spec(text: str) -> tuple[str, str, Any]:
    """``lr=1e-4:1e-1:log`` -> ``("lr", "log_uniform", (1e-4, 0.1))``; ``a=1,2`` -> choice."""
    name, sep, spec = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier() or not spec.strip():
        raise argparse.ArgumentTypeError(
            f"--param takes NAME=LO:HI[:log|:int] or NAME=a,b,c, got {text!r}"
        )
    if ":" not in spec:
        options = [_value(v, name, text) for v in spec.split(",")]
        return name, "choice", tuple(options)
    parts = spec.split(":")
    kind = "uniform"
    if len(parts) == 3:
        kind = {"log": "log_uniform", "int": "int_uniform", "lin": "uniform"}.get(parts[2], "")
        if not kind:
            raise argparse.ArgumentTypeError(
                f"--param {name}: the scale must be log, lin or int, got {parts[2]!r}"
            )
    elif len(parts) != 2:
        raise argparse.ArgumentTypeError(
            f"--param {name}: a range is LO:HI or LO:HI:log|lin|int, got {spec!r}"
        )
    try:
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--param {name}: LO and HI must be numbers, got {spec!r}"
        ) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise argparse.ArgumentTypeError(f"--param {name}: needs finite LO < HI, got {spec!r}")
    if kind == "log_uniform" and lo <= 0:
        raise argparse.ArgumentTypeError(f"--param {name}: a log range needs LO > 0, got {spec!r}")
    if kind == "int_uniform":
        if lo != int(lo) or hi != int(hi):
            raise argparse.ArgumentTypeError(
                f"--param {name}: an int range needs integer ends, got {spec!r}"
            )
        lo, hi = int(lo), int(hi)
    return name, kind, (lo, hi)


def _value(text: str, name: str, whole: str) -> Any:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--param {name}: choices must be numbers, got {whole!r}"
        ) from None


def _optimizer_params(spec: Any) -> list[str]:
    """The names ``--param`` may search for an optimizer: ``lr`` and its factory options."""
    names = ["lr"] if not spec.full_batch else []
    return names + [n for n in spec.options if n not in names]


# ---------------------------------------------------------------------------------------------
# Shared: arguments -> recipe, data, model, a transformation factory


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    from optlab.cli.commands import check_run, given_fields

    fields = given_fields(args)
    check_run(fields)
    return fields


def _error(err: BaseException) -> UsageError:
    return UsageError(one_line(err))


def _load(fields: dict[str, Any], *, cache: bool = False) -> tuple[Any, Any]:
    """``(recipe, run data)`` of the fields; every refusal a UsageError. ``cache``: use JAX's
    persistent compilation cache from here on, as ``optlab train`` does."""
    from optlab.cli.commands import enable_compilation_cache
    from optlab.train import recipes

    enable_compilation_cache(cache)
    try:
        config = recipes.Recipe(**fields)
        return config, recipes.load_data(config)
    except (ValueError, TypeError, OSError) as err:
        raise _error(err) from None


def _model_fn(config: Any, data: Any) -> Callable[[Any, Any], Any]:
    """``model_fn(config, rngs)``: the recipe's MLP (as ``optlab train`` builds it)."""
    from optlab.nn.mlp import MLP

    def model_fn(_: Any, rngs: Any) -> Any:
        return MLP(
            int(data.train[0].shape[1]),
            tuple(config.hidden),
            data.task.num_outputs,
            activation=config.activation,
            kernel_init=config.init,
            norm=config.norm,
            dropout=config.dropout,
            rngs=rngs,
        )

    return model_fn


def _tx_fn(config: Any) -> Callable[[dict[str, Any]], Any]:
    """``tx_fn(values)``: the registry's optimizer with the recipe's options, then ``values``
    (``lr`` is the learning rate); the values may be traced."""
    from optlab.train.recipes import check_run_options

    spec = optimizer_spec(config.optimizer)
    base = {**spec.defaults, **check_run_options(config)}
    if config.lr is not None:
        base["learning_rate"] = config.lr

    def tx_fn(values: dict[str, Any]) -> Any:
        kwargs = dict(base)
        for k, v in values.items():
            kwargs["learning_rate" if k == "lr" else k] = v
        return spec.factory(**kwargs)

    return tx_fn


def _train_command(config: Any, values: dict[str, Any], epochs: int) -> str:
    """The ``optlab train`` command line of the recipe with ``values`` set."""
    words = ["optlab", "train", "--dataset", config.dataset]
    if config.data_dir:
        words += ["--data-dir", config.data_dir]
    if config.target:
        words += ["--target", config.target]
    words += ["--hidden", ",".join(map(str, config.hidden)) or "none"]
    words += ["--activation", config.activation, "--init", config.init]
    if config.norm:
        words += ["--norm", config.norm]
    if config.dropout:
        words += ["--dropout", f"{config.dropout:g}"]
    words += ["--optimizer", config.optimizer]
    opt = dict(config.opt)
    lr, momentum = config.lr, config.momentum
    for k, v in values.items():
        if k == "lr":
            lr = v
        elif k == "momentum" and "momentum" in optimizer_spec(config.optimizer).options:
            momentum = v
        else:
            opt[k] = v
    if lr is not None:
        words += ["--lr", f"{lr:.6g}"]
    if momentum is not None:
        words += ["--momentum", f"{momentum:.6g}"]
    for k, v in opt.items():
        words += ["--opt", f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"]
    words += ["--epochs", str(epochs), "--batch-size", str(config.batch_size or 32)]
    words += ["--seed", str(config.seed)]
    return shlex.join(words)


# ---------------------------------------------------------------------------------------------
# Commands


def run(args: argparse.Namespace) -> int:
    """Runs ``args.command`` (``lr-find``, ``check`` or ``sweep``); returns the exit status."""
    return {"lr-find": lr_find, "check": check, "sweep": sweep}[args.command](args)


def lr_find(args: argparse.Namespace) -> int:
    """``optlab lr-find``."""
    fields = _fields(args)
    spec = optimizer_spec(fields.get("optimizer", "adam"))
    if spec.full_batch:
        raise UsageError(
            f"--optimizer {spec.name} chooses its own step by line search: it has no learning "
            "rate to find"
        )
    if not args.min_lr < args.max_lr:
        raise UsageError(f"--min-lr must be < --max-lr, got {args.min_lr:g} >= {args.max_lr:g}")
    out = prepare_output(args.output or "runs/lr-find", overwrite=args.overwrite)
    import numpy as np

    from optlab.train import report
    from optlab.tune.lr_find import lr_find as find

    config, data = _load(fields, cache=args.compilation_cache)
    tx_fn = _tx_fn(config)

    def factory(learning_rate: Any) -> Any:
        return tx_fn({"lr": learning_rate})

    try:
        result = find(
            _model_fn(config, data)(None, config.seed),
            factory,
            data.train,
            loss=data.task.loss,
            min_lr=args.min_lr,
            max_lr=args.max_lr,
            num_steps=args.num_steps,
            batch_size=min(args.batch_size or 32, len(data.train[0])),
            seed=config.seed,
            verify=args.verify,
            validation_data=data.validation,
        )
    except (ValueError, TypeError) as err:
        raise _error(err) from None
    result.title = f"{spec.name} on {data.dataset.name}"
    fig = result.plot()
    report.save_figure(fig, out / "lr_find.png")

    def finite(values: Any) -> list[float | None]:
        return [float(v) if np.isfinite(v) else None for v in values]

    record = {
        "optimizer": spec.name,
        "dataset": data.dataset.name,
        "lrs": finite(result.lrs),
        "losses": finite(result.losses),
        "smoothed": finite(result.smoothed),
        "num_counted": result.num_counted,
        "suggestions": {k: v if math.isfinite(v) else None for k, v in result.suggestions.items()},
        "verified": result.verified,
        "verification": result.verification,
    }
    report.write_json(out / "lr_find.json", record)
    for name, value in result.suggestions.items():
        print(f"{name:<8} {value:.3g}")
    take = result.suggestion
    if not math.isfinite(take):
        raise UsageError(
            f"the loss never fell between --min-lr {args.min_lr:g} and --max-lr {args.max_lr:g} "
            f"(counted {result.num_counted} steps): widen the range; curve in {out}"
        )
    how = "verified" if result.verified is not None else "valley"
    print(f"take lr={take:.3g} ({how}): {_train_command(config, {'lr': take}, config.epochs)}")
    print(f"wrote {out / 'lr_find.png'} and {out / 'lr_find.json'}")
    return 0


def check(args: argparse.Namespace) -> int:
    """``optlab check``: exit status 1 when a check fails."""
    import json

    from optlab.tune.sanity import sanity_checks

    fields = _fields(args)
    config, data = _load(fields, cache=args.compilation_cache)
    try:
        from optlab.train.recipes import build_optimizer

        tx = build_optimizer(config, data).tx
        report = sanity_checks(
            _model_fn(config, data)(None, config.seed),
            tx,
            data.train,
            loss=data.task.loss,
            batch_size=min(args.batch_size or 32, len(data.train[0])),
            seed=config.seed,
        )
    except (ValueError, TypeError) as err:
        raise _error(err) from None
    print(json.dumps(report.table(), indent=1) if args.json else str(report))
    return 0 if report.passed else 1


def _space(params: list[tuple[str, str, Any]]) -> Any:
    from optlab.tune import space as sp

    dims = {}
    for name, kind, value in params:
        dims[name] = sp.choice(list(value)) if kind == "choice" else getattr(sp, kind)(*value)
    return sp.Space(**dims)


def sweep(args: argparse.Namespace) -> int:
    """``optlab sweep``."""
    fields = _fields(args)
    spec = optimizer_spec(fields.get("optimizer", "adam"))
    names = [p[0] for p in args.param]
    allowed = _optimizer_params(spec)
    for name in names:
        if name not in allowed:
            raise UsageError(
                f"--param {name}: not a hyperparameter of {spec.name} (it takes "
                f"{', '.join(allowed) or 'none: it chooses its own step'})"
            )
    if len(set(names)) != len(names):
        twice = sorted(n for n in names if names.count(n) > 1)[0]
        raise UsageError(f"--param {twice} is given twice")
    fixed = {"lr": "lr", "momentum": "momentum"}
    for name in names:
        if name in fixed and fields.get(fixed[name]) is not None:
            raise UsageError(f"--{name} fixes {name}, which --param {name} searches: give one")
        if name in fields.get("opt", {}):
            raise UsageError(f"--opt {name} fixes {name}, which --param {name} searches: give one")
    if args.validation_split is None:
        fields["validation_split"] = TUNE_SPLIT
    out = prepare_output(args.output or "runs/sweep", overwrite=args.overwrite, command="sweep")
    from optlab.train import report
    from optlab.tune.results import TuningWarning
    from optlab.tune.sweep import HalvingConfig
    from optlab.tune.sweep import sweep as run_sweep

    config, data = _load(fields, cache=args.compilation_cache)
    if data.validation is None and args.metric.startswith("val_"):
        raise UsageError(f"--metric {args.metric} needs validation data: give --validation-split")
    import warnings

    try:
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("ignore", TuningWarning)  # printed from result.warnings
            result = run_sweep(
                _model_fn(config, data),
                _tx_fn(config),
                _space(args.param),
                data.train,
                loss=data.task.loss,
                epochs=config.epochs,
                batch_size=min(config.batch_size or 32, len(data.train[0])),
                seeds=[config.seed + s for s in range(args.seeds)],
                trials=args.trials,
                sampler=args.sampler,
                search_seed=config.seed,
                metric=args.metric,
                validation_data=data.validation,
                metrics=data.task.metrics,
                halving=None if args.halving is None else HalvingConfig(eta=args.halving),
                warn=False,
            )
    except (ValueError, TypeError) as err:
        raise _error(err) from None
    try:
        result.save(out)
    except FileExistsError:
        raise UsageError(
            f"--output {str(out)!r} holds other files; choose an empty directory"
        ) from None
    best = result.best_config
    command = _train_command(config, best, config.epochs)
    report.write_json(
        out / "best.json",
        {"config": best, "score": result.scores[result.best_index], "command": command},
    )
    print(result.summary(k=10))
    print(
        f"\n{len(result.members)} members ({len(result.configs)} configurations x "
        f"{args.seeds} seeds), {result.groups} program(s), {result.wall_time:.1f} s"
    )
    print(f"best: {command}")
    print(f"wrote sweep.csv, sweep.json, metric.png, curves.png and best.json to {out}")
    return 0


def tune_learning_rates(
    runs: dict[str, dict[str, Any]], trials: int, *, progress: bool = True
) -> dict[str, dict[str, Any]]:
    """``compare --tune N``: each mini-batch optimizer's ``lr`` replaced by the best of
    ``trials`` quasi-random learning rates in ``[d / 30, d * 30]`` around its default ``d``,
    ranked by ``val_loss`` on 20% of the training rows (one vmapped sweep per optimizer)."""
    from optlab.tune.space import Space, log_uniform
    from optlab.tune.sweep import sweep as run_sweep

    tuned = {}
    for name, fields in runs.items():
        spec = optimizer_spec(name)
        if spec.full_batch:
            tuned[name] = fields
            continue
        config, data = _load({**fields, "validation_split": TUNE_SPLIT, "lr": None})
        default = float(spec.defaults["learning_rate"])
        lo, hi = default / TUNE_RANGE, default * TUNE_RANGE
        try:
            result = run_sweep(
                _model_fn(config, data),
                _tx_fn(config),
                Space(lr=log_uniform(lo, hi)),
                data.train,
                loss=data.task.loss,
                epochs=config.epochs,
                batch_size=min(config.batch_size or 32, len(data.train[0])),
                seeds=[config.seed],
                trials=trials,
                search_seed=config.seed,
                validation_data=data.validation,
                metrics=data.task.metrics,
                warn=False,
            )
        except (ValueError, TypeError) as err:
            raise _error(err) from None
        lr = float(result.best_config["lr"])
        if progress:
            print(
                f"{name}: tuned lr {lr:.3g} (best of {trials} in [{lo:.3g}, {hi:.3g}], "
                f"val_loss {result.scores[result.best_index]:.4g} on {TUNE_SPLIT:.0%} of the "
                "training rows)",
                flush=True,
            )
        tuned[name] = {**fields, "lr": lr}
    return tuned
