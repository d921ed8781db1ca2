"""Generation hooks of the ``Family`` protocol: length units, request fields, the primer of a
request (shared with the performance family) and the plan.

Loaded on first use through the package (``__getattr__``), never by a Beam worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from note_seq.protobuf import music_pb2

from modeling.families.base import hook_exports, lazy_import
from modeling.families.onehot import OneHot
from modeling.families.polyphony.decoding import to_note_sequence
from modeling.families.polyphony.encoding import StepContext
from modeling.families.polyphony.extract import END, NAME, NUM_CLASSES, START, STEP_END
from modeling.families.polyphony.primers import (
    prepare_primer,
    primer_from_melody,
    primer_from_pitches,
    scale_mask,
)
from modeling.generation.units import StepUnits

if TYPE_CHECKING:
    import torch
else:
    torch = lazy_import("torch", globals())


GENERATION_UNITS = StepUnits(
    label="16th-note steps", max_steps=4096, default_steps=128, events_per_unit=24
)
REQUEST_FIELDS: frozenset[str] = frozenset(
    {
        "primer_melody",
        "primer_pitches",
        "primer_midi",
        "condition_on_primer",
        "inject_primer_during_generation",
    }
)
GALLERY_HEADING = ("Polyphony", "Several voices at once, in the style of Bach chorales.")


def playable_range(event_space: str) -> tuple[int, int] | None:
    """None: every MIDI pitch is stored."""
    return None


def feature_window(encoding: Any) -> int | None:
    """The one-hot encoding reads only the newest event, the step context the newest
    ``window``."""
    if isinstance(encoding, StepContext):
        return encoding.window
    return 1 if isinstance(encoding, OneHot) else None


def primer_sequence(req: Any, qpm: float) -> tuple[music_pb2.NoteSequence | None, str]:
    """The request's primer as one pitched voice (a NoteSequence) and where it came from; None
    without one. Polyphony and performance both read their primers this way."""
    from modeling.generation.errors import GenerateError

    try:
        if req.primer_melody is not None:
            return primer_from_melody(req.primer_melody, qpm), "primer_melody"
        if req.primer_pitches is not None:
            return primer_from_pitches(req.primer_pitches, qpm), "primer_pitches"
    except ValueError as exc:
        raise GenerateError("primer", str(exc)) from None
    if req.primer_midi is not None:
        ns = music_pb2.NoteSequence()
        ns.CopyFrom(req.primer_midi)
        pitched = [n for n in ns.notes if not n.is_drum]
        del ns.notes[:]
        ns.notes.extend(pitched)
        for n in ns.notes:  # both families refuse several programs; play it as one voice
            n.program = 0
        return ns, "primer_midi"
    return None, "none"


def generation_plan(model: Any, req: Any) -> Any:
    """Polyphony RNN's plan: the primer conditions the model and/or is injected step by step;
    the piece ends after the requested number of STEP_ENDs (START/END are never sampled)."""
    from modeling.generation.errors import GenerateError
    from modeling.generation.plan import Plan, seconds_per_step
    from modeling.generation.units import STEPS_PER_QUARTER

    qpm = req.resolved_qpm()
    sps = seconds_per_step(qpm)
    primer_ns, source = primer_sequence(req, qpm)
    try:
        pp = prepare_primer(
            primer_ns,
            condition_on_primer=req.condition_on_primer,
            inject_primer_during_generation=req.inject_primer_during_generation,
            steps_per_quarter=STEPS_PER_QUARTER,
        )
    except ValueError as exc:
        raise GenerateError("primer", f"primer: {exc}") from None
    total = req.step_length(NAME)
    if pp.primer_steps >= total:
        raise GenerateError(
            req.length_field(),
            f"the primer is {pp.primer_steps} steps but the piece is only {total} steps; ask for "
            "more ({num_steps} / {num_bars})",
        )
    conditioned = req.condition_on_primer and primer_ns is not None
    target = total if conditioned else total - pp.primer_steps
    primer = np.asarray(pp.events, np.int64)
    ok = torch.ones(NUM_CLASSES, dtype=torch.bool)
    if req.scale is not None:
        ok = scale_mask(req.scale.pitch_classes).clone()
    ok[START] = False  # the length comes from --num_steps; START/END are never sampled
    ok[END] = False
    per_unit = GENERATION_UNITS.events_per_unit
    injected = sum(len(s) for s in pp.inject_steps)
    max_events = len(primer) + per_unit * (target - pp.primer_steps * conditioned) + injected + 256

    def finish(events: np.ndarray, reached: bool) -> music_pb2.NoteSequence:
        ends = np.flatnonzero(events == STEP_END)
        if len(ends) >= target:
            events = events[: ends[target - 1] + 1]
        else:  # hit the event cap: pad with empty steps (Magenta's set_length)
            events = np.concatenate([events, np.full(target - len(ends), STEP_END)])
        events = np.concatenate([events, [END]])
        ns = to_note_sequence(events, qpm=qpm, steps_per_quarter=STEPS_PER_QUARTER)
        if not conditioned and primer_ns is not None:
            offset = pp.primer_steps * sps  # generated music follows the primer
            for n in ns.notes:
                n.start_time += offset
                n.end_time += offset
            for n in primer_ns.notes:
                ns.notes.add().CopyFrom(n)
            ns.notes.sort(key=lambda n: (n.start_time, -n.pitch))
        ns.total_time = total * sps
        return ns

    info = {
        "primer_source": source,
        "primer_steps": pp.primer_steps,
        "condition_on_primer": conditioned,
        "inject_primer_during_generation": bool(pp.inject_steps),
    }
    return Plan(
        family=NAME,
        primer=primer,
        target_units=target,
        unit_fn=lambda e: (e == STEP_END).long(),
        max_events=max_events,
        finish=finish,
        primer_seconds=pp.primer_steps * sps if primer_ns else 0.0,
        info=info,
        class_mask=ok,
        injector=pp.to_inject if pp.inject_steps else None,
    )


__all__ = hook_exports(globals(), "primer_sequence")
