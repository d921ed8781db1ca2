"""Generation hooks of the ``Family`` protocol: length units, request fields, primers and the
plan of a request (:func:`melody_plan`, which the improv family reuses with chords).

Loaded on first use through the package (``__getattr__``), never by a Beam worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from note_seq import melodies_lib
from note_seq.protobuf import music_pb2

from modeling.families.base import hook_exports, lazy_import
from modeling.families.melody.decoding import to_note_sequence
from modeling.families.melody.encoding import class_pitches
from modeling.families.melody.extract import (
    NAME,
    NUM_SPECIAL,
    MelodyExtractConfig,
    event_space,
    melody_events_to_indices,
    parse_event_space,
)
from modeling.families.onehot import OneHot
from modeling.generation.units import StepUnits

if TYPE_CHECKING:
    import torch
else:
    torch = lazy_import("torch", globals())


GENERATION_UNITS = StepUnits(label="16th-note steps", max_steps=4096, default_steps=128)
REQUEST_FIELDS: frozenset[str] = frozenset({"primer_melody", "primer_midi"})
GALLERY_HEADING = ("Melodies", "One line at a time, continued from a short primer.")


def playable_range(event_space: str) -> tuple[int, int] | None:
    """The stored note range of a ``melody:<min>-<max>`` space (``max`` is exclusive)."""
    lo, hi = parse_event_space(event_space)
    return lo, hi - 1


def feature_window(encoding: Any) -> int | None:
    """One-hot melodies read only the newest event; key / lookback features scan the history."""
    return 1 if isinstance(encoding, OneHot) else None


def primer_values(req: Any) -> tuple[list[int], str]:
    """Magenta melody events of the primer and where they came from (default: middle C)."""
    from modeling.generation.errors import GenerateError
    from modeling.generation.plan import quantized

    if req.primer_melody is not None:
        return list(req.primer_melody), "primer_melody"
    if req.primer_midi is not None:
        ns = music_pb2.NoteSequence()
        ns.CopyFrom(req.primer_midi)
        for n in ns.notes:  # one voice: the highest note of all pitched tracks
            n.instrument, n.program = 0, 0
        qns = quantized(ns, "primer_midi")
        mel = melodies_lib.Melody()
        try:
            mel.from_quantized_sequence(
                qns,
                search_start_step=0,
                instrument=0,
                gap_bars=float("inf"),
                ignore_polyphonic_notes=True,
            )
        except Exception as exc:
            raise GenerateError(
                "primer_midi", f"no melody could be extracted ({exc})", topic="primer_midi"
            ) from None
        if len(mel) == 0:
            raise GenerateError("primer_midi", "no melody could be extracted", topic="primer_midi")
        mel.set_length(max(len(mel), int(qns.total_quantized_steps) - mel.start_step))
        return list(mel), "primer_midi"
    return [60], "default (middle C, as Magenta)"


def melody_plan(
    model: Any,
    req: Any,
    *,
    total: int,
    key_normalise: bool,
    decode: Any,
    cond: Mapping[str, np.ndarray] | None = None,
    info: Mapping[str, Any] | None = None,
    longer: str = "",
) -> Any:
    """The plan of a melody-event model (melody, improv): primer, optional key normalisation,
    scale mask, per-step conditioning ``cond`` and ``decode(events, qpm)`` back to notes.

    ``total`` is the piece's length in 16th steps; ``longer`` names what else lengthens it in
    the "primer too long" message (improv: a longer chord progression)."""
    from modeling.generation.errors import GenerateError
    from modeling.generation.plan import Plan, key_transposition, pitch_name, seconds_per_step

    enc = model.encoding
    lo, hi = parse_event_space(enc.event_space)
    values, source = primer_values(req)
    flag = source if source == "primer_midi" else "primer_melody"
    for i, v in enumerate(values):  # in note names and 1-based, as a musician counts
        if v >= 0 and not lo <= v < hi:
            raise GenerateError(
                flag,
                f"note {pitch_name(v)} (MIDI {v}, event {i + 1}) is outside this model's "
                f"range, {pitch_name(lo)} to {pitch_name(hi - 1)}",
                topic=flag,
            )
    try:
        melody_events_to_indices(values, lo, hi)  # range check on the user's primer
    except ValueError as exc:
        raise GenerateError(flag, str(exc), topic=flag) from None
    shift = key_transposition(values, lo, hi) if key_normalise else 0
    model_values = [v + shift if v >= 0 else v for v in values]
    primer = melody_events_to_indices(model_values, lo, hi).astype(np.int64)
    qpm = req.resolved_qpm()
    if len(primer) >= total:
        raise GenerateError(
            req.length_field(),
            f"the primer is {len(primer)} steps but the piece is only {total} steps; ask for "
            f"more ({{num_steps}} / {{num_bars}}{longer})",
        )
    pitches = class_pitches(enc)
    mask = None
    dynamic: tuple[int, ...] = ()
    allowed_event = None
    details: dict[str, Any] = {
        "primer_source": source,
        "primer_events": values,
        "key_transposition": shift,
        **(info or {}),
    }
    if req.scale is not None:
        model_scale = req.scale.transposed(shift)
        ok_pc = torch.zeros(12, dtype=torch.bool)
        ok_pc[list(model_scale.pitch_classes)] = True
        cp = torch.as_tensor(pitches)
        mask = (cp < 0) | ok_pc[cp.clamp(min=0) % 12]
        dynamic = tuple(int(c) for c in np.flatnonzero(pitches < 0))

        def allowed_event(ev: torch.Tensor) -> torch.Tensor:
            pitch = ev - NUM_SPECIAL + lo
            return (ev < NUM_SPECIAL) | ok_pc[pitch.clamp(min=0) % 12]

        details["model_scale_pitch_classes"] = list(model_scale.pitch_classes)

    def finish(events: np.ndarray, reached: bool) -> music_pb2.NoteSequence:
        ns = decode(events, qpm)
        for n in ns.notes:
            if n.instrument == 0:  # the melody (rendered chords are instrument 1)
                n.pitch -= shift
        ns.total_time = max(ns.total_time, len(events) * seconds_per_step(qpm))
        return ns

    return Plan(
        family=model.family,
        primer=primer,
        target_units=total,
        unit_fn=lambda e: torch.ones_like(e),
        max_events=total,
        finish=finish,
        primer_seconds=len(primer) * seconds_per_step(qpm),
        info=details,
        cond={k: torch.as_tensor(v.astype(np.int64))[None] for k, v in (cond or {}).items()},
        class_mask=mask,
        dynamic_classes=dynamic,
        event_allowed=allowed_event,
        fixed_length=True,
    )


def generation_plan(model: Any, req: Any) -> Any:
    """A melody model's plan; the default 48-84 space is key-normalised towards C, as Magenta's
    melody generator does."""
    space = model.encoding.event_space
    return melody_plan(
        model,
        req,
        total=req.step_length(NAME),
        key_normalise=space == event_space(MelodyExtractConfig()),
        decode=lambda events, qpm: to_note_sequence(events, qpm=qpm, event_space=space),
    )


__all__ = hook_exports(globals(), "melody_plan", "primer_values")
