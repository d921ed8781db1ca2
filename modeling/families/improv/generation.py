"""Generation hooks of the ``Family`` protocol: a melody plan over a backing chord grid.

Loaded on first use through the package (``__getattr__``), never by a Beam worker.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modeling.families import melody as melody_family
from modeling.families.base import hook_exports
from modeling.families.chords import ChordColumnError, chord_columns
from modeling.families.improv.decoding import to_note_sequence
from modeling.families.improv.encoding import ChordConditioned
from modeling.families.improv.extract import NAME
from modeling.generation.units import StepUnits

GENERATION_UNITS = StepUnits(
    label=melody_family.GENERATION_UNITS.label, max_steps=melody_family.GENERATION_UNITS.max_steps
)
"""Melody steps; with no length asked for, the piece is as long as its chord grid."""
REQUEST_FIELDS: frozenset[str] = melody_family.REQUEST_FIELDS | {
    "backing_chords",
    "steps_per_chord",
    "render_chords",
}
GALLERY_HEADING = ("Melodies over chords", "A tune improvised over a given chord progression.")


def playable_range(event_space: str) -> tuple[int, int] | None:
    """The melody's stored note range (the chords beside it are rendered, not played)."""
    return melody_family.playable_range(event_space)


def feature_window(encoding: Any) -> int | None:
    """Chord conditioning adds nothing to its melody encoding's need."""
    if isinstance(encoding, ChordConditioned):
        return melody_family.feature_window(encoding.target)
    return melody_family.feature_window(encoding)


def generation_plan(model: Any, req: Any) -> Any:
    """A melody plan over the backing chords (improv_rnn_generate's default progression when none
    is given), repeated or cut to the requested length."""
    from modeling.generation.errors import GenerateError
    from modeling.generation.plan import DEFAULT_BACKING_CHORDS

    chords = req.backing_chords or DEFAULT_BACKING_CHORDS
    figures = [c for c in chords.split() for _ in range(req.steps_per_chord)]
    try:  # the request's parser named the bad symbol already; this is the model's side
        cols = chord_columns(figures)
    except ChordColumnError as exc:
        raise GenerateError("backing_chords", str(exc), topic="backing_chords") from None
    grid = len(figures)
    total = req.step_length(NAME) if req.length_given() else grid
    if total != grid:  # repeat (or cut) the progression to the requested length
        reps = np.arange(total) % grid
        cols = {k: v[reps] for k, v in cols.items()}
    space = model.encoding.event_space
    return melody_family.melody_plan(
        model,
        req,
        total=total,
        key_normalise=False,
        decode=lambda events, qpm: to_note_sequence(
            events, cols, qpm=qpm, event_space=space, render_chords=req.render_chords
        ),
        cond=cols,
        info={
            "backing_chords": chords.split(),
            "steps_per_chord": req.steps_per_chord,
            "chord_grid_steps": grid,
        },
        longer=" / a longer {backing_chords}",
    )


__all__ = hook_exports(globals())
