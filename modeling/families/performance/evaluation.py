"""Evaluation hooks of the ``Family`` protocol: decoding for statistics, uniform baselines,
request columns and controls.

Loaded on first use through the package (``__getattr__``), never by a Beam worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from modeling.families.base import event_decoder, hook_exports, lazy_import
from modeling.families.performance.config import STEPS_PER_SECOND, num_classes
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
"""No note longer than the data's longest; control requests met (density, histogram)."""
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


__all__ = hook_exports(globals(), "velocity_bins")
