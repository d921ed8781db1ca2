"""The quality bar (issue 12): what a model must reach, measured against baselines and the data.

How it connects. ``modeling/evaluate.py`` decodes eval examples and generated samples into
:class:`~modeling.musicstats.NoteArrays` and hands them here; this module never loads a model or
decodes events itself. It provides:

* :class:`KneserNey` / :func:`ngram_baseline`: an interpolated modified Kneser-Ney n-gram model
  over a set's *stored events* (the classes the RNN's loss is computed on), fitted on the train
  split and scored on exactly the label positions ``modeling.train.evaluate`` scores (every event
  of an example but its first), its order chosen on the eval split. Counting and lookup are
  vectorised: an n-gram is one int64 key (base ``vocabulary + 1``, the extra symbol pads the
  start of each example), tables are sorted unique keys, queries are ``np.searchsorted``.
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

NGRAM_MARGIN = 0.95
"""The RNN's eval perplexity must be at least 5 % below the n-gram's."""
MAX_ORDER = 12
"""Highest n-gram order tried, lowered to what int64 keys hold (11 for melody, 7 for
performance and polyphony vocabularies)."""
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


# ============================================================================ n-gram baseline


def _discounts(counts: np.ndarray) -> np.ndarray:
    """Modified Kneser-Ney discounts (D1, D2, D3+) from count-of-counts (Chen & Goodman 1998).

    Tiny tables lack some count classes; missing estimates fall back to the one below, and each
    D_r is kept in [0.1, r] so every seen context leaves mass for unseen events.
    """
    n1, n2, n3, n4 = (float(np.sum(counts == r)) for r in (1, 2, 3, 4))
    y = n1 / (n1 + 2 * n2) if n1 + 2 * n2 > 0 else 0.5
    d1 = 1 - 2 * y * n2 / n1 if n1 > 0 else y
    d2 = 2 - 3 * y * n3 / n2 if n2 > 0 else d1
    d3 = 3 - 4 * y * n4 / n3 if n3 > 0 else d2
    out = np.nan_to_num(np.array([d1, d2, d3]), nan=0.5)
    return np.clip(out, 0.1, np.array([1.0, 2.0, 3.0]))


@dataclass
class _Level:
    """One order's table: sorted gram keys with discounted counts, and per context its total
    count and back-off weight numerator (the discount mass it gives to the lower order)."""

    grams: np.ndarray
    discounted: np.ndarray
    contexts: np.ndarray
    totals: np.ndarray
    backoff: np.ndarray
    base: int

    @classmethod
    def build(cls, grams: np.ndarray, counts: np.ndarray, base: int) -> _Level:
        d = _discounts(counts)
        disc = d[np.minimum(counts, 3) - 1] if len(counts) else np.zeros(0)
        contexts, start = np.unique(grams // base, return_index=True)  # grams are sorted
        totals = np.add.reduceat(counts.astype(np.float64), start) if len(start) else np.zeros(0)
        backoff = np.add.reduceat(disc, start) if len(start) else np.zeros(0)
        return cls(grams, np.maximum(counts - disc, 0.0), contexts, totals, backoff, base)

    def prob(self, keys: np.ndarray, lower: np.ndarray) -> np.ndarray:
        """P(event | context) of each query key, interpolated with the lower order's ``lower``;
        an unseen context passes ``lower`` through."""
        if len(self.grams) == 0:
            return lower
        ctx = keys // self.base
        i = np.minimum(np.searchsorted(self.contexts, ctx), len(self.contexts) - 1)
        seen = self.contexts[i] == ctx
        j = np.minimum(np.searchsorted(self.grams, keys), len(self.grams) - 1)
        count = np.where(self.grams[j] == keys, self.discounted[j], 0.0)
        total = np.where(seen, self.totals[i], 1.0)
        return np.where(seen, (count + self.backoff[i] * lower) / total, lower)


def _padded(events: np.ndarray, offsets: np.ndarray, pad: int, bos: int) -> tuple[np.ndarray, ...]:
    """(sequence with ``pad`` start symbols before each example, positions of its labels).

    Labels are every event but the first of each example: the positions the RNN is scored on.
    """
    lengths = np.diff(offsets)
    n = len(lengths)
    owner = np.repeat(np.arange(n), lengths)
    within = np.arange(int(offsets[-1])) - np.repeat(offsets[:-1], lengths)
    pos = offsets[:-1][owner] + pad * (owner + 1) + within
    seq = np.full(int(offsets[-1]) + pad * n, bos, np.int64)
    seq[pos] = events
    return seq, pos[within >= 1]


class KneserNey:
    """Interpolated modified Kneser-Ney over stored event sequences, every order up to ``order``.

    The top order counts n-grams; lower orders count distinct left extensions (continuation
    counts), as KN prescribes. :meth:`nll` scores all orders 1..``order`` in one pass, since
    order k's model is order k's raw counts over orders < k's continuation chain.
    """

    def __init__(self, vocabulary: int, order: int = MAX_ORDER) -> None:
        if vocabulary < 1:
            raise ValueError(f"vocabulary must be >= 1, got {vocabulary}")
        self.vocabulary = int(vocabulary)
        self.base = self.vocabulary + 1  # + the start symbol
        fits = math.floor(62 * math.log(2) / math.log(self.base))
        self.order = max(1, min(int(order), fits))
        self.raw: list[_Level] = []
        self.cont: list[_Level] = []
        self.train_labels = 0

    def _check(self, events: np.ndarray) -> np.ndarray:
        ev = np.asarray(events, np.int64)
        if len(ev) and (int(ev.min()) < 0 or int(ev.max()) >= self.vocabulary):
            raise ValueError(f"event index outside 0..{self.vocabulary - 1}")
        return ev

    def _keys(self, seq: np.ndarray, targets: np.ndarray) -> Any:
        """Gram keys of orders 1, 2, ... ending at ``targets`` (oldest symbol most significant)."""
        key = np.zeros(len(targets), np.int64)
        for k in range(1, self.order + 1):
            key = key + seq[targets - k + 1] * np.int64(self.base ** (k - 1))
            yield k, key

    def fit(self, events: np.ndarray, offsets: np.ndarray) -> KneserNey:
        """Count every order on the labels of one split (flat events + offsets)."""
        seq, targets = _padded(self._check(events), offsets, self.order - 1, self.vocabulary)
        self.train_labels = len(targets)
        uniques: list[tuple[np.ndarray, np.ndarray]] = []
        for _, key in self._keys(seq, targets):
            uniques.append(np.unique(key, return_counts=True))
        self.raw = [_Level.build(g, c, self.base) for g, c in uniques]
        self.cont = []
        for k in range(1, self.order):
            suffix = uniques[k][0] % np.int64(self.base**k)  # order k+1 grams minus oldest
            g, c = np.unique(suffix, return_counts=True)
            self.cont.append(_Level.build(g, c, self.base))
        return self

    def nll(self, events: np.ndarray, offsets: np.ndarray) -> tuple[dict[int, float], int]:
        """({order: summed negative log-likelihood in nats}, number of labels) of a split."""
        seq, targets = _padded(self._check(events), offsets, self.order - 1, self.vocabulary)
        lower = np.full(len(targets), 1.0 / self.vocabulary)
        out: dict[int, float] = {}
        for k, key in self._keys(seq, targets):
            top = self.raw[k - 1].prob(key, lower)
            out[k] = float(-np.log(top).sum())
            if k < self.order:
                lower = self.cont[k - 1].prob(key, lower)
        return out, len(targets)

    def probabilities(self, context: Sequence[int], order: int) -> np.ndarray:
        """P(every event | ``context``) under the order-``order`` model (tests: sums to 1)."""
        padded = [self.vocabulary] * (self.order - 1) + [int(c) for c in context]
        rows = [[*padded, w] for w in range(self.vocabulary)]
        seq = np.asarray(rows, np.int64).reshape(-1)
        width = len(padded) + 1
        targets = np.arange(self.vocabulary) * width + width - 1
        lower = np.full(self.vocabulary, 1.0 / self.vocabulary)
        for k, key in self._keys(seq, targets):
            if k == order:
                return self.raw[k - 1].prob(key, lower)
            lower = self.cont[k - 1].prob(key, lower)
        raise ValueError(f"order must be in 1..{self.order}, got {order}")


NGRAM_MAX_TRAIN_EVENTS = 20_000_000
"""The n-gram is fitted on at most this many train events (whole examples, a seeded sample):
counting every order of the full profile's 263M augmented performance events took over 21 GB."""


