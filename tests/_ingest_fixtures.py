"""Tiny corpus files built in code for the ingest tests (readers, quarantine, Beam pipeline).

Each builder uses the field's own writers (pretty_midi, music21's MusicXML exporter, zipfile) so the
bytes are what real tools produce; the "bad" builders damage good files in one specific way.
"""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pretty_midi

MIDI_TEMPO = 100.0
MIDI_NOTES = (  # (pitch, velocity, start, end): two overlapping notes -> polyphonic
    (60, 40, 0.0, 1.0),
    (64, 80, 0.5, 1.5),
    (67, 100, 1.5, 2.4),
)
DRUM_PITCH = 36
PEDAL = ((0.25, 127), (1.25, 0))  # (time, value) of CC64

XML_QPM = 90.0
XML_CHORDS = ("G", "D7", "Em")  # one per 3/4 bar
XML_PITCHES = ((67, 71, 74), (66, 69, 72), (64, 67, 71))


def midi_bytes(
    *, tempo: float = MIDI_TEMPO, last_end: float | None = None, drums: bool = True
) -> bytes:
    """A two-instrument MIDI file: piano with varied velocities and sustain pedal, plus drums;
    3/4, D major."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(3, 4, 0.0))
    pm.key_signature_changes.append(pretty_midi.KeySignature(2, 0.0))  # D major
    piano = pretty_midi.Instrument(program=0, name="piano")
    for pitch, velocity, start, end in MIDI_NOTES:
        piano.notes.append(pretty_midi.Note(velocity, pitch, start, end))
    if last_end is not None:
        piano.notes.append(pretty_midi.Note(64, 72, last_end - 1.0, last_end))
    for time, value in PEDAL:
        piano.control_changes.append(pretty_midi.ControlChange(64, value, time))
    pm.instruments.append(piano)
    if drums:
        kit = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
        kit.notes.append(pretty_midi.Note(90, DRUM_PITCH, 0.0, 0.2))
        pm.instruments.append(kit)
    buffer = io.BytesIO()
    pm.write(buffer)
    return buffer.getvalue()


def midi_with_velocity_byte(value: int) -> bytes:
    """The fixture with the first note-on's velocity byte replaced (> 127 is invalid MIDI)."""
    data = bytearray(midi_bytes(drums=False))
    index = data.index(bytes([0x90, MIDI_NOTES[0][0]]))
    data[index + 2] = value
    return bytes(data)


def midi_with_bad_key_signature() -> bytes:
    """The fixture with its key-signature meta event set to 9 sharps (mido refuses to decode it)."""
    data = bytearray(midi_bytes(drums=False))
    index = data.index(b"\xff\x59\x02")
    data[index + 3] = 9
    return bytes(data)


def musicxml_bytes(*, transposing: bool = False) -> bytes:
    """A 3-bar lead sheet (3/4, G major, 90 qpm, chord symbols) exported by music21.

    With ``transposing=True`` the part is a B-flat clarinet: the file holds written pitches and
    chord symbols plus a ``<transpose>`` element, which note-seq refuses for chord symbols.
    """
    from music21 import harmony, instrument, key, meter, note, stream, tempo
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    score = stream.Score()
    part = stream.Part()
    part.insert(0, instrument.Clarinet() if transposing else instrument.Piano())
    for bar, (figure, pitches) in enumerate(zip(XML_CHORDS, XML_PITCHES, strict=True)):
        measure = stream.Measure(number=bar + 1)
        if bar == 0:
            measure.insert(0, meter.TimeSignature("3/4"))
            measure.insert(0, key.Key("G"))
            measure.insert(0, tempo.MetronomeMark(number=XML_QPM))
        measure.insert(0, harmony.ChordSymbol(figure))
        for beat, pitch in enumerate(pitches):
            measure.insert(beat, note.Note(pitch, quarterLength=1.0))
        part.append(measure)
    score.insert(0, part)
    score.atSoundingPitch = True
    return GeneralObjectExporter(score).parse()


