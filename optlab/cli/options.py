"""What the command checks before importing jax: value types, names, files.

Every check here is plain Python, so bad input is answered in a few tens of milliseconds. The
names of datasets, activations, initializers and norms are listed here because their
libraries import jax and flax; ``tests/cli/test_options.py`` checks that each list equals
the library's own.
"""

from __future__ import annotations

import argparse
import difflib
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DATASETS = ("blobs", "digits", "fashion_mnist", "mnist", "mnist1d", "two_spirals")
IDX_DATASETS = ("fashion_mnist", "mnist")  # the ones that take --data-dir
ACTIVATIONS = (
    "celu",
    "elu",
    "gelu",
    "hard_tanh",
    "identity",
    "leaky_relu",
    "linear",
    "maxout",
    "prelu",
    "relu",
    "relu6",
    "rrelu",
    "selu",
    "sigmoid",
    "silu",
    "softplus",
    "swish",
    "tanh",
)
INITIALIZERS = (
    "constant",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "lecun_normal",
    "lecun_uniform",
    "normal",
    "ones",
    "orthogonal",
    "torch_default",
    "truncated_normal",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
)
NORMS = ("none", "batch", "group", "layer")
DATA_SUFFIXES = (".npz", ".csv")
MAX_EPOCHS = 1_000_000
MAX_WIDTH = 65_536


class UsageError(Exception):
    """Bad input: reported as one line on standard error, exit status 2."""


def one_line(message: Any) -> str:
    """``message`` on one line (newlines and runs of spaces collapsed)."""
    return " ".join(str(message).split())


def choose(kind: str, name: str, choices: Sequence[str]) -> str:
    """``name`` normalised (case, ``-`` for ``_``) if it is a choice, else a
    :class:`UsageError` with a did-you-mean suggestion and the choices."""
    key = str(name).strip().lower().replace("-", "_")
    if key in choices:
        return key
    close = difflib.get_close_matches(key, choices, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise UsageError(f"unknown {kind} {name!r}{hint} (choices: {', '.join(choices)})")


# ---------------------------------------------------------------------------------------------
# argparse types: each refuses a bad value with one line naming the option


def number(
    kind: str,
    *,
    minimum: float | None = None,
    positive: bool = False,
    below: float | None = None,
    integer: bool = False,
    maximum: float | None = None,
):
    """An argparse type for a finite number (or integer) with bounds."""

    def parse(text: str) -> float | int:
        what = "an integer" if integer else "a number"
        try:
            value: float | int = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{kind} must be {what}, got {text!r}") from None
        if not integer and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{kind} must be finite, got {text!r}")
        if positive and value <= 0:
            raise argparse.ArgumentTypeError(f"{kind} must be > 0, got {text!r}")
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"{kind} must be >= {minimum:g}, got {text!r}")
        if below is not None and value >= below:
            raise argparse.ArgumentTypeError(f"{kind} must be < {below:g}, got {text!r}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{kind} must be <= {maximum:g}, got {text!r}")
        return value

    return parse


def hidden_sizes(text: str) -> tuple[int, ...]:
    """``64,32`` -> (64, 32); ``none`` -> () (a linear model)."""
    if text.strip().lower() == "none":
        return ()
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--hidden must be comma-separated integers such as 64,64 (or none), got {text!r}"
        ) from None
    if any(not 1 <= s <= MAX_WIDTH for s in sizes):
        raise argparse.ArgumentTypeError(
            f"--hidden widths must be integers in [1, {MAX_WIDTH}], got {text!r}"
        )
    return sizes


def residual_flags(text: str) -> bool | tuple[bool, ...]:
    """``all`` -> True, ``none`` -> False, ``false,true`` (or ``0,1``) -> one flag per layer."""
    words = {"all": True, "none": False}
    flags = {"true": True, "false": False, "1": True, "0": False}
    key = text.strip().lower()
    if key in words:
        return words[key]
    parts = [p.strip() for p in key.split(",")]
    if not all(p in flags for p in parts):
        raise argparse.ArgumentTypeError(
            f"--residual must be all, none or one true/false per hidden layer such as "
            f"false,true, got {text!r}"
        )
    return tuple(flags[p] for p in parts)


def keyword(option: str):
    """An argparse type for ``NAME=VALUE`` (``--opt``, ``--schedule-opt``)."""

    def parse(text: str) -> tuple[str, Any]:
        from optlab.schedules.registry import parse_value

        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise argparse.ArgumentTypeError(f"{option} takes NAME=VALUE, got {text!r}")
        if not value.strip():
            raise argparse.ArgumentTypeError(f"{option} {name}: the value is empty")
        return name, parse_value(value)

    return parse


def nonempty(kind: str):
    """An argparse type for a non-empty string (a name, a path)."""

    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{kind} must not be empty")
        if "\x00" in text:
            raise argparse.ArgumentTypeError(f"{kind} must not contain a NUL character")
        return text

    return parse


