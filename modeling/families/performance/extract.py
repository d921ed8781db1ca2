"""Extraction rules (Magenta's ``performance_pipeline`` on note-seq objects).

:func:`extract` is what the examples pipeline calls per NoteSequence. By default it takes the
faster note-array path of :mod:`.fast` and falls back to the note-seq path below (which tests
use as the reference) for sequences that path does not cover.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from note_seq import performance_lib, sequences_lib
from note_seq.performance_encoder_decoder import PerformanceOneHotEncoding
from note_seq.protobuf import music_pb2

from modeling.families.base import Dropped, Extracted
from modeling.families.performance.config import (
    TIME_SHIFT,
    PerformanceExtractConfig,
    select_instruments,
)
from modeling.families.performance.fast import _extract_chunk_fast, _Notes


def performance_indices(
    performance: performance_lib.BasePerformance, encoding: PerformanceOneHotEncoding
) -> np.ndarray:
    """note-seq events -> stored int16 indices, via note-seq's own one-hot encoding."""
    return np.fromiter((encoding.encode_event(e) for e in performance), np.int16, len(performance))


def _transposed(qns: music_pb2.NoteSequence, amount: int) -> music_pb2.NoteSequence:
    """Magenta's TranspositionPipeline on one quantised sequence (drums stay)."""
    out = music_pb2.NoteSequence()
    out.CopyFrom(qns)
    for note in out.notes:
        if not note.is_drum:
            note.pitch += amount
    return out


def extract(
    ns: music_pb2.NoteSequence,
    cfg: PerformanceExtractConfig,
    *,
    augment: bool,
    fast: bool = True,
) -> Iterator[Extracted | Dropped]:
    """Performances of one NoteSequence: per stretch, 30 s chunk and transposition, then the
    same for each of ``cfg.part_subsets`` (augment only) that has notes and leaves some out.

    Counters use Magenta's statistic names; too-short / program discards are counted once per
    chunk (Magenta counts once per transposed copy). ``performances_truncated`` counts examples
    whose tail beyond ``max_events`` was cut (the example itself is kept).

    ``fast`` (the default) does stretch, split, quantisation and ``Performance`` on note arrays
    (:class:`_Notes`), bit-identical to note-seq's objects; sequences it does not cover (see
    :meth:`_Notes.of`) and ``fast=False`` take the note-seq path, which tests use as reference.
    """
    if cfg.num_velocity_bins < 0 or cfg.num_velocity_bins > 127:
        raise ValueError(f"num_velocity_bins must be 0..127, got {cfg.num_velocity_bins}")
    yield from _extract_whole(ns, cfg, augment=augment, fast=fast)
    for parts in cfg.part_subsets if augment else ():
        subset = _parts(ns, parts)
        if any(n.part in parts for n in ns.notes) and len(subset.notes) < len(ns.notes):
            yield from _extract_whole(subset, cfg, augment=augment, fast=fast)


def _parts(ns: music_pb2.NoteSequence, parts: Sequence[int]) -> music_pb2.NoteSequence:
    """``ns`` with only the notes of ``parts`` after its first chord, which keeps every part
    (everything else, tempos and pedals, kept): music that thins out after a full chord, as a
    sparse request primed with a chord asks for."""
    first = min((n.start_time for n in ns.notes), default=0.0)
    out = music_pb2.NoteSequence()
    out.CopyFrom(ns)
    del out.notes[:]
    out.notes.extend(n for n in ns.notes if n.part in parts or n.start_time == first)
    return out


def _extract_whole(
    ns: music_pb2.NoteSequence, cfg: PerformanceExtractConfig, *, augment: bool, fast: bool
) -> Iterator[Extracted | Dropped]:
    """:func:`extract` of one (sub)sequence."""
    stretches = cfg.stretch_factors if augment else (1.0,)
    amounts = cfg.transpositions if augment else (0,)
    notes = _Notes.of(ns, cfg) if fast else None
    if isinstance(notes, Dropped):
        yield notes
        return
    if notes is not None:
        for stretch in stretches:
            for chunk in notes.chunks(float(stretch), cfg):
                yield from _extract_chunk_fast(chunk, cfg, float(stretch), amounts)
        return
    selected = select_instruments(ns, cfg.instrument_names)
    if selected is None:
        yield Dropped("performances_discarded_no_matching_instrument")
        return
    if not selected.notes:
        yield Dropped("performances_discarded_empty")
        return
    base = sequences_lib.apply_sustain_control_changes(selected) if cfg.apply_sustain else selected
    encoding = PerformanceOneHotEncoding(num_velocity_bins=cfg.num_velocity_bins)
    for stretch in stretches:
        stretched = base if stretch == 1.0 else sequences_lib.stretch_note_sequence(base, stretch)
        chunks = (
            sequences_lib.split_note_sequence(stretched, cfg.split_hop_seconds)
            if cfg.split_hop_seconds > 0
            else [stretched]
        )
        for chunk in chunks:
            yield from _extract_chunk(chunk, cfg, encoding, float(stretch), amounts)


def _extract_chunk(
    chunk: music_pb2.NoteSequence,
    cfg: PerformanceExtractConfig,
    encoding: PerformanceOneHotEncoding,
    stretch: float,
    amounts: Sequence[int],
) -> Iterator[Extracted | Dropped]:
    try:
        qns = sequences_lib.quantize_note_sequence_absolute(chunk, cfg.steps_per_second)
    except sequences_lib.NegativeTimeError:
        yield Dropped("sequences_discarded_because_negative_time")
        return
    if len({n.program for n in qns.notes}) > 1:
        yield Dropped("performances_discarded_more_than_1_program")
        return
    perf = performance_lib.Performance(qns, num_velocity_bins=cfg.num_velocity_bins)
    truncated = len(perf) > cfg.max_events
    if truncated:
        perf.truncate(cfg.max_events)
    if len(perf) < cfg.min_events:
        yield Dropped("performances_discarded_too_short")
        return
    if truncated:
        yield Dropped("performances_truncated")
    events = performance_indices(perf, encoding)
    pitches = np.fromiter((n.pitch for n in qns.notes if not n.is_drum), np.int64)
    has_drums = any(n.is_drum for n in qns.notes)
    is_note = events < TIME_SHIFT
    for amount in amounts:
        if pitches.size and (
            pitches.min() + amount < cfg.min_pitch or pitches.max() + amount > cfg.max_pitch
        ):
            yield Dropped("skipped_due_to_range_exceeded")
            continue
        if amount == 0:
            moved = events
        elif has_drums:  # drums keep their pitch, which can reorder events: rebuild fully
            p = performance_lib.Performance(
                _transposed(qns, amount), num_velocity_bins=cfg.num_velocity_bins
            )
            p.truncate(cfg.max_events)
            moved = performance_indices(p, encoding)
        else:  # same order, shifted pitches: NOTE_ON/OFF indices move by `amount`
            moved = np.where(is_note, events + amount, events).astype(np.int16)
        yield Extracted(events=moved, transposition=int(amount), stretch=stretch)
