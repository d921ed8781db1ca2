"""Melody encodings in torch: lookback (:class:`MelodyLookback`) and key (:class:`KeyMelody`),
plus the plain one-hot of a pitch range (:func:`melody_onehot`).

Re-statements of note-seq's ``LookbackEventSequenceEncoderDecoder`` and
``KeyMelodyEncoderDecoder`` over whole (B, T) batches; the improv family uses them as the target
half of its chord-conditioned encodings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from note_seq import constants

from modeling.families.base import Cond, Encoding, lazy_import
from modeling.families.melody.extract import (
    DEFAULT_LOOKBACK_DISTANCES,
    NO_EVENT_INDEX,
    NOTE_OFF_INDEX,
    NUM_SPECIAL,
    event_space_name,
    parse_event_space,
)
from modeling.families.onehot import OneHot
from modeling.music import STEPS_PER_BAR

if TYPE_CHECKING:
    import torch
    import torch.nn.functional as F
else:
    torch = lazy_import("torch", globals())
    F = lazy_import("torch.nn.functional", globals(), "F")


def last_index(mask: torch.Tensor) -> torch.Tensor:
    """For each (b, t): the largest s <= t with mask[b, s], else -1 (a cumulative max scan)."""
    pos = torch.arange(mask.shape[-1], device=mask.device)
    return torch.where(mask, pos, torch.full_like(pos, -1)).cummax(dim=-1).values


def _gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[b, index[b, t]] with negative indices clamped (callers mask them)."""
    return x.gather(-1, index.clamp(min=0))


def _shift_right(x: torch.Tensor, d: int, fill: int) -> torch.Tensor:
    """y[:, t] = x[:, t - d] (``fill`` where t < d)."""
    if d <= 0:
        return x
    pad = torch.full((*x.shape[:-1], min(d, x.shape[-1])), fill, dtype=x.dtype, device=x.device)
    return torch.cat([pad, x[..., : max(x.shape[-1] - d, 0)]], dim=-1)


def _binary_counter(n: torch.Tensor, bits: int) -> torch.Tensor:
    """±1 bits of ``n`` (note-seq's metric counters), shape (*n.shape, bits)."""
    shifts = torch.arange(bits, device=n.device)
    return ((n.unsqueeze(-1) >> shifts) & 1).float() * 2.0 - 1.0


def _repeat_flags(events: torch.Tensor, distances: Sequence[int]) -> list[torch.Tensor]:
    """events[t] == events[t - d] (False where t < d), one bool tensor per distance."""
    pos = torch.arange(events.shape[-1], device=events.device)
    return [(pos >= d) & (events == _shift_right(events, d, -1)) for d in distances]


def _check_events(events: torch.Tensor, num_classes: int) -> torch.Tensor:
    if events.dim() != 2:
        raise ValueError(f"events must be (B, T), got shape {tuple(events.shape)}")
    events = events.long()
    if events.numel() and (events.min() < 0 or events.max() >= num_classes):
        raise ValueError(
            f"event index out of range [0, {num_classes}): "
            f"min {int(events.min())}, max {int(events.max())}"
        )
    return events


def _lookback_decode(
    labels: torch.Tensor,
    events: torch.Tensor,
    first_repeat_class: int,
    distances: Sequence[int],
    plain: torch.Tensor,
) -> torch.Tensor:
    """Resolve "repeat d steps ago" classes against history ``events`` (B, T)."""
    out = plain
    t = events.shape[-1]
    for i, d in enumerate(distances):
        past = torch.full_like(labels, NO_EVENT_INDEX) if t < d else events[:, t - d].long()
        out = torch.where(labels == first_repeat_class + i, past, out)
    return out


