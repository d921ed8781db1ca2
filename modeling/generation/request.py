"""A generation request, its structured errors and every rule that checks it, each written once.

:class:`Request` holds flag values after parsing (``modeling.generation.cli`` builds one from the
command line, ``studio.validation`` from the page's form, ``modeling.pyfunc_model`` from a table
row). :meth:`Request.check` holds the rules that need no model; :meth:`Request.validate` adds the
rules that depend on the model's family: which family-specific fields it accepts (the family
module's ``REQUEST_FIELDS``), the length cap (its ``GENERATION_UNITS``) and the chord-grid cap.
The family's plan (``generation_plan``) then only finds what needs the model itself (a primer
outside its range, a primer longer than the piece).

Every problem is a :class:`GenerateError`: the request field it is about (``None`` for the whole
request) and a message whose flag mentions are ``{name}`` placeholders. The CLI spells them
``--name``; the studio spells them with its form labels and highlights the control of ``field``,
so rewording a message never breaks either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType

from note_seq.protobuf import music_pb2

from modeling.music import DEFAULT_QPM, STEPS_PER_BAR
from modeling.scales import Scale

from .errors import LENGTH_FIELDS, PRIMER_FIELDS, GenerateError, parser_error
from .plan import DEFAULT_BACKING_CHORDS
from .units import STEPS_PER_QUARTER

__all__ = ["DEFAULT_BACKING_CHORDS", "GenerateError", "Request", "parser_error"]

MAX_OUTPUTS = 1000
MAX_BATCH_ROWS = 4096  # num_outputs x beam_size x branch_factor


def _families_with(field: str) -> list[str]:
    """Names of the families whose requests accept ``field`` (for messages)."""
    from modeling.families import FAMILY_MODULES, load_family

    return [n for n in FAMILY_MODULES if field in load_family(n).REQUEST_FIELDS]


def _either(names: list[str]) -> str:
    """``["improv"]`` -> ``an improv``, ``["polyphony", "performance"]`` -> ``a polyphony or
    performance``."""
    text = " or ".join(names)
    return ("an " if text[:1] in "aeiou" else "a ") + text


@dataclass
class Request:
    """A parsed generation request (flag values after parsing, before any model exists)."""

    num_outputs: int = 10
    num_steps: int | None = None
    num_bars: float | None = None
    num_seconds: float | None = None
    primer_melody: list[int] | None = None
    primer_pitches: list[int] | None = None
    primer_midi: music_pb2.NoteSequence | None = None
    primer_midi_path: str | None = None
    condition_on_primer: bool = False
    inject_primer_during_generation: bool = True
    backing_chords: str | None = None
    steps_per_chord: int = 16
    render_chords: bool = False
    notes_per_second: float | list[float] | None = None
    pitch_class_histogram: list[float] | list[list[float]] | None = None
    temperature: float = 1.0
    beam_size: int = 1
    branch_factor: int = 1
    steps_per_iteration: int = 1
    threads: int | None = 1
    scale: Scale | None = None
    qpm: float | None = None
    seed: int = 0

    def check(self) -> None:
        """The rules that need no model (one line each)."""
        if not 1 <= self.num_outputs <= MAX_OUTPUTS:
            raise GenerateError(
                "num_outputs", f"{{num_outputs}} must be 1..{MAX_OUTPUTS}, got {self.num_outputs}"
            )
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise GenerateError(
                "temperature", f"{{temperature}} must be > 0, got {self.temperature}"
            )
        for name in ("beam_size", "branch_factor", "steps_per_iteration"):
            if getattr(self, name) < 1:
                raise GenerateError(name, f"{{{name}}} must be >= 1, got {getattr(self, name)}")
        rows = self.num_outputs * self.beam_size * self.branch_factor
        if self.threads is not None and self.threads < 0:
            raise GenerateError("threads", f"{{threads}} must be >= 0, got {self.threads}")
        if rows > MAX_BATCH_ROWS:
            raise GenerateError(
                "num_outputs",
                f"num_outputs x beam_size x branch_factor = {rows} rows exceeds {MAX_BATCH_ROWS}",
            )
        given = [n for n in LENGTH_FIELDS if getattr(self, n) is not None]
        if len(given) > 1:
            raise GenerateError(
                given[-1],
                "give one of {num_steps}, {num_bars}, {num_seconds} (got "
                + ", ".join("{" + g + "}" for g in given)
                + ")",
            )
        for name in given:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise GenerateError(name, f"{{{name}}} must be > 0, got {value}")
        primers = [n for n in PRIMER_FIELDS if getattr(self, n) is not None]
        if len(primers) > 1:
            raise GenerateError(
                "primer", "give one primer flag, not " + ", ".join("{" + n + "}" for n in primers)
            )
        if self.qpm is not None and not (math.isfinite(self.qpm) and 1 <= self.qpm <= 1000):
            raise GenerateError("qpm", f"{{qpm}} must be 1..1000, got {self.qpm}")

    def validate(self, family: str | ModuleType, *, max_steps: int | None = None) -> None:
        """:meth:`check` plus every rule that depends on the family (its ``REQUEST_FIELDS`` and
        ``GENERATION_UNITS``); ``max_steps`` tightens the family's length cap (the studio's)."""
        from modeling.families import load_family

        fam = load_family(family) if isinstance(family, str) else family
        self.check()
        accepted = fam.REQUEST_FIELDS
        controls = [n for n in ("notes_per_second", "pitch_class_histogram") if self._given(n)]
        if controls and controls[0] not in accepted:
            raise GenerateError(
                controls[0],
                "{notes_per_second} / {pitch_class_histogram} / {controls} need a conditioned "
                f"{' or '.join(_families_with(controls[0]))} model",
            )
        for name in ("render_chords", "primer_pitches", "backing_chords"):
            if self._given(name) and name not in accepted:
                takes = ""
                if name in PRIMER_FIELDS:
                    others = " or ".join(f"{{{p}}}" for p in PRIMER_FIELDS if p in accepted)
                    takes = f"; {_either([fam.NAME])} model takes {others}"
                raise GenerateError(
                    name, f"{{{name}}} needs {_either(_families_with(name))} model{takes}"
                )
        units = fam.GENERATION_UNITS
        cap = min(units.max_steps, max_steps or units.max_steps)
        if self.length_given() or units.default_steps is not None:
            self.step_length(fam, max_steps=cap)
        elif "backing_chords" in accepted:
            n = len((self.backing_chords or DEFAULT_BACKING_CHORDS).split())
            grid = n * self.steps_per_chord
            if grid > cap:
                raise GenerateError(
                    "backing_chords",
                    f"{n} chords x {self.steps_per_chord} steps is {grid} {units.label}; the cap "
                    f"is {cap} (or set {{num_steps}} / {{num_bars}} to cut the progression)",
                )

    def _given(self, name: str) -> bool:
        value = getattr(self, name)
        return value is not None and value is not False

    def length_field(self) -> str:
        """The length flag the request gives (``num_steps`` when it gives none)."""
        return next((f for f in LENGTH_FIELDS if getattr(self, f) is not None), "num_steps")

    def length_given(self) -> bool:
        """Whether the request asks for a length (else the family's default applies)."""
        return any(getattr(self, n) is not None for n in LENGTH_FIELDS)

    def resolved_qpm(self) -> float:
        """Magenta: a MIDI primer's own tempo wins over --qpm; default 120."""
        if (
            self.primer_midi is not None
            and self.primer_midi.tempos
            and self.primer_midi.tempos[0].qpm > 0
        ):
            return round(float(self.primer_midi.tempos[0].qpm), 6)  # MIDI stores microseconds
        return float(self.qpm or DEFAULT_QPM)

    def step_length(
        self,
        family: str | ModuleType,
        default: int | None = None,
        *,
        max_steps: int | None = None,
    ) -> int:
        """Total length in the family's steps (16ths; 10 ms steps for performance), capped.

        ``default`` (else the family's ``default_steps``) applies when no length is asked for.
        """
        from modeling.families import load_family

        fam = load_family(family) if isinstance(family, str) else family
        units = fam.GENERATION_UNITS
        qpm = self.resolved_qpm()
        if self.num_steps is not None:
            n = self.num_steps
        elif not units.metered and self.num_seconds is not None:
            n = round(self.num_seconds * units.per_second)
        elif not units.metered and self.num_bars is not None:
            n = round(self.num_bars * 4 * 60.0 / qpm * units.per_second)
        elif self.num_bars is not None:
            n = round(self.num_bars * STEPS_PER_BAR)
        elif self.num_seconds is not None:
            n = round(self.num_seconds * qpm / 60.0 * STEPS_PER_QUARTER)
        else:
            n = units.default_steps if default is None else default
        cap = max_steps or units.max_steps
        field = self.length_field()
        if n > cap:
            raise GenerateError(
                field,
                f"requested length {n} {units.label} exceeds the cap of {cap} for {fam.NAME} "
                "models",
            )
        if n < 1:
            raise GenerateError(field, f"requested length {n} {units.label} is < 1")
        return int(n)
