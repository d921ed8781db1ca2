"""Stored polyphony events -> NoteSequence (generation output and statistics)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from note_seq import constants
from note_seq.protobuf import music_pb2

from modeling.families.polyphony.extract import CONTINUED_NOTE, END, NEW_NOTE, NUM_CLASSES, START
from modeling.music import DEFAULT_QPM


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
