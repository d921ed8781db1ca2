"""Readers: the bytes of one corpus file -> note-seq ``NoteSequence`` protos, via a fallback chain.

``pipelines.ingest`` hands every matched file to :func:`parse_file` (inside the child process of
``pipelines.parse_worker``, which enforces the per-file time limit). Each reader is a thin wrapper
around the field's libraries, tried in order until one succeeds:

=========  ===================================================================================
format     chain (reader names are stored per row in ``NOTESEQ_SCHEMA.reader``)
=========  ===================================================================================
MIDI       ``note_seq_midi`` (note-seq / pretty_midi) -> ``mido_repair`` (tolerant re-read of
           truncated tracks, out-of-range data bytes, broken meta events, RIFF wrappers)
MusicXML   ``note_seq_musicxml`` -> ``music21``
MXL        ``note_seq_musicxml`` (note-seq's own container handling) -> ``note_seq_mxl_inner``
           (the score member read straight out of the zip: rescues containers whose
           ``META-INF/container.xml`` is not well-formed, e.g. an apostrophe in a single-quoted
           ``full-path``) -> ``music21`` (e.g. transposed chord symbols, which note-seq refuses)
ABC        per tune: ``note_seq_abc`` -> ``music21``; a failing tune never loses its file's
           good tunes
Humdrum    ``music21``
=========  ===================================================================================

music21 results are converted with :func:`music21_to_note_sequence` (music21's MIDI export read back
by note-seq, plus chord symbols as note-seq-style ``CHORD_SYMBOL`` text annotations), so every row
has the same shape whichever reader produced it.

Bad input never raises out of :func:`parse_file`: it returns a :class:`FileResult` whose ``reason``
is a short quarantine code (see :data:`QUARANTINE_REASONS`). Each parsed tune carries the fallback
hops that led to its reader (stored per row as ``NOTESEQ_SCHEMA.fallbacks``). Running out of memory
is the one exception: ``MemoryError`` propagates so that ``pipelines.parse_worker``, which caps each
file's memory, can report it as ``memory``. note-seq's absl log lines are counted per file
(``FileResult.log_messages``) instead of flooding stderr.

The package, by responsibility (each module's docstring says how it connects):

- ``common``: reader and format names, :class:`Limits`, the result records, the errors, format
  sniffing; every other module builds on it.
- ``midi``, ``musicxml`` (MusicXML and MXL), ``music21_reader`` (the tolerant fallback and its
  conversion), ``abc_tunes`` (tunebooks, one chain per tune): the readers of each format.
- ``chain``: trying readers in order, the content checks, filing tunes into a :class:`FileResult`.
- ``logs``: the libraries' log lines, counted per file.
- ``parse``: :func:`parse_file`, the entry point that ties them together.

Every public name is re-exported here, so ``from pipelines.readers import parse_file`` and
``readers.MIDI`` read the same as when this was one module.
"""

from pipelines.readers.abc_tunes import (
    read_abc_tune_music21,
    read_abc_tune_note_seq,
    split_abc_tunes,
)
from pipelines.readers.chain import check_content
from pipelines.readers.common import (
    ABC,
    CHORD_SYMBOL,
    FORMAT_BY_EXTENSION,
    HUMDRUM,
    MIDI,
    MIDO_REPAIR,
    MUSIC21,
    MUSICXML,
    MXL,
    NOTE_SEQ_ABC,
    NOTE_SEQ_MIDI,
    NOTE_SEQ_MUSICXML,
    NOTE_SEQ_MXL_INNER,
    QUARANTINE_REASONS,
    SUPPORTED_EXTENSIONS,
    ContentError,
    FileResult,
    Limits,
    NoteSequence,
    ParsedTune,
    ReaderError,
    TuneFailure,
    format_for_path,
    sniff_format,
)
from pipelines.readers.logs import QUIETED_LOGGERS, counting_log_lines
from pipelines.readers.midi import (
    count_midi_note_ons,
    read_midi_note_seq,
    read_midi_repaired,
    repair_midi,
)
from pipelines.readers.music21_reader import music21_to_note_sequence, read_music21
from pipelines.readers.musicxml import (
    check_zip,
    mxl_score_member,
    read_musicxml_note_seq,
    read_mxl_inner,
)
from pipelines.readers.parse import Reader, parse_file, reader_chain
