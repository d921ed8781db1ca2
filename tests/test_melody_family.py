"""Melody family: parity of our vectorised encodings with note-seq's, and extraction rules.

Parity fixtures are Magenta event lists (-2 no event, -1 note off, else pitch) built to hit the
edge cases of each encoder; the reference is note-seq's own encoder (tests/_melody_reference.py).
Extraction tests build NoteSequences in code and check each rule and its drop counter.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
from _families import extract_all, hparams_of
from _melody_reference import (
    STEP,
    check_melody_parity,
    make_sequence,
    random_events,
    scale_melody,
)
from note_seq import melodies_lib, sequences_lib
from note_seq.protobuf import music_pb2

from modeling.families import base, melody
from modeling.families.base import Encoding, Extracted
from modeling.families.melody.encoding import KeyMelody, class_pitches
from modeling.families.melody.extract import (
    MONO_EXTRACT,
    MelodyExtractConfig,
    indices_to_melody_events,
    melody_events_to_indices,
    parse_event_space,
)

NE, OFF = -2, -1
MELODY_VARIANTS = ("basic_rnn", "mono_rnn", "lookback_rnn", "attention_rnn", "edm_rnn")


FIXTURES: dict[str, list[int]] = {
    "one_event": [60],
    "two_events": [60, NE],
    "short_rest_only": [NE, NE, NE],
    "leading_note_offs": [OFF, OFF, NE, 60, NE, OFF, 62],
    "shorter_than_bar": [60, NE, 62, OFF, 64, 64, NE, 65, OFF, NE, 67],
    "repeat_at_16": [60, NE, 62, NE, 64, NE, 65, NE, 67, NE, 69, NE, 71, NE, 72, OFF] * 2,
    "repeat_at_32": ([60, NE, 62, OFF] * 4 + [64, 65, 67, 69] * 4) * 2 + [60],
    "repeat_at_16_and_32": [55, NE, NE, OFF] * 12,
    "exactly_32": [60 + (i % 7) if i % 3 == 0 else NE for i in range(32)],
    "exactly_33": [60 + (i % 7) if i % 3 == 0 else NE for i in range(33)],
    "same_pitch_repeats": [60, 60, 60, NE, 62, 62, 60, 60, OFF, 60] * 4,
    "octaves_in_last_three": [60, 72, 48, 60, 72, 83, 71, 59, 48, 83] * 3,
    "range_edges": [48, 83, 48, OFF, 83, NE, 48] * 5,
    "note_off_keeps_attack": [60, OFF, NE, OFF, 62, OFF, OFF, 64, NE, NE] * 4,
    "rests_before_first_note": [NE] * 20 + [60, NE, 62, NE, 64] + [NE] * 20 + [60, 62],
}


@pytest.mark.parametrize("variant", MELODY_VARIANTS)
@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_parity_with_note_seq(variant: str, name: str) -> None:
    check_melody_parity(variant, FIXTURES[name])


@pytest.mark.parametrize("variant", MELODY_VARIANTS)
def test_random_parity_with_note_seq(variant: str) -> None:
    rng = np.random.default_rng(7)
    lo, hi = (0, 128) if variant == "mono_rnn" else (48, 84)
    for length in (5, 16, 17, 31, 32, 33, 64, 150, 400):
        check_melody_parity(variant, random_events(rng, length, lo, hi))


def test_mono_covers_the_full_midi_range() -> None:
    events = [0, NE, 127, OFF, 1, 126, NE, 64, 0, 127] * 5
    check_melody_parity("mono_rnn", events)
    enc = melody.VARIANTS["mono_rnn"].encoding
    assert (enc.input_size, enc.num_classes) == (130, 130)


def test_pitch_zero_reads_as_silence_in_key_melody() -> None:
    """note-seq's KeyMelody tests ``if current_note:``, so MIDI pitch 0 counts as silence."""
    from note_seq.melody_encoder_decoder import KeyMelodyEncoderDecoder

    ref = KeyMelodyEncoderDecoder(min_note=0, max_note=36)
    ours = KeyMelody(min_note=0, max_note=36)
    events = [0, NE, 12, 0, OFF, 24, 0, NE]
    e = torch.as_tensor(melody_events_to_indices(events, 0, 36)).long()[None]
    x = ours.inputs(e, {})[0].numpy()
    ref_x = np.array([ref.events_to_input(events, t) for t in range(len(events))], np.float32)
    assert np.array_equal(x, ref_x)
    assert x[0, 36 + 1] == 1.0  # silence column set while pitch 0 sounds


