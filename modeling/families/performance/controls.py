"""Vectorised event arithmetic: time (shift steps, seconds) and the performance controls.

Note density over 3 s and the pitch-class histogram over 5 s are functions of the events,
computed for whole (B, T) batches with cumulative sums and ``searchsorted`` and proven equal to
note-seq's ``*PerformanceControlSignal.extract`` in tests. :mod:`.encoding` conditions on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from modeling.families.base import lazy_import
from modeling.families.performance.config import (
    DENSITY_BIN_RANGES,
    DENSITY_WINDOW_SECONDS,
    HISTOGRAM_PRIOR_COUNT,
    HISTOGRAM_WINDOW_SECONDS,
    NEUTRAL_PAD,
    NOTE_OFF,
    STEPS_PER_SECOND,
    TIME_SHIFT,
    VELOCITY,
)

if TYPE_CHECKING:
    import torch
    import torch.nn.functional as F
else:
    torch = lazy_import("torch", globals())
    F = lazy_import("torch.nn.functional", globals(), "F")


def shift_steps(events: torch.Tensor) -> torch.Tensor:
    """Steps each event moves the clock (B, T) long: the TIME_SHIFT amount, else 0."""
    events = events.long()
    is_shift = (events >= TIME_SHIFT) & (events < VELOCITY)
    return torch.where(is_shift, events - (TIME_SHIFT - 1), torch.zeros_like(events))


def event_seconds(events: torch.Tensor, steps_per_second: int = STEPS_PER_SECOND) -> torch.Tensor:
    """Seconds of music each event covers (B, T) float: TIME_SHIFT s -> s / 100, others 0.

    Loss per second of music = sum of label losses / sum of ``event_seconds`` of the labels.
    """
    return shift_steps(events).double().div(steps_per_second).float()


def event_start_steps(events: torch.Tensor) -> torch.Tensor:
    """Clock (steps) before each event, plus the clock after the last: (B, T + 1) long."""
    s = shift_steps(events)
    return F.pad(torch.cumsum(s, dim=1), (1, 0))


def _neutralise(events: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    events = events.long()
    if mask is None:
        return events
    return torch.where(mask.bool(), events, torch.full_like(events, NEUTRAL_PAD))


def _window_ends(clock: torch.Tensor, window_steps: int) -> torch.Tensor:
    """For each event i, the first event index j with clock[j] >= clock[i] + window (B, T)."""
    starts = clock[:, :-1].contiguous()
    return torch.searchsorted(starts, starts + window_steps, right=False)


def _anchors(events: torch.Tensor) -> torch.Tensor:
    """Index of the event whose window value event i reuses (B, T).

    note-seq recomputes a control only at the first event and after a TIME_SHIFT; other events
    repeat the previous value (the clock did not move).
    """
    b, t = events.shape
    is_shift = (events >= TIME_SHIFT) & (events < VELOCITY)
    fresh = torch.ones_like(is_shift)
    fresh[:, 1:] = is_shift[:, :-1]
    idx = torch.arange(t, device=events.device).expand(b, t)
    return torch.cummax(torch.where(fresh, idx, torch.zeros_like(idx)), dim=1).values


def note_density(
    events: torch.Tensor,
    *,
    window_seconds: float = DENSITY_WINDOW_SECONDS,
    steps_per_second: int = STEPS_PER_SECOND,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Notes per second in the window starting at each event (B, T) float64.

    Same value as note-seq's ``NoteDensityPerformanceControlSignal.extract``: NOTE_ONs from the
    event on while the clock is less than ``window`` ahead, divided by the window (clipped to the
    time left in the sequence). ``mask`` marks real events; padded ones are neutralised.
    """
    events = _neutralise(events, mask)
    if events.shape[1] == 0:
        return torch.zeros(events.shape, dtype=torch.float64, device=events.device)
    window = round(window_seconds * steps_per_second)
    clock = event_start_steps(events)
    ends = _window_ends(clock, window)
    ons = F.pad(torch.cumsum((events < NOTE_OFF).long(), dim=1), (1, 0))
    count = ons.gather(1, ends) - ons[:, :-1]
    span = torch.clamp(clock[:, -1:] - clock[:, :-1], max=window)
    density = torch.where(
        span > 0,
        (count * steps_per_second).double() / span.clamp(min=1),
        torch.zeros_like(count, dtype=torch.float64),
    )
    return density.gather(1, _anchors(events))


def _active_pitch_classes(events: torch.Tensor) -> torch.Tensor:
    """Number of sounding pitches per pitch class after each event (B, T, 12) long.

    A pitch sounds when its latest NOTE_ON/NOTE_OFF is a NOTE_ON (set semantics, as note-seq).
    Each NOTE_ON owns the span up to the next event of the same pitch: a stable sort by
    (pitch, position) finds that next event, and a difference array summed over time counts the
    spans covering each position.
    """
    b, t = events.shape
    is_note = events < TIME_SHIFT
    is_on = events < NOTE_OFF
    pitch = events % 128
    pos = torch.arange(t, device=events.device).expand(b, t)
    key = torch.where(is_note, pitch * t + pos, torch.full_like(pos, 128 * t))
    key_sorted, order = torch.sort(key, dim=1, stable=True)
    same_pitch_next = torch.zeros_like(is_note)
    same_pitch_next[:, :-1] = key_sorted[:, 1:] // t == key_sorted[:, :-1] // t
    next_sorted = torch.full_like(pos, t)
    next_sorted[:, :-1] = torch.where(same_pitch_next[:, :-1], order[:, 1:], t)
    next_pos = torch.empty_like(pos).scatter_(1, order, next_sorted)
    on = (is_note & is_on).long()
    pc = pitch % 12
    delta = torch.zeros((b, (t + 1) * 12), dtype=torch.long, device=events.device)
    delta.scatter_add_(1, pos * 12 + pc, on)  # +1 where a NOTE_ON starts sounding
    delta.scatter_add_(1, next_pos * 12 + pc, -on)  # -1 at the next event of its pitch
    return torch.cumsum(delta.view(b, t + 1, 12), dim=1)[:, :t]


