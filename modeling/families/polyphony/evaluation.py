"""Evaluation hooks of the ``Family`` protocol: decoding for statistics, uniform baselines,
request columns.

Loaded on first use through the package (``__getattr__``), never by a Beam worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from modeling.families.base import event_decoder, hook_exports
from modeling.families.polyphony.decoding import to_note_sequence
from modeling.families.polyphony.extract import END, NUM_CLASSES, START, STEP_END

STATS_OPTIONS: Mapping[str, bool] = {"metered": True, "polyphonic": True}
EVAL_LENGTH = ("polyphony_steps", "num_steps")
QUALITY_CRITERIA: frozenset[str] = frozenset({"texture_percentiles"})
"""Notes per step and pitch range must fall in the data's percentiles (a chorale's texture)."""
REQUEST_COLUMNS: Mapping[str, str] = {
    "primer_pitches": "string",
    "condition_on_primer": "boolean",
    "inject_primer_during_generation": "boolean",
}
EXAMPLE_REQUEST: Mapping[str, Any] = {"primer_pitches": "[67, 64, 60]", "num_steps": 32}


def _decode_keywords(event_space: str, qpm: float) -> Mapping[str, Any]:
    """Stored events decode at ``qpm`` (one event space: ``event_space`` is not needed)."""
    return {"qpm": qpm}


decode_events = event_decoder(to_note_sequence, _decode_keywords)


def vocabulary_size(event_space: str) -> int:
    """Stored-event classes: START, END, STEP_END and two per pitch."""
    return NUM_CLASSES


def uniform_events(
    event_space: str, rng: np.random.Generator, *, steps: int = 0, seconds: float = 0.0
) -> np.ndarray:
    """Uniform events until ``steps`` STEP_ENDs, framed by START/END (which, as in generation,
    are never sampled)."""
    classes = np.arange(STEP_END, NUM_CLASSES)
    parts, ends = [], 0
    while ends < steps:
        chunk = classes[rng.integers(0, len(classes), 4096)]
        parts.append(chunk)
        ends += int((chunk == STEP_END).sum())
    body = np.concatenate(parts)
    cut = int(np.flatnonzero(body == STEP_END)[steps - 1]) + 1
    return np.concatenate([[START], body[:cut], [END]])


def eval_primer(notes: Any) -> Mapping[str, Any] | None:
    """The eval example's opening chord as Polyphony RNN's ``primer_pitches``: the models train
    on transposed chorales and evaluate against untransposed ones, so an unprimed sample's key
    is not the data's; primed with the data's first chord it is."""
    return opening_chord(notes)


def opening_chord(notes: Any, within: float = 1e-9) -> Mapping[str, Any] | None:
    """``primer_pitches`` of the notes starting within ``within`` seconds of the first one (None
    without notes); performance reuses it with a tolerance for played, unquantised onsets."""
    if len(notes.pitch) == 0:
        return None
    first = notes.pitch[notes.start <= notes.start.min() + within]
    return {"primer_pitches": sorted({int(p) for p in first})}


__all__ = hook_exports(globals(), "opening_chord")
