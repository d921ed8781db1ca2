"""What the MLflow registry knows about each model: which versions hold the alias, the training
run's loss curves and its clocks (time-to-quality).

Read-only: the verdicts are written back by :func:`modeling.evaluation.outputs.record_quality`.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modeling import first_line
from modeling import quality as Q
from modeling.evaluation.settings import EvalError


def find_champions(alias: str, names: Sequence[str]) -> list[tuple[str, str]]:
    """(model name, ``models:/<name>@<alias>``) of every registered model holding ``alias``.

    Named models must be registered and hold the alias (one-line error otherwise); without
    names, models lacking the alias are skipped (a variant trained but never crowned cannot be).
    """
    from modeling import registry

    try:
        c = registry.client()
        registered = {
            m.name: dict(c.get_registered_model(m.name).aliases or {})
            for m in c.search_registered_models()
        }
    except registry.RegistryError as exc:
        raise EvalError(f"{exc}; train and register a model first") from None
    except Exception as exc:  # store unreachable or corrupt
        raise EvalError(f"registry at {registry.tracking_uri()}: {first_line(exc)}") from None
    if names:
        missing = [n for n in names if n not in registered]
        if missing:
            raise EvalError(
                f"model(s) {', '.join(missing)} not in the registry at "
                f"{registry.tracking_uri()}; registered: "
                f"{', '.join(sorted(registered)) or 'none'}"
            )
        bare = [n for n in names if alias not in registered[n]]
        if bare:
            raise EvalError(f"model(s) {', '.join(bare)} have no @{alias} version")
        chosen = list(dict.fromkeys(names))
    else:
        chosen = sorted(n for n, aliases in registered.items() if alias in aliases)
    if not chosen:
        raise EvalError(
            f"no registered model has a @{alias} version in "
            f"{registry.tracking_uri()}; train a variant first"
        )
    return [(n, f"models:/{n}@{alias}") for n in chosen]


def loss_history(run_id: str | None) -> list[dict[str, float]]:
    """(step, train_loss, eval_loss) rows of a training run from its MLflow metrics.

    Falls back to the run's ``loss_curve.csv`` artifact if the metrics are missing (a run
    logged elsewhere); empty when neither exists.
    """
    if not run_id:
        return []
    from modeling import registry

    c = registry.client()
    missing = (registry._mlflow_error(), OSError, KeyError, ValueError)  # curves are optional
    rows: dict[int, dict[str, float]] = {}
    with contextlib.suppress(*missing):
        for split in ("train", "eval"):
            for m in c.get_metric_history(run_id, f"{split}_loss"):
                row = rows.setdefault(int(m.step), {"step": int(m.step)})
                row[f"{split}_loss"] = m.value
                if split == "eval":
                    row["eval_time_ms"] = m.timestamp
    if not rows:
        with contextlib.suppress(*missing):
            import mlflow

            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path="loss_curve.csv"
            )
            for r in csv.DictReader(Path(path).read_text().splitlines()):
                step = int(r["step"])
                rows.setdefault(step, {"step": step})[f"{r['split']}_loss"] = float(r["loss"])
    return [rows[k] for k in sorted(rows)]


def _artifact_text(run_id: str, name: str) -> str:
    """A small artifact of a run as text (MLflow's progress bar off: the stage's stderr is its
    own progress lines)."""
    import mlflow

    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(key)
    os.environ[key] = "false"
    try:
        return Path(
            mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name)
        ).read_text()
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def training_time(run_id: str | None, history: Sequence[Mapping[str, float]]) -> dict[str, Any]:
    """Train seconds and time-to-quality of a training run (None where unrecorded).

    ``wall_s`` clocks come from the eval-loss metrics' MLflow timestamps minus the run's start
    (set-up, evaluations and any pause before a resume included); ``train_s`` ones from the
    ``seconds`` column of the run's ``loss_curve.csv`` (the train loop's own clock) and
    ``train_seconds`` from its ``metrics.json`` (``throughput.train_seconds``).
    """
    out: dict[str, Any] = {"train_seconds": None}
    if not run_id:
        return {**out, **Q.time_to_quality([])}
    from modeling import registry

    c = registry.client()
    missing = (registry._mlflow_error(), OSError, KeyError, ValueError, TypeError)
    start = None
    with contextlib.suppress(*missing):
        start = c.get_run(run_id).info.start_time
    train_s: dict[int, float] = {}
    with contextlib.suppress(*missing):
        for r in csv.DictReader(_artifact_text(run_id, "loss_curve.csv").splitlines()):
            if r.get("split") == "train" and r.get("seconds"):
                train_s[int(r["step"])] = float(r["seconds"])
    with contextlib.suppress(*missing):
        metrics = json.loads(_artifact_text(run_id, "metrics.json"))
        out["train_seconds"] = float(metrics["throughput"]["train_seconds"])
    rows = [
        {
            "step": h["step"],
            "eval_loss": h["eval_loss"],
            "wall_s": (h["eval_time_ms"] - start) / 1000.0
            if start is not None and "eval_time_ms" in h
            else None,
            "train_s": train_s.get(int(h["step"])),
        }
        for h in history
        if "eval_loss" in h
    ]
    return {**out, **Q.time_to_quality(rows)}
