"""Chord-symbol helpers shared by the improv family (extraction, encodings, decoding).

Chord inference for chordless sources goes through :func:`infer_chords`: note-seq's
``infer_chords_for_sequence`` restated with array operations (constant model built once, a
Viterbi that exploits the transition matrix's structure), identical output, ~20-100x faster.

Given chord symbols note-seq's parser refuses (ABC spellings such as ``G/b``, ``D/f+``, ``Gd``)
are respelled by :func:`respell_chord_symbols` before extraction, which counts each rescue.

Lead sheets store their chords beside the melody as four per-step integer columns
(``pipelines.schema.CHORD_COLUMNS``): ``chord_root`` and ``chord_bass`` (pitch class 0..11),
``chord_quality`` (0 major, 1 minor, 2 augmented, 3 diminished, 4 other) and ``chord_pitches``
(12-bit pitch-class mask). "No chord" (``N.C.``) is -1 / -1 / -1 / 0. Every value comes from
note-seq's ``chord_symbols_lib`` so that the encodings in the improv family see exactly what
note-seq's ``TriadChordOneHotEncoding`` / ``PitchChordsEncoderDecoder`` would see.

``columns_to_figures`` goes the other way (generation output, the improv family's ``to_note_sequence``): it
names each chord with a figure whose parsed columns equal the stored ones, so a generated lead
sheet can be written as CHORD_SYMBOL annotations and rendered by note-seq.

Layout (this package re-exports every public name): :mod:`.columns` (figures <-> columns),
:mod:`.respell` (ABC spellings), :mod:`.inference` (chord inference).
"""

from __future__ import annotations

from modeling.families.chords.columns import (
    CHORD_SYMBOL,
    COLUMN_DTYPES,
    NO_CHORD,
    NO_CHORD_COLUMNS,
    QUALITY_AUGMENTED,
    QUALITY_DIMINISHED,
    QUALITY_MAJOR,
    QUALITY_MINOR,
    QUALITY_NAMES,
    QUALITY_OTHER,
    ChordColumnError,
    chord_columns,
    columns_figure,
    columns_to_figures,
    figure_columns,
    pitch_mask_to_classes,
)
from modeling.families.chords.inference import (
    InferenceModel,
    infer_chords,
    inference_model,
    key_chord_viterbi,
    note_pitch_vectors,
    transition_matrix,
)
from modeling.families.chords.respell import (
    RESPELLED_ABC,
    RESPELLED_MUSIC21,
    music21_figure,
    respell_chord_symbols,
    respell_figure,
)
