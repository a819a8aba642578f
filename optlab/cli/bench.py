"""``optlab bench``: the optimizer benchmark suite (:mod:`optlab.train.suite`).

Checks its arguments in plain Python, then runs the suite and writes report.md, suite.json,
profiles.png and sensitivity.png to ``--output``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from optlab.cli.commands import enable_compilation_cache
from optlab.cli.main import COMPARE_DEFAULT
from optlab.cli.options import UsageError, nonempty, number, one_line

# optlab.train.suite's names, without jax (tests/cli/test_bench.py checks they agree).
WORKLOADS = ("digits", "mnist1d", "fashion_mnist", "two_spirals")
BENCH_OPTIMIZERS = COMPARE_DEFAULT  # the lectures' optimizers, as optlab compare's
REPORT_FILES = ("report.md", "suite.json", "profiles.png", "sensitivity.png")
TARGETS = Path(__file__).resolve().parents[2] / "benchmarks" / "targets.json"


def add_parser(sub: Any, parser_class: Any) -> None:
    """Registers ``bench`` on the subparsers ``sub``."""
    p = sub.add_parser(
        "bench",
        allow_abbrev=False,
        help="benchmark the optimizers: time to a target, tuned and default (AlgoPerf-style)",
        description="For each workload and optimizer: the registry defaults, and 3 studies x "
        "5 quasi-random trials from a declared search space (one vmapped program per group of 3 "
        "optimizers); "
        "steps and seconds to the target validation accuracy (median, IQR), final test "
        "accuracy over 10 seeds, learning-rate sensitivity, performance profiles and "
        "AlgoPerf's integrated score. Writes report.md, suite.json, profiles.png and "
        "sensitivity.png to --output.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a small run (under a minute of CPU): digits and two_spirals with sgd, momentum "
        "and adam, 2 studies x 3 trials, 5 seeds, at the full epoch budget",
    )
    p.add_argument(
        "--workloads",
        type=nonempty("--workloads"),
        default=None,
        help=f"comma-separated, of {', '.join(WORKLOADS)} (default: all; --quick: digits, "
        "two_spirals)",
    )
    p.add_argument(
        "--optimizers",
        type=nonempty("--optimizers"),
        default=None,
        help=f"comma-separated, of {', '.join(BENCH_OPTIMIZERS)} (default: all; --quick: sgd, "
        "momentum, adam)",
    )
    p.add_argument(
        "--targets",
        type=nonempty("--targets"),
        default=None,
        metavar="FILE",
        help="targets JSON (default: the repository's benchmarks/targets.json)",
    )
    p.add_argument(
        "--seed",
        type=number("--seed", minimum=0, integer=True, maximum=2**31 - 1),
        default=0,
        help="the one seed every run derives from (default: 0)",
    )
    p.add_argument(
        "--output",
        type=nonempty("--output"),
        default="runs/bench",
        metavar="DIR",
        help="output directory (default: %(default)s); refused if it holds a report",
    )
    p.add_argument("--overwrite", action="store_true", help="replace the report in --output")


def _names(text: str | None, choices: tuple[str, ...], flag: str) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip().lower().replace("-", "_") for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in choices]
    if bad or not names:
        raise UsageError(
            f"{flag}: unknown {', '.join(bad) or 'empty list'} (choices: {', '.join(choices)})"
        )
    if len(set(names)) != len(names):
        raise UsageError(f"{flag} names one more than once: {text}")
    return names


def bench(args: argparse.Namespace) -> int:
    """Runs the suite; returns the exit status."""
    workloads = _names(args.workloads, WORKLOADS, "--workloads")
    optimizers = _names(args.optimizers, BENCH_OPTIMIZERS, "--optimizers")
    path = Path(args.targets) if args.targets else TARGETS
    try:
        targets = json.loads(path.read_text())["workloads"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UsageError(f"--targets {str(path)!r}: unreadable ({one_line(err)})") from None
    missing = [w for w in (workloads or WORKLOADS) if "target" not in targets.get(w, {})]
    if missing:
        raise UsageError(f"--targets {str(path)!r} has no target for {', '.join(missing)}")
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--output {args.output!r} is a file, not a directory")
    ours = [f for f in REPORT_FILES if (out / f).exists()]
    if ours and not args.overwrite:
        raise UsageError(
            f"--output {args.output!r} already holds a report ({', '.join(ours)}); replace it "
            "with --overwrite, or choose another directory"
        )
    # A repeated run reads its programs from JAX's persistent cache (the suite times steps,
    # never compilation, so its results do not change).
    enable_compilation_cache(getattr(args, "compilation_cache", False))
    from optlab.train.suite import run_suite
    from optlab.train.suite_report import write_report

    results = run_suite(
        quick=args.quick,
        seed=args.seed,
        workloads=workloads,
        optimizers=optimizers,
        targets=targets,
        log=lambda line: print(line, flush=True),
    )
    written = write_report(results, out)
    print(f"wrote {', '.join(str(p) for p in written)} ({results['seconds']:.0f} s)")
    return 0
