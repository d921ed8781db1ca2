"""Musical statistics of note sequences: what the evaluation report compares, data against samples.

How it connects: ``modeling/evaluate.py`` decodes eval examples and generated samples with the
families' own decoders (``modeling/families/*.to_note_sequence``, i.e. note-seq), turns each
NoteSequence into :class:`NoteArrays` and calls the statistics here; lead-sheet chord columns
(``pipelines.schema.CHORD_COLUMNS``) feed :func:`chord_tone_ratio` directly. Loss and perplexity
are not here: they come from ``modeling/train.py``'s scorer, so the report and training never
disagree on them.

Every statistic is a pure numpy function of note arrays (pitch, onset/offset seconds, velocity)
or stored event arrays, with a docstring saying what it measures and why it is in the report.
Degenerate inputs (no notes, zero length) give NaN rather than an exception, so one silent
sample cannot break a report; aggregates skip NaN.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from note_seq.protobuf import music_pb2

MAJOR_SCALE = np.array([0, 2, 4, 5, 7, 9, 11])
"""Major-scale degrees; natural minor and the church modes are rotations of the same set."""
MAX_INTERVAL = 12
"""Interval histograms clip at an octave (bins -12..+12): larger leaps are rare and alike."""
LEAP_SEMITONES = 7
"""Voice-leading moves wider than a fifth count as leaps (counterpoint's usual limit)."""
ONSET_DECIMALS = 6
"""Onsets closer than a microsecond are simultaneous (decoders write float seconds)."""


# ----------------------------------------------------------------------------- note arrays


@dataclass(frozen=True)
class NoteArrays:
    """The notes of one sequence as parallel numpy arrays (seconds), sorted by onset then pitch.

    Statistics take arrays rather than protos so that they vectorise and can be tested on
    hand-made inputs; :meth:`from_sequence` is the one place a NoteSequence is read.
    """

    pitch: np.ndarray
    start: np.ndarray
    end: np.ndarray
    velocity: np.ndarray
    total_time: float

    @classmethod
    def from_notes(
        cls,
        pitch: Sequence[int] | np.ndarray,
        start: Sequence[float] | np.ndarray,
        end: Sequence[float] | np.ndarray,
        velocity: Sequence[int] | np.ndarray | None = None,
        total_time: float | None = None,
    ) -> NoteArrays:
        """Build from plain lists (tests, decoded events); velocity defaults to 100."""
        p = np.asarray(pitch, np.int64).reshape(-1)
        s = np.asarray(start, np.float64).reshape(-1)
        e = np.asarray(end, np.float64).reshape(-1)
        v = np.full(len(p), 100, np.int64) if velocity is None else np.asarray(velocity, np.int64)
        if not len(p) == len(s) == len(e) == len(v):
            raise ValueError("pitch, start, end and velocity must have one length")
        order = np.lexsort((p, s))
        total = float(e.max(initial=0.0)) if total_time is None else float(total_time)
        return cls(p[order], s[order], e[order], v[order], max(total, float(e.max(initial=0.0))))

    @classmethod
    def from_sequence(
        cls, ns: music_pb2.NoteSequence, *, instrument: int | None = None
    ) -> NoteArrays:
        """Pitched notes of ``ns`` (drums skipped; one ``instrument`` only if given).

        Improv output may carry rendered chords as instrument 1: the melody is instrument 0.
        """
        notes = [
            n
            for n in ns.notes
            if not n.is_drum and (instrument is None or n.instrument == instrument)
        ]
        return cls.from_notes(
            [n.pitch for n in notes],
            [n.start_time for n in notes],
            [n.end_time for n in notes],
            [n.velocity for n in notes],
            float(ns.total_time),
        )

    def __len__(self) -> int:
        return len(self.pitch)

    def window(self, begin: float, finish: float) -> NoteArrays:
        """Notes starting in ``[begin, finish)``, clipped to ``finish``, times shifted by ``-begin``.

        Used to drop a generation primer (performance starts with a second of silence) and to
        cut eval examples to the generated length, so length-dependent statistics compare like
        with like. ``total_time`` becomes ``min(finish, total_time) - begin``.
        """
        finish = min(float(finish), self.total_time)
        keep = (self.start >= begin - 1e-9) & (self.start < finish - 1e-9)
        return NoteArrays(
            self.pitch[keep],
            self.start[keep] - begin,
            np.minimum(self.end[keep], finish) - begin,
            self.velocity[keep],
            max(finish - begin, 0.0),
        )


# ----------------------------------------------------------------------------- histograms


def pitch_class_histogram(pitch: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Share of notes (or of ``weights``, e.g. durations) per pitch class C..B; zeros if empty.

    The report's main tonal statistic: a model that learnt the corpus's keys reproduces the
    corpus's pitch-class distribution, a uniform random model spreads evenly over all twelve.
    """
    pc = np.asarray(pitch, np.int64) % 12
    w = np.ones(len(pc)) if weights is None else np.asarray(weights, np.float64)
    counts = np.bincount(pc, weights=w, minlength=12).astype(np.float64)
    total = counts.sum()
    return counts / total if total > 0 else counts


def histogram_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Total-variation distance between two histograms (each normalised first): 0 same, 1 disjoint.

    Chosen over KL because it is bounded, symmetric and defined when a bin is empty on one side
    (short samples often miss pitch classes). NaN when either histogram is empty.
    """
    p = np.asarray(p, np.float64)
    q = np.asarray(q, np.float64)
    sp, sq = p.sum(), q.sum()
    if sp <= 0 or sq <= 0:
        return float("nan")
    return float(0.5 * np.abs(p / sp - q / sq).sum())


def skyline(pitch: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(highest pitch, onset) of each distinct onset time, in time order.

    The melodic line of polyphonic music for interval statistics (for a monophonic melody it is
    the melody itself).
    """
    pitch = np.asarray(pitch, np.int64)
    onset = np.round(np.asarray(start, np.float64), ONSET_DECIMALS)
    if len(pitch) == 0:
        return pitch, onset
    order = np.lexsort((-pitch, onset))
    onset, pitch = onset[order], pitch[order]
    first = np.ones(len(onset), bool)
    first[1:] = onset[1:] != onset[:-1]
    return pitch[first], onset[first]


def intervals(pitch: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Semitone steps between successive notes of the skyline (signed, up is positive)."""
    top, _ = skyline(pitch, start)
    return np.diff(top)


def interval_histogram(
    pitch: np.ndarray, start: np.ndarray, max_interval: int = MAX_INTERVAL
) -> np.ndarray:
    """Counts of melodic intervals -max..+max (clipped) of the skyline, unnormalised.

    Measures melodic motion: stepwise corpora peak at 0 and +-1/2; random pitch choice is flat.
    Counts (not shares) so that histograms of several samples can be pooled by adding.
    """
    steps = np.clip(intervals(pitch, start), -max_interval, max_interval) + max_interval
    return np.bincount(steps, minlength=2 * max_interval + 1).astype(np.float64)


# ----------------------------------------------------------------------------- scalars


def pitch_range(pitch: np.ndarray) -> float:
    """Highest minus lowest pitch in semitones (NaN without notes): how far a line wanders."""
    pitch = np.asarray(pitch)
    return float(pitch.max() - pitch.min()) if len(pitch) else float("nan")


def note_density(num_notes: int, seconds: float) -> float:
    """Note onsets per second (NaN for zero length): Performance RNN's density control measure."""
    return float(num_notes) / seconds if seconds > 0 else float("nan")


def in_key_ratio(pitch: np.ndarray) -> tuple[float, int]:
    """(share of notes inside the best-fitting major scale, that scale's tonic pitch class).

    The key is the one of the 12 major scales (or, equally, their relative minors) holding the
    most notes, so the ratio says how diatonic a piece is whatever its key: 1.0 for a scale
    melody, 7/12 for a chromatic scale. NaN without notes.
    """
    counts = np.bincount(np.asarray(pitch, np.int64) % 12, minlength=12).astype(np.float64)
    total = counts.sum()
    if total == 0:
        return float("nan"), -1
    member = np.zeros((12, 12))
    member[np.arange(12)[:, None], (np.arange(12)[:, None] + MAJOR_SCALE) % 12] = 1.0
    inside = member @ counts
    tonic = int(np.argmax(inside))
    return float(inside[tonic] / total), tonic


def sounding_seconds(start: np.ndarray, end: np.ndarray) -> float:
    """Length of the union of the note intervals: time during which at least one note sounds.

    With intervals sorted by onset, interval i adds ``[max(s_i, M), e_i]`` where ``M`` is the
    latest end before it (the interval reaching ``M`` started no later than ``s_i``, so it covers
    everything between), which makes the union one vectorised pass.
    """
    start = np.asarray(start, np.float64)
    end = np.asarray(end, np.float64)
    if len(start) == 0:
        return 0.0
    order = np.argsort(start, kind="stable")
    s, e = start[order], end[order]
    prev_end = np.concatenate([[-np.inf], np.maximum.accumulate(e)[:-1]])
    return float(np.clip(e - np.maximum(s, prev_end), 0.0, None).sum())


def silence_ratio(start: np.ndarray, end: np.ndarray, total_time: float) -> float:
    """Share of ``[0, total_time]`` with no note sounding (NaN for zero length).

    Rests are part of style: melodies breathe, chorales barely stop; a model that forgets to end
    notes (or never starts them) shows here.
    """
    if total_time <= 0:
        return float("nan")
    s = np.clip(np.asarray(start, np.float64), 0.0, total_time)
    e = np.clip(np.asarray(end, np.float64), 0.0, total_time)
    return float(1.0 - sounding_seconds(s, e) / total_time)


def _grid(
    start: np.ndarray, end: np.ndarray, seconds_per_step: float
) -> tuple[np.ndarray, np.ndarray]:
    """Onset and end steps on a grid; every note covers at least one step."""
    s = np.round(np.asarray(start, np.float64) / seconds_per_step).astype(np.int64)
    e = np.round(np.asarray(end, np.float64) / seconds_per_step).astype(np.int64)
    return s, np.maximum(e, s + 1)


def bar_repetition(notes: NoteArrays, seconds_per_bar: float, steps_per_bar: int = 16) -> float:
    """Share of non-empty bars that repeat an earlier bar exactly (NaN without notes).

    Notes go onto a ``steps_per_bar`` grid; a bar's content is its set of (onset step in the bar,
    pitch, duration in steps clipped to the bar end). Magenta's lookback and attention models
    exist to produce such repeats, so this is where they should differ from basic_rnn.
    """
    if len(notes) == 0:
        return float("nan")
    step = seconds_per_bar / steps_per_bar
    s, e = _grid(notes.start, notes.end, step)
    bar = s // steps_per_bar
    pos = s % steps_per_bar
    dur = np.minimum(e, (bar + 1) * steps_per_bar) - s
    order = np.lexsort((dur, notes.pitch, pos, bar))
    rows = np.stack([pos, notes.pitch, dur], axis=1)[order]
    bars, first = np.unique(bar[order], return_index=True)
    seen: set[bytes] = set()
    repeats = 0
    for chunk in np.split(rows, first[1:]):
        key = chunk.tobytes()
        repeats += key in seen
        seen.add(key)
    return repeats / len(bars)


def notes_per_step(notes: NoteArrays, seconds_per_step: float) -> float:
    """Mean number of notes sounding per grid step, over steps where anything sounds.

    Polyphony RNN's texture: 4 for a four-voice chorale, 1 for a melody. Silent steps are left
    out (silence has its own statistic). NaN without notes.
    """
    if len(notes) == 0:
        return float("nan")
    s, e = _grid(notes.start, notes.end, seconds_per_step)
    delta = np.zeros(int(e.max()) + 1, np.int64)
    np.add.at(delta, s, 1)
    np.add.at(delta, e, -1)
    sounding = np.cumsum(delta)[:-1]
    busy = sounding[sounding > 0]
    return float(busy.mean()) if len(busy) else float("nan")


def voice_leading(
    pitch: np.ndarray, start: np.ndarray, leap: int = LEAP_SEMITONES
) -> tuple[float, float]:
    """(mean move in semitones, share of moves > ``leap``) between successive onset chords.

    Each note of a chord moves from the nearest pitch of the previous onset's chord; smooth voice
    leading (chorales) gives small moves and few leaps, random note choice large ones. NaN when
    there are fewer than two onsets.
    """
    pitch = np.asarray(pitch, np.int64)
    onset = np.round(np.asarray(start, np.float64), ONSET_DECIMALS)
    times, group = np.unique(onset, return_inverse=True)
    if len(times) < 2:
        return float("nan"), float("nan")
    order = np.lexsort((pitch, group))
    g, p = group[order], pitch[order]
    sizes = np.bincount(g, minlength=len(times))
    slot = np.arange(len(g)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    chords = np.full((len(times), int(sizes.max())), np.nan)
    chords[g, slot] = p
    diff = np.abs(chords[1:, :, None] - chords[:-1, None, :])  # (G-1, cur, prev)
    with np.errstate(all="ignore"):
        moves = np.nanmin(np.where(np.isnan(diff), np.inf, diff), axis=2)
    moves = moves[~np.isnan(chords[1:])]
    return float(moves.mean()), float((moves > leap).mean())


def velocity_spread(velocity: np.ndarray) -> float:
    """Standard deviation of note velocities (NaN without notes): expressive dynamics.

    0 for the velocity-free ``performance`` variant (every note at 100); a dynamics model should
    approach the corpus's spread.
    """
    v = np.asarray(velocity, np.float64)
    return float(v.std()) if len(v) else float("nan")


def chord_tone_ratio(
    events: np.ndarray, chord_pitches: np.ndarray, min_note: int = 48, num_special: int = 2
) -> tuple[float, int]:
    """(share of melody onsets whose pitch class is in the sounding chord, onsets under a chord).

    Works on stored lead-sheet arrays (``MelodyOneHotEncoding`` indices: 0 no event, 1 note off,
    ``num_special + pitch - min_note`` a note) with the per-step ``chord_pitches`` 12-bit mask;
    onsets under "no chord" (mask 0) are not counted. Improv RNN should play chord tones at
    least as often as the lead sheets it learnt from. NaN when no onset falls under a chord.
    """
    ev = np.asarray(events, np.int64).reshape(-1)
    mask = np.asarray(chord_pitches, np.int64).reshape(-1)
    if len(mask) < len(ev):
        raise ValueError(f"chord_pitches has {len(mask)} steps for {len(ev)} events")
    mask = mask[: len(ev)]
    onset = (ev >= num_special) & (mask != 0)
    pc = (ev - num_special + min_note) % 12
    hits = (mask >> pc) & 1
    n = int(onset.sum())
    return (float(hits[onset].sum() / n) if n else float("nan")), n


def relative_error(achieved: float, requested: float) -> float:
    """|achieved - requested| / requested: how far a control was missed (NaN if requested <= 0)."""
    return abs(achieved - requested) / requested if requested > 0 else float("nan")


# ----------------------------------------------------------------------------- aggregates

SCALARS = (
    "pitch_range",
    "note_density",
    "repetition",
    "in_key_ratio",
    "silence_ratio",
    "notes_per_step",
    "voice_leading_move",
    "leap_ratio",
    "velocity_spread",
)
"""Per-sequence statistics :func:`profile` averages (NaN where a family has no such notion)."""


def _nanmean(values: Iterable[float]) -> float:
    arr = np.asarray(list(values), np.float64)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if len(arr) else float("nan")


def sequence_stats(
    notes: NoteArrays,
    *,
    seconds_per_step: float = 0.125,
    steps_per_bar: int = 16,
    metered: bool = True,
    polyphonic: bool = False,
) -> dict[str, float]:
    """Every scalar statistic of one sequence.

    ``metered``: the music sits on a 16th-note grid (melody, improv, polyphony), so bars exist;
    performances (10 ms timing) have no bars and get NaN repetition. ``polyphonic``: chord
    texture statistics (notes per step, voice leading) apply.
    """
    nan = float("nan")
    move, leaps = voice_leading(notes.pitch, notes.start) if polyphonic else (nan, nan)
    return {
        "pitch_range": pitch_range(notes.pitch),
        "note_density": note_density(len(notes), notes.total_time),
        "repetition": bar_repetition(notes, seconds_per_step * steps_per_bar, steps_per_bar)
        if metered
        else nan,
        "in_key_ratio": in_key_ratio(notes.pitch)[0],
        "silence_ratio": silence_ratio(notes.start, notes.end, notes.total_time),
        "notes_per_step": notes_per_step(notes, seconds_per_step) if polyphonic else nan,
        "voice_leading_move": move,
        "leap_ratio": leaps,
        "velocity_spread": velocity_spread(notes.velocity),
    }


def profile(
    sequences: Sequence[NoteArrays],
    *,
    seconds_per_step: float = 0.125,
    steps_per_bar: int = 16,
    metered: bool = True,
    polyphonic: bool = False,
) -> dict[str, Any]:
    """Statistics of a set of sequences: scalar means over sequences plus pooled histograms.

    Histograms pool notes of all sequences (a short sample with three notes should not weigh as
    much as a long one); scalars are means of per-sequence values, NaN ones skipped.
    """
    rows = [
        sequence_stats(
            n,
            seconds_per_step=seconds_per_step,
            steps_per_bar=steps_per_bar,
            metered=metered,
            polyphonic=polyphonic,
        )
        for n in sequences
    ]
    pitches = np.concatenate([n.pitch for n in sequences]) if sequences else np.zeros(0, int)
    intervals_ = sum(
        (interval_histogram(n.pitch, n.start) for n in sequences),
        np.zeros(2 * MAX_INTERVAL + 1),
    )
    out: dict[str, Any] = {
        "num_sequences": len(sequences),
        "num_notes": len(pitches),
        "pitch_class_histogram": pitch_class_histogram(pitches),
        "interval_histogram": intervals_,
    }
    for key in SCALARS:
        out[key] = _nanmean(r[key] for r in rows)
    return out


def compare(data: dict[str, Any], other: dict[str, Any]) -> dict[str, float]:
    """Distances between two :func:`profile` results (histograms compared after normalising)."""
    return {
        "pch_distance": histogram_distance(
            data["pitch_class_histogram"], other["pitch_class_histogram"]
        ),
        "interval_distance": histogram_distance(
            data["interval_histogram"], other["interval_histogram"]
        ),
    }
