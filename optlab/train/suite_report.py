"""The benchmark suite's report: markdown tables, PNG plots and JSON
(:func:`optlab.train.suite.run_suite`'s results)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from optlab.train.report import save_figure, style, write_json

REPORT_FILES = ("report.md", "suite.json", "profiles.png", "sensitivity.png")


def _steps(part: dict[str, Any]) -> str:
    s = part["steps_to_target"]

    def show(v: Any) -> str:
        return "miss" if v == "inf" else f"{float(v):.0f}"

    return f"{show(s['median'])} [{show(s['q25'])}, {show(s['q75'])}]"


def _secs(part: dict[str, Any]) -> str:
    v = part["seconds_to_target"]["median"]
    return "miss" if v == "inf" else f"{float(v):.2f}"


def _acc(part: dict[str, Any]) -> str:
    return f"{100 * part['test_accuracy_mean']:.2f} ± {100 * part['test_accuracy_std']:.2f}"


def _point(point: dict[str, float]) -> str:
    short = {"learning_rate": "lr", "one_minus_momentum": "1-mom", "one_minus_b1": "1-b1"}
    return ", ".join(f"{short.get(k, k)}={v:.3g}" for k, v in point.items()) or "(none)"


def markdown(results: dict[str, Any], *, level: int = 1, images: str = "") -> str:
    """The report: per workload a table of every optimizer, then the scores.

    Args:
      results: :func:`optlab.train.suite.run_suite`'s results.
      level: the title's heading level (the sections are one deeper).
      images: a prefix for the PNGs' paths (the report's own folder: ``""``).
    """
    b = results["budget"]
    h1, h2 = "#" * level, "#" * (level + 1)
    load = results.get("load_average")
    where = (
        f", on {load['cpus']} CPUs with a 1-minute load average of {load['start']:.1f} at the "
        f"start and {load['end']:.1f} at the end"
        if load
        else ""
    )
    lines = [
        f"{h1} optlab optimizer benchmark" + (" (--quick)" if results["quick"] else ""),
        "",
        f"Seed {results['seed']}; {b['studies']} studies x {b['trials']} quasi-random trials "
        f"per tuned optimizer, {b['lr_points']} learning-rate sensitivity points, final "
        f"accuracy over {(1 + b['lr_points'] + b['studies'] * b['trials']) // 2} seeds; "
        f"{results['seconds']:.0f} s wall in all, {results.get('cpu_seconds', 0):.0f} s of "
        f"CPU{where}. Steps to target: median [25%, 75%] over the "
        "studies (tuned) or the seeds (defaults); miss = never reached (infinite). Seconds "
        "from the per-step cost of each vmapped program.",
        "",
    ]
    for wname, entry in results["workloads"].items():
        w = entry["workload"]
        lines += [
            f"{h2} {wname}: MLP {'-'.join(map(str, w['hidden']))}, target validation accuracy "
            f"{100 * entry['target']:.2f}%",
            "",
            "| optimizer | defaults: steps | defaults: test acc % | tuned: steps | tuned: "
            "seconds | tuned: test acc % | chosen |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, r in entry["optimizers"].items():
            if r is None:
                lines.append(f"| {name} | does not fit | | | | | |")
                continue
            d, t = r["defaults"], r["tuned"]
            label = f"{name} (full batch)" if r["full_batch"] else name
            chosen = "no search space" if r["full_batch"] else _point(t["hyperparameters"])
            lines.append(
                f"| {label} | {_steps(d)} | {_acc(d)} | {_steps(t)} | {_secs(t)} | {_acc(t)} "
                f"| {chosen} |"
            )
        lines.append("")
    for wname, why in results["skipped"].items():
        lines += [f"{h2} {wname}: skipped", "", why, ""]
    summary = results["summary"]
    if "tuned" in summary:
        lines += [
            f"{h2} Integrated score (AlgoPerf, r_max = 4)",
            "",
            "From the median steps to target, and from the median seconds to target (AlgoPerf's "
            "measure; a full-batch step costs far more than a mini-batch step).",
            "",
            "| optimizer | tuned, steps | defaults, steps | tuned, seconds | defaults, seconds |",
            "|---|---|---|---|---|",
        ]
        for name in summary["optimizers"]:
            row = [summary[k]["score"][name] for k in ("tuned", "defaults")]
            row += [summary[k]["score"][name] for k in ("tuned_seconds", "defaults_seconds")]
            lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
        lines += ["", f"![performance profiles]({images}profiles.png)", ""]
    lines += [f"![learning-rate sensitivity]({images}sensitivity.png)", ""]
    return "\n".join(lines)


BEGIN, END = "<!-- optlab bench report: begin -->", "<!-- optlab bench report: end -->"
"""The markers between which a document embeds the report (:func:`embed`)."""


def embed(document: str, results: dict[str, Any], *, level: int = 4, images: str = "") -> str:
    """``document`` with the text between :data:`BEGIN` and :data:`END` replaced by the
    report (:func:`markdown` at heading ``level``): how the README's tables are regenerated.

    Raises:
      ValueError: the markers are missing, repeated or out of order.
    """
    i, j = document.find(BEGIN), document.find(END)
    if document.count(BEGIN) != 1 or document.count(END) != 1 or j < i:
        raise ValueError(f"embed: the document must hold {BEGIN} then {END}, once each")
    block = markdown(results, level=level, images=images).strip()
    return f"{document[: i + len(BEGIN)]}\n{block}\n{document[j:]}"


def plot_profiles(results: dict[str, Any]) -> Any:
    """The performance profiles of the tuned and the default runs, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = results["summary"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, kind in zip(axes, ("tuned", "defaults"), strict=True):
        if kind in summary:
            taus = summary["taus"]
            for i, name in enumerate(summary["optimizers"]):
                ax.step(taus, summary[kind]["profile"][i], where="post", label=name, **style(i))
        ax.set_xscale("log")
        ax.set_xlabel("τ (steps to target / best)")
        ax.set_title(f"{kind}")
        ax.set_ylim(-0.02, 1.02)
    axes[0].set_ylabel("fraction of workloads")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_sensitivity(results: dict[str, Any]) -> Any:
    """Final validation accuracy against the learning rate, one panel per workload."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["workloads"]) or ["(none)"]
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.6), squeeze=False)
    for ax, wname in zip(axes[0], names, strict=True):
        entry = results["workloads"].get(wname, {"optimizers": {}})
        for i, (name, r) in enumerate(entry["optimizers"].items()):
            if r is None or r["sensitivity"] is None:
                continue
            s = r["sensitivity"]
            ratio = np.asarray(s["learning_rate"]) / s["default_learning_rate"]
            ax.plot(ratio, s["val_accuracy"], marker="o", label=name, **style(i))
        ax.set_xscale("log")
        ax.set_xlabel("learning rate / default")
        ax.set_title(wname)
    axes[0][0].set_ylabel("final validation accuracy")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_report(results: dict[str, Any], out: str | Path) -> list[Path]:
    """Writes :data:`REPORT_FILES` into ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(markdown(results))
    write_json(out / "suite.json", results)
    save_figure(plot_profiles(results), out / "profiles.png")
    save_figure(plot_sensitivity(results), out / "sensitivity.png")
    return [out / f for f in REPORT_FILES]
