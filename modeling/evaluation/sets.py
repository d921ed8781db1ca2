"""Example sets, read once per run, and what is computed from their eval split once per set.

Stored events become music through the family protocol (:func:`decode` calls the family's
``decode_events``); the decoded eval examples give the data side of every statistic, the noise
floor's pool of windows, the chord progressions improv samples are generated over, and the
n-gram baseline (fitted on the train split).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modeling import musicstats as MS
from modeling import quality as Q
from modeling.evaluation.settings import QPM, SECONDS_PER_STEP, EvalError
from modeling.families import load_family
from modeling.music import STEPS_PER_BAR


def family_of(name: str) -> Any:
    """The family module ``name`` (the :class:`~modeling.families.base.Family` protocol)."""
    try:
        return load_family(name)
    except KeyError as exc:
        raise EvalError(str(exc.args[0])) from None


def decode(
    family: str, event_space: str, events: np.ndarray, cond: Mapping[str, np.ndarray] | None = None
) -> Any:
    """Stored events -> NoteSequence with the family's own decoder (note-seq underneath)."""
    return family_of(family).decode_events(events, cond, event_space=event_space, qpm=QPM)


def notes_of(family: str, ns: Any) -> MS.NoteArrays:
    """The notes statistics read from a decoded sequence (the family's ``STATS_INSTRUMENT``)."""
    return MS.NoteArrays.from_sequence(ns, instrument=family_of(family).STATS_INSTRUMENT)


def stat_options(family: str) -> dict[str, Any]:
    """How :func:`musicstats.profile` reads a family's music (grid, bars, chord texture)."""
    return {
        "seconds_per_step": SECONDS_PER_STEP,
        "steps_per_bar": STEPS_PER_BAR,
        **family_of(family).STATS_OPTIONS,
    }


def pick(indices: np.ndarray, count: int) -> np.ndarray:
    """``count`` entries spread evenly over ``indices`` (deterministic: reruns compare)."""
    if len(indices) <= count:
        return indices
    return indices[np.linspace(0, len(indices) - 1, count).round().astype(np.int64)]


# ============================================================================ example sets


@dataclass
class SetData:
    """An example set plus everything computed from it once (shared by variants of the set)."""

    examples: Any  # modeling.data.ExampleSet
    version: str
    profiles: dict[tuple[str, float], dict[str, Any]] = field(default_factory=dict)
    progressions: list[dict[str, Any]] | None = None
    chord_tone: tuple[float, int] | None = None
    ngram: dict[str, Any] | None = None
    ngram_done: bool = False
    pools: dict[tuple[str, float], tuple[Q.Pieces, float]] = field(default_factory=dict)


class Sets:
    """Loads example sets by name (each once) from ``examples_root``.

    Only the eval split is read (metrics, statistics and baselines all come from it), so a set
    without training examples is accepted: the eval-only sets of cross-corpus perplexity
    (``splits: [eval]``, e.g. ``pop909_eval``) or a variant pointed at a held-out corpus.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[Path, SetData] = {}

    def load(self, path: Path) -> SetData:
        from modeling.data import ExampleSet, ExampleSetError
        from modeling.registry import data_version

        path = Path(path)
        if path not in self.cache:
            try:
                es = ExampleSet.load(path, need_train=False)
            except ExampleSetError as exc:
                raise EvalError(str(exc)) from None
            self.cache[path] = SetData(es, data_version(path)[0])
        return self.cache[path]


def data_notes(sd: SetData, family: str, count: int, seconds: float) -> list[MS.NoteArrays]:
    """Up to ``count`` eval examples, decoded and cut to the first ``seconds``."""
    split = sd.examples.eval
    rows = pick(np.flatnonzero(split.lengths >= 2), count)
    out = []
    for i in rows.tolist():
        a, b = int(split.offsets[i]), int(split.offsets[i + 1])
        events = split.events[a:b].astype(np.int64)
        cond = {k: v[a:b] for k, v in split.cond.items()}
        ns = decode(family, sd.examples.event_space, events, cond)
        out.append(notes_of(family, ns).window(0.0, seconds))
    return out


def primer_plan(sd: SetData, family: str, count: int) -> list[tuple[dict[str, Any], int]]:
    """(request fields, samples) pairs totalling ``count``: the family's primer from each of
    ``count`` eval examples (cycled when the split has fewer), equal primers as one request;
    ``[({}, count)]`` when the family primes nothing from data."""
    hook = family_of(family).eval_primer
    examples = data_notes(sd, family, count, PRIMER_SECONDS)
    fields = [hook(notes) or {} for notes in examples] or [{}]
    counts: dict[str, int] = {}
    for i in range(count):
        key = json.dumps(fields[i % len(fields)], sort_keys=True)
        counts[key] = counts.get(key, 0) + 1
    return [(json.loads(key), n) for key, n in counts.items()]


PRIMER_SECONDS = 30.0
"""How much of an eval example's opening a primer hook sees."""

POOL_EXAMPLES = 256
"""Eval examples decoded for the noise floor and percentiles (spread evenly over the split)."""


