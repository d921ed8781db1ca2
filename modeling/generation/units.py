"""How a family counts the length of a piece: the one small record each family module exports.

A family module sets ``GENERATION_UNITS = StepUnits(...)`` (see :class:`modeling.families.base.
Family`); :meth:`modeling.generation.request.Request.step_length` turns ``--num_steps`` /
``--num_bars`` / ``--num_seconds`` into the family's steps with it, and the studio reads its
defaults from it. Dependency-free on purpose: family modules import it at import time, and Beam
workers import families without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

STEPS_PER_QUARTER = 4
"""Melody, improv and polyphony models quantise to 16th notes."""


@dataclass(frozen=True)
class StepUnits:
    """A family's length unit: metered 16th-note steps (``per_second`` None: they follow the
    tempo) or a fixed clock (``per_second`` steps a second, e.g. performance's 10 ms steps)."""

    label: str
    """How messages name the steps, e.g. ``"16th-note steps"``."""
    max_steps: int
    """Cap on a requested length, in these steps."""
    default_steps: int | None = None
    """Length when none is asked for (None: the family derives it, e.g. improv's chord grid)."""
    per_second: int | None = None
    events_per_unit: int | None = None
    """Variable-length families stop at a musical length; a row that has not reached it after this
    many events per remaining unit (+ 256) is padded with silence (and flagged in the JSON)."""

    @property
    def metered(self) -> bool:
        """True when the length follows the tempo (bars), False for a fixed clock (seconds)."""
        return self.per_second is None
