"""What a run leaves behind and says: ``metrics.json`` (a DVC metric), ``loss_curve.csv`` (a DVC
plot), ``loss_curve.png``, ``config.json``; the progress bar and one-line messages on stderr.

:func:`final_metrics` is the summary :mod:`.loop` returns, prints (``python -m modeling.train``)
and hands the registry; every file is written atomically (:mod:`modeling.checkpoint`).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import resource
import sys
from pathlib import Path
from typing import Any

from modeling import checkpoint as ckpt
from modeling.training.distributed import Dist
from modeling.training.metrics import METRICS

CSV_FIELDS = ("step", "split", *METRICS, "events_per_sec", "seconds")


def write_config(output: Path, config: dict[str, Any]) -> None:
    ckpt.atomic_write_text(output / "config.json", json.dumps(config, indent=2, sort_keys=True))


def write_outputs(
    output: Path, config: dict[str, Any], history: list[dict[str, Any]], final: dict[str, Any]
) -> None:
    """config.json, metrics.json, loss_curve.csv and loss_curve.png (all atomic)."""
    write_config(output, config)
    ckpt.atomic_write_text(output / "metrics.json", json.dumps(json_safe(final), indent=2))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow({k: row.get(k, "") for k in CSV_FIELDS})
    ckpt.atomic_write_text(output / "loss_curve.csv", buf.getvalue())
    ckpt.atomic_write_bytes(output / "loss_curve.png", _plot(history, config))


def copy_extras(output: Path, metrics: str | None, plots: str | None) -> None:
    """``--metrics`` / ``--plots``: DVC metric and plot files outside the cached output folder."""
    for extra, name in ((metrics, "metrics.json"), (plots, "loss_curve.csv")):
        if extra:
            Path(extra).parent.mkdir(parents=True, exist_ok=True)
            ckpt.atomic_write_bytes(extra, (output / name).read_bytes())


def json_safe(obj: Any) -> Any:
    """``obj`` with non-finite floats as ``None`` (JSON has no NaN)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_safe(v) for v in obj]
    return obj


def _plot(history: list[dict[str, Any]], config: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for split, style in (("train", "-"), ("eval", "o-")):
        rows = [r for r in history if r["split"] == split]
        steps = [r["step"] for r in rows]
        ax1.plot(steps, [r["loss"] for r in rows], style, label=split, markersize=3)
        ax2.plot(steps, [r["accuracy"] for r in rows], style, label=split, markersize=3)
    ax1.set(xlabel="step", ylabel="loss (nats/event)", title=f"{config['variant']}: loss")
    ax2.set(xlabel="step", ylabel="accuracy", title="accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def final_metrics(
    history: list[dict[str, Any]], best: dict[str, Any], timing: dict[str, Any], step: int
) -> dict[str, Any]:
    """metrics.json: the last eval/train metrics, the best eval loss, throughput, memory and
    time-to-quality."""
    last = {r["split"]: r for r in history if r["step"] == step}
    strip = ("step", "split", "seconds", "events_per_sec")
    return {
        "step": step,
        "eval": {k: v for k, v in last.get("eval", {}).items() if k not in strip},
        "train": {k: v for k, v in last.get("train", {}).items() if k not in strip},
        "best": {"eval_loss": best["loss"], "step": best["step"]},
        "throughput": {
            "events_per_sec": timing["events"] / max(timing["seconds"], 1e-9),
            "steps_per_sec": timing["steps"] / max(timing["seconds"], 1e-9),
            "train_seconds": timing["seconds"],
            # CPU time of every thread of every rank: a figure other processes on a shared
            # machine do not distort (a preempted thread burns none)
            "events_per_cpu_sec": timing["events"] / max(timing["cpu_seconds"], 1e-9),
        },
        "peak_rss_mb": peak_rss_mb(),
        "time_to_quality": time_to_quality(history),
    }


def time_to_quality(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Train-loop seconds until the eval loss settles within 2 % of its final value: how much of
    the step budget bought the result (issue 12's per-variant figure, also in metrics.json)."""
    from modeling.quality import time_to_quality as settle

    seconds = {r["step"]: r.get("seconds") for r in history if r["split"] == "train"}
    rows = [
        {"step": r["step"], "eval_loss": r["loss"], "train_s": seconds.get(r["step"])}
        for r in history
        if r["split"] == "eval"
    ]
    ttq = settle(rows)
    return {
        "step": ttq["step"],
        "train_s": ttq["train_s"],
        "final_eval_loss": ttq["final_eval_loss"],
    }


def progress(args: argparse.Namespace, d: Dist, start: int) -> Any:
    """A tqdm bar on stderr (rank 0, unless ``--quiet``), else ``None``."""
    if not d.is_main or args.quiet:
        return None
    from tqdm import tqdm

    return tqdm(
        total=args.num_steps,
        initial=start,
        desc=args.variant,
        unit="step",
        mininterval=1.0,
        dynamic_ncols=True,
        file=sys.stderr,
    )


def say(bar: Any, message: str) -> None:
    """One line on stderr, above the progress bar if there is one."""
    if bar is not None:
        bar.write(message, file=sys.stderr)
    else:
        print(message, file=sys.stderr, flush=True)
