"""Generation hooks of the ``Family`` protocol: length units, request fields and the plan of a
request (primer, control table over the clock, the cut at the requested length).

Loaded on first use through the package (``__getattr__``), never by a Beam worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from note_seq.protobuf import music_pb2

from modeling.families.base import hook_exports, lazy_import
from modeling.families.onehot import OneHot
from modeling.families.performance.config import (
    DEFAULT_NOTE_DENSITY,
    DEFAULT_PITCH_HISTOGRAM,
    MAX_SHIFT_STEPS,
    NAME,
    STEPS_PER_SECOND,
    TIME_SHIFT,
)
from modeling.families.performance.controls import shift_steps
from modeling.families.performance.decoding import primer_events, scale_mask, to_note_sequence
from modeling.families.performance.encoding import (
    ControlledPerformance,
    HeldNotes,
    controls_of,
)
from modeling.families.performance.evaluation import velocity_bins
from modeling.generation.units import StepUnits

if TYPE_CHECKING:
    import torch
else:
    torch = lazy_import("torch", globals())


GENERATION_UNITS = StepUnits(
    label="10 ms steps",
    max_steps=60_000,  # 10 minutes
    default_steps=3000,
    per_second=STEPS_PER_SECOND,
    events_per_unit=4,
)
REQUEST_FIELDS: frozenset[str] = frozenset(
    {"primer_melody", "primer_pitches", "primer_midi", "notes_per_second", "pitch_class_histogram"}
)
GALLERY_HEADING = (
    "Piano performances",
    "Expressive playing with its own timing and, for some models, dynamics and controls.",
)


def playable_range(event_space: str) -> tuple[int, int] | None:
    """None: every MIDI pitch is stored."""
    return None


def feature_window(encoding: Any) -> int | None:
    """One-hot and control-conditioned performances read only the newest event (the controls
    come from the clock, looked up per position); the held notes the newest ``window``."""
    if isinstance(encoding, HeldNotes):
        return encoding.window
    return 1 if isinstance(encoding, (OneHot, ControlledPerformance)) else None


def generation_plan(model: Any, req: Any) -> Any:
    """Performance RNN's plan: the clock reaches the requested length (the last shift is cut to
    land on it); controls are a table over the clock, evaluated once on a ramp."""
    from modeling.families import polyphony
    from modeling.generation.errors import GenerateError
    from modeling.generation.plan import Plan

    nvb = velocity_bins(model.encoding.event_space)
    enc = controls_of(model.encoding)
    controlled = enc is not None
    if req.notes_per_second is not None and not (controlled and enc.density):
        raise GenerateError(
            "notes_per_second",
            f"{{notes_per_second}} needs a density-conditioned performance model; "
            f"{model.variant} is not",
        )
    if req.pitch_class_histogram is not None and not (controlled and enc.histogram):
        raise GenerateError(
            "pitch_class_histogram",
            f"{{pitch_class_histogram}} needs a pitch-conditioned performance model; "
            f"{model.variant} is not",
        )
    qpm = req.resolved_qpm()
    total = req.step_length(NAME)
    primer_ns, source = polyphony.primer_sequence(req, qpm)
    if primer_ns is not None:
        try:
            primer = primer_events(primer_ns, num_velocity_bins=nvb).astype(np.int64)
        except ValueError as exc:
            raise GenerateError("primer", f"primer: {exc}") from None
    else:  # Magenta: an empty primer starts with (up to) a second of silence
        silence = min(MAX_SHIFT_STEPS, total)
        primer = np.array([TIME_SHIFT + silence - 1], np.int64)
    primer_clock = int(shift_steps(torch.as_tensor(primer)[None]).sum())
    if primer_clock >= total and primer_ns is not None:
        raise GenerateError(
            req.length_field(),
            f"the primer lasts {primer_clock / 100:.2f} s but the piece only {total / 100:.2f} s; "
            "ask for more ({num_steps} / {num_seconds})",
        )

    table: dict[str, torch.Tensor] = {}
    controls: dict[str, Any] = {}
    if controlled:
        kwargs = {
            "notes_per_second": req.notes_per_second,
            "pitch_class_histogram": req.pitch_class_histogram,
        }
        # The control rule depends on the clock only, so evaluate it once on a clock ramp (one
        # 10 ms shift per event): entry c is the control after c clock steps.
        ramp = torch.full((1, total), TIME_SHIFT, dtype=torch.long)
        try:
            table = enc.control_from_request(ramp, total_steps=total, **kwargs)
        except ValueError as exc:
            given = next((k for k, v in kwargs.items() if v is not None), None)
            raise GenerateError(given, str(exc)) from None
        controls = {k: v for k, v in kwargs.items() if v is not None}
        if req.notes_per_second is None and enc.density:
            controls["notes_per_second"] = float(DEFAULT_NOTE_DENSITY)
        if req.pitch_class_histogram is None and enc.histogram:
            controls["pitch_class_histogram"] = list(DEFAULT_PITCH_HISTOGRAM)
    mask = (
        scale_mask(req.scale.pitch_classes, num_velocity_bins=nvb)
        if req.scale is not None
        else None
    )
    max_events = len(primer) + GENERATION_UNITS.events_per_unit * (total - primer_clock) + 256

    def finish(events: np.ndarray, reached: bool) -> music_pb2.NoteSequence:
        shifts = shift_steps(torch.as_tensor(events)[None])[0].numpy()
        clock = np.cumsum(shifts)
        if clock[-1] >= total:  # cut at the target, shortening the last shift (set_length)
            k = int(np.argmax(clock >= total))
            events = events[: k + 1].copy()
            over = int(clock[k] - total)
            if over:
                events[k] -= over
        else:  # hit the event cap: pad with silence up to the target
            left, pads = int(total - clock[-1]), []
            while left > 0:
                s = min(left, MAX_SHIFT_STEPS)
                pads.append(TIME_SHIFT + s - 1)
                left -= s
            events = np.concatenate([events, np.asarray(pads, np.int64)])
        ns = to_note_sequence(events, num_velocity_bins=nvb)
        ns.total_time = max(ns.total_time, total / STEPS_PER_SECOND)
        return ns

    info = {
        "primer_source": source if primer_ns is not None else "default (1 s of silence)",
        "primer_events": len(primer),
        "num_velocity_bins": nvb,
        "total_clock_steps": total,
        "controls": controls,
    }
    return Plan(
        family=NAME,
        primer=primer,
        target_units=total,
        unit_fn=shift_steps,
        max_events=max_events,
        finish=finish,
        primer_seconds=primer_clock / STEPS_PER_SECOND if primer_ns else 0.0,
        info=info,
        cond=table,
        cond_by="units",
        class_mask=mask,
        metered=False,
    )


__all__ = hook_exports(globals())
