"""Primers and class masks for generation: pitches or a melody as a primer NoteSequence, a
primer's events (:class:`PolyphonyPrimer`, :func:`prepare_primer`) and scale masks.

The performance family reuses :func:`primer_from_pitches` / :func:`primer_from_melody`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import note_seq
import numpy as np
from note_seq import constants, sequences_lib
from note_seq.protobuf import music_pb2

from modeling.families.base import Dropped, lazy_import
from modeling.families.polyphony.extract import (
    CONTINUED_NOTE,
    NEW_NOTE,
    NUM_CLASSES,
    START,
    STEP_END,
    _note_arrays,
    _quantize,
    events_from_notes,
)
from modeling.music import DEFAULT_QPM

if TYPE_CHECKING:
    import torch
else:
    torch = lazy_import("torch", globals())


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
