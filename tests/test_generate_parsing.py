"""Request parsing for generation (no model needed): keys/scales, primers, chords, controls."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from _examples import TWINKLE

from modeling import generate as G
from modeling import primers as P
from modeling import scales as S
from modeling.families.performance.encoding import HELD_WINDOW


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
    assert P.parse_primer_melody("[60, -2, 60, -2, 67, -2, 67, -2]") == TWINKLE[:8]
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

    assert (
        G._feature_window(get_variant("basic_rnn").encoding, get_variant("basic_rnn").family) == 1
    )
    assert (  # the step context reads the newest 256 events
        G._feature_window(get_variant("polyphony").encoding, get_variant("polyphony").family) == 256
    )
    assert (
        G._feature_window(
            get_variant("chord_pitches_improv").encoding, get_variant("chord_pitches_improv").family
        )
        == 1
    )
    assert (
        G._feature_window(
            get_variant("multiconditioned_performance_with_dynamics").encoding,
            get_variant("multiconditioned_performance_with_dynamics").family,
        )
        == HELD_WINDOW  # the sounding notes look back that far; the controls only at one
    )
    assert (
        G._feature_window(
            get_variant("attention_rnn").encoding, get_variant("attention_rnn").family
        )
        is None
    )
    assert (
        G._feature_window(
            get_variant("attention_improv").encoding, get_variant("attention_improv").family
        )
        is None
    )


# ----------------------------------------------------------------------------- request rules


RULES = [
    # (request fields, family, field of the error, words of the CLI message)
    ({"num_outputs": 0}, "melody", "num_outputs", "--num_outputs must be 1..1000"),
    ({"num_outputs": 600, "beam_size": 8}, "melody", "num_outputs", "rows exceeds"),
    ({"num_steps": 16, "num_bars": 2}, "melody", "num_bars", "give one of --num_steps"),
    ({"primer_melody": [60], "primer_midi": object()}, "melody", "primer", "one primer flag"),
    ({"notes_per_second": 3.0}, "polyphony", "notes_per_second", "conditioned performance"),
    ({"pitch_class_histogram": [1.0] * 12}, "melody", "pitch_class_histogram", "performance"),
    ({"render_chords": True}, "melody", "render_chords", "--render_chords needs an improv"),
    ({"primer_pitches": [60, 64]}, "improv", "primer_pitches", "polyphony or performance"),
    ({"backing_chords": "C G"}, "performance", "backing_chords", "needs an improv model"),
    ({"num_bars": 300}, "polyphony", "num_bars", "cap of 4096 for polyphony"),
    ({"num_seconds": 601}, "performance", "num_seconds", "60100 10 ms steps exceeds"),
    ({"backing_chords": "C " * 300}, "improv", "backing_chords", "the cap is 4096"),
]


@pytest.mark.parametrize("fields,family,field,words", RULES)
def test_each_request_rule_names_its_field(
    fields: dict, family: str, field: str, words: str
) -> None:
    """Every rule lives in ``Request.validate`` and says which field it is about."""
    with pytest.raises(G.GenerateError) as info:
        G.Request(**fields).validate(family)
    assert info.value.field == field
    assert words in str(info.value) and "{" not in str(info.value)


def test_family_rules_follow_request_fields() -> None:
    """What a family accepts is its ``REQUEST_FIELDS``: the same request passes elsewhere."""
    G.Request(primer_pitches=[60, 64]).validate("polyphony")
    G.Request(backing_chords="C G", render_chords=True).validate("improv")
    G.Request(notes_per_second=3.0).validate("performance")  # the model's own check comes later
    G.Request(backing_chords="C " * 300, num_bars=8).validate("improv")  # a length cuts the grid
    with pytest.raises(G.GenerateError, match="the cap is 1024"):  # a tighter cap (the studio's)
        G.Request(backing_chords="C " * 65).validate("improv", max_steps=1024)


def test_messages_are_spelled_by_each_front_end() -> None:
    err = G.GenerateError(
        "num_steps", "ask for more ({num_steps} / {num_bars} / a longer {backing_chords})"
    )
    assert str(err) == "ask for more (--num_steps / --num_bars / a longer --backing_chords)"
    words = {"num_steps": "Length", "num_bars": "Length", "backing_chords": "Chords"}
    assert err.render(words.__getitem__) == "ask for more (Length / a longer Chords)"
    topical = G.GenerateError("key", "unknown scale 'x'", topic="key/scale")
    assert str(topical) == "--key/--scale: unknown scale 'x'"
    assert topical.render(str.upper) == "unknown scale 'x'"


def test_no_family_branches_in_generation_or_studio() -> None:
    """Generation and the studio reach families only through the protocol."""
    root = Path(__file__).resolve().parents[1]
    pattern = re.compile(r"family *(==|!=|in) *[(\"']|\.family *(==|!=|in) ")
    files = [root / "modeling/generate.py", *sorted((root / "modeling/generation").glob("*.py"))]
    files += sorted((root / "studio").glob("*.py"))
    hits = [
        f"{f.name}:{i}"
        for f in files
        for i, line in enumerate(f.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []
