"""Decoding stored events to a NoteSequence, and the primer and scale helpers generation uses."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from note_seq import performance_lib, sequences_lib
from note_seq.performance_encoder_decoder import PerformanceOneHotEncoding
from note_seq.protobuf import music_pb2

from modeling.families.base import lazy_import
from modeling.families.performance.config import (
    MAX_NOTE_DURATION_SECONDS,
    STEPS_PER_SECOND,
    num_classes,
)
from modeling.families.performance.extract import performance_indices
from modeling.families.polyphony.primers import primer_from_melody, primer_from_pitches

if TYPE_CHECKING:
    import torch
else:
    torch = lazy_import("torch", globals())


def to_note_sequence(
    events: np.ndarray,
    cond: Mapping[str, np.ndarray] | None = None,
    *,
    num_velocity_bins: int = 32,
    steps_per_second: int = STEPS_PER_SECOND,
    velocity: int = 100,
    instrument: int = 0,
    program: int | None = None,
    max_note_duration: float | None = MAX_NOTE_DURATION_SECONDS,
) -> music_pb2.NoteSequence:
    """Notes of stored performance events via note-seq's ``Performance.to_sequence``.

    NOTE_OFFs without a NOTE_ON are ignored and hanging notes end after ``max_note_duration``
    seconds (Magenta's generator default, 5 s). ``num_velocity_bins`` must be the event space's.
    """
    events = np.asarray(events, np.int64).reshape(-1)
    n = num_classes(num_velocity_bins)
    bad = events[(events < 0) | (events >= n)]
    if bad.size:
        raise ValueError(
            f"performance event index {int(bad[0])} outside 0..{n - 1} "
            f"(performance:v{num_velocity_bins})"
        )
    encoding = PerformanceOneHotEncoding(num_velocity_bins=num_velocity_bins)
    perf = performance_lib.Performance(
        steps_per_second=steps_per_second, num_velocity_bins=num_velocity_bins
    )
    for index in events.tolist():
        perf.append(encoding.decode_event(index))
    return perf.to_sequence(
        velocity=velocity,
        instrument=instrument,
        program=program,
        max_note_duration=max_note_duration,
    )


def primer_events(
    primer: music_pb2.NoteSequence,
    *,
    num_velocity_bins: int = 32,
    steps_per_second: int = STEPS_PER_SECOND,
) -> np.ndarray:
    """A primer NoteSequence as stored events, padded with TIME_SHIFTs to its total time.

    As Magenta's generator (note-seq ``Performance`` of the absolutely quantised primer, then
    ``set_length``), except the length is ceil(total_time) steps where Magenta's floor + 1 adds
    10 ms of silence to a primer ending on a step boundary.
    """
    if primer.notes and len({n.program for n in primer.notes}) > 1:
        raise ValueError("the primer uses more than one MIDI program")
    try:
        qns = sequences_lib.quantize_note_sequence_absolute(primer, steps_per_second)
    except sequences_lib.NegativeTimeError as err:
        raise ValueError(f"cannot quantise the primer: {err}") from None
    perf = performance_lib.Performance(qns, num_velocity_bins=num_velocity_bins)
    steps = max(math.ceil(primer.total_time * steps_per_second - 1e-6), perf.num_steps)
    perf.set_length(steps)
    return performance_indices(perf, PerformanceOneHotEncoding(num_velocity_bins))


def events_from_primer_pitches(
    pitches: Sequence[int], *, num_velocity_bins: int = 32
) -> np.ndarray:
    """``--primer_pitches`` (a chord held for a quarter at 120 qpm) as stored events."""
    return primer_events(primer_from_pitches(pitches), num_velocity_bins=num_velocity_bins)


def events_from_primer_melody(melody: Sequence[int], *, num_velocity_bins: int = 32) -> np.ndarray:
    """``--primer_melody`` (note-seq Melody values at 120 qpm) as stored events."""
    return primer_events(primer_from_melody(melody), num_velocity_bins=num_velocity_bins)


def scale_mask(pitch_classes: Iterable[int], *, num_velocity_bins: int = 32) -> torch.Tensor:
    """Bool (classes,) allowing NOTE_ON only inside the given pitch classes; all else allowed."""
    allowed = np.zeros(12, bool)
    for pc in pitch_classes:
        if not 0 <= int(pc) <= 11:
            raise ValueError(f"pitch class {pc!r} is not 0..11")
        allowed[int(pc)] = True
    ok = np.ones(num_classes(num_velocity_bins), bool)
    ok[:128] = allowed[np.arange(128) % 12]
    return torch.from_numpy(ok)
