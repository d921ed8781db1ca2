"""The quality bar (issue 12): what a model must reach, measured against baselines and the data.

How it connects. :mod:`modeling.evaluation` decodes eval examples and generated samples into
:class:`~modeling.musicstats.NoteArrays` and hands them here; this module never loads a model or
decodes events itself. It provides:

* :class:`KneserNey` / :func:`ngram_baseline` (defined in :mod:`modeling.ngram`, re-exported
  here): an interpolated modified Kneser-Ney n-gram model over a set's *stored events*, fitted
  on the train split, its order chosen on the eval split; the RNN must beat its perplexity.
* :class:`Pieces`: per-sequence note statistics (pitch-class, interval and duration counts,
  density, notes per step, pitch range, longest note), so that any group of sequences is scored
  by adding rows; :func:`noise_floor` measures the distances between two random disjoint groups of
  eval pieces of the same sizes as (generated, data): what chance alone gives.
* :func:`assess`: every criterion of the bar as ``{value, threshold | low/high, op, pass}`` plus an
  overall pass, the block ``summary.json`` carries per variant and the report's first table shows.
* :func:`time_to_quality`: training seconds until the eval loss stays within 2 % of its final
  value, from the per-eval rows the train stage logs (MLflow timestamps, ``loss_curve.csv``).

The thresholds below are the issue's floors; they are constants, not params, so that a profile
cannot lower the bar.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modeling import musicstats as MS
from modeling.ngram import MAX_ORDER as MAX_ORDER  # re-exported: the bar's n-gram baseline
from modeling.ngram import NGRAM_MAX_TRAIN_EVENTS as NGRAM_MAX_TRAIN_EVENTS
from modeling.ngram import KneserNey as KneserNey
from modeling.ngram import ngram_baseline as ngram_baseline
from modeling.ngram import sample_examples as sample_examples

NGRAM_MARGIN = 0.95
"""The RNN's eval perplexity must be at least 5 % below the n-gram's."""
MIN_SAMPLES = 32
FLOOR_FACTOR = 1.5
"""Sample statistics may be at most 1.5x as far from the data as the data is from itself."""
FLOOR_DRAWS = 40
"""Random half splits drawn for one noise floor."""
FLOOR_PERCENTILE = 95.0
"""The floor is the distance two halves of the data stay under in 95 % of draws. With the mean
instead, samples drawn from the data itself fail 1.5x the floor 40 % of the time (a scalar's
absolute difference exceeds 1.5x its mean ~25 % of the time); with the 95th percentile, 2 %
(tests/test_quality.py's synthetic corpus, 150 seeds)."""
CHORD_TONE_FACTOR = 0.9
DENSITY_TOLERANCE = 0.2
DENSITY_SHARE = 0.8
HISTOGRAM_TV = 0.2
PERCENTILES = (5.0, 95.0)
TTQ_BAND = 0.02
DURATION_EDGES = np.geomspace(0.01, 10.0, 21)
"""Note-duration histogram bins (seconds, log-spaced: 10 ms performance steps to held chords)."""


# ============================================================================ sample statistics


@dataclass(frozen=True)
class Pieces:
    """Per-sequence statistics of a group of note sequences (one row per sequence).

    Histograms are counts, so a subgroup's pooled histogram is a sum of rows (noise floors draw
    many subgroups); scalars are per sequence, averaged over a subgroup.
    """

    pitch_classes: np.ndarray  # (P, 12)
    intervals: np.ndarray  # (P, 25)
    durations: np.ndarray  # (P, len(DURATION_EDGES) + 1)
    density: np.ndarray  # (P,) notes per second
    notes_per_step: np.ndarray  # (P,) NaN without notes
    pitch_range: np.ndarray  # (P,) NaN without notes
    longest: np.ndarray  # (P,) seconds, 0 without notes

    def __len__(self) -> int:
        return len(self.density)

    def take(self, rows: np.ndarray) -> Pieces:
        return Pieces(*(getattr(self, f)[rows] for f in self.__dataclass_fields__))


def pieces(notes: Sequence[MS.NoteArrays], seconds_per_step: float) -> Pieces:
    """Statistics of each sequence (the same functions the report's profiles use)."""
    nb = len(DURATION_EDGES) + 1
    rows = []
    for n in notes:
        dur = n.end - n.start
        rows.append(
            (
                np.bincount(n.pitch % 12, minlength=12).astype(np.float64),
                MS.interval_histogram(n.pitch, n.start),
                np.bincount(np.digitize(dur, DURATION_EDGES), minlength=nb).astype(np.float64),
                MS.note_density(len(n), n.total_time),
                MS.notes_per_step(n, seconds_per_step),
                MS.pitch_range(n.pitch),
                float(dur.max(initial=0.0)),
            )
        )
    if not rows:
        z = np.zeros(0)
        return Pieces(
            np.zeros((0, 12)), np.zeros((0, 2 * MS.MAX_INTERVAL + 1)), np.zeros((0, nb)), z, z, z, z
        )
    cols = list(zip(*rows, strict=True))
    return Pieces(*(np.asarray(c, np.float64) for c in cols))


def distances(a: Pieces, b: Pieces) -> dict[str, float]:
    """Distances between two groups: total variation of the pooled pitch-class, interval and
    duration histograms, and the absolute difference of mean note density (notes/s)."""
    with np.errstate(all="ignore"):
        da, db = np.nanmean(a.density), np.nanmean(b.density)
    return {
        "pitch_class_distance": MS.histogram_distance(
            a.pitch_classes.sum(0), b.pitch_classes.sum(0)
        ),
        "interval_distance": MS.histogram_distance(a.intervals.sum(0), b.intervals.sum(0)),
        "duration_distance": MS.histogram_distance(a.durations.sum(0), b.durations.sum(0)),
        "density_difference": float(abs(da - db)),
    }


def noise_floor(
    pool: Pieces, size_a: int, size_b: int, rng: np.random.Generator, draws: int = FLOOR_DRAWS
) -> tuple[dict[str, float], tuple[int, int]]:
    """:func:`distances` between two random disjoint groups of ``pool`` of sizes
    (``size_a``, ``size_b``): the generated and data counts. A pool smaller than both together is
    split in the same proportion (the sizes used are returned: smaller groups, higher floor).
    Each distance's floor is its :data:`FLOOR_PERCENTILE` over the draws (``<key>_mean``: the
    mean)."""
    n = len(pool)
    if n < 2 or size_a < 1 or size_b < 1:
        keys = list(distances(pool, pool))
        return dict.fromkeys([*keys, *(f"{k}_mean" for k in keys)], float("nan")), (0, 0)
    a, b = size_a, size_b
    if a + b > n:
        a = min(n - 1, max(1, round(n * size_a / (size_a + size_b))))
        b = n - a
    rows = []
    for _ in range(draws):
        perm = rng.permutation(n)
        rows.append(distances(pool.take(perm[:a]), pool.take(perm[a : a + b])))
    out = {}
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for k in rows[0]:
            vals = np.array([r[k] for r in rows])
            out[k] = float(np.nanpercentile(vals, FLOOR_PERCENTILE))
            out[f"{k}_mean"] = float(np.nanmean(vals))
    return out, (a, b)


# ============================================================================ the bar


def criterion(
    value: float | None,
    *,
    threshold: float | None = None,
    op: str = "<=",
    low: float | None = None,
    high: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One criterion: its value, threshold (or ``low``/``high`` for ``op="in"``) and pass.

    ``pass`` is None when the bar cannot be set (no baseline, no data), False when the value is
    missing (a model that produced nothing measurable does not pass).
    """
    out: dict[str, Any] = {"value": value, "op": op, **extra}
    bounds = (low, high) if op == "in" else (threshold,)
    if op == "in":
        out.update(low=low, high=high)
    else:
        out["threshold"] = threshold
    if any(b is None or not math.isfinite(b) for b in bounds):
        out["pass"] = None
    elif value is None or not math.isfinite(value):
        out["pass"] = False
    elif op == "<=":
        out["pass"] = bool(value <= threshold)  # type: ignore[operator]
    elif op == ">=":
        out["pass"] = bool(value >= threshold)  # type: ignore[operator]
    else:
        out["pass"] = bool(low <= value <= high)  # type: ignore[operator]
    return out


def _mean(x: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        return float(np.nanmean(x)) if len(x) and not np.isnan(x).all() else float("nan")


CRITERIA_GROUPS = frozenset({"longest_note", "control_requests", "texture_percentiles"})
"""Family-specific criteria a family's ``QUALITY_CRITERIA`` may switch on: no note longer than
the data's longest and control requests met (performance); notes per step and pitch range in the
data's percentiles (polyphony's texture)."""


def assess(
    *,
    family: str,
    perplexity: float,
    ngram: Mapping[str, Any] | None,
    generated: Pieces,
    data: Pieces,
    pool: Pieces,
    data_longest: float,
    rng: np.random.Generator,
    chord_tones: tuple[float, float] | None = None,
    controls: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Every criterion of the bar for one variant, and the overall verdict.

    ``generated`` / ``data``: the samples and the data reference the report compares; ``pool``:
    eval pieces at the generated length for the noise floor and the percentiles;
    ``chord_tones``: (generated, data) improv chord-tone ratios; ``controls``: performance
    adherence rows (requested/achieved density, histogram distance). Which family-specific
    criteria apply is the family's ``QUALITY_CRITERIA`` (:mod:`modeling.families`).
    """
    from modeling.families import load_family

    extra = load_family(family).QUALITY_CRITERIA
    c: dict[str, dict[str, Any]] = {}
    ng = (ngram or {}).get("perplexity")
    c["perplexity_vs_ngram"] = criterion(
        perplexity,
        threshold=NGRAM_MARGIN * ng if ng is not None else None,
        op="<=",
        baseline=ng,
    )
    c["samples"] = criterion(float(len(generated)), threshold=float(MIN_SAMPLES), op=">=")
    floor, sizes = noise_floor(pool, len(generated), len(data), rng)
    for key, value in distances(generated, data).items():
        f = floor[key]
        c[key] = criterion(
            value, threshold=FLOOR_FACTOR * f, op="<=", floor=f, floor_mean=floor[f"{key}_mean"]
        )
    if chord_tones is not None:
        g, d = chord_tones
        c["chord_tone_ratio"] = criterion(g, threshold=CHORD_TONE_FACTOR * d, op=">=", data=d)
    if "longest_note" in extra:
        longest = float(generated.longest.max(initial=0.0)) if len(generated) else math.nan
        c["longest_note_seconds"] = criterion(longest, threshold=data_longest, op="<=")
    if "control_requests" in extra:
        dens = [r for r in controls if "requested_density" in r]
        if dens:
            ok = [
                MS.relative_error(r["achieved_density"], r["requested_density"])
                <= DENSITY_TOLERANCE
                for r in dens
            ]
            c["density_requests_met"] = criterion(
                float(np.mean(ok)), threshold=DENSITY_SHARE, op=">=", requests=len(dens)
            )
        hist = [r for r in controls if "histogram_distance" in r]
        if hist:
            worst = max(float(r["histogram_distance"]) for r in hist)
            c["histogram_requests_distance"] = criterion(
                worst, threshold=HISTOGRAM_TV, op="<=", requests=len(hist)
            )
    if "texture_percentiles" in extra:
        for key in ("notes_per_step", "pitch_range"):
            vals = getattr(pool, key)
            vals = vals[~np.isnan(vals)]
            lo, hi = (
                (float(v) for v in np.percentile(vals, PERCENTILES)) if len(vals) else (None, None)
            )
            c[key] = criterion(_mean(getattr(generated, key)), op="in", low=lo, high=hi)
    verdicts = [v["pass"] for v in c.values()]
    return {
        "pass": all(v is True for v in verdicts),
        "passed": sum(v is True for v in verdicts),
        "criteria": c,
        "noise_floor_sizes": list(sizes),
    }


def verdict_text(quality: Mapping[str, Any]) -> tuple[str, str]:
    """("pass" | "fail", one line naming the failing or unmeasured criteria) for the registry."""
    crit = quality["criteria"]
    failing = [k for k, v in crit.items() if v["pass"] is False]
    unmeasured = [k for k, v in crit.items() if v["pass"] is None]
    text = f"{quality['passed']}/{len(crit)} criteria pass"
    if failing:
        text += f"; failing: {', '.join(failing)}"
    if unmeasured:
        text += f"; not measured: {', '.join(unmeasured)}"
    return ("pass" if quality["pass"] else "fail"), text


# ============================================================================ training time


def time_to_quality(rows: Sequence[Mapping[str, float]], band: float = TTQ_BAND) -> dict[str, Any]:
    """Seconds until the eval loss is within ``band`` of its final value and stays there.

    ``rows``: per evaluation, ``step``, ``eval_loss`` and the seconds it was reached at:
    ``wall_s`` (MLflow timestamp minus the run's start: set-up and evaluations included) and/or
    ``train_s`` (the train loop's own clock from ``loss_curve.csv``). A missing clock gives None
    (unavailable), never an estimate.
    """
    pts = sorted((r for r in rows if r.get("eval_loss") is not None), key=lambda r: r["step"])
    if not pts:
        return {"step": None, "wall_s": None, "train_s": None, "final_eval_loss": None}
    final = float(pts[-1]["eval_loss"])
    k = len(pts) - 1
    while k > 0 and abs(float(pts[k - 1]["eval_loss"]) - final) <= band * abs(final):
        k -= 1
    hit = pts[k]
    return {
        "step": int(hit["step"]),
        "wall_s": hit.get("wall_s"),
        "train_s": hit.get("train_s"),
        "final_eval_loss": final,
    }
