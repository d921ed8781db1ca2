"""Readers: the bytes of one corpus file -> note-seq ``NoteSequence`` protos, via a fallback chain.

``pipelines.ingest`` hands every matched file to :func:`parse_file` (inside the child process of
``pipelines.parse_worker``, which enforces the per-file time limit). Each reader is a thin wrapper
around the field's libraries, tried in order until one succeeds:

=========  ===================================================================================
format     chain (reader names are stored per row in ``NOTESEQ_SCHEMA.reader``)
=========  ===================================================================================
MIDI       ``note_seq_midi`` (note-seq / pretty_midi) -> ``mido_repair`` (tolerant re-read of
           truncated tracks, out-of-range data bytes, broken meta events, RIFF wrappers)
MusicXML   ``note_seq_musicxml`` -> ``music21``
MXL        ``note_seq_musicxml`` (note-seq's own container handling) -> ``note_seq_mxl_inner``
           (the score member read straight out of the zip: rescues containers whose
           ``META-INF/container.xml`` is not well-formed, e.g. an apostrophe in a single-quoted
           ``full-path``) -> ``music21`` (e.g. transposed chord symbols, which note-seq refuses)
ABC        per tune: ``note_seq_abc`` -> ``music21``; a failing tune never loses its file's
           good tunes
Humdrum    ``music21``
=========  ===================================================================================

music21 results are converted with :func:`music21_to_note_sequence` (music21's MIDI export read back
by note-seq, plus chord symbols as note-seq-style ``CHORD_SYMBOL`` text annotations), so every row
has the same shape whichever reader produced it.

Bad input never raises out of :func:`parse_file`: it returns a :class:`FileResult` whose ``reason``
is a short quarantine code (see :data:`QUARANTINE_REASONS`). Each parsed tune carries the fallback
hops that led to its reader (stored per row as ``NOTESEQ_SCHEMA.fallbacks``). Running out of memory
is the one exception: ``MemoryError`` propagates so that ``pipelines.parse_worker``, which caps each
file's memory, can report it as ``memory``. note-seq's absl log lines are counted per file
(``FileResult.log_messages``) instead of flooding stderr.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import logging
import math
import os
import re
import struct
import threading
import warnings
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import mido
import numpy as np
import pretty_midi
from mido.midifiles import meta as mido_meta
from mido.midifiles import midifiles as mido_files
from note_seq import abc_parser, chord_symbols_lib, midi_io, musicxml_parser, musicxml_reader
from note_seq.protobuf import music_pb2

from modeling.chord_spelling import abc_figure

NoteSequence = music_pb2.NoteSequence
CHORD_SYMBOL = NoteSequence.TextAnnotation.CHORD_SYMBOL

# Reader names, stored per row.
NOTE_SEQ_MIDI = "note_seq_midi"
MIDO_REPAIR = "mido_repair"
NOTE_SEQ_MUSICXML = "note_seq_musicxml"
NOTE_SEQ_MXL_INNER = "note_seq_mxl_inner"
NOTE_SEQ_ABC = "note_seq_abc"
MUSIC21 = "music21"

# Formats (what the bytes are), independent of the file name.
MIDI, MUSICXML, MXL, ABC, HUMDRUM = "midi", "musicxml", "mxl", "abc", "humdrum"

FORMAT_BY_EXTENSION: dict[str, str] = {
    ".mid": MIDI,
    ".midi": MIDI,
    ".xml": MUSICXML,
    ".musicxml": MUSICXML,
    ".mxl": MXL,
    ".abc": ABC,
    ".krn": HUMDRUM,
}
SUPPORTED_EXTENSIONS = frozenset(FORMAT_BY_EXTENSION)

QUARANTINE_REASONS = (
    "empty",  # no bytes (or only whitespace)
    "too_large",  # over the per-file size cap (before reading) or the per-file note cap
    "truncated",  # the container/stream ends early (MIDI chunk, zip directory, XML document)
    "unrecognised_format",  # bytes match no known format (e.g. random bytes)
    "extension_mismatch",  # bytes are another format than the name says, and that reader failed
    "zip_bomb",  # compressed members whose declared size or ratio exceeds the caps
    "absurd_tempo",  # a tempo outside [min_qpm, max_qpm]
    "too_long",  # total_time over the cap (or not finite)
    "no_notes",  # a reader parsed it, but found not a single note
    "parse_error",  # every reader failed on a well-formed-looking file
    "timeout",  # the reader chain exceeded the per-file time limit (pipelines.parse_worker)
    "reader_crash",  # the reader process died
    "memory",  # the reader chain needed more than the per-file memory cap (pipelines.parse_worker)
)


@dataclass(frozen=True)
class Limits:
    """Content limits applied while parsing; every value is a pipeline parameter."""

    min_qpm: float = 1.0
    max_qpm: float = 1000.0
    max_duration_s: float = 4 * 3600.0
    max_unzipped_bytes: int = 64 * 1024 * 1024
    max_zip_ratio: float = 200.0
    max_zip_members: int = 256
    max_notes: int = 500_000  # per file (all tunes of a tunebook together)


@dataclass
class ParsedTune:
    """One NoteSequence that survived its reader chain and the content checks."""

    index: int  # position of the tune in its file (0 for single-piece formats)
    reader: str
    sequence: bytes  # NoteSequence.SerializeToString(), cheap to pickle between processes
    fallbacks: tuple[str, ...] = ()  # the hops "a->b" that led to ``reader`` (empty: the first)


@dataclass
class TuneFailure:
    """A tune of a multi-tune file (ABC) that no reader could take, or that failed a check."""

    index: int
    reason: str
    detail: str


@dataclass
class FileResult:
    """Everything the pipeline needs to account for one file."""

    format: str | None
    tunes: list[ParsedTune] = field(default_factory=list)
    failures: list[TuneFailure] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)  # "a->b": reader a failed, b was tried
    extension_mismatch: bool = False
    reason: str | None = None  # set when the whole file is quarantined
    detail: str = ""
    num_notes: int = 0  # notes of the accepted tunes so far (the per-file note cap)
    log_messages: dict[str, int] = field(default_factory=dict)  # library log lines, by template


class ReaderError(Exception):
    """A reader-level failure with a message meant for the quarantine table."""


class ContentError(ReaderError):
    """Parsed fine, but the content breaks a limit; carries the quarantine reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