def keywords(pairs: Sequence[tuple[str, Any]], option: str) -> dict[str, Any]:
    """``[(name, value)]`` -> dict; a name given twice is a :class:`UsageError`."""
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise UsageError(f"{option} {name} is given twice")
        out[name] = value
    return out


# ---------------------------------------------------------------------------------------------
# Files


def is_data_file(name: str) -> bool:
    """Whether ``--dataset`` names a file rather than a bundled dataset."""
    lowered = name.lower()
    return lowered.endswith(DATA_SUFFIXES) or os.sep in name or "/" in name


def readable_file(option: str, path: str, suffixes: Sequence[str]) -> Path:
    """``path`` if it is a readable file with one of ``suffixes``, else a UsageError."""
    p = Path(path)
    if not p.name.lower().endswith(tuple(suffixes)):
        raise UsageError(
            f"{option} {path!r}: expected a {' or '.join(suffixes)} file"
            + ("" if "/" in path else f" or a dataset name ({', '.join(DATASETS)})")
            * (option == "--dataset")
        )
    if not p.exists():
        raise UsageError(f"{option} {path!r}: no such file")
    if not p.is_file():
        raise UsageError(f"{option} {path!r}: not a regular file")
    if not os.access(p, os.R_OK):
        raise UsageError(f"{option} {path!r}: not readable (permission denied)")
    return p


def check_dataset_options(args: argparse.Namespace) -> str:
    """Checks ``--dataset`` / ``--target`` / ``--data-dir`` together; returns the dataset
    (a normalised name, or the file path)."""
    dataset = args.dataset
    target = getattr(args, "target", None)
    if is_data_file(dataset):
        path = readable_file("--dataset", dataset, DATA_SUFFIXES)
        if args.data_dir is not None:
            raise UsageError("--data-dir applies to the IDX datasets fashion_mnist and mnist")
        if path.suffix.lower() == ".csv" and target is None:
            raise UsageError(
                f"--dataset {dataset!r} is a CSV file: name its label column with --target"
            )
        if path.suffix.lower() == ".npz" and target is not None:
            raise UsageError("--target applies to .csv files (a .npz file holds y_train)")
        return dataset
    name = choose("dataset", dataset, DATASETS)
    if target is not None:
        raise UsageError(f"--target applies to .csv files, not the dataset {name}")
    if args.data_dir is not None:
        if name not in IDX_DATASETS:
            raise UsageError(
                f"--data-dir applies to the IDX datasets {' and '.join(IDX_DATASETS)}, not {name}"
            )
        d = Path(args.data_dir)
        if not d.is_dir():
            raise UsageError(f"--data-dir {args.data_dir!r}: not a directory")
    return name


# ---------------------------------------------------------------------------------------------
# Option groups shared by the commands

MAX_SEED = 2**32 - 1
MAX_ROWS = 2**31 - 1


def add_optimizer_options(
    parser: argparse.ArgumentParser, *, lr: bool = True
) -> argparse._ArgumentGroup:
    """Adds the ``optimizer`` group (``--optimizer``, ``--lr`` unless ``lr=False``,
    ``--momentum``, ``--opt``) to ``parser`` and returns it, for a command's own options."""
    g = parser.add_argument_group("optimizer")
    g.add_argument(
        "--optimizer",
        type=nonempty("--optimizer"),
        default=None,
        help="optimizer name (sgd, momentum, nesterov, adagrad, rmsprop, adadelta, adam, "
        "adamw, nadam, lbfgs, ...; default: adam)",
    )
    if lr:
        g.add_argument(
            "--lr",
            type=number("--lr", minimum=0.0),
            default=None,
            help="learning rate (with a schedule: its peak; default: the optimizer's "
            "registered default)",
        )
    g.add_argument(
        "--momentum",
        type=number("--momentum", minimum=0.0, below=1.0),
        default=None,
        help="momentum, for the optimizers that take one (sgd, momentum, nesterov, rmsprop)",
    )
    g.add_argument(
        "--opt",
        action="append",
        default=None,
        type=keyword("--opt"),
        metavar="NAME=VALUE",
        help="any other keyword of the optimizer's factory, e.g. --opt b1=0.95 --opt eps=1e-7 "
        "(repeatable; numbers or true/false)",
    )
    return g


def add_batch_size(group: Any, help: str) -> None:
    """Adds ``--batch-size`` (an integer in [1, 2**31 - 1]) to ``group``."""
    group.add_argument(
        "--batch-size",
        type=number("--batch-size", minimum=1, integer=True, maximum=MAX_ROWS),
        default=None,
        help=help,
    )


def add_seed(group: Any, help: str) -> None:
    """Adds ``--seed`` (an integer in [0, 2**32 - 1]) to ``group``."""
    group.add_argument(
        "--seed",
        type=number("--seed", minimum=0, integer=True, maximum=MAX_SEED),
        default=None,
        help=help,
    )
