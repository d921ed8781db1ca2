"""The plain one-hot encoding: stored event index -> one-hot input, label = the index itself.

Basic and mono melodies, polyphony and unconditioned performance all use it (note-seq's
``OneHotEventSequenceEncoderDecoder`` over the family's base ``OneHotEncoding``); conditioned
encodings wrap it (see ``base.py`` for the alignment rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modeling.families.base import Cond, lazy_import

if TYPE_CHECKING:
    import torch
    import torch.nn.functional as F
else:
    torch = lazy_import("torch", globals())
    F = lazy_import("torch.nn.functional", globals(), "F")


@dataclass(frozen=True)
class OneHot:
    """One-hot inputs and identity labels over ``num_classes`` stored event indices."""

    name: str
    event_space: str
    num_classes: int

    @property
    def input_size(self) -> int:
        return self.num_classes

    def inputs(self, events: torch.Tensor, cond: Cond) -> torch.Tensor:
        return F.one_hot(events.long(), self.num_classes).float()

    def labels(self, events: torch.Tensor, cond: Cond) -> torch.Tensor:
        return events.long()

    def conditions(self, events: torch.Tensor, stored: Cond) -> dict[str, torch.Tensor]:
        return {}

    def decode_label(self, labels: torch.Tensor, events: torch.Tensor) -> torch.Tensor:
        return labels.long()
