"""Performance RNN family: note-seq performances, vectorised one-hot and control encodings.

How it connects: ``pipelines/examples.py`` calls :func:`extract` per NoteSequence (Beam DoFn) and
stores ``PerformanceOneHotEncoding(num_velocity_bins)`` indices; ``modeling/train.py`` feeds them
to a variant's encoding (below) following the alignment of ``base.py``; ``modeling/generate.py``
builds control tensors with :meth:`ControlledPerformance.control_from_request`, primers with
:func:`primer_events`, measures time with :func:`event_seconds` and decodes with
:func:`to_note_sequence`.

Extraction follows Magenta's ``performance_pipeline`` with note-seq doing the work: optional
instrument selection by track name (POP909: ``PIANO``), sustain pedal applied, time stretch
(x0.95..1.05, training only), 30 s splits, absolute quantisation at 100 steps/s, transposition
(-3..+3, training only), note-seq ``Performance`` extraction, truncation to 512 events and
discarding of performances shorter than 32 events or with more than one program.

Index space (``PerformanceOneHotEncoding``): NOTE_ON p = p, NOTE_OFF p = 128 + p,
TIME_SHIFT s (1..100 steps of 10 ms) = 255 + s, VELOCITY b (1..bins) = 355 + b. Indices below 356
mean the same thing with or without velocity, so ``performance:v0`` is a prefix of
``performance:v32``.

Controls (note density over 3 s, pitch-class histogram over 5 s) are not stored: they are
functions of the events, computed here for whole (B, T) batches with cumulative sums and
``searchsorted`` and proven equal to note-seq's ``*PerformanceControlSignal.extract`` in tests.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from note_seq import constants, performance_controls, performance_lib, sequences_lib
from note_seq.performance_encoder_decoder import PerformanceOneHotEncoding
from note_seq.protobuf import music_pb2

from modeling.families.base import Cond, Dropped, Extracted, HParams, VariantConfig, lazy_import
from modeling.families.onehot import OneHot
from modeling.families.polyphony import primer_from_melody, primer_from_pitches

if TYPE_CHECKING:
    import torch
    import torch.nn.functional as F
else:
    torch = lazy_import("torch", globals())
    F = lazy_import("torch.nn.functional", globals(), "F")


NAME = "performance"

STEPS_PER_SECOND = 100
MAX_SHIFT_STEPS = performance_lib.DEFAULT_MAX_SHIFT_STEPS  # 100 -> TIME_SHIFT up to 1 s
NOTE_ON = 0
NOTE_OFF = 128
TIME_SHIFT = 256  # index of a shift by 1 step
VELOCITY = 256 + MAX_SHIFT_STEPS  # index of velocity bin 1
MAX_NOTE_DURATION_SECONDS = 5.0  # Magenta's generator ends notes left hanging after 5 s

DENSITY_BIN_RANGES = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
DENSITY_WINDOW_SECONDS = 3.0
HISTOGRAM_WINDOW_SECONDS = 5.0
HISTOGRAM_PRIOR_COUNT = 0.01
DEFAULT_NOTE_DENSITY = performance_controls.DEFAULT_NOTE_DENSITY  # 15 notes/s
DEFAULT_PITCH_HISTOGRAM = tuple(performance_controls.DEFAULT_PITCH_HISTOGRAM)  # all 1.0

NEUTRAL_PAD = NOTE_OFF  # NOTE_OFF(0): moves no time and starts no note, so it alters no control


def num_classes(num_velocity_bins: int) -> int:
    """356 without velocity, 356 + bins with it."""
    return VELOCITY + num_velocity_bins


def event_space_name(num_velocity_bins: int) -> str:
    return f"performance:v{num_velocity_bins}"


@dataclass(frozen=True)
class PerformanceExtractConfig:
    """Magenta's performance extraction rules (``performance_pipeline``), one field per rule.

    ``num_velocity_bins`` must match the variant's event space (0 for ``performance``, 32 for
    the ``*_with_dynamics`` variants).
    """

    num_velocity_bins: int = 32
    steps_per_second: int = STEPS_PER_SECOND
    apply_sustain: bool = True
    stretch_factors: tuple[float, ...] = (0.95, 0.975, 1.0, 1.025, 1.05)  # when augment=True
    transpositions: tuple[int, ...] = (-3, -2, -1, 0, 1, 2, 3)  # when augment=True
    min_pitch: int = constants.MIN_MIDI_PITCH  # a transposition leaving this range is skipped
    max_pitch: int = constants.MAX_MIDI_PITCH
    split_hop_seconds: float = 30.0  # 0 = no splitting
    min_events: int = 32  # shorter performances are discarded
    max_events: int = 512  # longer performances are truncated
    instrument_names: tuple[str, ...] = ()  # keep only tracks with these names; () = all


INFO_COUNTERS: frozenset[str] = frozenset({"performances_truncated"})
"""Counter names yielded as :class:`Dropped` that discard nothing (they only count an event)."""

EXTRACT_CONFIG = PerformanceExtractConfig


def event_space(cfg: PerformanceExtractConfig) -> str:
    """The stored-event vocabulary an extraction config produces."""
    return event_space_name(cfg.num_velocity_bins)


# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------


def select_instruments(
    ns: music_pb2.NoteSequence, names: Iterable[str]
) -> music_pb2.NoteSequence | None:
    """Only the notes / control changes of tracks whose name is in ``names`` (case-insensitive).

    ``names`` empty returns ``ns`` itself; no matching track returns None. ``total_time`` becomes
    the end of the kept notes, so another track's tail does not become silent examples.
    """
    ids = _instrument_ids(ns, names)
    if ids is None:
        return ns
    if not ids:
        return None
    out = music_pb2.NoteSequence()
    out.CopyFrom(ns)
    del out.notes[:]
    del out.control_changes[:]
    del out.pitch_bends[:]
    out.notes.extend(n for n in ns.notes if n.instrument in ids)
    out.control_changes.extend(c for c in ns.control_changes if c.instrument in ids)
    out.pitch_bends.extend(b for b in ns.pitch_bends if b.instrument in ids)
    out.total_time = max((n.end_time for n in out.notes), default=0.0)
    return out


def _instrument_ids(ns: music_pb2.NoteSequence, names: Iterable[str]) -> set[int] | None:
    """Instrument numbers of the tracks named ``names`` (case-insensitive); None = no filter."""
    wanted = {n.strip().casefold() for n in names}
    if not wanted:
        return None
    return {i.instrument for i in ns.instrument_infos if i.name.strip().casefold() in wanted}


def performance_indices(
    performance: performance_lib.BasePerformance, encoding: PerformanceOneHotEncoding
) -> np.ndarray:
    """note-seq events -> stored int16 indices, via note-seq's own one-hot encoding."""
    return np.fromiter((encoding.encode_event(e) for e in performance), np.int16, len(performance))


