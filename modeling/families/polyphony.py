"""Polyphony RNN family: Magenta's polyphonic event language, re-written on note-seq.

How it connects: ``pipelines/examples.py`` calls :func:`extract` on every NoteSequence of the
split (Beam DoFn) and stores the resulting event indices (``EXAMPLE_SCHEMA.events``);
``modeling/train.py`` turns them into tensors with the variant's encoding (plain :class:`OneHot`
over 259 classes); ``modeling/generate.py`` uses the primer helpers below
(:func:`primer_from_pitches`, :func:`prepare_primer`, :class:`PolyphonyPrimer`), the class masks
(:func:`scale_mask`) and :func:`to_note_sequence` to turn sampled classes back into music.

The rules follow Magenta's ``polyphony_lib`` / ``polyphony_rnn_pipeline`` (not part of note-seq,
so written here from their specification): split on tempo / time-signature changes, quantise at
4 steps per quarter, transpose -4..+4 (training split only here; Magenta also augmented eval),
then one sequence per piece::

    START, then for every step: CONTINUED_NOTE(p) for notes sounding since an earlier step and
    NEW_NOTE(p) for notes starting now, sorted by pitch descending (CONTINUED before NEW on equal
    pitch), then STEP_END; finally END.

A piece with more than one MIDI program is discarded, as are pieces shorter than ``min_steps`` or
longer than ``max_steps`` steps (Magenta discards long pieces rather than truncating them).
Stored indices are Magenta's ``PolyphonyOneHotEncoding``: 0 START, 1 END, 2 STEP_END,
3 + p NEW_NOTE(p), 131 + p CONTINUED_NOTE(p).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import note_seq
import numpy as np
from note_seq import constants, sequences_lib
from note_seq.protobuf import music_pb2

from modeling.families.base import Dropped, Extracted, HParams, VariantConfig, lazy_import
from modeling.families.onehot import OneHot

if TYPE_CHECKING:
    import torch
else:
    torch = lazy_import("torch", globals())


NAME = "polyphony"

START = 0
END = 1
STEP_END = 2
NEW_NOTE = 3  # + pitch
CONTINUED_NOTE = 3 + 128  # + pitch
NUM_CLASSES = 3 + 2 * 128
EVENT_SPACE = "polyphony:0-127"

DEFAULT_QPM = constants.DEFAULT_QUARTERS_PER_MINUTE


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


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


def _check_indices(events: np.ndarray) -> np.ndarray:
    events = np.asarray(events, np.int64).reshape(-1)
    bad = events[(events < 0) | (events >= NUM_CLASSES)]
    if bad.size:
        raise ValueError(f"polyphony event index {int(bad[0])} outside 0..{NUM_CLASSES - 1}")
    return events


def to_note_sequence(
    events: np.ndarray,
    cond: Mapping[str, np.ndarray] | None = None,
    *,
    qpm: float = DEFAULT_QPM,
    steps_per_quarter: int = 4,
    velocity: int = 100,
    instrument: int = 0,
    program: int = 0,
) -> music_pb2.NoteSequence:
    """Notes of a polyphony event sequence (Magenta's ``PolyphonicSequence.to_sequence`` rules).

    A sounding pitch ends at the first STEP_END of a step that did not continue it. Unlike
    Magenta this never raises on sampled output: START/END markers not at the ends are ignored
    and notes still open at the end close at the last step (Magenta pads first with set_length).
    """
    events = _check_indices(events)
    seconds_per_step = 60.0 / qpm / steps_per_quarter
    seq = music_pb2.NoteSequence()
    seq.tempos.add().qpm = qpm
    seq.ticks_per_quarter = constants.STANDARD_PPQ

    def close(pitch: int, start: int, end: int) -> None:
        note = seq.notes.add(pitch=pitch, velocity=velocity, instrument=instrument, program=program)
        note.start_time = start * seconds_per_step
        note.end_time = end * seconds_per_step

    step = 0
    open_notes: list[tuple[int, int]] = []  # (pitch, start step), may repeat a pitch
    to_end: list[int] = []  # pitches not (yet) continued in the current step
    last = len(events) - 1
    for i, ev in enumerate(events.tolist()):
        if ev == START or (ev == END and i < last):
            continue
        if NEW_NOTE <= ev < CONTINUED_NOTE:
            open_notes.append((ev - NEW_NOTE, step))
        elif ev >= CONTINUED_NOTE:
            if ev - CONTINUED_NOTE in to_end:
                to_end.remove(ev - CONTINUED_NOTE)
        else:  # STEP_END, or the final END
            still_open = []
            for pitch, start in open_notes:
                if pitch in to_end:
                    to_end.remove(pitch)
                    close(pitch, start, step)
                else:
                    still_open.append((pitch, start))
            open_notes = still_open
            step += 1
            to_end = [p for p, _ in open_notes]
    for pitch, start in open_notes:  # unterminated sampled output: close at the last step
        close(pitch, start, max(step, start + 1))
    seq.total_time = max([seconds_per_step * max(step - 1, 0)] + [n.end_time for n in seq.notes])
    return seq


# --------------------------------------------------------------------------------------------
# Generation helpers
# --------------------------------------------------------------------------------------------


def _check_pitches(pitches: Iterable[Any]) -> list[int]:
    out = []
    for p in pitches:
        if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or not 0 <= p <= 127:
            raise ValueError(f"primer pitch {p!r} is not a MIDI pitch 0..127")
        out.append(int(p))
    if not out:
        raise ValueError("primer pitches are empty")
    return out


def primer_from_pitches(pitches: Sequence[int], qpm: float = DEFAULT_QPM) -> music_pb2.NoteSequence:
    """Magenta's ``--primer_pitches``: one chord of a quarter note at ``qpm``, velocity 100."""
    seq = music_pb2.NoteSequence()
    seq.tempos.add().qpm = qpm
    seq.ticks_per_quarter = constants.STANDARD_PPQ
    for p in _check_pitches(pitches):
        seq.notes.add(pitch=p, velocity=100, start_time=0.0, end_time=60.0 / qpm)
    seq.total_time = 60.0 / qpm
    return seq


def primer_from_melody(melody: Sequence[int], qpm: float = DEFAULT_QPM) -> music_pb2.NoteSequence:
    """Magenta's ``--primer_melody``: note-seq ``Melody`` event values (-2 hold, -1 off, pitch)."""
    values = list(melody)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not -2 <= v <= 127:
            raise ValueError(f"primer melody value {v!r} is not -2 (hold), -1 (off) or 0..127")
    if not values:
        raise ValueError("primer melody is empty")
    seq = note_seq.Melody(values).to_sequence(qpm=qpm)
    if not seq.tempos:
        seq.tempos.add().qpm = qpm
    return seq


def _split_steps(events: np.ndarray) -> tuple[np.ndarray, ...]:
    """Note events of each step (between STEP_ENDs), markers removed."""
    events = np.asarray(events, np.int64)
    ends = np.flatnonzero(events == STEP_END)
    bounds = np.concatenate([[-1], ends])
    steps = []
    for a, b in itertools.pairwise(bounds):
        chunk = events[a + 1 : b]
        steps.append(chunk[chunk >= NEW_NOTE].astype(np.int16))
    return tuple(steps)


@dataclass(frozen=True)
class PolyphonyPrimer:
    """What generation starts from, with Magenta's ``condition_on_primer`` /
    ``inject_primer_during_generation`` semantics (``polyphony_sequence_generator``).

    ``events``: the sequence fed to the model before sampling: the primer's events without the
    trailing END when conditioning on the primer, otherwise just ``[START]``.
    ``inject_steps`` / ``inject_start_step``: when injecting, at the start of generated step
    ``s`` (the sequence ends with STEP_END, or is only START) the primer's step
    ``s - inject_start_step`` note events are appended before the model samples more notes of
    that step. Magenta re-injects the primer from step ``len(primer)`` when it also conditions on
    it, and from step 0 otherwise.
    ``primer_steps``: the primer's length in steps. Magenta's output adds the primer's own notes
    back (``base_note_sequence``) when it did not condition on them.
    """

    events: np.ndarray
    primer_steps: int
    inject_steps: tuple[np.ndarray, ...] = field(default_factory=tuple)
    inject_start_step: int = 0

    def to_inject(self, events: np.ndarray) -> np.ndarray:
        """Events to append now to the growing sequence ``events`` (empty when none)."""
        events = np.asarray(events).reshape(-1)
        at_step_start = (
            len(events) == 0 or events[-1] == STEP_END or (len(events) == 1 and events[0] == START)
        )
        if not self.inject_steps or not at_step_start:
            return np.zeros(0, np.int16)
        k = int(np.count_nonzero(events == STEP_END)) - self.inject_start_step
        if 0 <= k < len(self.inject_steps):
            return self.inject_steps[k]
        return np.zeros(0, np.int16)


def primer_events(primer: music_pb2.NoteSequence, steps_per_quarter: int = 4) -> np.ndarray:
    """The primer as polyphony events: START, its steps (each closed by STEP_END), no END.

    The length is ceil(total_time) in steps; Magenta uses floor + 1, which appends one silent
    step to a primer that ends exactly on a step boundary (the usual case).
    """
    if primer.notes and len({n.program for n in primer.notes}) > 1:
        raise ValueError("the primer uses more than one MIDI program; polyphony needs one")
    qns = _quantize(primer, steps_per_quarter)
    if isinstance(qns, Dropped):
        raise ValueError(f"cannot quantise the primer: {qns.reason}")
    qpm = qns.tempos[0].qpm
    sps = sequences_lib.steps_per_quarter_to_steps_per_second(steps_per_quarter, qpm)
    total = max(int(np.ceil(primer.total_time * sps - 1e-6)), int(qns.total_quantized_steps))
    starts, ends, pitches, _ = _note_arrays(qns)
    return events_from_notes(starts, ends, pitches, total)[:-1]


def prepare_primer(
    primer: music_pb2.NoteSequence | None,
    *,
    condition_on_primer: bool = False,
    inject_primer_during_generation: bool = True,
    steps_per_quarter: int = 4,
) -> PolyphonyPrimer:
    """Starting state for generation from a primer NoteSequence (None = empty primer).

    Defaults are Magenta's ``polyphony_rnn_generate`` flags (condition off, injection on).
    """
    events = (
        primer_events(primer, steps_per_quarter)
        if primer is not None
        else np.array([START], np.int16)
    )
    num_steps = int(np.count_nonzero(events == STEP_END))
    inject = _split_steps(events) if inject_primer_during_generation else ()
    return PolyphonyPrimer(
        events=events if condition_on_primer else np.array([START], np.int16),
        primer_steps=num_steps,
        inject_steps=inject,
        inject_start_step=num_steps if condition_on_primer else 0,
    )


def events_from_primer_pitches(pitches: Sequence[int], qpm: float = DEFAULT_QPM) -> np.ndarray:
    """``--primer_pitches`` straight to the events a conditioned generation starts from."""
    return primer_events(primer_from_pitches(pitches, qpm))


def class_pitches() -> tuple[np.ndarray, np.ndarray]:
    """(pitch of each class if NEW_NOTE else -1, pitch if CONTINUED_NOTE else -1), each (259,)."""
    idx = np.arange(NUM_CLASSES)
    new = np.where((idx >= NEW_NOTE) & (idx < CONTINUED_NOTE), idx - NEW_NOTE, -1)
    cont = np.where(idx >= CONTINUED_NOTE, idx - CONTINUED_NOTE, -1)
    return new, cont


def scale_mask(pitch_classes: Iterable[int], *, mask_continued: bool = False) -> torch.Tensor:
    """Bool (259,) of classes allowed when sampling inside a scale (pitch classes 0..11).

    NEW_NOTE classes outside the scale are masked; CONTINUED_NOTE only with ``mask_continued``
    (a primer note outside the scale may still need to be held). START/END/STEP_END stay allowed.
    """
    allowed = np.zeros(12, bool)
    for pc in pitch_classes:
        if not 0 <= int(pc) <= 11:
            raise ValueError(f"pitch class {pc!r} is not 0..11")
        allowed[int(pc)] = True
    new, cont = class_pitches()
    ok = np.ones(NUM_CLASSES, bool)
    ok[new >= 0] = allowed[new[new >= 0] % 12]
    if mask_continued:
        ok[cont >= 0] = allowed[cont[cont >= 0] % 12]
    return torch.from_numpy(ok)


# --------------------------------------------------------------------------------------------
# Variants
# --------------------------------------------------------------------------------------------

POLYPHONY_ONE_HOT = OneHot(name="polyphony", event_space=EVENT_SPACE, num_classes=NUM_CLASSES)

VARIANTS: dict[str, VariantConfig] = {
    "polyphony": VariantConfig(
        name="polyphony",
        family=NAME,
        encoding=POLYPHONY_ONE_HOT,
        hparams=HParams(
            batch_size=64,
            rnn_layer_sizes=(256, 256, 256),
            dropout_keep_prob=0.5,
            clip_norm=5.0,
            learning_rate=1e-3,
        ),
        description="Polyphony RNN: START/END/STEP_END, NEW_NOTE x128, CONTINUED_NOTE x128",
    ),
}
