"""Improv family: chord columns, chord-conditioned encodings vs note-seq, lead-sheet extraction."""

from __future__ import annotations

import collections
import copy

import numpy as np
import pytest
import torch
from _families import extract_all, hparams_of
from _melody_reference import (
    STEP,
    check_improv_parity,
    make_sequence,
    random_events,
    reference_improv_encoder,
    scale_melody,
)
from note_seq import (
    chords_encoder_decoder,
    chords_lib,
    lead_sheets_lib,
    melodies_lib,
    sequences_lib,
)
from note_seq.protobuf import music_pb2

from modeling.families import chords, improv
from modeling.families.base import Encoding, Extracted
from modeling.families.improv.encoding import ChordConditioned, TriadChords
from modeling.families.improv.extract import ImprovExtractConfig
from modeling.families.melody.encoding import KeyMelody, class_pitches
from modeling.families.melody.extract import indices_to_melody_events, melody_events_to_indices

NE, OFF = -2, -1
NC = chords.NO_CHORD
IMPROV_VARIANTS = ("basic_improv", "attention_improv", "chord_pitches_improv")
TRIADS = [
    "C",
    "Am",
    "F",
    "G",
    "Bdim",
    "Eaug",
    "N.C.",
    "D7",
    "Cmaj7",
    "Fm7",
    "Bb/D",
    "Am7/G",
    "C#m7b5",
    "Ebdim7",
    "G7(b9)",
    "F#m",
    "Ab+",
]
NON_TRIADS = ["Csus", "G7sus", "D5", "Fsus2", "C(b5)", "Bbped"]


# --------------------------------------------------------------------------------------------
# Chord columns
# --------------------------------------------------------------------------------------------


def test_chord_columns_from_note_seq_symbols() -> None:
    cols = chords.chord_columns(["C", "Am7/G", NC, "Ebaug", "Bdim", "Gsus", "C(b5)"])
    assert cols["chord_root"].tolist() == [0, 9, -1, 3, 11, 7, 0]
    assert cols["chord_bass"].tolist() == [0, 7, -1, 3, 11, 7, 0]
    assert cols["chord_quality"].tolist() == [0, 1, -1, 2, 3, 4, 4]
    masks = [chords.pitch_mask_to_classes(m) for m in cols["chord_pitches"]]
    assert masks == [[0, 4, 7], [0, 4, 7, 9], [], [3, 7, 11], [2, 5, 11], [0, 2, 7], [0, 4, 6]]
    assert {k: v.dtype for k, v in cols.items()} == {
        "chord_root": np.int8,
        "chord_bass": np.int8,
        "chord_quality": np.int8,
        "chord_pitches": np.int16,
    }


def test_bad_chord_symbol_names_symbol_and_position() -> None:
    with pytest.raises(ValueError, match=r"bad chord symbol 'H7' at position 2"):
        chords.chord_columns(["C", "G", "H7"])


def test_columns_to_figures_round_trip() -> None:
    figures = [*TRIADS, *NON_TRIADS, "Dm9(b5)", "Csus(add7)(add9)", "Gb7(#11)", "E7(#9)/G#"]
    cols = chords.chord_columns(figures)
    rebuilt = chords.columns_to_figures(cols)
    assert rebuilt[figures.index(NC)] == NC
    again = chords.chord_columns(rebuilt)
    for name in cols:
        assert np.array_equal(again[name], cols[name]), name
    with pytest.raises(ValueError, match="chord columns missing: chord_bass"):
        chords.columns_to_figures({k: v for k, v in cols.items() if k != "chord_bass"})


# --------------------------------------------------------------------------------------------
# Encodings vs note-seq
# --------------------------------------------------------------------------------------------


def chord_steps(rng: np.random.Generator, length: int, vocabulary: list[str]) -> list[str]:
    """Chord figures per step that change on random beats (like a real progression)."""
    out: list[str] = []
    current = vocabulary[0]
    for i in range(length):
        if i % 4 == 0 and rng.random() < 0.5:
            current = vocabulary[int(rng.integers(len(vocabulary)))]
        out.append(current)
    return out


LEAD_SHEETS: dict[str, tuple[list[int], list[str]]] = {
    "one_step": ([60], ["C"]),
    "two_steps_change_at_end": ([60, NE], ["C", "G7"]),
    "no_chord_throughout_start": ([NE, NE, 60, OFF, 62] * 4, [NC] * 8 + ["Am"] * 12),
    "chord_every_step": (
        [60, 62, 64, 65, 67, 69, 71, 72] * 5,
        (["C", "Dm", "Em", "F", "G", "Am", "Bdim", "Caug"] * 5),
    ),
    "slash_and_sevenths": (
        [60, NE, 64, OFF] * 10,
        ["Bb/D"] * 8 + ["Am7/G"] * 8 + ["G7(b9)"] * 8 + ["Cmaj7"] * 16,
    ),
    "repeats_at_16_and_32": ([55, NE, 57, OFF] * 12, ["Eaug", "Ebdim7"] * 24),
}


