"""Chord inference (``chords.infer_chords``) against note-seq's own, and ABC chord spellings.

The reference is note-seq's ``chord_inference.infer_chords_for_sequence`` itself. Only its
1164 x 1164 transition matrix is memoised (note-seq's own function, called once per argument
set), so that comparing dozens of sequences takes seconds rather than a second per sequence.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from note_seq import chord_inference, midi_io, sequences_lib
from note_seq.protobuf import music_pb2

from modeling.families import chords, improv
from modeling.families.base import Dropped
from modeling.families.melody.extract import quantized_parts
from pipelines import readers

CHORD_SYMBOL = music_pb2.NoteSequence.TextAnnotation.CHORD_SYMBOL
_NOTE_SEQ_TRANSITION = chord_inference._key_chord_transition_distribution
_TRANSITIONS: dict[tuple[bytes, float, float], np.ndarray] = {}


def _memoised_note_seq_transition(
    key_chord_distribution: np.ndarray, key_change_prob: float, chord_change_prob: float
) -> np.ndarray:
    key = (np.asarray(key_chord_distribution).tobytes(), key_change_prob, chord_change_prob)
    if key not in _TRANSITIONS:
        _TRANSITIONS[key] = _NOTE_SEQ_TRANSITION(
            key_chord_distribution, key_change_prob, chord_change_prob
        )
    return _TRANSITIONS[key]


@pytest.fixture
def note_seq_infer(monkeypatch: pytest.MonkeyPatch) -> Any:
    """note-seq's ``infer_chords_for_sequence``, its constant transition matrix computed once."""
    monkeypatch.setattr(
        chord_inference, "_key_chord_transition_distribution", _memoised_note_seq_transition
    )
    return chord_inference.infer_chords_for_sequence


def outcome(infer: Any, qns: music_pb2.NoteSequence, **kwargs: Any) -> tuple[Any, ...]:
    """Everything inference leaves behind: annotations and key signatures, or the exception."""
    qns = copy.deepcopy(qns)
    try:
        infer(qns, **kwargs)
    except Exception as err:  # the exception itself is what is compared
        return ("raised", type(err), str(err))
    return (
        [(ta.time, ta.quantized_step, ta.text, ta.annotation_type) for ta in qns.text_annotations],
        [(ks.time, ks.key, ks.mode) for ks in qns.key_signatures],
    )


def random_sequence(
    rng: np.random.Generator,
    *,
    bars: int,
    numerator: int = 4,
    denominator: int = 4,
    qpm: float = 120.0,
    silence: float = 0.0,
    steps_per_quarter: int = 4,
) -> music_pb2.NoteSequence:
    """A quantised piece of random notes: several voices, long notes spanning chord frames,
    drums and unpitched programs (which inference must skip), silent stretches (all-zero
    frames, where every key ties), optionally one voice transposed (near-ties across keys)."""
    ns = music_pb2.NoteSequence(ticks_per_quarter=220)
    ns.time_signatures.add(numerator=numerator, denominator=denominator)
    ns.tempos.add(qpm=qpm)
    beat = 60.0 / qpm * 4 / denominator
    length = bars * numerator * beat
    for voice in range(int(rng.integers(1, 4))):
        t = 0.0
        while t < length:
            dur = float(rng.choice([0.25, 0.5, 1, 2, 4, 7])) * beat
            if rng.random() >= silence:
                ns.notes.add(
                    pitch=int(rng.integers(36, 84)),
                    start_time=t,
                    end_time=t + dur,
                    velocity=80,
                    instrument=voice,
                    is_drum=bool(rng.random() < 0.05),
                    program=int(rng.choice([0, 0, 0, 33, 113])),
                )
            t += dur
    ns.total_time = max((n.end_time for n in ns.notes), default=0.0)
    return sequences_lib.quantize_note_sequence(ns, steps_per_quarter)


SYNTHETIC = [
    {"bars": 8},
    {"bars": 12, "numerator": 3},
    {"bars": 6, "numerator": 6, "denominator": 8},
    {"bars": 10, "numerator": 2, "denominator": 2, "qpm": 90.0},
    {"bars": 9, "numerator": 2},
    {"bars": 16, "silence": 0.6},
    {"bars": 24, "silence": 0.9},
    {"bars": 3, "qpm": 200.0},
    {"bars": 8, "numerator": 5},
    {"bars": 4, "steps_per_quarter": 3},
]


