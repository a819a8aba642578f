"""The ``optlab`` command: ``optlab train`` and ``optlab compare``.

``optlab compare`` is the project's main job (``make demo``): the same MLP trained on the same
data with each optimizer of the lectures, a table, one PNG with every curve, and JSON.
Bad input exits with status 2 and one line on standard error, never a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

EXIT_USAGE = 2

# The optimizers of the seed lectures, in the order they teach them (registry names).
COMPARE_DEFAULT = (
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
SCHEDULES = ("constant", "cosine", "exponential")


class UsageError(Exception):
    """Bad input: reported as one line on standard error, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would print usage and exit itself
        raise UsageError(message)


# ---------------------------------------------------------------------------------------------
# Argument types


def _number(kind: str, minimum: float | None = None, positive: bool = False, integer=False):
    def parse(text: str) -> float | int:
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            what = "an integer" if integer else "a number"
            raise argparse.ArgumentTypeError(f"{kind} must be {what}, got {text!r}") from None
        if not integer and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{kind} must be finite, got {text!r}")
        if positive and value <= 0:
            raise argparse.ArgumentTypeError(f"{kind} must be > 0, got {text!r}")
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"{kind} must be >= {minimum:g}, got {text!r}")
        return value

    return parse


def _hidden(text: str) -> tuple[int, ...]:
    if text.strip() in ("", "none"):
        return ()
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"hidden sizes must be comma-separated integers such as 64,64, got {text!r}"
        ) from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"hidden sizes must be >= 1, got {text!r}")
    return sizes


def _keyword(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"--opt takes NAME=VALUE, got {text!r}")
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return name, lowered == "true"
    try:
        return name, int(value)
    except ValueError:
        pass
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--opt {name}: the value must be a number or true/false, got {value!r}"
        ) from None