@pytest.mark.parametrize("variant", IMPROV_VARIANTS)
@pytest.mark.parametrize("name", sorted(LEAD_SHEETS))
def test_fixture_parity_with_note_seq(variant: str, name: str) -> None:
    events, figures = LEAD_SHEETS[name]
    check_improv_parity(variant, events, figures)


@pytest.mark.parametrize("variant", IMPROV_VARIANTS)
def test_random_parity_with_note_seq(variant: str) -> None:
    rng = np.random.default_rng(11)
    for length in (3, 16, 33, 120, 300):
        check_improv_parity(variant, random_events(rng, length), chord_steps(rng, length, TRIADS))


def test_non_triads_only_for_chord_pitches() -> None:
    rng = np.random.default_rng(5)
    events, figures = random_events(rng, 64), chord_steps(rng, 64, [*NON_TRIADS, "C"])
    check_improv_parity("chord_pitches_improv", events, figures)
    with pytest.raises(chords_encoder_decoder.ChordEncodingError):
        reference_improv_encoder("basic_improv").encode(figures, events)
    enc = improv.VARIANTS["basic_improv"].encoding
    e = torch.as_tensor(melody_events_to_indices(events)).long()[None]
    cond = {
        k: torch.as_tensor(np.r_[v, v[-1:]]).long()[None]
        for k, v in chords.chord_columns(figures).items()
    }
    with pytest.raises(ValueError, match="triad_chords_only"):
        enc.inputs(e, cond)


def test_conditioning_must_reach_one_step_past_the_events() -> None:
    enc = improv.VARIANTS["chord_pitches_improv"].encoding
    e = torch.zeros(2, 10, dtype=torch.long)
    short = {k: torch.zeros(2, 10, dtype=torch.long) for k in chords.COLUMN_DTYPES}
    with pytest.raises(ValueError, match=r"must be \(B, >= T \+ 1\)"):
        enc.inputs(e, short)
    with pytest.raises(ValueError, match="needs stored chord column"):
        enc.conditions(e, {"chord_root": short["chord_root"]})
    long = {k: torch.zeros(2, 11, dtype=torch.long) for k in chords.COLUMN_DTYPES}
    assert enc.inputs(e, enc.conditions(e, long)).shape == (2, 10, 75)


def test_chord_tone_columns_are_the_chord_under_the_predicted_step() -> None:
    """The triad models' 12 columns after Magenta's: the pitch classes of the chord at step
    t + 1 (the step row t predicts), zero under no chord; the chord-pitches model has none."""
    enc = improv.VARIANTS["basic_improv"].encoding
    figures = ["C", "C", "Am", "N.C.", "G", "G"]
    cols = {k: torch.as_tensor(v).long()[None] for k, v in chords.chord_columns(figures).items()}
    e = torch.as_tensor(melody_events_to_indices([60, -2, 64, 62, -2, 67])).long()[None]
    x = enc.inputs(e[:, :-1], enc.conditions(e, cols))[0]
    tones = [x[t, -12:].nonzero().flatten().tolist() for t in range(5)]
    assert tones == [[0, 4, 7], [0, 4, 9], [], [2, 7, 11], [2, 7, 11]]
    assert x.shape[-1] == 49 + 38 + 12
    assert not improv.VARIANTS["chord_pitches_improv"].encoding.chord_tones


def test_repeat_tone_columns_are_what_each_repeat_class_would_play() -> None:
    """attention_improv's 2 x 12 columns after the chord tones: at row t, the pitch class of the
    event 16 (32) steps before step t + 1, which its "repeat 1 (2) bars ago" class would play;
    nothing where that event is no pitch or before the start."""
    enc = improv.VARIANTS["attention_improv"].encoding
    pitches = [60 + (k % 5) if k % 3 else -2 for k in range(40)]  # a pitch, hold, ...
    e = torch.as_tensor(melody_events_to_indices(pitches)).long()[None]
    cols = {k: torch.as_tensor(v).long()[None] for k, v in chords.chord_columns(["C"] * 41).items()}
    x = enc.inputs(e[:, :-1], enc.conditions(e, cols))[0]
    for t in range(39):
        for k, d in enumerate((16, 32)):
            bits = x[t, -24 + 12 * k : x.shape[-1] - 12 + 12 * k].nonzero().flatten().tolist()
            src = t + 1 - d
            want = [pitches[src] % 12] if src >= 0 and pitches[src] >= 0 else []
            assert bits == want, (t, d)
    with pytest.raises(ValueError, match="repeat_tones needs chord_tones"):
        ChordConditioned("x", TriadChords(), KeyMelody(), repeat_tones=True)


