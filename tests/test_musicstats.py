"""Known-answer tests of ``modeling.musicstats``: each statistic on hand-made sequences whose value
can be worked out by hand, plus the NoteSequence reader on a real note-seq decode."""

from __future__ import annotations

import math

import numpy as np
import pytest
from note_seq.protobuf import music_pb2

from modeling import musicstats as MS

Q = 0.125  # one 16th note at 120 qpm
BAR = 16 * Q


def notes(
    *spec: tuple[int, float, float], total: float | None = None, velocity: list[int] | None = None
) -> MS.NoteArrays:
    """NoteArrays from (pitch, start, end) triples."""
    p, s, e = zip(*spec, strict=True) if spec else ((), (), ())
    return MS.NoteArrays.from_notes(p, s, e, velocity, total)


def melody(pitches: list[int], step: float = Q) -> MS.NoteArrays:
    """One note per step, each lasting one step."""
    return notes(*[(p, i * step, (i + 1) * step) for i, p in enumerate(pitches)])


# ----------------------------------------------------------------------------- histograms


def test_pitch_class_histogram_counts_and_weights() -> None:
    h = MS.pitch_class_histogram(np.array([60, 64, 67, 72]))
    want = np.zeros(12)
    want[[0, 4, 7]] = [0.5, 0.25, 0.25]
    np.testing.assert_allclose(h, want)
    # duration weights: C for 3 s, G for 1 s
    h = MS.pitch_class_histogram(np.array([48, 55]), np.array([3.0, 1.0]))
    assert h[0] == pytest.approx(0.75) and h[7] == pytest.approx(0.25)
    assert MS.pitch_class_histogram(np.array([], int)).sum() == 0


def test_histogram_distance_bounds_and_value() -> None:
    a = np.array([1.0] + [0.0] * 11)
    uniform = np.ones(12)
    assert MS.histogram_distance(a, a * 5) == 0.0  # normalised first
    assert MS.histogram_distance(a, np.roll(a, 3)) == pytest.approx(1.0)  # disjoint
    assert MS.histogram_distance(a, uniform) == pytest.approx(11 / 12)
    assert math.isnan(MS.histogram_distance(a, np.zeros(12)))


def test_skyline_and_interval_histogram() -> None:
    # a C-major chord, then 72 alone, then 71: the top line is 67 -> 72 -> 71
    n = notes((60, 0.0, 1.0), (64, 0.0, 1.0), (67, 0.0, 1.0), (72, 1.0, 2.0), (71, 2.0, 3.0))
    top, onsets = MS.skyline(n.pitch, n.start)
    assert top.tolist() == [67, 72, 71] and onsets.tolist() == [0.0, 1.0, 2.0]
    np.testing.assert_array_equal(MS.intervals(n.pitch, n.start), [5, -1])
    h = MS.interval_histogram(n.pitch, n.start)
    assert len(h) == 25 and h.sum() == 2
    assert h[12 + 5] == 1 and h[12 - 1] == 1
    # leaps beyond an octave fall into the end bins
    h = MS.interval_histogram(np.array([40, 80, 30]), np.array([0.0, 1.0, 2.0]))
    assert h[24] == 1 and h[0] == 1


# ----------------------------------------------------------------------------- scalars


def test_pitch_range_and_density() -> None:
    assert MS.pitch_range(np.array([60, 67, 72, 65])) == 12.0
    assert math.isnan(MS.pitch_range(np.array([])))
    assert MS.note_density(4, 2.0) == 2.0
    assert math.isnan(MS.note_density(3, 0.0))


def test_in_key_ratio() -> None:
    c_major = [60, 62, 64, 65, 67, 69, 71, 72]
    ratio, tonic = MS.in_key_ratio(np.array(c_major))
    assert ratio == 1.0 and tonic == 0
    ratio, tonic = MS.in_key_ratio(np.array([67, 69, 71, 72, 74, 76, 78]))  # G major, F#
    assert ratio == 1.0 and tonic == 7
    ratio, _ = MS.in_key_ratio(np.arange(60, 72))  # chromatic: 7 of 12 in any scale
    assert ratio == pytest.approx(7 / 12)
    ratio, tonic = MS.in_key_ratio(np.array([60, 62, 64, 66]))  # F# fits G/D major, not C
    assert ratio == 1.0 and tonic in (2, 7)
    assert math.isnan(MS.in_key_ratio(np.array([], int))[0])