@pytest.mark.parametrize("variant", MELODY_VARIANTS)
def test_batched_padded_rows_equal_single_rows(variant: str) -> None:
    """Features are causal: padding a shorter row never changes its real positions."""
    enc = melody.VARIANTS[variant].encoding
    lo, hi = parse_event_space(enc.event_space)
    rng = np.random.default_rng(3)
    rows = [melody_events_to_indices(random_events(rng, n, lo, hi), lo, hi) for n in (40, 7, 100)]
    t_max = max(len(r) for r in rows)
    batch = torch.zeros(len(rows), t_max, dtype=torch.long)
    for i, r in enumerate(rows):
        batch[i, : len(r)] = torch.as_tensor(r)
        batch[i, len(r) :] = int(rng.integers(0, 10))  # arbitrary padding
    bx, by = enc.inputs(batch, {}), enc.labels(batch, {})
    for i, r in enumerate(rows):
        single = torch.as_tensor(r).long()[None]
        assert torch.equal(bx[i, : len(r)], enc.inputs(single, {})[0])
        assert torch.equal(by[i, : len(r)], enc.labels(single, {})[0])


@pytest.mark.parametrize("variant", MELODY_VARIANTS)
def test_label_aliases_are_every_class_that_plays_the_event(variant: str) -> None:
    """``label_aliases`` marks exactly the classes ``decode_label`` turns into each event (the
    canonical label among them); encodings without repeat classes have none."""
    enc = melody.VARIANTS[variant].encoding
    lo, hi = parse_event_space(enc.event_space)
    rng = np.random.default_rng(11)
    rows = [FIXTURES["repeat_at_16_and_32"], FIXTURES["rests_before_first_note"]]
    rows += [random_events(rng, 70, lo, hi)]
    if not hasattr(enc, "label_aliases"):
        assert base.label_aliases(enc, torch.zeros(1, 3, dtype=torch.long), {}) is None
        return
    for row in rows:
        ev = torch.as_tensor(melody_events_to_indices(row, lo, hi)).long()[None]
        aliases = base.label_aliases(enc, ev, {})
        assert aliases.gather(-1, enc.labels(ev, {}).unsqueeze(-1)).all()
        every = torch.arange(enc.num_classes)
        for t in range(1, ev.shape[1]):
            plays = torch.stack([enc.decode_label(c.view(1), ev[:, :t])[0] for c in every])
            assert torch.equal(aliases[0, t], plays == ev[0, t]), t
    assert int(aliases.sum(-1).max()) >= 2  # the fixtures do repeat