def _transposed(qns: music_pb2.NoteSequence, amount: int) -> music_pb2.NoteSequence:
    """Magenta's TranspositionPipeline on one quantised sequence (drums stay)."""
    out = music_pb2.NoteSequence()
    out.CopyFrom(qns)
    for note in out.notes:
        if not note.is_drum:
            note.pitch += amount
    return out


def extract(
    ns: music_pb2.NoteSequence,
    cfg: PerformanceExtractConfig,
    *,
    augment: bool,
    fast: bool = True,
) -> Iterator[Extracted | Dropped]:
    """Performances of one NoteSequence: per stretch, 30 s chunk and transposition.

    Counters use Magenta's statistic names; too-short / program discards are counted once per
    chunk (Magenta counts once per transposed copy). ``performances_truncated`` counts examples
    whose tail beyond ``max_events`` was cut (the example itself is kept).

    ``fast`` (the default) does stretch, split, quantisation and ``Performance`` on note arrays
    (:class:`_Notes`), bit-identical to note-seq's objects; sequences it does not cover (see
    :meth:`_Notes.of`) and ``fast=False`` take the note-seq path, which tests use as reference.
    """
    if cfg.num_velocity_bins < 0 or cfg.num_velocity_bins > 127:
        raise ValueError(f"num_velocity_bins must be 0..127, got {cfg.num_velocity_bins}")
    stretches = cfg.stretch_factors if augment else (1.0,)
    amounts = cfg.transpositions if augment else (0,)
    notes = _Notes.of(ns, cfg) if fast else None
    if isinstance(notes, Dropped):
        yield notes
        return
    if notes is not None:
        for stretch in stretches:
            for chunk in notes.chunks(float(stretch), cfg):
                yield from _extract_chunk_fast(chunk, cfg, float(stretch), amounts)
        return
    selected = select_instruments(ns, cfg.instrument_names)
    if selected is None:
        yield Dropped("performances_discarded_no_matching_instrument")
        return
    if not selected.notes:
        yield Dropped("performances_discarded_empty")
        return
    base = sequences_lib.apply_sustain_control_changes(selected) if cfg.apply_sustain else selected
    encoding = PerformanceOneHotEncoding(num_velocity_bins=cfg.num_velocity_bins)
    for stretch in stretches:
        stretched = base if stretch == 1.0 else sequences_lib.stretch_note_sequence(base, stretch)
        chunks = (
            sequences_lib.split_note_sequence(stretched, cfg.split_hop_seconds)
            if cfg.split_hop_seconds > 0
            else [stretched]
        )
        for chunk in chunks:
            yield from _extract_chunk(chunk, cfg, encoding, float(stretch), amounts)


def _extract_chunk(
    chunk: music_pb2.NoteSequence,
    cfg: PerformanceExtractConfig,
    encoding: PerformanceOneHotEncoding,
    stretch: float,
    amounts: Sequence[int],
) -> Iterator[Extracted | Dropped]:
    try:
        qns = sequences_lib.quantize_note_sequence_absolute(chunk, cfg.steps_per_second)
    except sequences_lib.NegativeTimeError:
        yield Dropped("sequences_discarded_because_negative_time")
        return
    if len({n.program for n in qns.notes}) > 1:
        yield Dropped("performances_discarded_more_than_1_program")
        return
    perf = performance_lib.Performance(qns, num_velocity_bins=cfg.num_velocity_bins)
    truncated = len(perf) > cfg.max_events
    if truncated:
        perf.truncate(cfg.max_events)
    if len(perf) < cfg.min_events:
        yield Dropped("performances_discarded_too_short")
        return
    if truncated:
        yield Dropped("performances_truncated")
    events = performance_indices(perf, encoding)
    pitches = np.fromiter((n.pitch for n in qns.notes if not n.is_drum), np.int64)
    has_drums = any(n.is_drum for n in qns.notes)
    is_note = events < TIME_SHIFT
    for amount in amounts:
        if pitches.size and (
            pitches.min() + amount < cfg.min_pitch or pitches.max() + amount > cfg.max_pitch
        ):
            yield Dropped("skipped_due_to_range_exceeded")
            continue
        if amount == 0:
            moved = events
        elif has_drums:  # drums keep their pitch, which can reorder events: rebuild fully
            p = performance_lib.Performance(
                _transposed(qns, amount), num_velocity_bins=cfg.num_velocity_bins
            )
            p.truncate(cfg.max_events)
            moved = performance_indices(p, encoding)
        else:  # same order, shifted pitches: NOTE_ON/OFF indices move by `amount`
            moved = np.where(is_note, events + amount, events).astype(np.int16)
        yield Extracted(events=moved, transposition=int(amount), stretch=stretch)


# --------------------------------------------------------------------------------------------
# Fast extraction: note-seq's stretch / split / quantise / Performance on note arrays
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Chunk:
    """One 30 s split of a stretched sequence, notes in note-seq's chunk order.

    ``start`` is the chunk-relative start in seconds (note-seq sorts a Performance's notes by it,
    so it must be the same float); ``q_start`` / ``q_end`` are the absolute-quantised steps.
    """

    start: np.ndarray  # float64
    q_start: np.ndarray  # int64
    q_end: np.ndarray  # int64
    pitch: np.ndarray  # int64
    velocity: np.ndarray  # int64
    program: np.ndarray  # int64
    is_drum: np.ndarray  # bool