def test_silence_ratio_union_of_overlaps() -> None:
    assert MS.silence_ratio(np.array([0.0, 2.0]), np.array([1.0, 3.0]), 4.0) == pytest.approx(0.5)
    # overlapping and nested notes count once: [0, 3] sounds, [3, 4] is silent
    s, e = np.array([0.0, 1.0, 0.5]), np.array([2.0, 3.0, 1.0])
    assert MS.sounding_seconds(s, e) == pytest.approx(3.0)
    assert MS.silence_ratio(s, e, 4.0) == pytest.approx(0.25)
    # notes past the end are clipped
    assert MS.silence_ratio(np.array([0.0]), np.array([10.0]), 4.0) == 0.0
    assert MS.silence_ratio(np.array([]), np.array([]), 2.0) == 1.0


def test_bar_repetition() -> None:
    a = [(60, 0 * Q, 2 * Q), (64, 4 * Q, 8 * Q)]
    b = [(62, 0 * Q, 4 * Q)]

    def bar(content: list[tuple[int, float, float]], k: int) -> list[tuple[int, float, float]]:
        return [(p, s + k * BAR, e + k * BAR) for p, s, e in content]

    # bars A B A A: the 3rd and 4th repeat an earlier bar -> 2 of 4
    n = notes(*bar(a, 0), *bar(b, 1), *bar(a, 2), *bar(a, 3))
    assert MS.bar_repetition(n, BAR) == pytest.approx(0.5)
    # an empty bar (bar 1) is not counted; A _ A -> 1 of 2
    n = notes(*bar(a, 0), *bar(a, 2))
    assert MS.bar_repetition(n, BAR) == pytest.approx(0.5)
    # same onsets, other duration: not a repeat
    n = notes(*bar(a, 0), (60, BAR, BAR + 3 * Q), (64, BAR + 4 * Q, BAR + 8 * Q))
    assert MS.bar_repetition(n, BAR) == 0.0
    assert math.isnan(MS.bar_repetition(notes(), BAR))


def test_notes_per_step() -> None:
    # a triad held two steps, then one note for two steps: (3 + 3 + 1 + 1) / 4
    n = notes((60, 0, 2 * Q), (64, 0, 2 * Q), (67, 0, 2 * Q), (72, 2 * Q, 4 * Q))
    assert MS.notes_per_step(n, Q) == pytest.approx(2.0)
    # silent steps in between are left out
    n = notes((60, 0, Q), (62, 5 * Q, 6 * Q))
    assert MS.notes_per_step(n, Q) == 1.0


def test_voice_leading() -> None:
    # C-E-G -> C-F-A: C stays (0), F from E (1), A from G (2) -> mean 1, no leaps
    n = notes((60, 0, 1), (64, 0, 1), (67, 0, 1), (60, 1, 2), (65, 1, 2), (69, 1, 2))
    move, leaps = MS.voice_leading(n.pitch, n.start)
    assert move == pytest.approx(1.0) and leaps == 0.0
    # a chord then a distant note: 84 is 17 from 67 -> one leap of one move
    n = notes((60, 0, 1), (67, 0, 1), (84, 1, 2))
    move, leaps = MS.voice_leading(n.pitch, n.start)
    assert move == 17.0 and leaps == 1.0
    assert all(math.isnan(x) for x in MS.voice_leading(np.array([60]), np.array([0.0])))


def test_velocity_spread_and_relative_error() -> None:
    assert MS.velocity_spread(np.array([60, 100])) == pytest.approx(20.0)
    assert MS.velocity_spread(np.array([100, 100, 100])) == 0.0
    assert MS.relative_error(5.0, 4.0) == pytest.approx(0.25)
    assert MS.relative_error(3.0, 4.0) == pytest.approx(0.25)
    assert math.isnan(MS.relative_error(1.0, 0.0))