def test_variant_table_matches_magenta() -> None:
    expected = {  # input size, classes, batch, layers, keep, clip, attn
        "basic_rnn": (38, 38, 128, (128, 128), 0.5, 5.0, 0),
        "mono_rnn": (130, 130, 128, (128, 128), 0.5, 5.0, 0),
        "lookback_rnn": (121, 40, 128, (128, 128), 0.5, 5.0, 0),
        "attention_rnn": (74, 40, 128, (128, 128), 0.5, 3.0, 40),
        "edm_rnn": (74, 40, 128, (128, 128), 0.5, 3.0, 40),
    }
    assert set(melody.VARIANTS) == set(expected)
    for name, (n_in, n_cls, batch, layers, keep, clip, attn) in expected.items():
        v = melody.VARIANTS[name]
        assert v.name == name and v.family == melody.NAME == "melody"
        assert isinstance(v.encoding, Encoding)
        assert (v.encoding.input_size, v.encoding.num_classes) == (n_in, n_cls)
        h = v.hparams
        names = ("batch_size", "rnn_layer_sizes", "dropout_keep_prob", "clip_norm", "attn_length")
        assert hparams_of(h, *names, "learning_rate") == (batch, layers, keep, clip, attn, 1e-3)
    assert melody.VARIANTS["mono_rnn"].encoding.event_space == "melody:0-128"
    assert melody.VARIANTS["edm_rnn"].encoding == melody.VARIANTS["attention_rnn"].encoding
    assert "attention_rnn" in melody.VARIANTS["edm_rnn"].description


def test_primer_helpers_and_class_pitches() -> None:
    primer = [60, NE, OFF, 83, 48]
    idx = melody_events_to_indices(primer)
    assert idx.tolist() == [14, 0, 1, 37, 2] and idx.dtype == np.int16
    assert indices_to_melody_events(idx) == primer
    with pytest.raises(ValueError, match="melody event 84 at position 1"):
        melody_events_to_indices([60, 84])
    with pytest.raises(ValueError, match="-3 at position 0"):
        melody_events_to_indices([-3])
    basic = class_pitches(melody.VARIANTS["basic_rnn"].encoding)
    assert basic[:3].tolist() == [-1, -1, 48] and basic[-1] == 83 and len(basic) == 38
    look = class_pitches(melody.VARIANTS["lookback_rnn"].encoding)
    assert look[2] == 48 and look[37] == 83 and look[38:].tolist() == [-1, -1]
    key = class_pitches(melody.VARIANTS["attention_rnn"].encoding)
    assert key[0] == 48 and key[35] == 83 and key[36:].tolist() == [-1] * 4
    mono = class_pitches(melody.VARIANTS["mono_rnn"].encoding)
    assert mono[2] == 0 and mono[129] == 127


def test_bad_event_tensors_are_refused_with_one_line() -> None:
    enc = melody.VARIANTS["attention_rnn"].encoding
    with pytest.raises(ValueError, match=r"event index out of range \[0, 38\)"):
        enc.inputs(torch.tensor([[0, 38]]), {})
    with pytest.raises(ValueError, match=r"events must be \(B, T\)"):
        enc.labels(torch.tensor([0, 1]), {})


def test_key_melody_is_fast_on_a_training_batch() -> None:
    """note-seq's KeyMelody is O(T^2) Python; ours handles a full (128, 512) batch quickly."""
    import time

    enc = melody.VARIANTS["attention_rnn"].encoding
    e = torch.randint(0, 38, (128, 512))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one core: ~0.4 s here; a shared machine's threads only contend
    try:
        start = time.perf_counter()
        x = enc.inputs(e, {})
        elapsed = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    assert x.shape == (128, 512, 74)
    assert elapsed < 5.0, f"KeyMelody inputs for (128, 512) took {elapsed:.2f} s"


# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------


def run(ns: music_pb2.NoteSequence, cfg=None, **kw) -> tuple[list[Extracted], collections.Counter]:
    return extract_all(melody.extract, ns, cfg, **kw)


def test_extracts_one_key_normalised_melody_per_track() -> None:
    examples, counts = run(make_sequence(scale_melody(8, root=62)))  # D major
    assert len(examples) == 1 and not counts
    ev = examples[0].events
    assert ev.dtype == np.int16 and len(ev) == 8 * 16 - 1  # final note-off stripped
    pitches = np.array(indices_to_melody_events(ev))
    pitches = pitches[pitches >= 0]
    assert pitches.min() >= 48 and pitches.max() < 84
    assert melodies_lib.Melody(indices_to_melody_events(ev)).get_major_key() == 0
    # The same tune written in C gives the same stored events.
    in_c, _ = run(make_sequence(scale_melody(8, root=60)))
    assert np.array_equal(in_c[0].events, ev)
    assert examples[0].transposition == 0 and not examples[0].cond


