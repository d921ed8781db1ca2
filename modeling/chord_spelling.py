"""ABC / Nottingham chord spellings in note-seq's terms.

A leaf module (no note-seq, no music21) so that both the readers
(``pipelines/readers/music21_reader.py``, whose music21 fallback misreads these spellings) and
chord extraction (``modeling/families/chords/``) respell the same way without the ingest stage
importing the families.
"""

from __future__ import annotations

import re

# ABC accompaniment chords: <root><kind>[/<bass>]. The bass letter may be lower case (its case
# "does not affect the pitch", ABC 2.1 tutorial); the Nottingham Music Database marks its
# accidental with + / - ("D/f+" is D over F#, the lament bass A G F# F) and writes diminished
# and augmented as a bare "d" / "a" ("Gd", "Ca": the cleaned NMD's own convention).
_ABC_CHORD = re.compile(
    r"(?P<root>[A-G][#b]?)(?P<kind>[^/]*)(?:/(?P<bass>[A-Ga-g])(?P<acc>[#b+-]?))?"
)
_BASS_ACCIDENTALS = {"+": "#", "-": "b", "#": "#", "b": "b", "": ""}


def abc_figure(figure: str) -> str | None:
    """note-seq's spelling of an ABC / Nottingham chord figure, or None if it is not one."""
    m = _ABC_CHORD.fullmatch(figure)
    if m is None:
        return None
    kind = m["kind"]
    if kind.startswith("d") and not kind.startswith("dim"):
        kind = "dim" + kind[1:]
    elif kind.startswith("a") and not kind.startswith(("aug", "add")):
        kind = "aug" + kind[1:]
    bass = f"/{m['bass'].upper()}{_BASS_ACCIDENTALS[m['acc']]}" if m["bass"] else ""
    return m["root"] + kind + bass
