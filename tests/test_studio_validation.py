"""Studio request validation (no model, no server): the form -> ``modeling.generate.Request``.

Each bad input must come back as a :class:`studio.validation.FieldError` naming the control that
caused it, with one plain sentence (no CLI flag names, no traceback text); good input must land
in the exact ``Request`` fields ``modeling.generate`` reads.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import note_seq
import pretty_midi
import pytest

from modeling import generate as G
from modeling import primers as P
from modeling.generation.request import parser_error

# studio/ is importable from the checkout; the venv's editable install maps it after the next
# `pip install -e .` (make env).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from studio import validation as V
from studio.catalog import resolve_choice

MELODY = V.ModelChoice("attention_rnn", 3, "melody")
IMPROV = V.ModelChoice("chord_pitches_improv", 1, "improv")
POLY = V.ModelChoice("polyphony", 2, "polyphony")
PERF = V.ModelChoice(
    "multiconditioned_performance_with_dynamics", 1, "performance", density=True, histogram=True
)
PLAIN_PERF = V.ModelChoice("performance_with_dynamics", 1, "performance")


def bad(form: dict, choice: V.ModelChoice = MELODY, **kw) -> V.FieldError:
    with pytest.raises(V.FieldError) as info:
        V.parse_form(form, choice, **kw)
    err = info.value
    assert "--" not in err.message and "Traceback" not in err.message
    assert not err.message[0].islower() and err.message.endswith(".")
    assert "\n" not in err.message
    return err


def midi_bytes(notes: list[tuple[int, float, float]], *, drum: bool = False) -> bytes:
    pm = pretty_midi.PrettyMIDI(initial_tempo=100)
    inst = pretty_midi.Instrument(program=0, is_drum=drum)
    inst.notes = [pretty_midi.Note(velocity=90, pitch=p, start=s, end=e) for p, s, e in notes]
    pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


# ----------------------------------------------------------------------------- typed primers


def test_notes_become_magenta_events() -> None:
    assert V.parse_notes("C4 E4 G4:4 r C5:1", 1024) == [60, -2, 64, -2, 67, -2, -2, -2, -1, -2, 72]
    assert V.parse_notes("Bb3, F#4:3", 1024) == [58, -2, 66, -2, -2]
    for text, match in [
        ("C4 H4", "note 2"),
        ("C4 G10", "outside 0..127"),
        ("C4:0", "1..64"),
        ("C4:65", "1..64"),
        ("", "type some notes"),
    ]:
        with pytest.raises(ValueError, match=match):
            V.parse_notes(text, 1024)
    with pytest.raises(ValueError, match="length cap"):
        V.parse_notes("C4:16 " * 5, 64)


def test_chord_primer_by_name_or_list() -> None:
    assert V.parse_chord("G4 E4 C4") == [67, 64, 60]
    assert V.parse_chord("[67, 64, 60]") == [67, 64, 60]
    assert V.parse_chord("67, 64") == [67, 64]
    with pytest.raises(P.RequestError, match="pitch 200"):
        V.parse_chord("[60, 200]")


# ----------------------------------------------------------------------------- the form


def test_melody_form_maps_onto_the_request() -> None:
    s = V.parse_form(
        {
            "num_outputs": "3",
            "temperature": "0.8",
            "seed": "42",
            "length": "4.5",
            "primer_type": "notes",
            "primer_text": "C4 E4",
            "key": "D minor",
            "chords": "ignored for melody",
            "density": "ignored",
        },
        MELODY,
    )
    r = s.request
    assert (r.num_outputs, r.temperature, r.seed, r.num_bars) == (3, 0.8, 42, 4.5)
    assert r.step_length("melody", 128) == 72
    assert r.primer_melody == [60, -2, 64, -2]
    assert r.scale is not None and set(r.scale.pitch_classes) == {2, 4, 5, 7, 9, 10, 0}
    assert r.backing_chords is None and r.notes_per_second is None  # other families' controls
    assert s.settings["seed"] == 42 and s.settings["model"] == "models:/attention_rnn/3"
    assert s.primer_type == "notes"


def test_defaults_and_random_seed() -> None:
    s = V.parse_form({}, MELODY)
    r = s.request
    assert r.num_outputs == V.DEFAULT_NUM_OUTPUTS and r.temperature == 1.0
    assert r.num_bars is None and r.primer_melody is None and r.scale is None
    assert 0 <= r.seed <= V.MAX_SEED and s.settings["seed"] == r.seed
    seeds = {V.parse_form({}, MELODY).request.seed for _ in range(5)}
    assert len(seeds) > 1  # blank seed draws a fresh one


@pytest.mark.parametrize(
    "form,field,words",
    [
        ({"num_outputs": "9"}, "num_outputs", "between 1 and 8"),
        ({"num_outputs": "0"}, "num_outputs", "between 1 and 8"),
        ({"num_outputs": "two"}, "num_outputs", "whole number"),
        ({"temperature": "0"}, "temperature", "at least 0.05"),
        ({"temperature": "nan"}, "temperature", "at most 5"),
        ({"temperature": "x"}, "temperature", "must be a number"),
        ({"seed": "-1"}, "seed", "between 0"),
        ({"seed": str(2**31)}, "seed", "between 0"),
        ({"length": "65"}, "length", "at most 64"),
        ({"length": "0"}, "length", "above 0"),
        ({"length": "0.01"}, "length", "shorter than one 16th step"),
        ({"key": "H minor"}, "key", "H minor"),
        ({"key": "C", "scale": "bebop"}, "key", "unknown scale"),
        (
            {"primer_type": "events", "primer_text": "[60, 130]"},
            "primer_text",
            "event 2 (130)",
        ),  # counted from 1, like typed notes
        (
            {"primer_type": "events", "primer_text": "__import__('os')"},
            "primer_text",
            "cannot read",
        ),
        ({"primer_type": "events", "primer_text": ""}, "primer_text", "type a primer"),
        ({"primer_type": "notes", "primer_text": "C4 Q4"}, "primer_text", "note 2"),
        (
            {"primer_type": "chord", "primer_text": "C4 E4"},
            "primer_type",
            "polyphony or performance",
        ),
        ({"primer_type": "midi"}, "primer_midi", "choose a midi file"),
        ({"primer_type": "../../etc/passwd"}, "primer_type", "unknown primer type"),
        ({"key": "C" * 5000}, "key", "characters long"),
    ],
)
def test_bad_melody_inputs_name_their_control(form: dict, field: str, words: str) -> None:
    err = bad(form)
    assert err.field == field
    assert words.lower() in err.message.lower()


def test_improv_chords() -> None:
    s = V.parse_form(
        {"chords": "C7#9 Bbmaj7/D N.C. Am", "steps_per_chord": "8", "render_chords": "on"}, IMPROV
    )
    assert s.request.backing_chords == "C7#9 Bbmaj7/D N.C. Am"
    assert (s.request.steps_per_chord, s.request.render_chords) == (8, True)
    assert V.parse_form({}, IMPROV).request.backing_chords == G.DEFAULT_BACKING_CHORDS
    err = bad({"chords": "C G Q7 F"}, IMPROV)
    assert err.field == "chords" and "'Q7' at position 3 of 4" in err.message
    err = bad({"chords": "C " * 65, "steps_per_chord": "16"}, IMPROV)  # 1040 steps > 1024
    assert err.field == "chords" and "cap is 1024" in err.message
    assert V.parse_form({"chords": "C " * 65, "length": "8"}, IMPROV).request.num_bars == 8
    assert bad({"steps_per_chord": "0"}, IMPROV).field == "steps_per_chord"


def test_polyphony_flags_and_chord_primer() -> None:
    s = V.parse_form(
        {"primer_type": "chord", "primer_text": "G4 E4 C4", "condition_on_primer": "on"}, POLY
    )
    assert s.request.primer_pitches == [67, 64, 60]
    assert s.request.condition_on_primer is True
    assert s.request.inject_primer_during_generation is False  # unticked box is absent
    s = V.parse_form({"inject_primer": "on"}, POLY)
    assert (s.request.condition_on_primer, s.request.inject_primer_during_generation) == (
        False,
        True,
    )


def test_performance_controls() -> None:
    s = V.parse_form(
        {"density": "[2, 8]", "histogram_mode": "sliders", "length": "12.5"},
        PERF,
        histogram=[str(i % 3) for i in range(12)],
    )
    r = s.request
    assert r.notes_per_second == [2.0, 8.0]
    assert r.pitch_class_histogram == [float(i % 3) for i in range(12)]
    assert r.num_seconds == 12.5 and r.step_length("performance", 3000) == 1250
    s = V.parse_form({"histogram_mode": "key", "histogram_key": "D minor", "density": "4"}, PERF)
    assert s.request.pitch_class_histogram == [1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 1, 0]
    assert s.request.notes_per_second == 4.0
    assert V.parse_form({"histogram_mode": "off"}, PERF).request.pitch_class_histogram is None
    # a model without controls ignores them (the page hides those controls)
    s = V.parse_form(
        {"density": "4", "histogram_mode": "sliders"}, PLAIN_PERF, histogram=["1"] * 12
    )
    assert s.request.notes_per_second is None and s.request.pitch_class_histogram is None
    assert bad({"density": "100"}, PERF).field == "density"
    assert bad({"density": "-1"}, PERF).field == "density"
    assert bad({"density": "fast"}, PERF).field == "density"
    assert bad({"histogram_mode": "sliders"}, PERF, histogram=["1"] * 11).field == "histogram"
    assert (
        bad({"histogram_mode": "sliders"}, PERF, histogram=["1"] * 11 + ["-1"]).field == "histogram"
    )
    assert bad({"histogram_mode": "key", "histogram_key": "Q"}, PERF).field == "histogram"
    err = bad({"length": "121"}, PERF)
    assert err.field == "length" and "at most 120" in err.message


# ----------------------------------------------------------------------------- MIDI uploads


def test_midi_upload_is_read_from_memory() -> None:
    data = midi_bytes([(60, 0.0, 0.5), (64, 0.5, 1.0), (67, 1.0, 1.5)])
    s = V.parse_form({"primer_type": "midi"}, MELODY, upload=data)
    ns = s.request.primer_midi
    assert [n.pitch for n in ns.notes] == [60, 64, 67]
    assert s.settings["primer_notes"] == 3
    assert s.request.resolved_qpm() == pytest.approx(100, rel=1e-5)  # the file's tempo wins


@pytest.mark.parametrize(
    "data,words",
    [
        (b"", "empty"),
        (b"RIFF....WAVEfmt ", "not a MIDI file"),
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\xff\xff\x90<", "damaged"),
    ],
)
def test_broken_uploads_are_refused(data: bytes, words: str) -> None:
    err = bad({"primer_type": "midi"}, MELODY, upload=data)
    assert err.field == "primer_midi" and words in err.message


def test_upload_caps() -> None:
    good = midi_bytes([(60 + i % 12, i * 0.25, i * 0.25 + 0.2) for i in range(40)])
    small = V.Limits(max_upload_bytes=len(good) - 1)
    err = bad({"primer_type": "midi"}, MELODY, upload=good, limits=small)
    assert err.field == "primer_midi" and "upload limit" in err.message
    err = bad({"primer_type": "midi"}, MELODY, upload=good, limits=V.Limits(max_primer_notes=10))
    assert "40 notes" in err.message
    err = bad({"primer_type": "midi"}, MELODY, upload=good, limits=V.Limits(max_primer_seconds=5))
    assert "at most 5 s" in err.message
    drums = midi_bytes([(36, 0.0, 0.2)], drum=True)
    assert "no pitched notes" in bad({"primer_type": "midi"}, MELODY, upload=drums).message
    # what note-seq reads back equals what was written
    ns = V.read_midi_upload(good, V.Limits())
    assert len(ns.notes) == 40 and ns.notes[3].pitch == 63


# ----------------------------------------------------------------------------- engine errors


def test_generate_errors_map_to_controls() -> None:
    cases = []
    for call in (
        lambda: G.Request(num_steps=99999).step_length("melody", 128),
        lambda: G.Request(temperature=-1).check(),
        lambda: P.parse_backing_chords("C Q7", 16),
        lambda: P.parse_primer_melody("[60, 999]"),
    ):
        with pytest.raises(P.RequestError) as info:
            call()
        cases.append(info.value)
    fields = (None, None, "backing_chords", "primer_melody")  # the parsers' callers know theirs
    assert [
        V.control_for(parser_error(e, f), "events") for e, f in zip(cases, fields, strict=True)
    ] == [
        "length",
        "temperature",
        "chords",
        "primer_text",
    ]
    no_melody = G.GenerateError("primer_midi", "no melody could be extracted", topic="primer_midi")
    assert V.control_for(no_melody, "midi") == "primer_midi"
    assert V.control_for(G.GenerateError("primer", "primer: pitch 3 is outside"), "midi") == (
        "primer_midi"
    )
    too_long = G.GenerateError(
        "num_steps",
        "the primer is 80 steps but the piece is only 64 steps; ask for "
        "more ({num_steps} / {num_bars})",
    )
    assert V.control_for(too_long) == "length"
    assert V.control_for(G.GenerateError(None, "something unexpected")) == "form"
    msg = V.field_error(too_long).message
    assert msg == ("The primer is 80 steps but the piece is only 64 steps; ask for more (Length).")
    assert (
        V.field_error(
            G.GenerateError("temperature", "{temperature} must be > 0, got -1\nsecond line")
        ).message
        == "Temperature must be > 0, got -1."
    )
    assert (
        V.field_error(parser_error(cases[3], "primer_melody")).message
        == "Event 999 at position 1 is not -2 (no event), -1 (note off) or a MIDI pitch 0..127."
    )


def test_model_choice_is_pinned_to_a_registered_version() -> None:
    catalogue = {
        "error": None,
        "models": [
            {
                "name": "attention_rnn",
                "family": "melody",
                "density": False,
                "histogram": False,
                "versions": [
                    {"version": 4, "aliases": ["latest"]},
                    {"version": 3, "aliases": ["champion"]},
                ],
            },
            {
                "name": "mystery",
                "family": None,
                "density": False,
                "histogram": False,
                "versions": [{"version": 1, "aliases": ["latest", "champion"]}],
            },
        ],
    }
    assert resolve_choice(catalogue, "attention_rnn", "").version == 3  # champion by default
    assert resolve_choice(catalogue, "attention_rnn", "latest").version == 4
    assert resolve_choice(catalogue, "attention_rnn", "3").uri == "models:/attention_rnn/3"
    for name, ref, words in [
        ("attention_rnn", "9", "no version or alias"),
        ("attention_rnn", "best", "no version or alias"),
        ("../mlruns", "1", "not in the registry"),
        ("mystery", "1", "not a motif variant"),
        ("", "", "Pick a model"),
    ]:
        with pytest.raises(V.FieldError, match=words) as info:
            resolve_choice(catalogue, name, ref)
        assert info.value.field == "model"
    with pytest.raises(V.FieldError, match="no MLflow store"):
        resolve_choice({"error": "no MLflow store at x", "models": []}, "attention_rnn", "")


def test_note_seq_reads_what_the_upload_check_accepted() -> None:
    """The validator and generation read uploads with the same library (note-seq)."""
    data = midi_bytes([(62, 0.0, 0.4), (65, 0.4, 0.8)])
    assert [n.pitch for n in note_seq.midi_to_note_sequence(data).notes] == [
        n.pitch for n in V.read_midi_upload(data, V.Limits()).notes
    ]


# ----------------------------------------------------------------------------- musician's wording


def test_messages_speak_plainly() -> None:
    # a model name at the start of a sentence keeps its spelling; a plain word is capitalised
    assert V.sentence("attention_rnn has no version or alias 'v9'") == (
        "attention_rnn has no version or alias 'v9'."
    )
    assert V.sentence("note C1 is low") == "Note C1 is low."
    # big numbers read as typed, never in exponent notation
    err = bad({"density": "1000000"}, PERF)
    assert err.field == "density" and "1000000" in err.message and "e+" not in err.message
    # list positions count from 1, as typed notes do
    err = bad({"primer_type": "chord", "primer_text": "[60, 200]"}, POLY)
    assert "Pitch 200 (number 2)" in err.message
    # the engine's range error: typed notes lose the 16th-step event number, others keep it
    engine = G.GenerateError(
        "primer_melody",
        "note C1 (MIDI 24, event 3) is outside this model's range, C3 to B5",
        topic="primer_melody",
    )
    assert str(engine) == (
        "--primer_melody: note C1 (MIDI 24, event 3) is outside this model's range, C3 to B5"
    )
    typed = V.field_error(engine, "notes")
    assert (typed.field, typed.message) == (
        "primer_text",
        "Note C1 is outside this model's range, C3 to B5.",
    )
    assert "(MIDI 24, event 3)" in V.field_error(engine, "events").message


def test_a_generated_sample_is_a_primer_like_an_upload() -> None:
    err = bad({"primer_type": "sample", "primer_sample": "gone"})
    assert err.field == "primer_type" and "sample is gone" in err.message
    midi = io.BytesIO()
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    inst.notes.append(pretty_midi.Note(velocity=90, pitch=64, start=0.0, end=0.5))
    pm.instruments.append(inst)
    pm.write(midi)
    s = V.parse_form(
        {"primer_type": "sample", "primer_sample_name": "attention_rnn_7_001.mid", "length": "4"},
        MELODY,
        upload=midi.getvalue(),
    )
    assert [n.pitch for n in s.request.primer_midi.notes] == [64]
    assert s.settings["primer_type"] == "sample"
    assert s.settings["primer_sample"] == "attention_rnn_7_001.mid"


def test_catalogue_opens_on_a_melody_model_and_orders_families() -> None:
    from studio import catalog

    models = [
        {"name": n, **catalog._variant_info(n)}
        for n in ("attention_improv", "performance", "polyphony", "mono_rnn", "basic_rnn")
    ]
    ordered = sorted(models, key=catalog._sort_key)
    assert [m["family"] for m in ordered] == [
        "melody",
        "melody",
        "improv",
        "polyphony",
        "performance",
    ]
    assert catalog._default_model(ordered) == "basic_rnn"  # preferred over mono_rnn
    assert catalog._default_model([m for m in ordered if m["family"] != "melody"]) == (
        "attention_improv"
    )
    info = catalog._variant_info("attention_improv")
    assert info["range"] == "C3 to B5" and "triad_chords_only" not in info["plain"]
    assert "START/END" not in catalog._variant_info("polyphony")["plain"]


# ----------------------------------------------------------------------------- structured errors


@pytest.mark.parametrize(
    "field,control",
    [
        ("num_bars", "length"),
        ("temperature", "temperature"),
        ("backing_chords", "chords"),
        ("primer_pitches", "primer_type"),
        ("notes_per_second", "density"),
        ("pitch_class_histogram", "histogram"),
        ("scale", "key"),
        ("num_outputs", "num_outputs"),
        ("model", "model"),
        (None, "form"),
    ],
)
def test_a_reworded_message_still_highlights_its_control(field: str | None, control: str) -> None:
    """The control comes from the error's field, never from its words: words that name other
    controls (the registry, the primer, a length) change nothing."""
    err = G.GenerateError(field, "the primer is too long for the registry's --num_steps")
    assert V.field_error(err, "notes").field == control


def test_studio_and_cli_refuse_a_long_chord_grid_with_one_rule() -> None:
    form = {"chords": "C " * 65, "steps_per_chord": "16"}
    studio = bad(form, IMPROV)
    with pytest.raises(G.GenerateError) as info:
        G.Request(backing_chords="C " * 65).validate("improv", max_steps=1024)
    assert studio.field == "chords" and info.value.field == "backing_chords"
    assert studio.message == V.sentence(info.value.render(V.flag_words))
