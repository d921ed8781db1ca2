"""Training hooks of the ``Family`` protocol (batch padding, loss per 16th-note step, the
default event label).

Loaded on first use through the package (``__getattr__``), never by a Beam worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modeling.families.base import hook_exports, lazy_import
from modeling.families.melody.extract import NO_EVENT_INDEX, NOTE_OFF_INDEX

if TYPE_CHECKING:
    import torch
else:
    torch = lazy_import("torch", globals())


NEUTRAL_PAD = NO_EVENT_INDEX  # batch padding (masked): "no event" holds no note and no lookback
STEP_UNIT = "16th-note step"  # one stored event per 16th-note step


def event_units(events: torch.Tensor) -> torch.Tensor:
    """Every event is one 16th-note step, so loss per step is loss per event."""
    return torch.ones_like(events, dtype=torch.float64)


def default_event_label(encoding: Any) -> int:
    """The class meaning "no event" (note-seq's ``default_event_label``) after note-offs."""
    from modeling.families.base import label_decoding_to

    return label_decoding_to(encoding, NO_EVENT_INDEX, history=NOTE_OFF_INDEX)


__all__ = hook_exports(globals())
