"""Readers, fallback chain, quarantine reasons, summary columns and the per-file time limit."""

from __future__ import annotations

import threading
import time

import _ingest_fixtures as fx
import numpy as np
import pytest
from note_seq.protobuf import music_pb2

from pipelines import readers
from pipelines.parse_worker import ParseWorker
from pipelines.readers import FileResult, Limits, parse_file
from pipelines.summary import is_polyphonic, key_name, summarise

NoteSequence = music_pb2.NoteSequence


def sequences(result: FileResult) -> list[NoteSequence]:
    return [NoteSequence.FromString(tune.sequence) for tune in result.tunes]


def only_sequence(result: FileResult) -> NoteSequence:
    assert result.reason is None, result.detail
    assert len(result.tunes) == 1
    return sequences(result)[0]


def chords(sequence: NoteSequence) -> list[tuple[float, str]]:
    return [
        (round(a.time, 3), a.text)
        for a in sequence.text_annotations
        if a.annotation_type == NoteSequence.TextAnnotation.CHORD_SYMBOL
    ]


# ---------------------------------------------------------------- round trips per format


def test_midi_round_trip_keeps_everything() -> None:
    result = parse_file(fx.midi_bytes(), "song.mid")
    ns = only_sequence(result)
    assert result.tunes[0].reader == readers.NOTE_SEQ_MIDI and result.fallbacks == []
    piano = sorted((n.pitch, n.velocity, n.start_time) for n in ns.notes if not n.is_drum)
    expected = sorted((p, v, s) for p, v, s, _ in fx.MIDI_NOTES)
    assert [(p, v) for p, v, _ in piano] == [(p, v) for p, v, _ in expected]
    assert np.allclose([s for *_, s in piano], [s for *_, s in expected], atol=0.01)
    assert [n.pitch for n in ns.notes if n.is_drum] == [fx.DRUM_PITCH]
    assert [t.qpm for t in ns.tempos] == pytest.approx([fx.MIDI_TEMPO])
    assert [(t.numerator, t.denominator) for t in ns.time_signatures] == [(3, 4)]
    assert [c.control_number for c in ns.control_changes] == [64, 64]
    assert [c.control_value for c in ns.control_changes] == [v for _, v in fx.PEDAL]
    assert [c.time for c in ns.control_changes] == pytest.approx([t for t, _ in fx.PEDAL], abs=0.01)
    summary = summarise(ns)
    assert summary["key"] == "D major"
    assert summary["num_instruments"] == 2
    assert summary["is_polyphonic"] and summary["has_pedal"] and summary["has_velocity_variation"]
    assert not summary["has_chords"]


def test_musicxml_round_trip_keeps_tempo_meter_key_and_chords() -> None:
    ns = only_sequence(parse_file(fx.musicxml_bytes(), "sheet.xml"))
    assert [t.qpm for t in ns.tempos] == pytest.approx([fx.XML_QPM])
    assert [(t.numerator, t.denominator) for t in ns.time_signatures] == [(3, 4)]
    bar = 3 * 60.0 / fx.XML_QPM
    assert chords(ns) == [(round(i * bar, 3), c) for i, c in enumerate(fx.XML_CHORDS)]
    assert [n.pitch for n in sorted(ns.notes, key=lambda n: n.start_time)] == [
        p for bar_pitches in fx.XML_PITCHES for p in bar_pitches
    ]
    summary = summarise(ns)
    assert summary["key"] == "G major" and summary["time_signatures"] == ["3/4"]
    assert summary["has_chords"] and not summary["is_polyphonic"]


def test_mxl_round_trip_matches_the_plain_musicxml() -> None:
    xml = fx.musicxml_bytes()
    plain = only_sequence(parse_file(xml, "sheet.xml"))
    result = parse_file(fx.mxl_bytes(xml), "sheet.mxl")
    packed = only_sequence(result)
    assert result.tunes[0].reader == readers.NOTE_SEQ_MUSICXML
    assert chords(packed) == chords(plain)
    assert [(n.pitch, n.start_time, n.end_time) for n in packed.notes] == [
        (n.pitch, n.start_time, n.end_time) for n in plain.notes
    ]


def test_apostrophe_in_container_falls_back_to_the_inner_score() -> None:
    data = fx.mxl_bytes(fx.musicxml_bytes(), "Don't Stop.xml", "Don't Stop.xml")
    with pytest.raises(Exception, match="not well-formed"):
        readers.read_musicxml_note_seq(data, readers.MXL)  # note-seq's own container parsing
    result = parse_file(data, "Don't Stop.mxl")
    ns = only_sequence(result)
    assert result.tunes[0].reader == readers.NOTE_SEQ_MXL_INNER
    assert result.fallbacks == ["note_seq_musicxml->note_seq_mxl_inner"]
    assert [c for _, c in chords(ns)] == list(fx.XML_CHORDS)


