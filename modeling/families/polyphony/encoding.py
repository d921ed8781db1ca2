"""Polyphony's encoding: Magenta's one-hot plus where the voices stand (:class:`StepContext`).

Magenta's Polyphony RNN reads only the newest event and must keep in its LSTM state which
pitches sounded in the last step (the only ones it may continue), which it has written in this
step (a step's notes run from high to low) and which key the piece is in. Small models keep
these badly: samples of a [128, 128] model drifted through all twelve pitch classes within four
bars and thinned to three voices. :class:`StepContext` appends them as input columns
(:func:`step_context`), computed from the newest ``window`` events so that generation computes
them exactly (:class:`~modeling.families.extra.ExtraInputs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from modeling.families.base import lazy_import
from modeling.families.extra import ExtraInputs
from modeling.families.melody.encoding import last_index
from modeling.families.onehot import OneHot
from modeling.families.polyphony.extract import CONTINUED_NOTE, NEW_NOTE, STEP_END

if TYPE_CHECKING:
    import torch
    import torch.nn.functional as F
else:
    torch = lazy_import("torch", globals())
    F = lazy_import("torch.nn.functional", globals(), "F")

CONTEXT_WINDOW = 256
"""Events the context reads back: about 50 steps (three bars) of four-voice chorale."""


def step_context(
    events: torch.Tensor, window: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """After each event: the pitches of the last complete step and of the step so far, two
    (B, T, 128) 0/1 int32 tensors, and the pitch-class shares of the NEW_NOTEs (B, T, 12) float.

    All three count only the newest ``window`` events (positions t - window + 1 .. t): a step
    that began earlier is cut there. Vectorised: with ``c`` the running per-pitch note counts,
    the notes in positions (a, b] are ``c[b] - c[a]``, and the step bounds are the last STEP_END
    at or before t and the one before it.
    """
    ev = events.long()
    b, t = ev.shape
    is_new = (ev >= NEW_NOTE) & (ev < CONTINUED_NOTE)
    is_note = ev >= NEW_NOTE
    pitch = torch.where(is_new, ev - NEW_NOTE, ev - CONTINUED_NOTE).clamp(0, 127)
    notes = F.one_hot(pitch, 128).to(torch.int32) * is_note.unsqueeze(-1)
    counts = F.pad(notes.cumsum(1, dtype=torch.int32), (0, 0, 1, 0))  # counts[:, i]: before i
    pos = torch.arange(t, device=ev.device).expand(b, t)
    floor = (pos - window).clamp(min=-1)  # positions after this are in the window
    # the step so far follows the last STEP_END; the last complete step follows the one before
    end = last_index(ev == STEP_END)
    before = torch.where(end > 0, end.gather(1, (end - 1).clamp(min=0)), -1)
    lo_cur = torch.maximum(end, floor)
    lo_prev = torch.maximum(before, floor)

    def at(i: torch.Tensor) -> torch.Tensor:  # counts after position i (i = -1: none)
        return counts.gather(1, (i + 1).unsqueeze(-1).expand(b, t, 128))

    now = at(pos)
    current = now - at(lo_cur)
    previous = at(lo_cur) - at(lo_prev)
    classes = F.one_hot(pitch % 12, 12).float() * is_new.unsqueeze(-1)
    pc = F.pad(classes.cumsum(1), (0, 0, 1, 0))
    pc_now = pc[:, 1:]
    pc_window = pc_now - pc.gather(1, (floor + 1).unsqueeze(-1).expand(b, t, 12))
    shares = pc_window / pc_window.sum(-1, keepdim=True).clamp(min=1.0)
    return previous, current, shares


@dataclass(frozen=True)
class StepContext(ExtraInputs):
    """Polyphony's one-hot plus 2 x 128 + 12 input columns: the pitches of the last complete
    step, those of the step so far, and the pitch-class shares of the newest ``window`` events'
    new notes (:func:`step_context`)."""

    base: OneHot
    window: int = CONTEXT_WINDOW

    EXTRA_SIZE: ClassVar[int] = 2 * 128 + 12

    def extra(self, events: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        previous, current, shares = step_context(events, self.window)
        return torch.cat([previous.to(dtype), current.to(dtype), shares.to(dtype)], dim=-1)
