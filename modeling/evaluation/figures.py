"""The report's PNG figures (matplotlib, Agg backend, imported only when drawing).

:func:`modeling.evaluation.outputs.write_outputs` calls them through this module's namespace, so
a test can replace one to simulate a failure mid-write.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modeling import musicstats as MS
from modeling.evaluation.core import Result
from modeling.evaluation.summary import fmt
from modeling.music import PITCH_CLASS_NAMES


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_losses(results: Sequence[Result], path: Path) -> None:
    """One panel per variant: train and eval loss over training steps (MLflow metrics)."""
    plt = _plt()
    n = len(results)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, r in zip(axes.flat, results, strict=False):
        for split, style in (("train", "-"), ("eval", "o-")):
            pts = [(h["step"], h[f"{split}_loss"]) for h in r.history if f"{split}_loss" in h]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, label=split, markersize=3)
        ax.set_title(r.name, fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats/event)")
        ax.grid(alpha=0.3)
        if r.history:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no training metrics", ha="center", transform=ax.transAxes)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_histograms(r: Result, path: Path) -> None:
    """Pitch-class and interval histograms: eval data vs generated vs uniform random."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4))
    x = np.arange(12)
    width = 0.27
    for k, (label, prof) in enumerate(
        (("data", r.data), ("generated", r.generated), ("uniform random", r.uniform))
    ):
        a1.bar(x + (k - 1) * width, prof["pitch_class_histogram"], width, label=label)
        hist = np.asarray(prof["interval_histogram"], np.float64)
        if hist.sum() > 0:
            a2.plot(
                np.arange(-MS.MAX_INTERVAL, MS.MAX_INTERVAL + 1),
                hist / hist.sum(),
                "o-",
                markersize=3,
                label=label,
            )
    a1.set_xticks(x, list(PITCH_CLASS_NAMES))
    a1.set(
        title=f"{r.name}: pitch classes (distance {fmt(r.distances['pch_distance'])}, "
        f"uniform {fmt(r.uniform_distances['pch_distance'])})",
        ylabel="share",
    )
    a2.set(title="melodic intervals (top line)", xlabel="semitones", ylabel="share")
    for ax in (a1, a2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    a1.title.set_fontsize(9)
    a2.title.set_fontsize(9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_controls(r: Result, path: Path, tolerance: float) -> None:
    """Requested vs achieved density (with the tolerance band) and histogram distance."""
    plt = _plt()
    dens = [c for c in r.controls if "requested_density" in c]
    hist = [c for c in r.controls if "histogram_distance" in c]
    panels = [p for p in (dens, hist) if p]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    axes = list(axes.flat)
    if dens:
        ax = axes.pop(0)
        want = np.array([c["requested_density"] for c in dens])
        got = np.array([c["achieved_density"] for c in dens])
        line = np.linspace(0, max(want.max(), np.nanmax(got), 1.0) * 1.1, 50)
        ax.fill_between(
            line,
            line * (1 - tolerance),
            line * (1 + tolerance),
            color="0.88",
            label=f"±{tolerance:.0%}",
        )
        ax.plot(line, line, "k--", linewidth=0.8, label="achieved = requested")
        ax.plot(want, got, "o", color="C1", label="samples (mean)")
        for c in dens:
            ax.annotate(c["name"], (c["requested_density"], c["achieved_density"]), fontsize=7)
        ax.set(
            xlabel="requested notes / s",
            ylabel="achieved notes / s",
            title=f"{r.name}: note density",
        )
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if hist:
        ax = axes.pop(0)
        ax.bar(range(len(hist)), [c["histogram_distance"] for c in hist], color="C2")
        ax.set_xticks(range(len(hist)), [c["name"] for c in hist], rotation=20, fontsize=7)
        ax.set(ylabel="distance requested vs achieved", title="pitch-class histogram")
        ax.title.set_fontsize(9)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_summary(results: Sequence[Result], path: Path) -> None:
    """Pitch-class distance to the data per variant: generated vs the uniform random model."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(results) + 2), 3.4))
    x = np.arange(len(results))
    ax.bar(x - 0.2, [r.distances["pch_distance"] for r in results], 0.4, label="generated")
    ax.bar(
        x + 0.2, [r.uniform_distances["pch_distance"] for r in results], 0.4, label="uniform random"
    )
    ax.set_xticks(x, [r.name for r in results], rotation=25, ha="right", fontsize=8)
    ax.set(ylabel="distance to eval data", title="pitch-class histogram distance (lower is better)")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
