"""Melody family: Magenta's Melody RNN (basic, mono, lookback, attention) plus an EDM variant.

How it connects:

* ``pipelines/examples.py`` calls :func:`extract` on every NoteSequence of the train/eval split and
  writes each :class:`~modeling.families.base.Extracted` as an ``EXAMPLE_SCHEMA`` row (events are
  ``MelodyOneHotEncoding(min_note, max_note)`` indices, ``event_space`` from :func:`event_space`)
  and counts every :class:`~modeling.families.base.Dropped` under its reason.
* Training and generation take an encoding from :data:`VARIANTS` and use
  its vectorised ``inputs`` / ``labels`` / ``decode_label`` (alignment rules in ``base.py``).
  Generation also uses :func:`melody_events_to_indices` (Magenta-style primers),
  :func:`class_pitches` (scale masks) and :func:`to_note_sequence` (MIDI output).
* ``modeling/families/improv`` reuses the splitting/quantising/melody-extraction steps and the
  melody encodings as the target half of its chord-conditioned encodings.

Extraction follows Magenta's melody pipeline with note-seq's own code: split on time-signature /
tempo changes, quantise at 4 steps per quarter, extract melodies per instrument with
``melodies_lib.Melody.from_quantized_sequence`` (Magenta's ``extract_melodies`` loop, which lives in
the TensorFlow-bound ``magenta`` package, is re-stated here), then ``Melody.squash`` into the pitch
range and key. Unlike Magenta, ``ignore_polyphonic_notes`` defaults to True (keep the highest
note of a chord) so that polyphonic tracks yield melodies instead of being thrown away.

Encodings are torch re-statements of note-seq's ``OneHotEventSequenceEncoderDecoder``,
``LookbackEventSequenceEncoderDecoder`` and ``KeyMelodyEncoderDecoder``; note-seq's KeyMelody is
O(T^2) Python per sequence, ours is cumulative ops over (B, T). Element-wise parity with note-seq is
proven in ``tests/test_melody_family.py`` and ``tests/test_corpus_melody_parity.py``.

Layout (the package exposes the ``Family`` protocol only; :mod:`modeling.families` says more):

* :mod:`.extract`: index space, :class:`MelodyExtractConfig` and the extraction rules;
* :mod:`.encoding`: the torch encodings; :mod:`.decoding`: events -> NoteSequence;
"""

from __future__ import annotations

from typing import Any

from modeling.families.base import hook_attribute, refuse_non_hook

from .decoding import to_note_sequence
from .extract import EXTRACT_CONFIG, INFO_COUNTERS, NAME, event_space, extract
from .variants import VARIANTS


def __getattr__(name: str) -> Any:
    """The training, evaluation and generation hooks, imported on first use."""
    refuse_non_hook(__name__, name)
    from . import evaluation, generation, training

    return hook_attribute(globals(), name, (training, evaluation, generation))
