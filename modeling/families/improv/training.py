"""Training hooks of the ``Family`` protocol: the melody family's (events are melody events).

Loaded on first use through the package (``__getattr__``), never by a Beam worker.
"""

from __future__ import annotations

from modeling.families import melody as melody_family
from modeling.families.base import hook_exports

# An improv example's events are melody events (its chords are stored beside them), so training
# pads, weighs and splits accuracies exactly as the melody family does.
NEUTRAL_PAD = melody_family.NEUTRAL_PAD
STEP_UNIT = melody_family.STEP_UNIT
event_units = melody_family.event_units
default_event_label = melody_family.default_event_label


__all__ = hook_exports(globals())
