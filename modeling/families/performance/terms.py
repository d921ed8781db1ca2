"""Output terms from the held-note columns: release and time-shift logits that see each note's age.

:class:`~modeling.families.performance.encoding.HeldNotes` tells the LSTM, per pitch, how many
notes it holds and for how long, but the decision to release still has to pass through a
128-cell state and a [128, 356] head, separately for each pitch. Measured on the default
chorales (2 x 128 cells): a few of ~2,800 sampled notes still ran to the 5 s decoding cap
(the data's longest note is 3.15 s, and 99.85 % of its notes end by 2.0 s). :class:`HeldNoteTerms` makes "release a note of this age"
a fact with a handful of weights shared by every pitch:

* per pitch p, a learned table indexed by (notes held: 0, 1, 2 or more; age in clock steps)
  adds to the logits of NOTE_ON(p) and NOTE_OFF(p), so an old note's release grows likely
  whatever the pitch;
* per TIME_SHIFT class of s steps, a learned table indexed by (anything held; the oldest held
  note's age + s) adds to that shift's logit, so a shift that would carry a held note past what
  the data ever holds grows unlikely.

Tables, not a small MLP: the data's ages fall on a grid and their limit is sharp (past 2.0 s
the chorales hold 0.15 % of their notes, past 3.15 s none), so each clock step has its own
entry. An MLP of (age, shift) learned a line (slope ~1 logit/s) and let 1 of ~5,200 sampled
notes run to 2.38 s. Each table is the running sum of per-step increments, so an age the data
never reaches inherits the last value learned before it rather than falling back to 0.

The terms are added to the network's logits (a product of hazards); they start at zero, so an
untrained model is the plain EventRNN. They read only the input row of their own step, so
training and generation compute them alike. EventRNN builds them when a variant's
``output_terms`` hparam is on (:meth:`HeldNotes.output_terms`).
"""

from __future__ import annotations

import torch
from torch import nn

PITCHES = 128
COUNTS = 3  # notes held of a pitch: 0, 1, 2 or more (a unison)