def test_events_equal_note_seq_melody_squashed() -> None:
    ns = make_sequence([*scale_melody(9, root=67), (90, 9 * 16, 9 * 16 + 2)])
    (example,), _ = run(ns)
    q = sequences_lib.quantize_note_sequence(ns, 4)
    ref = melodies_lib.Melody()
    ref.from_quantized_sequence(q, ignore_polyphonic_notes=True)
    ref.squash(48, 84, 0)
    assert indices_to_melody_events(example.events) == list(ref)


def test_drop_counters() -> None:
    _, too_short = run(make_sequence(scale_melody(6)))
    assert too_short == {"melodies_discarded_too_short": 1}
    four_pitches = [(60 + [0, 2, 4, 5][i % 4], 4 * i, 4 * i + 2) for i in range(40)]
    _, too_few = run(make_sequence(four_pitches))
    assert too_few == {"melodies_discarded_too_few_pitches": 1}
    long_examples, long_counts = run(make_sequence(scale_melody(40)))
    assert long_counts == {"melodies_truncated": 1} and len(long_examples[0].events) == 512
    _, discard = run(
        make_sequence(scale_melody(40)),
        MelodyExtractConfig(max_steps=None, max_steps_discard=512),
    )
    assert discard == {"melodies_discarded_too_long": 1}
    _, empty = run(music_pb2.NoteSequence())
    assert empty == {"empty_sequence": 1}
    assert "melodies_truncated" in melody.INFO_COUNTERS


def test_silence_of_a_bar_splits_melodies() -> None:
    notes = scale_melody(8) + scale_melody(8, root=65, start_bar=10)  # 2 silent bars between
    examples, _ = run(make_sequence(notes))
    assert len(examples) == 2
    one, _ = run(make_sequence(notes), MelodyExtractConfig(gap_bars=3))
    assert len(one) == 1


def test_polyphony_keeps_the_highest_note_or_drops_the_track() -> None:
    notes = scale_melody(8) + [(p - 12, s, e) for p, s, e in scale_melody(8)]
    (example,), counts = run(make_sequence(notes))
    assert not counts
    kept = [p for p in indices_to_melody_events(example.events) if p >= 0]
    (alone,), _ = run(make_sequence(scale_melody(8)))
    assert kept == [p for p in indices_to_melody_events(alone.events) if p >= 0]
    examples, counts = run(make_sequence(notes), MelodyExtractConfig(ignore_polyphonic_notes=False))
    assert not examples and counts == {"polyphonic_tracks_discarded": 1}


def test_drums_are_filtered_and_instruments_are_tracks() -> None:
    drums = make_sequence(scale_melody(8), is_drum=True)
    assert run(drums)[0] == []
    assert len(run(drums, MelodyExtractConfig(filter_drums=False))[0]) == 1
    ns = make_sequence(scale_melody(8))
    for p, s, e in scale_melody(8, root=48):
        ns.notes.add(pitch=p, start_time=s * STEP, end_time=e * STEP, velocity=80, instrument=3)
    assert len(run(ns)[0]) == 2


def test_separate_parts_splits_a_shared_instrument() -> None:
    ns = make_sequence(scale_melody(8))
    for p, s, e in scale_melody(8, root=48):
        ns.notes.add(pitch=p - 5, start_time=s * STEP, end_time=e * STEP, velocity=80, part=1)
    merged, _ = run(ns)
    split, _ = run(ns, MelodyExtractConfig(separate_parts=True))
    assert len(merged) == 1 and len(split) == 2


