"""ABC chord spellings note-seq's parser refuses, respelled before extraction (each rescue
counted under :data:`RESPELLED_ABC` or :data:`RESPELLED_MUSIC21`).
"""

from __future__ import annotations

import functools
import re

from note_seq import chord_symbols_lib
from note_seq.protobuf import music_pb2

from modeling.chord_spelling import abc_figure
from modeling.families.chords.columns import (
    CHORD_SYMBOL,
    NO_CHORD,
    QUALITY_NAMES,
    columns_figure,
    figure_columns,
)

RESPELLED_ABC = "chord_symbols_respelled"
"""Counter: chord symbols note-seq refuses, rewritten from ABC / Nottingham spelling."""
RESPELLED_MUSIC21 = "chord_symbols_music21"
"""Counter: chord symbols note-seq refuses, named from music21's reading of them."""


def _note_seq_accepts(figure: str) -> bool:
    """Whether extraction can use ``figure``: note-seq parses and transposes it."""
    try:
        figure_columns(figure)
        chord_symbols_lib.transpose_chord_symbol(figure, 1)
    except chord_symbols_lib.ChordSymbolError:
        return False
    return True


def music21_figure(figure: str) -> str | None:
    """A note-seq figure with the root, bass and pitch classes music21's ``ChordSymbol`` reads
    in ``figure`` (kinds such as ``E7sus4`` or ``Aø7`` that note-seq's parser lacks), or None."""
    from music21 import harmony

    # music21 spells flats "-"; a "b" right after a note letter is a flat, as for note-seq.
    spelled = re.sub(r"(^|/)([A-G])b", r"\1\2-", figure)
    try:
        symbol = harmony.ChordSymbol(spelled)
        pitches = {p.pitchClass for p in symbol.pitches}
        root, bass = symbol.root().pitchClass, symbol.bass().pitchClass
    except Exception:  # music21 raises several kinds for text that is no chord (D.C., Fine)
        return None
    if isinstance(symbol, harmony.NoChord) or not pitches:
        return None
    mask = sum(1 << pc for pc in pitches)
    for want in (mask, mask & ~(1 << bass)):  # music21 adds a foreign bass to the pitches
        for quality in range(len(QUALITY_NAMES)):
            candidate = columns_figure(root, bass, quality, want)
            if not _note_seq_accepts(candidate):
                continue
            got_root, got_bass, _, got_mask = figure_columns(candidate)
            if (got_root, got_bass, got_mask) == (root, bass, want):
                return candidate
    return None


@functools.lru_cache(maxsize=4096)
def respell_figure(figure: str) -> tuple[str, str | None]:
    """(figure extraction can use, counter naming how it was obtained or None if unchanged).

    Figures note-seq accepts are returned as they are, so sources without such spellings give
    byte-identical examples. Others are rewritten from ABC spelling first (music21 misreads
    "D/f+" as D augmented over F), then named from music21's parse; a figure neither rescues
    (text such as "D.C.") is returned unchanged and still counts as ``chord_symbol_exception``.
    """
    if figure == NO_CHORD or _note_seq_accepts(figure):
        return figure, None
    abc = abc_figure(figure)
    if abc is not None and _note_seq_accepts(abc):
        return abc, RESPELLED_ABC
    named = music21_figure(figure)
    if named is not None:
        return named, RESPELLED_MUSIC21
    return figure, None


def respell_chord_symbols(
    ns: music_pb2.NoteSequence,
) -> tuple[music_pb2.NoteSequence, dict[str, int]]:
    """``ns`` with every chord symbol note-seq refuses respelled where possible (a copy, only
    if one changed), and how many annotations each way rescued."""
    found = [
        (i, respell_figure(ta.text))
        for i, ta in enumerate(ns.text_annotations)
        if ta.annotation_type == CHORD_SYMBOL
    ]
    changed = [(i, figure, how) for i, (figure, how) in found if how is not None]
    if not changed:
        return ns, {}
    out = music_pb2.NoteSequence()
    out.CopyFrom(ns)
    counts: dict[str, int] = {}
    for i, figure, how in changed:
        out.text_annotations[i].text = figure
        counts[how] = counts.get(how, 0) + 1
    return out, counts
