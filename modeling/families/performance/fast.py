"""Fast extraction: note-seq's stretch / split / quantise / ``Performance`` on note arrays.

Bit-identical to the note-seq path of :mod:`.extract` (proven in tests), several times faster;
:func:`.extract.extract` uses it unless asked not to.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from note_seq import constants, sequences_lib
from note_seq.protobuf import music_pb2

from modeling.families.base import Dropped, Extracted
from modeling.families.performance.config import (
    MAX_SHIFT_STEPS,
    NOTE_OFF,
    NOTE_ON,
    TIME_SHIFT,
    VELOCITY,
    PerformanceExtractConfig,
    _instrument_ids,
    select_instruments,
)


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
