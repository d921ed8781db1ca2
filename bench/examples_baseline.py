"""The Magenta side of ``python -m bench.examples``: its two example sets built the Magenta way.

``bench.examples`` runs :func:`baseline` in a child process of its own
(``python -m bench.examples --baseline SET``), so interpreter start and imports count as in
Magenta's anchor figures. Magenta's ``extract_melodies`` / ``extract_lead_sheet_fragments`` live in
the TensorFlow-bound ``magenta`` package, so these functions restate those loops over note-seq's own
objects (``Melody.from_quantized_sequence``, ``ChordProgression.from_quantized_sequence``,
``LeadSheet``); the split is motif's seeded per-file rule (:func:`bench.common.split_of`), so both
sides split the same files. Nothing here imports Beam or torch.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

from bench.common import split_of

MIN_NOTE, MAX_NOTE = 48, 84  # Magenta's DEFAULT_MIN_NOTE / DEFAULT_MAX_NOTE
STEPS_PER_QUARTER = 4


class Counts(dict):
    """Magenta-style pipeline statistics: reason -> count."""

    def inc(self, reason: str, n: int = 1) -> None:
        self[reason] = self.get(reason, 0) + n


def quantized_parts(ns: Any, counts: Counts) -> list[Any]:
    """Magenta's TimeChangeSplitter + Quantizer: pieces that quantise; the rest counted."""
    from note_seq import sequences_lib

    errors = {
        sequences_lib.MultipleTimeSignatureError: "multiple_time_signatures",
        sequences_lib.MultipleTempoError: "multiple_tempos",
        sequences_lib.BadTimeSignatureError: "bad_time_signature",
        sequences_lib.NegativeTimeError: "negative_time",
    }
    out = []
    for part in sequences_lib.split_note_sequence_on_time_changes(ns):
        try:
            out.append(sequences_lib.quantize_note_sequence(part, STEPS_PER_QUARTER))
        except tuple(errors) as err:
            counts.inc(next(name for kind, name in errors.items() if isinstance(err, kind)))
    return out


def magenta_melodies(
    qns: Any, counts: Counts, *, min_unique_pitches: int, ignore_polyphonic_notes: bool
) -> list[Any]:
    """Magenta's ``extract_melodies`` loop (min_bars=7, max_steps_truncate=512, gap_bars=1)."""
    import numpy as np
    from note_seq import melodies_lib, sequences_lib

    min_bars, max_steps = 7, 512
    steps_per_bar = int(sequences_lib.steps_per_bar_in_quantized_sequence(qns))
    found = []
    for instrument in {n.instrument for n in qns.notes}:
        start = 0
        while True:
            melody = melodies_lib.Melody()
            try:
                melody.from_quantized_sequence(
                    qns,
                    search_start_step=start,
                    instrument=instrument,
                    gap_bars=1.0,
                    ignore_polyphonic_notes=ignore_polyphonic_notes,
                    pad_end=False,
                    filter_drums=True,
                )
            except melodies_lib.PolyphonicMelodyError:
                counts.inc("polyphonic_tracks_discarded")
                break
            start = melody.end_step + (-melody.end_step) % steps_per_bar  # next bar boundary
            if not melody:
                break
            if len(melody) < melody.steps_per_bar * min_bars:
                counts.inc("melodies_discarded_too_short")
                continue
            if len(melody) > max_steps:
                melody.set_length(max_steps)
                counts.inc("melodies_truncated")
            if np.count_nonzero(melody.get_note_histogram()) < min_unique_pitches:
                counts.inc("melodies_discarded_too_few_pitches")
                continue
            found.append(melody)
    return found


def melody_examples(qns: Any, counts: Counts) -> list[Any]:
    """melody_rnn's MelodyExtractor + EncoderPipeline's squash (key of C, 48..84)."""
    from note_seq import events_lib

    try:
        melodies = magenta_melodies(qns, counts, min_unique_pitches=5, ignore_polyphonic_notes=True)
    except events_lib.NonIntegerStepsPerBarError:
        counts.inc("non_integer_steps_per_bar")
        return []
    for melody in melodies:
        melody.squash(MIN_NOTE, MAX_NOTE, 0)
    return melodies


