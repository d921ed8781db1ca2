"""Polyphony RNN family: Magenta's polyphonic event language, re-written on note-seq.

How it connects: ``pipelines/examples.py`` calls :func:`extract` on every NoteSequence of the
split (Beam DoFn) and stores the resulting event indices (``EXAMPLE_SCHEMA.events``);
training turns them into tensors with the variant's encoding (Magenta's one-hot over 259
classes wrapped in :class:`~.encoding.StepContext`, which adds the last step's pitches, the step
so far and the recent pitch classes as inputs); generation uses the primer helpers
(:func:`primer_from_pitches`, :func:`prepare_primer`, :class:`PolyphonyPrimer`), the class masks
(:func:`scale_mask`) and :func:`to_note_sequence` to turn sampled classes back into music.

The rules follow Magenta's ``polyphony_lib`` / ``polyphony_rnn_pipeline`` (not part of note-seq,
so written here from their specification): split on tempo / time-signature changes, quantise at
4 steps per quarter, transpose -4..+4 (training split only here; Magenta also augmented eval),
then one sequence per piece::

    START, then for every step: CONTINUED_NOTE(p) for notes sounding since an earlier step and
    NEW_NOTE(p) for notes starting now, sorted by pitch descending (CONTINUED before NEW on equal
    pitch), then STEP_END; finally END.

A piece with more than one MIDI program is discarded, as are pieces shorter than ``min_steps`` or
longer than ``max_steps`` steps (Magenta discards long pieces rather than truncating them).
Stored indices are Magenta's ``PolyphonyOneHotEncoding``: 0 START, 1 END, 2 STEP_END,
3 + p NEW_NOTE(p), 131 + p CONTINUED_NOTE(p).

Layout (the package exposes the ``Family`` protocol only; :mod:`modeling.families` says more):

* :mod:`.extract`: the event language, :class:`PolyphonyExtractConfig` and :func:`extract`;
* :mod:`.encoding`: :class:`~.encoding.StepContext`, the variant's encoding;
* :mod:`.decoding`: events -> NoteSequence; :mod:`.primers`: primers and scale masks;
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
