"""The performance encodings: :class:`ControlledPerformance` and the :class:`HeldNotes` wrapper.

Plain performances use :class:`~modeling.families.onehot.OneHot`; :class:`ControlledPerformance`
prepends the controls of :mod:`.controls` to it, as note-seq's
``ConditionalEventSequenceEncoderDecoder``. Every performance variant wraps one of the two in
:class:`HeldNotes`, which appends how many notes of each pitch are held and for how long;
:func:`controls_of` reaches the controlled encoding through the wrapper.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from modeling.families.base import Cond, lazy_import
from modeling.families.extra import ExtraInputs
from modeling.families.onehot import OneHot
from modeling.families.performance.config import (
    DEFAULT_NOTE_DENSITY,
    DEFAULT_PITCH_HISTOGRAM,
    DENSITY_BIN_RANGES,
    DENSITY_WINDOW_SECONDS,
    HISTOGRAM_PRIOR_COUNT,
    HISTOGRAM_WINDOW_SECONDS,
    MAX_NOTE_DURATION_SECONDS,
    MAX_SHIFT_STEPS,
    NOTE_OFF,
    NOTE_ON,
    STEPS_PER_SECOND,
    TIME_SHIFT,
    event_space_name,
    num_classes,
)
from modeling.families.performance.controls import (
    density_bins,
    event_start_steps,
    held_notes,
    normalise_histogram,
    note_density,
    pitch_histogram,
)

if TYPE_CHECKING:
    import torch
else:
    torch = lazy_import("torch", globals())


@dataclass(frozen=True)
class ControlledPerformance:
    """Performance one-hot conditioned on note density and/or pitch-class histogram.

    Inputs are ``[density one-hot (8)] + [histogram (12)] + event one-hot``, as note-seq's
    ``ConditionalEventSequenceEncoderDecoder(MultipleEventSequenceEncoder([...]), one-hot)``:
    row t holds the controls at event t + 1 and the one-hot of event t. Conditioning keys are
    ``"note_density"`` (B, T) and ``"pitch_histogram"`` (B, T, 12) raw values (notes per second,
    seconds per class); :meth:`inputs` encodes them. Magenta's ``optional_conditioning`` flag
    (its ``optional_multiconditioned_*`` config only) is not implemented.

    ``density_value=True`` (not Magenta's) appends one column after Magenta's controls:
    log2(1 + notes per second). Magenta's bins are an octave wide, and a model faithful to them
    plays its bin's average whatever the request inside it: on the default chorales 10.3 notes
    a second for any request in [8, 16), so a request of 8 could not be met within 20 %. The
    value tells the model where in its bin a request lies.
    """

    name: str
    num_velocity_bins: int = 32
    density: bool = False
    histogram: bool = False
    density_value: bool = False
    density_window_seconds: float = DENSITY_WINDOW_SECONDS
    density_bin_ranges: tuple[float, ...] = DENSITY_BIN_RANGES
    histogram_window_seconds: float = HISTOGRAM_WINDOW_SECONDS
    histogram_prior_count: float = HISTOGRAM_PRIOR_COUNT
    steps_per_second: int = STEPS_PER_SECOND

    def __post_init__(self) -> None:
        if not (self.density or self.histogram):
            raise ValueError("a controlled performance encoding needs density and/or histogram")
        if self.density_value and not self.density:
            raise ValueError("density_value needs density")

    @property
    def event_space(self) -> str:
        return event_space_name(self.num_velocity_bins)

    @property
    def num_classes(self) -> int:
        return num_classes(self.num_velocity_bins)

    @property
    def control_size(self) -> int:
        bins = len(self.density_bin_ranges) + 1
        return bins * self.density + 12 * self.histogram + self.density_value

    @property
    def input_size(self) -> int:
        return self.control_size + self.num_classes

    def _check_cond(self, cond: Cond, needed: int) -> None:
        for key, used in (("note_density", self.density), ("pitch_histogram", self.histogram)):
            if not used:
                continue
            if key not in cond:
                raise ValueError(f"{self.name} needs conditioning {key!r}")
            have = cond[key].shape[1]
            if have < needed:
                raise ValueError(
                    f"{key} covers {have} positions; {needed} needed "
                    "(conditioning must be one longer than the events)"
                )

    def _fill_controls(self, out: torch.Tensor, cond: Cond, start: int) -> None:
        """Write encoded controls of positions ``start ..`` into ``out[..., :control_size]``."""
        length = out.shape[1]
        col = 0
        if self.density:
            d = cond["note_density"][:, start : start + length]
            bins = density_bins(d, self.density_bin_ranges)
            out.scatter_(2, (col + bins).unsqueeze(-1), 1.0)
            col += len(self.density_bin_ranges) + 1
        if self.histogram:
            h = cond["pitch_histogram"][:, start : start + length]
            out[..., col : col + 12] = normalise_histogram(h.double()).to(out.dtype)
            col += 12
        if self.density_value:
            d = cond["note_density"][:, start : start + length]
            out[..., col] = torch.log2(1.0 + d.double().clamp(min=0)).to(out.dtype)

    def output_terms(self) -> torch.nn.Module:
        """The terms of these control columns (:class:`~.terms.ControlTerms`; the
        ``output_terms`` hparam)."""
        from modeling.families.performance.terms import ControlTerms

        bins = len(self.density_bin_ranges) + 1
        return ControlTerms(
            self.num_classes,
            bin_cols=(0, bins) if self.density else None,
            value_col=self.control_size - 1 if self.density_value else None,
            histogram_col=bins * self.density if self.histogram else None,
            note_on=NOTE_ON,
        )

    def control_inputs(
        self, cond: Cond, start: int, length: int, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """Encoded controls of positions ``start .. start + length - 1`` (B, length, size);
        float64 unless ``dtype`` says otherwise."""
        self._check_cond(cond, start + length)
        ref = cond["note_density" if self.density else "pitch_histogram"]
        dtype = torch.float64 if dtype is None else dtype
        out = torch.zeros((ref.shape[0], length, self.control_size), dtype=dtype, device=ref.device)
        self._fill_controls(out, cond, start)
        return out

    def inputs(self, events: torch.Tensor, cond: Cond) -> torch.Tensor:
        b, t = events.shape
        self._check_cond(cond, t + 1)
        out = torch.zeros((b, t, self.input_size), dtype=torch.float32, device=events.device)
        self._fill_controls(out, cond, 1)
        out.scatter_(2, (self.control_size + events.long()).unsqueeze(-1), 1.0)
        return out

    def labels(self, events: torch.Tensor, cond: Cond) -> torch.Tensor:
        return events.long()

    def conditions(self, events: torch.Tensor, stored: Cond) -> dict[str, torch.Tensor]:
        """Controls computed from the events themselves.

        Controls look ahead (a window after each event), so padding must not count:
        ``stored["mask"]`` (B, T) marks real events when batches are padded; without it, every
        position is taken as real (pad with :data:`NEUTRAL_PAD` to be safe either way).
        """
        mask = stored.get("mask")
        out: dict[str, torch.Tensor] = {}
        if self.density:
            out["note_density"] = note_density(
                events,
                window_seconds=self.density_window_seconds,
                steps_per_second=self.steps_per_second,
                mask=mask,
            )
        if self.histogram:
            out["pitch_histogram"] = pitch_histogram(
                events,
                window_seconds=self.histogram_window_seconds,
                prior_count=self.histogram_prior_count,
                steps_per_second=self.steps_per_second,
                mask=mask,
            )
        return out

    def decode_label(self, labels: torch.Tensor, events: torch.Tensor) -> torch.Tensor:
        return labels.long()

    def control_from_request(
        self,
        events: torch.Tensor,
        *,
        notes_per_second: float | Sequence[float] | None = None,
        pitch_class_histogram: Sequence[float] | Sequence[Sequence[float]] | None = None,
        total_steps: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Conditioning for generation (length T + 1 for events (B, T)) from requested values.

        As Magenta's generator: a single value holds for the whole piece; a list of values splits
        ``total_steps`` (primer + generated clock steps) into equal segments, and the value at
        event k is the one of the segment holding the clock before event k. Missing controls
        take Magenta's defaults (15 notes/s, a flat histogram).
        """
        densities = _density_values(notes_per_second) if self.density else None
        histograms = _histogram_values(pitch_class_histogram) if self.histogram else None
        if not self.density and notes_per_second is not None:
            raise ValueError(f"variant {self.name} is not conditioned on notes_per_second")
        if not self.histogram and pitch_class_histogram is not None:
            raise ValueError(f"variant {self.name} is not conditioned on pitch_class_histogram")
        segments = max(len(v) for v in (densities, histograms) if v is not None)
        if segments > 1 and (total_steps is None or total_steps <= 0):
            raise ValueError("several control values need total_steps (> 0) to place them")
        clock = event_start_steps(events.long())
        out: dict[str, torch.Tensor] = {}
        if densities is not None:
            table = torch.tensor(densities, dtype=torch.float64, device=events.device)
            out["note_density"] = table[_segment(clock, len(densities), total_steps)]
        if histograms is not None:
            table = torch.tensor(histograms, dtype=torch.float64, device=events.device)
            out["pitch_histogram"] = table[_segment(clock, len(histograms), total_steps)]
        return out


def _segment(clock: torch.Tensor, n: int, total_steps: int | None) -> torch.Tensor:
    """Magenta's ``_step_to_value``: min(step * n // total, n - 1)."""
    if n == 1:
        return torch.zeros_like(clock)
    return torch.clamp(clock * n // int(total_steps), max=n - 1)


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _density_values(value: float | Sequence[float] | None) -> list[float]:
    if value is None:
        return [float(DEFAULT_NOTE_DENSITY)]
    values = [value] if _is_number(value) else list(value)
    if not values or not all(_is_number(v) and v >= 0 for v in values):
        raise ValueError(f"notes_per_second must be a number >= 0 or a list of them, got {value!r}")
    return [float(v) for v in values]


def _histogram_values(
    value: Sequence[float] | Sequence[Sequence[float]] | None,
) -> list[list[float]]:
    if value is None:
        return [list(DEFAULT_PITCH_HISTOGRAM)]
    items = list(value)
    rows = [items] if items and all(_is_number(v) for v in items) else items
    for row in rows:
        if (
            isinstance(row, (str, bytes))
            or not isinstance(row, Sequence)
            or len(row) != 12
            or not all(_is_number(v) and v >= 0 for v in row)
        ):
            raise ValueError(
                "pitch_class_histogram must be 12 numbers >= 0 (C..B) or a list of "
                f"such lists, got {value!r}"
            )
    if not rows:
        raise ValueError("pitch_class_histogram is empty")
    return [[float(v) for v in row] for row in rows]


HELD_WINDOW = 256
"""Events a note stays counted as held without a NOTE_OFF: a few seconds of the densest piano
data (ASAP: ~60 events/s), twenty of the chorales; a note held longer is stuck anyway."""


@dataclass(frozen=True)
class HeldNotes(ExtraInputs):
    """A performance encoding plus 2 x 128 input columns: per pitch, the notes held after each
    event and the seconds the newest of them has sounded (capped at ``max_seconds``).

    Magenta's Performance RNN reads only the newest event and must keep in its LSTM state which
    of 128 pitches it holds and since when. Measured on small models (2 x 128 cells): a quarter
    of the sampled NOTE_OFFs released a pitch that was not held, and a quarter of the notes
    lasted over 2 s, many to the 5 s decoding cap (``bench/held_notes.py``). With these columns
    (:func:`held_notes`, counted as note-seq decodes) the model sees what it holds and for how
    long. The new columns come last, after any controls (:class:`ExtraInputs`).
    """

    base: OneHot | ControlledPerformance
    window: int = HELD_WINDOW
    steps_per_second: int = STEPS_PER_SECOND
    max_seconds: float = MAX_NOTE_DURATION_SECONDS

    EXTRA_SIZE: ClassVar[int] = 2 * 128

    def extra(self, events: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """The 2 x 128 held-note columns (B, T, 256): counts, then capped seconds."""
        count, age = held_notes(events, self.window)
        seconds = age.to(dtype).div_(self.steps_per_second).clamp_(max=self.max_seconds)
        return torch.cat([count.to(dtype), seconds], dim=-1)

    def output_terms(self) -> torch.nn.Module:
        """The logit terms that read these columns (:mod:`.terms`; the ``output_terms`` hparam)."""
        from modeling.families.performance.terms import HeldNoteTerms

        first = self.base.input_size
        return HeldNoteTerms(
            count_col=first,
            seconds_col=first + 128,
            note_on=NOTE_ON,
            note_off=NOTE_OFF,
            time_shift=TIME_SHIFT,
            max_shift=MAX_SHIFT_STEPS,
            steps_per_second=self.steps_per_second,
            max_seconds=self.max_seconds,
            controls=(
                self.base.output_terms() if isinstance(self.base, ControlledPerformance) else None
            ),
        )


def controls_of(encoding: Any) -> ControlledPerformance | None:
    """The control-conditioned encoding inside ``encoding`` (itself or a wrapped one), or None."""
    inner = encoding.base if isinstance(encoding, HeldNotes) else encoding
    return inner if isinstance(inner, ControlledPerformance) else None