def _choose(kind: str, name: str, choices: Sequence[str]) -> str:
    """``name`` if it is a choice, else a UsageError with a did-you-mean list."""
    key = name.strip().lower().replace("-", "_")
    if key in choices:
        return key
    close = difflib.get_close_matches(key, choices, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UsageError(f"unknown {kind} {name!r}{hint} (choices: {', '.join(choices)})")


# ---------------------------------------------------------------------------------------------
# The parser


def _add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data and model")
    g.add_argument(
        "--dataset",
        default="digits",
        help="dataset name (digits, mnist1d, fashion_mnist, mnist, blobs, "
        "two_spirals; default: %(default)s)",
    )
    g.add_argument(
        "--data-dir", default=None, help="directory with the IDX files of fashion_mnist / mnist"
    )
    g.add_argument(
        "--hidden",
        type=_hidden,
        default=(64,),
        metavar="N[,N...]",
        help="hidden layer widths, comma-separated (default: 64)",
    )
    g.add_argument(
        "--activation",
        default="relu",
        help="hidden activation by name (relu, tanh, gelu, leaky_relu, ...; default: %(default)s)",
    )
    g.add_argument(
        "--init",
        default="he_normal",
        help="weight initializer by name (he_normal, glorot_uniform, ...; default: %(default)s)",
    )
    g.add_argument(
        "--norm",
        default="none",
        help="normalization after each hidden Dense: none, batch, layer or group "
        "(default: %(default)s)",
    )
    g.add_argument(
        "--dropout",
        type=_number("dropout", minimum=0.0),
        default=0.0,
        help="dropout rate after each hidden activation, in [0, 1) (default: 0)",
    )


DEFAULT_EPOCHS = 20


def _add_run_options(p: argparse.ArgumentParser, *, output: str) -> None:
    g = p.add_argument_group("training")
    g.add_argument(
        "--epochs",
        type=_number("epochs", minimum=1, integer=True),
        default=None,
        help=f"number of epochs (default: {DEFAULT_EPOCHS}; with --resume: the "
        "total to reach, default the run's own)",
    )
    g.add_argument(
        "--batch-size",
        type=_number("batch size", minimum=1, integer=True),
        default=32,
        help="rows per step (default: %(default)s)",
    )
    g.add_argument(
        "--validation-split",
        type=_number("validation split", minimum=0.0),
        default=0.0,
        help="hold out this fraction of the training rows for validation; 0 "
        "(default) validates on the dataset's test split",
    )
    g.add_argument(
        "--seed",
        type=_number("seed", minimum=0, integer=True),
        default=0,
        help="seed of the initial weights and the data order (default: 0)",
    )
    g.add_argument("--output", default=output, help="output directory (default: %(default)s)")
    g.add_argument("--no-progress", action="store_true", help="print nothing per epoch")


def build_parser() -> argparse.ArgumentParser:
    """The ``optlab`` argument parser (``train`` and ``compare`` sub-commands)."""
    parser = _Parser(
        prog="optlab",
        description="Train Flax MLPs with optlab optimizers, and compare the optimizers.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{train,compare}", parser_class=_Parser)

    train = sub.add_parser(
        "train",
        help="train one MLP and write its history, checkpoints and curves",
        description="Train one MLP. Writes history.json, history.csv, curves.png, "
        "config.json and orbax checkpoints (checkpoints/) to the output directory; "
        "--resume DIR continues such a run exactly.",
    )
    _add_model_options(train)
    g = train.add_argument_group("optimizer")
    g.add_argument(
        "--optimizer",
        default="adam",
        help="optimizer name (sgd, momentum, nesterov, adagrad, rmsprop, adadelta, "
        "adam, adamw, nadam, lbfgs, ...; default: %(default)s)",
    )
    g.add_argument(
        "--lr",
        type=_number("learning rate", minimum=0.0),
        default=None,
        help="peak learning rate (default: the optimizer's registered default)",
    )
    g.add_argument(
        "--momentum",
        type=_number("momentum", minimum=0.0),
        default=None,
        help="momentum of sgd/momentum/nesterov/rmsprop",
    )
    g.add_argument(
        "--opt",
        action="append",
        default=[],
        type=_keyword,
        metavar="NAME=VALUE",
        help="any other keyword of the optimizer's factory, e.g. --opt b1=0.95 --opt eps=1e-7 "
        "(repeatable; numbers or true/false)",
    )
    g.add_argument(
        "--schedule",
        default="constant",
        help="learning-rate schedule over the run: constant, cosine or exponential "
        "(x0.1 over the run) (default: %(default)s)",
    )
    g.add_argument(
        "--warmup-epochs",
        type=_number("warmup epochs", minimum=0, integer=True),
        default=0,
        help="linear warmup from 0 over this many epochs (default: 0)",
    )
    g.add_argument(
        "--clip-norm",
        type=_number("clip norm", positive=True),
        default=None,
        help="clip the gradients' global norm to this value",
    )
    g.add_argument(
        "--weight-decay",
        type=_number("weight decay", minimum=0.0),
        default=None,
        help="weight decay: decoupled for adamw/nadamw, an L2 term added to the "
        "gradient (coupled) for the others",
    )
    g.add_argument(
        "--early-stopping",
        type=_number("patience", minimum=0, integer=True),
        default=None,
        metavar="PATIENCE",
        help="stop when val_loss has not improved for PATIENCE epochs, restoring the best weights",
    )
    _add_run_options(train, output="runs/train")
    train.add_argument(
        "--checkpoint-every",
        type=_number("checkpoint interval", minimum=1, integer=True),
        default=1,
        help="write a checkpoint every N epochs (default: 1)",
    )
    train.add_argument(
        "--resume",
        default=None,
        metavar="DIR",
        help="continue the run in DIR (an earlier --output) up to --epochs; its "
        "other options are read from DIR/config.json",
    )

    compare = sub.add_parser(
        "compare",
        help="train the same MLP with each optimizer; table, PNG and JSON",
        description="Train the same MLP on the same data with each optimizer, with the "
        "registered default hyperparameters (optlab.optimizers.registry), and "
        "full-batch L-BFGS. Prints a table and writes compare.png and "
        "compare.json to the output directory.",
    )
    _add_model_options(compare)
    compare.add_argument(
        "--optimizers",
        default=",".join(COMPARE_DEFAULT),
        help="comma-separated optimizer names (default: %(default)s)",
    )
    compare.add_argument(
        "--lbfgs-iterations",
        type=_number("L-BFGS iterations", minimum=1, integer=True),
        default=None,
        help="full-batch L-BFGS steps, one per epoch (default: --epochs)",
    )
    _add_run_options(compare, output="runs/compare")
    return parser


# ---------------------------------------------------------------------------------------------
# Building the pieces from the options (every bad value becomes a UsageError)


def _optimizer_names() -> list[str]:
    from optlab.optimizers.registry import REGISTRY

    return sorted([*REGISTRY, "lbfgs"])


def _check_output(path: str) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".optlab-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UsageError(
            f"cannot write to the output directory {str(out)!r}: {err.strerror or err}"
        ) from None
    return out


