"""The ``optlab`` command: training, comparing, evaluating, tuning, diagnosing and benchmarking.

A thin parser over library functions a notebook can call too: :mod:`optlab.train.recipes`
builds the data, model and transformation from a configuration, :mod:`optlab.train.report`
writes tables, plots and JSON, :mod:`optlab.optimizers.registry` says what each optimizer and
schedule takes. Bad input exits with status 2 and one line on standard error, never a
traceback; everything that can be checked without jax is checked before jax is imported, so
``optlab --help`` and those errors answer at once.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

from optlab.cli import diagnose, tuning
from optlab.cli.options import (
    UsageError,
    add_batch_size,
    add_optimizer_options,
    add_seed,
    hidden_sizes,
    keyword,
    nonempty,
    number,
    one_line,
    residual_flags,
)

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
DEFAULT_EPOCHS = 20


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would print usage and exit itself
        # "argument --lr: --lr must be >= 0" -> "--lr must be >= 0"
        raise UsageError(re.sub(r"^argument (\S+): \1 ", r"\1 ", message))


def _schedule_help() -> str:
    from optlab.schedules.registry import SCHEDULES

    return ", ".join(SCHEDULES)


def _add_data_options(p: argparse.ArgumentParser, *, defaults: bool = True) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--dataset",
        type=nonempty("--dataset"),
        default="digits" if defaults else None,
        metavar="NAME|FILE",
        help="a dataset (digits, mnist1d, fashion_mnist, mnist, blobs, two_spirals) or a "
        "file: .npz with x_train, y_train (and optionally x_test, y_test), or .csv with "
        "--target" + (" (default: %(default)s)" if defaults else "") + "; optlab train "
        "--dataset NAME fills the options not given from NAME's recommended recipe (digits, "
        "mnist1d, fashion_mnist; README: Recommended recipes); without --dataset: digits "
        "with the defaults shown",
    )
    g.add_argument(
        "--target",
        type=nonempty("--target"),
        default=None,
        metavar="COLUMN",
        help="the label column of a .csv --dataset (integers: classes; reals: regression)",
    )
    g.add_argument(
        "--data-dir",
        type=nonempty("--data-dir"),
        default=None,
        metavar="DIR",
        help="directory with the IDX files of fashion_mnist / mnist",
    )


def _add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument(
        "--hidden",
        type=hidden_sizes,
        default=None,
        metavar="N[,N...]",
        help="hidden layer widths, comma-separated; 'none' for a linear model (default: 64, "
        "or the dataset's recommended recipe)",
    )
    g.add_argument(
        "--residual",
        type=residual_flags,
        default=None,
        metavar="all|none|B[,B...]",
        help="residual hidden layers: all, none, or one true/false per layer (default: none, "
        "or the dataset's recommended recipe)",
    )
    g.add_argument(
        "--activation",
        type=nonempty("--activation"),
        default=None,
        help="hidden activation by name (relu, tanh, gelu, leaky_relu, ...; default: relu)",
    )
    g.add_argument(
        "--init",
        type=nonempty("--init"),
        default=None,
        help="weight initializer by name (he_normal, glorot_uniform, ...; default: he_normal)",
    )
    g.add_argument(
        "--norm",
        type=nonempty("--norm"),
        default=None,
        help="normalization after each hidden Dense: none, batch, layer or group (default: none)",
    )
    g.add_argument(
        "--dropout",
        type=number("--dropout", minimum=0.0, below=1.0),
        default=None,
        help="dropout rate after each hidden activation, in [0, 1) (default: 0)",
    )


def _add_schedule_options(g: argparse._ArgumentGroup) -> None:
    g.add_argument(
        "--schedule",
        type=nonempty("--schedule"),
        default=None,
        help=f"learning-rate schedule over the run: {_schedule_help()} (default: constant; "
        "the learning rate is its peak)",
    )
    g.add_argument(
        "--schedule-opt",
        action="append",
        type=keyword("--schedule-opt"),
        default=None,
        metavar="NAME=VALUE",
        help="a parameter of the schedule, e.g. --schedule-opt alpha=0.1 (cosine) or "
        "--schedule-opt boundaries=10,15 (step, in epochs); repeatable; the README lists "
        "each schedule's parameters",
    )
    g.add_argument(
        "--warmup-epochs",
        type=number("--warmup-epochs", minimum=0, integer=True, maximum=1_000_000),
        default=None,
        help="linear warmup from 0 over this many epochs, before the schedule (default: 0)",
    )


def _add_run_options(p: argparse.ArgumentParser, *, output: str) -> None:
    g = p.add_argument_group("run")
    g.add_argument(
        "--epochs",
        type=number("--epochs", minimum=1, integer=True, maximum=1_000_000),
        default=None,
        help=f"number of epochs (default: {DEFAULT_EPOCHS}; with --resume: the total to "
        "reach, default the run's own)",
    )
    add_batch_size(g, "rows per step (default: 32; full-batch methods use every row)")
    g.add_argument(
        "--validation-split",
        type=number("--validation-split", minimum=0.0, below=1.0),
        default=None,
        help="hold out this fraction of the training rows (stratified) for validation; 0 "
        "(default) validates on the dataset's test split",
    )
    add_seed(g, "seed of the initial weights, the data order and the split (default: 0)")
    g.add_argument(
        "--output",
        type=nonempty("--output"),
        default=None,
        metavar="DIR",
        help=f"output directory; refused if it already holds a run (default: {output})",
    )
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="clear the run already in --output (its files only) before writing",
    )
    g.add_argument("--no-progress", action="store_true", help="print no line per epoch")


def build_parser() -> argparse.ArgumentParser:
    """The ``optlab`` argument parser."""
    parser = _Parser(
        prog="optlab",
        description="Train Flax MLPs with optlab optimizers, compare the optimizers, and "
        "evaluate or apply a trained model.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="store_true", help="print optlab's version")
    sub = parser.add_subparsers(
        dest="command",
        metavar="{train,compare,evaluate,predict,diagnose,lr-find,check,sweep,bench}",
        parser_class=_Parser,
    )

    train = sub.add_parser(
        "train",
        allow_abbrev=False,
        help="train one MLP; write its model, history, curves and checkpoints",
        description="Train one MLP. Writes config.json, checkpoints/, model/ (the final "
        "model: the best one when early stopping restored it), run.json, history.json, "
        "history.csv and curves.png to --output; --resume DIR continues such a run exactly.",
    )
    _add_data_options(train, defaults=False)
    _add_model_options(train)
    g = add_optimizer_options(train)
    _add_schedule_options(g)
    g.add_argument(
        "--clip-norm",
        type=number("--clip-norm", positive=True),
        default=None,
        help="clip the gradients' global norm to this value",
    )
    g.add_argument(
        "--weight-decay",
        type=number("--weight-decay", minimum=0.0),
        default=None,
        help="weight decay: decoupled for adamw/nadamw/adadelta, an L2 term added to the "
        "gradient for the others; refused by full-batch methods",
    )
    g.add_argument(
        "--early-stopping",
        type=number("--early-stopping", minimum=0, integer=True, maximum=1_000_000),
        default=None,
        metavar="PATIENCE",
        help="stop when val_loss has not improved for PATIENCE epochs; the best weights are "
        "restored and saved",
    )
    _add_run_options(train, output="runs/train")
    train.add_argument(
        "--checkpoint-every",
        type=number("--checkpoint-every", minimum=1, integer=True, maximum=1_000_000),
        default=None,
        metavar="N",
        help="write a checkpoint every N epochs (default: 1)",
    )
    train.add_argument(
        "--resume",
        type=nonempty("--resume"),
        default=None,
        metavar="DIR",
        help="continue the run in DIR (an earlier --output) up to --epochs, with its saved "
        "configuration; options that would change the run are refused",
    )
    train.add_argument(
        "--diagnostics",
        action="store_true",
        help="record per-layer statistics (optlab.diagnostics.Monitor) and write "
        "diagnostics.npz, diagnostics.json and diagnostics.png with the verdicts",
    )

    compare = sub.add_parser(
        "compare",
        allow_abbrev=False,
        help="train the same MLP with each optimizer; table, PNG and JSON",
        description="Train the same MLP on the same data with each optimizer at its "
        "registered default hyperparameters (optlab.optimizers.registry); --dataset NAME "
        "brings NAME's recommended recipe for the options not given (its learning rate only "
        "to its own optimizer), as optlab train does; full-batch methods "
        "(L-BFGS) take one line-searched step per epoch on every row. Prints a table and "
        "writes compare.png and compare.json to --output.",
    )
    _add_data_options(compare, defaults=False)
    _add_model_options(compare)
    g = compare.add_argument_group("optimizers")
    g.add_argument(
        "--optimizers",
        type=nonempty("--optimizers"),
        default=",".join(COMPARE_DEFAULT),
        help="comma-separated optimizer names (default: %(default)s)",
    )
    g.add_argument(
        "--full-batch-epochs",
        type=number("--full-batch-epochs", minimum=1, integer=True, maximum=1_000_000),
        default=None,
        metavar="N",
        help="epochs (one step each) of the full-batch methods (default: --epochs)",
    )
    _add_schedule_options(g)
    tuning.add_compare_tune(g)
    _add_run_options(compare, output="runs/compare")

    evaluate = sub.add_parser(
        "evaluate",
        allow_abbrev=False,
        help="print the metrics of a trained model",
        description="Evaluate the model saved by optlab train in RUN: by default on the "
        "run's own validation data; with --dataset, on that dataset's test split (or, for "
        "a file without one, all its rows).",
    )
    evaluate.add_argument("run", type=nonempty("RUN"), metavar="RUN", help="a run directory")
    _add_data_options(evaluate, defaults=False)
    evaluate.add_argument(
        "--split",
        choices=("train", "test"),
        default=None,
        help="evaluate on this split of --dataset instead (train or test)",
    )
    add_batch_size(evaluate, "rows per evaluation batch (default: all at once)")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")

    predict = sub.add_parser(
        "predict",
        allow_abbrev=False,
        help="write a trained model's predictions for new inputs",
        description="Apply the model saved by optlab train in RUN to the rows of --input "
        "(.npy, or .csv of numbers with an optional header) and write one CSV row per input: "
        "the class probabilities and the predicted class (or the predicted values).",
    )
    predict.add_argument("run", type=nonempty("RUN"), metavar="RUN", help="a run directory")
    predict.add_argument(
        "--input",
        type=nonempty("--input"),
        required=True,
        metavar="X.npy|X.csv",
        help="the inputs, one row per example",
    )
    predict.add_argument(
        "--output",
        type=nonempty("--output"),
        required=True,
        metavar="P.csv",
        help="where to write the predictions (refused if it exists, unless --overwrite)",
    )
    predict.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    add_batch_size(predict, "rows per prediction batch (default: all at once)")
    diagnose.add_parser(sub)
    tuning.add_commands(
        sub,
        data_options=_add_data_options,
        model_options=_add_model_options,
        run_options=_add_run_options,
    )

    from optlab.cli.bench import add_parser as add_bench

    add_bench(sub, _Parser)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line: ``optlab: warning: <message>`` (e.g. a damaged checkpoint that
    was skipped)."""
    print(f"optlab: warning: {one_line(message)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None, *, compilation_cache: bool | None = None) -> int:
    """Runs the ``optlab`` command; returns the exit status (2 for bad input).

    Args:
      argv: the arguments (default: ``sys.argv[1:]``).
      compilation_cache: use JAX's persistent compilation cache under the optlab cache
        directory (``$OPTLAB_CACHE_DIR/jax``); default: when ``argv`` is None (the installed
        command), so calls from Python leave jax's configuration alone.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.version:
            from importlib.metadata import version

            print(f"optlab {version('optlab')}")
            return 0
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        from optlab.cli import commands

        args.compilation_cache = argv is None if compilation_cache is None else compilation_cache
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            # The engine's notice that it skipped a damaged checkpoint is for the user.
            warnings.filterwarnings("always", r"checkpoint .* is damaged")
            if args.command in ("lr-find", "check", "sweep"):
                return tuning.run(args)
            return commands.run(args)
    except UsageError as err:
        print(f"optlab: error: {one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("optlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