def test_variant_table_matches_magenta() -> None:
    expected = {  # control + target inputs (+ 12 chord tones: ours), classes, layers, clip, attn
        "basic_improv": (49 + 38 + 12, 38, (64, 64), 5.0, 0),
        "attention_improv": (49 + 74 + 12 + 24, 40, (128, 128, 128), 3.0, 40),  # + repeat tones
        "chord_pitches_improv": (37 + 38, 38, (256, 256, 256), 3.0, 0),
    }
    assert set(improv.VARIANTS) == set(expected)
    for name, (n_in, n_cls, layers, clip, attn) in expected.items():
        v = improv.VARIANTS[name]
        assert v.family == improv.NAME == "improv" and isinstance(v.encoding, Encoding)
        assert (v.encoding.input_size, v.encoding.num_classes) == (n_in, n_cls)
        assert v.encoding.event_space == "melody:48-84"
        h = v.hparams
        names = ("batch_size", "rnn_layer_sizes", "dropout_keep_prob", "clip_norm", "attn_length")
        assert hparams_of(h, *names) == (128, layers, 0.5, clip, attn)
    pitches = class_pitches(improv.VARIANTS["attention_improv"].encoding)
    assert pitches[0] == 48 and pitches[36:].tolist() == [-1] * 4


# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------

CHORD_SYMBOL = music_pb2.NoteSequence.TextAnnotation.CHORD_SYMBOL


def lead_sheet_sequence(
    bars: int = 8, root: int = 62, figures: tuple[str, ...] = ("D", "Bm", "G", "A7")
) -> music_pb2.NoteSequence:
    """A D-major scale tune with one chord per bar, cycling through ``figures``."""
    ns = make_sequence(scale_melody(bars, root=root))
    for bar in range(bars):
        ns.text_annotations.add(
            time=bar * 16 * STEP, text=figures[bar % len(figures)], annotation_type=CHORD_SYMBOL
        )
    return ns


def run(ns, cfg=None, **kw) -> tuple[list[Extracted], collections.Counter]:
    return extract_all(improv.extract, ns, cfg, **kw)


def test_lead_sheet_columns_follow_the_chords() -> None:
    (example,), counts = run(lead_sheet_sequence())
    assert not counts and example.transposition == 0
    n = len(example.events)
    assert n == 8 * 16 - 1 and all(len(v) == n for v in example.cond.values())
    roots = example.cond["chord_root"]
    assert roots[:16].tolist() == [2] * 16 and roots[16:32].tolist() == [11] * 16
    assert roots[48:64].tolist() == [9] * 16 and example.cond["chord_quality"][20] == 1
    # Octave-folded into 48..84 but not moved to C (Magenta's improv: transpose_to_key None).
    pitches = [p for p in indices_to_melody_events(example.events) if p >= 0]
    assert pitches[0] == 62 and min(pitches) >= 48 and max(pitches) < 84


def test_events_and_chords_equal_note_seq_lead_sheet() -> None:
    ns = lead_sheet_sequence(bars=9, root=70)
    examples, _ = run(ns, augment=True)
    q = sequences_lib.quantize_note_sequence(ns, 4)
    mel = melodies_lib.Melody()
    mel.from_quantized_sequence(q, ignore_polyphonic_notes=True)
    prog = chords_lib.ChordProgression()
    prog.from_quantized_sequence(q, mel.start_step, mel.end_step)
    for example in examples:
        sheet = lead_sheets_lib.LeadSheet(copy.deepcopy(mel), copy.deepcopy(prog))
        sheet.transpose(example.transposition)
        sheet.squash(48, 84, None)
        assert indices_to_melody_events(example.events) == list(sheet.melody)
        want = chords.chord_columns(list(sheet.chords))
        for name, col in want.items():
            assert np.array_equal(example.cond[name], col), (example.transposition, name)


def test_all_transpositions_only_when_augmenting() -> None:
    train, _ = run(lead_sheet_sequence(), augment=True)
    assert [e.transposition for e in train] == list(range(-6, 6))
    base = next(e for e in train if e.transposition == 0)
    for e in train:
        shifted = (base.cond["chord_root"].astype(int) + e.transposition) % 12
        assert np.array_equal(e.cond["chord_root"], shifted)
        assert np.array_equal(e.cond["chord_quality"], base.cond["chord_quality"])
    evaluation, _ = run(lead_sheet_sequence(), augment=False)
    assert [e.transposition for e in evaluation] == [0]
    no_aug, _ = run(lead_sheet_sequence(), {"all_transpositions": False}, augment=True)
    assert [e.transposition for e in no_aug] == [0]


