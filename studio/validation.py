"""Request validation for the Studio: the page's form -> a ``modeling.generate.Request``.

The form arrives as plain strings (and at most one uploaded MIDI file). Everything is checked
here, before a job is queued or a model is loaded, with the parsers generation itself uses
(:mod:`modeling.primers` for event lists, chord symbols and controls, :mod:`modeling.scales` for
keys) plus the two inputs only the page has: notes typed by name (``C4 E4 G4:4 r``, read with
pretty_midi's note-name parser) and a primer uploaded as bytes (read with note-seq from memory,
never from a path). The Studio's caps (outputs, length, upload size) are tighter than the CLI's
because a page is shared and kept open.

Every failure is a :class:`FieldError`: the id of the control that caused it and one plain
sentence, which the page shows next to that control. Errors that only the generation plan can
find (a primer outside the model's range, a primer longer than the piece) come back from
``modeling.generate`` as one-line messages naming CLI flags; :func:`field_for_message` maps them
onto the same controls.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from note_seq.protobuf import music_pb2

from modeling import first_line
from modeling import generate as G
from modeling import primers as P
from modeling.batch import plain_number
from modeling.primers import RequestError
from modeling.scales import SCALE_NAMES, ScaleError
from modeling.scales import resolve as resolve_scale

PRIMER_TYPES = ("none", "notes", "events", "chord", "midi", "sample")
"""``sample``: a sample the Studio generated earlier, sent back by token as a MIDI primer."""
HISTOGRAM_MODES = ("off", "sliders", "key")
PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MAX_SEED = 2**31 - 1
DEFAULT_NUM_OUTPUTS = 2
DEFAULT_NOTE_STEPS = 2
"""A typed note without ``:n`` lasts two 16th steps (an eighth), as in Magenta's primer examples."""

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
    """One plain sentence: first line only, flag prefix dropped, capitalised, full stop."""
    line = first_line(text, "Something went wrong").strip()
    line = re.sub(r"^--[a-z_]+(?:/--[a-z_]+)?:\s*", "", line)
    line = _FLAG_WORDS.sub(lambda m: _flag_label(m.group(0)), line)
    line = re.sub(r"\b(Length)(?: / Length)+\b", r"\1", line)
    if re.match(r"[a-z]+\b(?![_.:/-]\w)", line):  # a word, not a name such as attention_rnn
        line = line[0].upper() + line[1:]
    return line if line.endswith((".", "!", "?")) else line + "."


_FLAG_WORDS = re.compile(r"--[a-z_]+")
_FLAG_LABELS = {
    "--num_steps": "Length",
    "--num_bars": "Length",
    "--num_seconds": "Length",
    "--primer_melody": "the primer",
    "--primer_pitches": "a chord primer",
    "--primer_midi": "a MIDI primer",
    "--backing_chords": "Backing chords",
    "--notes_per_second": "Note density",
    "--pitch_class_histogram": "the histogram",
    "--controls": "the controls",
    "--render_chords": "Play chords",
    "--key": "key",
    "--scale": "scale",
    "--temperature": "Temperature",
    "--num_outputs": "Outputs",
    "--seed": "Seed",
    "--steps_per_chord": "Steps per chord",
}


def _flag_label(flag: str) -> str:
    return _FLAG_LABELS.get(flag, flag.removeprefix("--").replace("_", " "))


# ----------------------------------------------------------------------------- limits


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


# ----------------------------------------------------------------------------- model choice


@dataclass(frozen=True)
class ModelChoice:
    """A registered model version the request runs on (pinned by :mod:`studio.catalog`)."""

    name: str
    version: int
    family: str
    density: bool = False  # performance: conditioned on notes per second
    histogram: bool = False  # performance: conditioned on a pitch-class histogram

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass
class StudioRequest:
    """A validated request: the model, the generation request and a JSON echo of the settings."""

    model: ModelChoice
    request: G.Request
    primer_type: str
    settings: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- small parsers