def test_transposed_chord_symbols_need_music21_and_come_out_at_sounding_pitch() -> None:
    data = fx.mxl_bytes(fx.musicxml_bytes(transposing=True), "It's.xml", "It's.xml")
    with pytest.raises(Exception, match="Transposition of chord symbols"):
        readers.read_mxl_inner(data)
    result = parse_file(data, "It's.mxl")
    ns = only_sequence(result)
    assert result.tunes[0].reader == readers.MUSIC21
    assert result.fallbacks == [
        "note_seq_musicxml->note_seq_mxl_inner",
        "note_seq_mxl_inner->music21",
    ]
    assert ns.source_info.parser == NoteSequence.SourceInfo.MUSIC21
    onsets = sorted((round(n.start_time, 3), n.pitch) for n in ns.notes)
    bar = 3 * 60.0 / fx.XML_QPM
    beat = 60.0 / fx.XML_QPM
    expected = [
        (round(b * bar + k * beat, 3), p)
        for b, pitches in enumerate(fx.XML_PITCHES)
        for k, p in enumerate(pitches)
    ]
    assert onsets == expected  # sounding pitches, as note-seq would give
    assert chords(ns) == [(round(i * bar, 3), c) for i, c in enumerate(fx.XML_CHORDS)]
    assert [t.qpm for t in ns.tempos] == pytest.approx([fx.XML_QPM])
    assert summarise(ns)["key"] == "G major"


def test_music21_conversion_matches_note_seq_on_the_same_score() -> None:
    xml = fx.musicxml_bytes()
    by_note_seq = only_sequence(parse_file(xml, "a.xml"))
    by_music21 = readers.read_music21(xml, readers.MUSICXML)[0]
    key = lambda n: (round(n.start_time, 4), n.pitch, round(n.end_time, 4))  # noqa: E731
    assert sorted(map(key, by_music21.notes)) == sorted(map(key, by_note_seq.notes))
    assert chords(by_music21) == chords(by_note_seq)
    assert [(t.numerator, t.denominator) for t in by_music21.time_signatures] == [(3, 4)]


def test_abc_tunebook_one_sequence_per_tune_and_failures_stay_per_tune() -> None:
    result = parse_file(fx.ABC_BOOK.encode(), "book.abc")
    assert result.reason is None
    assert [(t.index, t.reader) for t in result.tunes] == [
        (0, readers.NOTE_SEQ_ABC),
        (1, readers.MUSIC21),  # block chords: note-seq refuses, music21 reads them
    ]
    assert [(f.index, f.reason) for f in result.failures] == [(2, "no_notes")]
    assert "Nothing Here" in result.failures[0].detail
    jig, block = sequences(result)
    assert [t.qpm for t in jig.tempos] == pytest.approx([100.0])
    assert [(t.numerator, t.denominator) for t in jig.time_signatures] == [(6, 8)]
    assert summarise(jig)["key"] == "D major"
    assert [c for _, c in chords(jig)] == ["D", "G", "A7", "D"]
    assert summarise(block)["is_polyphonic"]  # the [GBd] chord sounds together
    assert result.fallbacks == ["note_seq_abc->music21"] * 2


def test_split_abc_tunes_uses_the_file_header_and_skips_free_text() -> None:
    header, tunes = readers.split_abc_tunes(
        "%abc\nM:3/4\n\nX:1\nK:C\nCDE|\n\nsome notes\n\nX:2\nK:G\nGAB|"
    )
    assert header == ["%abc", "M:3/4"]
    assert [t[0] for t in tunes] == ["X:1", "X:2"]


# ---------------------------------------------------------------- MIDI repair


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("truncated", fx.midi_bytes()[:-10]),
        ("velocity_over_127", fx.midi_with_velocity_byte(200)),
        ("bad_key_signature", fx.midi_with_bad_key_signature()),
    ],
)
def test_mido_repair_rescues_files_note_seq_rejects(name: str, data: bytes) -> None:
    with pytest.raises(Exception, match=r"(?i)midi decoding error"):
        readers.read_midi_note_seq(data)
    result = parse_file(data, f"{name}.mid")
    ns = only_sequence(result)
    assert result.tunes[0].reader == readers.MIDO_REPAIR
    assert result.fallbacks == ["note_seq_midi->mido_repair"]
    assert sorted(n.pitch for n in ns.notes if not n.is_drum) == sorted(
        p for p, *_ in fx.MIDI_NOTES
    )
    if name == "velocity_over_127":
        assert max(n.velocity for n in ns.notes) == 127  # clipped, not dropped


