"""Parquet schemas shared by the pipelines, training and evaluation (one constant per table).

``NOTESEQ_SCHEMA``  rows written by ``pipelines.ingest``: one NoteSequence (serialized proto) per
                    tune, with summary columns so that later stages can filter without parsing,
                    and the reader (plus the fallbacks taken to reach it) that produced it.
``EXAMPLE_SCHEMA``  rows written by ``pipelines.examples``: one training/eval example per row,
                    events stored as the family's base one-hot label indices (compact integers),
                    plus per-step chord columns for lead sheets (null for other families).
``QUARANTINE_SCHEMA`` files no reader could take, with the reason.
``REJECT_SCHEMA``   NoteSequences an extractor could not handle, with the reason.
"""

from __future__ import annotations

import pyarrow as pa

NOTESEQ_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),  # "<corpus>/<relative path>#<tune index>"
        pa.field("corpus", pa.string(), nullable=False),
        pa.field("source_path", pa.string(), nullable=False),  # relative to the corpus root
        pa.field("tune_index", pa.int32(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),  # of the source file's bytes
        pa.field("reader", pa.string(), nullable=False),  # which reader produced it
        pa.field("note_sequence", pa.binary(), nullable=False),  # NoteSequence.SerializeToString()
        pa.field("num_notes", pa.int32()),
        pa.field("total_time", pa.float64()),
        pa.field("num_instruments", pa.int32()),
        pa.field("is_polyphonic", pa.bool_()),
        pa.field("has_chords", pa.bool_()),
        pa.field("has_velocity_variation", pa.bool_()),
        pa.field("has_pedal", pa.bool_()),
        pa.field("time_signatures", pa.list_(pa.string())),  # e.g. ["4/4", "3/4"]
        pa.field("key", pa.string()),  # e.g. "C major"; first key signature, "" if none
        # Reader fallbacks that led to ``reader``, e.g. ["note_seq_abc->music21"]; [] when the
        # first reader took it, null in rows of runs that predate the column (kept by --reuse).
        # Added last and nullable so readers of older files, and of named columns, are unchanged.
        pa.field("fallbacks", pa.list_(pa.string())),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("corpus", pa.string(), nullable=False),
        pa.field("source_path", pa.string(), nullable=False),
        pa.field("sha256", pa.string()),
        pa.field("size_bytes", pa.int64()),
        pa.field("reason", pa.string(), nullable=False),  # short code, e.g. "empty", "timeout"
        pa.field("detail", pa.string()),  # the readers' error messages
    ]
)

EXAMPLE_SCHEMA = pa.schema(
    [
        pa.field("example_id", pa.string(), nullable=False),
        pa.field("source_id", pa.string(), nullable=False),  # NOTESEQ_SCHEMA.id of the source
        pa.field("split", pa.string(), nullable=False),  # "train" | "eval"
        pa.field("transposition", pa.int8(), nullable=False),  # semitones applied
        pa.field("stretch", pa.float32(), nullable=False),  # time-stretch factor (performance)
        pa.field("num_events", pa.int32(), nullable=False),
        pa.field("events", pa.list_(pa.int16()), nullable=False),
        # Lead sheets only: the chord sounding at each event step (-1 = no chord).
        pa.field("chord_root", pa.list_(pa.int8())),  # pitch class 0..11
        pa.field("chord_bass", pa.list_(pa.int8())),  # pitch class 0..11
        pa.field("chord_quality", pa.list_(pa.int8())),  # 0 major, 1 minor, 2 aug, 3 dim, 4 other
        pa.field("chord_pitches", pa.list_(pa.int16())),  # 12-bit pitch-class mask, bit i = pc i
    ]
)

REJECT_SCHEMA = pa.schema(
    [
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),
    ]
)

CHORD_COLUMNS = ("chord_root", "chord_bass", "chord_quality", "chord_pitches")
