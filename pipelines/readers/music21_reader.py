"""music21: the slow, tolerant fallback of every format, converted to note-seq's NoteSequence.

music21 itself is imported inside the functions: it is the last reader of each chain, and a
parse that never falls back to it should not pay for its import. ``parse.reader_chain`` and
``abc_tunes`` call :func:`read_music21`; ``bench/ingest.py`` calls it directly.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import numpy as np
from note_seq import chord_symbols_lib, midi_io, musicxml_parser

from modeling.chord_spelling import abc_figure
from pipelines.readers.common import (
    ABC,
    CHORD_SYMBOL,
    HUMDRUM,
    MIDI,
    MUSICXML,
    MXL,
    NoteSequence,
    ReaderError,
    decode_text,
)
from pipelines.readers.musicxml import mxl_score_member


def _chord_figure(symbol: Any) -> str:
    """note-seq's figure string for a music21 chord symbol.

    The symbol is exported to a MusicXML ``<harmony>`` element by music21 and read back by
    note-seq's own ``ChordSymbol``, so the figures match what the note-seq MusicXML reader writes.
    """
    from music21 import harmony
    from music21.musicxml import m21ToXml

    if isinstance(symbol, harmony.NoChord):
        return "N.C."
    # ABC spellings ("D/f+" = D over F#) are misread by music21 ("D/f+" as D augmented over F):
    # the written figure, respelled as extraction respells note-seq's, wins when note-seq takes it.
    written = str(getattr(symbol, "figure", "") or "")
    respelled = abc_figure(written)
    if respelled is not None and respelled != written:
        with contextlib.suppress(chord_symbols_lib.ChordSymbolError):
            chord_symbols_lib.chord_symbol_pitches(respelled)
            return respelled
    try:
        element = m21ToXml.MeasureExporter().chordSymbolToXml(symbol)
        return musicxml_parser.ChordSymbol(
            element, musicxml_parser.MusicXMLParserState()
        ).get_figure_string()
    except Exception:  # a kind note-seq does not know: music21's figure, flats spelled 'b'
        return str(symbol.figure).replace("-", "b")


def _quarters_to_seconds(quarters: np.ndarray, sequence: NoteSequence) -> np.ndarray:
    """Map score offsets (quarter notes) to seconds through the sequence's tempo map."""
    tempos = sorted(((t.time, t.qpm) for t in sequence.tempos), key=lambda tq: tq[0])
    if not tempos or tempos[0][0] > 0:
        tempos.insert(0, (0.0, 120.0))  # MIDI default before the first tempo event
    times = np.array([t for t, _ in tempos], dtype=np.float64)
    qpm = np.array([q for _, q in tempos], dtype=np.float64)
    starts_q = np.concatenate([[0.0], np.cumsum(np.diff(times) * qpm[:-1] / 60.0)])
    seg = np.clip(np.searchsorted(starts_q, quarters, side="right") - 1, 0, len(times) - 1)
    return times[seg] + (quarters - starts_q[seg]) * 60.0 / qpm[seg]


_M21_ENCODING = {
    MUSICXML: NoteSequence.SourceInfo.MUSIC_XML,
    MXL: NoteSequence.SourceInfo.MUSIC_XML,
    ABC: NoteSequence.SourceInfo.ABC,
    MIDI: NoteSequence.SourceInfo.MIDI,
}


def _strip_repeats(score: Any) -> None:
    """Remove repeat barlines, brackets and D.C./segno marks, in place.

    music21's MIDI export expands repeats (and gives up on badly formed ones); note-seq's readers
    never do. Without the marks the export keeps the written timeline, as note-seq does, and the
    chord symbols (timed from written offsets) stay aligned with the notes.
    """
    from music21 import bar, repeat, spanner, stream

    for measure in score.recurse().getElementsByClass(stream.Measure):
        if isinstance(measure.leftBarline, bar.Repeat):
            measure.leftBarline = None
        if isinstance(measure.rightBarline, bar.Repeat):
            measure.rightBarline = bar.Barline("regular")
    marks = list(score.recurse().getElementsByClass(repeat.RepeatExpression))
    marks += list(score.recurse().getElementsByClass(spanner.RepeatBracket))
    if marks:
        score.remove(marks, recurse=True)


