"""The array path of performance extraction equals the note-seq path, bit for bit.

``extract(..., fast=True)`` (the default) does instrument selection, sustain, stretch, 30 s split,
quantisation and ``Performance`` on note arrays; ``fast=False`` is the note-seq object path it
replaces. Each case compares every yield (stored int16 events, stretch, transposition, counter
names, in order) with augmentation on, for 0 and 32 velocity bins, and checks the array path
really ran (``_Notes.of`` gave arrays), so a silent fallback cannot make a test pass.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from _families import note_sequence as seq
from note_seq import sequences_lib
from note_seq.protobuf import music_pb2

from modeling.families import performance as Q
from modeling.families.base import Dropped, Extracted
from modeling.families.performance.config import (
    MAX_SHIFT_STEPS,
    TIME_SHIFT,
    VELOCITY,
    PerformanceExtractConfig,
)
from modeling.families.performance.fast import _Notes

BINS = (0, 32)


def as_tuples(items: list[Extracted | Dropped]) -> list[tuple]:
    return [
        ("drop", x.reason)
        if isinstance(x, Dropped)
        else (x.stretch, x.transposition, x.events.dtype.str, x.events.tobytes())
        for x in items
    ]


def assert_same(ns: music_pb2.NoteSequence, *, expect_fast: bool = True, **cfg_kw) -> list:
    """Fast == note-seq for both velocity settings; returns the fast yields (bins 32)."""
    out = []
    for bins in BINS:
        cfg = PerformanceExtractConfig(num_velocity_bins=bins, **cfg_kw)
        arrays = _Notes.of(ns, cfg)
        assert (arrays is not None) == expect_fast
        fast = list(Q.extract(ns, cfg, augment=True))
        slow = list(Q.extract(ns, cfg, augment=True, fast=False))
        assert as_tuples(fast) == as_tuples(slow), bins
        out = fast
    return out


def test_ties_same_pitch_overlaps_zero_length_and_velocity_changes() -> None:
    notes = [
        (60, 0.0, 0.5, 100),
        (64, 0.0, 0.5, 20),
        (60, 0.2, 0.7, 100),  # same-pitch overlap
        (67, 0.5, 0.5, 64),
        (62, 0.5, 1.0, 1),
        (71, 0.5049, 0.5051, 127),  # zero length
        (48, 0.7, 0.2, 90),
        (50, 1.0, 1.0, 90),
        (60, 1.0, 2.0, 33),
        (64, 1.0, 2.0, 33),
    ]
    notes += [
        (40 + i % 30, 2.0 + 0.01 * i, 2.0 + 0.01 * i + 0.3, 1 + 4 * (i % 32)) for i in range(60)
    ]
    got = assert_same(seq(notes), min_events=1)
    assert any(isinstance(x, Extracted) for x in got)
    ev = next(x for x in got if isinstance(x, Extracted)).events
    assert (ev >= VELOCITY).sum() > 10  # velocity events were exercised


def test_long_silences_split_into_maximal_shifts() -> None:
    notes = [(60, 0.0, 0.1), (62, 3.55, 3.6), (64, 12.0, 12.01), (65, 12.0 + 2.0, 14.2)]
    got = assert_same(seq(notes), min_events=1)
    plain = next(
        x.events
        for x in got
        if isinstance(x, Extracted) and (x.stretch, x.transposition) == (1.0, 0)
    )
    shifts = plain[(plain >= TIME_SHIFT) & (plain < VELOCITY)] - (TIME_SHIFT - 1)
    assert (shifts == MAX_SHIFT_STEPS).sum() >= 10 and shifts.max() == MAX_SHIFT_STEPS


def test_notes_crossing_chunk_boundaries_and_total_time() -> None:
    notes = [(60 + i % 12, 2.9 * i, 2.9 * i + 4.0, 40 + i) for i in range(40)]
    notes += [(72, 29.99, 30.0), (73, 30.0, 30.5), (74, 59.999, 61.0)]
    for total in (None, 125.0, 60.0):
        assert_same(seq(notes, total=total), min_events=4)
    assert_same(seq(notes), min_events=4, split_hop_seconds=7.5)


def test_drums_keep_their_pitch_and_reorder_transposed_events() -> None:
    notes = [(36, 0.5 * i, 0.5 * i + 0.1, 100, 9, 0, True) for i in range(40)]
    notes += [(34 + i % 5, 0.5 * i, 0.5 * i + 0.3, 70, 0, 0, False) for i in range(40)]
    got = assert_same(seq(notes), min_events=1)
    assert {x.transposition for x in got if isinstance(x, Extracted)} == set(range(-3, 4))


def test_sustain_pedal_extends_and_cuts_notes() -> None:
    notes = [
        (60, 0.0, 0.2),
        (60, 0.5, 0.6),
        (64, 0.1, 0.15),
        (60, 0.5, 0.55, 81),
        (67, 1.0, 3.0),
        (67, 1.2, 1.3),
        (70, 2.0, 2.0),
        (70, 2.0, 2.4, 79),
        (72, 3.5, 3.6),
        (36, 0.3, 0.4, 100, 0, 0, True),
        (74, 0.3, 0.35),
        (74, 0.3, 0.4, 81),
    ]  # pedal down: the first 74 ends where it starts
    notes += [(50 + i % 7, 4.0 + 0.1 * i, 4.05 + 0.1 * i) for i in range(50)]
    pedal = [
        (0.05, 100),
        (0.5, 0),
        (0.5, 127),
        (1.1, 10),
        (1.25, 64),
        (2.0, 63),
        (2.0, 90),
        (3.6, 0),
        (4.0, 70),
        (5.0, 0),
        (6.0, 90),
        (0.2, 100, 1),
        (1.0, 5, 0, 7),
    ]
    ns = seq(notes, pedal)
    assert_same(ns, min_events=1)
    # the arrays equal note-seq's sustained sequence directly (ends, order, total time)
    cfg = PerformanceExtractConfig()
    arrays = _Notes.of(ns, cfg)
    ref = sequences_lib.apply_sustain_control_changes(ns)
    assert np.array_equal(arrays.end, [n.end_time for n in ref.notes])
    assert np.array_equal(arrays.start, [n.start_time for n in ref.notes])
    assert arrays.total_time == ref.total_time
    assert len(ref.notes) < len(ns.notes)  # a note cut to nothing was deleted


def test_duplicate_notes_use_note_seq_sustain_and_still_match() -> None:
    notes = [(60, 0.0, 0.3), (60, 0.0, 0.3), (60, 0.0, 0.5), (60, 0.2, 0.4), (62, 0.0, 0.2)]
    notes += [(50 + i % 9, 1.0 + 0.05 * i, 1.1 + 0.05 * i) for i in range(40)]
    ns = seq(notes, [(0.1, 127), (0.45, 0)])
    cfg = PerformanceExtractConfig()
    arrays = _Notes.of(ns, cfg)
    assert arrays is not None
    assert (
        arrays._sustained(
            np.zeros(len(ns.notes), np.int64),
            np.array([0.1, 0.45]),
            np.array([127, 0]),
            np.zeros(2, np.int64),
        )
        is None
    )
    assert_same(ns, min_events=1)


def test_whole_sequence_drops_and_chunk_drops_match() -> None:
    named = seq(
        [(60 + i % 5, 0.1 * i, 0.1 * i + 0.05, 80, i % 2) for i in range(80)],
        names={0: "Piano", 1: "MELODY"},
    )
    assert_same(named, instrument_names=("PIANO",), min_events=1)
    assert [
        x.reason
        for x in Q.extract(
            named, PerformanceExtractConfig(instrument_names=("VIOLIN",)), augment=True
        )
    ] == ["performances_discarded_no_matching_instrument"]
    empty_track = seq([(60, 0.0, 1.0, 80, 1)], names={0: "PIANO", 1: "X"})
    assert [
        x.reason
        for x in Q.extract(
            empty_track, PerformanceExtractConfig(instrument_names=("piano",)), augment=False
        )
    ] == ["performances_discarded_empty"]
    assert_same(seq([(60, 0.1 * i, 0.1 * i + 0.2, 80, 0, i % 2) for i in range(50)]))
    too_high = seq([(125 + i % 3, 0.1 * i, 0.1 * i + 0.2) for i in range(80)])
    got = assert_same(too_high, min_events=1)
    assert ("drop", "skipped_due_to_range_exceeded") in as_tuples(got)
    # an end before a chunk start quantises to negative time in the next chunk
    negative = seq([(60, 0.0, 0.1), (61, 31.0, 29.0), (62, 31.0, 31.5)], total=40.0)
    got = assert_same(negative, min_events=1, apply_sustain=False)
    assert ("drop", "sequences_discarded_because_negative_time") in as_tuples(got)
    long = seq([(40 + i % 40, 0.01 * i, 0.01 * i + 0.02) for i in range(2000)])
    got = assert_same(long)
    assert ("drop", "performances_truncated") in as_tuples(got)


def test_cases_the_array_path_leaves_to_note_seq() -> None:
    base = [(60 + i % 5, 0.1 * i, 0.1 * i + 0.05) for i in range(60)]
    assert_same(seq(base), expect_fast=False, split_hop_seconds=0.0, min_events=1)
    for bad in (seq([*base, (128, 1.0, 2.0)]), seq([*base, (61, 1.0, float("inf"))])):
        cfg = PerformanceExtractConfig()
        assert _Notes.of(bad, cfg) is None
        with pytest.raises(ValueError):  # note-seq's own error, from either path
            list(Q.extract(bad, cfg, augment=False))
    nan = seq(base, [(float("nan"), 100)])
    for bins in BINS:
        cfg = PerformanceExtractConfig(num_velocity_bins=bins)
        assert _Notes.of(nan, cfg) is None
    quiet = seq([*base, (61, 7.0, 8.0, 0)])
    cfg0 = PerformanceExtractConfig(num_velocity_bins=0, min_events=1)
    assert _Notes.of(quiet, cfg0) is not None  # velocity 0 is fine without bins
    assert as_tuples(list(Q.extract(quiet, cfg0, augment=True))) == as_tuples(
        list(Q.extract(quiet, cfg0, augment=True, fast=False))
    )
    assert _Notes.of(quiet, PerformanceExtractConfig(num_velocity_bins=32)) is None


@pytest.mark.parametrize("seed", range(12))
def test_random_sequences_match(seed: int) -> None:
    """Coarse time grids force ties; few pitches force same-pitch overlaps; pedals toggle."""
    rng = random.Random(seed)
    grid = rng.choice([0.01, 0.005, 0.25, 1 / 3])
    notes = []
    for _ in range(rng.randint(20, 400)):
        start = round(rng.uniform(0, 70) / grid) * grid
        length = rng.choice([0.0, grid, 2 * grid, rng.uniform(0, 3), rng.uniform(0, 0.02)])
        inst = rng.choice([0, 0, 0, 1])
        notes.append(
            (
                rng.randint(55, 62) if rng.random() < 0.7 else rng.randint(0, 127),
                start,
                start + length,
                rng.randint(1, 127),
                inst,
                0,
                rng.random() < 0.05,
            )
        )
    pedal = [
        (
            round(rng.uniform(0, 75) / grid) * grid,
            rng.choice([0, 30, 63, 64, 100, 127]),
            rng.choice([0, 0, 1]),
            rng.choice([64, 64, 64, 67]),
        )
        for _ in range(rng.randint(0, 60))
    ]
    ns = seq(notes, pedal, total=rng.choice([None, 80.0, 10.0]))
    cfg = PerformanceExtractConfig()
    arrays = _Notes.of(ns, cfg)
    assert isinstance(arrays, _Notes)
    assert_same(ns, min_events=rng.choice([1, 32]), max_events=rng.choice([64, 512]))


def test_pedal_changes_at_note_boundaries_and_a_short_total_time() -> None:
    """Pedal-ups exactly at note ends / onsets; a total time shorter than the sustained notes."""
    notes = [(60, 0.0, 1.0), (62, 0.5, 2.0), (60, 2.0, 2.5), (64, 2.0, 3.0), (65, 3.0, 3.5)]
    notes += [(50 + i % 7, 0.05 * i, 0.05 * i + 0.05, 60 + i) for i in range(60)]
    pedal = [(0.5, 100), (1.0, 0), (2.0, 127), (2.5, 0), (3.0, 64), (3.0, 0), (3.5, 0)]
    for total in (None, 2.75, 3.25):
        ns = seq(notes, pedal, total=total)
        assert_same(ns, min_events=1)
        arrays = _Notes.of(ns, PerformanceExtractConfig())
        ref = sequences_lib.apply_sustain_control_changes(ns)
        assert np.array_equal(arrays.end, [n.end_time for n in ref.notes])
        assert arrays.total_time == ref.total_time
