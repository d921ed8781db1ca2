"""Magenta's encoding plus input columns it leaves the LSTM to remember (:class:`ExtraInputs`).

Polyphony RNN and Performance RNN read only the newest event: which notes sound, since when,
and in which key the music is must all be kept in the LSTM state, and small CPU-sized models
keep them badly (stuck notes, voices that wander out of key). A subclass of
:class:`ExtraInputs` computes such facts from the newest ``window`` events and appends them
after the base's columns; events, labels, the event space and the base's own columns stay
Magenta's, so the base's parity with note-seq still holds column for column. Because every extra
column reads only the newest ``window`` events, generation computes it exactly from those (the
family's ``feature_window`` says so to the engine). The performance family's ``HeldNotes`` and
polyphony's ``StepContext`` are the two subclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from modeling.families.base import Cond, lazy_import

if TYPE_CHECKING:
    import torch
else:
    torch = lazy_import("torch", globals())


@dataclass(frozen=True)
class ExtraInputs:
    """``base``'s inputs followed by :attr:`EXTRA_SIZE` columns from :meth:`extra`; everything
    else (labels, decoding, controls) is the base's."""

    base: Any
    window: int

    EXTRA_SIZE: ClassVar[int] = 0

    def extra(self, events: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """The extra columns (B, T, EXTRA_SIZE) after each event, from the newest ``window``."""
        raise NotImplementedError

    @property
    def name(self) -> str:
        return self.base.name

    @property
    def event_space(self) -> str:
        return self.base.event_space

    @property
    def num_classes(self) -> int:
        return self.base.num_classes

    @property
    def input_size(self) -> int:
        return self.base.input_size + self.EXTRA_SIZE

    def __getattr__(self, attr: str) -> Any:
        """The rest of the base's interface (``control_size``, ``control_from_request``, ``density``
        ... of a controlled base), so the wrapper stands wherever its base does."""
        if attr.startswith("__") or attr == "base":
            raise AttributeError(attr)
        return getattr(self.base, attr)

    def inputs(self, events: torch.Tensor, cond: Cond) -> torch.Tensor:
        base = self.base.inputs(events, cond)
        return torch.cat([base, self.extra(events, base.dtype)], dim=-1)

    def last_input(self, events: torch.Tensor, cond: Cond) -> torch.Tensor:
        """``inputs(events, cond)[:, -1]`` without the base's other rows: generation needs one
        row per step, and the base's columns come from the newest event alone."""
        t = events.shape[1]
        newest = {k: v[:, t - 1 : t + 1] for k, v in cond.items()}
        base = self.base.inputs(events[:, -1:], newest)[:, -1]
        return torch.cat([base, self.extra(events, base.dtype)[:, -1]], dim=-1)

    def labels(self, events: torch.Tensor, cond: Cond) -> torch.Tensor:
        return self.base.labels(events, cond)

    def conditions(self, events: torch.Tensor, stored: Cond) -> dict[str, torch.Tensor]:
        return self.base.conditions(events, stored)

    def decode_label(self, labels: torch.Tensor, events: torch.Tensor) -> torch.Tensor:
        return self.base.decode_label(labels, events)