@dataclass(frozen=True)
class _LookbackMelody:
    """The fields both lookback-style melody encodings share: a pitch range (its event space)
    and the distances a "repeat d steps ago" class looks back over."""

    min_note: int = 48
    max_note: int = 84
    lookback_distances: tuple[int, ...] = DEFAULT_LOOKBACK_DISTANCES

    @property
    def event_space(self) -> str:
        return event_space_name(self.min_note, self.max_note)

    def _with_repeats(self, ev: torch.Tensor, lab: torch.Tensor, first: int) -> torch.Tensor:
        """``lab`` with the "repeat d ago" classes (numbered from ``first``) where an event repeats;
        a rest before the longest lookback takes the last class, as in note-seq."""
        # Later (longer) lookbacks take precedence, as note-seq checks them first.
        for i, rep in enumerate(_repeat_flags(ev, self.lookback_distances)):
            lab = torch.where(rep, first + i, lab)
        if self.lookback_distances:
            pos = torch.arange(ev.shape[-1], device=ev.device)
            early_rest = (pos < self.lookback_distances[-1]) & (ev == NO_EVENT_INDEX)
            lab = torch.where(early_rest, self.num_classes - 1, lab)
        return lab

    def _aliases(self, ev: torch.Tensor, plain: torch.Tensor) -> torch.Tensor:
        """(B, T, C) bool: every class that decodes to ``ev[:, t]`` after its history: the plain
        class and each "repeat d ago" class whose past event is the same (a rest before the start
        for t < d, as decoding reads it)."""
        out = F.one_hot(plain, self.num_classes).bool()
        first = self.num_classes - len(self.lookback_distances)
        for i, d in enumerate(self.lookback_distances):
            out[..., first + i] = _shift_right(ev, d, NO_EVENT_INDEX) == ev
        return out


@dataclass(frozen=True)
class MelodyLookback(_LookbackMelody):
    """note-seq ``LookbackEventSequenceEncoderDecoder(MelodyOneHotEncoding(min, max))``.

    Inputs: current event one-hot, the event that followed each lookback position (what a repeat
    would play next), a binary counter of the *next* step, and "current step repeats d ago"
    flags. Labels add one "repeat d steps ago" class per lookback distance.
    """

    name: str = "lookback"
    binary_counter_bits: int = 5

    @property
    def num_events(self) -> int:
        return self.max_note - self.min_note + NUM_SPECIAL

    @property
    def input_size(self) -> int:
        n, k = self.num_events, len(self.lookback_distances)
        return n + k * n + self.binary_counter_bits + k

    @property
    def num_classes(self) -> int:
        return self.num_events + len(self.lookback_distances)

    def inputs(self, events: torch.Tensor, cond: Cond) -> torch.Tensor:
        ev = _check_events(events, self.num_events)
        n = self.num_events
        parts = [F.one_hot(ev, n).float()]
        for d in self.lookback_distances:
            # Event at t - d + 1 (the default "no event" before the start).
            parts.append(F.one_hot(_shift_right(ev, d - 1, NO_EVENT_INDEX), n).float())
        pos = torch.arange(ev.shape[-1], device=ev.device).expand_as(ev)
        parts.append(_binary_counter(pos + 1, self.binary_counter_bits))
        parts.extend(f.float().unsqueeze(-1) for f in _repeat_flags(ev, self.lookback_distances))
        return torch.cat(parts, dim=-1)

    def labels(self, events: torch.Tensor, cond: Cond) -> torch.Tensor:
        ev = _check_events(events, self.num_events)
        return self._with_repeats(ev, ev.clone(), self.num_events)

    def label_aliases(self, events: torch.Tensor, cond: Cond) -> torch.Tensor:
        """Classes meaning the same event as ``labels`` (see :func:`label_aliases`)."""
        ev = _check_events(events, self.num_events)
        return self._aliases(ev, ev)

    def conditions(self, events: torch.Tensor, stored: Cond) -> dict[str, torch.Tensor]:
        return {}

    def decode_label(self, labels: torch.Tensor, events: torch.Tensor) -> torch.Tensor:
        labels = labels.long()
        plain = labels.clamp(max=self.num_events - 1)
        return _lookback_decode(labels, events, self.num_events, self.lookback_distances, plain)


def _key_matrix(device: torch.device | None = None) -> torch.Tensor:
    """M[pc, key] = 1 if pitch class pc is in major key ``key`` (note-seq's NOTE_KEYS)."""
    m = torch.zeros(12, 12)
    for pc, keys in enumerate(constants.NOTE_KEYS):
        m[pc, keys] = 1.0
    return m.to(device) if device is not None else m


def _max_mask(hist: torch.Tensor) -> torch.Tensor:
    return (hist == hist.max(dim=-1, keepdim=True).values).float()