def _note_arrays(ns: music_pb2.NoteSequence) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) float64 and (pitch, velocity, program, is_drum, instrument) int64 rows."""
    rows = [
        (n.start_time, n.end_time, n.pitch, n.velocity, n.program, n.is_drum, n.instrument)
        for n in ns.notes
    ]
    times = np.array([r[:2] for r in rows], np.float64).reshape(-1, 2)
    return times, np.array([r[2:] for r in rows], np.int64).reshape(-1, 5)


@dataclass(frozen=True)
class _Notes:
    """The notes of a sustained NoteSequence as arrays, in proto order (one pass over protos).

    Every float operation below is the one note-seq performs on the proto's doubles, in the same
    order, so times, chunk membership, quantised steps and sort ties come out identical.
    """

    start: np.ndarray  # float64 seconds
    end: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray
    program: np.ndarray
    is_drum: np.ndarray
    total_time: float

    @classmethod
    def of(
        cls, ns: music_pb2.NoteSequence, cfg: PerformanceExtractConfig
    ) -> _Notes | Dropped | None:
        """``select_instruments`` + ``apply_sustain_control_changes`` of ``ns`` as arrays.

        A :class:`Dropped` where the note-seq path drops the whole sequence; None where the
        note-seq path must decide (it raises or behaves specially there): no splitting,
        non-finite times, pitches outside 0..127, velocities outside 1..127 with velocity bins.
        Sustain is note-seq's own where :meth:`_sustained` cannot be sure of it.
        """
        if cfg.split_hop_seconds <= 0 or not math.isfinite(ns.total_time):
            return None
        ids = _instrument_ids(ns, cfg.instrument_names)
        if ids is not None and not ids:
            return Dropped("performances_discarded_no_matching_instrument")
        times, ints = _note_arrays(ns)
        ccs = [
            (c.time, c.control_number, c.control_value, c.instrument) for c in ns.control_changes
        ]
        cc_time = np.array([c[0] for c in ccs], np.float64)
        cc_ints = np.array([c[1:] for c in ccs], np.int64).reshape(-1, 3)
        other = np.array([a.time for a in ns.text_annotations], np.float64)
        if not (
            np.isfinite(times).all() and np.isfinite(cc_time).all() and np.isfinite(other).all()
        ):
            return None
        total = float(ns.total_time)
        if ids is not None:
            keep = np.isin(ints[:, 4], sorted(ids))
            times, ints = times[keep], ints[keep]
            cc_keep = np.isin(cc_ints[:, 2], sorted(ids))
            cc_time, cc_ints = cc_time[cc_keep], cc_ints[cc_keep]
            total = float(times[:, 1].max()) if len(times) else 0.0
        if not len(times):
            return Dropped("performances_discarded_empty")
        pitch, velocity = ints[:, 0], ints[:, 1]
        if pitch.min() < constants.MIN_MIDI_PITCH or pitch.max() > constants.MAX_MIDI_PITCH:
            return None
        if cfg.num_velocity_bins and (
            velocity.min() < constants.MIN_MIDI_VELOCITY
            or velocity.max() > constants.MAX_MIDI_VELOCITY
        ):
            return None
        notes = cls(
            start=times[:, 0],
            end=times[:, 1],
            pitch=pitch,
            velocity=velocity,
            program=ints[:, 2],
            is_drum=ints[:, 3].astype(bool),
            total_time=total,
        )
        if not cfg.apply_sustain:
            return notes
        sustain = cc_ints[:, 0] == 64
        sustained = notes._sustained(
            ints[:, 4], cc_time[sustain], cc_ints[sustain, 1], cc_ints[sustain, 2]
        )
        if sustained is not None:
            return sustained
        # note-seq's own sustain on the selected tracks; the rest stays on arrays
        selected = select_instruments(ns, cfg.instrument_names)
        assert selected is not None  # the same tracks were found above
        base = sequences_lib.apply_sustain_control_changes(selected)
        times, ints = _note_arrays(base)
        return cls(
            start=times[:, 0],
            end=times[:, 1],
            pitch=ints[:, 0],
            velocity=ints[:, 1],
            program=ints[:, 2],
            is_drum=ints[:, 3].astype(bool),
            total_time=float(base.total_time),
        )

    def _sustained(
        self,
        instrument: np.ndarray,
        cc_time: np.ndarray,
        cc_value: np.ndarray,
        cc_instrument: np.ndarray,
    ) -> _Notes | None:
        """note-seq's ``apply_sustain_control_changes`` (pedal = control 64), per note at once.

        note-seq walks events sorted by (time, sustain on < off < note on < off). A pitched note
        stays active from its onset until the first later event of: its own offset with the
        pedal up (end kept); a pedal-up of its instrument after its end (end = that time); an
        onset of the same instrument and pitch with the pedal down (end = that time, the note
        deleted if that leaves it no length); else the last event (end = its time). Each rule
        looks at the pedal and other onsets only, never at other notes' fates, so every note's
        end is found with searches. None when note-seq's equality-based removal could pick
        another note: two pitched notes alike in instrument, pitch, start, velocity and program
        (they may become equal once an end moves).
        """
        pitched = np.flatnonzero(~self.is_drum)
        m = len(pitched)
        if m == 0 and len(cc_time) == 0:
            return self
        start, end = self.start[pitched], self.end[pitched]
        inst, pitch = instrument[pitched], self.pitch[pitched]
        alike = (inst, pitch, start, self.velocity[pitched], self.program[pitched])
        same = np.lexsort(alike)
        if m > 1 and np.logical_and.reduce([np.diff(k[same]) == 0 for k in alike]).any():
            return None
        # events in note-seq's insertion order: onsets, offsets, pedal changes
        t = np.concatenate([start, end, cc_time])
        kind = np.concatenate([np.full(m, 2), np.full(m, 3), np.where(cc_value >= 64, 0, 1)])
        ev_inst = np.concatenate([inst, inst, cc_instrument])
        order = np.lexsort((kind, t))  # stable, as list.sort on (time, type)
        n_ev = len(order)
        pos = np.empty(n_ev, np.int64)
        pos[order] = np.arange(n_ev)
        last_time = float(t[order[-1]])
        kind_s, inst_s = kind[order], ev_inst[order]
        # pedal state after each sorted event, per instrument (down = last change was >= 64)
        down = np.zeros(n_ev, bool)
        for u in np.unique(inst_s):
            at = np.flatnonzero(inst_s == u)
            is_pedal = kind_s[at] <= 1
            last = np.maximum.accumulate(np.where(is_pedal, np.arange(len(at)), -1))
            down[at] = (last >= 0) & (kind_s[at][np.maximum(last, 0)] == 0)
        on_pos, off_pos = pos[:m], pos[m : 2 * m]
        never = n_ev  # a position after every event
        # rule 1: own offset after the onset, pedal up
        cand1 = np.where((off_pos > on_pos) & ~down[off_pos], off_pos, never)
        # rule 2: first pedal-up of the instrument after the onset with time > end
        cand2 = np.full(m, never)
        # rule 3: first onset of the same instrument and pitch after the onset, pedal down
        cand3 = np.full(m, never)
        for u in np.unique(inst):
            mine = np.flatnonzero(inst == u)
            ups = np.flatnonzero((kind_s == 1) & (inst_s == u))
            if len(ups):
                k = np.maximum(
                    np.searchsorted(ups, on_pos[mine], side="right"),
                    np.searchsorted(t[order][ups], end[mine], side="right"),
                )
                cand2[mine] = np.where(k < len(ups), ups[np.minimum(k, len(ups) - 1)], never)
            sounding = mine[down[on_pos[mine]]]  # onsets that end same-pitch notes
            if len(sounding):
                key = pitch[sounding] * (n_ev + 1) + on_pos[sounding]
                key.sort()
                want = pitch[mine] * (n_ev + 1) + on_pos[mine]
                k = np.minimum(np.searchsorted(key, want, side="right"), len(key) - 1)
                hit = key[k] // (n_ev + 1) == pitch[mine]
                hit &= key[k] > want
                cand3[mine] = np.where(hit, key[k] % (n_ev + 1), never)
        first = np.minimum(np.minimum(cand1, cand2), cand3)
        t_sorted = t[order]
        new_end = end.copy()
        by_pedal = (first == cand2) & (first < never)
        by_onset = (first == cand3) & (first < never)
        new_end[by_pedal] = t_sorted[cand2[by_pedal]]
        new_end[by_onset] = t_sorted[cand3[by_onset]]
        hanging = first == never
        new_end[hanging] = last_time
        total = self.total_time
        if by_pedal.any():
            total = max(total, float(new_end[by_pedal].max()))
        if hanging.any():
            total = last_time
        ends = self.end.copy()
        ends[pitched] = new_end
        keep = np.ones(len(self.pitch), bool)
        keep[pitched[by_onset & (start == new_end)]] = False
        return _Notes(
            start=self.start[keep],
            end=ends[keep],
            pitch=self.pitch[keep],
            velocity=self.velocity[keep],
            program=self.program[keep],
            is_drum=self.is_drum[keep],
            total_time=total,
        )

    def chunks(self, stretch: float, cfg: PerformanceExtractConfig) -> list[_Chunk]:
        """``stretch_note_sequence`` + ``split_note_sequence`` + quantisation, as arrays."""
        start, end, total = self.start, self.end, self.total_time
        if stretch != 1.0:  # note-seq: note.start_time *= stretch_factor, in double
            start, end, total = start * stretch, end * stretch, total * stretch
        hop = cfg.split_hop_seconds
        splits = [0.0, *np.arange(hop, total, hop).tolist()]
        if total > splits[-1]:
            splits.append(total)
        if len(splits) < 2:
            return []
        bounds = np.asarray(splits, np.float64)
        order = np.argsort(start, kind="stable")  # _extract_subsequences: sorted by start_time
        s = start[order]
        which = np.searchsorted(bounds, s, side="right") - 1  # bounds[i] <= start < bounds[i+1]
        n_chunks = len(splits) - 1
        first = np.searchsorted(which, np.arange(n_chunks + 1), side="left")
        rel_start = s - bounds[np.clip(which, 0, n_chunks)]
        rel_end = (
            np.minimum(end[order], bounds[np.clip(which + 1, 0, n_chunks)])
            - bounds[np.clip(which, 0, n_chunks)]
        )
        sps = cfg.steps_per_second  # quantize_to_step: int(seconds * sps + (1 - 0.5))
        q_start = (rel_start * sps + (1 - sequences_lib.QUANTIZE_CUTOFF)).astype(np.int64)
        q_end = (rel_end * sps + (1 - sequences_lib.QUANTIZE_CUTOFF)).astype(np.int64)
        q_end = np.where(q_end == q_start, q_end + 1, q_end)
        pitch, velocity = self.pitch[order], self.velocity[order]
        program, is_drum = self.program[order], self.is_drum[order]
        out = []
        for c in range(n_chunks):
            sl = slice(first[c], first[c + 1])
            out.append(
                _Chunk(
                    start=rel_start[sl],
                    q_start=q_start[sl],
                    q_end=q_end[sl],
                    pitch=pitch[sl],
                    velocity=velocity[sl],
                    program=program[sl],
                    is_drum=is_drum[sl],
                )
            )
        return out


def performance_events(
    start: np.ndarray,
    q_start: np.ndarray,
    q_end: np.ndarray,
    pitch: np.ndarray,
    velocity: np.ndarray,
    num_velocity_bins: int,
    max_shift_steps: int = MAX_SHIFT_STEPS,
) -> np.ndarray:
    """note-seq's ``Performance`` of quantised notes as stored indices (int64), untruncated.

    Same rules as ``BasePerformance._from_quantized_sequence``: notes sorted by (start seconds,
    pitch), stably; onsets and offsets sorted by (step, note, offset-after-onset); TIME_SHIFTs
    of at most ``max_shift_steps`` before each new step; a VELOCITY event before an onset whose
    bin differs from the last onset's (bins from 1, the first always emitted).
    """
    n = len(pitch)
    if n == 0:
        return np.zeros(0, np.int64)
    order = np.lexsort((pitch, start))
    steps = np.concatenate([q_start[order], q_end[order]])
    note = np.tile(np.arange(n), 2)
    ev = np.argsort(steps * (2 * n) + 2 * note + (note != np.arange(2 * n)))  # unique keys
    steps, note, is_off = steps[ev], note[ev], ev >= n
    p = pitch[order][note]
    gap = steps.copy()  # steps moved since the previous event (the clock starts at 0)
    gap[1:] -= steps[:-1]
    n_shift = (gap + max_shift_steps - 1) // max_shift_steps
    if num_velocity_bins:
        size = math.ceil(
            (constants.MAX_MIDI_VELOCITY - constants.MIN_MIDI_VELOCITY + 1) / num_velocity_bins
        )
        vbin = (velocity[order][note] - constants.MIN_MIDI_VELOCITY) // size + 1
        on_bins = vbin[~is_off]
        changed = on_bins != np.concatenate([[0], on_bins[:-1]])
        has_vel = np.zeros(2 * n, np.int64)
        has_vel[~is_off] = changed
    else:
        vbin = has_vel = np.zeros(2 * n, np.int64)
    sizes = n_shift + has_vel + 1
    first = np.cumsum(sizes) - sizes
    out = np.empty(int(sizes.sum()), np.int64)
    total_shifts = int(n_shift.sum())
    if total_shifts:
        shift_first = np.cumsum(n_shift) - n_shift
        group = np.repeat(np.arange(2 * n), n_shift)
        within = np.arange(total_shifts) - shift_first[group]
        last = within == n_shift[group] - 1
        rest = gap[group] - (n_shift[group] - 1) * max_shift_steps
        out[first[group] + within] = np.where(last, rest, max_shift_steps) + (TIME_SHIFT - 1)
    vel = has_vel.astype(bool)
    out[(first + n_shift)[vel]] = vbin[vel] + (VELOCITY - 1)
    out[first + n_shift + has_vel] = np.where(is_off, NOTE_OFF, NOTE_ON) + p
    return out


def _extract_chunk_fast(
    chunk: _Chunk, cfg: PerformanceExtractConfig, stretch: float, amounts: Sequence[int]
) -> Iterator[Extracted | Dropped]:
    """:func:`_extract_chunk` on a :class:`_Chunk`: the same yields in the same order."""
    if chunk.q_start.size and (chunk.q_start.min() < 0 or chunk.q_end.min() < 0):
        yield Dropped("sequences_discarded_because_negative_time")
        return
    if chunk.program.size and chunk.program.min() != chunk.program.max():
        yield Dropped("performances_discarded_more_than_1_program")
        return

    def events_for(pitch: np.ndarray) -> np.ndarray:
        return performance_events(
            chunk.start, chunk.q_start, chunk.q_end, pitch, chunk.velocity, cfg.num_velocity_bins
        )

    full = events_for(chunk.pitch)
    if len(full) > cfg.max_events:
        full = full[: cfg.max_events]
        truncated = True
    else:
        truncated = False
    if len(full) < cfg.min_events:
        yield Dropped("performances_discarded_too_short")
        return
    if truncated:
        yield Dropped("performances_truncated")
    events = full.astype(np.int16)
    pitches = chunk.pitch[~chunk.is_drum]
    lo, hi = (int(pitches.min()), int(pitches.max())) if pitches.size else (None, None)
    has_drums = bool(chunk.is_drum.any())
    is_note = events < TIME_SHIFT
    for amount in amounts:
        if lo is not None and (lo + amount < cfg.min_pitch or hi + amount > cfg.max_pitch):
            yield Dropped("skipped_due_to_range_exceeded")
            continue
        if amount == 0:
            moved = events
        elif has_drums:  # drums keep their pitch, which can reorder events: rebuild fully
            moved_pitch = np.where(chunk.is_drum, chunk.pitch, chunk.pitch + amount)
            moved = events_for(moved_pitch)[: cfg.max_events].astype(np.int16)
        else:  # same order, shifted pitches: NOTE_ON/OFF indices move by `amount`
            moved = np.where(is_note, events + amount, events).astype(np.int16)
        yield Extracted(events=moved, transposition=int(amount), stretch=stretch)


# --------------------------------------------------------------------------------------------
# Vectorised event arithmetic (time, controls)
# --------------------------------------------------------------------------------------------


def shift_steps(events: torch.Tensor) -> torch.Tensor:
    """Steps each event moves the clock (B, T) long: the TIME_SHIFT amount, else 0."""
    events = events.long()
    is_shift = (events >= TIME_SHIFT) & (events < VELOCITY)
    return torch.where(is_shift, events - (TIME_SHIFT - 1), torch.zeros_like(events))


def event_seconds(events: torch.Tensor, steps_per_second: int = STEPS_PER_SECOND) -> torch.Tensor:
    """Seconds of music each event covers (B, T) float: TIME_SHIFT s -> s / 100, others 0.

    Loss per second of music = sum of label losses / sum of ``event_seconds`` of the labels.
    """
    return shift_steps(events).double().div(steps_per_second).float()


def event_start_steps(events: torch.Tensor) -> torch.Tensor:
    """Clock (steps) before each event, plus the clock after the last: (B, T + 1) long."""
    s = shift_steps(events)
    return F.pad(torch.cumsum(s, dim=1), (1, 0))


def _neutralise(events: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    events = events.long()
    if mask is None:
        return events
    return torch.where(mask.bool(), events, torch.full_like(events, NEUTRAL_PAD))


def _window_ends(clock: torch.Tensor, window_steps: int) -> torch.Tensor:
    """For each event i, the first event index j with clock[j] >= clock[i] + window (B, T)."""
    starts = clock[:, :-1].contiguous()
    return torch.searchsorted(starts, starts + window_steps, right=False)


def _anchors(events: torch.Tensor) -> torch.Tensor:
    """Index of the event whose window value event i reuses (B, T).

    note-seq recomputes a control only at the first event and after a TIME_SHIFT; other events
    repeat the previous value (the clock did not move).
    """
    b, t = events.shape
    is_shift = (events >= TIME_SHIFT) & (events < VELOCITY)
    fresh = torch.ones_like(is_shift)
    fresh[:, 1:] = is_shift[:, :-1]
    idx = torch.arange(t, device=events.device).expand(b, t)
    return torch.cummax(torch.where(fresh, idx, torch.zeros_like(idx)), dim=1).values


def note_density(
    events: torch.Tensor,
    *,
    window_seconds: float = DENSITY_WINDOW_SECONDS,
    steps_per_second: int = STEPS_PER_SECOND,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Notes per second in the window starting at each event (B, T) float64.

    Same value as note-seq's ``NoteDensityPerformanceControlSignal.extract``: NOTE_ONs from the
    event on while the clock is less than ``window`` ahead, divided by the window (clipped to the
    time left in the sequence). ``mask`` marks real events; padded ones are neutralised.
    """
    events = _neutralise(events, mask)
    if events.shape[1] == 0:
        return torch.zeros(events.shape, dtype=torch.float64, device=events.device)
    window = round(window_seconds * steps_per_second)
    clock = event_start_steps(events)
    ends = _window_ends(clock, window)
    ons = F.pad(torch.cumsum((events < NOTE_OFF).long(), dim=1), (1, 0))
    count = ons.gather(1, ends) - ons[:, :-1]
    span = torch.clamp(clock[:, -1:] - clock[:, :-1], max=window)
    density = torch.where(
        span > 0,
        (count * steps_per_second).double() / span.clamp(min=1),
        torch.zeros_like(count, dtype=torch.float64),
    )
    return density.gather(1, _anchors(events))


