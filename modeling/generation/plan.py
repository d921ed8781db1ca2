"""The :class:`Plan` a family builds for a request, the :class:`Sample` the engine returns, and
the small helpers several families' plans share.

Each family module's ``generation_plan(model, req)`` (see :class:`modeling.families.base.Family`)
returns a :class:`Plan`; :class:`modeling.generation.engine.Engine` runs it. Nothing here knows a
family by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from note_seq.protobuf import music_pb2

from modeling import first_line
from modeling.music import PITCH_CLASS_NAMES

from .errors import GenerateError
from .units import STEPS_PER_QUARTER

DEFAULT_BACKING_CHORDS = "C G Am F C G F C"  # improv_rnn_generate's default progression


@dataclass
class Plan:
    """Everything the engine needs for one request, built by a family's ``generation_plan``.

    ``primer`` holds the stored events fed before sampling (never empty). A row stops when the
    units of its events reach ``target_units`` (events for melodies, STEP_ENDs for polyphony,
    10 ms clock steps for performance). Conditioning is a lookup table (1, N, ...) per name:
    indexed by event position (``cond_by="position"``: improv chords, N >= max_events + 1) or
    by the units elapsed before the position (``cond_by="units"``: performance controls, which
    follow the clock; N = target_units + 1, later clocks read the last entry).
    ``class_mask`` is True for allowed classes; ``dynamic_classes`` are classes whose meaning
    depends on the history (lookback repeats), checked with ``event_allowed`` after decoding when
    a scale is set. ``injector`` returns events a row must take next (polyphony primer
    injection). ``finish`` decodes one row (and whether it reached the length) to a NoteSequence.
    ``metered``: the piece has a tempo (its record carries the qpm).
    """

    family: str
    primer: np.ndarray
    target_units: int
    unit_fn: Callable[[torch.Tensor], torch.Tensor]
    max_events: int
    finish: Callable[[np.ndarray, bool], music_pb2.NoteSequence]
    primer_seconds: float
    info: dict[str, Any]
    cond: dict[str, torch.Tensor] = field(default_factory=dict)
    cond_by: str = "position"
    class_mask: torch.Tensor | None = None
    dynamic_classes: tuple[int, ...] = ()
    event_allowed: Callable[[torch.Tensor], torch.Tensor] | None = None
    injector: Callable[[np.ndarray], np.ndarray] | None = None
    fixed_length: bool = False
    metered: bool = True


@dataclass
class Sample:
    """One finished output row."""

    events: np.ndarray
    log_likelihood: float
    num_sampled: int
    num_forced: int
    reached_length: bool


def seconds_per_step(qpm: float) -> float:
    """Seconds of one 16th-note step at ``qpm``."""
    return 60.0 / qpm / STEPS_PER_QUARTER


def quantized(ns: music_pb2.NoteSequence, flag: str) -> music_pb2.NoteSequence:
    """``ns`` quantised to 16th notes; note-seq's quantisation errors become one line."""
    from note_seq import sequences_lib

    try:
        return sequences_lib.quantize_note_sequence(ns, STEPS_PER_QUARTER)
    except Exception as exc:  # note-seq raises several quantisation errors
        first = first_line(exc)
        raise GenerateError(
            flag, f"cannot quantise the primer ({type(exc).__name__}: {first})", topic=flag
        ) from None


def pitch_name(pitch: int) -> str:
    """MIDI pitch -> ``C4`` (60), the note names the Studio and pretty_midi use."""
    return f"{PITCH_CLASS_NAMES[pitch % 12]}{pitch // 12 - 1}"


def key_transposition(values: list[int], lo: int, hi: int) -> int:
    """Magenta's melody key normalisation: the shift ``Melody.squash`` makes towards C major,
    or the octave alternative, whichever keeps every primer note in [lo, hi) without folding
    (0 if neither does), so the primer comes back exactly after transposing the output back."""
    from note_seq import melodies_lib

    if not any(v >= 0 for v in values):
        return 0
    amount = int(melodies_lib.Melody(list(values)).squash(lo, hi, 0))
    pitches = [v for v in values if v >= 0]
    for cand in (amount, amount - 12, amount + 12):
        if all(lo <= p + cand < hi for p in pitches):
            return cand
    return 0