# --------------------------------------------------------------------------------------------
# Format detection


def format_for_path(path: str) -> str | None:
    """Format implied by the file extension (None when unsupported)."""
    return FORMAT_BY_EXTENSION.get(os.path.splitext(path)[1].lower())


_XML_START = re.compile(rb"\s*(<\?xml|<score-partwise|<score-timewise|<!DOCTYPE\s+score-)")
_ABC_TUNE = re.compile(rb"^X:\s*\d", re.M)


def sniff_format(data: bytes) -> str | None:
    """Format the bytes say (magic numbers), so a misnamed file still finds its reader."""
    head = data[:4096]
    if head.startswith(b"MThd") or (head[:4] == b"RIFF" and head[8:12] == b"RMID"):
        return MIDI
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return MXL
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 text: decode the head first
        head = head.decode("utf-16", errors="ignore").encode("utf-8")
    head = head.removeprefix(b"\xef\xbb\xbf")
    if _XML_START.match(head):
        return MUSICXML
    if b"\x00" in head:
        return None
    if _ABC_TUNE.search(head):
        return ABC
    if head.lstrip().startswith((b"**kern", b"!!!")) or b"\n**kern" in head:
        return HUMDRUM
    return None


def _looks_binary(data: bytes) -> bool:
    """True when the head is not plausible text (NULs or many control bytes)."""
    head = np.frombuffer(data[:4096], dtype=np.uint8)
    if head.size == 0:
        return False
    control = (head < 9) | ((head > 13) & (head < 32))
    return bool(control.mean() > 0.05)


# --------------------------------------------------------------------------------------------
# MIDI


def read_midi_note_seq(data: bytes) -> list[NoteSequence]:
    """note-seq's MIDI reader (pretty_midi inside): Magenta's own path."""
    return [midi_io.midi_to_note_sequence(data)]


def repair_midi(data: bytes) -> mido.MidiFile:
    """Re-read a damaged MIDI file with mido, keeping every event that can be decoded.

    Rescues what note-seq/pretty_midi reject outright: a track cut off mid-event (truncated
    download), a chunk length running past the end of file, data bytes > 127, meta events with
    invalid payloads (e.g. key signatures pretty_midi cannot decode), unknown chunk types, and the
    RIFF ``RMID`` wrapper. Raises :class:`ReaderError` when not even one track survives.
    """
    start = data.find(b"MThd", 0, 64) if data[:4] == b"RIFF" else 0
    if start < 0 or data[start : start + 4] != b"MThd" or len(data) < start + 14:
        raise ReaderError("no complete MThd header")
    header_len = struct.unpack(">I", data[start + 4 : start + 8])[0]
    file_type, _, division = struct.unpack(">hhh", data[start + 8 : start + 14])
    if division <= 0:
        raise ReaderError(f"unsupported time division {division}")
    midi = mido.MidiFile(type=min(max(file_type, 0), 2), ticks_per_beat=division)
    pos = start + 8 + header_len
    while pos + 8 <= len(data):
        chunk_id, chunk_len = struct.unpack(">4sI", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + chunk_len]
        if chunk_id == b"MTrk":
            midi.tracks.append(_tolerant_track(body))
        elif not chunk_id.isalpha():
            break  # garbage after the last chunk
        pos += 8 + chunk_len
    if not any(len(track) for track in midi.tracks):
        raise ReaderError("no decodable MIDI track")
    if midi.type == 0 and len(midi.tracks) > 1:
        midi.type = 1
    return midi


