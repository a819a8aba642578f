"""Throughput of one optimizer step (update and apply) for N float32 parameters.

Side by side in one run: optlab, optax and, when torch is importable, ``torch.optim`` with
``foreach`` and ``fused`` implementations, next to a STREAM-like bandwidth measurement (triad
``a = b + s c``) that gives the memory-bound speed of light. Also measures the per-leaf cost of
a jitted step on a pytree of many small leaves.

Every JAX step is ``jax.jit(step, donate_argnums=(0, 1))`` (parameters and state donated),
compiled first (compile time reported separately); every timed call ends with
``block_until_ready``; each figure is the median (and min-max spread) over repeats.

    python benchmarks/update_throughput.py            # N = 1e5, 1e6, 1e7
    python benchmarks/update_throughput.py --quick    # small N, few repeats
    python benchmarks/update_throughput.py --only adam,adamw --sizes 1e7

Writes a table to stdout and JSON to benchmarks/results/update_throughput[-quick].json.
To add a case (e.g. a chain), append a ``Case`` to ``CASES``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import optax

import optlab as ol

try:  # imported as benchmarks.NAME (tests, python -m)
    from benchmarks.common import machine, write_json
except ModuleNotFoundError:  # run as python benchmarks/NAME.py: its folder is sys.path[0]
    from common import machine, write_json

try:  # optional: torch.optim side by side (pip install -e '.[bench]')
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

LR = 1e-3


@dataclass(frozen=True)
class Case:
    """One row: the same optimizer built by each library.

    Attributes:
      name: row label.
      optlab: ``() -> GradientTransformation``.
      optax: ``() -> optax.GradientTransformation`` or ``None``.
      torch: ``(params, **impl) -> torch.optim.Optimizer`` or ``None``, where ``impl`` is
        ``{"foreach": True}`` or ``{"fused": True}``.
      baseline: ``() -> GradientTransformation`` timed interleaved with the case (the NaN
        guard's cost is the ratio of ``finite(adam)`` to plain ``adam``, measured side by side).
    """

    name: str
    optlab: Callable[[], Any]
    optax: Callable[[], Any] | None = None
    torch: Callable[..., Any] | None = None
    baseline: Callable[[], Any] | None = None


def _t(name: str) -> Callable[..., Any]:
    """A torch.optim class by name, resolved lazily (torch may be absent)."""
    return lambda params, **kw: _TORCH[name](params, **kw)


_TORCH: dict[str, Callable[..., Any]] = {}
if torch is not None:
    _TORCH = {
        "sgd": lambda p, **kw: torch.optim.SGD(p, lr=LR, **kw),
        "momentum": lambda p, **kw: torch.optim.SGD(p, lr=LR, momentum=0.9, **kw),
        "nesterov": lambda p, **kw: torch.optim.SGD(p, lr=LR, momentum=0.9, nesterov=True, **kw),
        "adagrad": lambda p, **kw: torch.optim.Adagrad(p, lr=LR, **kw),
        "rmsprop": lambda p, **kw: torch.optim.RMSprop(p, lr=LR, alpha=0.9, **kw),
        "rmsprop_centered": lambda p, **kw: torch.optim.RMSprop(
            p, lr=LR, alpha=0.9, centered=True, momentum=0.9, **kw
        ),
        "adadelta": lambda p, **kw: torch.optim.Adadelta(p, lr=1.0, **kw),
        "adam": lambda p, **kw: torch.optim.Adam(p, lr=LR, **kw),
        "adamw": lambda p, **kw: torch.optim.AdamW(p, lr=LR, weight_decay=1e-4, **kw),
        "nadam": lambda p, **kw: torch.optim.NAdam(p, lr=LR, **kw),
        "nadamw": lambda p, **kw: torch.optim.NAdam(
            p, lr=LR, weight_decay=1e-4, decoupled_weight_decay=True, **kw
        ),
        "amsgrad": lambda p, **kw: torch.optim.Adam(p, lr=LR, amsgrad=True, **kw),
        "adamax": lambda p, **kw: torch.optim.Adamax(p, lr=LR, **kw),
    }

CASES: list[Case] = [
    Case("sgd", lambda: ol.sgd(LR), lambda: optax.sgd(LR), _t("sgd")),
    Case("momentum", lambda: ol.sgd(LR, 0.9), lambda: optax.sgd(LR, 0.9), _t("momentum")),
    Case(
        "nesterov",
        lambda: ol.sgd(LR, 0.9, nesterov=True),
        lambda: optax.sgd(LR, 0.9, nesterov=True),
        _t("nesterov"),
    ),
    Case("adagrad", lambda: ol.adagrad(LR), lambda: optax.adagrad(LR), _t("adagrad")),
    Case("rmsprop", lambda: ol.rmsprop(LR), lambda: optax.rmsprop(LR), _t("rmsprop")),
    Case(
        "rmsprop_centered",
        lambda: ol.rmsprop(LR, centered=True, momentum=0.9),
        lambda: optax.rmsprop(LR, centered=True, momentum=0.9),
        _t("rmsprop_centered"),
    ),
    Case("adadelta", lambda: ol.adadelta(1.0), lambda: optax.adadelta(1.0), _t("adadelta")),
    Case("adam", lambda: ol.adam(LR), lambda: optax.adam(LR), _t("adam")),
    Case("adamw", lambda: ol.adamw(LR), lambda: optax.adamw(LR), _t("adamw")),
    Case("nadam", lambda: ol.nadam(LR), lambda: optax.nadam(LR), _t("nadam")),
    Case("nadamw", lambda: ol.nadamw(LR), lambda: optax.nadamw(LR), _t("nadamw")),
    Case("amsgrad", lambda: ol.amsgrad(LR), lambda: optax.amsgrad(LR), _t("amsgrad")),
    Case("adamax", lambda: ol.adamax(LR), lambda: optax.adamax(LR), _t("adamax")),
    # Chains (issue 4). The benchmark's parameters are one vector: mask=True makes max_norm
    # constrain it (by default it constrains only leaves with ndim >= 2).
    Case(
        "clip+adamw",
        lambda: ol.chain(ol.clip_by_global_norm(1.0), ol.adamw(LR)),
        lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(LR)),
    ),
    Case("adamw+max_norm", lambda: ol.chain(ol.adamw(LR), ol.max_norm(1.0, mask=True))),
    # The NaN guard (issue 11): its cost is the ratio to the plain optimizer in the same run.
    Case(
        "finite(adam)",
        lambda: ol.apply_if_finite(ol.adam(LR), 5),
        lambda: optax.apply_if_finite(optax.adam(LR), 5),
        baseline=lambda: ol.adam(LR),
    ),
    Case(
        "finite(clip+adamw)",
        lambda: ol.apply_if_finite(ol.chain(ol.clip_by_global_norm(1.0), ol.adamw(LR)), 5),
        lambda: optax.apply_if_finite(
            optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(LR)), 5
        ),
        baseline=lambda: ol.chain(ol.clip_by_global_norm(1.0), ol.adamw(LR)),
    ),
    Case(
        "finite(momentum)",
        lambda: ol.apply_if_finite(ol.sgd(LR, momentum=0.9), 5),
        lambda: optax.apply_if_finite(optax.sgd(LR, momentum=0.9), 5),
        baseline=lambda: ol.sgd(LR, momentum=0.9),
    ),
]


# ---------------------------------------------------------------------------------------------
# Timing


def _summary(samples: list[float]) -> dict[str, float]:
    return {
        "median_ms": 1e3 * statistics.median(samples),
        "min_ms": 1e3 * min(samples),
        "max_ms": 1e3 * max(samples),
    }


def _time_repeats(call: Callable[[], Any], repeats: int, inner: int) -> list[float]:
    """Seconds per call: ``repeats`` samples, each the mean over ``inner`` back-to-back calls."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            call()
        samples.append((time.perf_counter() - start) / inner)
    return samples


def prepare_jax_step(
    tx: Any, params: Any, grads: Any
) -> tuple[Callable[[], Any], dict[str, float]]:
    """Compiles ``params, state = step(params, state, grads)`` with donation; returns a
    blocking call, the compile time in seconds and XLA's count of the bytes the compiled step
    reads and writes per parameter (a load-independent measure of memory traffic)."""

    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    jitted = jax.jit(step, donate_argnums=(0, 1))
    box = {"p": jax.tree.map(jnp.copy, params)}
    box["s"] = tx.init(box["p"])
    start = time.perf_counter()
    compiled = jitted.lower(box["p"], box["s"], grads).compile()
    compile_s = time.perf_counter() - start
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    n_params = sum(x.size for x in jax.tree.leaves(params))
    bytes_per_param = float(cost.get("bytes accessed", float("nan"))) / n_params

    def call():
        box["p"], box["s"] = compiled(box["p"], box["s"], grads)
        jax.block_until_ready(box)

    call()  # warm up (first-touch page faults of the donated buffers)
    return call, {"compile_s": compile_s, "bytes_per_param": bytes_per_param}


def time_interleaved(
    calls: dict[str, Callable[[], Any]], repeats: int, inner: int
) -> dict[str, list[float]]:
    """Times several calls in alternation, so that a busy machine slows them alike."""
    samples: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(repeats):
        for key, call in calls.items():
            samples[key].extend(_time_repeats(call, 1, inner))
    return samples


def time_jax_step(tx: Any, params: Any, grads: Any, repeats: int, inner: int) -> dict[str, Any]:
    """Compiles and times one JAX step (see :func:`prepare_jax_step`)."""
    call, info = prepare_jax_step(tx, params, grads)
    return {**_summary(_time_repeats(call, repeats, inner)), **info}


def time_torch_step(
    factory: Callable[..., Any], n: int, impl: dict[str, bool], repeats: int, inner: int
) -> dict[str, Any] | None:
    """Times ``opt.step()`` for one parameter tensor of ``n`` floats with its gradient set."""
    p = torch.zeros(n, dtype=torch.float32, requires_grad=True)
    p.grad = torch.randn(n, dtype=torch.float32) * 1e-2
    try:
        opt = factory([p], **impl)
        opt.step()
    except (RuntimeError, TypeError, ValueError):  # e.g. no fused kernel for this optimizer
        return None
    return _summary(_time_repeats(opt.step, repeats, inner))


def stream_triad(n: int, repeats: int, inner: int) -> dict[str, Any]:
    """STREAM-like triad ``a = a + s b`` in place (``a`` donated): 12 bytes per element moved.

    The in-place form matters: ``a = b + s c`` with an unused donated ``a`` is pruned by
    ``jit``, so every call would write a fresh buffer and pay its page faults (10x slower at
    N = 1e7), which is not the memory bandwidth.
    """

    def triad(a, b):
        return a + 1e-3 * b

    jitted = jax.jit(triad, donate_argnums=0)
    b = jnp.full(n, 2.0, jnp.float32)
    box = {"a": jnp.zeros(n, jnp.float32)}

    def call():
        box["a"] = jitted(box["a"], b)
        jax.block_until_ready(box["a"])

    call()
    out = _summary(_time_repeats(call, repeats, inner))
    out["GB_per_s"] = 12 * n / (out["median_ms"] * 1e-3) / 1e9
    return out


def leaf_overhead(
    tx_factory: Callable[[], Any], leaves: list[int], size: int, repeats: int, inner: int
) -> dict[str, Any]:
    """Step time for a tree of ``L`` leaves of ``size`` floats each, for each ``L``."""
    out = {}
    for n_leaves in leaves:
        params = {f"w{i:04d}": jnp.zeros(size, jnp.float32) for i in range(n_leaves)}
        grads = {k: jnp.full(size, 1e-2, jnp.float32) for k in params}
        out[n_leaves] = time_jax_step(tx_factory(), params, grads, repeats, inner)
    return out


# ---------------------------------------------------------------------------------------------
# Driver


def _fmt(x: dict[str, Any] | None) -> str:
    return "      -" if x is None else f"{x['median_ms']:7.3f}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small N, few repeats")
    parser.add_argument("--sizes", default=None, help="comma-separated N (e.g. 1e5,1e7)")
    parser.add_argument("--only", default=None, help="comma-separated case names")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: on a busy 2-core machine torch's OpenMP "
        "threads waiting on each other made fused Adam 2.5x slower than one thread)",
    )
    parser.add_argument("--out", default=None, help="JSON path (default: benchmarks/results/)")
    args = parser.parse_args(argv)

    sizes = (
        [int(float(s)) for s in args.sizes.split(",")]
        if args.sizes
        else ([10_000, 100_000] if args.quick else [100_000, 1_000_000, 10_000_000])
    )
    repeats = args.repeats or (3 if args.quick else 7)
    cases = [c for c in CASES if args.only is None or c.name in args.only.split(",")]
    use_torch = torch is not None and not args.no_torch
    if use_torch:
        torch.set_num_threads(args.torch_threads)

    env = {
        **machine(),
        "optax": optax.__version__,
        "torch": torch.__version__ if torch is not None else None,
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "repeats": repeats,
    }
    print("  ".join(f"{k}={v}" for k, v in env.items()))
    results: dict[str, Any] = {"env": env, "sizes": {}, "leaf_overhead": {}}

    for n in sizes:
        inner = max(1, min(50, int(2e7 // n)))
        triad = stream_triad(n, repeats, inner)
        sol_adam_ms = 28 * n / (triad["GB_per_s"] * 1e9) * 1e3
        print(
            f"\nN = {n:.0e}: triad {triad['median_ms']:.3f} ms ({triad['GB_per_s']:.1f} GB/s); "
            f"Adam speed of light (28 B/param at that bandwidth) {sol_adam_ms:.3f} ms"
        )
        print(
            f"{'case':<17}{'optlab':>9}{'optax':>9}{'optax/ol':>9}{'(min)':>8}"
            f"{'torch-fe':>9}{'torch-fu':>9}{'B/p ol':>8}{'B/p ox':>8}{'compile s':>10}"
            "   (median ms per step; (min): ratio of the fastest repeats; B/p: bytes moved per "
            "parameter, from XLA)"
        )
        rows = {}
        params = jnp.zeros(n, jnp.float32)
        grads = jax.random.normal(jax.random.key(0), (n,), jnp.float32) * 1e-2
        for case in cases:
            calls, info = {}, {}
            calls["optlab"], info["optlab"] = prepare_jax_step(case.optlab(), params, grads)
            if case.optax:
                calls["optax"], info["optax"] = prepare_jax_step(case.optax(), params, grads)
            if case.baseline:
                calls["baseline"], info["baseline"] = prepare_jax_step(
                    case.baseline(), params, grads
                )
            samples = time_interleaved(calls, repeats, inner)
            row = {k: {**_summary(v), **info[k]} for k, v in samples.items()}
            row.setdefault("optax", None)
            row.setdefault("baseline", None)
            del calls  # free the donated buffers before torch allocates its own
            for impl in ("foreach", "fused"):
                row[f"torch_{impl}"] = (
                    time_torch_step(case.torch, n, {impl: True}, repeats, inner)
                    if use_torch and case.torch
                    else None
                )
            ratio = row["optax"]["median_ms"] / row["optlab"]["median_ms"] if row["optax"] else None
            row["optax_over_optlab"] = ratio
            min_ratio = row["optax"]["min_ms"] / row["optlab"]["min_ms"] if row["optax"] else None
            row["optax_over_optlab_min"] = min_ratio
            rows[case.name] = row
            print(
                f"{case.name:<17}{_fmt(row['optlab']):>9}{_fmt(row['optax']):>9}"
                f"{'' if ratio is None else f'{ratio:.2f}':>9}"
                f"{'' if min_ratio is None else f'{min_ratio:.2f}':>8}"
                f"{_fmt(row['torch_foreach']):>9}{_fmt(row['torch_fused']):>9}"
                f"{row['optlab']['bytes_per_param']:>8.1f}"
                f"{row['optax']['bytes_per_param'] if row['optax'] else float('nan'):>8.1f}"
                f"{row['optlab']['compile_s']:>10.2f}"
            )
            if row["baseline"]:
                base = row["baseline"]
                row["optlab_over_baseline"] = row["optlab"]["median_ms"] / base["median_ms"]
                row["optlab_over_baseline_min"] = row["optlab"]["min_ms"] / base["min_ms"]
                row["optax_over_baseline"] = (
                    row["optax"]["median_ms"] / base["median_ms"] if row["optax"] else None
                )
                print(
                    f"{'':<17}guard cost: optlab {row['optlab_over_baseline']:.2f}x "
                    f"(min {row['optlab_over_baseline_min']:.2f}x), optax "
                    f"{row['optax_over_baseline'] or float('nan'):.2f}x the unguarded optlab "
                    f"step ({_fmt(base).strip()} ms, {base['bytes_per_param']:.1f} B/p)"
                )
        results["sizes"][str(n)] = {
            "triad": triad,
            "adam_speed_of_light_ms": sol_adam_ms,
            "cases": rows,
        }

    leaves = [1, 10, 100] if args.quick else [1, 10, 100, 1000]
    print("\nPer-leaf dispatch overhead: adam on L leaves of 16 floats (median us per step)")
    leaf_cases = (
        ("optlab", lambda: ol.adam(LR)),
        ("optax", lambda: optax.adam(LR)),
        # one flat vector inside the step: one loop per moment whatever the number of leaves
        ("optax.flatten(optlab)", lambda: optax.flatten(ol.adam(LR))),
    )
    for lib, factory in leaf_cases:
        timings = leaf_overhead(factory, leaves, 16, repeats, 20)
        per = {L: 1e3 * t["median_ms"] for L, t in timings.items()}
        slope = (per[leaves[-1]] - per[leaves[0]]) / (leaves[-1] - leaves[0])
        results["leaf_overhead"][lib] = {"us_per_step": per, "us_per_leaf": slope}
        print(
            f"{lib:<22}"
            + "".join(f"  L={L}: {v:9.1f}" for L, v in per.items())
            + f"   -> {slope:.2f} us per leaf"
        )

    out = (
        Path(args.out)
        if args.out
        else Path(__file__).parent
        / "results"
        / ("update_throughput-quick.json" if args.quick else "update_throughput.json")
    )
    out = write_json(results, out)
    print(f"\nwrote {out}")
    return results


if __name__ == "__main__":
    main()