def _active_pitch_classes(events: torch.Tensor) -> torch.Tensor:
    """Number of sounding pitches per pitch class after each event (B, T, 12) long.

    A pitch sounds when its latest NOTE_ON/NOTE_OFF is a NOTE_ON (set semantics, as note-seq).
    Each NOTE_ON owns the span up to the next event of the same pitch: a stable sort by
    (pitch, position) finds that next event, and a difference array summed over time counts the
    spans covering each position.
    """
    b, t = events.shape
    is_note = events < TIME_SHIFT
    is_on = events < NOTE_OFF
    pitch = events % 128
    pos = torch.arange(t, device=events.device).expand(b, t)
    key = torch.where(is_note, pitch * t + pos, torch.full_like(pos, 128 * t))
    key_sorted, order = torch.sort(key, dim=1, stable=True)
    same_pitch_next = torch.zeros_like(is_note)
    same_pitch_next[:, :-1] = key_sorted[:, 1:] // t == key_sorted[:, :-1] // t
    next_sorted = torch.full_like(pos, t)
    next_sorted[:, :-1] = torch.where(same_pitch_next[:, :-1], order[:, 1:], t)
    next_pos = torch.empty_like(pos).scatter_(1, order, next_sorted)
    on = (is_note & is_on).long()
    pc = pitch % 12
    delta = torch.zeros((b, (t + 1) * 12), dtype=torch.long, device=events.device)
    delta.scatter_add_(1, pos * 12 + pc, on)  # +1 where a NOTE_ON starts sounding
    delta.scatter_add_(1, next_pos * 12 + pc, -on)  # -1 at the next event of its pitch
    return torch.cumsum(delta.view(b, t + 1, 12), dim=1)[:, :t]