def test_time_signature_changes_split_and_bad_meters_drop() -> None:
    ns = make_sequence(scale_melody(13))
    ns.time_signatures.add(time=8 * 16 * STEP, numerator=3, denominator=4)
    examples, counts = run(ns)
    # 8 bars of 4/4, then 80 steps of 3/4 (6.7 bars of 12 steps: too short).
    assert len(examples) == 1 and counts == {"melodies_discarded_too_short": 1}
    assert len(examples[0].events) == 8 * 16 - 1
    ns.time_signatures[1].numerator = 5  # 80 steps of 5/4 = 4 bars of 20 steps
    assert run(ns)[1] == {"melodies_discarded_too_short": 1}
    unsplit = MelodyExtractConfig(split_on_time_changes=False)
    assert run(ns, unsplit)[1] == {"multiple_time_signatures": 1}
    _, bad = run(make_sequence(scale_melody(8), numerator=4, denominator=3))
    assert bad == {"bad_time_signature": 1}
    _, odd = run(make_sequence(scale_melody(8), numerator=3, denominator=32))
    assert odd == {"non_integer_steps_per_bar": 1}


def test_mono_config_keeps_pitches_and_key() -> None:
    notes = [(p + 30, s, e) for p, s, e in scale_melody(8, root=62)]  # D major up high
    (example,), _ = run(make_sequence(notes), MONO_EXTRACT)
    got = [p for p in indices_to_melody_events(example.events, 0) if p >= 0]
    assert got == [p for p, _, _ in notes]
    assert melody.event_space(MONO_EXTRACT) == "melody:0-128"
    assert melody.event_space() == melody.event_space(None) == "melody:48-84"
    check_melody_parity("mono_rnn", indices_to_melody_events(example.events, 0))


def test_augment_changes_nothing_for_melodies() -> None:
    ns = make_sequence(scale_melody(8, root=64))
    a, _ = run(ns, augment=True)
    b, _ = run(ns, augment=False)
    assert len(a) == len(b) == 1 and np.array_equal(a[0].events, b[0].events)


def test_pipeline_builds_the_config_from_params() -> None:
    from modeling.families import extract_config, load_family

    family = load_family("melody")
    assert family.EXTRACT_CONFIG is MelodyExtractConfig
    cfg = extract_config(family, {"min_note": 0, "max_note": 128, "transpose_to_key": None})
    assert cfg == MONO_EXTRACT and family.event_space(cfg) == "melody:0-128"


def test_config_from_params_validates() -> None:
    cfg = MelodyExtractConfig.from_params({"min_bars": 4, "transpose_to_key": None})
    assert cfg.min_bars == 4 and cfg.transpose_to_key is None
    with pytest.raises(ValueError, match=r"unknown MelodyExtractConfig field.*min_barz"):
        MelodyExtractConfig.from_params({"min_barz": 4})
    with pytest.raises(ValueError, match="transpose_to_key"):
        MelodyExtractConfig(transpose_to_key=12)
    with pytest.raises(ValueError, match=">= 12"):
        MelodyExtractConfig(min_note=60, max_note=70)
    assert run(make_sequence(scale_melody(8)), {"min_bars": 9})[1] == {
        "melodies_discarded_too_short": 1
    }


def test_to_note_sequence_round_trip() -> None:
    ns = make_sequence(scale_melody(8))
    (example,), _ = run(ns, MONO_EXTRACT)
    out = melody.to_note_sequence(example.events, {}, qpm=90.0, event_space="melody:0-128")
    assert [n.pitch for n in out.notes] == [n.pitch for n in ns.notes]
    step = 60.0 / 90.0 / 4
    assert [round(n.start_time / step) for n in out.notes] == [4 * i for i in range(32)]
    assert [round(n.end_time / step) for n in out.notes] == [4 * i + 3 for i in range(32)]
    assert out.tempos[0].qpm == 90.0
    with pytest.raises(ValueError, match="event index out of range"):
        melody.to_note_sequence(np.array([0, 38]), {})
    with pytest.raises(ValueError, match="not a melody event space"):
        melody.to_note_sequence(np.array([0]), {}, event_space="perf:356")
