"""The optimizer benchmark suite (optlab.train.suite; ``optlab bench`` runs the same).

    .venv/bin/python benchmarks/suite.py [--quick] [--output benchmarks/results/suite]
    .venv/bin/python benchmarks/suite.py --derive-targets   # rewrites benchmarks/targets.json
    .venv/bin/python benchmarks/suite.py --rerender --readme README.md   # README's tables again

The report (report.md, suite.json, profiles.png, sensitivity.png) goes to --output. With
--readme FILE, the report (its tables, at heading level 4) also replaces the text between
FILE's markers ``<!-- optlab bench report: begin -->`` and ``<!-- ... end -->``: after a run,
or from --output's suite.json with --rerender.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

try:  # imported as benchmarks.suite (tests, python -m)
    from benchmarks.common import machine, write_json
except ModuleNotFoundError:  # run as python benchmarks/suite.py: its folder is sys.path[0]
    from common import machine, write_json

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workloads", default=None)
    parser.add_argument("--optimizers", default=None)
    parser.add_argument("--output", default=str(HERE / "results" / "suite"))
    parser.add_argument("--derive-targets", action="store_true")
    parser.add_argument(
        "--rerender", action="store_true", help="rewrite the report from --output's suite.json"
    )
    parser.add_argument(
        "--readme", default=None, metavar="FILE", help="embed the report between FILE's markers"
    )
    args = parser.parse_args()
    from optlab.train import suite
    from optlab.train.suite_report import write_report

    if args.rerender:  # the summary and report again, from the measured results
        results = json.loads((Path(args.output) / "suite.json").read_text())
        results["summary"] = suite.summarize_results(results)
        print("wrote", ", ".join(map(str, write_report(results, args.output))))
        return embed_readme(results, args)
    split = lambda s: [n.strip() for n in s.split(",")] if s else None
    if args.derive_targets:
        path = HERE / "targets.json"
        old = json.loads(path.read_text())["workloads"] if path.is_file() else {}
        for name in split(args.workloads) or list(suite.WORKLOADS):
            try:
                old[name] = suite.derive_targets(name, seed=args.seed)
            except (OSError, ValueError) as err:  # Fashion-MNIST not installed
                print(f"{name}: skipped ({err})")
                continue
            record = {
                "format": "optlab.bench.targets/2",
                "note": "validation accuracy targets, each with its 'rule' and 'budget' "
                "(optlab.train.suite.derive_targets)",
                "environment": machine(),
                "workloads": old,
            }
            print(f"wrote {write_json(record, path)}")  # after each workload
        return 0
    targets = suite.load_targets(HERE / "targets.json")
    results = suite.run_suite(
        quick=args.quick,
        seed=args.seed,
        workloads=split(args.workloads),
        optimizers=split(args.optimizers),
        targets=targets,
        log=lambda line: print(line, flush=True),
    )
    results["environment"] = machine()
    written = write_report(results, args.output)
    print("wrote", ", ".join(map(str, written)), f"({results['seconds']:.0f} s)")
    return embed_readme(results, args)


def embed_readme(results: dict, args: argparse.Namespace) -> int:
    """With --readme: the report between the file's markers, its PNGs linked from there."""
    if not args.readme:
        return 0
    from optlab.train.suite_report import embed

    readme = Path(args.readme)
    images = Path(os.path.relpath(Path(args.output).resolve(), readme.resolve().parent))
    readme.write_text(embed(readme.read_text(), results, images=f"{images.as_posix()}/"))
    print(f"wrote the report into {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