def _load_data(cfg: dict[str, Any]):
    import optlab.data

    name = _choose("dataset", cfg["dataset"], optlab.data.dataset_names())
    options = {"path": cfg["data_dir"]} if cfg.get("data_dir") else {}
    try:
        ds = optlab.data.load(name, **options)
    except (FileNotFoundError, OSError, ValueError) as err:
        message = " ".join(str(err).split())
        if "path=" in message:
            message += " (on the command line: --data-dir DIR)"
        raise UsageError(message) from None
    split = cfg.get("validation_split") or 0.0
    if not 0.0 <= split < 1.0:
        raise UsageError(f"--validation-split must be in [0, 1), got {split}")
    x, y = ds.x_train.reshape(len(ds.x_train), -1), ds.y_train
    if split:
        return ds, (x, y), None, split
    return ds, (x, y), (ds.x_test.reshape(len(ds.x_test), -1), ds.y_test), 0.0


def _model(cfg: dict[str, Any], ds: Any):
    import optlab.nn

    activation = _choose("activation", cfg["activation"], optlab.nn.activation_names())
    init = _choose("initializer", cfg["init"], optlab.nn.initializer_names())
    norm = (
        None
        if cfg["norm"] in (None, "none")
        else _choose("norm", cfg["norm"], optlab.nn.norm_names())
    )
    if not 0.0 <= cfg["dropout"] < 1.0:
        raise UsageError(f"--dropout must be in [0, 1), got {cfg['dropout']}")
    try:
        return optlab.nn.MLP(
            ds.num_features,
            tuple(cfg["hidden"]),
            ds.num_classes,
            activation=activation,
            kernel_init=init,
            norm=norm,
            dropout=cfg["dropout"],
            rngs=cfg["seed"],
        )
    except ValueError as err:
        raise UsageError(str(err)) from None


def _schedule(cfg: dict[str, Any], lr: float, steps_per_epoch: int):
    from optlab.schedules.cosine import warmup_cosine_decay_schedule
    from optlab.schedules.warmup import (
        warmup_constant_schedule,
        warmup_exponential_decay_schedule,
    )

    kind = _choose("schedule", cfg.get("schedule", "constant"), SCHEDULES)
    warmup = cfg.get("warmup_epochs", 0) * steps_per_epoch
    total = cfg["epochs"] * steps_per_epoch
    if warmup >= total and warmup > 0:
        raise UsageError(
            f"--warmup-epochs must be fewer than --epochs ({cfg['epochs']}), "
            f"got {cfg['warmup_epochs']}"
        )
    if kind == "constant":
        return lr if warmup == 0 else warmup_constant_schedule(0.0, lr, warmup)
    if kind == "cosine":
        return warmup_cosine_decay_schedule(0.0, lr, warmup, total)
    return warmup_exponential_decay_schedule(0.0, lr, warmup, max(total - warmup, 1), 0.1)


def _optimizer(cfg: dict[str, Any], steps_per_epoch: int):
    """``(tx, description)`` for ``cfg['optimizer']`` with its options."""
    from optlab.core.combine import chain
    from optlab.optimizers.lbfgs import lbfgs
    from optlab.optimizers.registry import REGISTRY
    from optlab.transforms.clipping import clip_by_global_norm
    from optlab.transforms.regularization import add_decayed_weights

    name = _choose("optimizer", cfg["optimizer"], _optimizer_names())
    if name == "lbfgs":
        parts = [lbfgs()]
        desc = {"name": "lbfgs", "line_search": "zoom (strong Wolfe)"}
    else:
        spec = REGISTRY[name]
        kwargs = dict(spec.defaults)
        if cfg.get("lr") is not None:
            kwargs["learning_rate"] = cfg["lr"]
        if cfg.get("momentum") is not None:
            if "momentum" not in kwargs and name not in ("sgd", "rmsprop"):
                raise UsageError(f"--momentum does not apply to {name}")
            kwargs["momentum"] = cfg["momentum"]
        decay = cfg.get("weight_decay")
        decoupled = decay is not None and "weight_decay" in kwargs
        if decoupled:
            kwargs["weight_decay"] = decay
        extra = dict(cfg.get("opt") or [])
        for key, flag in (
            ("learning_rate", "--lr"),
            ("momentum", "--momentum"),
            ("weight_decay", "--weight-decay"),
        ):
            if key in extra:
                raise UsageError(f"--opt {key}=...: use {flag} instead")
        kwargs.update(extra)
        desc = {"name": name, **{k: v for k, v in kwargs.items()}}
        kwargs["learning_rate"] = _schedule(cfg, kwargs["learning_rate"], steps_per_epoch)
        try:
            parts = [spec.factory(**kwargs)]
        except TypeError:
            raise UsageError(
                f"--opt: {name} does not take {', '.join(sorted(extra))}; see "
                f"help(optlab.{spec.factory.__name__})"
            ) from None
        except ValueError as err:
            raise UsageError(str(err)) from None
        if decay and not decoupled:
            parts.insert(0, add_decayed_weights(decay))
            desc["l2"] = decay
    if cfg.get("clip_norm") is not None:
        parts.insert(0, clip_by_global_norm(cfg["clip_norm"]))
        desc["clip_norm"] = cfg["clip_norm"]
    return (parts[0] if len(parts) == 1 else chain(*parts)), desc