@pytest.mark.parametrize("case", range(len(SYNTHETIC)))
def test_inference_equals_note_seq_on_synthetic_pieces(case: int, note_seq_infer: Any) -> None:
    rng = np.random.default_rng(case)
    for _ in range(3):
        qns = random_sequence(rng, **SYNTHETIC[case])
        want = outcome(note_seq_infer, qns)
        assert outcome(chords.infer_chords, qns) == want
        if want[0] != "raised":
            assert len(want[0]) >= 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"chords_per_bar": 1},
        {"chords_per_bar": 4},
        {"add_key_signatures": True},
        {
            "key_change_prob": 0.2,
            "chord_change_prob": 0.1,
            "chord_pitch_out_of_key_prob": 0.2,
            "chord_note_concentration": 5.0,
            "add_key_signatures": True,
        },
    ],
)
def test_inference_parameters_equal_note_seq(kwargs: dict[str, Any], note_seq_infer: Any) -> None:
    rng = np.random.default_rng(7)
    for _ in range(3):
        qns = random_sequence(rng, bars=8)
        assert outcome(chords.infer_chords, qns, **kwargs) == outcome(note_seq_infer, qns, **kwargs)


def test_inference_exceptions_equal_note_seq(note_seq_infer: Any) -> None:
    rng = np.random.default_rng(3)
    has_chords = random_sequence(rng, bars=4)
    has_chords.text_annotations.add(text="C", annotation_type=CHORD_SYMBOL)
    empty = random_sequence(rng, bars=0)
    cases = [
        (has_chords, {}, chord_inference.SequenceAlreadyHasChordsError),
        (random_sequence(rng, bars=4, numerator=5), {}, chord_inference.UncommonTimeSignatureError),
        (
            random_sequence(rng, bars=4),
            {"chords_per_bar": 3},
            chord_inference.NonIntegerStepsPerChordError,
        ),
        (empty, {}, chord_inference.EmptySequenceError),
        (random_sequence(rng, bars=501), {}, chord_inference.SequenceTooLongError),
    ]
    for qns, kwargs, error in cases:
        ours = outcome(chords.infer_chords, qns, **kwargs)
        assert ours[:2] == ("raised", error)
        assert ours == outcome(note_seq_infer, qns, **kwargs)


def test_beat_annotated_sequences_go_to_note_seq(note_seq_infer: Any) -> None:
    ns = music_pb2.NoteSequence(total_time=4.0)
    for i, pitch in enumerate([60, 64, 67, 65, 69, 72, 67, 71]):
        ns.notes.add(pitch=pitch, start_time=i * 0.5, end_time=i * 0.5 + 0.5, velocity=80)
    for t in (1.0, 2.0, 3.0):
        ns.text_annotations.add(time=t, annotation_type=music_pb2.NoteSequence.TextAnnotation.BEAT)
    ours = outcome(chords.infer_chords, ns)
    assert ours == outcome(note_seq_infer, ns) and len(ours[0]) >= 5  # 3 beats + >= 2 chords


def note_seq_states(loglik: np.ndarray, model: chords.InferenceModel) -> list[int]:
    path = chord_inference._key_chord_viterbi(
        loglik, model.key_chord_loglik, model.transition_loglik
    )
    return [
        key * len(chord_inference._CHORDS) + chord_inference._CHORDS.index(chord)
        for key, chord in path
    ]


@pytest.mark.parametrize("params", [(0.001, 0.5, 0.01), (0.3, 0.05, 0.2), (0.95, 0.5, 0.01)])
def test_viterbi_ties_break_like_note_seq(params: tuple[float, float, float]) -> None:
    """Exact ties everywhere (silence, integer emissions, repeated frames): the first state in
    note-seq's order must win, in the structured and in the dense path."""
    model = chords.inference_model(*params)
    dense = dataclasses.replace(model, across_keys=None)
    rng = np.random.default_rng(1)
    n = len(chord_inference._CHORDS)
    frames = [
        np.zeros((12, n)),  # silence: all twelve keys tie
        rng.integers(0, 3, (20, n)).astype(float),  # many exact ties between chords
        np.tile(rng.normal(0, 50, (1, n)), (15, 1)),  # one frame repeated
        rng.normal(0, 100, (30, n)),
        np.concatenate([np.zeros((5, n)), rng.normal(0, 100, (5, n)), np.zeros((5, n))]),
    ]
    for loglik in frames:
        want = note_seq_states(loglik, model)
        assert chords.key_chord_viterbi(loglik, model) == want
        assert chords.key_chord_viterbi(loglik, dense) == want


