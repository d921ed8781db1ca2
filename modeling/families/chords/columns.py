"""Chord columns: figure -> the four stored per-step integer columns, and back to a figure
whose parsed columns are equal (see the package docstring).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping, Sequence

import numpy as np
from note_seq import chord_symbols_lib, constants
from note_seq.protobuf import music_pb2

from modeling.music import PITCH_CLASS_NAMES

NO_CHORD: str = constants.NO_CHORD
CHORD_SYMBOL = music_pb2.NoteSequence.TextAnnotation.CHORD_SYMBOL

QUALITY_MAJOR = chord_symbols_lib.CHORD_QUALITY_MAJOR
QUALITY_MINOR = chord_symbols_lib.CHORD_QUALITY_MINOR
QUALITY_AUGMENTED = chord_symbols_lib.CHORD_QUALITY_AUGMENTED
QUALITY_DIMINISHED = chord_symbols_lib.CHORD_QUALITY_DIMINISHED
QUALITY_OTHER = chord_symbols_lib.CHORD_QUALITY_OTHER
QUALITY_NAMES = ("major", "minor", "augmented", "diminished", "other")

COLUMN_DTYPES: dict[str, type] = {
    "chord_root": np.int8,
    "chord_bass": np.int8,
    "chord_quality": np.int8,
    "chord_pitches": np.int16,
}
NO_CHORD_COLUMNS = (-1, -1, -1, 0)

# Root spellings used when naming chords from columns (note-seq's own triad decoder spelling).
_PITCH_CLASS_NAMES = PITCH_CLASS_NAMES
# Chord kinds note-seq's chord_symbols_lib understands, most common first, so that the name
# chosen for a pitch set is the plainest one that reproduces it.
_KIND_ABBREVIATIONS = (
    "",
    "m",
    "7",
    "m7",
    "maj7",
    "dim",
    "aug",
    "dim7",
    "m7b5",
    "6",
    "m6",
    "9",
    "m9",
    "maj9",
    "sus",
    "sus2",
    "7sus",
    "5",
    "mmaj7",
    "aug7",
    "aug9",
    "6/9",
    "11",
    "m11",
    "maj11",
    "13",
    "m13",
    "maj13",
    "ped",
)


class ChordColumnError(ValueError):
    """A chord symbol note-seq cannot interpret (the message names it and its position)."""


@functools.lru_cache(maxsize=4096)
def figure_columns(figure: str) -> tuple[int, int, int, int]:
    """(root, bass, quality, pitch mask) of one chord figure, via note-seq's chord_symbols_lib.

    Cached because a lead sheet repeats its figure at every step. ``chord_symbol_quality``
    returns None for altered triads such as ``C(b5)``; those count as "other" (4), like
    note-seq's triad encoder, which refuses them too.
    """
    if figure == NO_CHORD:
        return NO_CHORD_COLUMNS
    root = chord_symbols_lib.chord_symbol_root(figure)
    bass = chord_symbols_lib.chord_symbol_bass(figure)
    quality = chord_symbols_lib.chord_symbol_quality(figure)
    if quality is None:
        quality = QUALITY_OTHER
    mask = 0
    for pc in chord_symbols_lib.chord_symbol_pitches(figure):
        mask |= 1 << int(pc)
    return int(root), int(bass), int(quality), mask


def chord_columns(figures: Sequence[str]) -> dict[str, np.ndarray]:
    """Per-step chord columns for a list of figures (one per melody step).

    Raises ChordColumnError (a ValueError) naming the first symbol note-seq cannot parse and
    its position, so that a bad primer or a bad source file is reported in one line.
    """
    distinct = list(dict.fromkeys(figures))  # a lead sheet holds few chords over many steps
    table = np.empty((len(distinct), 4), dtype=np.int64)
    for j, figure in enumerate(distinct):
        try:
            table[j] = figure_columns(figure)
        except chord_symbols_lib.ChordSymbolError as err:
            i = list(figures).index(figure)
            raise ChordColumnError(f"bad chord symbol {figure!r} at position {i}: {err}") from None
    code = {figure: j for j, figure in enumerate(distinct)}
    rows = table[np.fromiter(map(code.__getitem__, figures), np.int64, len(figures))]
    return {name: rows[:, j].astype(dtype) for j, (name, dtype) in enumerate(COLUMN_DTYPES.items())}


def pitch_mask_to_classes(mask: int) -> list[int]:
    """Pitch classes set in a 12-bit mask, ascending."""
    return [pc for pc in range(12) if (int(mask) >> pc) & 1]


# Degree modifications tried (alone and in pairs) on top of the named kinds.
_MODIFICATIONS = (
    "(b5)",
    "(#5)",
    "(b9)",
    "(#9)",
    "(add9)",
    "(#11)",
    "(add11)",
    "(b13)",
    "(add13)",
    "(add2)",
    "(add4)",
    "(add6)",
    "(add7)",
    "(addb7)",
    "(no3)",
    "(no5)",
)


def _rotate(mask: int, k: int) -> int:
    """Pitch-class mask transposed up by k semitones."""
    k %= 12
    return ((mask << k) | (mask >> (12 - k))) & 0xFFF if k else mask


@functools.lru_cache(maxsize=1)
def _kind_table() -> dict[tuple[int, int], str]:
    """(quality, mask relative to root C) -> the plainest C-rooted figure note-seq parses to it.

    Built once from note-seq's own parser over its named kinds plus up to two degree
    modifications, in order of plainness, so the first figure found for a pitch set wins.
    """
    table: dict[tuple[int, int], str] = {}
    mods = ["", *_MODIFICATIONS]
    mods += [a + b for i, a in enumerate(_MODIFICATIONS) for b in _MODIFICATIONS[i + 1 :]]
    for mod in mods:
        for kind in _KIND_ABBREVIATIONS:
            figure = "C" + kind + mod
            try:
                _, _, quality, mask = figure_columns(figure)
            except chord_symbols_lib.ChordSymbolError:
                continue
            table.setdefault((quality, mask), kind + mod)
    return table


@functools.lru_cache(maxsize=4096)
def columns_figure(root: int, bass: int, quality: int, mask: int) -> str:
    """A figure whose ``figure_columns`` equal (root, bass, quality, mask) where one is known.

    Looks the root-relative pitch set up in :func:`_kind_table` (plus ``/bass`` for slash
    chords), then tries note-seq's ``pitches_to_chord_symbol``; if neither reproduces the columns
    exactly, falls back to the root's triad of that quality (or the bare root) so that
    generation output always carries a readable, parseable chord.
    """
    if root < 0 or quality < 0:
        return NO_CHORD
    bass = root if bass < 0 else bass
    slash = "" if bass == root else "/" + _PITCH_CLASS_NAMES[bass]
    target = (root, bass, quality, mask)
    candidates = []
    kind = _kind_table().get((quality, _rotate(mask, -root)))
    if kind is not None:
        candidates.append(_PITCH_CLASS_NAMES[root] + kind + slash)
    pitches = pitch_mask_to_classes(mask)
    if pitches:
        with contextlib.suppress(chord_symbols_lib.ChordSymbolError):
            candidates.append(
                chord_symbols_lib.pitches_to_chord_symbol([36 + bass] + [48 + pc for pc in pitches])
            )
    for figure in candidates:
        try:
            if figure_columns(figure) == target:
                return figure
        except chord_symbols_lib.ChordSymbolError:
            continue
    triad = ("", "m", "aug", "dim")[quality] if quality < QUALITY_OTHER else ""
    return _PITCH_CLASS_NAMES[root] + triad + slash


def columns_to_figures(cols: Mapping[str, np.ndarray]) -> list[str]:
    """One figure per step from stored chord columns (inverse of ``chord_columns``)."""
    missing = [c for c in COLUMN_DTYPES if c not in cols]
    if missing:
        raise ValueError(f"chord columns missing: {', '.join(missing)}")
    arrays = [np.asarray(cols[c]).astype(np.int64) for c in COLUMN_DTYPES]
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 1:
        raise ValueError("chord columns must be 1-D arrays of one length")
    rows = zip(*arrays, strict=True)
    return [columns_figure(int(r), int(b), int(q), int(m)) for r, b, q, m in rows]