# ---------------------------------------------------------------------------------------------
# Plots


def _plot(histories: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = plt.get_cmap("tab10").colors
    for i, (name, h) in enumerate(histories.items()):
        epochs = list(h.epoch)  # 1-based already
        line = axes[0].plot(epochs, h["loss"], color=colors[i % 10], label=f"{name} train")[0]
        if "val_loss" in h:
            axes[0].plot(epochs, h["val_loss"], "--", color=line.get_color())
        if "accuracy" in h:
            axes[1].plot(epochs, h["accuracy"], color=line.get_color(), label=name)
        if "val_accuracy" in h:
            axes[1].plot(epochs, h["val_accuracy"], "--", color=line.get_color())
    axes[0].set(xlabel="epoch", ylabel="loss (solid: train, dashed: validation)", yscale="log")
    axes[1].set(xlabel="epoch", ylabel="accuracy (solid: train, dashed: validation)")
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Sub-commands


def _loss():
    import optlab.nn

    return optlab.nn.softmax_cross_entropy_with_integer_labels


def _cfg_from_args(args: argparse.Namespace) -> dict[str, Any]:
    cfg = {k: v for k, v in vars(args).items() if k not in ("command", "resume")}
    cfg["hidden"] = list(cfg["hidden"])
    if cfg["epochs"] is None:
        cfg["epochs"] = DEFAULT_EPOCHS
    return cfg


def _train(args: argparse.Namespace) -> int:
    from optlab.train import callbacks as cbs
    from optlab.train.checkpoint import latest_epoch
    from optlab.train.fit import fit

    if args.resume is not None:
        run_dir = Path(args.resume)
        try:
            cfg = json.loads((run_dir / "config.json").read_text())
        except (OSError, ValueError) as err:
            raise UsageError(
                f"--resume {args.resume!r}: no readable config.json there "
                f"({err.__class__.__name__}); pass the --output of an earlier "
                "optlab train"
            ) from None
        if args.epochs is not None:
            cfg["epochs"] = args.epochs
        cfg["no_progress"] = args.no_progress
        if latest_epoch(run_dir / "checkpoints") is None:
            raise UsageError(
                f"--resume {args.resume!r}: no complete checkpoint in {run_dir / 'checkpoints'}"
            )
    else:
        cfg = _cfg_from_args(args)
        run_dir = None
    out = _check_output(cfg["output"] if run_dir is None else str(run_dir))
    ds, train_data, val_data, split = _load_data(cfg)
    model = _model(cfg, ds)
    n_train = int(len(train_data[0]) * (1 - split))
    full_batch = _choose("optimizer", cfg["optimizer"], _optimizer_names()) == "lbfgs"
    batch = n_train if full_batch else min(cfg["batch_size"], n_train)
    tx, desc = _optimizer(cfg, max(n_train // batch, 1))
    (out / "config.json").write_text(json.dumps(cfg, indent=1))

    callbacks: list[Any] = [
        cbs.ModelCheckpoint(
            out / "checkpoints", every_n_epochs=cfg["checkpoint_every"], max_to_keep=3
        )
    ]
    if cfg.get("early_stopping") is not None:
        callbacks.insert(0, cbs.EarlyStopping(monitor="val_loss", patience=cfg["early_stopping"]))
    start = time.perf_counter()
    history, model = fit(
        model,
        tx,
        train_data,
        loss=_loss(),
        epochs=cfg["epochs"],
        batch_size=batch,
        validation_split=split,
        validation_data=val_data,
        callbacks=callbacks,
        seed=cfg["seed"],
        progress=not cfg["no_progress"],
        resume_from=(out / "checkpoints") if run_dir is not None else None,
    )
    elapsed = time.perf_counter() - start
    history.save_json(out / "history.json")
    history.save_csv(out / "history.csv")
    _plot(
        {desc["name"]: history},
        out / "curves.png",
        f"{desc['name']} on {cfg['dataset']}, MLP {cfg['hidden']}",
    )
    last = {
        k: history[k][-1] for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in history
    }
    print(
        f"{desc['name']}: "
        + "  ".join(f"{k} {v:.4f}" for k, v in last.items())
        + f"  ({len(history)} epochs, {elapsed:.1f} s) -> {out}"
    )
    return 0


def _compare(args: argparse.Namespace) -> int:
    import numpy as np

    from optlab.train.fit import fit

    cfg = _cfg_from_args(args)
    known = _optimizer_names()
    names = [_choose("optimizer", n, known) for n in args.optimizers.split(",") if n.strip()]
    if not names:
        raise UsageError("--optimizers must name at least one optimizer")
    out = _check_output(cfg["output"])
    ds, train_data, val_data, split = _load_data(cfg)
    _model(cfg, ds)  # validates the model options before any training
    n_train = int(len(train_data[0]) * (1 - split))
    batch = min(cfg["batch_size"], n_train)
    runs: dict[str, Any] = {}
    histories: dict[str, Any] = {}
    for name in names:
        run_cfg = {**cfg, "optimizer": name, "lr": None, "schedule": "constant", "warmup_epochs": 0}
        full_batch = name == "lbfgs"
        epochs = (cfg["lbfgs_iterations"] or cfg["epochs"]) if full_batch else cfg["epochs"]
        tx, desc = _optimizer({**run_cfg, "epochs": epochs}, max(n_train // batch, 1))
        start = time.perf_counter()
        history, _ = fit(
            _model(cfg, ds),
            tx,
            train_data,
            loss=_loss(),
            epochs=epochs,
            batch_size=n_train if full_batch else batch,
            validation_split=split,
            validation_data=val_data,
            seed=cfg["seed"],
            progress=False,
        )
        elapsed = time.perf_counter() - start
        label = f"{name} (full batch)" if full_batch else name
        histories[label] = history
        best_epoch, best_val = history.best("val_loss")
        steady = history["steps_per_second"][1:] or history["steps_per_second"]
        runs[label] = {
            "optimizer": desc,
            "epochs": len(history),
            "batch_size": n_train if full_batch else batch,
            "train_loss": history["loss"][-1],
            "train_accuracy": history["accuracy"][-1],
            "val_loss": history["val_loss"][-1],
            "val_accuracy": history["val_accuracy"][-1],
            "best_epoch": best_epoch,
            "best_val_loss": best_val,
            "seconds": elapsed,
            "steps_per_second": float(np.median(steady)),
            "history": history.to_dict(),
        }
        if not args.no_progress:
            print(
                f"{label:>20}: val_accuracy {runs[label]['val_accuracy']:.4f}  ({elapsed:.1f} s)",
                flush=True,
            )
    what = "validation split" if split else "test split"
    table = _table(runs)
    print(
        f"\n{ds.name}: MLP {ds.num_features}-{'-'.join(map(str, cfg['hidden']))}-"
        f"{ds.num_classes} ({cfg['activation']}, {cfg['init']}), {cfg['epochs']} epochs, "
        f"batch {batch}, seed {cfg['seed']}; validation = {what}"
    )
    print(table)
    _plot(
        histories,
        out / "compare.png",
        f"{ds.name}: optimizers on one MLP ({cfg['epochs']} epochs, batch {batch})",
    )
    (out / "compare.json").write_text(json.dumps({"config": cfg, "runs": runs}, indent=1))
    print(f"wrote {out / 'compare.png'} and {out / 'compare.json'}")
    return 0


def _table(runs: dict[str, Any]) -> str:
    head = (
        "optimizer",
        "train loss",
        "train acc",
        "val loss",
        "val acc",
        "best epoch",
        "time s",
        "steps/s",
    )
    rows = [
        (
            name,
            f"{r['train_loss']:.4f}",
            f"{r['train_accuracy']:.4f}",
            f"{r['val_loss']:.4f}",
            f"{r['val_accuracy']:.4f}",
            str(r["best_epoch"]),
            f"{r['seconds']:.1f}",
            f"{r['steps_per_second']:.0f}",
        )
        for name, r in runs.items()
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    lines = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(head, widths, strict=True))
        )
    ]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``optlab`` command; returns the exit status (2 for bad input)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        if args.command == "train":
            return _train(args)
        return _compare(args)
    except UsageError as err:
        print(f"optlab: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("optlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