def _text(form: Mapping[str, str], name: str, limits: Limits) -> str:
    value = form.get(name)
    text = "" if value is None else str(value).strip()
    if len(text) > limits.max_text:
        raise FieldError(
            name,
            f"{LABELS.get(name, name)} is {len(text)} characters long; the "
            f"limit is {limits.max_text}",
        )
    return text


def _int(
    form: Mapping[str, str], name: str, default: int | None, lo: int, hi: int, limits: Limits
) -> int | None:
    text = _text(form, name, limits)
    if not text:
        return default
    if not re.fullmatch(r"[+-]?\d+", text):
        raise FieldError(name, f"{LABELS[name]} must be a whole number, got {text!r}")
    value = int(text)
    if not lo <= value <= hi:
        raise FieldError(name, f"{LABELS[name]} must be between {lo} and {hi}, got {value}")
    return value


def _float(
    form: Mapping[str, str],
    name: str,
    default: float | None,
    lo: float,
    hi: float,
    limits: Limits,
    *,
    lo_open: bool = False,
) -> float | None:
    text = _text(form, name, limits)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise FieldError(name, f"{LABELS[name]} must be a number, got {text!r}") from None
    if not math.isfinite(value) or value > hi or value < lo or (lo_open and value <= lo):
        low = f"above {plain_number(lo)}" if lo_open else f"at least {plain_number(lo)}"
        raise FieldError(
            name, f"{LABELS[name]} must be {low} and at most {plain_number(hi)}, got {text}"
        )
    return value


def _flag(form: Mapping[str, str], name: str) -> bool:
    """An HTML checkbox: present with a true-ish value when ticked, absent otherwise."""
    return str(form.get(name, "")).strip().lower() in ("on", "true", "1", "yes")


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


# ----------------------------------------------------------------------------- the form


def _primer(
    form: Mapping[str, str],
    upload: bytes | None,
    choice: ModelChoice,
    req: G.Request,
    limits: Limits,
) -> tuple[str, dict[str, Any]]:
    kind = _text(form, "primer_type", limits) or "none"
    if kind not in PRIMER_TYPES:
        raise FieldError(
            "primer_type", f"Unknown primer type {kind!r}; choose one of {', '.join(PRIMER_TYPES)}"
        )
    text = _text(form, "primer_text", limits)
    max_steps = int(limits.max_bars * G.STEPS_PER_BAR)
    if kind in ("midi", "sample"):
        if upload is None:
            if kind == "sample":
                raise FieldError(
                    "primer_type", "That sample is gone; generate again or pick another primer"
                )
            raise FieldError("primer_midi", "Choose a MIDI file to upload, or pick another primer")
        ns = read_midi_upload(upload, limits)
        req.primer_midi = ns
        info = {"primer_notes": len(ns.notes), "primer_seconds": round(ns.total_time, 3)}
        if kind == "sample":
            info["primer_sample"] = _text(form, "primer_sample_name", limits)
        return kind, info
    if kind == "none":
        return kind, {}
    if not text:
        raise FieldError("primer_text", "Type a primer, or set the primer to none")
    try:
        if kind == "notes":
            req.primer_melody = parse_notes(text, max_steps)
        elif kind == "events":
            events = parse_events(text)
            if len(events) > max_steps:
                raise ValueError(f"the event list has {len(events)} steps; the cap is {max_steps}")
            req.primer_melody = events
        else:  # chord
            if choice.family in ("melody", "improv"):
                raise FieldError(
                    "primer_type",
                    f"A chord primer needs a polyphony or performance "
                    f"model; a {choice.family} model takes notes, an "
                    "event list or a MIDI file",
                )
            req.primer_pitches = parse_chord(text)
    except (RequestError, ValueError) as exc:
        if isinstance(exc, FieldError):
            raise
        raise FieldError("primer_text", str(exc)) from None
    return kind, {"primer_text": text}