# ---------------------------------------------------------------- quarantine reasons


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("blank.abc", b" \n\n  \n", "empty"),
        ("cut.mid", fx.midi_bytes()[:10], "truncated"),
        ("cut.mxl", fx.mxl_bytes(fx.musicxml_bytes())[:300], "truncated"),
        ("cut.xml", fx.musicxml_bytes()[:2000], "truncated"),
        ("noise.mid", fx.random_bytes(), "unrecognised_format"),
        ("noise.xml", fx.random_bytes(seed=1), "unrecognised_format"),
        ("noise.mxl", fx.random_bytes(seed=2), "unrecognised_format"),
        ("midi.xml", fx.bad_division_midi(), "extension_mismatch"),
        ("bomb.mxl", fx.zip_bomb_mxl(), "zip_bomb"),
        ("fast.mid", fx.midi_bytes(tempo=2000.0), "absurd_tempo"),
        ("bad.mid", fx.bad_division_midi(), "parse_error"),
    ],
)
def test_bad_files_get_their_reason(name: str, data: bytes, reason: str) -> None:
    result = parse_file(data, name)
    assert result.reason == reason, result.detail
    assert result.tunes == [] and result.detail


def test_too_long_follows_the_duration_limit() -> None:
    data = fx.midi_bytes(last_end=30.0)
    assert parse_file(data, "long.mid").reason is None
    result = parse_file(data, "long.mid", Limits(max_duration_s=10.0))
    assert result.reason == "too_long" and "30" in result.detail


def test_tempo_limits_are_parameters() -> None:
    data = fx.midi_bytes(tempo=300.0)
    assert parse_file(data, "a.mid").reason is None
    assert parse_file(data, "a.mid", Limits(max_qpm=250.0)).reason == "absurd_tempo"


def test_misnamed_midi_is_read_by_its_magic_bytes() -> None:
    result = parse_file(fx.midi_bytes(), "actually_midi.xml")
    assert result.extension_mismatch and result.reason is None
    assert result.format == readers.MIDI and len(sequences(result)[0].notes) == 4


def test_zip_bomb_is_refused_from_the_directory_alone() -> None:
    data = fx.zip_bomb_mxl()
    assert "inflates" in (readers.check_zip(data, Limits()) or "")
    assert readers.check_zip(fx.mxl_bytes(fx.musicxml_bytes()), Limits()) is None
    assert "uncompressed" in (readers.check_zip(data, Limits(max_unzipped_bytes=1024)) or "")


def test_sniff_format() -> None:
    assert readers.sniff_format(fx.midi_bytes()) == readers.MIDI
    assert readers.sniff_format(fx.mxl_bytes(b"<a/>")) == readers.MXL
    assert readers.sniff_format(b"\xef\xbb\xbf<?xml version='1.0'?><x/>") == readers.MUSICXML
    assert readers.sniff_format(fx.ABC_BOOK.encode()) == readers.ABC
    assert readers.sniff_format(b"**kern\n*M4/4\n4c\n*-\n") == readers.HUMDRUM
    assert readers.sniff_format(fx.random_bytes()) is None


# ---------------------------------------------------------------- the per-file time limit


def test_slow_reader_is_cut_off_and_the_worker_recovers() -> None:
    slow = fx.slow_musicxml()
    with ParseWorker(timeout_s=0.5) as worker:
        assert worker.parse(fx.midi_bytes(), "warm.mid").reason is None  # child is up
        start = time.perf_counter()
        result = worker.parse(slow, "slow.xml")
        elapsed = time.perf_counter() - start
        assert result.reason == "timeout", result.detail
        assert elapsed < 3.0  # note-seq alone needs several seconds for this score
        after = worker.parse(fx.midi_bytes(), "next.mid")  # a fresh child takes over
        assert after.reason is None and len(after.tunes) == 1


def test_time_limit_applies_per_tune_in_a_tunebook() -> None:
    tune = "X:{i}\nT:t{i}\nM:4/4\nL:1/8\nK:D\nDFAd fdAF|GBdg bgdB|Acea ecAc|d8|]\n"
    book = "\n".join(tune.format(i=i + 1) for i in range(6000)).encode()
    start = time.perf_counter()
    assert len(parse_file(book, "book.abc").tunes) == 6000
    assert time.perf_counter() - start > 0.5  # the whole book takes longer than the limit ...
    with ParseWorker(timeout_s=0.5) as worker:
        result = worker.parse(book, "book.abc")  # ... but no single tune does
    assert result.reason is None and len(result.tunes) == 6000