def _tolerant_track(body: bytes) -> mido.MidiTrack:
    """Decode one track's events with mido's own event readers, stopping at the first bad one."""
    track = mido.MidiTrack()
    stream = io.BytesIO(body)
    last_status: int | None = None
    while stream.tell() < len(body):
        try:
            delta = mido_files.read_variable_int(stream)
            status = mido_files.read_byte(stream)
            peek: list[int] = []
            if status < 0x80:
                if last_status is None:
                    break
                peek, status = [status], last_status
            elif status != 0xFF:
                last_status = status
            if status == 0xFF:
                meta_type = mido_files.read_byte(stream)
                length = mido_files.read_variable_int(stream)
                payload = mido_files.read_bytes(stream, length)
                try:
                    message = mido_meta.build_meta_message(meta_type, payload, delta)
                except Exception:  # an undecodable meta event: drop it, keep its time
                    message = mido.MetaMessage("text", text="")
                message.time = delta  # mido leaves unknown meta types at time 0
                track.append(message)
            elif status in (0xF0, 0xF7):
                track.append(mido_files.read_sysex(stream, delta, clip=True))
            else:
                track.append(mido_files.read_message(stream, status, peek, delta, clip=True))
        except (EOFError, OSError, ValueError, KeyError):
            break  # truncated or corrupt from here on: keep what came before
    return track


def read_midi_repaired(data: bytes) -> list[NoteSequence]:
    """Fallback: :func:`repair_midi`, then note-seq's conversion of the pretty_midi object."""
    return [midi_io.midi_to_note_sequence(pretty_midi.PrettyMIDI(mido_object=repair_midi(data)))]


def _midi_truncated(data: bytes) -> bool:
    """True when a MIDI header or chunk declares more bytes than the file holds."""
    start = data.find(b"MThd", 0, 64)
    if start < 0:
        return False
    pos = start
    while pos < len(data):
        if pos + 8 > len(data):
            return True
        chunk_len = struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        if pos + 8 + chunk_len > len(data):
            return True
        pos += 8 + chunk_len
    return False


# Data bytes after a channel status (by high nibble) and after system-common statuses.
_CHANNEL_DATA_BYTES = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
_SYSTEM_DATA_BYTES = {0xF1: 1, 0xF2: 2, 0xF3: 1}


def _read_varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = 0
    while pos < end:
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    return value, pos


def _count_track_note_ons(data: bytes, pos: int, end: int, budget: int) -> int:
    """Note-ons (velocity > 0) in one track body, stopping once ``budget`` is passed."""
    count = 0
    status = 0
    while pos < end:
        _, pos = _read_varint(data, pos, end)  # delta time
        if pos >= end:
            break
        byte = data[pos]
        if byte >= 0x80:
            pos += 1
            if byte == 0xFF:  # meta event: type, length, payload; keeps the running status
                length, pos = _read_varint(data, pos + 1, end)
                pos += length
                continue
            if byte in (0xF0, 0xF7):  # sysex: length, payload; cancels the running status
                length, pos = _read_varint(data, pos, end)
                pos += length
                status = 0
                continue
            if byte >= 0xF0:
                pos += _SYSTEM_DATA_BYTES.get(byte, 0)
                status = 0
                continue
            status = byte
        elif not status:
            break  # running status with nothing to run on: the track is damaged from here
        kind = status & 0xF0
        if kind == 0x90 and pos + 1 < end and data[pos + 1]:
            count += 1
            if count > budget:
                break
        pos += _CHANNEL_DATA_BYTES[kind]
    return count


def count_midi_note_ons(data: bytes, stop_after: int) -> int:
    """Note-on events in a MIDI file, counted on the raw bytes (stops past ``stop_after``).

    The per-file note cap is checked with this before any reader runs: mido, pretty_midi and
    note-seq build several Python objects per event, so a valid 12 MB file of two million notes
    would otherwise take minutes and gigabytes before its size could be judged. Damaged tracks
    are counted up to the damage, as :func:`repair_midi` would read them.
    """
    start = data.find(b"MThd", 0, 64)
    if start < 0 or len(data) < start + 8:
        return 0
    pos = start + 8 + struct.unpack(">I", data[start + 4 : start + 8])[0]
    count = 0
    while pos + 8 <= len(data) and count <= stop_after:
        chunk_id, chunk_len = struct.unpack(">4sI", data[pos : pos + 8])
        if chunk_id == b"MTrk":
            end = min(pos + 8 + chunk_len, len(data))
            count += _count_track_note_ons(data, pos + 8, end, stop_after - count)
        elif not chunk_id.isalpha():
            break
        pos += 8 + chunk_len
    return count


# --------------------------------------------------------------------------------------------
# MusicXML / MXL


class _ParsedMusicXML(musicxml_parser.MusicXMLDocument):
    """note-seq's MusicXML document model over an already-parsed score (note-seq wants a path)."""

    def __init__(self, score: ET.Element) -> None:
        self._given_score = score
        super().__init__("")

    def _get_score(self, filename: str) -> ET.Element:  # type: ignore[override]
        return self._given_score


