"""One file's bytes -> a :class:`~pipelines.readers.common.FileResult`: the entry point.

:func:`parse_file` sniffs the format, applies the caps that need no reader (zip bomb, MIDI note
count), then runs the format's chain (:func:`reader_chain`, or ``abc_tunes.parse_abc`` per tune)
with library warnings and log lines silenced, and names a quarantine reason when nothing survives.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable

from pipelines.readers.abc_tunes import parse_abc
from pipelines.readers.chain import accept_tune, over_note_cap, try_chain
from pipelines.readers.common import (
    ABC,
    HUMDRUM,
    MIDI,
    MIDO_REPAIR,
    MUSIC21,
    MUSICXML,
    MXL,
    NOTE_SEQ_MIDI,
    NOTE_SEQ_MUSICXML,
    NOTE_SEQ_MXL_INNER,
    FileResult,
    Limits,
    NoteSequence,
    format_for_path,
    looks_binary,
    sniff_format,
)
from pipelines.readers.logs import counting_log_lines
from pipelines.readers.midi import (
    count_midi_note_ons,
    midi_truncated,
    read_midi_note_seq,
    read_midi_repaired,
)
from pipelines.readers.music21_reader import read_music21
from pipelines.readers.musicxml import (
    check_zip,
    read_musicxml_note_seq,
    read_mxl_inner,
    xml_truncated,
    zip_truncated,
)

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


def _classify_failure(data: bytes, fmt: str, magic: str | None) -> str:
    """Quarantine reason for a file no reader could take."""
    if fmt == MIDI and midi_truncated(data):
        return "truncated"
    if fmt == MXL and zip_truncated(data):
        return "truncated"
    if fmt == MUSICXML and magic == MUSICXML and xml_truncated(data):
        return "truncated"
    if magic is None and (fmt in (MIDI, MXL) or looks_binary(data)):
        return "unrecognised_format"
    return "parse_error"


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
            parse_abc(data, result, limits, on_tune)
        else:
            chain = [(name, functools.partial(reader, data)) for name, reader in reader_chain(fmt)]
            outcome = try_chain(chain, result)
            if outcome.reader is not None:
                for index, sequence in enumerate(outcome.sequences):
                    accept_tune(result, index, outcome, sequence, limits)
                over_note_cap(result, limits)
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
