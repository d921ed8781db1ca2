"""Spec tests of the polyphony family: hand-built NoteSequences with hand-written event lists,
Magenta's extraction rules and counters, decoding, and the generation helpers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from _family_reference import reference_step_context
from note_seq.protobuf import music_pb2

from modeling.families import polyphony as P
from modeling.families.base import Dropped, Encoding, Extracted
from modeling.families.polyphony.extract import (
    CONTINUED_NOTE,
    END,
    NEW_NOTE,
    NUM_CLASSES,
    START,
    STEP_END,
    PolyphonyExtractConfig,
)
from modeling.families.polyphony.primers import (
    class_pitches,
    events_from_primer_pitches,
    prepare_primer,
    primer_events,
    primer_from_melody,
    primer_from_pitches,
    scale_mask,
)

STEP = 0.125  # seconds per 16th at 120 qpm, 4 steps per quarter
S, E, SE = START, END, STEP_END


def N(p: int) -> int:
    return NEW_NOTE + p


def C(p: int) -> int:
    return CONTINUED_NOTE + p


def seq(
    notes: list[tuple[int, float, float]],
    *,
    total: float | None = None,
    program: int = 0,
    qpm: float = 120.0,
) -> music_pb2.NoteSequence:
    """NoteSequence from (pitch, start step, end step) in 16ths at ``qpm``."""
    ns = music_pb2.NoteSequence()
    ns.tempos.add(qpm=qpm)
    ns.time_signatures.add(numerator=4, denominator=4)
    step = 60.0 / qpm / 4
    for pitch, a, b in notes:
        ns.notes.add(
            pitch=pitch, start_time=a * step, end_time=b * step, velocity=90, program=program
        )
    ns.total_time = max([b * step for _, _, b in notes] + [(total or 0) * step])
    return ns


NO_LIMITS = PolyphonyExtractConfig(min_steps=0, max_steps=10_000)


def only_events(ns: music_pb2.NoteSequence, cfg: PolyphonyExtractConfig = NO_LIMITS) -> list[int]:
    out = list(P.extract(ns, cfg, augment=False))
    assert len(out) == 1 and isinstance(out[0], Extracted), out
    assert out[0].events.dtype == np.int16
    return out[0].events.tolist()


@pytest.mark.parametrize(
    ("notes", "total", "expected"),
    [
        pytest.param(
            [(60, 0, 2), (64, 0, 2), (67, 0, 2)],
            None,
            [S, N(67), N(64), N(60), SE, C(67), C(64), C(60), SE, E],
            id="held-chord",
        ),
        pytest.param(
            [(60, 0, 1), (62, 2, 3)],
            None,
            [S, N(60), SE, SE, N(62), SE, E],
            id="rest-between-notes",
        ),
        pytest.param(
            [(72, 0, 3), (60, 1, 3), (76, 2, 3)],
            None,
            [S, N(72), SE, C(72), N(60), SE, N(76), C(72), C(60), SE, E],
            id="continued-and-new-sorted-by-pitch-descending",
        ),
        pytest.param(
            [(60, 0, 2), (60, 2, 4)],
            None,
            [S, N(60), SE, C(60), SE, N(60), SE, C(60), SE, E],
            id="re-attack",
        ),
        pytest.param(
            [(60, 0, 3), (60, 1, 2)],
            None,
            [S, N(60), SE, C(60), N(60), SE, C(60), SE, E],
            id="same-pitch-overlap-continued-before-new",
        ),
        pytest.param([(48, 0, 1)], 3, [S, N(48), SE, SE, SE, E], id="trailing-silence"),
        pytest.param([], 2, [S, SE, SE, E], id="silence-only"),
    ],
)
def test_events_match_hand_written_spec(notes, total, expected) -> None:
    no_split = PolyphonyExtractConfig(min_steps=0, split_on_time_changes=False)
    assert only_events(seq(notes, total=total), no_split) == expected


def test_time_change_split_drops_trailing_silence() -> None:
    # note-seq's splitter ends each part at its last note (Magenta's pipeline always splits)
    assert only_events(seq([(48, 0, 1)], total=3)) == [S, N(48), SE, E]
    assert only_events(seq([], total=2)) == [S, E]


def test_class_indices_are_magentas_order() -> None:
    assert (START, END, STEP_END) == (0, 1, 2)
    assert (N(0), N(127), C(0), C(127)) == (3, 130, 131, 258)
    assert NUM_CLASSES == 259
    new, cont = class_pitches()
    assert new[N(61)] == 61 and cont[N(61)] == -1
    assert cont[C(61)] == 61 and new[C(61)] == -1
    assert (new[:3] == -1).all() and (cont[:3] == -1).all()


def test_quantisation_snaps_to_sixteenths() -> None:
    # 0.06 s rounds to step 0, 0.2 s to step 2 (note-seq quantises with a 0.5 cutoff).
    ns = seq([])
    ns.notes.add(pitch=60, start_time=0.06, end_time=0.2, velocity=80)
    ns.total_time = 0.25
    assert only_events(ns) == [S, N(60), SE, C(60), SE, E]


def test_min_and_max_steps_discard() -> None:
    cfg = PolyphonyExtractConfig()
    short = list(P.extract(seq([(60, 0, 79)]), cfg, augment=False))
    assert short == [Dropped("polyphonic_tracks_discarded_too_short")]
    ok = list(P.extract(seq([(60, 0, 80)]), cfg, augment=False))
    assert len(ok) == 1 and isinstance(ok[0], Extracted)
    assert int(np.count_nonzero(ok[0].events == SE)) == 80
    at_max = list(P.extract(seq([(60, 0, 512)]), cfg, augment=False))
    assert isinstance(at_max[0], Extracted)
    long = list(P.extract(seq([(60, 0, 513)]), cfg, augment=False))
    assert long == [Dropped("polyphonic_tracks_discarded_too_long")]


def test_more_than_one_program_is_discarded() -> None:
    ns = seq([(60, 0, 2)])
    ns.notes.add(pitch=64, start_time=0, end_time=0.25, velocity=80, program=40)
    out = list(P.extract(ns, NO_LIMITS, augment=False))
    assert out == [Dropped("polyphonic_tracks_discarded_more_than_1_program")]
    relaxed = PolyphonyExtractConfig(min_steps=0, single_program=False)
    assert isinstance(next(P.extract(ns, relaxed, augment=False)), Extracted)


def test_transpositions_only_when_augmenting() -> None:
    ns = seq([(60, 0, 2), (67, 1, 2)])
    plain = list(P.extract(ns, NO_LIMITS, augment=False))
    assert [x.transposition for x in plain] == [0]
    aug = list(P.extract(ns, NO_LIMITS, augment=True))
    assert [x.transposition for x in aug] == list(range(-4, 5))
    for x in aug:
        assert x.events.tolist() == only_events(
            seq([(60 + x.transposition, 0, 2), (67 + x.transposition, 1, 2)])
        )


def test_transposition_out_of_range_is_counted() -> None:
    out = list(P.extract(seq([(125, 0, 2)]), NO_LIMITS, augment=True))
    kept = [x.transposition for x in out if isinstance(x, Extracted)]
    dropped = [x for x in out if isinstance(x, Dropped)]
    assert kept == [-4, -3, -2, -1, 0, 1, 2]
    assert dropped == [Dropped("skipped_due_to_range_exceeded")] * 2


def test_split_on_tempo_change() -> None:
    ns = seq([(60, 0, 4), (62, 8, 12)])
    ns.tempos.add(qpm=60, time=8 * STEP)
    parts = list(P.extract(ns, NO_LIMITS, augment=False))
    assert [x.events.tolist() for x in parts] == [
        [S, N(60), SE, C(60), SE, C(60), SE, C(60), SE, E],
        # after the split the tempo is 60 qpm: 4 16ths at 120 qpm are 2 16ths at 60 qpm
        [S, N(62), SE, C(62), SE, E],
    ]
    no_split = PolyphonyExtractConfig(min_steps=0, split_on_time_changes=False)
    assert list(P.extract(ns, no_split, augment=False)) == [
        Dropped("sequences_discarded_because_multiple_tempos")
    ]


def test_empty_sequence_is_counted() -> None:
    assert list(P.extract(music_pb2.NoteSequence(), NO_LIMITS, augment=False)) == [
        Dropped("sequences_discarded_because_empty")
    ]


@pytest.mark.parametrize(
    "notes",
    [
        [(60, 0, 2), (64, 0, 2), (67, 0, 2)],
        [(72, 0, 3), (60, 1, 3), (76, 2, 3)],
        [(60, 0, 2), (60, 2, 4)],
        [(60, 0, 1), (62, 2, 3), (50, 2, 9)],
    ],
)
def test_to_note_sequence_rebuilds_the_notes(notes) -> None:
    events = only_events(seq(notes))
    out = P.to_note_sequence(np.array(events), {})
    got = sorted((n.pitch, round(n.start_time / STEP), round(n.end_time / STEP)) for n in out.notes)
    assert got == sorted(notes)
    assert only_events(out) == events  # and it extracts back to the same events


def test_to_note_sequence_tolerates_sampled_output() -> None:
    # no STEP_END before END, stray START, a CONTINUED of a silent pitch: notes still close
    out = P.to_note_sequence(np.array([S, N(60), SE, C(60), C(70), S, N(64), E]), {})
    assert sorted(
        (n.pitch, round(n.start_time / STEP), round(n.end_time / STEP)) for n in out.notes
    ) == [(60, 0, 2), (64, 1, 2)]
    with pytest.raises(ValueError, match=r"outside 0\.\.258"):
        P.to_note_sequence(np.array([S, 259]), {})


def test_variant_matches_magenta() -> None:
    v = P.VARIANTS["polyphony"]
    assert v.family == "polyphony" == P.NAME
    assert isinstance(v.encoding, Encoding)
    assert (v.encoding.base.input_size, v.encoding.num_classes) == (259, 259)  # Magenta's
    assert v.encoding.input_size == 259 + 2 * 128 + 12  # + the step context
    h = v.hparams
    assert (h.batch_size, h.rnn_layer_sizes, h.dropout_keep_prob, h.clip_norm, h.learning_rate) == (
        64,
        (256, 256, 256),
        0.5,
        5.0,
        1e-3,
    )


def test_encoding_follows_the_training_contract() -> None:
    events = torch.tensor([only_events(seq([(60, 0, 2), (64, 1, 2)]))], dtype=torch.long)
    enc = P.VARIANTS["polyphony"].encoding
    cond = enc.conditions(events, {})
    x = enc.inputs(events[:, :-1], cond)[..., :259]  # Magenta's one-hot comes first
    y = enc.labels(events, cond)[:, 1:]
    assert x.shape == (1, events.shape[1] - 1, 259)
    assert torch.equal(x.argmax(-1), events[:, :-1]) and torch.equal(x.sum(-1), torch.ones(1, 6))
    assert torch.equal(y, events[:, 1:])


def test_step_context_counts_the_last_step_this_step_and_the_key() -> None:
    """The step context (pitches of the last complete step, of the step so far, pitch-class
    shares of new notes) equals a by-hand count, on a chorale-like piece and on random events,
    for windows shorter and longer than a step; the engine's newest-window slice gives the same
    last row."""
    enc = P.VARIANTS["polyphony"].encoding
    piece = only_events(seq([(60, 0, 4), (64, 0, 2), (67, 1, 3), (72, 2, 4), (55, 3, 4)]))
    x = enc.inputs(torch.tensor([piece]), {})[0, :, 259:]
    step1_end = next(i for i, e in enumerate(piece) if e == SE)
    assert x[step1_end, :128].nonzero().flatten().tolist() == [60, 64]  # step 0 just closed
    assert x[step1_end + 1, 128:256].nonzero().flatten().tolist() == [67]  # NEW 67 first (highest)
    rng = np.random.default_rng(5)
    random_events = rng.choice([S, SE, SE, SE, *range(N(0), C(127) + 1)], size=150).tolist()
    for ev in (piece, random_events):
        for window in (1, 4, 9, 60, 1000):
            wrapped = dataclasses.replace(enc, window=window)
            extra = wrapped.extra(torch.tensor([ev]), torch.float32)[0].numpy()
            np.testing.assert_allclose(extra, reference_step_context(ev, window), atol=1e-6)
            for t in (len(ev) // 2, len(ev) - 1):
                newest = torch.tensor([ev[max(0, t - window + 1) : t + 1]])
                last = wrapped.last_input(newest, {})[0, 259:].numpy()
                np.testing.assert_allclose(last, extra[t], atol=1e-6)


def test_primer_pitches_give_a_held_quarter_chord() -> None:
    events = events_from_primer_pitches([60, 67, 64])
    assert events.tolist() == [S, N(67), N(64), N(60), SE] + [C(67), C(64), C(60), SE] * 3
    with pytest.raises(ValueError, match="not a MIDI pitch"):
        primer_from_pitches([60, 128])
    with pytest.raises(ValueError, match="empty"):
        primer_from_pitches([])


def test_primer_melody() -> None:
    events = primer_events(primer_from_melody([60, -2, 62, -1]))
    assert events.tolist() == [S, N(60), SE, C(60), SE, N(62), SE]
    with pytest.raises(ValueError, match="primer melody value"):
        primer_from_melody([60, -3])


def test_prepare_primer_without_conditioning_injects_from_step_zero() -> None:
    primer = prepare_primer(primer_from_melody([72, -2, 74, -2]))
    assert primer.events.tolist() == [S]
    assert primer.primer_steps == 4 and primer.inject_start_step == 0
    assert primer.to_inject(np.array([S])).tolist() == [N(72)]
    # mid-step (last event is a note): nothing to inject
    assert primer.to_inject(np.array([S, N(72), N(60)])).tolist() == []
    assert primer.to_inject(np.array([S, N(72), N(60), SE])).tolist() == [C(72)]
    assert primer.to_inject(np.array([S, N(72), SE, C(72), SE])).tolist() == [N(74)]
    assert primer.to_inject(np.array([S] + [SE] * 4)).tolist() == []  # primer exhausted


def test_prepare_primer_with_conditioning_reinjects_after_the_primer() -> None:
    primer = prepare_primer(primer_from_pitches([60, 64]), condition_on_primer=True)
    assert primer.events.tolist() == [S, N(64), N(60), SE] + [C(64), C(60), SE] * 3
    assert primer.inject_start_step == 4
    assert primer.to_inject(primer.events).tolist() == [N(64), N(60)]
    assert primer.to_inject(primer.events[:-1]).tolist() == []
    off = prepare_primer(
        primer_from_pitches([60]), condition_on_primer=True, inject_primer_during_generation=False
    )
    assert off.to_inject(off.events).tolist() == []


def test_scale_mask() -> None:
    c_major = scale_mask([0, 2, 4, 5, 7, 9, 11])
    assert c_major.dtype == torch.bool and c_major.shape == (259,)
    assert c_major[[S, E, SE, N(60), N(62), C(61)]].all()
    assert not c_major[N(61)] and not c_major[N(66)]
    assert int(c_major[NEW_NOTE:CONTINUED_NOTE].sum()) == 75  # white keys of 0..127
    strict = scale_mask([0], mask_continued=True)
    assert not strict[C(61)] and strict[C(60)]
    with pytest.raises(ValueError, match=r"0\.\.11"):
        scale_mask([12])