def _needs_transposing(score: Any) -> bool:
    """True when written and sounding pitch differ (a transposing instrument, not yet applied).

    ``toSoundingPitch`` deep-copies the whole score, so it is skipped when it would change nothing.
    """
    from music21 import instrument

    if score.atSoundingPitch is True:
        return False
    return any(
        inst.transposition is not None and inst.transposition.semitones != 0
        for inst in score.recurse().getElementsByClass(instrument.Instrument)
    )


def _unshare_context_objects(score: Any) -> None:
    """Give every measure its own time/key signature and tempo objects, in place.

    music21's ABC reader may put one ``TimeSignature`` object into several measures; its MIDI
    export then fails ("already found in this Stream") when it collects them into the conductor
    track. Each repeated occurrence is replaced by a copy.
    """
    from music21 import key, meter, stream, tempo

    seen: set[int] = set()
    for measure in score.recurse().getElementsByClass(stream.Measure):
        for element in list(
            measure.getElementsByClass((meter.TimeSignature, key.KeySignature, tempo.MetronomeMark))
        ):
            if id(element) in seen:
                measure.replace(element, copy.deepcopy(element))
            else:
                seen.add(id(element))


def music21_to_note_sequence(score: Any, fmt: str = MUSICXML) -> NoteSequence:
    """Convert a music21 Score/Part to a NoteSequence.

    Notes, tempos, time and key signatures, instruments and velocities go through music21's MIDI
    export read back by note-seq (at sounding pitch and with repeats as written, as note-seq's
    MusicXML reader does); chord symbols are removed before the export (music21 would realise
    them as notes) and added as ``CHORD_SYMBOL`` text annotations with note-seq figures, timed
    through the same tempo map.
    """
    from music21 import harmony
    from music21 import midi as m21midi

    sounding = score.toSoundingPitch() if _needs_transposing(score) else score
    parts = list(sounding.parts) if hasattr(sounding, "parts") and sounding.parts else [sounding]
    chords: set[tuple[float, str]] = set()
    for part in parts:
        for symbol in part.flatten().getElementsByClass(harmony.ChordSymbol):
            chords.add((float(symbol.offset), _chord_figure(symbol)))
    symbols = list(sounding.recurse().getElementsByClass(harmony.ChordSymbol))
    if symbols:
        sounding.remove(symbols, recurse=True)
    _strip_repeats(sounding)
    _unshare_context_objects(sounding)
    midi_bytes = m21midi.translate.streamToMidiFile(sounding).writestr()
    sequence = midi_io.midi_to_note_sequence(midi_bytes)
    sequence.source_info.source_type = NoteSequence.SourceInfo.SCORE_BASED
    sequence.source_info.encoding_type = _M21_ENCODING.get(
        fmt, NoteSequence.SourceInfo.UNKNOWN_ENCODING_TYPE
    )
    sequence.source_info.parser = NoteSequence.SourceInfo.MUSIC21
    if chords:
        ordered = sorted(chords)
        seconds = _quarters_to_seconds(np.array([q for q, _ in ordered]), sequence)
        for when, (_, figure) in zip(seconds, ordered, strict=True):
            annotation = sequence.text_annotations.add()
            annotation.time = float(when)
            annotation.text = figure
            annotation.annotation_type = CHORD_SYMBOL
    return sequence


def read_music21(data: bytes, fmt: str) -> list[NoteSequence]:
    """music21's parser (the slow, tolerant fallback); one sequence per score of an Opus."""
    from music21 import converter, stream

    if fmt == MXL:
        payload: Any = mxl_score_member(data)
        m21_format = "musicxml"
    elif fmt == MUSICXML:
        payload, m21_format = data, "musicxml"
    elif fmt == HUMDRUM:
        payload, m21_format = decode_text(data), "humdrum"
    elif fmt == ABC:
        payload, m21_format = decode_text(data), "abc"
    else:
        raise ReaderError(f"music21 reader does not handle {fmt}")
    parsed = converter.parseData(payload, format=m21_format)
    scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
    if not scores:
        raise ReaderError("music21 found no score")
    return [music21_to_note_sequence(score, fmt) for score in scores]
