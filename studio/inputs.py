"""What a musician types or uploads on the Studio page, read into generation's primers and controls.

How it connects. :mod:`studio.validation` calls these for the inputs only the page has: notes
typed by name (``C4 E4 G4:4 r``, read with pretty_midi's note-name parser), event lists and chords
checked with the parsers generation itself uses (:mod:`modeling.primers`), a primer uploaded as
bytes (read with note-seq from memory, never from a path), and a pitch-class histogram given as
12 sliders or a key (:mod:`modeling.scales`). Problems are counted from 1 as the user sees them;
the MIDI and histogram readers raise :class:`~studio.fields.FieldError` themselves, the text
parsers raise ``ValueError`` / ``RequestError`` for the form to tie to the primer box.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from note_seq.protobuf import music_pb2

from modeling import first_line
from modeling import primers as P
from modeling.generation.request import parser_error
from modeling.music import PITCH_CLASS_NAMES
from modeling.primers import RequestError
from modeling.scales import ScaleError
from modeling.scales import resolve as resolve_scale
from modeling.verdicts import plain_number
from studio.fields import FieldError, Limits, flag_words

DEFAULT_NOTE_STEPS = 2
"""A typed note without ``:n`` lasts two 16th steps (an eighth), as in Magenta's primer examples."""


_NOTE = re.compile(r"(?P<name>[A-Ga-g][#b]{0,2}-?\d{1,2}|r|rest|_)(?::(?P<steps>\d{1,3}))?")


def _pitch(name: str, where: str) -> int:
    import pretty_midi

    try:
        pitch = int(pretty_midi.note_name_to_number(name))
    except ValueError:
        raise ValueError(
            f"{where}: cannot read note {name!r}; use names such as C4, F#3, Bb4"
        ) from None
    if not 0 <= pitch <= 127:
        raise ValueError(f"{where}: note {name} is MIDI pitch {pitch}, outside 0..127")
    return pitch


def parse_notes(text: str, max_steps: int) -> list[int]:
    """Notes typed by name -> Magenta melody events (-2 hold, -1 note off, 0..127 note on).

    ``C4 E4 G4:4 r:2 C5``: each note lasts ``:n`` 16th steps (default 2, an eighth note); ``r``
    (or ``rest`` / ``_``) is a rest. Names follow pretty_midi (C4 = 60, sharps ``#``, flats ``b``).
    """
    tokens = [t for t in re.split(r"[\s,]+", text.strip()) if t]
    if not tokens:
        raise ValueError("type some notes, e.g. C4 E4 G4:4 r C5")
    events: list[int] = []
    for i, token in enumerate(tokens, 1):
        m = _NOTE.fullmatch(token)
        if not m:
            raise ValueError(f"note {i} ({token!r}) is not a note name such as C4, F#3:4 or r:2")
        steps = int(m.group("steps") or DEFAULT_NOTE_STEPS)
        if not 1 <= steps <= 64:
            raise ValueError(f"note {i} ({token!r}) lasts {steps} steps; use 1..64 16th steps")
        name = m.group("name")
        head = -1 if name.lower() in ("r", "rest", "_") else _pitch(name, f"note {i}")
        events.extend([head] + [-2] * (steps - 1))
        if len(events) > max_steps:
            raise ValueError(
                f"the notes last more than {max_steps} 16th steps, the Studio's length cap"
            )
    return events


def parse_events(text: str) -> list[int]:
    """A Magenta event list (``[60, -2, 62, -1]``), its problems counted from 1 like notes."""
    events = P.parse_int_list(text, "--primer_melody", "[60, -2, 60, -2, 67, -2, 67, -2]")
    for i, v in enumerate(events, 1):
        if not -2 <= v <= 127:
            raise RequestError(
                f"event {i} ({v}) is not -2 (hold), -1 (note off) or a MIDI pitch 0..127"
            )
    return P.parse_primer_melody(text)


