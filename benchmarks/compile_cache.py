"""How much JAX's persistent compilation cache saves a second ``optlab train``.

Runs ``optlab train`` twice, each in a fresh process, with an empty cache directory
(``$OPTLAB_CACHE_DIR``) before the first: the first run compiles and fills the cache, the
second one (same architecture and options, another output directory) reads it. Each process
sums JAX's own compile-time events (``jax.monitoring``: tracing, lowering to MLIR, the XLA
backend compile or the cache read) and the wall time of its first epoch (which includes
them). Writes ``benchmarks/results/compile_cache.json``.

    python benchmarks/compile_cache.py [--epochs 2] [--hidden 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

try:  # imported as benchmarks.NAME (tests, python -m)
    from benchmarks.common import machine, write_json
except ModuleNotFoundError:  # run as python benchmarks/NAME.py: its folder is sys.path[0]
    from common import machine, write_json

CHILD = r"""
import json, sys, time
from collections import defaultdict
import jax
events = defaultdict(float)
jax.monitoring.register_event_duration_secs_listener(
    lambda name, secs, **kw: events.__setitem__(name, events[name] + secs))
from optlab.cli.main import main
start = time.perf_counter()
code = main(sys.argv[1:], compilation_cache=True)
wall = time.perf_counter() - start
history = json.load(open(sys.argv[sys.argv.index("--output") + 1] + "/history.json"))
print(json.dumps({"code": code, "wall": wall, "first_epoch": history["time"][0],
                  "events": dict(events)}))
"""

COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


def run_once(args: list[str], cache: str, output: str) -> dict:
    env = {**os.environ, "OPTLAB_CACHE_DIR": cache, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, "train", *args, "--output", output, "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    events = result.pop("events")
    result["compile_seconds"] = {k.rsplit("/", 1)[-1]: events.get(k, 0.0) for k in COMPILE_EVENTS}
    result["compile_total"] = sum(events.get(k, 0.0) for k in COMPILE_EVENTS)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--hidden", default="64")
    p.add_argument("--repeats", type=int, default=3)
    opts = p.parse_args()
    args = ["--epochs", str(opts.epochs), "--hidden", opts.hidden]
    pairs = []
    for r in range(opts.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            cache = os.path.join(tmp, "cache")
            first = run_once(args, cache, os.path.join(tmp, "a"))
            second = run_once(args, cache, os.path.join(tmp, "b"))
            pairs.append({"first": first, "second": second})
            ratio = second["compile_total"] / first["compile_total"]
            print(
                f"repeat {r + 1}: compile {first['compile_total']:.2f} s -> "
                f"{second['compile_total']:.2f} s (ratio {ratio:.3f}); first epoch "
                f"{first['first_epoch']:.2f} s -> {second['first_epoch']:.2f} s",
                flush=True,
            )
    ratios = [q["second"]["compile_total"] / q["first"]["compile_total"] for q in pairs]
    epoch_ratios = [q["second"]["first_epoch"] / q["first"]["first_epoch"] for q in pairs]
    summary = {
        "benchmark": "compile_cache",
        "args": args,
        **machine(),
        "compile_ratio_median": statistics.median(ratios),
        "first_epoch_ratio_median": statistics.median(epoch_ratios),
        "runs": pairs,
    }
    path = write_json(summary, "compile_cache.json")
    print(
        f"median: compile time ratio {summary['compile_ratio_median']:.3f}, first-epoch time "
        f"ratio {summary['first_epoch_ratio_median']:.3f} -> {path}"
    )


if __name__ == "__main__":
    main()