class HeldNoteTerms(nn.Module):
    """Adds per-pitch NOTE_ON/NOTE_OFF and per-shift TIME_SHIFT terms to (..., classes) logits.

    ``count_col`` / ``seconds_col``: the first input column of the 128 held counts and of the
    128 ages in seconds (capped at ``max_seconds``); ``note_on`` / ``note_off``: the class of
    pitch 0 of each; ``time_shift``: the class of a one-step shift, ``max_shift`` shifts in all;
    ``controls``: the terms of a control-conditioned encoding's columns, if any.
    """

    def __init__(
        self,
        count_col: int,
        seconds_col: int,
        note_on: int,
        note_off: int,
        time_shift: int,
        max_shift: int,
        steps_per_second: int,
        max_seconds: float,
        controls: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.controls = controls  # a controlled encoding's :class:`ControlTerms`, added last
        self.count_col, self.seconds_col = count_col, seconds_col
        self.steps_per_second = steps_per_second
        self.ages = round(max_seconds * steps_per_second) + 1
        self.max_shift = max_shift
        # increments along age; the tables are their running sums (zero: no term)
        self.pitch_steps = nn.Parameter(torch.zeros(COUNTS, 2, self.ages))
        self.shift_steps = nn.Parameter(torch.zeros(2, self.ages + max_shift))
        pitch = torch.arange(PITCHES)
        index = torch.cat([note_on + pitch, note_off + pitch, time_shift + torch.arange(max_shift)])
        self.register_buffer("_index", index, persistent=False)  # the classes the terms add to

    def tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(COUNTS, 2, ages) NOTE_ON/NOTE_OFF terms and (2, ages + max_shift) shift terms."""
        return self.pitch_steps.cumsum(-1), self.shift_steps.cumsum(-1)

    def forward(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` (B, T, C) plus the terms read from the inputs ``x`` (B, T, input_size).

        Only held pitches (a few of 128) look up their own entries; every unheld pitch takes the
        one entry of (0 held, age 0), and each row's shifts read one contiguous run of the shift
        table (an ``unfold`` view), so the terms cost a tenth of the LSTM step.
        """
        pitch_table, shift_table = self.tables()
        count = x[..., self.count_col : self.count_col + PITCHES]
        seconds = x[..., self.seconds_col : self.seconds_col + PITCHES]
        held = count > 0
        age = (seconds * self.steps_per_second).round_().long().clamp_(0, self.ages - 1)
        where = held.flatten().nonzero().squeeze(1)
        rows = count.flatten()[where].round().long().clamp(1, COUNTS - 1)
        at = rows * (2 * self.ages) + age.flatten()[where]  # NOTE_ON entry; NOTE_OFF one row on
        flat = pitch_table.flatten()
        per_pitch = (
            pitch_table[0, :, 0]
            .expand(held.numel(), 2)
            .index_put((where,), torch.stack([flat[at], flat[at + self.ages]], -1))
            .view(*held.shape, 2)
            .transpose(-1, -2)
            .flatten(-2)
        )  # (B, T, 256): the NOTE_ON terms, then the NOTE_OFF ones
        runs = shift_table.unfold(-1, self.max_shift, 1)[:, 1:]  # [row, a, k]: entry a + k + 1
        per_shift = runs[held.any(-1).long(), age.amax(-1)]  # an unheld pitch's age is 0
        terms = torch.cat([per_pitch, per_shift], -1).to(logits.dtype)
        logits = logits.index_add(-1, self._index, terms)
        return logits if self.controls is None else self.controls(x, logits)


class ControlTerms(nn.Module):
    """Adds the terms of Performance RNN's controls to (..., classes) logits.

    Fine-tuned from an unconditioned model for the few hundred steps ``make run`` affords, the
    LSTM learns to read the controls only through its input weights. Measured at 200 steps on the
    default chorales (multiconditioned, asked for C major): histogram distance 0.231 without
    these terms, 0.167 with them (bar 0.2), eval perplexity 3.18 -> 3.12. Each control reaches
    the logits directly:

    * ``bin_cols``: the density one-hot's columns select a learned row of class terms;
    * ``value_col``: the density as a number (``density_value``) scales a learned term per
      class, so requests inside one bin still differ;
    * ``histogram_col``: the 12 requested pitch-class shares feed a
      :class:`~modeling.families.pitch_terms.PitchClassTerms` on the NOTE_ON classes, so
      "favour C and G" is a single weight per interval, in every octave.

    Alone they do not make a 2 notes/s request play 2 notes a second: the chorales hold almost
    no music that sparse, which the ``part_subsets`` example set adds. Each part is optional
    (None: the encoding has no such columns); all start at zero.
    """

    def __init__(
        self,
        num_classes: int,
        bin_cols: tuple[int, int] | None,
        value_col: int | None,
        histogram_col: int | None,
        note_on: int,
    ) -> None:
        super().__init__()
        from modeling.families.pitch_terms import PitchClassTerms

        self.bin_cols, self.value_col = bin_cols, value_col
        if bin_cols is not None:
            self.bin_terms = nn.Parameter(torch.zeros(bin_cols[1] - bin_cols[0], num_classes))
        if value_col is not None:
            self.value_terms = nn.Parameter(torch.zeros(num_classes))
        self.histogram = None
        if histogram_col is not None:
            pitch = torch.full((num_classes,), -1)
            pitch[note_on : note_on + PITCHES] = torch.arange(PITCHES)
            self.histogram = PitchClassTerms([histogram_col], pitch)

    def forward(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` (B, T, C) plus the control terms read from the inputs ``x``."""
        if self.bin_cols is not None:
            lo, hi = self.bin_cols
            logits = logits + (x[..., lo:hi] @ self.bin_terms).to(logits.dtype)
        if self.value_col is not None:
            value = x[..., self.value_col : self.value_col + 1]
            logits = logits + (value * self.value_terms).to(logits.dtype)
        return logits if self.histogram is None else self.histogram(x, logits)
