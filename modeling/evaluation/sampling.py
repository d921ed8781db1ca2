"""Sampling for evaluation: generation requests through the one engine, the uniform random
baseline at the same lengths, and how far a sample met its control request.

Every family-specific choice (sample length, chord progressions, span of the generated music,
vocabulary) is a member of the family protocol; this module only asks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modeling import musicstats as MS
from modeling.evaluation.sets import SetData, family_of, notes_of, primer_plan, progressions
from modeling.evaluation.settings import SECONDS_PER_STEP, EvalError, Settings


def vocabulary_size(family: str, event_space: str) -> int:
    """Stored-event classes: the perplexity of a uniform model over them."""
    return int(family_of(family).vocabulary_size(event_space))


def uniform_events(
    family: str, event_space: str, rng: np.random.Generator, *, steps: int = 0, seconds: float = 0.0
) -> np.ndarray:
    """One sample of a uniform random model over the stored vocabulary, at a musical length.

    Melody/improv: ``steps`` events (16th steps). Polyphony: events until ``steps`` STEP_ENDs
    (START and END are never sampled, as in generation). Performance: events until the clock
    reaches ``seconds``, the last time shift shortened to land on it (as generation's cut).
    """
    return family_of(family).uniform_events(event_space, rng, steps=steps, seconds=seconds)


@dataclass
class Generated:
    """Samples of one request group: notes (cut to the generated span), events, chords."""

    notes: list[MS.NoteArrays]
    events: list[np.ndarray]
    chords: list[np.ndarray] = field(default_factory=list)
    span: float = 0.0


def make_request(settings: Settings, seed: int, **kw: Any) -> Any:
    from modeling import generate as G

    return G.Request(
        num_outputs=kw.pop("num_outputs", settings.num_samples),
        temperature=settings.temperature,
        seed=seed,
        threads=1,
        **kw,
    )


def run_request(model: Any, req: Any) -> tuple[Any, list[Any], list[Any]]:
    from modeling import generate as G

    try:
        return G.generate(model, req)
    except G.GenerateError as exc:
        raise EvalError(f"{model.variant}: generation request refused: {exc}") from None


def generated_span(family: str, plan: Any) -> tuple[float, float]:
    """(begin, end) seconds of the generated music of a plan (the family decides whether its
    primer counts: Magenta's performance primer is a second of silence, a melody's one note is
    part of the piece)."""
    return family_of(family).generated_span(plan, SECONDS_PER_STEP)


def cut_to_span(family: str, plan: Any, samples: list[Any], seqs: list[Any]) -> Generated:
    """Cut each sample to its generated span."""
    begin, end = generated_span(family, plan)
    notes = [notes_of(family, ns).window(begin, end) for ns in seqs]
    return Generated(notes, [s.events for s in samples], span=end - begin)


def length_request(family: str, settings: Settings) -> dict[str, Any]:
    """The request field that sets a plain sample's length, from the family's setting (e.g.
    ``{"num_steps": settings.melody_steps}``)."""
    setting, request_field = family_of(family).EVAL_LENGTH
    return {request_field: getattr(settings, setting)}


def planned_span(model: Any, settings: Settings) -> float:
    """Seconds of generated music a plain request yields (its plan, no sampling)."""
    from modeling import generate as G

    try:
        plan = G.build_plan(
            model, make_request(settings, settings.seed, **length_request(model.family, settings))
        )
    except G.GenerateError as exc:
        raise EvalError(f"{model.variant}: generation request refused: {exc}") from None
    begin, end = generated_span(model.family, plan)
    return end - begin


def generate_plain(
    model: Any, settings: Settings, sd: SetData, controls: Mapping[str, Any] | None = None
) -> Generated:
    """Samples like the data: for a chord-conditioned family over the eval split's chord
    progressions, otherwise primed as the family says (melody: each eval example's first note,
    polyphony and performance: its first chord); one request per progression or primer, each
    with ``controls`` (a controlled performance's data-average request) when given."""
    family = model.family
    if family_of(family).CHORDS:
        groups = [
            ({"backing_chords": p["backing_chords"], "steps_per_chord": p["steps_per_chord"]}, n)
            for p, n in chord_plan(sd, settings)
        ]
    else:
        length = length_request(family, settings)  # a chord grid sets its own length
        groups = [({**length, **f}, n) for f, n in primer_plan(sd, family, settings.num_samples)]
    gen = Generated([], [], [], 0.0)
    for i, (fields, count) in enumerate(groups):
        request = {**fields, **(controls or {}), "num_outputs": count}
        plan, samples, seqs = run_request(
            model, make_request(settings, settings.seed + i, **request)
        )
        part = cut_to_span(family, plan, samples, seqs)
        gen.notes += part.notes
        gen.events += part.events
        if "chord_pitches" in plan.cond:
            gen.chords += [plan.cond["chord_pitches"][0, : len(e)].numpy() for e in part.events]
        gen.span = max(gen.span, part.span)
    return gen


def chord_plan(sd: SetData, settings: Settings) -> list[tuple[dict[str, Any], int]]:
    """(progression, samples over it) pairs totalling ``num_samples``: a request per progression
    generates its samples as one batch (the engine's rows), over ``improv_progressions`` of the
    eval split's progressions."""
    progs = progressions(sd, settings.improv_progressions, settings.melody_steps)
    progs = progs[: settings.improv_progressions]
    base, extra = divmod(settings.num_samples, len(progs))
    return [(p, base + (i < extra)) for i, p in enumerate(progs) if base + (i < extra) > 0]


def controls_of(model: Any) -> tuple[bool, bool]:
    """(density-conditioned, histogram-conditioned) of a model (a performance encoding's)."""
    taken = family_of(model.family).request_controls(model.encoding)
    return "notes_per_second" in taken, "pitch_class_histogram" in taken


def control_requests(
    model: Any, settings: Settings, data_request: dict[str, Any]
) -> list[dict[str, Any]]:
    """The data's average controls first, then each params request reduced to the controls
    this model takes (requests left empty or repeated are dropped)."""
    density, histogram = controls_of(model)
    out: list[dict[str, Any]] = []
    for i, raw in enumerate([data_request, *settings.performance_requests]):
        req = {
            k: v
            for k, v in raw.items()
            if (k == "notes_per_second" and density) or (k == "pitch_class_histogram" and histogram)
        }
        if req and req not in [r["controls"] for r in out]:
            out.append({"name": "data average" if i == 0 else f"request {i}", "controls": req})
    return out


def adherence(gen: Generated, controls: Mapping[str, Any], tolerance: float) -> dict[str, Any]:
    """Achieved note density / duration-weighted pitch-class histogram against a request."""
    row: dict[str, Any] = {}
    if "notes_per_second" in controls:
        want = float(controls["notes_per_second"])
        got = float(np.mean([MS.note_density(len(n), n.total_time) for n in gen.notes]))
        err = MS.relative_error(got, want)
        row.update(
            {
                "requested_density": want,
                "achieved_density": got,
                "density_rel_error": err,
                "density_within_tolerance": bool(err <= tolerance),
            }
        )
    if "pitch_class_histogram" in controls:
        want_h = np.asarray(controls["pitch_class_histogram"], np.float64)
        got_h = duration_histogram(gen.notes)
        row.update(
            {
                "requested_histogram": (want_h / want_h.sum()).tolist(),
                "achieved_histogram": got_h.tolist(),
                "histogram_distance": MS.histogram_distance(want_h, got_h),
            }
        )
    return row


# ============================================================================ per variant


def duration_histogram(notes: Sequence[MS.NoteArrays]) -> np.ndarray:
    """Pitch-class shares weighted by sounding time: Performance RNN's histogram control."""
    if not notes:
        return np.zeros(12)
    return MS.pitch_class_histogram(
        np.concatenate([n.pitch for n in notes]), np.concatenate([n.end - n.start for n in notes])
    )


def pooled_chord_tones(
    events: Sequence[np.ndarray], chords: Sequence[np.ndarray], min_note: int
) -> float:
    """Chord-tone ratio over all samples' onsets together."""
    hits = total = 0
    for ev, ch in zip(events, chords, strict=True):
        ratio, n = MS.chord_tone_ratio(ev, ch, min_note)
        if n:
            hits += ratio * n
            total += n
    return hits / total if total else float("nan")
