"""Evaluation hooks of the ``Family`` protocol: the melody family's, read over chords.

Loaded on first use through the package (``__getattr__``), never by a Beam worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modeling.families import melody as melody_family
from modeling.families.base import event_decoder, hook_exports, metered_keywords
from modeling.families.improv.decoding import to_note_sequence

# A lead sheet is a melody over chords: it decodes, samples and is measured as a melody, except
# that statistics read the melody instrument only (chords may be rendered beside it) and samples
# are generated over chord progressions and scored on chord tones.
STATS_INSTRUMENT: int | None = 0
STATS_OPTIONS = melody_family.STATS_OPTIONS
EVAL_LENGTH = melody_family.EVAL_LENGTH
CHORDS = True
REQUEST_COLUMNS: Mapping[str, str] = {
    **melody_family.REQUEST_COLUMNS,
    "backing_chords": "string",
    "steps_per_chord": "long",
    "render_chords": "boolean",
}
EXAMPLE_REQUEST: Mapping[str, Any] = {
    **melody_family.EXAMPLE_REQUEST,
    "backing_chords": "C G Am F",
    "steps_per_chord": 8,
}
DEFAULT_PRIMER_WORDS = melody_family.DEFAULT_PRIMER_WORDS
vocabulary_size = melody_family.vocabulary_size
uniform_events = melody_family.uniform_events
lowest_pitch = melody_family.lowest_pitch


# Stored melody events with their chord columns (annotations, not rendered) at ``qpm``.
decode_events = event_decoder(to_note_sequence, metered_keywords)


__all__ = hook_exports(globals())