def test_a_dying_reader_process_is_reported_not_fatal() -> None:
    with ParseWorker(timeout_s=30.0) as worker:
        assert worker.parse(fx.midi_bytes(), "warm.mid").reason is None
        child = worker._process
        killer = threading.Timer(0.3, child.kill)  # e.g. the OOM killer, mid-file
        killer.start()
        result = worker.parse(fx.slow_musicxml(), "slow.xml")
        killer.join()
        assert result.reason == "reader_crash", result.detail
        assert worker.parse(fx.midi_bytes(), "next.mid").reason is None


def test_spawned_worker_gives_the_same_result_as_in_process() -> None:
    data = fx.mxl_bytes(fx.musicxml_bytes(), "Don't.xml", "Don't.xml")
    with ParseWorker(timeout_s=60.0, start_method="spawn") as worker:
        remote = worker.parse(data, "Don't.mxl")
    local = parse_file(data, "Don't.mxl")
    assert [t.sequence for t in remote.tunes] == [t.sequence for t in local.tunes]
    assert remote.fallbacks == local.fallbacks


def test_memory_cap_quarantines_with_reason_memory_and_the_worker_recovers() -> None:
    hungry = fx.many_notes_midi(160_000)  # 1 MB; mido alone builds ~150 MB of objects for it
    # spawn: a fresh child, whereas a fork of this long-running test process would also reuse
    # its free heap (uncounted, see pipelines.parse_worker); the pipeline test covers fork
    with ParseWorker(timeout_s=60.0, max_memory_mb=40, start_method="spawn") as worker:
        assert worker.parse(fx.midi_bytes(), "warm.mid").reason is None  # small files still fit
        start = time.perf_counter()
        result = worker.parse(hungry, "hungry.mid")
        assert result.reason == "memory", result.detail
        assert "max_memory_mb 40" in result.detail and result.tunes == []
        assert time.perf_counter() - start < 20  # cut off early, not parsed to the end
        after = worker.parse(fx.midi_bytes(), "next.mid")  # a fresh child takes over
        assert after.reason is None and len(after.tunes) == 1


def test_memory_cap_is_per_file_and_restored_between_files() -> None:
    import resource

    from pipelines.parse_worker import memory_cap

    before = resource.getrlimit(resource.RLIMIT_AS)
    with memory_cap(10):
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        assert soft != resource.RLIM_INFINITY
        # More than glibc can hand back from heap the process already maps: after earlier tests
        # free big buffers it keeps up to 64 MiB (twice its largest mmap threshold) untrimmed,
        # and a 64 MiB request then grew the address space by under 10 MiB and passed the cap.
        with pytest.raises(MemoryError):
            bytearray(256 * 2**20)
    assert resource.getrlimit(resource.RLIMIT_AS) == before
    assert len(bytearray(64 * 2**20)) == 64 * 2**20


# ---------------------------------------------------------------- the per-file note cap


def test_midi_note_ons_are_counted_on_the_raw_bytes() -> None:
    import io

    import pretty_midi

    data = fx.many_notes_midi(640)
    notes = sum(len(i.notes) for i in pretty_midi.PrettyMIDI(io.BytesIO(data)).instruments)
    assert readers.count_midi_note_ons(data, 10**9) == notes == 640
    assert readers.count_midi_note_ons(data, 100) == 101  # stops once past the cap
    assert readers.count_midi_note_ons(fx.midi_bytes(), 10**9) == len(fx.MIDI_NOTES) + 1
    # the 12 MB, two-million-note file of issue 15 (F9): judged in well under the parse time
    big = fx.many_notes_midi(2_000_000)
    assert len(big) > 12_000_000
    start = time.perf_counter()
    result = parse_file(big, "big.mid")  # default cap (params.yaml ingest.max_notes)
    assert result.reason == "too_large" and "max_notes 500000" in result.detail
    assert time.perf_counter() - start < 10


