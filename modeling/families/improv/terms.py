"""Output terms from the chord-tone columns: each melody pitch's logit learns how it sits against
the chord's pitch classes, with twelve weights shared by every pitch and key.

``ChordConditioned(..., chord_tones=True)`` gives the triad improv models the pitch classes of
the chord under the predicted step, but a [128, 128] network still has to carry them through
its LSTM state and map them, separately for each of 36 pitches, onto its head. Measured at the
default profile: teacher-forced, basic_improv gave chord tones 0.64 of its probability where the
lead sheets' melodies have 0.67, and its samples played chord tones in 0.598 of their notes
against a bar of 0.603. :class:`ChordToneTerms` adds to the logit of each pitch class p

    sum over the chord's pitch classes j of weight[(p - j) mod 12]

so "a chord tone" (interval 0), "a third above one" and "a semitone below one" are each a
single learned number, the same in every key (the training data are transposed to all of
them). Lookback "repeat" classes and the no-event / note-off classes get no term. The weights
start at zero (no term); the terms read only the input row of their own step, so training and
generation compute them alike. EventRNN builds them when a variant's ``output_terms`` hparam
is on (:meth:`~modeling.families.improv.encoding.ChordConditioned.output_terms`).
"""

from __future__ import annotations

import torch
from torch import nn


class ChordToneTerms(nn.Module):
    """Adds ``bits @ circulant(weight)`` to the logits of the classes that play a pitch.

    ``bits_col``: the first of the 12 chord pitch-class input columns (C..B);
    ``class_pitch``: the MIDI pitch of each output class, -1 for classes that play none.
    """

    def __init__(self, bits_col: int, class_pitch: torch.Tensor) -> None:
        super().__init__()
        self.bits_col = bits_col
        self.weight = nn.Parameter(torch.zeros(12))
        pitch = class_pitch.long()
        plays = torch.nonzero(pitch >= 0).squeeze(1)
        self.register_buffer("_index", plays, persistent=False)  # classes that play a pitch
        # interval of each playing class's pitch class above each chord pitch class j: (12, n)
        interval = (pitch[plays].unsqueeze(0) - torch.arange(12).unsqueeze(1)) % 12
        self.register_buffer("_interval", interval, persistent=False)

    def forward(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` (B, T, C) plus the chord terms read from the inputs ``x`` (B, T, input)."""
        bits = x[..., self.bits_col : self.bits_col + 12]
        terms = bits @ self.weight[self._interval]  # (B, T, n)
        return logits.index_add(-1, self._index, terms.to(logits.dtype))
