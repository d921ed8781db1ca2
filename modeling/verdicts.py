"""What people read about a model and its music: quality verdicts, note names, plain numbers.

How it connects. The gallery (:mod:`modeling.batch`) and the Studio's model box
(:mod:`studio.catalog`) both show a model's :func:`quality_verdict`, read from the evaluate
stage's ``summary.json`` (:func:`read_summary`) or, before any evaluation, from the perplexity
the model was registered with. Kept apart from the batch stage so that the Studio reads verdicts
without importing generation (torch); ``modeling.batch`` re-exports these names.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modeling.music import PITCH_CLASS_NAMES

DEFAULT_REPORTS = "data/reports/summary.json"
NOTE_NAMES = PITCH_CLASS_NAMES


def note_name(pitch: int) -> str:
    """``60`` -> ``C4`` (the names the Studio accepts for typed notes)."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def plain_number(x: float) -> str:
    """A number as people write it: ``1000000``, ``0.5``, ``12.25`` (never ``1e+06``)."""
    if not math.isfinite(x):
        return str(x)
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.6f}".rstrip("0").rstrip(".")


def read_summary(path: str | Path) -> dict[str, Any]:
    """The evaluate stage's ``summary.json``, or ``{}`` when absent or unreadable (not yet run)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def finite_number(x: Any) -> float | None:
    """``x`` as a float when it is a finite number (JSON read defensively), else None."""
    return float(x) if isinstance(x, (int, float)) and math.isfinite(float(x)) else None


def _chance_words(ratio: float) -> str:
    if ratio <= 0.25:
        return "much better than guessing"
    if ratio <= 0.75:
        return "better than guessing"
    if ratio < 1.0:
        return "barely better than guessing"
    return "no better than guessing"


def quality_verdict(
    summary: Mapping[str, Any],
    variant: str,
    *,
    perplexity: float | None = None,
    uniform: float | None = None,
) -> dict[str, Any]:
    """What a person should think of ``variant``: ``{"verdict", "text", "passed"}``.

    In order of preference: a ``quality`` block in the evaluate summary (an overall pass and named
    checks), the summary's held-out perplexity against the uniform-guess baseline, the
    ``perplexity`` the model was registered with against ``uniform`` (its number of classes), or
    "not evaluated yet". Every field is read defensively: the summary's shape may grow.
    """
    entry = summary.get(variant) if isinstance(summary, Mapping) else None
    entry = entry if isinstance(entry, Mapping) else {}
    quality = entry.get("quality")
    if isinstance(quality, Mapping):
        overall = next(
            (quality[k] for k in ("pass", "passed", "overall") if isinstance(quality.get(k), bool)),
            None,
        )
        checks = quality.get("checks", quality)
        failed = []
        if isinstance(checks, Mapping):
            for name, value in checks.items():
                ok = value.get("pass", value.get("passed")) if isinstance(value, Mapping) else value
                if ok is False and name not in ("pass", "passed", "overall"):
                    failed.append(str(name).replace("_", " "))
        if overall is not None:
            text = "Passes its quality checks." if overall else "Fails its quality checks"
            if not overall:
                text += f" ({', '.join(failed)})." if failed else "."
            return {"verdict": "pass" if overall else "fail", "text": text, "passed": overall}
    source = "held-out music"
    ev = entry.get("eval") if isinstance(entry.get("eval"), Mapping) else {}
    ppl = finite_number(ev.get("perplexity"))
    base = None
    if ppl is not None:
        baselines = summary.get("uniform_random")
        if isinstance(baselines, Mapping):
            b = baselines.get(entry.get("example_set"))
            base = finite_number(b.get("perplexity")) if isinstance(b, Mapping) else None
        base = base or finite_number(uniform)
    else:
        ppl, base, source = (
            finite_number(perplexity),
            finite_number(uniform),
            "its training run's eval set",
        )
    if ppl is None:
        return {"verdict": "unknown", "text": "Not evaluated yet.", "passed": None}
    if base is None:
        return {
            "verdict": "measured",
            "text": f"Perplexity {ppl:.1f} on {source} (no baseline to compare).",
            "passed": None,
        }
    ratio = ppl / base
    verdict = "good" if ratio <= 0.25 else "fair" if ratio < 1.0 else "poor"
    return {
        "verdict": verdict,
        "text": f"Predicts {source} {_chance_words(ratio)}: perplexity {ppl:.1f} "
        f"against {base:.0f} for a random guess.",
        "passed": None,
    }
