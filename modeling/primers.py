"""Parsing of generation requests: primers, backing chords, performance controls.

``modeling/generate.py`` takes Magenta's flag strings (``--primer_melody "[60, -2, 62]"``,
``--backing_chords "C G Am F"``, ``--pitch_class_histogram "[2, 0, 1, ...]"``, the seed 003 control
string ``"2,0,1,1,0,1,0,1,1,0,0,1;4"``) and turns them into Python values here, before any model is
loaded, so a typo costs one line on stderr and exit 2, never a traceback. Lists are read with
``ast.literal_eval`` (as Magenta does), never ``eval``; chord symbols are checked with note-seq's
chord-symbol grammar through :func:`modeling.families.chords.chord_columns`; MIDI primers are read
with note-seq's ``midi_file_to_note_sequence``.
"""

from __future__ import annotations

import ast
import math
import numbers
from pathlib import Path
from typing import Any

import note_seq
import numpy as np
from note_seq.protobuf import music_pb2

from modeling import first_line
from modeling.families.chords import ChordColumnError, chord_columns
from modeling.generation.errors import RequestError  # defined with the structured errors


def _literal(text: str, flag: str, example: str) -> Any:
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise RequestError(f"{flag}: cannot read {text!r}; expected e.g. {example}") from None


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(float(x))


def parse_int_list(text: str, flag: str, example: str) -> list[int]:
    """A non-empty list of ints written as a Python list (``"[60, -2, 62]"``)."""
    value = _literal(text, flag, example)
    if isinstance(value, tuple):
        value = list(value)
    if _is_int(value):
        value = [value]
    if not isinstance(value, list) or not value or not all(_is_int(v) for v in value):
        raise RequestError(
            f"{flag}: expected a non-empty list of integers such as {example}, got {text!r}"
        )
    return [int(v) for v in value]


def parse_primer_melody(text: str) -> list[int]:
    """Magenta melody events: -2 no event (hold), -1 note off, 0..127 note on."""
    events = parse_int_list(text, "--primer_melody", "[60, -2, 60, -2, 67, -2, 67, -2]")
    for i, v in enumerate(events):
        if not -2 <= v <= 127:
            raise RequestError(
                f"--primer_melody: event {v} at position {i} is not -2 (no event), "
                "-1 (note off) or a MIDI pitch 0..127"
            )
    return events


def parse_primer_pitches(text: str) -> list[int]:
    """Magenta's ``--primer_pitches``: MIDI pitches sounded together for one quarter note."""
    pitches = parse_int_list(text, "--primer_pitches", "[67, 64, 60]")
    for i, p in enumerate(pitches):
        if not 0 <= p <= 127:
            raise RequestError(
                f"--primer_pitches: pitch {p} at position {i} is not a MIDI pitch 0..127"
            )
    return pitches


def read_primer_midi(path: str | Path) -> music_pb2.NoteSequence:
    """A MIDI primer as a NoteSequence (note-seq's reader); errors become one line."""
    p = Path(path)
    if not p.is_file():
        raise RequestError(f"--primer_midi: no such file {str(p)!r}")
    try:
        ns = note_seq.midi_file_to_note_sequence(str(p))
    except Exception as exc:  # note-seq wraps mido/pretty_midi errors inconsistently
        first = first_line(exc)
        raise RequestError(f"--primer_midi: cannot read {str(p)!r}: {first}") from None
    if not any(not n.is_drum for n in ns.notes):
        raise RequestError(f"--primer_midi: {str(p)!r} holds no pitched notes")
    return ns


def parse_density(text: str) -> float | list[float]:
    """``--notes_per_second``: a number >= 0, or a list of them spread over the piece."""
    value = _literal(text, "--notes_per_second", "4 or [2, 8]")
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values or not all(_is_number(v) for v in values):
        raise RequestError(
            f"--notes_per_second: expected a number or a list of numbers, got {text!r}"
        )
    for i, v in enumerate(values):
        if v < 0:
            raise RequestError(f"--notes_per_second: density {v} at position {i} is negative")
    out = [float(v) for v in values]
    return out if isinstance(value, (list, tuple)) else out[0]


def _histogram_row(row: Any, flag: str, where: str) -> list[float]:
    if not isinstance(row, (list, tuple)) or not all(_is_number(v) for v in row):
        raise RequestError(f"{flag}: {where} must be 12 numbers (C, C#, ..., B)")
    if len(row) != 12:
        raise RequestError(
            f"{flag}: {where} has {len(row)} values; a pitch-class histogram has 12 (C, C#, ..., B)"
        )
    if any(v < 0 for v in row):
        raise RequestError(f"{flag}: {where} has a negative weight")
    return [float(v) for v in row]


def parse_histogram(
    text: str, flag: str = "--pitch_class_histogram"
) -> list[float] | list[list[float]]:
    """12 weights (C..B), or a list of such lists spread over the piece."""
    value = _literal(text, flag, "[2, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1]")
    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(r, (list, tuple)) for r in value)
    ):
        return [_histogram_row(r, flag, f"histogram {i}") for i, r in enumerate(value)]
    return _histogram_row(value, flag, "the histogram")


def parse_controls(text: str) -> tuple[list[float] | None, float | None]:
    """The seed 003 control string ``"<12 histogram weights>;<notes per second>"``.

    Either half may be empty (``";4"`` or ``"2,0,1,...,1;"``); the histogram may also be given
    alone without the semicolon.
    """
    hist_text, sep, density_text = text.partition(";")
    histogram = None
    density = None
    if hist_text.strip():
        inner = hist_text.strip()
        if not inner.startswith("["):
            inner = f"[{inner}]"
        histogram = parse_histogram(inner, "--controls")
        if histogram and isinstance(histogram[0], list):
            raise RequestError(
                "--controls: one histogram only; use --pitch_class_histogram for "
                "a list spread over the piece"
            )
    if sep and density_text.strip():
        d = parse_density(density_text)
        if isinstance(d, list):
            raise RequestError("--controls: one density only; use --notes_per_second for a list")
        density = d
    if histogram is None and density is None:
        raise RequestError(
            f"--controls: nothing in {text!r}; expected "
            "'2,0,1,1,0,1,0,1,1,0,0,1;4' (histogram;notes per second)"
        )
    return histogram, density  # type: ignore[return-value]


def parse_backing_chords(
    text: str, steps_per_chord: int
) -> tuple[list[str], dict[str, np.ndarray]]:
    """Chord symbols (note-seq's grammar) -> one figure per melody step + the chord columns.

    A symbol note-seq cannot parse is reported with its position in the progression (1-based).
    """
    if steps_per_chord < 1:
        raise RequestError(f"--steps_per_chord must be >= 1, got {steps_per_chord}")
    chords = text.split()
    if not chords:
        raise RequestError("--backing_chords is empty; e.g. 'C G Am F'")
    for i, figure in enumerate(chords):
        try:
            chord_columns([figure])
        except ChordColumnError as exc:
            reason = str(exc).split(": ", 1)[-1]
            raise RequestError(
                f"--backing_chords: chord symbol {figure!r} at position {i + 1} "
                f"of {len(chords)} is not a chord note-seq can read ({reason})"
            ) from None
    figures = [c for c in chords for _ in range(steps_per_chord)]
    return figures, chord_columns(figures)