def mxl_bytes(
    score_xml: bytes, member: str = "score.xml", container_path: str | None = None
) -> bytes:
    """An .mxl container; ``container_path`` is written verbatim into a single-quoted
    ``full-path`` (an apostrophe in it makes the container XML malformed, as in OpenEWLD)."""
    full_path = member if container_path is None else container_path
    container = (
        "<?xml version='1.0' encoding='UTF-8'?><container><rootfiles>"
        f"<rootfile full-path='{full_path}'/></rootfiles></container>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("META-INF/container.xml", container)
        archive.writestr(member, score_xml)
    return buffer.getvalue()


def zip_bomb_mxl(uncompressed: int = 8 * 1024 * 1024) -> bytes:
    """An .mxl whose score member is megabytes of zeros compressed ~1000x."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("META-INF/container.xml", "<container/>")
        archive.writestr("score.xml", b"\0" * uncompressed)
    return buffer.getvalue()


ABC_BOOK = """%abc-2.1
% a tunebook: file header, then three tunes

X:1
T:Plain Jig
M:6/8
L:1/8
Q:1/4=100
K:D
"D"DFA dfa|"G"gfe "A7"dcB|"D"A3 d3|]

X:2
T:Block Chords
M:4/4
L:1/4
K:G
[GBd] A B c|d4|]

X:3
T:Nothing Here
M:4/4
K:Q
@@@ ###
"""


def slow_musicxml(measures: int = 30000) -> bytes:
    """A valid but huge single-part score: note-seq needs seconds for it (the time-limit test)."""
    bar = (
        b'<measure number="1"><attributes><divisions>1</divisions></attributes>'
        + b"<note><pitch><step>C</step><octave>4</octave></pitch><duration>1</duration></note>" * 4
        + b"</measure>"
    )
    return (
        b'<?xml version="1.0"?><score-partwise><part-list><score-part id="P1">'
        b'<part-name>x</part-name></score-part></part-list><part id="P1">'
        + bar * measures
        + b"</part></score-partwise>"
    )


def random_bytes(size: int = 4096, seed: int = 0) -> bytes:
    data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    return b"\x00" + data[1:]  # never a valid magic number by accident


def bad_division_midi() -> bytes:
    """A MIDI header with time division 0: no reader can time its events."""
    data = bytearray(midi_bytes(drums=False))
    data[12:14] = struct.pack(">h", 0)
    return bytes(data)


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    """Write ``{relative path: bytes}`` under ``root``."""
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def write_tune(path: Path, seed: int, bars: int = 12) -> None:
    """A monophonic 4/4 eighth-note tune at 120 qpm with enough distinct pitches for the melody
    extractor; the seed picks the pitches and the velocity, so different seeds differ in bytes."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(program=0, name="melody")
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    for i in range(bars * 8):
        pitch = scale[(i * (seed % 7 + 1) + i // 5 + seed) % len(scale)]
        start = i * 0.25
        inst.notes.append(pretty_midi.Note(60 + seed % 60, pitch, start, start + 0.25))
    pm.instruments.append(inst)
    pm.write(str(path))


def many_notes_midi(num_notes: int, chord_size: int = 32) -> bytes:
    """A valid type-0 MIDI of ``num_notes`` notes (a multiple of ``chord_size``) in chords an
    sixteenth note apart at 120 qpm, written directly as bytes (running status, 6 bytes a note):
    two million notes make the 12 MB file of issue 15 (F9) in well under a second, where
    pretty_midi would take minutes."""
    steps, rest = divmod(num_notes, chord_size)
    assert rest == 0 and steps > 0, "num_notes must be a positive multiple of chord_size"
    pitches = 40 + (np.arange(num_notes) % 48).reshape(steps, chord_size)
    events = np.zeros((steps, 2 * chord_size, 3), dtype=np.uint8)  # (delta, pitch, velocity)
    events[:, :chord_size, 1] = pitches  # note-ons at the chord's time
    events[:, :chord_size, 2] = 100
    events[:, chord_size:, 1] = pitches  # note-offs (velocity 0), 60 ticks later
    events[:, chord_size, 0] = 60  # < 128: a one-byte delta
    body = events.tobytes()
    tempo = b"\x00\xff\x51\x03\x07\xa1\x20"  # 500000 us per quarter note
    track = tempo + body[:1] + b"\x90" + body[1:] + b"\x00\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IhhH", 6, 0, 1, 240)
    return header + b"MTrk" + struct.pack(">I", len(track)) + track