def _length(
    form: Mapping[str, str], choice: ModelChoice, req: G.Request, limits: Limits
) -> dict[str, Any]:
    if choice.family == "performance":
        seconds = _float(form, "length", None, 0.0, limits.max_seconds, limits, lo_open=True)
        req.num_seconds = seconds
        return {"length_seconds": seconds}
    bars = _float(form, "length", None, 0.0, limits.max_bars, limits, lo_open=True)
    if bars is not None and round(bars * G.STEPS_PER_BAR) < 1:
        raise FieldError(
            "length", f"Length {plain_number(bars)} bars is shorter than one 16th step"
        )
    req.num_bars = bars
    return {"length_bars": bars}


def _improv(form: Mapping[str, str], req: G.Request, limits: Limits) -> dict[str, Any]:
    chords = _text(form, "chords", limits) or G.DEFAULT_BACKING_CHORDS
    steps = _int(form, "steps_per_chord", 16, 1, limits.max_steps_per_chord, limits)
    assert steps is not None
    n = len(chords.split())
    if n > limits.max_chords:
        raise FieldError("chords", f"{n} chords is more than the Studio's {limits.max_chords}")
    try:
        P.parse_backing_chords(chords, steps)
    except RequestError as exc:
        raise FieldError("chords", str(exc)) from None
    if req.num_bars is None and n * steps > limits.max_bars * G.STEPS_PER_BAR:
        raise FieldError(
            "chords",
            f"{n} chords x {steps} steps is {n * steps} 16th steps; the "
            f"cap is {int(limits.max_bars * G.STEPS_PER_BAR)} (or set "
            "Length to cut the progression)",
        )
    req.backing_chords, req.steps_per_chord = chords, steps
    req.render_chords = _flag(form, "render_chords")
    return {"chords": chords, "steps_per_chord": steps, "render_chords": req.render_chords}