def test_chord_tone_ratio_on_stored_events() -> None:
    c_major = (1 << 0) | (1 << 4) | (1 << 7)
    # stored melody indices for 48..84: index = 2 + pitch - 48
    e4, f4, g4, c5 = (2 + p - 48 for p in (64, 65, 67, 72))
    events = np.array([e4, 0, f4, 1, g4, c5, e4])
    chords = np.array([c_major, c_major, c_major, c_major, c_major, 0, 0])
    ratio, n = MS.chord_tone_ratio(events, chords)
    # onsets under a chord: E (yes), F (no), G (yes); C5 and the last E are under N.C.
    assert n == 3 and ratio == pytest.approx(2 / 3)
    ratio, n = MS.chord_tone_ratio(np.array([0, 1]), np.array([c_major, c_major]))
    assert n == 0 and math.isnan(ratio)
    with pytest.raises(ValueError, match="chord_pitches has 1 steps"):
        MS.chord_tone_ratio(np.array([2, 3]), np.array([c_major]))


# ----------------------------------------------------------------------------- arrays, aggregates


def test_note_arrays_from_sequence_and_window() -> None:
    ns = music_pb2.NoteSequence()
    ns.notes.add(pitch=67, start_time=1.0, end_time=3.5, velocity=80, instrument=0)
    ns.notes.add(pitch=60, start_time=0.0, end_time=1.0, velocity=90, instrument=0)
    ns.notes.add(pitch=48, start_time=0.0, end_time=4.0, velocity=50, instrument=1)
    ns.notes.add(pitch=36, start_time=0.0, end_time=0.1, is_drum=True)
    ns.total_time = 4.0
    n = MS.NoteArrays.from_sequence(ns)
    assert n.pitch.tolist() == [48, 60, 67]  # sorted by onset then pitch, drums skipped
    melody = MS.NoteArrays.from_sequence(ns, instrument=0)
    assert melody.pitch.tolist() == [60, 67] and melody.velocity.tolist() == [90, 80]
    w = melody.window(0.5, 3.0)  # drops the note starting before 0.5, clips 67 at 3.0
    assert w.pitch.tolist() == [67]
    assert w.start.tolist() == [0.5] and w.end.tolist() == [2.5] and w.total_time == 2.5


def test_profile_pools_histograms_and_averages_scalars() -> None:
    a = melody([60, 62, 64, 65])  # 4 notes in 0.5 s
    b = melody([67, 67])  # 2 notes in 0.25 s
    p = MS.profile([a, b])
    assert p["num_sequences"] == 2 and p["num_notes"] == 6
    assert p["pitch_class_histogram"][7] == pytest.approx(2 / 6)  # pooled, not averaged
    assert p["interval_histogram"].sum() == 4  # 3 + 1 intervals
    assert p["note_density"] == pytest.approx(8.0)  # both 8 notes/s
    assert p["pitch_range"] == pytest.approx((5 + 0) / 2)
    assert math.isnan(p["notes_per_step"])  # not polyphonic
    same = MS.compare(p, p)
    assert same == {"pch_distance": 0.0, "interval_distance": 0.0}
    perf = MS.profile([a], metered=False)
    assert math.isnan(perf["repetition"])


def test_decoded_melody_statistics() -> None:
    """A decoded Magenta melody (note-seq ``Melody.to_sequence``) gives the hand-counted values."""
    from modeling.families import melody as mfam
    from modeling.families.melody.extract import melody_events_to_indices

    # C D E F G held 2 steps each, then 2 steps rest: 12 steps = 1.5 s at 120 qpm
    values = [60, -2, 62, -2, 64, -2, 65, -2, 67, -2, -1, -2]
    ns = mfam.to_note_sequence(melody_events_to_indices(values), qpm=120.0)
    ns.total_time = 12 * Q
    n = MS.NoteArrays.from_sequence(ns)
    stats = MS.sequence_stats(n)
    assert n.pitch.tolist() == [60, 62, 64, 65, 67]
    assert stats["pitch_range"] == 7.0
    assert stats["note_density"] == pytest.approx(5 / 1.5)
    assert stats["silence_ratio"] == pytest.approx(2 / 12)
    assert stats["in_key_ratio"] == 1.0
    np.testing.assert_array_equal(MS.intervals(n.pitch, n.start), [2, 2, 1, 2])