def pitch_histogram(
    events: torch.Tensor,
    *,
    window_seconds: float = HISTOGRAM_WINDOW_SECONDS,
    prior_count: float = HISTOGRAM_PRIOR_COUNT,
    steps_per_second: int = STEPS_PER_SECOND,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Seconds each pitch class sounds in the window from each event, plus a prior (B, T, 12).

    Same value as note-seq's ``PitchHistogramPerformanceControlSignal.extract`` (un-normalised);
    sums are exact integers of steps, divided once (note-seq adds floats, so values agree to
    ~1e-15).
    """
    events = _neutralise(events, mask)
    b, t = events.shape
    if t == 0:
        return torch.zeros((b, 0, 12), dtype=torch.float64, device=events.device)
    window = round(window_seconds * steps_per_second)
    clock = event_start_steps(events)
    ends = _window_ends(clock, window)
    weight = _active_pitch_classes(events) * shift_steps(events).unsqueeze(-1)
    cum = F.pad(torch.cumsum(weight, dim=1), (0, 0, 1, 0))
    steps = cum.gather(1, ends.unsqueeze(-1).expand(b, t, 12)) - cum[:, :-1]
    hist = prior_count + steps.double() / steps_per_second
    return hist.gather(1, _anchors(events).unsqueeze(-1).expand(b, t, 12))


def density_bins(
    density: torch.Tensor, bin_ranges: Sequence[float] = DENSITY_BIN_RANGES
) -> torch.Tensor:
    """note-seq's ``NoteDensityOneHotEncoding`` index: how many bin bounds are <= density."""
    bounds = torch.tensor(bin_ranges, dtype=torch.float64, device=density.device)
    return torch.bucketize(density.double().contiguous(), bounds, right=True)


def normalise_histogram(hist: torch.Tensor) -> torch.Tensor:
    """note-seq's ``PitchHistogramEncoder``: divide by the total, uniform when it is 0."""
    total = hist.sum(dim=-1, keepdim=True)
    uniform = torch.full_like(hist, 1.0 / 12)
    return torch.where(total > 0, hist / torch.where(total > 0, total, 1.0), uniform)


def held_notes(events: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """After each event, per pitch: how many notes are held, and for how many steps the newest
    of them has sounded (0 where none is held); two (B, T, 128) int32 tensors.

    Counted as note-seq's ``Performance.to_sequence`` decodes: a NOTE_ON opens a note, a NOTE_OFF
    closes the oldest open note of its pitch and is ignored when none is open (a unison is two
    open notes). Both run over the newest ``window`` events only (counting starts from nothing
    ``window`` events back), so generation computes them exactly from the newest ``window``
    events. Vectorised: with ``s`` the running sum of +1 (NOTE_ON) and -1 (NOTE_OFF) per pitch,
    counting from 0 and ignoring surplus NOTE_OFFs gives ``s[t] - min(s[t - window .. t])``; the
    newest NOTE_ON is a running maximum of positions. Time runs along the last dimension while
    counting (int32): the running minima are 4x faster so.
    """
    events = events.long()
    b, t = events.shape
    pitch = (events % 128).unsqueeze(1)
    step = torch.where(events < NOTE_OFF, 1, torch.where(events < TIME_SHIFT, -1, 0))
    delta = torch.zeros((b, 128, t), dtype=torch.int32, device=events.device)
    delta.scatter_(1, pitch, step.to(torch.int32).unsqueeze(1))
    walk = F.pad(torch.cumsum(delta, dim=-1, dtype=torch.int32), (1, 0))  # 0 before event 0
    count = walk[..., 1:] - _sliding_min(walk, window + 1)[..., 1:]
    pos = torch.arange(t, dtype=torch.int32, device=events.device).expand(b, t)
    onset = torch.full((b, 128, t), -1, dtype=torch.int32, device=events.device)
    onset.scatter_(1, pitch, torch.where(events < NOTE_OFF, pos, -1).unsqueeze(1))
    newest = torch.cummax(onset, dim=-1).values.clamp(min=0).long()
    clock = torch.cumsum(shift_steps(events), dim=1).to(torch.int32)  # steps after each event
    started = clock.unsqueeze(1).expand(b, 128, t).gather(-1, newest)
    age = torch.where(count > 0, clock.unsqueeze(1) - started, 0)
    return count.transpose(1, 2), age.transpose(1, 2)


def _sliding_min(x: torch.Tensor, width: int) -> torch.Tensor:
    """``min(x[..., max(0, i - width + 1) .. i])`` for every i of the last dimension, in O(T)
    (van Herk / Gil-Werman: running minima forward and backward within blocks of ``width``)."""
    t = x.shape[-1]
    if width >= t:
        return torch.cummin(x, dim=-1).values
    pad_right = -(t + width - 1) % width
    # the window ending at i is y[i .. i + width - 1]; the padding is above any count
    y = F.pad(x, (width - 1, pad_right), value=1 << 24)
    blocks = y.unflatten(-1, (-1, width))
    forward = torch.cummin(blocks, dim=-1).values.flatten(-2)
    backward = torch.cummin(blocks.flip(-1), dim=-1).values.flip(-1).flatten(-2)
    return torch.minimum(backward[..., :t], forward[..., width - 1 : width - 1 + t])
