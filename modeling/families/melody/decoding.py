"""Stored melody indices -> note-seq Melody -> NoteSequence (generation output, statistics)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from note_seq import melodies_lib
from note_seq.protobuf import music_pb2

from modeling.families.melody.extract import (
    NUM_SPECIAL,
    indices_to_melody_events,
    parse_event_space,
)
from modeling.music import DEFAULT_QPM


def indices_to_melody(
    events: Sequence[int] | np.ndarray, space: str = "melody:48-84", steps_per_quarter: int = 4
) -> melodies_lib.Melody:
    """Stored indices -> note-seq Melody (4/4 bars, like every Magenta melody model)."""
    lo, hi = parse_event_space(space)
    idx = np.asarray(events, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= hi - lo + NUM_SPECIAL):
        raise ValueError(
            f"event index out of range for {space}: {int(idx.min())}..{int(idx.max())}"
        )
    return melodies_lib.Melody(
        indices_to_melody_events(idx, lo),
        steps_per_quarter=steps_per_quarter,
        steps_per_bar=4 * steps_per_quarter,
    )


def to_note_sequence(
    events: Sequence[int] | np.ndarray,
    cond: Mapping[str, np.ndarray] | None = None,
    *,
    qpm: float = DEFAULT_QPM,
    event_space: str = "melody:48-84",
    velocity: int = 100,
    program: int = 0,
    instrument: int = 0,
    **kw: Any,
) -> music_pb2.NoteSequence:
    """Decode stored melody indices with note-seq's ``Melody.to_sequence``."""
    if kw:
        raise TypeError(f"unexpected keyword(s) {', '.join(sorted(kw))}")
    del cond
    melody = indices_to_melody(events, event_space)
    return melody.to_sequence(velocity=velocity, instrument=instrument, program=program, qpm=qpm)