def pitch_histogram(
    events: torch.Tensor,
    *,
    window_seconds: float = HISTOGRAM_WINDOW_SECONDS,
    prior_count: float = HISTOGRAM_PRIOR_COUNT,
    steps_per_second: int = STEPS_PER_SECOND,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Seconds each pitch class sounds in the window from each event, plus a prior (B, T, 12).

    Same value as note-seq's ``PitchHistogramPerformanceControlSignal.extract`` (un-normalised);
    sums are exact integers of steps, divided once (note-seq adds floats, so values agree to
    ~1e-15).
    """
    events = _neutralise(events, mask)
    b, t = events.shape
    if t == 0:
        return torch.zeros((b, 0, 12), dtype=torch.float64, device=events.device)
    window = round(window_seconds * steps_per_second)
    clock = event_start_steps(events)
    ends = _window_ends(clock, window)
    weight = _active_pitch_classes(events) * shift_steps(events).unsqueeze(-1)
    cum = F.pad(torch.cumsum(weight, dim=1), (0, 0, 1, 0))
    steps = cum.gather(1, ends.unsqueeze(-1).expand(b, t, 12)) - cum[:, :-1]
    hist = prior_count + steps.double() / steps_per_second
    return hist.gather(1, _anchors(events).unsqueeze(-1).expand(b, t, 12))


def density_bins(
    density: torch.Tensor, bin_ranges: Sequence[float] = DENSITY_BIN_RANGES
) -> torch.Tensor:
    """note-seq's ``NoteDensityOneHotEncoding`` index: how many bin bounds are <= density."""
    bounds = torch.tensor(bin_ranges, dtype=torch.float64, device=density.device)
    return torch.bucketize(density.double().contiguous(), bounds, right=True)


def normalise_histogram(hist: torch.Tensor) -> torch.Tensor:
    """note-seq's ``PitchHistogramEncoder``: divide by the total, uniform when it is 0."""
    total = hist.sum(dim=-1, keepdim=True)
    uniform = torch.full_like(hist, 1.0 / 12)
    return torch.where(total > 0, hist / torch.where(total > 0, total, 1.0), uniform)


# --------------------------------------------------------------------------------------------
# Encodings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ControlledPerformance:
    """Performance one-hot conditioned on note density and/or pitch-class histogram.

    Inputs are ``[density one-hot (8)] + [histogram (12)] + event one-hot``, as note-seq's
    ``ConditionalEventSequenceEncoderDecoder(MultipleEventSequenceEncoder([...]), one-hot)``:
    row t holds the controls at event t + 1 and the one-hot of event t. Conditioning keys are
    ``"note_density"`` (B, T) and ``"pitch_histogram"`` (B, T, 12) raw values (notes per second,
    seconds per class); :meth:`inputs` encodes them. Magenta's ``optional_conditioning`` flag
    (its ``optional_multiconditioned_*`` config only) is not implemented.
    """

    name: str
    num_velocity_bins: int = 32
    density: bool = False
    histogram: bool = False
    density_window_seconds: float = DENSITY_WINDOW_SECONDS
    density_bin_ranges: tuple[float, ...] = DENSITY_BIN_RANGES
    histogram_window_seconds: float = HISTOGRAM_WINDOW_SECONDS
    histogram_prior_count: float = HISTOGRAM_PRIOR_COUNT
    steps_per_second: int = STEPS_PER_SECOND

    def __post_init__(self) -> None:
        if not (self.density or self.histogram):
            raise ValueError("a controlled performance encoding needs density and/or histogram")

    @property
    def event_space(self) -> str:
        return event_space_name(self.num_velocity_bins)

    @property
    def num_classes(self) -> int:
        return num_classes(self.num_velocity_bins)

    @property
    def control_size(self) -> int:
        return (len(self.density_bin_ranges) + 1) * self.density + 12 * self.histogram

    @property
    def input_size(self) -> int:
        return self.control_size + self.num_classes

    def _check_cond(self, cond: Cond, needed: int) -> None:
        for key, used in (("note_density", self.density), ("pitch_histogram", self.histogram)):
            if not used:
                continue
            if key not in cond:
                raise ValueError(f"{self.name} needs conditioning {key!r}")
            have = cond[key].shape[1]
            if have < needed:
                raise ValueError(
                    f"{key} covers {have} positions; {needed} needed "
                    "(conditioning must be one longer than the events)"
                )

    def _fill_controls(self, out: torch.Tensor, cond: Cond, start: int) -> None:
        """Write encoded controls of positions ``start ..`` into ``out[..., :control_size]``."""
        length = out.shape[1]
        col = 0
        if self.density:
            d = cond["note_density"][:, start : start + length]
            bins = density_bins(d, self.density_bin_ranges)
            out.scatter_(2, (col + bins).unsqueeze(-1), 1.0)
            col += len(self.density_bin_ranges) + 1
        if self.histogram:
            h = cond["pitch_histogram"][:, start : start + length]
            out[..., col : col + 12] = normalise_histogram(h.double()).to(out.dtype)

    def control_inputs(
        self, cond: Cond, start: int, length: int, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """Encoded controls of positions ``start .. start + length - 1`` (B, length, size);
        float64 unless ``dtype`` says otherwise."""
        self._check_cond(cond, start + length)
        ref = cond["note_density" if self.density else "pitch_histogram"]
        dtype = torch.float64 if dtype is None else dtype
        out = torch.zeros((ref.shape[0], length, self.control_size), dtype=dtype, device=ref.device)
        self._fill_controls(out, cond, start)
        return out

    def inputs(self, events: torch.Tensor, cond: Cond) -> torch.Tensor:
        b, t = events.shape
        self._check_cond(cond, t + 1)
        out = torch.zeros((b, t, self.input_size), dtype=torch.float32, device=events.device)
        self._fill_controls(out, cond, 1)
        out.scatter_(2, (self.control_size + events.long()).unsqueeze(-1), 1.0)
        return out

    def labels(self, events: torch.Tensor, cond: Cond) -> torch.Tensor:
        return events.long()

    def conditions(self, events: torch.Tensor, stored: Cond) -> dict[str, torch.Tensor]:
        """Controls computed from the events themselves.

        Controls look ahead (a window after each event), so padding must not count:
        ``stored["mask"]`` (B, T) marks real events when batches are padded; without it, every
        position is taken as real (pad with :data:`NEUTRAL_PAD` to be safe either way).
        """
        mask = stored.get("mask")
        out: dict[str, torch.Tensor] = {}
        if self.density:
            out["note_density"] = note_density(
                events,
                window_seconds=self.density_window_seconds,
                steps_per_second=self.steps_per_second,
                mask=mask,
            )
        if self.histogram:
            out["pitch_histogram"] = pitch_histogram(
                events,
                window_seconds=self.histogram_window_seconds,
                prior_count=self.histogram_prior_count,
                steps_per_second=self.steps_per_second,
                mask=mask,
            )
        return out

    def decode_label(self, labels: torch.Tensor, events: torch.Tensor) -> torch.Tensor:
        return labels.long()

    def control_from_request(
        self,
        events: torch.Tensor,
        *,
        notes_per_second: float | Sequence[float] | None = None,
        pitch_class_histogram: Sequence[float] | Sequence[Sequence[float]] | None = None,
        total_steps: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Conditioning for generation (length T + 1 for events (B, T)) from requested values.

        As Magenta's generator: a single value holds for the whole piece; a list of values splits
        ``total_steps`` (primer + generated clock steps) into equal segments, and the value at
        event k is the one of the segment holding the clock before event k. Missing controls
        take Magenta's defaults (15 notes/s, a flat histogram).
        """
        densities = _density_values(notes_per_second) if self.density else None
        histograms = _histogram_values(pitch_class_histogram) if self.histogram else None
        if not self.density and notes_per_second is not None:
            raise ValueError(f"variant {self.name} is not conditioned on notes_per_second")
        if not self.histogram and pitch_class_histogram is not None:
            raise ValueError(f"variant {self.name} is not conditioned on pitch_class_histogram")
        segments = max(len(v) for v in (densities, histograms) if v is not None)
        if segments > 1 and (total_steps is None or total_steps <= 0):
            raise ValueError("several control values need total_steps (> 0) to place them")
        clock = event_start_steps(events.long())
        out: dict[str, torch.Tensor] = {}
        if densities is not None:
            table = torch.tensor(densities, dtype=torch.float64, device=events.device)
            out["note_density"] = table[_segment(clock, len(densities), total_steps)]
        if histograms is not None:
            table = torch.tensor(histograms, dtype=torch.float64, device=events.device)
            out["pitch_histogram"] = table[_segment(clock, len(histograms), total_steps)]
        return out


def _segment(clock: torch.Tensor, n: int, total_steps: int | None) -> torch.Tensor:
    """Magenta's ``_step_to_value``: min(step * n // total, n - 1)."""
    if n == 1:
        return torch.zeros_like(clock)
    return torch.clamp(clock * n // int(total_steps), max=n - 1)


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _density_values(value: float | Sequence[float] | None) -> list[float]:
    if value is None:
        return [float(DEFAULT_NOTE_DENSITY)]
    values = [value] if _is_number(value) else list(value)
    if not values or not all(_is_number(v) and v >= 0 for v in values):
        raise ValueError(f"notes_per_second must be a number >= 0 or a list of them, got {value!r}")
    return [float(v) for v in values]


def _histogram_values(
    value: Sequence[float] | Sequence[Sequence[float]] | None,
) -> list[list[float]]:
    if value is None:
        return [list(DEFAULT_PITCH_HISTOGRAM)]
    items = list(value)
    rows = [items] if items and all(_is_number(v) for v in items) else items
    for row in rows:
        if (
            isinstance(row, (str, bytes))
            or not isinstance(row, Sequence)
            or len(row) != 12
            or not all(_is_number(v) and v >= 0 for v in row)
        ):
            raise ValueError(
                "pitch_class_histogram must be 12 numbers >= 0 (C..B) or a list of "
                f"such lists, got {value!r}"
            )
    if not rows:
        raise ValueError("pitch_class_histogram is empty")
    return [[float(v) for v in row] for row in rows]


# --------------------------------------------------------------------------------------------
# Decoding and generation helpers
# --------------------------------------------------------------------------------------------


def to_note_sequence(
    events: np.ndarray,
    cond: Mapping[str, np.ndarray] | None = None,
    *,
    num_velocity_bins: int = 32,
    steps_per_second: int = STEPS_PER_SECOND,
    velocity: int = 100,
    instrument: int = 0,
    program: int | None = None,
    max_note_duration: float | None = MAX_NOTE_DURATION_SECONDS,
) -> music_pb2.NoteSequence:
    """Notes of stored performance events via note-seq's ``Performance.to_sequence``.

    NOTE_OFFs without a NOTE_ON are ignored and hanging notes end after ``max_note_duration``
    seconds (Magenta's generator default, 5 s). ``num_velocity_bins`` must be the event space's.
    """
    events = np.asarray(events, np.int64).reshape(-1)
    n = num_classes(num_velocity_bins)
    bad = events[(events < 0) | (events >= n)]
    if bad.size:
        raise ValueError(
            f"performance event index {int(bad[0])} outside 0..{n - 1} "
            f"(performance:v{num_velocity_bins})"
        )
    encoding = PerformanceOneHotEncoding(num_velocity_bins=num_velocity_bins)
    perf = performance_lib.Performance(
        steps_per_second=steps_per_second, num_velocity_bins=num_velocity_bins
    )
    for index in events.tolist():
        perf.append(encoding.decode_event(index))
    return perf.to_sequence(
        velocity=velocity,
        instrument=instrument,
        program=program,
        max_note_duration=max_note_duration,
    )


def primer_events(
    primer: music_pb2.NoteSequence,
    *,
    num_velocity_bins: int = 32,
    steps_per_second: int = STEPS_PER_SECOND,
) -> np.ndarray:
    """A primer NoteSequence as stored events, padded with TIME_SHIFTs to its total time.

    As Magenta's generator (note-seq ``Performance`` of the absolutely quantised primer, then
    ``set_length``), except the length is ceil(total_time) steps where Magenta's floor + 1 adds
    10 ms of silence to a primer ending on a step boundary.
    """
    if primer.notes and len({n.program for n in primer.notes}) > 1:
        raise ValueError("the primer uses more than one MIDI program")
    try:
        qns = sequences_lib.quantize_note_sequence_absolute(primer, steps_per_second)
    except sequences_lib.NegativeTimeError as err:
        raise ValueError(f"cannot quantise the primer: {err}") from None
    perf = performance_lib.Performance(qns, num_velocity_bins=num_velocity_bins)
    steps = max(math.ceil(primer.total_time * steps_per_second - 1e-6), perf.num_steps)
    perf.set_length(steps)
    return performance_indices(perf, PerformanceOneHotEncoding(num_velocity_bins))


def events_from_primer_pitches(
    pitches: Sequence[int], *, num_velocity_bins: int = 32
) -> np.ndarray:
    """``--primer_pitches`` (a chord held for a quarter at 120 qpm) as stored events."""
    return primer_events(primer_from_pitches(pitches), num_velocity_bins=num_velocity_bins)


def events_from_primer_melody(melody: Sequence[int], *, num_velocity_bins: int = 32) -> np.ndarray:
    """``--primer_melody`` (note-seq Melody values at 120 qpm) as stored events."""
    return primer_events(primer_from_melody(melody), num_velocity_bins=num_velocity_bins)


def scale_mask(pitch_classes: Iterable[int], *, num_velocity_bins: int = 32) -> torch.Tensor:
    """Bool (classes,) allowing NOTE_ON only inside the given pitch classes; all else allowed."""
    allowed = np.zeros(12, bool)
    for pc in pitch_classes:
        if not 0 <= int(pc) <= 11:
            raise ValueError(f"pitch class {pc!r} is not 0..11")
        allowed[int(pc)] = True
    ok = np.ones(num_classes(num_velocity_bins), bool)
    ok[:128] = allowed[np.arange(128) % 12]
    return torch.from_numpy(ok)


# --------------------------------------------------------------------------------------------
# Variants (Magenta's performance_model.default_configs)
# --------------------------------------------------------------------------------------------

_HPARAMS = HParams(
    batch_size=64,
    rnn_layer_sizes=(512, 512, 512),
    dropout_keep_prob=1.0,
    clip_norm=3.0,
    learning_rate=1e-3,
)

PERFORMANCE = OneHot("performance", event_space_name(0), num_classes(0))
PERFORMANCE_WITH_DYNAMICS = OneHot(
    "performance_with_dynamics", event_space_name(32), num_classes(32)
)
DENSITY_CONDITIONED = ControlledPerformance("density_conditioned", density=True)
PITCH_CONDITIONED = ControlledPerformance("pitch_conditioned", histogram=True)
MULTICONDITIONED = ControlledPerformance("multiconditioned", density=True, histogram=True)

VARIANTS: dict[str, VariantConfig] = {
    v.name: v
    for v in (
        VariantConfig(
            "performance",
            NAME,
            PERFORMANCE,
            _HPARAMS,
            "NOTE_ON/NOTE_OFF x128, TIME_SHIFT x100 (10 ms), no velocity",
        ),
        VariantConfig(
            "performance_with_dynamics",
            NAME,
            PERFORMANCE_WITH_DYNAMICS,
            _HPARAMS,
            "+ VELOCITY x32 bins",
        ),
        VariantConfig(
            "density_conditioned_performance_with_dynamics",
            NAME,
            DENSITY_CONDITIONED,
            _HPARAMS,
            "conditioned on notes per second over 3 s (8 bins)",
        ),
        VariantConfig(
            "pitch_conditioned_performance_with_dynamics",
            NAME,
            PITCH_CONDITIONED,
            _HPARAMS,
            "conditioned on the pitch-class histogram over 5 s",
        ),
        VariantConfig(
            "multiconditioned_performance_with_dynamics",
            NAME,
            MULTICONDITIONED,
            _HPARAMS,
            "conditioned on note density and pitch-class histogram",
        ),
    )
}
