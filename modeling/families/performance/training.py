"""Training hooks of the ``Family`` protocol (loss per second, the default event label).

Loaded on first use through the package (``__getattr__``), never by a Beam worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modeling.families.base import hook_exports, lazy_import
from modeling.families.performance.config import MAX_SHIFT_STEPS, NOTE_ON, TIME_SHIFT
from modeling.families.performance.config import NEUTRAL_PAD as NEUTRAL_PAD
from modeling.families.performance.controls import event_seconds

if TYPE_CHECKING:
    import torch
else:
    torch = lazy_import("torch", globals())


# NEUTRAL_PAD (NOTE_OFF of pitch 0) is defined with the event indices in :mod:`.config`; its
# re-export above makes it this module's hook (``hook_exports`` lists it).
STEP_UNIT = "second"  # loss per second of music: TIME_SHIFTs carry all the time


def event_units(events: torch.Tensor) -> torch.Tensor:
    """Seconds of music each event covers (:func:`event_seconds`), as float64 sums."""
    return event_seconds(events).to(torch.float64)


def default_event_label(encoding: Any) -> int:
    """The longest TIME_SHIFT class: a second with nothing happening (note-seq's
    ``default_event_label``)."""
    from modeling.families.base import label_decoding_to

    return label_decoding_to(encoding, TIME_SHIFT + MAX_SHIFT_STEPS - 1, history=NOTE_ON)


__all__ = hook_exports(globals())
