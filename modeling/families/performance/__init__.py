"""Performance RNN family: note-seq performances, vectorised one-hot and control encodings.

How it connects: ``pipelines/examples.py`` calls :func:`extract` per NoteSequence (Beam DoFn) and
stores ``PerformanceOneHotEncoding(num_velocity_bins)`` indices; training feeds them to a
variant's encoding following the alignment of ``base.py``; generation builds control tensors with
:meth:`ControlledPerformance.control_from_request`, primers with :func:`primer_events`, measures
time with :func:`event_seconds` and decodes with :func:`to_note_sequence`.

Extraction follows Magenta's ``performance_pipeline`` with note-seq doing the work: optional
instrument selection by track name (POP909: ``PIANO``), sustain pedal applied, time stretch
(x0.95..1.05, training only), 30 s splits, absolute quantisation at 100 steps/s, transposition
(-3..+3, training only), note-seq ``Performance`` extraction, truncation to 512 events and
discarding of performances shorter than 32 events or with more than one program.

Index space (``PerformanceOneHotEncoding``): NOTE_ON p = p, NOTE_OFF p = 128 + p,
TIME_SHIFT s (1..100 steps of 10 ms) = 255 + s, VELOCITY b (1..bins) = 355 + b. Indices below 356
mean the same thing with or without velocity, so ``performance:v0`` is a prefix of
``performance:v32``.

Controls (note density over 3 s, pitch-class histogram over 5 s) are not stored: they are
functions of the events, computed here for whole (B, T) batches with cumulative sums and
``searchsorted`` and proven equal to note-seq's ``*PerformanceControlSignal.extract`` in tests.

Layout (the package exposes the ``Family`` protocol only; :mod:`modeling.families` says more):

* :mod:`.config`: index space, :class:`PerformanceExtractConfig`, instrument selection;
* :mod:`.extract` (note-seq path) and :mod:`.fast` (note arrays, the default): extraction rules;
* :mod:`.controls`: time, control and held-note features of event batches; :mod:`.encoding`:
  :class:`ControlledPerformance` and :class:`HeldNotes`, which every variant wraps its encoding
  in (per pitch, the notes held and for how long); :mod:`.decoding`: events -> NoteSequence,
  primers, scale masks;
"""

from __future__ import annotations

from typing import Any

from modeling.families.base import hook_attribute, refuse_non_hook

from .config import EXTRACT_CONFIG, INFO_COUNTERS, NAME, event_space
from .decoding import to_note_sequence
from .extract import extract
from .variants import VARIANTS


def __getattr__(name: str) -> Any:
    """The training, evaluation and generation hooks, imported on first use."""
    refuse_non_hook(__name__, name)
    from . import evaluation, generation, training

    return hook_attribute(globals(), name, (training, evaluation, generation))
