"""Request parsing for generation (no model needed): keys/scales, primers, chords, controls."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modeling import generate as G
from modeling import primers as P
from modeling import scales as S


@pytest.mark.parametrize(
    "key,scale,pcs",
    [
        ("D minor", None, {2, 4, 5, 7, 9, 10, 0}),
        ("F# dorian", None, {6, 8, 9, 11, 1, 3, 4}),
        ("Bb", None, {10, 0, 2, 3, 5, 7, 9}),
        ("Am", None, {9, 11, 0, 2, 4, 5, 7}),
        ("D", "dorian", {2, 4, 5, 7, 9, 11, 0}),
        ("E", "blues", {4, 7, 9, 10, 11, 2}),
        ("Eb minor_pentatonic", None, {3, 6, 8, 10, 1}),
        ("C", "harmonic minor", {0, 2, 3, 5, 7, 8, 11}),
        (None, "C D Eb G", {0, 2, 3, 7}),
        (None, "0,4,7", {0, 4, 7}),
    ],
)
def test_scales(key, scale, pcs) -> None:
    assert set(S.resolve(key, scale).pitch_classes) == pcs


def test_scale_transposition_and_errors() -> None:
    d = S.resolve("D", None)
    assert d.transposed(-2).pitch_classes == S.resolve("C", None).pitch_classes
    assert S.resolve(None, None) is None
    with pytest.raises(S.ScaleError, match="tonic"):
        S.resolve(None, "C X")
    with pytest.raises(S.ScaleError, match="unknown scale 'bebop'"):
        S.resolve("C bebop", None)
    with pytest.raises(S.ScaleError, match="cannot read --key"):
        S.resolve("H minor", None)
    with pytest.raises(S.ScaleError, match=r"0\.\.11"):
        S.resolve(None, "0,12")


def test_primer_parsing() -> None:
    assert P.parse_primer_melody("[60, -2, 60, -2, 67, -2, 67, -2]") == [
        60,
        -2,
        60,
        -2,
        67,
        -2,
        67,
        -2,
    ]
    assert P.parse_primer_pitches("[67,64,60]") == [67, 64, 60]
    with pytest.raises(P.RequestError, match="event -3 at position 1"):
        P.parse_primer_melody("[60, -3]")
    with pytest.raises(P.RequestError, match="pitch 128 at position 0"):
        P.parse_primer_pitches("[128]")
    with pytest.raises(P.RequestError, match="cannot read"):
        P.parse_primer_melody("[60, __import__('os')]")
    with pytest.raises(P.RequestError, match="list of integers"):
        P.parse_primer_melody("[60.5]")
    with pytest.raises(P.RequestError, match="no such file"):
        P.read_primer_midi("/nonexistent/primer.mid")


def test_read_primer_midi(tmp_path) -> None:
    import note_seq

    ns = note_seq.Melody([60, -2, 64, -2, 67]).to_sequence(qpm=90)
    note_seq.sequence_proto_to_midi_file(ns, str(tmp_path / "p.mid"))
    back = P.read_primer_midi(tmp_path / "p.mid")
    assert [n.pitch for n in back.notes] == [60, 64, 67]
    assert back.tempos[0].qpm == pytest.approx(90, rel=1e-5)  # MIDI stores microseconds
    (tmp_path / "bad.mid").write_bytes(b"not a midi file")
    with pytest.raises(P.RequestError, match="cannot read"):
        P.read_primer_midi(tmp_path / "bad.mid")


def test_controls_and_histograms() -> None:
    hist, density = P.parse_controls("2,0,1,1,0,1,0,1,1,0,0,1;4")
    assert hist == [2, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1] and density == 4.0
    assert P.parse_controls(";8") == (None, 8.0)
    assert P.parse_controls("1,1,1,1,1,1,1,1,1,1,1,1")[1] is None
    assert P.parse_density("[2, 8]") == [2.0, 8.0]
    two = P.parse_histogram(str([[1] * 12, [0] * 11 + [1]]))
    assert len(two) == 2 and two[1][11] == 1.0
    with pytest.raises(P.RequestError, match="has 11 values"):
        P.parse_controls("2,0,1,1,0,1,0,1,1,0,0;4")
    with pytest.raises(P.RequestError, match="negative"):
        P.parse_density("-2")
    with pytest.raises(P.RequestError, match="negative weight"):
        P.parse_histogram(str([1] * 11 + [-1]))
    with pytest.raises(P.RequestError, match="nothing"):
        P.parse_controls(";")


def test_backing_chords_use_note_seq_grammar() -> None:
    figures, cols = P.parse_backing_chords("C7#9 Bbmaj7/D N.C. Am", 4)
    assert len(figures) == 16 and figures[8] == "N.C."
    assert cols["chord_root"][4] == 10 and cols["chord_bass"][4] == 2  # Bb over D
    assert cols["chord_root"][8] == -1
    with pytest.raises(P.RequestError, match=r"'Q7' at position 2 of 3"):
        P.parse_backing_chords("C Q7 G", 16)
    with pytest.raises(P.RequestError, match="empty"):
        P.parse_backing_chords("   ", 16)


def test_request_checks() -> None:
    with pytest.raises(G.GenerateError, match="temperature"):
        G.Request(temperature=0).check()
    with pytest.raises(G.GenerateError, match="one of --num_steps"):
        G.Request(num_steps=10, num_bars=2).check()
    with pytest.raises(G.GenerateError, match="one primer flag"):
        G.Request(primer_melody=[60], primer_pitches=[60]).check()
    with pytest.raises(G.GenerateError, match="rows exceeds"):
        G.Request(num_outputs=1000, beam_size=8, branch_factor=8).check()
    req = G.Request(num_bars=2.5)
    assert req.step_length("melody", 128) == 40
    assert G.Request(num_seconds=2).step_length("performance", 3000) == 200
    assert G.Request(num_bars=1, qpm=60).step_length("performance", 3000) == 400
    with pytest.raises(G.GenerateError, match="cap of 60000"):
        G.Request(num_steps=60001).step_length("performance", 3000)


def test_gumbel_rows_do_not_depend_on_batch() -> None:
    a = G._gumbel(5, 3, 2, 40)
    b = G._gumbel(5, 3, 9, 40)
    assert torch.equal(a, b[:2])
    assert not torch.equal(G._gumbel(5, 4, 2, 40), a)
    # Gumbel-max samples the softmax: frequencies match probabilities.
    logp = torch.log_softmax(torch.tensor([[2.0, 1.0, 0.0, -1.0]], dtype=torch.float64), -1)
    draws = torch.cat([torch.argmax(logp + G._gumbel(9, s, 500, 4), -1) for s in range(20)])
    freq = torch.bincount(draws, minlength=4).double() / len(draws)
    np.testing.assert_allclose(freq.numpy(), logp.exp()[0].numpy(), atol=0.02)


def test_key_transposition_keeps_primer_in_range() -> None:
    # D major primer: moved to C (down 2 or up 10), never folded.
    shift = G._key_transposition([62, -2, 66, -2, 69], 48, 84)
    assert shift % 12 == 10
    assert all(48 <= p + shift < 84 for p in (62, 66, 69))
    # A primer spanning the whole range cannot move without folding: left alone.
    assert G._key_transposition([49, 83], 48, 84) == 0


def test_feature_windows() -> None:
    from modeling.variants import get_variant

    assert G._feature_window(get_variant("basic_rnn").encoding) == 1
    assert G._feature_window(get_variant("polyphony").encoding) == 1
    assert G._feature_window(get_variant("chord_pitches_improv").encoding) == 1
    assert (
        G._feature_window(get_variant("multiconditioned_performance_with_dynamics").encoding) == 1
    )
    assert G._feature_window(get_variant("attention_rnn").encoding) is None
    assert G._feature_window(get_variant("attention_improv").encoding) is None
