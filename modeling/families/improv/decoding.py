"""Stored melody events plus chord columns -> a lead-sheet NoteSequence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from note_seq import chords_lib, lead_sheets_lib
from note_seq.protobuf import music_pb2

from modeling.families.chords import COLUMN_DTYPES, columns_to_figures
from modeling.families.melody.decoding import indices_to_melody
from modeling.music import DEFAULT_QPM


def to_note_sequence(
    events: Sequence[int] | np.ndarray,
    cond: Mapping[str, np.ndarray],
    *,
    qpm: float = DEFAULT_QPM,
    event_space: str = "melody:48-84",
    velocity: int = 100,
    program: int = 0,
    render_chords: bool = False,
    chord_program: int = 0,
    chord_velocity: int = 80,
    **kw: Any,
) -> music_pb2.NoteSequence:
    """Melody notes plus CHORD_SYMBOL annotations (note-seq ``LeadSheet.to_sequence``).

    ``cond`` holds the chord columns, at least as long as ``events`` (extra steps are ignored).
    With ``render_chords`` the chords are also played as instrument 1 by note-seq's
    ``BasicChordRenderer`` (held chord tones plus bass).
    """
    if kw:
        raise TypeError(f"unexpected keyword(s) {', '.join(sorted(kw))}")
    n = len(events)
    cols = {c: np.asarray(cond[c])[:n] for c in COLUMN_DTYPES if c in cond}
    if any(len(v) < n for v in cols.values()):
        raise ValueError(f"chord columns are shorter than the {n} melody events")
    figures = columns_to_figures(cols)
    melody = indices_to_melody(events, event_space)
    chords = chords_lib.ChordProgression(
        figures, steps_per_quarter=melody.steps_per_quarter, steps_per_bar=melody.steps_per_bar
    )
    sheet = lead_sheets_lib.LeadSheet(melody, chords)
    ns = sheet.to_sequence(velocity=velocity, qpm=qpm)
    for note in ns.notes:
        note.program = program
    ns.total_time = max(ns.total_time, n * 60.0 / qpm / melody.steps_per_quarter)
    if render_chords:
        chords_lib.BasicChordRenderer(
            velocity=chord_velocity, instrument=1, program=chord_program
        ).render(ns)
    return ns