class _InMemoryMXL(io.BytesIO):
    """An .mxl in memory for note-seq's own container code, which takes a file name and picks the
    zip branch by its extension (``zipfile`` itself accepts any file object)."""

    def endswith(self, suffix: str | tuple[str, ...]) -> bool:
        return ".mxl".endswith(suffix)


def _musicxml_root_to_sequence(root: ET.Element) -> NoteSequence:
    return musicxml_reader.musicxml_to_sequence_proto(_ParsedMusicXML(root))


def read_musicxml_note_seq(data: bytes, fmt: str) -> list[NoteSequence]:
    """note-seq's MusicXML reader; for .mxl its own container handling (Magenta's path)."""
    if fmt != MXL:
        try:
            root = ET.fromstring(data)
        except ET.ParseError as exc:
            raise musicxml_parser.MusicXMLParseError(exc) from exc
        return [_musicxml_root_to_sequence(root)]
    return [musicxml_reader.musicxml_file_to_sequence_proto(_InMemoryMXL(data))]


def _zip_member_name(info: zipfile.ZipInfo) -> str:
    """Member name decoded as UTF-8 even without the zip UTF-8 flag (as note-seq does)."""
    if info.flag_bits & 0x800:
        return info.filename
    return info.filename.encode("cp437").decode("utf-8", "replace")


def mxl_score_member(data: bytes) -> bytes:
    """The MusicXML score inside an .mxl, found without trusting ``container.xml`` to parse.

    A well-formed container is used when present; otherwise the single non-``META-INF`` XML
    member, or the member whose name appears verbatim in the (malformed) container text.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        names = {_zip_member_name(info): info for info in infos}
        container = names.get("META-INF/container.xml")
        container_text = archive.read(container) if container is not None else b""
        if container_text:
            try:
                root = ET.fromstring(container_text)
                for rootfile in root.iter("rootfile"):
                    path = rootfile.attrib.get("full-path", "")
                    media = rootfile.attrib.get("media-type", musicxml_parser.MUSICXML_MIME_TYPE)
                    if media == musicxml_parser.MUSICXML_MIME_TYPE and path in names:
                        return archive.read(names[path])
            except ET.ParseError:
                pass  # the case this reader exists for: fall through to the members
        scores = [
            name
            for name in names
            if not name.startswith("META-INF/") and name.lower().endswith((".xml", ".musicxml"))
        ]
        if len(scores) > 1:
            text = container_text.decode("utf-8", "replace")
            scores = [name for name in scores if name in text] or scores[:0]
        if len(scores) != 1:
            raise ReaderError(f"cannot tell the score among {len(scores)} XML members")
        return archive.read(names[scores[0]])


def read_mxl_inner(data: bytes) -> list[NoteSequence]:
    """note-seq's MusicXML reader on the score member read straight out of the .mxl."""
    return [_musicxml_root_to_sequence(ET.fromstring(mxl_score_member(data)))]


def check_zip(data: bytes, limits: Limits) -> str | None:
    """Zip-bomb guard from the central directory alone (nothing is inflated).

    zipfile enforces each member's declared size while inflating, so checking declared sizes and
    ratios here bounds what any later reader can inflate. Returns a detail string when over a cap.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None  # not a readable zip: the readers will report it
    if len(infos) > limits.max_zip_members:
        return f"{len(infos)} members > {limits.max_zip_members}"
    total = sum(info.file_size for info in infos)
    if total > limits.max_unzipped_bytes:
        return f"{total} bytes uncompressed > {limits.max_unzipped_bytes}"
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_zip_ratio and info.file_size > 1024 * 1024:
            return f"member {info.filename!r} inflates {ratio:.0f}x > {limits.max_zip_ratio:.0f}x"
    return None


def _zip_truncated(data: bytes) -> bool:
    """A zip that starts like one but has no end-of-central-directory record was cut short."""
    return data.startswith(b"PK\x03\x04") and b"PK\x05\x06" not in data[-(22 + 65535) :]


_TRUNCATION_CODES = {3, 5, 6}  # expat: no element found, unclosed token, partial character


def _xml_truncated(data: bytes) -> bool:
    """True when the XML parser ran out of document rather than meeting bad syntax."""
    try:
        ET.fromstring(data)
    except ET.ParseError as exc:
        return exc.code in _TRUNCATION_CODES
    return False


# --------------------------------------------------------------------------------------------
# music21


def _decode_text(data: bytes) -> str:
    """Text formats (ABC, Humdrum) as str: UTF-8 (BOM allowed) first, Latin-1 as lossless rescue."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _chord_figure(symbol: Any) -> str:
    """note-seq's figure string for a music21 chord symbol.

    The symbol is exported to a MusicXML ``<harmony>`` element by music21 and read back by
    note-seq's own ``ChordSymbol``, so the figures match what the note-seq MusicXML reader writes.
    """
    from music21 import harmony
    from music21.musicxml import m21ToXml

    if isinstance(symbol, harmony.NoChord):
        return "N.C."
    # ABC spellings ("D/f+" = D over F#) are misread by music21 ("D/f+" as D augmented over F):
    # the written figure, respelled as extraction respells note-seq's, wins when note-seq takes it.
    written = str(getattr(symbol, "figure", "") or "")
    respelled = abc_figure(written)
    if respelled is not None and respelled != written:
        with contextlib.suppress(chord_symbols_lib.ChordSymbolError):
            chord_symbols_lib.chord_symbol_pitches(respelled)
            return respelled
    try:
        element = m21ToXml.MeasureExporter().chordSymbolToXml(symbol)
        return musicxml_parser.ChordSymbol(
            element, musicxml_parser.MusicXMLParserState()
        ).get_figure_string()
    except Exception:  # a kind note-seq does not know: music21's figure, flats spelled 'b'
        return str(symbol.figure).replace("-", "b")


