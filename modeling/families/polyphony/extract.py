"""Polyphony's event language and extraction rules (Magenta's ``polyphony_rnn_pipeline``).

:func:`extract` is what the examples pipeline calls per NoteSequence; :func:`events_from_notes`
writes the event language of the package docstring from note arrays.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from note_seq import constants, sequences_lib
from note_seq.protobuf import music_pb2

from modeling.families.base import Dropped, Extracted

NAME = "polyphony"

START = 0
END = 1
STEP_END = 2
NEW_NOTE = 3  # + pitch
CONTINUED_NOTE = 3 + 128  # + pitch
NUM_CLASSES = 3 + 2 * 128
EVENT_SPACE = "polyphony:0-127"


@dataclass(frozen=True)
class PolyphonyExtractConfig:
    """Magenta's polyphony extraction rules (``polyphony_rnn_pipeline``), one field per rule."""

    steps_per_quarter: int = 4
    min_steps: int = 80  # shorter pieces are discarded
    max_steps: int = 512  # longer pieces are discarded (Magenta: max_steps_discard, no truncation)
    transpositions: tuple[int, ...] = (-4, -3, -2, -1, 0, 1, 2, 3, 4)  # applied when augment=True
    min_pitch: int = constants.MIN_MIDI_PITCH  # a transposition leaving this range is skipped
    max_pitch: int = constants.MAX_MIDI_PITCH
    split_on_time_changes: bool = True  # Magenta's TimeChangeSplitter
    single_program: bool = True  # Magenta discards pieces whose notes use more than one program


INFO_COUNTERS: frozenset[str] = frozenset()
"""Counter names yielded as :class:`Dropped` that discard nothing (they only count an event)."""

EXTRACT_CONFIG = PolyphonyExtractConfig


def event_space(cfg: PolyphonyExtractConfig | None = None) -> str:
    """The stored-event vocabulary name (independent of the extraction knobs)."""
    return EVENT_SPACE


# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------

_QUANTIZE_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (
        sequences_lib.MultipleTimeSignatureError,
        "sequences_discarded_because_multiple_time_signatures",
    ),
    (sequences_lib.MultipleTempoError, "sequences_discarded_because_multiple_tempos"),
    (sequences_lib.BadTimeSignatureError, "sequences_discarded_because_bad_time_signature"),
    (sequences_lib.NegativeTimeError, "sequences_discarded_because_negative_time"),
)


def _note_arrays(qns: music_pb2.NoteSequence) -> tuple[np.ndarray, ...]:
    """(start_step, end_step, pitch, is_drum) of a quantised NoteSequence as int arrays."""
    n = len(qns.notes)
    starts = np.fromiter((x.quantized_start_step for x in qns.notes), np.int64, n)
    ends = np.fromiter((x.quantized_end_step for x in qns.notes), np.int64, n)
    pitches = np.fromiter((x.pitch for x in qns.notes), np.int64, n)
    drums = np.fromiter((x.is_drum for x in qns.notes), bool, n)
    return starts, ends, pitches, drums


def events_from_notes(
    starts: np.ndarray, ends: np.ndarray, pitches: np.ndarray, total_steps: int
) -> np.ndarray:
    """Polyphony event indices (START ... END) of quantised notes, vectorised with numpy.

    A note sounding over steps ``[start, end)`` gives NEW_NOTE at ``start`` and CONTINUED_NOTE at
    every later step before ``end``; each of the ``total_steps`` steps closes with STEP_END.
    Notes must satisfy ``0 <= start < end <= total_steps`` (quantisation guarantees it).
    """
    starts = np.asarray(starts, np.int64)
    ends = np.asarray(ends, np.int64)
    pitches = np.asarray(pitches, np.int64)
    lengths = ends - starts
    total = int(lengths.sum())
    note_of = np.repeat(np.arange(len(starts)), lengths)
    offset = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    steps = starts[note_of] + offset
    pitch = pitches[note_of]
    is_new = offset == 0
    codes = np.where(is_new, NEW_NOTE + pitch, CONTINUED_NOTE + pitch)

    all_steps = np.concatenate([steps, np.arange(total_steps)])
    slot = np.concatenate([np.zeros(total, np.int64), np.ones(total_steps, np.int64)])
    neg_pitch = np.concatenate([-pitch, np.zeros(total_steps, np.int64)])
    new_flag = np.concatenate([is_new.astype(np.int64), np.zeros(total_steps, np.int64)])
    # lexsort: last key is primary -> step, then notes before STEP_END, pitch descending,
    # CONTINUED before NEW on equal pitch (Magenta's stable sort keeps that order).
    order = np.lexsort((new_flag, neg_pitch, slot, all_steps))
    body = np.concatenate([codes, np.full(total_steps, STEP_END, np.int64)])[order]
    return np.concatenate([[START], body, [END]]).astype(np.int16)


def _quantize(
    ns: music_pb2.NoteSequence, steps_per_quarter: int
) -> music_pb2.NoteSequence | Dropped:
    try:
        return sequences_lib.quantize_note_sequence(ns, steps_per_quarter)
    except tuple(e for e, _ in _QUANTIZE_ERRORS) as err:
        reason = next(r for e, r in _QUANTIZE_ERRORS if isinstance(err, e))
        return Dropped(reason)


def extract(
    ns: music_pb2.NoteSequence, cfg: PolyphonyExtractConfig, *, augment: bool
) -> Iterator[Extracted | Dropped]:
    """Polyphonic sequences of one NoteSequence (one per time-change part and transposition).

    Counters (``Dropped.reason``) use Magenta's statistic names; unlike Magenta they count each
    part once, not once per transposed copy.
    """
    parts = (
        sequences_lib.split_note_sequence_on_time_changes(ns) if cfg.split_on_time_changes else [ns]
    )
    if not parts:
        yield Dropped("sequences_discarded_because_empty")
        return
    amounts = cfg.transpositions if augment else (0,)
    for part in parts:
        qns = _quantize(part, cfg.steps_per_quarter)
        if isinstance(qns, Dropped):
            yield qns
            continue
        if cfg.single_program and len({n.program for n in qns.notes}) > 1:
            yield Dropped("polyphonic_tracks_discarded_more_than_1_program")
            continue
        starts, ends, pitches, drums = _note_arrays(qns)
        if np.any(ends <= starts):
            yield Dropped("polyphonic_tracks_discarded_note_ends_before_start")
            continue
        num_steps = int(qns.total_quantized_steps)
        if num_steps < cfg.min_steps:
            yield Dropped("polyphonic_tracks_discarded_too_short")
            continue
        if num_steps > cfg.max_steps:
            yield Dropped("polyphonic_tracks_discarded_too_long")
            continue
        for amount in amounts:
            moved = np.where(drums, pitches, pitches + amount)
            if moved.size and (moved.min() < cfg.min_pitch or moved.max() > cfg.max_pitch):
                yield Dropped("skipped_due_to_range_exceeded")
                continue
            yield Extracted(
                events=events_from_notes(starts, ends, moved, num_steps), transposition=int(amount)
            )