def lead_sheet_examples(qns: Any, counts: Counts) -> list[Any]:
    """improv_rnn's LeadSheetExtractor (``extract_lead_sheet_fragments``, all 12 keys)."""
    from note_seq import chord_symbols_lib, chords_lib, events_lib, lead_sheets_lib

    sheets = []
    try:
        melodies = magenta_melodies(
            qns, counts, min_unique_pitches=3, ignore_polyphonic_notes=False
        )
        for melody in melodies:
            chords = chords_lib.ChordProgression()
            try:
                chords.from_quantized_sequence(qns, melody.start_step, melody.end_step)
            except chords_lib.CoincidentChordsError:
                counts.inc("coincident_chords")
                continue
            if all(chord == chords_lib.NO_CHORD for chord in chords):
                counts.inc("empty_chord_progressions")
                continue
            sheet = lead_sheets_lib.LeadSheet(melody, chords)
            for amount in range(-6, 6):
                moved = copy.deepcopy(sheet)
                moved.transpose(amount)
                sheets.append(moved)
    except events_lib.NonIntegerStepsPerBarError:
        counts.inc("non_integer_steps_per_bar")
        return []
    except chord_symbols_lib.ChordSymbolError:
        counts.inc("chord_symbol_exception")
        return []
    return sheets


def baseline(set_name: str, ingest_dir: str, seed: int, eval_ratio: float) -> dict[str, Any]:
    """Build one set the Magenta way in this process; figures of what it made."""
    import warnings

    warnings.filterwarnings("ignore")
    import numpy as np
    import pyarrow.parquet as pq
    from note_seq import chord_symbols_lib, chords_encoder_decoder, encoder_decoder
    from note_seq import melody_encoder_decoder as med
    from note_seq.protobuf import music_pb2

    start = time.perf_counter()
    if set_name == "melody":
        enc = med.KeyMelodyEncoderDecoder(min_note=MIN_NOTE, max_note=MAX_NOTE)
    else:
        enc = encoder_decoder.ConditionalEventSequenceEncoderDecoder(
            chords_encoder_decoder.PitchChordsEncoderDecoder(),
            encoder_decoder.OneHotEventSequenceEncoderDecoder(
                med.MelodyOneHotEncoding(MIN_NOTE, MAX_NOTE)
            ),
        )
    counts = Counts()
    made = {"train": 0, "eval": 0}
    inputs = events = nbytes = 0
    for shard in sorted(Path(ingest_dir).glob("notesequences-*.parquet")):
        table = pq.read_table(shard, columns=["id", "note_sequence"])
        for sid, blob in zip(
            table["id"].to_pylist(), table["note_sequence"].to_pylist(), strict=True
        ):
            inputs += 1
            split = split_of(sid, seed, eval_ratio)
            ns = music_pb2.NoteSequence.FromString(blob)
            for qns in quantized_parts(ns, counts):
                if set_name == "melody":
                    for melody in melody_examples(qns, counts):
                        x, y = enc.encode(melody)
                        made[split] += 1
                        events += len(melody)
                        nbytes += np.asarray(x, np.float32).nbytes + np.asarray(y, np.int64).nbytes
                    continue
                for sheet in lead_sheet_examples(qns, counts):
                    sheet.squash(MIN_NOTE, MAX_NOTE, None)
                    try:
                        x, y = enc.encode(sheet.chords, sheet.melody)
                    except chords_encoder_decoder.ChordEncodingError:
                        counts.inc("chord_encoding_exception")
                        continue
                    except chord_symbols_lib.ChordSymbolError:
                        counts.inc("chord_symbol_exception")
                        continue
                    made[split] += 1
                    events += len(sheet)
                    nbytes += np.asarray(x, np.float32).nbytes + np.asarray(y, np.int64).nbytes
    return {
        "inputs": inputs,
        "examples_train": made["train"],
        "examples_eval": made["eval"],
        "events": events,
        "bytes": nbytes,
        "input_size": enc.input_size,
        "counts": dict(sorted(counts.items())),
        "seconds": round(time.perf_counter() - start, 2),
    }