def _quarters_to_seconds(quarters: np.ndarray, sequence: NoteSequence) -> np.ndarray:
    """Map score offsets (quarter notes) to seconds through the sequence's tempo map."""
    tempos = sorted(((t.time, t.qpm) for t in sequence.tempos), key=lambda tq: tq[0])
    if not tempos or tempos[0][0] > 0:
        tempos.insert(0, (0.0, 120.0))  # MIDI default before the first tempo event
    times = np.array([t for t, _ in tempos], dtype=np.float64)
    qpm = np.array([q for _, q in tempos], dtype=np.float64)
    starts_q = np.concatenate([[0.0], np.cumsum(np.diff(times) * qpm[:-1] / 60.0)])
    seg = np.clip(np.searchsorted(starts_q, quarters, side="right") - 1, 0, len(times) - 1)
    return times[seg] + (quarters - starts_q[seg]) * 60.0 / qpm[seg]


_M21_ENCODING = {
    MUSICXML: NoteSequence.SourceInfo.MUSIC_XML,
    MXL: NoteSequence.SourceInfo.MUSIC_XML,
    ABC: NoteSequence.SourceInfo.ABC,
    MIDI: NoteSequence.SourceInfo.MIDI,
}


def _strip_repeats(score: Any) -> None:
    """Remove repeat barlines, brackets and D.C./segno marks, in place.

    music21's MIDI export expands repeats (and gives up on badly formed ones); note-seq's readers
    never do. Without the marks the export keeps the written timeline, as note-seq does, and the
    chord symbols (timed from written offsets) stay aligned with the notes.
    """
    from music21 import bar, repeat, spanner, stream

    for measure in score.recurse().getElementsByClass(stream.Measure):
        if isinstance(measure.leftBarline, bar.Repeat):
            measure.leftBarline = None
        if isinstance(measure.rightBarline, bar.Repeat):
            measure.rightBarline = bar.Barline("regular")
    marks = list(score.recurse().getElementsByClass(repeat.RepeatExpression))
    marks += list(score.recurse().getElementsByClass(spanner.RepeatBracket))
    if marks:
        score.remove(marks, recurse=True)


def _needs_transposing(score: Any) -> bool:
    """True when written and sounding pitch differ (a transposing instrument, not yet applied).

    ``toSoundingPitch`` deep-copies the whole score, so it is skipped when it would change nothing.
    """
    from music21 import instrument

    if score.atSoundingPitch is True:
        return False
    return any(
        inst.transposition is not None and inst.transposition.semitones != 0
        for inst in score.recurse().getElementsByClass(instrument.Instrument)
    )


def _unshare_context_objects(score: Any) -> None:
    """Give every measure its own time/key signature and tempo objects, in place.

    music21's ABC reader may put one ``TimeSignature`` object into several measures; its MIDI
    export then fails ("already found in this Stream") when it collects them into the conductor
    track. Each repeated occurrence is replaced by a copy.
    """
    from music21 import key, meter, stream, tempo

    seen: set[int] = set()
    for measure in score.recurse().getElementsByClass(stream.Measure):
        for element in list(
            measure.getElementsByClass((meter.TimeSignature, key.KeySignature, tempo.MetronomeMark))
        ):
            if id(element) in seen:
                measure.replace(element, copy.deepcopy(element))
            else:
                seen.add(id(element))


