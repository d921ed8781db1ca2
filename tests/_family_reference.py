"""Slow, independent references the family tests compare against (not collected as tests).

* Performance: Magenta's pipeline order spelled out with note-seq objects only (sustain, stretch,
  split, quantise, transpose, ``Performance``, truncate, discard) and note-seq's own encoders
  (``OneHotEventSequenceEncoderDecoder``, ``ConditionalEventSequenceEncoderDecoder`` over the
  control signals' ``extract`` + ``encoder``), one position at a time.
* Polyphony (not in note-seq): a step-by-step loop written from the event-language spec.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from note_seq import encoder_decoder, performance_controls, performance_lib, sequences_lib
from note_seq.performance_encoder_decoder import PerformanceOneHotEncoding
from note_seq.protobuf import music_pb2

# --------------------------------------------------------------------------------------------
# Performance
# --------------------------------------------------------------------------------------------


@dataclass
class RefPerformance:
    events: list[int]
    performance: performance_lib.Performance
    stretch: float
    transposition: int


def reference_performances(
    ns: music_pb2.NoteSequence,
    *,
    num_velocity_bins: int = 32,
    instrument_names: tuple[str, ...] = (),
    stretches: tuple[float, ...] = (1.0,),
    transpositions: tuple[int, ...] = (0,),
    hop_seconds: float = 30.0,
    min_events: int = 32,
    max_events: int = 512,
) -> tuple[list[RefPerformance], dict[str, int]]:
    """Magenta's performance pipeline, one note-seq call after another."""
    counts: dict[str, int] = {}

    def count(reason: str) -> None:
        counts[reason] = counts.get(reason, 0) + 1

    if instrument_names:
        names = {n.lower() for n in instrument_names}
        keep = {i.instrument for i in ns.instrument_infos if i.name.lower() in names}
        picked = music_pb2.NoteSequence()
        picked.CopyFrom(ns)
        del picked.notes[:]
        del picked.control_changes[:]
        del picked.pitch_bends[:]
        for note in ns.notes:
            if note.instrument in keep:
                picked.notes.add().CopyFrom(note)
        for cc in ns.control_changes:
            if cc.instrument in keep:
                picked.control_changes.add().CopyFrom(cc)
        picked.total_time = max([n.end_time for n in picked.notes] + [0.0])
        ns = picked
    sustained = sequences_lib.apply_sustain_control_changes(ns)
    out = []
    encoding = PerformanceOneHotEncoding(num_velocity_bins=num_velocity_bins)
    for stretch in stretches:
        stretched = sequences_lib.stretch_note_sequence(sustained, stretch)
        for chunk in sequences_lib.split_note_sequence(stretched, hop_seconds):
            quantized = sequences_lib.quantize_note_sequence_absolute(chunk, 100)
            for amount in transpositions:
                moved = copy.deepcopy(quantized)
                bad = False
                for note in moved.notes:
                    if not note.is_drum:
                        note.pitch += amount
                        bad |= not 0 <= note.pitch <= 127
                if bad:
                    count("skipped_due_to_range_exceeded")
                    continue
                if len({n.program for n in moved.notes}) > 1:
                    count("performances_discarded_more_than_1_program")
                    continue
                perf = performance_lib.Performance(moved, num_velocity_bins=num_velocity_bins)
                if len(perf) > max_events:
                    perf.truncate(max_events)
                    count("performances_truncated")
                if len(perf) < min_events:
                    count("performances_discarded_too_short")
                    continue
                out.append(
                    RefPerformance([encoding.encode_event(e) for e in perf], perf, stretch, amount)
                )
    return out, counts


def performance_from_indices(
    indices: list[int], num_velocity_bins: int
) -> performance_lib.Performance:
    encoding = PerformanceOneHotEncoding(num_velocity_bins=num_velocity_bins)
    perf = performance_lib.Performance(steps_per_second=100, num_velocity_bins=num_velocity_bins)
    for index in indices:
        perf.append(encoding.decode_event(int(index)))
    return perf


