"""``summary.json`` and ``summary.csv``: each variant's numbers plus the baselines' rows.

Also the formatting helpers the report shares (:func:`fmt`, :func:`finite`, :func:`csv_text`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from modeling import musicstats as MS
from modeling.evaluation.core import Result
from modeling.evaluation.settings import METRIC_KEYS


def finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, (np.floating, np.integer)):
        return finite(x.item())
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite(v) for v in x]
    return x


def fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "**no**"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{float(x):.{digits}f}"


def goals(r: Result) -> dict[str, bool | None]:
    """The issue's acceptance goals for one variant (None: the goal does not apply)."""
    out: dict[str, bool | None] = {
        "eval_perplexity_reported": math.isfinite(r.eval.get("perplexity", math.nan)),
        "pch_closer_than_uniform": _less(
            r.distances["pch_distance"], r.uniform_distances["pch_distance"]
        ),
        "chord_tones_at_least_data": None,
        "density_within_tolerance": None,
    }
    if r.improv:
        g, d = r.improv["generated"], r.improv["data"]
        out["chord_tones_at_least_data"] = (
            (g >= d) if math.isfinite(g) and math.isfinite(d) else False
        )
    dens = [c["density_within_tolerance"] for c in r.controls if "density_within_tolerance" in c]
    if dens:
        out["density_within_tolerance"] = all(dens)
    return out


def _less(a: float, b: float) -> bool:
    return bool(math.isfinite(a) and math.isfinite(b) and a < b)


def summary_entry(r: Result) -> dict[str, Any]:
    """One variant's ``summary.json`` entry: nested scalars only (``dvc metrics show``)."""
    stats: dict[str, Any] = {
        "pch_distance": r.distances["pch_distance"],
        "pch_distance_uniform": r.uniform_distances["pch_distance"],
        "interval_distance": r.distances["interval_distance"],
        "interval_distance_uniform": r.uniform_distances["interval_distance"],
        "samples": r.generated["num_sequences"],
        "notes": r.generated["num_notes"],
    }
    for key in MS.SCALARS:
        if any(math.isfinite(p[key]) for p in (r.data, r.generated)):
            stats[key] = {
                "data": r.data[key],
                "generated": r.generated[key],
                "uniform": r.uniform[key],
            }
    entry: dict[str, Any] = {
        "family": r.family,
        "example_set": r.example_set,
        "model_version": r.model.get("version"),
        "loss_per_step_unit": r.unit,
        "eval": {k: r.eval[k] for k in (*METRIC_KEYS, "examples", "labels")},
        "cross": {
            s: {k: m[k] for k in ("loss", "perplexity", "accuracy")} for s, m in r.cross.items()
        },
        "generated": stats,
        "goals": goals(r),
        "quality": r.quality,
        "ngram": {k: r.ngram[k] for k in ("order", "loss", "perplexity")} if r.ngram else None,
        "training": r.training,
    }
    if r.improv:
        entry["chord_tone_ratio"] = dict(r.improv)
    if r.controls:
        dens = [c for c in r.controls if "density_rel_error" in c]
        hist = [c for c in r.controls if "histogram_distance" in c]
        entry["controls"] = {
            "requests": len(r.controls),
            "density_mean_rel_error": float(np.mean([c["density_rel_error"] for c in dens]))
            if dens
            else None,
            "density_within_tolerance": sum(c["density_within_tolerance"] for c in dens)
            if dens
            else None,
            "histogram_mean_distance": float(np.mean([c["histogram_distance"] for c in hist]))
            if hist
            else None,
        }
    return finite(entry)


SUMMARY_FIELDS = (
    "variant",
    "family",
    "example_set",
    "eval_perplexity",
    "eval_loss",
    "eval_accuracy",
    "eval_event_accuracy",
    "eval_no_event_accuracy",
    "eval_loss_per_step",
    "quality_pass",
    "ngram_perplexity",
    "cross_perplexity",
    "pch_distance",
    "pch_distance_uniform",
    "interval_distance",
    "in_key_ratio",
    "chord_tone_ratio",
    "density_mean_rel_error",
    "histogram_mean_distance",
    "velocity_spread",
)


def summary_rows(results: Sequence[Result]) -> list[dict[str, Any]]:
    """The summary table: one row per variant plus a uniform-random row per example set."""
    rows = []
    for r in results:
        e = summary_entry(r)
        rows.append(
            {
                "variant": r.name,
                "family": r.family,
                "example_set": r.example_set,
                **{f"eval_{k}": r.eval[k] for k in METRIC_KEYS},
                "quality_pass": r.quality.get("pass", ""),
                "ngram_perplexity": (r.ngram or {}).get("perplexity", ""),
                "cross_perplexity": "; ".join(
                    f"{s}={m['perplexity']:.4g}" for s, m in r.cross.items()
                ),
                "pch_distance": r.distances["pch_distance"],
                "pch_distance_uniform": r.uniform_distances["pch_distance"],
                "interval_distance": r.distances["interval_distance"],
                "in_key_ratio": r.generated["in_key_ratio"],
                "chord_tone_ratio": r.improv.get("generated", ""),
                "density_mean_rel_error": (e.get("controls") or {}).get(
                    "density_mean_rel_error", ""
                ),
                "histogram_mean_distance": (e.get("controls") or {}).get(
                    "histogram_mean_distance", ""
                ),
                "velocity_spread": r.generated["velocity_spread"],
            }
        )
    for set_name, r in baseline_sources(results).items():
        rows.append(
            {
                "variant": f"uniform_random@{set_name}",
                "family": r.family,
                "example_set": set_name,
                "eval_perplexity": float(r.vocabulary),
                "eval_loss": math.log(r.vocabulary),
                "pch_distance": r.uniform_distances["pch_distance"],
                "pch_distance_uniform": r.uniform_distances["pch_distance"],
                "interval_distance": r.uniform_distances["interval_distance"],
                "in_key_ratio": r.uniform["in_key_ratio"],
                "chord_tone_ratio": r.uniform.get("chord_tone_ratio", ""),
                "velocity_spread": r.uniform["velocity_spread"],
            }
        )
        if r.ngram:
            rows.append(
                {
                    "variant": f"ngram_kn{r.ngram['order']}@{set_name}",
                    "family": r.family,
                    "example_set": set_name,
                    "eval_perplexity": r.ngram["perplexity"],
                    "eval_loss": r.ngram["loss"],
                    "ngram_perplexity": r.ngram["perplexity"],
                }
            )
    return rows


def baseline_sources(results: Sequence[Result]) -> dict[str, Result]:
    """The first result of each example set: its uniform profile is the set's baseline."""
    out: dict[str, Result] = {}
    for r in results:
        out.setdefault(r.example_set, r)
    return out


def csv_text(rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore")
    w.writeheader()
    for row in rows:
        w.writerow({k: _cell(row.get(k, "")) for k in fields})
    return buf.getvalue()


def _cell(v: Any) -> Any:
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.6g}"
    return v