def music21_to_note_sequence(score: Any, fmt: str = MUSICXML) -> NoteSequence:
    """Convert a music21 Score/Part to a NoteSequence.

    Notes, tempos, time and key signatures, instruments and velocities go through music21's MIDI
    export read back by note-seq (at sounding pitch and with repeats as written, as note-seq's
    MusicXML reader does); chord symbols are removed before the export (music21 would realise
    them as notes) and added as ``CHORD_SYMBOL`` text annotations with note-seq figures, timed
    through the same tempo map.
    """
    from music21 import harmony
    from music21 import midi as m21midi

    sounding = score.toSoundingPitch() if _needs_transposing(score) else score
    parts = list(sounding.parts) if hasattr(sounding, "parts") and sounding.parts else [sounding]
    chords: set[tuple[float, str]] = set()
    for part in parts:
        for symbol in part.flatten().getElementsByClass(harmony.ChordSymbol):
            chords.add((float(symbol.offset), _chord_figure(symbol)))
    symbols = list(sounding.recurse().getElementsByClass(harmony.ChordSymbol))
    if symbols:
        sounding.remove(symbols, recurse=True)
    _strip_repeats(sounding)
    _unshare_context_objects(sounding)
    midi_bytes = m21midi.translate.streamToMidiFile(sounding).writestr()
    sequence = midi_io.midi_to_note_sequence(midi_bytes)
    sequence.source_info.source_type = NoteSequence.SourceInfo.SCORE_BASED
    sequence.source_info.encoding_type = _M21_ENCODING.get(
        fmt, NoteSequence.SourceInfo.UNKNOWN_ENCODING_TYPE
    )
    sequence.source_info.parser = NoteSequence.SourceInfo.MUSIC21
    if chords:
        ordered = sorted(chords)
        seconds = _quarters_to_seconds(np.array([q for q, _ in ordered]), sequence)
        for when, (_, figure) in zip(seconds, ordered, strict=True):
            annotation = sequence.text_annotations.add()
            annotation.time = float(when)
            annotation.text = figure
            annotation.annotation_type = CHORD_SYMBOL
    return sequence


def read_music21(data: bytes, fmt: str) -> list[NoteSequence]:
    """music21's parser (the slow, tolerant fallback); one sequence per score of an Opus."""
    from music21 import converter, stream

    if fmt == MXL:
        payload: Any = mxl_score_member(data)
        m21_format = "musicxml"
    elif fmt == MUSICXML:
        payload, m21_format = data, "musicxml"
    elif fmt == HUMDRUM:
        payload, m21_format = _decode_text(data), "humdrum"
    elif fmt == ABC:
        payload, m21_format = _decode_text(data), "abc"
    else:
        raise ReaderError(f"music21 reader does not handle {fmt}")
    parsed = converter.parseData(payload, format=m21_format)
    scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
    if not scores:
        raise ReaderError("music21 found no score")
    return [music21_to_note_sequence(score, fmt) for score in scores]


# --------------------------------------------------------------------------------------------
# ABC


def split_abc_tunes(text: str) -> tuple[list[str], list[list[str]]]:
    """Split a tunebook into (file header lines, tunes), as note-seq's tunebook parser does.

    Sections are separated by blank lines; a first section without ``X:`` is the file header that
    every tune inherits. Other sections without ``X:`` are free text, not tunes (ABC 2.1), unless
    the file has no ``X:`` at all, in which case it is one tune.
    """
    sections: list[list[str]] = []
    current: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line:
            current.append(line)
        elif current:
            sections.append(current)
            current = []
    if current:
        sections.append(current)
    header: list[str] = []
    if len(sections) > 1 and not any(line.startswith("X:") for line in sections[0]):
        header = sections.pop(0)
    tunes = [s for s in sections if any(line.startswith("X:") for line in s)]
    if not tunes and sections:
        tunes = [[line for s in sections for line in s]]
    return header, tunes


def read_abc_tune_note_seq(header: Sequence[str], tune: Sequence[str]) -> list[NoteSequence]:
    """note-seq's ABC tune parser on one tune (with the tunebook header prepended)."""
    return [abc_parser.ABCTune(list(header) + list(tune)).note_sequence]


def read_abc_tune_music21(header: Sequence[str], tune: Sequence[str]) -> list[NoteSequence]:
    """music21's ABC parser on one tune: chords, tuplets, rests, variant endings."""
    text = "\n".join(list(header) + list(tune)) + "\n"
    return read_music21(text.encode("utf-8"), ABC)


# --------------------------------------------------------------------------------------------
# Library log lines


_LOG_COUNTS = threading.local()  # the current parse's counter, per thread
_LOG_PLACEHOLDER = re.compile(r"\s*%[-#0 +]*\d*(?:\.\d+)?[sdrfgixXe]")


def _log_template(record: logging.LogRecord) -> str:
    """The message's wording without its arguments: one key per kind of log line."""
    text = _LOG_PLACEHOLDER.sub("", str(record.msg)).strip(" :")
    return f"{record.levelname.lower()}: {text[:120]}"