def test_viterbi_ties_made_by_rounding_break_like_note_seq() -> None:
    """Sources that differ by less than the rounding of ``prev + T`` tie after the sum; the
    first of them wins in note-seq, even below the second-best key's maximum."""
    n = len(chord_inference._CHORDS)
    key_chord_loglik = np.full((12, n), -50.0)
    key_chord_loglik[1, 20] = -1.0 - 3e-12  # state 117: first, and the lowest of the three
    key_chord_loglik[3, 10] = -1.0 - 1e-12  # state 301: the second-best key's maximum
    key_chord_loglik[5, 30] = -1.0  # state 515: the best
    trans = np.full((12, n, 12, n), -1e6)  # any key change: one constant per destination
    for key in range(12):
        trans[key, :, key, :] = -1e7  # staying in a key is far less likely
    trans = trans.reshape(12 * n, 12 * n)
    model = chords.InferenceModel.build(key_chord_loglik, trans)
    assert model.across_keys is not None
    loglik = np.zeros((2, n))
    want = note_seq_states(loglik, model)
    assert chords.key_chord_viterbi(loglik, model) == want
    assert want == [117, 0]  # key 0's best source: a three-way rounding tie, first one wins


def test_model_has_the_structure_the_viterbi_relies_on() -> None:
    model = chords.inference_model(0.001, 0.5, 0.01)
    assert model.across_keys is not None and model.across_keys.shape == (12, 97)
    dist = chord_inference._key_chord_distribution(0.01)
    assert np.array_equal(model.key_chord_loglik, np.log(dist))
    assert np.array_equal(
        model.transition_loglik, np.log(_memoised_note_seq_transition(dist, 0.001, 0.5))
    )


def test_pitch_vectors_equal_note_seq() -> None:
    rng = np.random.default_rng(5)
    for case in SYNTHETIC[:6]:
        qns = random_sequence(rng, **case)
        for seconds in (0.5, 1.0, 2.0, 0.37):
            ours = chords.note_pitch_vectors(qns, seconds)
            theirs = chord_inference.sequence_note_pitch_vectors(qns, seconds)
            assert ours.shape == theirs.shape and np.array_equal(ours, theirs)


@pytest.mark.parametrize(("key_change", "chord_change"), [(0.001, 0.5), (0.3, 0.05)])
def test_transition_matrix_is_note_seqs_bit_for_bit(key_change: float, chord_change: float) -> None:
    rng = np.random.default_rng(0)
    dist = rng.random((12, len(chord_inference._CHORDS)))
    dist /= dist.sum(axis=1, keepdims=True)
    ours = chords.transition_matrix(dist, key_change, chord_change)
    theirs = _NOTE_SEQ_TRANSITION(dist, key_change, chord_change)
    assert ours.shape == theirs.shape and np.array_equal(ours, theirs)


def corpus_parts(files: list[Path]) -> list[music_pb2.NoteSequence]:
    """Quantised pieces as the improv pipeline makes them (time-change split, 4 steps/quarter)."""
    parts = []
    for path in files:
        ns = midi_io.midi_file_to_note_sequence(str(path))
        parts += [q for q in quantized_parts(ns, 4) if not isinstance(q, Dropped)]
    return parts


@pytest.mark.corpus
def test_inference_equals_note_seq_on_real_midi(shared_data: Path, note_seq_infer: Any) -> None:
    """30 EDM files and 10 POP909 songs (about 110 pieces): identical chords or exceptions."""
    edm = sorted((shared_data / "edm").rglob("*.mid"))[::7][:30]
    pop = sorted((shared_data / "pop909").rglob("POP909/*/*.mid"))[::90][:10]
    parts = corpus_parts(edm + pop)
    assert len(edm) == 30 and len(pop) == 10 and len(parts) >= 40
    inferred = 0
    for qns in parts:
        want = outcome(note_seq_infer, qns)
        assert outcome(chords.infer_chords, qns) == want
        inferred += want[0] != "raised"
    assert inferred >= 30