@dataclass(frozen=True)
class KeyMelody(_LookbackMelody):
    """note-seq ``KeyMelodyEncoderDecoder(min_note, max_note)`` (attention_rnn's encoding).

    Input columns (74 for 48..84): current pitch one-hot, note/silence, attack, ascending ±1,
    repeat-d-ago flags, 7-bit counter of the next step, next-step-starts-a-bar, the major keys
    that best fit all notes so far, and those that best fit the last 3 distinct pitches.
    Labels: pitch classes 0..R-1, R no event, R+1 note off, then one repeat class per lookback.
    Every column is a cumulative scan over T, equal to note-seq's per-position Python loop.
    """

    name: str = "key_melody"
    binary_counter_bits: int = 7

    @property
    def note_range(self) -> int:
        return self.max_note - self.min_note

    @property
    def input_size(self) -> int:
        return (
            self.note_range
            + 2
            + 1
            + 1
            + len(self.lookback_distances)
            + self.binary_counter_bits
            + 1
            + 12
            + 12
        )

    @property
    def num_classes(self) -> int:
        return self.note_range + NUM_SPECIAL + len(self.lookback_distances)

    def inputs(self, events: torch.Tensor, cond: Cond) -> torch.Tensor:
        r = self.note_range
        ev = _check_events(events, r + NUM_SPECIAL)
        b, t = ev.shape
        dev = ev.device
        pos = torch.arange(t, device=dev)
        is_pitch = ev >= NUM_SPECIAL
        rel = (ev - NUM_SPECIAL).clamp(min=0)  # 0..R-1 at note-ons
        pitch = rel + self.min_note

        # Current note: the last event that is not "no event"; a note-off means silence.
        # note-seq tests `if current_note:`, so MIDI pitch 0 also reads as silence.
        last_active = last_index(ev != NO_EVENT_INDEX)
        cur = _gather(ev, last_active)
        playing = (last_active >= 0) & (cur >= NUM_SPECIAL)
        playing &= (cur - NUM_SPECIAL + self.min_note) != 0
        note_cols = F.one_hot((cur - NUM_SPECIAL).clamp(min=0, max=r - 1), r).float()
        note_cols = note_cols * playing.unsqueeze(-1)

        # Attack: the last event that is not a note-off is a note-on (note-offs keep the flag).
        last_not_off = last_index(ev != NOTE_OFF_INDEX)
        attack = (last_not_off >= 0) & (_gather(ev, last_not_off) >= NUM_SPECIAL)

        # Ascending: sign of the last non-zero interval between consecutive note-ons.
        last_on = last_index(is_pitch)
        prev_on = _shift_right(last_on, 1, -1)
        interval = torch.where(
            is_pitch & (prev_on >= 0), pitch - _gather(pitch, prev_on), torch.zeros_like(pitch)
        )
        last_move = last_index(interval != 0)
        ascending = torch.where(
            last_move >= 0, _gather(interval, last_move).sign(), torch.zeros_like(interval)
        )

        repeats = _repeat_flags(ev, self.lookback_distances)
        counter = _binary_counter((pos + 1).expand(b, t), self.binary_counter_bits)
        bar_start = ((pos + 1) % STEPS_PER_BAR == 0).expand(b, t)

        keys = _key_matrix(dev)
        onset_pc = F.one_hot(pitch % 12, 12).float() * is_pitch.unsqueeze(-1)
        all_keys = _max_mask(onset_pc.cumsum(dim=1) @ keys)

        # The last 3 distinct pitches (note-seq's LRU deque) are the 3 pitches whose latest
        # onset is most recent: top-3 of each pitch's last-onset position.
        # (Scanned as contiguous (B, R, T) int32: ~2x faster than cummax over dim 1.)
        onset = F.one_hot(rel, r).bool() & is_pitch.unsqueeze(-1)
        last_seen = torch.where(onset, pos.view(1, t, 1).int(), -1).transpose(1, 2).contiguous()
        last_seen = last_seen.cummax(dim=-1).values.transpose(1, 2)
        top_pos, top_rel = last_seen.topk(min(3, r), dim=-1)
        recent_pc = (top_rel + self.min_note) % 12
        recent_hist = torch.zeros(b, t, 12, device=dev).scatter_add_(
            -1, recent_pc, (top_pos >= 0).float()
        )
        recent_keys = _max_mask(recent_hist @ keys)

        return torch.cat(
            [
                note_cols,
                playing.float().unsqueeze(-1),
                (~playing).float().unsqueeze(-1),
                attack.float().unsqueeze(-1),
                ascending.float().unsqueeze(-1),
                *(f.float().unsqueeze(-1) for f in repeats),
                counter,
                bar_start.float().unsqueeze(-1),
                all_keys,
                recent_keys,
            ],
            dim=-1,
        )

    def repeat_pitch_classes(self, events: torch.Tensor) -> torch.Tensor:
        """(B, T, 12 per lookback distance): row t marks the pitch class that each repeat class
        would play at step t + 1 (the event d - 1 steps before t), nothing where that event is
        no pitch. Not one of note-seq's inputs: improv's chord terms read it
        (:class:`~modeling.families.improv.encoding.ChordConditioned`'s ``repeat_tones``)."""
        ev = _check_events(events, self.note_range + NUM_SPECIAL)
        parts = []
        for d in self.lookback_distances:
            prev = _shift_right(ev, d - 1, NO_EVENT_INDEX)
            pc = (prev - NUM_SPECIAL + self.min_note) % 12
            parts.append(F.one_hot(pc, 12).float() * (prev >= NUM_SPECIAL).unsqueeze(-1))
        return torch.cat(parts, dim=-1)

    def output_terms(self) -> torch.nn.Module:
        """Key terms on the pitch logits from the two key columns, the keys that best fit all
        notes so far and the last 3 distinct pitches (:mod:`modeling.families.pitch_terms`; the
        ``output_terms`` hparam)."""
        from modeling.families.pitch_terms import PitchClassTerms

        all_keys = self.input_size - 24
        return PitchClassTerms([all_keys, all_keys + 12], torch.as_tensor(class_pitches(self)))

    def _plain_labels(self, ev: torch.Tensor) -> torch.Tensor:
        r = self.note_range
        return torch.where(
            ev >= NUM_SPECIAL, ev - NUM_SPECIAL, torch.where(ev == NOTE_OFF_INDEX, r + 1, r)
        )

    def labels(self, events: torch.Tensor, cond: Cond) -> torch.Tensor:
        ev = _check_events(events, self.note_range + NUM_SPECIAL)
        return self._with_repeats(ev, self._plain_labels(ev), self.note_range + NUM_SPECIAL)

    def label_aliases(self, events: torch.Tensor, cond: Cond) -> torch.Tensor:
        """Classes meaning the same event as ``labels`` (see :func:`label_aliases`)."""
        ev = _check_events(events, self.note_range + NUM_SPECIAL)
        return self._aliases(ev, self._plain_labels(ev))

    def conditions(self, events: torch.Tensor, stored: Cond) -> dict[str, torch.Tensor]:
        return {}

    def decode_label(self, labels: torch.Tensor, events: torch.Tensor) -> torch.Tensor:
        r = self.note_range
        labels = labels.long()
        plain = torch.where(
            labels < r,
            labels + NUM_SPECIAL,
            torch.where(labels == r + 1, NOTE_OFF_INDEX, NO_EVENT_INDEX),
        )
        return _lookback_decode(labels, events, r + NUM_SPECIAL, self.lookback_distances, plain)


def melody_onehot(min_note: int = 48, max_note: int = 84) -> OneHot:
    """note-seq ``OneHotEventSequenceEncoderDecoder(MelodyOneHotEncoding(min, max))``."""
    return OneHot(
        name="onehot",
        event_space=event_space_name(min_note, max_note),
        num_classes=max_note - min_note + NUM_SPECIAL,
    )


def class_pitches(encoding: Encoding) -> np.ndarray:
    """MIDI pitch of each output class of a melody(-targeted) encoding, -1 for the others.

    Generation uses it for scale masks: classes with pitch -1 (no event, note off, repeats)
    are never masked. Chord-conditioned encodings delegate to their target encoding.
    """
    target = getattr(encoding, "target", None)
    if target is not None:
        return class_pitches(target)
    out = np.full(encoding.num_classes, -1, dtype=np.int64)
    if isinstance(encoding, KeyMelody):
        out[: encoding.note_range] = np.arange(encoding.min_note, encoding.max_note)
        return out
    lo, hi = parse_event_space(encoding.event_space)
    out[NUM_SPECIAL : NUM_SPECIAL + hi - lo] = np.arange(lo, hi)
    return out