class _CountLogLines(logging.Filter):
    """Swallows and counts the log lines of a parse in progress on this thread.

    note-seq logs through absl one line per oddity, e.g. ``Unknown field name`` for every
    unknown ABC header field of every tune: hundreds of stderr lines for one tunebook. The
    outcomes are already accounted for per file, so the lines become counts (``FileResult``
    ``log_messages``, summed in the ingest metrics). Outside a parse, lines pass untouched.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        counts: Counter[str] | None = getattr(_LOG_COUNTS, "counts", None)
        if counts is None:
            return True
        counts[_log_template(record)] += 1
        return False


_LOG_FILTER = _CountLogLines()
QUIETED_LOGGERS = ("absl",)  # where note-seq's readers log


@contextmanager
def counting_log_lines() -> Iterator[Counter[str]]:
    """Count (and silence) the readers' log lines on this thread while the block runs."""
    for name in QUIETED_LOGGERS:
        logger = logging.getLogger(name)
        if _LOG_FILTER not in logger.filters:
            logger.addFilter(_LOG_FILTER)
    counts: Counter[str] = Counter()
    outer = getattr(_LOG_COUNTS, "counts", None)
    _LOG_COUNTS.counts = counts
    try:
        yield counts
    finally:
        _LOG_COUNTS.counts = outer


# --------------------------------------------------------------------------------------------
# The chain


Reader = Callable[[bytes], list[NoteSequence]]


def reader_chain(fmt: str) -> list[tuple[str, Reader]]:
    """Readers for a single-piece format, fastest and most faithful first."""
    if fmt == MIDI:
        return [(NOTE_SEQ_MIDI, read_midi_note_seq), (MIDO_REPAIR, read_midi_repaired)]
    if fmt == MUSICXML:
        return [
            (NOTE_SEQ_MUSICXML, lambda d: read_musicxml_note_seq(d, MUSICXML)),
            (MUSIC21, lambda d: read_music21(d, MUSICXML)),
        ]
    if fmt == MXL:
        return [
            (NOTE_SEQ_MUSICXML, lambda d: read_musicxml_note_seq(d, MXL)),
            (NOTE_SEQ_MXL_INNER, read_mxl_inner),
            (MUSIC21, lambda d: read_music21(d, MXL)),
        ]
    if fmt == HUMDRUM:
        return [(MUSIC21, lambda d: read_music21(d, HUMDRUM))]
    raise ValueError(f"no single-piece reader chain for {fmt!r}")


def check_content(sequence: NoteSequence, limits: Limits) -> None:
    """Raise :class:`ContentError` for content no model should train on."""
    for tempo in sequence.tempos:
        if not limits.min_qpm <= tempo.qpm <= limits.max_qpm:
            raise ContentError(
                "absurd_tempo",
                f"tempo {tempo.qpm:g} qpm at {tempo.time:g} s outside "
                f"[{limits.min_qpm:g}, {limits.max_qpm:g}]",
            )
    if not math.isfinite(sequence.total_time) or sequence.total_time > limits.max_duration_s:
        raise ContentError(
            "too_long", f"total_time {sequence.total_time:g} s > {limits.max_duration_s:g} s"
        )


def _error_text(reader: str, exc: BaseException) -> str:
    message = " ".join(str(exc).split())[:300]
    return f"{reader}: {type(exc).__name__}: {message}"


@dataclass
class _ChainOutcome:
    reader: str | None  # the reader that produced sequences with notes, None if none did
    sequences: list[NoteSequence]
    errors: list[str]
    empty: bool  # some reader parsed the input but found no notes in it
    hops: tuple[str, ...] = ()  # the fallbacks taken on the way ("a->b")


def _try_chain(
    chain: Sequence[tuple[str, Callable[[], list[NoteSequence]]]], result: FileResult
) -> _ChainOutcome:
    """Try readers in order, recording each hop; a parse without notes also means "try the next".

    ``MemoryError`` is not a reader failure: it goes up to the parse worker, which reports the
    file as over its memory cap instead of trying a (usually hungrier) fallback.
    """
    errors: list[str] = []
    hops: list[str] = []
    empty = False
    for position, (name, call) in enumerate(chain):
        if position:
            hops.append(f"{chain[position - 1][0]}->{name}")
            result.fallbacks.append(hops[-1])
        try:
            sequences = call()
        except MemoryError:
            raise
        except Exception as exc:  # every library raises its own types; all mean "try the next"
            errors.append(_error_text(name, exc))
            continue
        with_notes = [sequence for sequence in sequences if len(sequence.notes)]
        if with_notes:
            return _ChainOutcome(name, with_notes, errors, False, tuple(hops))
        empty = True
        errors.append(f"{name}: parsed, but no notes")
    return _ChainOutcome(None, [], errors, empty, tuple(hops))


def _classify_failure(data: bytes, fmt: str, magic: str | None) -> str:
    """Quarantine reason for a file no reader could take."""
    if fmt == MIDI and _midi_truncated(data):
        return "truncated"
    if fmt == MXL and _zip_truncated(data):
        return "truncated"
    if fmt == MUSICXML and magic == MUSICXML and _xml_truncated(data):
        return "truncated"
    if magic is None and (fmt in (MIDI, MXL) or _looks_binary(data)):
        return "unrecognised_format"
    return "parse_error"


def _accept(
    result: FileResult,
    index: int,
    outcome: _ChainOutcome,
    sequence: NoteSequence,
    limits: Limits,
) -> None:
    """Run the content checks and file the tune as parsed or failed."""
    assert outcome.reader is not None
    try:
        check_content(sequence, limits)
    except ContentError as exc:
        result.failures.append(TuneFailure(index, exc.reason, str(exc)))
        return
    result.num_notes += len(sequence.notes)
    result.tunes.append(
        ParsedTune(index, outcome.reader, sequence.SerializeToString(), outcome.hops)
    )