DENSITY = performance_controls.NoteDensityPerformanceControlSignal(
    window_size_seconds=3.0, density_bin_ranges=[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
)
HISTOGRAM = performance_controls.PitchHistogramPerformanceControlSignal(window_size_seconds=5.0)


def reference_encode(
    perf: performance_lib.Performance, num_velocity_bins: int, density: bool, histogram: bool
) -> tuple[np.ndarray, np.ndarray]:
    """note-seq's (inputs, labels) of a performance, with Magenta's control wiring."""
    target = encoder_decoder.OneHotEventSequenceEncoderDecoder(
        PerformanceOneHotEncoding(num_velocity_bins=num_velocity_bins)
    )
    signals = [s for s, used in ((DENSITY, density), (HISTOGRAM, histogram)) if used]
    if not signals:
        inputs, labels = target.encode(perf)
    else:
        control_encoder = encoder_decoder.MultipleEventSequenceEncoder([s.encoder for s in signals])
        conditional = encoder_decoder.ConditionalEventSequenceEncoderDecoder(
            control_encoder, target
        )
        controls = list(zip(*[s.extract(perf) for s in signals], strict=True))
        inputs, labels = conditional.encode(controls, perf)
    return np.asarray(inputs, dtype=np.float64), np.asarray(labels, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# Polyphony
# --------------------------------------------------------------------------------------------

START, END, STEP_END = 0, 1, 2


def reference_polyphony_events(quantized: music_pb2.NoteSequence) -> list[int]:
    """Polyphony events of a quantised NoteSequence, step by step from the spec."""
    events = [START]
    for step in range(quantized.total_quantized_steps):
        in_step: list[tuple[int, int, int]] = []  # (-pitch, order, index)
        for note in quantized.notes:
            if note.quantized_start_step < step < note.quantized_end_step:
                in_step.append((-note.pitch, 0, 131 + note.pitch))  # held from before
            elif note.quantized_start_step == step:
                in_step.append((-note.pitch, 1, 3 + note.pitch))  # starts now
        events.extend(index for _, _, index in sorted(in_step))
        events.append(STEP_END)
    events.append(END)
    return events


def reference_polyphony(
    ns: music_pb2.NoteSequence,
    transpositions: tuple[int, ...] = (0,),
    min_steps: int = 80,
    max_steps: int = 512,
) -> tuple[list[tuple[int, list[int]]], dict[str, int]]:
    """Magenta's polyphony pipeline (split, quantise, transpose, extract) spelled out."""
    counts: dict[str, int] = {}
    out = []
    for part in sequences_lib.split_note_sequence_on_time_changes(ns):
        try:
            quantized = sequences_lib.quantize_note_sequence(part, 4)
        except (
            sequences_lib.MultipleTimeSignatureError,
            sequences_lib.MultipleTempoError,
            sequences_lib.BadTimeSignatureError,
            sequences_lib.NegativeTimeError,
        ) as err:
            counts[type(err).__name__] = counts.get(type(err).__name__, 0) + 1
            continue
        if len({n.program for n in quantized.notes}) > 1:
            counts["program"] = counts.get("program", 0) + 1
            continue
        steps = quantized.total_quantized_steps
        if not min_steps <= steps <= max_steps:
            key = "too_short" if steps < min_steps else "too_long"
            counts[key] = counts.get(key, 0) + 1
            continue
        for amount in transpositions:
            moved = copy.deepcopy(quantized)
            for note in moved.notes:
                if not note.is_drum:
                    note.pitch += amount
            if any(not 0 <= n.pitch <= 127 for n in moved.notes):
                counts["range"] = counts.get("range", 0) + 1
                continue
            out.append((amount, reference_polyphony_events(moved)))
    return out, counts


def reference_step_context(events: Sequence[int], window: int) -> np.ndarray:
    """The step-context columns of polyphony's ``StepContext`` by hand (2 = STEP_END, 3 + p =
    NEW_NOTE p, 131 + p = CONTINUED_NOTE p): after each event t, among events t - window + 1 .. t,
    the pitches after the second-last STEP_END up to the last one, those after the last one, and
    the pitch-class shares of the NEW_NOTEs."""
    ev = [int(x) for x in events]
    rows = []
    for t in range(len(ev)):
        span = range(max(0, t - window + 1), t + 1)
        ends = [i for i in span if ev[i] == 2]
        cur_from = ends[-1] if ends else span[0] - 1
        prev_from = ends[-2] if len(ends) > 1 else span[0] - 1
        prev, cur, pcs = np.zeros(128), np.zeros(128), np.zeros(12)
        for i in span:
            if ev[i] >= 3:
                pitch = (ev[i] - 3) % 128
                if i > cur_from:
                    cur[pitch] += 1
                elif i > prev_from:
                    prev[pitch] += 1
                pcs[pitch % 12] += ev[i] < 131
        rows.append(np.concatenate([prev, cur, pcs / max(pcs.sum(), 1)]))
    return np.array(rows)


def reference_held(events: np.ndarray, window: int) -> list[list[float]]:
    """The held-notes columns of ``HeldNotes`` by hand (NOTE_ON p = p, NOTE_OFF p = 128 + p,
    TIME_SHIFT s = 255 + s, then velocities): after each event t, replay events t - window + 1
    .. t as note-seq's ``Performance.to_sequence`` does (a NOTE_OFF closes an open note of its
    pitch or is ignored); per pitch, the open notes, then the steps since the newest one opened."""
    events = [int(x) for x in events]
    rows = []
    for t in range(len(events)):
        count, opened, clock = [0] * 128, [0] * 128, 0
        for e in events[max(0, t - window + 1) : t + 1]:
            if e < 128:
                count[e] += 1
                opened[e] = clock
            elif e < 256:
                count[e - 128] = max(0, count[e - 128] - 1)
            elif e < 256 + 100:
                clock += e - 256 + 1
        ages = [clock - opened[p] if count[p] else 0 for p in range(128)]
        rows.append([float(c) for c in count] + [float(a) for a in ages])
    return rows
