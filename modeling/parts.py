"""The parts of a generated piece: what the model played and what it was given to play over.

Improv renders its backing chords as notes on :data:`CHORD_INSTRUMENT` beside the melody;
counts (the per-sample record of :mod:`modeling.generation.outputs`, the studio, the gallery) and
colours (:mod:`modeling.render`'s piano roll) tell the two apart with :func:`split_parts`. Kept
apart from :mod:`modeling.render` so that counting notes never imports matplotlib (a registered
model's requirements leave it out).
"""

from __future__ import annotations

from note_seq.protobuf import music_pb2

CHORD_INSTRUMENT = 1
"""The instrument improv's ``BasicChordRenderer`` plays backing chords on (the melody is 0)."""


def split_parts(
    ns: music_pb2.NoteSequence,
) -> tuple[list[music_pb2.NoteSequence.Note], list[music_pb2.NoteSequence.Note]]:
    """(melody notes, backing-chord notes) of a sequence; drums are left out.

    Chord notes are the ones improv renders on :data:`CHORD_INSTRUMENT` in a sequence that carries
    chord symbols; every other pitched note is melody (or simply "the notes" of a piece in one
    part), so counts and colours can tell what the model played from what it was given.
    """
    chords_present = any(
        ta.annotation_type == music_pb2.NoteSequence.TextAnnotation.CHORD_SYMBOL
        for ta in ns.text_annotations
    )
    melody, chords = [], []
    for n in ns.notes:
        if n.is_drum:
            continue
        (chords if chords_present and n.instrument == CHORD_INSTRUMENT else melody).append(n)
    return melody, chords