def data_pool(sd: SetData, family: str, seconds: float) -> tuple[Q.Pieces, float]:
    """(statistics of every ``seconds``-long window of the eval examples, longest data note).

    The quality bar's noise floor draws its two random groups from these windows, and
    polyphony's percentiles come from them; windows (not whole examples) give short generated
    spans many more data pieces than there are eval examples. The longest note is measured on
    whole decoded examples and, for a family with the ``longest_note`` criterion, on the train
    split too (its ``longest_note_seconds``): the models learn their note lengths there.
    """
    key = (family, round(seconds, 6))
    if key not in sd.pools:
        split = sd.examples.eval
        windows, longest = [], 0.0
        for i in pick(np.flatnonzero(split.lengths >= 2), POOL_EXAMPLES).tolist():
            a, b = int(split.offsets[i]), int(split.offsets[i + 1])
            cond = {k: v[a:b] for k, v in split.cond.items()}
            ns = decode(family, sd.examples.event_space, split.events[a:b].astype(np.int64), cond)
            notes = notes_of(family, ns)
            longest = max(longest, float((notes.end - notes.start).max(initial=0.0)))
            k = 0
            while k == 0 or (k + 1) * seconds <= notes.total_time + 1e-9:
                windows.append(notes.window(k * seconds, (k + 1) * seconds))
                k += 1
        hooks, train = family_of(family), sd.examples.train
        if "longest_note" in hooks.QUALITY_CRITERIA and len(train):
            longest = max(longest, hooks.longest_note_seconds(train.events, train.offsets))
        sd.pools[key] = (Q.pieces(windows, SECONDS_PER_STEP), longest)
    return sd.pools[key]


def set_ngram(sd: SetData, vocabulary: int) -> dict[str, Any] | None:
    """The set's Kneser-Ney baseline (fitted once per set; None for an eval-only set)."""
    if not sd.ngram_done:
        sd.ngram = Q.ngram_baseline(sd.examples.train, sd.examples.eval, vocabulary)
        sd.ngram_done = True
    return sd.ngram


def data_chord_tone_ratio(sd: SetData) -> tuple[float, int]:
    """Chord-tone ratio of the whole eval split (flat arrays: one vectorised pass)."""
    if sd.chord_tone is None:
        split = sd.examples.eval
        if "chord_pitches" not in split.cond:
            raise EvalError(f"example set {sd.examples.name} has no chord_pitches column")
        lo = family_of(sd.examples.family).lowest_pitch(sd.examples.event_space)
        sd.chord_tone = MS.chord_tone_ratio(split.events, split.cond["chord_pitches"], lo)
    return sd.chord_tone


def progressions(sd: SetData, count: int, steps: int) -> list[dict[str, Any]]:
    """Chord progressions of eval lead sheets (first ``steps`` steps) as generation requests.

    Each becomes ``--backing_chords`` figures with ``steps_per_chord`` = the gcd of its chord
    durations, which reproduces the per-step chords exactly; the columns the generator parses
    back from the figures are kept, because they are what the model was conditioned on.
    """
    if sd.progressions is not None:
        return sd.progressions
    from modeling import primers as P
    from modeling.families.chords import columns_to_figures

    split = sd.examples.eval
    root = split.cond.get("chord_root")
    if root is None:
        raise EvalError(
            f"example set {sd.examples.name} has no chord columns (not a lead-sheet set)"
        )
    owner = np.repeat(np.arange(len(split)), split.lengths)
    with_chords = np.unique(owner[root >= 0])
    usable = with_chords[split.lengths[with_chords] >= 2]
    out = []
    for i in pick(usable, count).tolist():
        a = int(split.offsets[i])
        n = min(int(split.lengths[i]), steps)
        cols = {k: v[a : a + n] for k, v in split.cond.items()}
        figures = columns_to_figures(cols)
        change = np.flatnonzero([figures[j] != figures[j - 1] for j in range(1, n)]) + 1
        runs = np.diff(np.concatenate([[0], change, [n]]))
        g = int(np.gcd.reduce(runs))
        text = " ".join(figures[::g])
        _, parsed = P.parse_backing_chords(text, g)
        out.append(
            {
                "example": split.example_ids[i] if split.example_ids else str(i),
                "backing_chords": text,
                "steps_per_chord": g,
                "steps": n,
                "columns": parsed,
            }
        )
    sd.progressions = out
    return out


# ============================================================================ generation


def timing_and_dynamics(notes: list[MS.NoteArrays], min_gap: float = 0.04) -> dict[str, Any]:
    """How expressive a set's timing and loudness are: per piece, the share of the gaps between
    successive onsets (rounded to 10 ms; gaps under ``min_gap`` are chord spread and left out)
    that its three most common gaps take, its median over pieces, and the number of distinct
    velocities. Quantised scores (music21's chorales) measure 1.0, recorded piano (ASAP) 0.44,
    so the report can say what a set cannot teach."""
    shares = []
    for n in notes:
        gaps = np.round(np.diff(np.unique(np.round(n.start, 2))), 2)
        gaps = gaps[gaps >= min_gap]
        if len(gaps) >= 8:
            counts = np.sort(np.unique(gaps, return_counts=True)[1])[::-1]
            shares.append(float(counts[:3].sum()) / len(gaps))
    velocities = np.concatenate([n.velocity for n in notes]) if notes else np.zeros(0)
    density = window_densities(notes)
    return {
        "pieces": len(shares),
        "top3_gap_share": float(np.median(shares)) if shares else None,
        "velocities": len(np.unique(velocities)),
        "density_percentiles": np.percentile(density, np.arange(101)).round(3).tolist()
        if len(density)
        else None,
    }


DENSITY_WINDOW = 3.0
"""Seconds of Performance RNN's density control window (notes per second from an event on)."""


def window_densities(notes: list[MS.NoteArrays], window: float = DENSITY_WINDOW) -> np.ndarray:
    """Notes per second in the ``window`` from each onset that has a whole window after it: the
    densities a set plays, against which a density request can be read (the report says what
    share of them a request's 20 % band holds)."""
    out = []
    for n in notes:
        onsets = np.sort(n.start)
        starts = onsets[onsets + window <= n.total_time + 1e-9]
        counts = np.searchsorted(onsets, starts + window - 1e-9) - np.searchsorted(onsets, starts)
        out.append(counts / window)
    return np.concatenate(out) if out else np.zeros(0)
