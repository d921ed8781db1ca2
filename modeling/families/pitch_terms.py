"""Output terms from pitch-class input bits: each pitch's logit learns how it sits against the
pitch classes its encoding marks (a chord's notes, the keys the melody fits), with twelve
weights per group of bits shared by every pitch, octave and key.

A [128, 128] network otherwise has to carry such bits through its LSTM state and map them,
separately for each of 36 pitches, onto its head. Measured at the default profile: teacher-forced,
basic_improv gave chord tones 0.64 of its probability where the lead sheets' melodies have 0.67,
and its samples played chord tones in 0.598 of their notes against a bar of 0.603;
attention_rnn's samples drifted towards the dominant (pitch-class distance 0.156 against a bar
of 0.142). :class:`PitchClassTerms` adds to the logit of each pitch class p, for each group of
12 bits (C..B) in the input,

    sum over the marked pitch classes j of weight[(p - j) mod 12]

so "a chord tone" (interval 0), "a third above one" or "the fifth degree of a fitting key" is a
single learned number, the same in every key (the training data are transposed to all of them).
Classes that play no pitch (no event, note off) get no term; a lookback repeat class gets the
term of the pitch it would play when its encoding says which (improv's ``repeat_tones``). The weights start
at zero (no term); the terms read only the input row of their own step, so training and
generation compute them alike. EventRNN builds them when a variant's ``output_terms`` hparam is
on: improv's :meth:`~modeling.families.improv.encoding.ChordConditioned.output_terms` (the chord
under the predicted step) and melody's
:meth:`~modeling.families.melody.encoding.KeyMelody.output_terms` (the best-fitting keys).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class PitchClassTerms(nn.Module):
    """Adds ``bits @ circulant(weight)`` per group of bits to the classes that play a pitch.

    ``bit_cols``: the first input column of each group of 12 pitch-class bits (C..B);
    ``class_pitch``: the MIDI pitch of each output class, -1 for classes that play none;
    ``repeats``: (class, column) pairs for classes whose pitch is in the input instead (a
    lookback "repeat" class, its pitch class as 12 bits from ``column``): each gets the term
    of the pitch class it would play, with the same weights.
    """

    def __init__(
        self,
        bit_cols: Sequence[int],
        class_pitch: torch.Tensor,
        repeats: Sequence[tuple[int, int]] = (),
    ) -> None:
        super().__init__()
        self.bit_cols = tuple(bit_cols)
        self.weight = nn.Parameter(torch.zeros(len(self.bit_cols), 12))
        pitch = class_pitch.long()
        plays = torch.nonzero(pitch >= 0).squeeze(1)
        self.register_buffer("_index", plays, persistent=False)  # classes that play a pitch
        # interval of each playing class's pitch class above each marked pitch class j: (12, n)
        interval = (pitch[plays].unsqueeze(0) - torch.arange(12).unsqueeze(1)) % 12
        self.register_buffer("_interval", interval, persistent=False)
        self.repeat_cols = tuple(c for _, c in repeats)
        self.register_buffer("_repeat_index", torch.tensor([k for k, _ in repeats]).long(), False)
        circulant = (torch.arange(12).unsqueeze(0) - torch.arange(12).unsqueeze(1)) % 12
        self.register_buffer("_circulant", circulant, persistent=False)  # [j, i]: i - j

    def forward(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` (B, T, C) plus the terms read from the inputs ``x`` (B, T, input)."""
        bits = torch.cat([x[..., c : c + 12] for c in self.bit_cols], -1)  # (B, T, 12 * groups)
        table = self.weight[:, self._interval].flatten(0, 1)  # (12 * groups, n)
        logits = logits.index_add(-1, self._index, (bits @ table).to(logits.dtype))
        if not self.repeat_cols:
            return logits
        per_class = bits @ self.weight[:, self._circulant].flatten(0, 1)  # (B, T, 12): C..B
        played = torch.stack([x[..., c : c + 12] for c in self.repeat_cols], -2)  # (B, T, R, 12)
        terms = (played * per_class.unsqueeze(-2)).sum(-1)
        return logits.index_add(-1, self._repeat_index, terms.to(logits.dtype))
