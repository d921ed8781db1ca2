"""MIDI: note-seq's reader, a tolerant mido re-read for damaged files, and a raw note-on count.

``parse.reader_chain`` tries :func:`read_midi_note_seq` then :func:`read_midi_repaired`;
``parse.parse_file`` checks :func:`count_midi_note_ons` against the note cap before either runs,
and asks :func:`midi_truncated` why a file no reader could take failed.
"""

from __future__ import annotations

import io
import struct

import mido
import pretty_midi
from mido.midifiles import meta as mido_meta
from mido.midifiles import midifiles as mido_files
from note_seq import midi_io

from pipelines.readers.common import NoteSequence, ReaderError


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


def midi_truncated(data: bytes) -> bool:
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
