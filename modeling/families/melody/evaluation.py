"""Evaluation hooks of the ``Family`` protocol: decoding for statistics, uniform baselines,
request columns.

Loaded on first use through the package (``__getattr__``), never by a Beam worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from modeling.families.base import event_decoder, hook_exports, metered_keywords
from modeling.families.melody.decoding import to_note_sequence
from modeling.families.melody.extract import NUM_SPECIAL, parse_event_space

STATS_OPTIONS: Mapping[str, bool] = {"metered": True, "polyphonic": False}
EVAL_LENGTH = ("melody_steps", "num_steps")  # evaluate's setting -> the request field it fills
REQUEST_COLUMNS: Mapping[str, str] = {"primer_melody": "string"}
EXAMPLE_REQUEST: Mapping[str, Any] = {
    "primer_melody": "[60, -2, 62, -2, 64, -2, 65, -2]",
    "num_steps": 32,
}
DEFAULT_PRIMER_WORDS = "none (starts from middle C, as Magenta does)"


# Stored events at ``qpm`` (evaluation decodes data and samples at generation's tempo).
decode_events = event_decoder(to_note_sequence, metered_keywords)


def vocabulary_size(event_space: str) -> int:
    """Stored-event classes of ``event_space``: the perplexity of a uniform model over them."""
    lo, hi = parse_event_space(event_space)
    return hi - lo + NUM_SPECIAL


def uniform_events(
    event_space: str, rng: np.random.Generator, *, steps: int = 0, seconds: float = 0.0
) -> np.ndarray:
    """``steps`` events (16th steps) drawn uniformly from the stored vocabulary."""
    return rng.integers(0, vocabulary_size(event_space), steps)


def eval_primer(notes: Any) -> Mapping[str, Any] | None:
    """The eval example's first note as a one-note primer (Magenta's primer is one middle C):
    a model without key normalisation (mono_rnn) then plays in the data's keys, not C's."""
    if len(notes.pitch) == 0:
        return None
    return {"primer_melody": [int(notes.pitch[0])]}


def lowest_pitch(event_space: str) -> int:
    """MIDI pitch of the lowest stored note (chord-tone ratios read pitches from it)."""
    return parse_event_space(event_space)[0]


__all__ = hook_exports(globals())
