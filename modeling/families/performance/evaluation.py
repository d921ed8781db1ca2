"""Evaluation hooks of the ``Family`` protocol: decoding for statistics, uniform baselines,
request columns and controls.

Loaded on first use through the package (``__getattr__``), never by a Beam worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from modeling.families.base import event_decoder, hook_exports, lazy_import
from modeling.families.performance.config import (
    MAX_NOTE_DURATION_SECONDS,
    NOTE_OFF,
    STEPS_PER_SECOND,
    TIME_SHIFT,
    VELOCITY,
    num_classes,
)
from modeling.families.performance.controls import shift_steps
from modeling.families.performance.decoding import to_note_sequence
from modeling.families.performance.encoding import controls_of

if TYPE_CHECKING:
    import torch
else:
    torch = lazy_import("torch", globals())


STATS_OPTIONS: Mapping[str, bool] = {"metered": False, "polyphonic": False}  # free time, no bars
EVAL_LENGTH = ("performance_seconds", "num_seconds")
QUALITY_CRITERIA: frozenset[str] = frozenset({"longest_note", "control_requests"})
"""No note longer than the data's longest (:func:`longest_note_seconds`, both splits); control
requests met (density, histogram)."""
REQUEST_COLUMNS: Mapping[str, str] = {"primer_pitches": "string"}
EXAMPLE_REQUEST: Mapping[str, Any] = {"primer_pitches": "[60, 64, 67]", "num_seconds": 2.0}


def velocity_bins(event_space: str) -> int:
    """Velocity bins of a ``performance:v<bins>`` event space (0: no dynamics)."""
    return int(event_space.rsplit("v", 1)[1])


def _decode_keywords(event_space: str, qpm: float) -> Mapping[str, Any]:
    """Stored events in real time (``qpm`` does not apply to a performance)."""
    return {"num_velocity_bins": velocity_bins(event_space)}


decode_events = event_decoder(to_note_sequence, _decode_keywords)


def vocabulary_size(event_space: str) -> int:
    """Stored-event classes of ``event_space``: the perplexity of a uniform model over them."""
    return num_classes(velocity_bins(event_space))


def uniform_events(
    event_space: str, rng: np.random.Generator, *, steps: int = 0, seconds: float = 0.0
) -> np.ndarray:
    """Uniform events until the clock reaches ``seconds``, the last time shift shortened to land
    on it (as generation's cut)."""
    n = vocabulary_size(event_space)
    target = round(seconds * STEPS_PER_SECOND)
    parts, clock = [], 0
    while clock < target:
        chunk = rng.integers(0, n, 4096)
        parts.append(chunk)
        clock += int(shift_steps(torch.as_tensor(chunk)[None]).sum())
    events = np.concatenate(parts)
    cum = np.cumsum(shift_steps(torch.as_tensor(events)[None])[0].numpy())
    k = int(np.argmax(cum >= target))
    events = events[: k + 1].copy()
    events[k] -= int(cum[k] - target)
    return events


def generated_span(plan: Any, seconds_per_step: float) -> tuple[float, float]:
    """(begin, end) seconds of a plan's music: the primer is skipped (Magenta's default primer
    is a second of silence); ``seconds_per_step`` does not apply (time shifts carry time)."""
    begin = int(shift_steps(torch.as_tensor(plan.primer)[None]).sum()) / STEPS_PER_SECOND
    return begin, float(plan.target_units) / STEPS_PER_SECOND


def eval_primer(notes: Any) -> Mapping[str, Any] | None:
    """The eval example's opening chord (notes starting within 50 ms of the first) as
    ``primer_pitches``: the models train on transposed performances and evaluate against
    untransposed ones, so an unprimed sample's key is not the data's; primed with the data's
    first chord it is (as for polyphony)."""
    from modeling.families.polyphony.evaluation import opening_chord

    return opening_chord(notes, within=0.05)


def longest_note_seconds(events: np.ndarray, offsets: np.ndarray) -> float:
    """The longest note of a flat split's examples (``offsets``: each example's first event), as
    note-seq's ``Performance.to_sequence`` decodes them, in one vectorised pass.

    The quality bar's "no note longer than the data's" reads both splits: on the default
    chorales the eval split's longest note is 2.0 s, but the train split the models learn from
    holds 3,682 notes over 2.0 s (up to 3.15 s) among 2.4 million, so a model that reproduced
    its training data exactly would fail a bar taken from the eval split alone.

    Per (example, pitch), in event order: a NOTE_OFF closes the oldest open note and is ignored
    when none is open (it would set a new minimum of the running +1/-1 count), so the k-th
    effective NOTE_OFF closes the k-th NOTE_ON; notes still open end with their example; every
    note is capped at ``MAX_NOTE_DURATION_SECONDS``.
    """
    ev = np.asarray(events, np.int64)
    bounds = np.asarray(offsets, np.int64)
    if ev.size == 0:
        return 0.0
    example = np.repeat(np.arange(len(bounds) - 1), np.diff(bounds))
    shift = np.where((ev >= TIME_SHIFT) & (ev < VELOCITY), ev - (TIME_SHIFT - 1), 0)
    after = np.cumsum(shift)
    clock = after - shift  # steps before each event (differences within an example only)
    end_clock = after[bounds[1:] - 1]  # each example's last step
    idx = np.flatnonzero(ev < TIME_SHIFT)
    key = example[idx] * 128 + ev[idx] % 128
    order = np.argsort(key, kind="stable")  # by (example, pitch), in event order within
    idx, key = idx[order], key[order]
    step = np.where(ev[idx] < NOTE_OFF, 1, -1)
    first = np.r_[True, key[1:] != key[:-1]]
    group = np.cumsum(first) - 1
    walk = np.cumsum(step)
    walk -= (walk - step)[first][group]  # the running count of each group, from 0
    big = len(walk) + 1  # groups stacked downwards (|count| < size): minima restart per group
    low = np.minimum(np.minimum.accumulate(walk - big * group) + big * group, 0)
    low_before = np.where(first, 0, np.r_[0, low[:-1]])
    is_on = step > 0
    closes = ~is_on & (walk >= low_before)  # not a new minimum: an open note to close
    on_pos = np.flatnonzero(is_on)
    on_start = np.searchsorted(group[on_pos], np.arange(group[-1] + 1))  # first ON of a group
    rank = np.cumsum(closes) - 1
    rank -= np.r_[0, np.cumsum(closes)][np.flatnonzero(first)][group]  # rank within the group
    close_pos = np.flatnonzero(closes)
    opened = on_pos[on_start[group[close_pos]] + rank[close_pos]]
    closed = clock[idx[close_pos]] - clock[idx[opened]]
    still_open = np.ones(len(on_pos), bool)
    still_open[on_start[group[close_pos]] + rank[close_pos]] = False
    hanging = on_pos[still_open]
    ends = end_clock[example[idx[hanging]]] - clock[idx[hanging]]
    longest = max(int(closed.max(initial=0)), int(ends.max(initial=0)))
    return min(longest / STEPS_PER_SECOND, MAX_NOTE_DURATION_SECONDS)


def request_controls(encoding: Any) -> tuple[str, ...]:
    """Control request fields ``encoding`` is conditioned on (density and/or histogram)."""
    controlled = controls_of(encoding)
    if controlled is None:
        return ()
    return tuple(
        name
        for name, on in (
            ("notes_per_second", controlled.density),
            ("pitch_class_histogram", controlled.histogram),
        )
        if on
    )


__all__ = hook_exports(globals(), "velocity_bins", "longest_note_seconds")