def parse_chord(text: str) -> list[int]:
    """A chord primer: ``[67, 64, 60]`` (MIDI pitches, Magenta's flag) or ``G4 E4 C4``."""
    if text.lstrip().startswith("[") or re.fullmatch(r"[\d\s,]+", text):
        body = text if text.lstrip().startswith("[") else f"[{text}]"
        for i, p in enumerate(P.parse_int_list(body, "--primer_pitches", "[67, 64, 60]"), 1):
            if not 0 <= p <= 127:  # counted from 1, like typed notes
                raise RequestError(f"pitch {p} (number {i}) is not a MIDI pitch 0..127")
        return P.parse_primer_pitches(body)
    names = [t for t in re.split(r"[\s,]+", text.strip()) if t]
    if not names:
        raise ValueError("type the chord's notes, e.g. C4 E4 G4 or [60, 64, 67]")
    return [_pitch(n, f"note {i}") for i, n in enumerate(names, 1)]


def read_midi_upload(data: bytes, limits: Limits) -> music_pb2.NoteSequence:
    """An uploaded MIDI primer, read from memory with note-seq; refused with one sentence.

    Checks, cheapest first: size, the ``MThd`` header, a full parse (note-seq -> pretty_midi ->
    mido), pitched notes, and caps on notes and duration so a valid but huge file cannot tie up
    the generator.
    """
    import note_seq

    if not data:
        raise FieldError("primer_midi", "The uploaded file is empty")
    if len(data) > limits.max_upload_bytes:
        raise FieldError(
            "primer_midi",
            f"The file is {len(data) / 1024:.0f} KB; the upload "
            f"limit is {limits.max_upload_bytes / 1024:.0f} KB",
        )
    if not data.startswith(b"MThd"):
        raise FieldError(
            "primer_midi", "The file is not a MIDI file (it does not start with a MIDI header)"
        )
    try:
        ns = note_seq.midi_to_note_sequence(data)
    except Exception as exc:  # mido / pretty_midi raise many kinds on damaged files
        reason = first_line(exc)[:160]
        raise FieldError(
            "primer_midi",
            f"The MIDI file is damaged and cannot be read ({reason or type(exc).__name__})",
        ) from None
    pitched = sum(1 for n in ns.notes if not n.is_drum)
    if pitched == 0:
        raise FieldError("primer_midi", "The MIDI file has no pitched notes to continue")
    if len(ns.notes) > limits.max_primer_notes:
        raise FieldError(
            "primer_midi",
            f"The MIDI file has {len(ns.notes)} notes; a primer may "
            f"have at most {limits.max_primer_notes}",
        )
    if ns.total_time > limits.max_primer_seconds:
        raise FieldError(
            "primer_midi",
            f"The MIDI file lasts {ns.total_time:.0f} s; a primer may "
            f"last at most {limits.max_primer_seconds:.0f} s",
        )
    return ns


def slider_histogram(values: Sequence[str], limits: Limits) -> list[float]:
    """The 12 sliders (C..B) as weights; all zero means a flat histogram, as in note-seq."""
    if len(values) != 12:
        raise FieldError("histogram", f"The histogram needs 12 weights (C..B), got {len(values)}")
    out = []
    for name, text in zip(PITCH_CLASS_NAMES, values, strict=True):
        try:
            v = float(str(text).strip())
        except ValueError:
            raise FieldError("histogram", f"The {name} weight {text!r} is not a number") from None
        if not math.isfinite(v) or not 0 <= v <= limits.max_histogram_weight:
            raise FieldError(
                "histogram",
                f"The {name} weight must be 0..{plain_number(limits.max_histogram_weight)}, got {text}",
            )
        out.append(v)
    return out


def key_histogram(text: str) -> list[float]:
    """A histogram from a key: weight 1 on each of the key's pitch classes, 0 elsewhere."""
    if not text:
        raise FieldError("histogram", "Type a key for the histogram, e.g. D minor")
    try:
        scale = resolve_scale(text, None)
    except ScaleError as exc:
        raise FieldError("histogram", parser_error(exc, "key").render(flag_words)) from None
    assert scale is not None
    return [1.0 if pc in scale.pitch_classes else 0.0 for pc in range(12)]
