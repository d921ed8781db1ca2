"""Improv family: Magenta's Improv RNN (melody conditioned on a chord progression).

How it connects:

* ``pipelines/examples.py`` calls :func:`extract` per NoteSequence: lead-sheet fragments (a
  melody plus the chords under it) become ``EXAMPLE_SCHEMA`` rows whose ``events`` are
  ``MelodyOneHotEncoding(48, 84)`` indices and whose ``chord_root`` / ``chord_bass`` /
  ``chord_quality`` / ``chord_pitches`` columns hold the chord at every step (see :mod:`modeling.families.chords`).
  With ``augment`` (training split) each fragment comes in all 12 transpositions, like Magenta's
  ``LeadSheetExtractor(all_transpositions=True)``; the eval split keeps only the original key.
* Training and generation use the :data:`VARIANTS` encodings, which are
  note-seq's ``ConditionalEventSequenceEncoderDecoder(control, target)`` restated in torch: the
  input at row t is ``control(chord[t + 1]) ++ target(melody[: t + 1])`` (so conditioning must be
  one step longer than the events), labels and ``decode_label`` are the target's.

Extraction reuses the melody family's steps (time-change split, quantise, melody extraction) and
then mirrors Magenta's ``extract_lead_sheet_fragments``: chords under each melody through note-seq's
``ChordProgression.from_quantized_sequence``, ``LeadSheet.transpose`` / ``LeadSheet.squash``.
Sources without chord symbols (Bach chorales, EDM, POP909 MIDI) get chords from note-seq's
``chord_inference.infer_chords_for_sequence`` (``infer_chords``: auto / always / never), in the
faster, identical restatement ``chords.infer_chords``. Given chord symbols that note-seq's parser
refuses (ABC spellings such as ``D/f+``) are respelled by ``chords.respell_chord_symbols``.

Layout (the package exposes the ``Family`` protocol only; :mod:`modeling.families` says more):

* :mod:`.extract`: :class:`ImprovExtractConfig` and the lead-sheet extraction rules;
* :mod:`.encoding`: the chord-conditioned encodings; :mod:`.decoding`: events -> lead sheet;
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