# --------------------------------------------------------------------------------------------
# ABC chord spellings
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("figure", "want", "how"),
    [
        ("G/b", "G/B", chords.RESPELLED_ABC),  # ABC: the bass letter's case does not matter
        ("D/f+", "D/F#", chords.RESPELLED_ABC),  # Nottingham: + sharpens the bass
        ("Gm/b-", "Gm/Bb", chords.RESPELLED_ABC),
        ("A7/e", "A7/E", chords.RESPELLED_ABC),
        ("Gd", "Gdim", chords.RESPELLED_ABC),  # Nottingham: d diminished, a augmented
        ("Ca7", "Caug7", chords.RESPELLED_ABC),
        ("E7sus4", "E7sus", chords.RESPELLED_MUSIC21),  # kinds only music21 knows
        ("Bbø7", "Bbm7b5", chords.RESPELLED_MUSIC21),
        ("Cpower", "C5", chords.RESPELLED_MUSIC21),
        ("G7/B", "G7/B", None),  # note-seq's own figures are left alone
        ("N.C.", "N.C.", None),
        ("D.C.", "D.C.", None),  # text that is no chord stays, and is still refused downstream
        ("Gaily", "Gaily", None),
    ],
)
def test_respell_figure(figure: str, want: str, how: str | None) -> None:
    assert chords.respell_figure(figure) == (want, how)


def test_respelled_figures_keep_their_meaning() -> None:
    """The chord music21 hears in the spelling (where it hears it right) is the one kept."""
    from music21 import harmony

    for figure, m21 in [
        ("G/b", "G/B"),
        ("A7/e", "A7/E"),
        ("Gd", "Gdim"),
        ("Ca", "Caug"),
        ("E7sus4", "E7sus4"),
        ("Bbø7", "B-ø7"),
        ("D/f+", "D/F#"),
    ]:
        symbol = harmony.ChordSymbol(m21)
        root, bass, _, mask = chords.figure_columns(chords.respell_figure(figure)[0])
        assert (root, bass) == (symbol.root().pitchClass, symbol.bass().pitchClass), figure
        assert chords.pitch_mask_to_classes(mask) == sorted(
            {p.pitchClass for p in symbol.pitches}
        ), figure


TUNE = b"""X:1
T:Respelled
M:4/4
L:1/4
K:Am
"Am"ABcA|"Am/g"GABc|"D/f+"FAdc|"F"FAcA|"E7"EGBd|"Am/c"cBAG|"Gd"GBdB|"E7sus4"EGBe|
"Am"ABcA|"A7/e"EAce|"Dm"DFAd|"G/b"BdgB|"C"cegc|"E7"BGEB|"Am"A4|]
"""


def test_abc_tune_with_nottingham_chords_becomes_a_lead_sheet() -> None:
    """Read by the project's ABC reader (note-seq's parser keeps the spellings as written):
    every chord is respelled and counted, and the lead sheet is kept instead of dropped."""
    result = readers.parse_file(TUNE, "respelled.abc")
    (tune,) = result.tunes
    ns = music_pb2.NoteSequence.FromString(tune.sequence)
    texts = [ta.text for ta in ns.text_annotations if ta.annotation_type == CHORD_SYMBOL]
    assert "D/f+" in texts and "Gd" in texts  # as written in the file
    examples, counts = [], collections.Counter()
    for item in improv.extract(ns, {"min_bars": 7}):
        if isinstance(item, Dropped):
            counts[item.reason] += item.count
        else:
            examples.append(item)
    assert counts == {chords.RESPELLED_ABC: 6, chords.RESPELLED_MUSIC21: 1}
    assert {chords.RESPELLED_ABC, chords.RESPELLED_MUSIC21} <= improv.INFO_COUNTERS
    (example,) = examples
    bar = 16  # steps per 4/4 bar at 4 steps per quarter; the melody starts at step 0
    cond = example.cond
    assert (int(cond["chord_root"][2 * bar + 1]), int(cond["chord_bass"][2 * bar + 1])) == (2, 6)
    assert int(cond["chord_quality"][6 * bar + 1]) == chords.QUALITY_DIMINISHED  # Gd
    assert int(cond["chord_bass"][11 * bar + 1]) == 11  # G/b: B in the bass


@pytest.mark.corpus
def test_bench_chord_case_times_both_sides_on_the_same_pieces(shared_data: Path) -> None:
    from bench import examples as bench

    entry = bench.chord_case(shared_data, files=2, repeat=1)
    assert entry["files"] == 2 and entry["pieces"] >= 2 and entry["identical"] is True
    assert entry["baseline_s"] > 0 and entry["ours_s"] > 0
    assert entry["speedup_vs_baseline"] > 1 and entry["speedup_vs_memoised"] > 1
