"""ABC tunebooks: split into tunes, and run each tune through its own chain.

A failing tune never loses its file's good tunes: each tune gets ``note_seq_abc`` then
``music21`` (:func:`parse_abc`, called by ``parse.parse_file``), and files a failure of its own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from note_seq import abc_parser

from pipelines.readers.chain import accept_tune, over_note_cap, try_chain
from pipelines.readers.common import (
    ABC,
    MUSIC21,
    NOTE_SEQ_ABC,
    FileResult,
    Limits,
    NoteSequence,
    TuneFailure,
    decode_text,
)
from pipelines.readers.music21_reader import read_music21


def split_abc_tunes(text: str) -> tuple[list[str], list[list[str]]]:
    """Split a tunebook into (file header lines, tunes), as note-seq's tunebook parser does.

    Sections are separated by blank lines; a first section without ``X:`` is the file header that
    every tune inherits. Other sections without ``X:`` are free text, not tunes (ABC 2.1), unless
    the file has no ``X:`` at all, in which case it is one tune.
    """
    sections: list[list[str]] = []
    current: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line:
            current.append(line)
        elif current:
            sections.append(current)
            current = []
    if current:
        sections.append(current)
    header: list[str] = []
    if len(sections) > 1 and not any(line.startswith("X:") for line in sections[0]):
        header = sections.pop(0)
    tunes = [s for s in sections if any(line.startswith("X:") for line in s)]
    if not tunes and sections:
        tunes = [[line for s in sections for line in s]]
    return header, tunes


def read_abc_tune_note_seq(header: Sequence[str], tune: Sequence[str]) -> list[NoteSequence]:
    """note-seq's ABC tune parser on one tune (with the tunebook header prepended)."""
    return [abc_parser.ABCTune(list(header) + list(tune)).note_sequence]


def read_abc_tune_music21(header: Sequence[str], tune: Sequence[str]) -> list[NoteSequence]:
    """music21's ABC parser on one tune: chords, tuplets, rests, variant endings."""
    text = "\n".join(list(header) + list(tune)) + "\n"
    return read_music21(text.encode("utf-8"), ABC)


def parse_abc(
    data: bytes, result: FileResult, limits: Limits, on_tune: Callable[[], None] | None
) -> None:
    """Per-tune chain for a tunebook: each tune's failure stays with that tune."""
    header, tunes = split_abc_tunes(decode_text(data))
    for index, tune in enumerate(tunes):
        if on_tune is not None and index:
            on_tune()
        outcome = try_chain(
            [
                (NOTE_SEQ_ABC, functools.partial(read_abc_tune_note_seq, header, tune)),
                (MUSIC21, functools.partial(read_abc_tune_music21, header, tune)),
            ],
            result,
        )
        if outcome.reader is not None:
            # music21 may see several scores in one section; the tune keeps its first.
            accept_tune(result, index, outcome, outcome.sequences[0], limits)
            if over_note_cap(result, limits):
                return
            continue
        title = next((line[2:].strip() for line in tune if line.startswith("T:")), "")
        detail = f"tune {index} {title!r}: " + "; ".join(outcome.errors)
        reason = "no_notes" if outcome.empty else "parse_error"
        result.failures.append(TuneFailure(index, reason, detail))
