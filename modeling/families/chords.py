"""Chord-symbol helpers shared by the improv family (extraction, encodings, decoding).

Chord inference for chordless sources goes through :func:`infer_chords`, note-seq's
``infer_chords_for_sequence`` with its constant key-chord transition matrix memoised (see there).

Lead sheets store their chords beside the melody as four per-step integer columns
(``pipelines.schema.CHORD_COLUMNS``): ``chord_root`` and ``chord_bass`` (pitch class 0..11),
``chord_quality`` (0 major, 1 minor, 2 augmented, 3 diminished, 4 other) and ``chord_pitches``
(12-bit pitch-class mask). "No chord" (``N.C.``) is -1 / -1 / -1 / 0. Every value comes from
note-seq's ``chord_symbols_lib`` so that the encodings in ``improv.py`` see exactly what
note-seq's ``TriadChordOneHotEncoding`` / ``PitchChordsEncoderDecoder`` would see.

``columns_to_figures`` goes the other way (generation output, ``improv.to_note_sequence``): it
names each chord with a figure whose parsed columns equal the stored ones, so a generated lead
sheet can be written as CHORD_SYMBOL annotations and rendered by note-seq.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import threading
from collections.abc import Mapping, Sequence

import numpy as np
from note_seq import chord_inference, chord_symbols_lib, constants
from note_seq.protobuf import music_pb2

NO_CHORD: str = constants.NO_CHORD

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
_PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Chord kinds note-seq's chord_symbols_lib understands, most common first, so that the name
# chosen for a pitch set is the plainest one that reproduces it.
_KIND_ABBREVIATIONS = (
    "", "m", "7", "m7", "maj7", "dim", "aug", "dim7", "m7b5", "6", "m6", "9", "m9", "maj9",
    "sus", "sus2", "7sus", "5", "mmaj7", "aug7", "aug9", "6/9", "11", "m11", "maj11", "13",
    "m13", "maj13", "ped",
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
    return {
        name: rows[:, j].astype(dtype) for j, (name, dtype) in enumerate(COLUMN_DTYPES.items())
    }


def pitch_mask_to_classes(mask: int) -> list[int]:
    """Pitch classes set in a 12-bit mask, ascending."""
    return [pc for pc in range(12) if (int(mask) >> pc) & 1]


# Degree modifications tried (alone and in pairs) on top of the named kinds.
_MODIFICATIONS = (
    "(b5)", "(#5)", "(b9)", "(#9)", "(add9)", "(#11)", "(add11)", "(b13)", "(add13)",
    "(add2)", "(add4)", "(add6)", "(add7)", "(addb7)", "(no3)", "(no5)",
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
    mods += [a + b for i, a in enumerate(_MODIFICATIONS) for b in _MODIFICATIONS[i + 1:]]
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
            candidates.append(chord_symbols_lib.pitches_to_chord_symbol(
                [36 + bass] + [48 + pc for pc in pitches]))
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


# --------------------------------------------------------------------------------------------
# Chord inference
# --------------------------------------------------------------------------------------------

_TRANSITION_CACHE: dict[tuple[bytes, float, float], np.ndarray] = {}
_TRANSITION_LOCK = threading.Lock()
_original_transition = chord_inference._key_chord_transition_distribution


def transition_matrix(key_chord_distribution: np.ndarray, key_change_prob: float,
                      chord_change_prob: float) -> np.ndarray:
    """note-seq's ``_key_chord_transition_distribution`` as array operations (same products in
    the same order: bit-identical, see tests/test_improv_family.py), 100x faster than its
    Python double loop over 1164 x 1164 key-chord pairs."""
    num_chords = len(chord_inference._CHORDS)
    n = len(chord_inference._KEY_CHORDS)  # itertools.product(keys, chords): key-major order
    key, chord = np.divmod(np.arange(n), num_chords)
    dist = np.asarray(key_chord_distribution, dtype=np.float64)
    to = dist[key, chord][None, :]  # P(key_2, chord_2), for every row
    from_prev = dist[key[None, :], chord[:, None]]  # P(key_2, chord_1)
    changed = (1 - key_change_prob) * (
        chord_change_prob * (to + from_prev / (num_chords - 1))
    )
    same_key = key[:, None] == key[None, :]
    same_chord = chord[:, None] == chord[None, :]
    kept = np.float64(1 - key_change_prob) * np.float64(1 - chord_change_prob)
    return np.where(
        same_key,
        np.where(same_chord, kept, changed),
        np.float64(key_change_prob / 11) * to,
    )


def _cached_transition(key_chord_distribution: np.ndarray, key_change_prob: float,
                       chord_change_prob: float) -> np.ndarray:
    """note-seq's transition matrix, computed once per distinct argument set.

    note-seq rebuilds this 588 x 588 matrix in a Python double loop on every call (about 1.3 s,
    85% of inference time on a 15 s EDM loop), though it depends only on constant arguments.
    The cached array is returned read-only; note-seq only takes its log.
    """
    digest = hashlib.sha1(np.ascontiguousarray(key_chord_distribution).tobytes()).digest()
    key = (digest, float(key_change_prob), float(chord_change_prob))
    with _TRANSITION_LOCK:
        mat = _TRANSITION_CACHE.get(key)
        if mat is None:
            mat = transition_matrix(key_chord_distribution, key_change_prob, chord_change_prob)
            mat.setflags(write=False)
            _TRANSITION_CACHE[key] = mat
    return mat


def infer_chords(qns: music_pb2.NoteSequence, chords_per_bar: int | None = None) -> None:
    """Add inferred CHORD_SYMBOL annotations to a quantised NoteSequence (in place).

    Exactly note-seq's ``chord_inference.infer_chords_for_sequence`` (same Viterbi, same
    defaults, same exceptions: ``chord_inference.ChordInferenceError`` subclasses), with the
    constant transition matrix memoised so that a corpus of short files is not dominated by
    rebuilding it; ``tests/test_improv_family.py`` checks the results are identical.
    """
    chord_inference._key_chord_transition_distribution = _cached_transition
    chord_inference.infer_chords_for_sequence(qns, chords_per_bar=chords_per_bar)
