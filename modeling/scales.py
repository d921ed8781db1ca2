"""Keys and scales for ``--key`` / ``--scale``: which pitch classes generation may play.

Users asked Magenta for a way to keep a generated melody in a key; motif does it by masking the
softmax of every family (``modeling/generate.py`` turns the pitch classes returned here into a
class mask with each family's ``class_pitches`` / ``scale_mask`` helpers). Tonic names are parsed by
music21 (``C#``, ``Db``, ``B-`` ...), and the seven-note modes come from music21's scale classes so
the theory lives in the field's library; the pentatonic and blues scales music21 does not ship are
listed here as intervals.

Grammar (case-insensitive):

* ``--key "D minor"``, ``--key "F# dorian"``, ``--key Bb`` (major), ``--key Am`` (minor);
* ``--scale NAME`` with the tonic of ``--key`` (default C): ``--key D --scale dorian``;
* ``--scale "C D Eb G A"`` or ``--scale "0,2,3,7,9"``: explicit pitch classes (``--key`` ignored
  except as the reported tonic).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from music21 import pitch as m21pitch
from music21 import scale as m21scale

# Modes music21 provides as concrete scale classes.
_MUSIC21_SCALES: dict[str, type] = {
    "major": m21scale.MajorScale,
    "ionian": m21scale.MajorScale,
    "minor": m21scale.MinorScale,
    "natural_minor": m21scale.MinorScale,
    "aeolian": m21scale.MinorScale,
    "harmonic_minor": m21scale.HarmonicMinorScale,
    "melodic_minor": m21scale.MelodicMinorScale,
    "dorian": m21scale.DorianScale,
    "phrygian": m21scale.PhrygianScale,
    "lydian": m21scale.LydianScale,
    "mixolydian": m21scale.MixolydianScale,
    "locrian": m21scale.LocrianScale,
    "whole_tone": m21scale.WholeToneScale,
    "chromatic": m21scale.ChromaticScale,
    "octatonic": m21scale.OctatonicScale,
}
# Scales music21 lacks, as semitones above the tonic.
_INTERVAL_SCALES: dict[str, tuple[int, ...]] = {
    "major_pentatonic": (0, 2, 4, 7, 9),
    "pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "major_blues": (0, 2, 3, 4, 7, 9),
}
SCALE_NAMES = tuple(sorted({*_MUSIC21_SCALES, *_INTERVAL_SCALES}))


class ScaleError(ValueError):
    """A key or scale that cannot be read (one line, for exit 2)."""


@dataclass(frozen=True)
class Scale:
    """A tonic, a name and the allowed pitch classes (sorted, 0 = C)."""

    tonic: int
    name: str
    pitch_classes: tuple[int, ...]

    def describe(self) -> dict[str, object]:
        return {"tonic": self.tonic, "name": self.name, "pitch_classes": list(self.pitch_classes)}

    def transposed(self, semitones: int) -> Scale:
        """The same scale moved by ``semitones`` (a key-normalised model works in C)."""
        pcs = tuple(sorted({(p + semitones) % 12 for p in self.pitch_classes}))
        return Scale((self.tonic + semitones) % 12, self.name, pcs)


def tonic_pitch_class(name: str) -> int:
    """Pitch class of a note name via music21 (``Bb``/``B-``/``A#`` all work)."""
    text = name.strip()
    if not re.fullmatch(r"[A-Ga-g](#{1,2}|b{1,2}|-{1,2}|s|f)?", text):
        raise ScaleError(f"cannot read tonic {name!r}; use a note name such as C, F#, Bb")
    # music21 reads 'b' after the letter as flat only in some contexts; spell flats with '-'.
    spelled = text[0].upper() + text[1:].replace("b", "-").replace("s", "#").replace("f", "-")
    try:
        return int(m21pitch.Pitch(spelled).pitchClass)
    except Exception as exc:  # music21 raises its own PitchException family
        raise ScaleError(f"cannot read tonic {name!r}: {exc}") from None


def _mode_key(mode: str) -> str:
    return re.sub(r"[\s\-]+", "_", mode.strip().lower())


def scale_pitch_classes(tonic: int, mode: str) -> tuple[int, ...]:
    """Pitch classes of the named mode on ``tonic`` (0..11)."""
    key = _mode_key(mode)
    if key in _MUSIC21_SCALES:
        tonic_pitch = m21pitch.Pitch(midi=60 + tonic)
        pitches = _MUSIC21_SCALES[key](tonic_pitch).getPitches()
        return tuple(sorted({int(p.pitchClass) for p in pitches}))
    if key in _INTERVAL_SCALES:
        return tuple(sorted({(tonic + i) % 12 for i in _INTERVAL_SCALES[key]}))
    raise ScaleError(f"unknown scale {mode!r}; known: {', '.join(SCALE_NAMES)}")


def _explicit(text: str) -> tuple[int, ...] | None:
    """Pitch classes of an explicit list (``"C D Eb"`` or ``"0,2,3"``), None if not a list."""
    parts = [p for p in re.split(r"[\s,;]+", text.strip().strip("[]")) if p]
    if len(parts) < 2 and not (parts and parts[0].isdigit()):
        return None
    out = set()
    for p in parts:
        if re.fullmatch(r"\d+", p):
            if not 0 <= int(p) <= 11:
                raise ScaleError(f"pitch class {p} in --scale is not 0..11")
            out.add(int(p))
        else:
            out.add(tonic_pitch_class(p))
    return tuple(sorted(out))


def parse_key(text: str) -> tuple[int, str]:
    """(tonic, mode) of ``"D minor"``, ``"F# dorian"``, ``"Bb"`` (major) or ``"Am"`` (minor)."""
    t = text.strip()
    m = re.fullmatch(r"([A-Ga-g](?:#{1,2}|b{1,2}|-{1,2})?)(m|min)?(?:\s+(.+))?", t)
    if not m:
        raise ScaleError(f"cannot read --key {text!r}; e.g. 'D minor', 'F# dorian', 'Bb'")
    tonic = tonic_pitch_class(m.group(1))
    mode = "minor" if m.group(2) else (m.group(3) or "major")
    if m.group(2) and m.group(3):
        raise ScaleError(f"cannot read --key {text!r}: mode given twice")
    scale_pitch_classes(tonic, mode)  # validates the mode name
    return tonic, _mode_key(mode)


def resolve(key: str | None, scale: str | None) -> Scale | None:
    """The :class:`Scale` a ``--key`` / ``--scale`` pair asks for (None when neither is given)."""
    if not key and not scale:
        return None
    tonic, mode = parse_key(key) if key else (0, "major")
    if scale:
        if _mode_key(scale) in SCALE_NAMES:
            mode = _mode_key(scale)
        else:
            explicit = _explicit(scale)
            if explicit is not None:
                return Scale(tonic, "custom", explicit)
            mode = _mode_key(scale)
    return Scale(tonic, mode, scale_pitch_classes(tonic, mode))
