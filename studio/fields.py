"""The Studio form's vocabulary: its controls, their caps, and how a problem is tied to one.

How it connects. :mod:`studio.validation` reads the form with the parsers of
:mod:`studio.inputs` and generation's own rules, and every problem it finds becomes a
:class:`FieldError`: the id of one control (:data:`LABELS`) and one plain sentence, which the page
(:mod:`studio.server`, ``static/app.js``) shows next to that control. A generation error
(:class:`~modeling.generation.request.GenerateError`) carries the *request field* it is about;
:func:`field_error` maps that field onto a control (:data:`FIELD_CONTROLS`, never the message's
words) and words the message with the page's labels (:func:`flag_words`, where the CLI says
``--name``). :class:`Limits` are the Studio's caps, tighter than the CLI's because a page is
shared and kept open.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from modeling import first_line
from modeling.generation.request import GenerateError

LABELS: dict[str, str] = {
    "model": "Model",
    "primer_type": "Primer",
    "primer_text": "Primer",
    "primer_midi": "MIDI primer",
    "chords": "Backing chords",
    "steps_per_chord": "Steps per chord",
    "render_chords": "Play chords",
    "density": "Note density",
    "histogram": "Pitch-class histogram",
    "key": "Key / scale",
    "temperature": "Temperature",
    "length": "Length",
    "num_outputs": "Outputs",
    "seed": "Seed",
    "form": "Request",
}
"""Form control ids (the ``name`` of the page's inputs) and how the page labels them."""


class FieldError(ValueError):
    """A request problem tied to one form control (``field``) with a one-sentence message."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field if field in LABELS else "form"
        self.message = sentence(message)

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def sentence(text: str) -> str:
    """One plain sentence: first line only, capitalised, full stop."""
    line = first_line(text, "Something went wrong").strip()
    if re.match(r"[a-z]+\b(?![_.:/-]\w)", line):  # a word, not a name such as attention_rnn
        line = line[0].upper() + line[1:]
    return line if line.endswith((".", "!", "?")) else line + "."


FLAG_WORDS = {
    "num_steps": "Length",
    "num_bars": "Length",
    "num_seconds": "Length",
    "primer_melody": "the primer",
    "primer_pitches": "a chord primer",
    "primer_midi": "a MIDI primer",
    "backing_chords": "Backing chords",
    "notes_per_second": "Note density",
    "pitch_class_histogram": "the histogram",
    "controls": "the controls",
    "render_chords": "Play chords",
    "key": "key",
    "scale": "scale",
    "temperature": "Temperature",
    "num_outputs": "Outputs",
    "seed": "Seed",
    "steps_per_chord": "Steps per chord",
}
"""How the page words a request field a message mentions (the CLI spells it ``--name``)."""


def flag_words(name: str) -> str:
    """The page's words for request field ``name``."""
    return FLAG_WORDS.get(name, name.replace("_", " "))


@dataclass(frozen=True)
class Limits:
    """The Studio's caps; a page serves one person at a time on a shared machine."""

    max_outputs: int = 8
    max_bars: float = 64.0  # melody / improv / polyphony: 64 bars = 1024 16th steps
    max_seconds: float = 120.0  # performance: 12,000 10 ms steps
    max_upload_bytes: int = 1 << 20  # MIDI primers are kilobytes; 1 MiB is generous
    max_primer_notes: int = 5000
    max_primer_seconds: float = 600.0
    max_text: int = 4000  # characters in one text field
    max_chords: int = 256
    max_steps_per_chord: int = 64
    min_temperature: float = 0.05
    max_temperature: float = 5.0
    max_density: float = 64.0  # the top note-density bin starts at 64 notes/s
    max_control_values: int = 32
    max_histogram_weight: float = 100.0

    def as_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


# ----------------------------------------------------------------------------- engine errors


FIELD_CONTROLS: dict[str, str] = {
    "primer_pitches": "primer_type",  # the model takes no chord primer: pick another type
    "backing_chords": "chords",
    "steps_per_chord": "steps_per_chord",
    "render_chords": "render_chords",
    "notes_per_second": "density",
    "pitch_class_histogram": "histogram",
    "controls": "histogram",
    "key": "key",
    "scale": "key",
    "temperature": "temperature",
    "num_outputs": "num_outputs",
    "beam_size": "num_outputs",
    "branch_factor": "num_outputs",
    "seed": "seed",
    "num_steps": "length",
    "num_bars": "length",
    "num_seconds": "length",
    "model": "model",
    "checkpoint": "model",
    "config": "model",
}
"""Request field of a :class:`GenerateError` -> the form control that sets it."""


def control_for(error: GenerateError, primer_type: str = "none") -> str:
    """The form control a :class:`GenerateError` is about ("form" if none): by its ``field``.

    Primer fields go to the control the primer came from: the text box, the upload, or the
    primer type for a sample sent back (it has no control of its own).
    """
    field = error.field
    if field in ("primer", "primer_melody", "primer_midi"):
        if field == "primer_midi" or primer_type in ("midi", "sample"):
            return "primer_type" if primer_type == "sample" else "primer_midi"
        return "primer_text"
    return FIELD_CONTROLS.get(field or "", "form")


def field_error(error: GenerateError, primer_type: str = "none") -> FieldError:
    """A :class:`FieldError` for a generation / registry error, worded with the page's labels.

    For typed notes the engine's event number is dropped: it counts 16th steps, not the notes
    the user typed, and the message already names the note.
    """
    message = error.render(flag_words)
    if primer_type == "notes":
        message = re.sub(r" \(MIDI \d+, event \d+\)", "", message)
    return FieldError(control_for(error, primer_type), message)
