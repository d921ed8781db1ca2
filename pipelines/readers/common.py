"""What every reader shares: names, formats, limits, result records, errors and format sniffing.

A leaf of :mod:`pipelines.readers` (no other reader module imported), so the format readers
(``midi``, ``musicxml``, ``music21_reader``, ``abc_tunes``) and the chain (``chain``, ``parse``)
all build on the same records. Reader and format names are stored per row in the ingest output,
so they never change.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import numpy as np
from note_seq.protobuf import music_pb2

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


def looks_binary(data: bytes) -> bool:
    """True when the head is not plausible text (NULs or many control bytes)."""
    head = np.frombuffer(data[:4096], dtype=np.uint8)
    if head.size == 0:
        return False
    control = (head < 9) | ((head > 13) & (head < 32))
    return bool(control.mean() > 0.05)


def decode_text(data: bytes) -> str:
    """Text formats (ABC, Humdrum) as str: UTF-8 (BOM allowed) first, Latin-1 as lossless rescue."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")
