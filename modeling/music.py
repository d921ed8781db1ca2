"""Musical constants every stage shares, defined once (issue 14).

Dependency-free on purpose: the studio, the example summaries and the families import these
without paying for note-seq or torch. The values are note-seq's (``note_seq.constants``); a test
checks that they still agree with it.
"""

from __future__ import annotations

PITCH_CLASS_NAMES: tuple[str, ...] = (
    "C",
    "C#",
    "D",
    "Eb",
    "E",
    "F",
    "F#",
    "G",
    "Ab",
    "A",
    "Bb",
    "B",
)
"""Pitch-class names by pitch % 12, sharps for C#/F#, flats otherwise (as in chord symbols)."""

STEPS_PER_BAR = 16
"""16th-note steps per 4/4 bar: note-seq's ``DEFAULT_STEPS_PER_BAR``, which its melody encoders
hard-code."""

DEFAULT_QPM = 120.0
"""Quarter notes per minute when nothing says otherwise: note-seq's
``DEFAULT_QUARTERS_PER_MINUTE``, the tempo generation writes and evaluation decodes at."""
