"""Training hooks of the ``Family`` protocol (loss per STEP_END step, the default event label).

Loaded on first use through the package (``__getattr__``), never by a Beam worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modeling.families.base import hook_exports, lazy_import
from modeling.families.polyphony.extract import START, STEP_END

if TYPE_CHECKING:
    import torch
else:
    torch = lazy_import("torch", globals())


NEUTRAL_PAD = START  # batch padding (masked out of the loss; the encoding is plain one-hot)
STEP_UNIT = "STEP_END step"  # a 16th-note step ends at each STEP_END


def event_units(events: torch.Tensor) -> torch.Tensor:
    """1 for each STEP_END (a step of music ends there), 0 for every other event."""
    return (events == STEP_END).to(torch.float64)


def default_event_label(encoding: Any) -> int:
    """The STEP_END class: nothing more starts in this step (note-seq's ``default_event_label``)."""
    from modeling.families.base import label_decoding_to

    return label_decoding_to(encoding, STEP_END, history=START)


__all__ = hook_exports(globals())
