"""Request validation for the Studio: the page's form -> a ``modeling.generate.Request``.

The form arrives as plain strings (and at most one uploaded MIDI file). Everything is checked
here, before a job is queued or a model is loaded: the common values (outputs, temperature, seed,
length, key) by the small readers below, the inputs only the page has (typed notes, an uploaded
primer, histogram sliders) by :mod:`studio.inputs`, and the rules that depend on the model's
family (which request fields it takes, the length and chord-grid caps) by generation's own
:meth:`~modeling.generation.request.Request.validate`, run with the Studio's tighter cap
(:class:`~studio.fields.Limits`).

Every failure is a :class:`~studio.fields.FieldError`: the id of the control that caused it and
one plain sentence, which the page shows next to that control. Generation's errors, and the ones
only the generation plan can find (a primer outside the model's range, a primer longer than the
piece), are :class:`~modeling.generation.request.GenerateError` s, which
:func:`~studio.fields.field_error` maps onto the controls by their ``field`` and words with the
page's labels. This module re-exports the names of :mod:`studio.fields` and :mod:`studio.inputs`
that the server, the jobs and the tests import from it.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modeling import primers as P
from modeling.families import load_family
from modeling.generation.request import DEFAULT_BACKING_CHORDS, GenerateError, Request, parser_error
from modeling.music import PITCH_CLASS_NAMES, STEPS_PER_BAR
from modeling.primers import RequestError
from modeling.scales import SCALE_NAMES, ScaleError
from modeling.scales import resolve as resolve_scale
from modeling.verdicts import plain_number
from studio.fields import (
    FIELD_CONTROLS,
    FLAG_WORDS,
    LABELS,
    FieldError,
    Limits,
    control_for,
    field_error,
    flag_words,
    sentence,
)
from studio.inputs import (
    DEFAULT_NOTE_STEPS,
    key_histogram,
    parse_chord,
    parse_events,
    parse_notes,
    read_midi_upload,
    slider_histogram,
)

__all__ = [
    "DEFAULT_NOTE_STEPS",
    "DEFAULT_NUM_OUTPUTS",
    "FIELD_CONTROLS",
    "FLAG_WORDS",
    "HISTOGRAM_MODES",
    "LABELS",
    "MAX_SEED",
    "PITCH_CLASS_NAMES",
    "PRIMER_TYPES",
    "FieldError",
    "Limits",
    "ModelChoice",
    "StudioRequest",
    "control_for",
    "field_error",
    "flag_words",
    "key_histogram",
    "max_steps",
    "parse_chord",
    "parse_events",
    "parse_form",
    "parse_notes",
    "read_midi_upload",
    "sentence",
    "slider_histogram",
]

PRIMER_TYPES = ("none", "notes", "events", "chord", "midi", "sample")
"""``sample``: a sample the Studio generated earlier, sent back by token as a MIDI primer."""
HISTOGRAM_MODES = ("off", "sliders", "key")
MAX_SEED = 2**31 - 1
DEFAULT_NUM_OUTPUTS = 2


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
    request: Request
    primer_type: str
    settings: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- form values


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


# ----------------------------------------------------------------------------- the form


def _primer(
    form: Mapping[str, str],
    upload: bytes | None,
    choice: ModelChoice,
    req: Request,
    limits: Limits,
) -> tuple[str, dict[str, Any]]:
    kind = _text(form, "primer_type", limits) or "none"
    if kind not in PRIMER_TYPES:
        raise FieldError(
            "primer_type", f"Unknown primer type {kind!r}; choose one of {', '.join(PRIMER_TYPES)}"
        )
    text = _text(form, "primer_text", limits)
    max_steps = int(limits.max_bars * STEPS_PER_BAR)
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
        else:  # chord: whether the model takes one is Request.validate's rule
            req.primer_pitches = parse_chord(text)
    except RequestError as exc:
        raise field_error(parser_error(exc, "primer"), kind) from None
    except ValueError as exc:
        raise FieldError("primer_text", str(exc)) from None
    return kind, {"primer_text": text}


def _length(
    form: Mapping[str, str], choice: ModelChoice, req: Request, limits: Limits
) -> dict[str, Any]:
    if not load_family(choice.family).GENERATION_UNITS.metered:
        seconds = _float(form, "length", None, 0.0, limits.max_seconds, limits, lo_open=True)
        req.num_seconds = seconds
        return {"length_seconds": seconds}
    bars = _float(form, "length", None, 0.0, limits.max_bars, limits, lo_open=True)
    if bars is not None and round(bars * STEPS_PER_BAR) < 1:
        raise FieldError(
            "length", f"Length {plain_number(bars)} bars is shorter than one 16th step"
        )
    req.num_bars = bars
    return {"length_bars": bars}


def _improv(form: Mapping[str, str], req: Request, limits: Limits) -> dict[str, Any]:
    chords = _text(form, "chords", limits) or DEFAULT_BACKING_CHORDS
    steps = _int(form, "steps_per_chord", 16, 1, limits.max_steps_per_chord, limits)
    assert steps is not None
    n = len(chords.split())
    if n > limits.max_chords:
        raise FieldError("chords", f"{n} chords is more than the Studio's {limits.max_chords}")
    try:
        P.parse_backing_chords(chords, steps)
    except RequestError as exc:
        raise field_error(parser_error(exc, "backing_chords")) from None
    req.backing_chords, req.steps_per_chord = chords, steps
    req.render_chords = _flag(form, "render_chords")
    return {"chords": chords, "steps_per_chord": steps, "render_chords": req.render_chords}


def _performance(
    form: Mapping[str, str],
    histogram: Sequence[str],
    choice: ModelChoice,
    req: Request,
    limits: Limits,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if choice.density:
        text = _text(form, "density", limits)
        if text:
            try:
                density = P.parse_density(text)
            except RequestError as exc:
                raise field_error(parser_error(exc, "notes_per_second")) from None
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
    req = Request(num_outputs=num_outputs, temperature=temperature, seed=seed, threads=1)
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
        raise field_error(parser_error(exc, "key")) from None
    if req.scale is not None:
        settings["scale"] = req.scale.describe()
    family = load_family(choice.family)
    takes = family.REQUEST_FIELDS  # the controls of other families are ignored
    if "backing_chords" in takes:
        settings.update(_improv(form, req, limits))
    if "condition_on_primer" in takes:
        req.condition_on_primer = _flag(form, "condition_on_primer")
        req.inject_primer_during_generation = _flag(form, "inject_primer")
        settings.update(
            condition_on_primer=req.condition_on_primer,
            inject_primer_during_generation=req.inject_primer_during_generation,
        )
    if {"notes_per_second", "pitch_class_histogram"} & takes:
        settings.update(_performance(form, histogram, choice, req, limits))
    try:
        req.validate(family, max_steps=max_steps(family, limits))
    except GenerateError as exc:
        raise field_error(exc, primer_type) from None
    return StudioRequest(model=choice, request=req, primer_type=primer_type, settings=settings)


def max_steps(family: Any, limits: Limits) -> int:
    """The Studio's length cap in the family's steps (bars for metered music, else seconds)."""
    units = family.GENERATION_UNITS
    if units.metered:
        return int(limits.max_bars * STEPS_PER_BAR)
    return int(limits.max_seconds * units.per_second)