def sample_examples(
    events: np.ndarray, offsets: np.ndarray, max_events: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Whole examples, in a seeded random order, until ``max_events`` (all of them if fewer)."""
    lengths = np.diff(offsets)
    if int(lengths.sum()) <= max_events:
        return events, offsets
    order = np.random.default_rng(seed).permutation(len(lengths))
    keep = np.sort(order[np.cumsum(lengths[order]) <= max_events])
    parts = [events[offsets[i] : offsets[i + 1]] for i in keep]
    new_offsets = np.concatenate([[0], np.cumsum(lengths[keep])]).astype(np.int64)
    flat = np.concatenate(parts) if parts else events[:0]
    return flat, new_offsets


def ngram_baseline(
    train: Any,
    eval_: Any,
    vocabulary: int,
    max_order: int = MAX_ORDER,
    max_train_events: int = NGRAM_MAX_TRAIN_EVENTS,
) -> dict[str, Any] | None:
    """The n-gram baseline of one example set: fit on ``train``, order chosen on ``eval_``.

    ``train`` / ``eval_`` are :class:`modeling.data.ExampleSplit` (flat events + offsets). None
    when the train split has no label (an eval-only set): there is nothing to fit. A train split
    over ``max_train_events`` is fitted on a seeded sample of its examples (memory is linear in
    the events counted); ``train_events_used`` says how many.
    """
    import time

    started = time.perf_counter()
    events, offsets = sample_examples(train.events, train.offsets, max_train_events)
    model = KneserNey(vocabulary, max_order).fit(events, offsets)
    if model.train_labels == 0:
        return None
    sums, labels = model.nll(eval_.events, eval_.offsets)
    if labels == 0:
        return None
    by_order = {k: math.exp(v / labels) for k, v in sums.items()}
    best = min(by_order, key=lambda k: by_order[k])
    return {
        "order": best,
        "loss": sums[best] / labels,
        "perplexity": by_order[best],
        "perplexity_by_order": {str(k): v for k, v in by_order.items()},
        "labels": labels,
        "train_labels": model.train_labels,
        "train_events_used": len(events),
        "train_events": len(train.events),
        "seconds": time.perf_counter() - started,
    }


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
    adherence rows (requested/achieved density, histogram distance).
    """
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
    if family == "performance":
        longest = float(generated.longest.max(initial=0.0)) if len(generated) else math.nan
        c["longest_note_seconds"] = criterion(longest, threshold=data_longest, op="<=")
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
    if family == "polyphony":
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