def test_chordless_input_gets_inferred_chords() -> None:
    ns = make_sequence(scale_melody(8))
    for p, s, e in scale_melody(8, root=48):  # a second voice for the harmony
        ns.notes.add(pitch=p - 8, start_time=s * STEP, end_time=e * STEP, velocity=80, instrument=1)
    examples, counts = run(ns)
    assert counts["chords_inferred"] == 1 and len(examples) == 2
    assert (examples[0].cond["chord_root"] >= 0).all()
    never, counts = run(ns, {"infer_chords": "never"})
    assert not never and counts == {"no_chords": 1}
    always, counts = run(lead_sheet_sequence(), {"infer_chords": "always"})
    assert counts == {"chords_inferred": 1} and len(always) == 1
    given, _ = run(lead_sheet_sequence())
    assert not np.array_equal(always[0].cond["chord_root"], given[0].cond["chord_root"])
    # Pieces without a surviving melody are not harmonised at all.
    assert run(make_sequence(scale_melody(3)))[1] == {"melodies_discarded_too_short": 1}


def test_inference_failure_is_counted() -> None:
    ns = make_sequence(scale_melody(10), numerator=5, denominator=4)  # no default chords/bar
    examples, counts = run(ns)
    assert not examples and counts == {"chord_inference_failed": 1}
    examples, counts = run(ns, {"chords_per_bar": 1})
    assert counts["chords_inferred"] == 1


def test_chord_drop_counters() -> None:
    ns = lead_sheet_sequence()
    ns.text_annotations.add(time=16 * STEP, text="E7", annotation_type=CHORD_SYMBOL)
    examples, counts = run(ns)
    assert not examples and counts == {"coincident_chords": 1}
    merged, counts = run(ns, {"coincident_chords": "keep_last"})
    assert len(merged) == 1 and counts == {"coincident_chords_merged": 1}
    assert merged[0].cond["chord_root"][16] == 4  # E7 came last at bar 2
    only_nc = lead_sheet_sequence(figures=(NC,))
    assert run(only_nc)[1] == {"empty_chord_progressions": 1}
    assert len(run(only_nc, {"require_chords": False})[0]) == 1
    sus = lead_sheet_sequence(figures=("D", "Gsus", "A7"))
    assert len(run(sus)[0]) == 1
    assert run(sus, {"triad_chords_only": True})[1] == {"chord_encoding_exception": 1}
    bad = lead_sheet_sequence(figures=("D", "Hmaj"))
    assert run(bad)[1] == {"chord_symbol_exception": 1}
    assert {"chords_inferred", "coincident_chords_merged"} <= improv.INFO_COUNTERS


def test_config_from_params_validates() -> None:
    with pytest.raises(ValueError, match="infer_chords must be"):
        ImprovExtractConfig(infer_chords="sometimes")
    with pytest.raises(ValueError, match="unknown ImprovExtractConfig field"):
        ImprovExtractConfig.from_params({"transpose": 3})
    cfg = ImprovExtractConfig()
    assert (cfg.min_unique_pitches, cfg.transpose_to_key, cfg.ignore_polyphonic_notes) == (
        3,
        None,
        True,
    )
    assert improv.event_space(cfg) == "melody:48-84"
    from modeling.families import extract_config, load_family

    family = load_family("improv")
    assert extract_config(family, {"triad_chords_only": True}) == ImprovExtractConfig(
        triad_chords_only=True
    )


def test_to_note_sequence_writes_and_renders_chords() -> None:
    (example,), _ = run(lead_sheet_sequence())
    ns = improv.to_note_sequence(example.events, example.cond, qpm=100.0)
    annotations = [
        (round(ta.time / (0.6 / 4)), ta.text)
        for ta in ns.text_annotations
        if ta.annotation_type == CHORD_SYMBOL
    ]
    assert annotations == [
        (0, "D"),
        (16, "Bm"),
        (32, "G"),
        (48, "A7"),
        (64, "D"),
        (80, "Bm"),
        (96, "G"),
        (112, "A7"),
    ]
    assert {n.instrument for n in ns.notes} == {0}
    rendered = improv.to_note_sequence(example.events, example.cond, render_chords=True)
    chord_notes = [n for n in rendered.notes if n.instrument == 1]
    assert len(chord_notes) == 2 * (4 + 4 + 4 + 5)  # chord tones + a bass note per chord
    first = sorted(n.pitch for n in chord_notes if n.start_time == 0.0)
    assert first == [38, 50, 54, 57]  # D bass + D F# A
    with pytest.raises(ValueError, match="shorter than"):
        improv.to_note_sequence(example.events, {k: v[:10] for k, v in example.cond.items()})