def test_note_cap_quarantines_a_file_as_too_large() -> None:
    data = fx.many_notes_midi(3_200)
    assert only_sequence(parse_file(data, "ok.mid", Limits(max_notes=3_200)))
    result = parse_file(data, "big.mid", Limits(max_notes=3_199))
    assert (result.reason, result.tunes) == ("too_large", [])
    assert result.detail == "3200+ note-on events > max_notes 3199"
    # other formats are judged on the parsed notes, all tunes of a tunebook together
    book = fx.ABC_BOOK.encode()
    parsed = parse_file(book, "book.abc")
    total = sum(len(s.notes) for s in sequences(parsed))
    assert parse_file(book, "book.abc", Limits(max_notes=total)).reason is None
    capped = parse_file(book, "book.abc", Limits(max_notes=total - 1))
    assert (capped.reason, capped.tunes, capped.failures) == ("too_large", [], [])
    assert f"{total}+ notes > max_notes {total - 1}" == capped.detail


# ---------------------------------------------------------------- per-tune fallbacks, log lines


def test_each_tune_records_the_fallbacks_that_led_to_its_reader() -> None:
    book = parse_file(fx.ABC_BOOK.encode(), "book.abc")
    assert [(t.index, t.fallbacks) for t in book.tunes] == [
        (0, ()),
        (1, ("note_seq_abc->music21",)),
    ]
    mxl = parse_file(fx.mxl_bytes(fx.musicxml_bytes(), "Don't.xml", "Don't.xml"), "Don't.mxl")
    assert [t.fallbacks for t in mxl.tunes] == [("note_seq_musicxml->note_seq_mxl_inner",)]


def test_reader_log_lines_are_counted_not_printed(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    tune = "X:{i}\nT:t{i}\nE:5\nY:x\nM:4/4\nL:1/8\nK:G\nGABc dedB|]\n"
    book = "\n".join(tune.format(i=i + 1) for i in range(20)).encode()
    with caplog.at_level(logging.WARNING):  # what any handler (stderr in a run) would receive
        result = parse_file(book, "book.abc")
        assert len(result.tunes) == 20
        assert result.log_messages == {"warning: Unknown field name with content": 40}
        assert not caplog.records
        logging.getLogger("absl").warning("outside a parse: %s", "shown")  # only parses are quiet
        assert [r.getMessage() for r in caplog.records] == ["outside a parse: shown"]


# ---------------------------------------------------------------- summary columns


def test_is_polyphonic_only_counts_overlaps_within_one_instrument() -> None:
    starts = np.array([0.0, 1.0, 0.5])
    ends = np.array([1.0, 2.0, 1.5])
    assert not is_polyphonic(starts[:2], ends[:2], np.array([0, 0]))  # touching, not overlapping
    assert is_polyphonic(starts, ends, np.array([0, 0, 0]))
    assert not is_polyphonic(starts, ends, np.array([0, 0, 1]))  # overlap across instruments
    # an early long note overlapping a later one, with a short note between them
    assert is_polyphonic(np.array([0.0, 1.0, 2.0]), np.array([5.0, 1.5, 3.0]), np.zeros(3))


def test_summary_of_an_empty_sequence_and_key_names() -> None:
    summary = summarise(NoteSequence())
    assert summary["num_notes"] == 0 and summary["num_instruments"] == 0
    assert (
        not summary["is_polyphonic"] and summary["key"] == "" and summary["time_signatures"] == []
    )
    assert key_name(9, NoteSequence.KeySignature.MINOR) == "A minor"
    assert key_name(10, NoteSequence.KeySignature.MAJOR) == "Bb major"
    assert key_name(2, NoteSequence.KeySignature.DORIAN) == "D dorian"


def test_music21_reader_keeps_abc_chord_spellings() -> None:
    """music21 misreads "D/f+" (ABC: D over F#) as D augmented over F; the reader respells it."""
    header = ["X:1", "T:t", "M:4/4", "L:1/8", "K:D"]
    tune = ['"D/f+"A2 "G/b"B2 "A7/e"c2 "Bbm"d2|"D"d8|]']
    (ns,) = readers.read_abc_tune_music21(header, tune)
    figures = [t.text for t in ns.text_annotations]
    assert figures == ["D/F#", "G/B", "A7/E", "Bbm", "D"]


def test_a_threaded_process_spawns_its_parse_worker() -> None:
    """Forking beside other threads (a Beam worker's gRPC and bundle threads) is unsafe, so the
    default is spawn there and fork only in a single-threaded process."""
    import subprocess
    import sys
    from pathlib import Path

    from pipelines.parse_worker import default_start_method

    repo = Path(__file__).resolve().parents[1]
    script = "from pipelines.parse_worker import default_start_method as d; print(d())"
    alone = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=repo
    )
    assert alone.stdout.strip() == "fork"
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        assert default_start_method() == "spawn"
    finally:
        stop.set()
        other.join()