def _over_note_cap(result: FileResult, limits: Limits) -> bool:
    """Quarantine the whole file as ``too_large`` once its tunes pass the per-file note cap."""
    if result.num_notes <= limits.max_notes:
        return False
    result.reason = "too_large"
    result.detail = f"{result.num_notes}+ notes > max_notes {limits.max_notes}"
    result.tunes, result.failures = [], []
    return True


def _parse_abc(
    data: bytes, result: FileResult, limits: Limits, on_tune: Callable[[], None] | None
) -> None:
    """Per-tune chain for a tunebook: each tune's failure stays with that tune."""
    header, tunes = split_abc_tunes(_decode_text(data))
    for index, tune in enumerate(tunes):
        if on_tune is not None and index:
            on_tune()
        outcome = _try_chain(
            [
                (NOTE_SEQ_ABC, functools.partial(read_abc_tune_note_seq, header, tune)),
                (MUSIC21, functools.partial(read_abc_tune_music21, header, tune)),
            ],
            result,
        )
        if outcome.reader is not None:
            # music21 may see several scores in one section; the tune keeps its first.
            _accept(result, index, outcome, outcome.sequences[0], limits)
            if _over_note_cap(result, limits):
                return
            continue
        title = next((line[2:].strip() for line in tune if line.startswith("T:")), "")
        detail = f"tune {index} {title!r}: " + "; ".join(outcome.errors)
        reason = "no_notes" if outcome.empty else "parse_error"
        result.failures.append(TuneFailure(index, reason, detail))


def parse_file(
    data: bytes,
    name: str,
    limits: Limits | None = None,
    on_tune: Callable[[], None] | None = None,
) -> FileResult:
    """Parse one file's bytes into NoteSequences; never raises for bad input.

    ``name`` (a path) only supplies the extension; the magic bytes win when they disagree with it
    (a MIDI named ``.xml`` is read as MIDI and counted as an extension mismatch). ``on_tune`` is
    called before each further tune of a tunebook (``pipelines.parse_worker`` uses it as a
    heartbeat, so its time limit applies per tune rather than to a whole book). A file with more
    than ``limits.max_notes`` notes is ``too_large`` (MIDI: judged on the raw note-on events,
    before any reader runs). The readers' log lines are counted in ``log_messages``, not printed.
    """
    limits = limits or Limits()
    ext_fmt = format_for_path(name)
    magic = sniff_format(data)
    fmt = ext_fmt
    mismatch = magic is not None and magic != ext_fmt
    if mismatch:
        fmt = magic
    result = FileResult(format=fmt, extension_mismatch=mismatch)
    if not data.strip():
        result.reason, result.detail = "empty", f"{len(data)} bytes, no content"
        return result
    if fmt is None:
        result.reason = "unrecognised_format"
        result.detail = f"unsupported extension {os.path.splitext(name)[1]!r}"
        return result
    if fmt == MXL:
        bomb = check_zip(data, limits)
        if bomb:
            result.reason, result.detail = "zip_bomb", bomb
            return result
    if fmt == MIDI:
        note_ons = count_midi_note_ons(data, limits.max_notes)
        if note_ons > limits.max_notes:
            result.reason = "too_large"
            result.detail = f"{note_ons}+ note-on events > max_notes {limits.max_notes}"
            return result
    with warnings.catch_warnings(), counting_log_lines() as log_lines:
        warnings.simplefilter("ignore")  # pretty_midi/music21 warn per file; outcomes are counted
        if fmt == ABC:
            _parse_abc(data, result, limits, on_tune)
        else:
            chain = [(name, functools.partial(reader, data)) for name, reader in reader_chain(fmt)]
            outcome = _try_chain(chain, result)
            if outcome.reader is not None:
                for index, sequence in enumerate(outcome.sequences):
                    _accept(result, index, outcome, sequence, limits)
                _over_note_cap(result, limits)
            else:
                result.detail = "; ".join(outcome.errors)
                result.reason = "no_notes" if outcome.empty else _classify_failure(data, fmt, magic)
    result.log_messages = dict(sorted(log_lines.items()))
    if not result.tunes and result.reason is None:
        if result.failures:
            reasons = [failure.reason for failure in result.failures]
            result.reason = max(set(reasons), key=reasons.count)
            result.detail = "; ".join(failure.detail for failure in result.failures)[:2000]
            result.failures = []
        else:
            result.reason, result.detail = "parse_error", "no tune found"
    if result.reason not in (None, "too_large") and mismatch:
        result.detail = (
            f"named {os.path.splitext(name)[1]!r} but the bytes are {fmt} "
            f"({result.reason}): {result.detail}"
        )
        result.reason = "extension_mismatch"
    return result