def _performance(
    form: Mapping[str, str],
    histogram: Sequence[str],
    choice: ModelChoice,
    req: G.Request,
    limits: Limits,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if choice.density:
        text = _text(form, "density", limits)
        if text:
            try:
                density = P.parse_density(text)
            except RequestError as exc:
                raise FieldError("density", str(exc)) from None
            values = density if isinstance(density, list) else [density]
            if len(values) > limits.max_control_values:
                raise FieldError(
                    "density", f"{len(values)} densities is more than {limits.max_control_values}"
                )
            if max(values) > limits.max_density:
                raise FieldError(
                    "density",
                    f"Note density {plain_number(max(values))} is above "
                    f"{plain_number(limits.max_density)} notes per second",
                )
            req.notes_per_second = density
            out["notes_per_second"] = density
    if choice.histogram:
        mode = _text(form, "histogram_mode", limits) or "off"
        if mode not in HISTOGRAM_MODES:
            raise FieldError("histogram", f"Unknown histogram mode {mode!r}")
        if mode == "sliders":
            req.pitch_class_histogram = slider_histogram(histogram, limits)
        elif mode == "key":
            req.pitch_class_histogram = key_histogram(_text(form, "histogram_key", limits))
        if req.pitch_class_histogram is not None:
            out["pitch_class_histogram"] = req.pitch_class_histogram
    return out


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
        raise FieldError("histogram", str(exc)) from None
    assert scale is not None
    return [1.0 if pc in scale.pitch_classes else 0.0 for pc in range(12)]


def parse_form(
    form: Mapping[str, str],
    choice: ModelChoice,
    *,
    histogram: Sequence[str] = (),
    upload: bytes | None = None,
    limits: Limits | None = None,
) -> StudioRequest:
    """Validate the page's form for ``choice``; :class:`FieldError` on the first problem.

    Controls that do not apply to the model's family are ignored (the page hides them, but
    their values are still posted). A blank seed draws a random one, returned in ``settings``
    so the batch can be reproduced.
    """
    limits = limits or Limits()
    num_outputs = _int(form, "num_outputs", DEFAULT_NUM_OUTPUTS, 1, limits.max_outputs, limits)
    temperature = _float(
        form, "temperature", 1.0, limits.min_temperature, limits.max_temperature, limits
    )
    seed = _int(form, "seed", None, 0, MAX_SEED, limits)
    if seed is None:
        seed = secrets.randbelow(MAX_SEED + 1)
    assert num_outputs is not None and temperature is not None
    req = G.Request(num_outputs=num_outputs, temperature=temperature, seed=seed, threads=1)
    settings: dict[str, Any] = {
        "model": choice.uri,
        "family": choice.family,
        "num_outputs": num_outputs,
        "temperature": temperature,
        "seed": seed,
    }
    settings.update(_length(form, choice, req, limits))
    primer_type, primer_info = _primer(form, upload, choice, req, limits)
    settings.update(primer_type=primer_type, **primer_info)
    key = _text(form, "key", limits)
    scale = _text(form, "scale", limits)
    if scale and scale not in SCALE_NAMES and len(scale) > 80:
        raise FieldError("key", "The scale is too long")
    try:
        req.scale = resolve_scale(key or None, scale or None)
    except ScaleError as exc:
        raise FieldError("key", str(exc)) from None
    if req.scale is not None:
        settings["scale"] = req.scale.describe()
    if choice.family == "improv":
        settings.update(_improv(form, req, limits))
    elif choice.family == "polyphony":
        req.condition_on_primer = _flag(form, "condition_on_primer")
        req.inject_primer_during_generation = _flag(form, "inject_primer")
        settings.update(
            condition_on_primer=req.condition_on_primer,
            inject_primer_during_generation=req.inject_primer_during_generation,
        )
    elif choice.family == "performance":
        settings.update(_performance(form, histogram, choice, req, limits))
    try:
        req.check()
        req.step_length(choice.family, G.DEFAULT_NUM_STEPS.get(choice.family, 128))
    except RequestError as exc:
        raise field_error(str(exc), primer_type) from None
    return StudioRequest(model=choice, request=req, primer_type=primer_type, settings=settings)


# ----------------------------------------------------------------------------- engine errors


_MESSAGE_FIELDS: tuple[tuple[str, str], ...] = (
    (r"^--primer_midi|MIDI primer", "primer_midi"),
    (r"^--primer_pitches", "primer_type"),
    (r"^--primer_melody|^primer:|^give one primer", "primer"),
    (r"chord grid|^--backing_chords|^--steps_per_chord", "chords"),
    (r"^--render_chords", "render_chords"),
    (r"^--notes_per_second|notes_per_second", "density"),
    (r"^--pitch_class_histogram|pitch_class_histogram|^--controls", "histogram"),
    (r"^--key|^--scale", "key"),
    (r"^--temperature", "temperature"),
    (r"^--num_outputs|rows exceeds", "num_outputs"),
    (r"^--seed", "seed"),
    (r"^the primer (is|lasts)|requested length|^--num_(steps|bars|seconds)|^give one of", "length"),
    (r"not in the registry|models:/|checkpoint|no MLflow store|registry", "model"),
)


def field_for_message(message: str, primer_type: str = "none") -> str:
    """The form control a one-line ``modeling.generate`` error is about ("form" if none)."""
    for pattern, name in _MESSAGE_FIELDS:
        if re.search(pattern, message):
            if name == "primer":
                return "primer_midi" if primer_type == "midi" else "primer_text"
            return name
    return "form"


def field_error(message: str, primer_type: str = "none") -> FieldError:
    """A :class:`FieldError` for a ``modeling.generate`` / registry message.

    For typed notes the engine's event number is dropped: it counts 16th steps, not the notes
    the user typed, and the message already names the note.
    """
    if primer_type == "notes":
        message = re.sub(r" \(MIDI \d+, event \d+\)", "", message)
    field = field_for_message(message, primer_type)
    if field == "primer_midi" and primer_type == "sample":
        field = "primer_type"
    return FieldError(field, message)
