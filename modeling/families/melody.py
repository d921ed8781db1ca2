"""Melody family: Magenta's Melody RNN (basic, mono, lookback, attention) plus an EDM variant.

How it connects:

* ``pipelines/examples.py`` calls :func:`extract` on every NoteSequence of the train/eval split and
  writes each :class:`~modeling.families.base.Extracted` as an ``EXAMPLE_SCHEMA`` row (events are
  ``MelodyOneHotEncoding(min_note, max_note)`` indices, ``event_space`` from :func:`event_space`)
  and counts every :class:`~modeling.families.base.Dropped` under its reason.
* ``modeling/train.py`` and ``modeling/generate.py`` take an encoding from :data:`VARIANTS` and use
  its vectorised ``inputs`` / ``labels`` / ``decode_label`` (alignment rules in ``base.py``).
  Generation also uses :func:`melody_events_to_indices` (Magenta-style primers),
  :func:`class_pitches` (scale masks) and :func:`to_note_sequence` (MIDI output).
* ``modeling/families/improv.py`` reuses the splitting/quantising/melody-extraction steps and the
  melody encodings as the target half of its chord-conditioned encodings.

Extraction follows Magenta's melody pipeline with note-seq's own code: split on time-signature /
tempo changes, quantise at 4 steps per quarter, extract melodies per instrument with
``melodies_lib.Melody.from_quantized_sequence`` (Magenta's ``extract_melodies`` loop, which lives in
the TensorFlow-bound ``magenta`` package, is re-stated here), then ``Melody.squash`` into the pitch
range and key. Unlike Magenta, ``ignore_polyphonic_notes`` defaults to True (keep the highest
note of a chord) so that polyphonic tracks yield melodies instead of being thrown away.

Encodings are torch re-statements of note-seq's ``OneHotEventSequenceEncoderDecoder``,
``LookbackEventSequenceEncoderDecoder`` and ``KeyMelodyEncoderDecoder``; note-seq's KeyMelody is
O(T^2) Python per sequence, ours is cumulative ops over (B, T). Element-wise parity with note-seq is
proven in ``tests/test_melody_family.py`` and ``tests/test_corpus_melody_parity.py``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from note_seq import constants, events_lib, melodies_lib, sequences_lib
from note_seq.protobuf import music_pb2

from modeling.families.base import (
    Cond,
    Dropped,
    Encoding,
    Extracted,
    HParams,
    VariantConfig,
    lazy_import,
)
from modeling.families.onehot import OneHot

if TYPE_CHECKING:
    import torch
    import torch.nn.functional as F
else:
    torch = lazy_import("torch", globals())
    F = lazy_import("torch.nn.functional", globals(), "F")


NAME = "melody"

MELODY_NO_EVENT = constants.MELODY_NO_EVENT  # -2
MELODY_NOTE_OFF = constants.MELODY_NOTE_OFF  # -1
NUM_SPECIAL = constants.NUM_SPECIAL_MELODY_EVENTS  # 2: stored index 0 = no event, 1 = note off
NO_EVENT_INDEX = 0
NOTE_OFF_INDEX = 1
STEPS_PER_BAR = constants.DEFAULT_STEPS_PER_BAR  # note-seq's encoders hard-code 16 steps per bar
DEFAULT_LOOKBACK_DISTANCES = (STEPS_PER_BAR, 2 * STEPS_PER_BAR)

INFO_COUNTERS = frozenset({"melodies_truncated"})
"""Counter names yielded as :class:`Dropped` that discard nothing (they only count an event)."""


# --------------------------------------------------------------------------------------------
# Extraction configuration
# --------------------------------------------------------------------------------------------


def _check_fields(cls: type, params: Mapping[str, Any]) -> None:
    valid = {f.name for f in dataclasses.fields(cls)}
    bad = sorted(set(params) - valid)
    if bad:
        raise ValueError(
            f"unknown {cls.__name__} field(s) {', '.join(bad)}; valid: {', '.join(sorted(valid))}"
        )


@dataclass(frozen=True)
class MelodyExtractConfig:
    """Every melody extraction rule (Magenta's defaults; ``ignore_polyphonic_notes`` differs)."""

    steps_per_quarter: int = 4
    split_on_time_changes: bool = True  # Magenta's TimeChangeSplitter
    min_bars: int = 7
    max_steps: int | None = 512  # truncate longer melodies (Magenta's max_steps_truncate)
    max_steps_discard: int | None = None  # discard longer melodies instead (Magenta: unused)
    min_unique_pitches: int = 5  # distinct pitch classes
    gap_bars: float = 1.0  # a melody ends after this many bars of silence
    ignore_polyphonic_notes: bool = True  # keep the highest of notes starting together
    pad_end: bool = False
    filter_drums: bool = True
    # Treat each (instrument, part) pair as its own track. note-seq's MusicXML reader sets
    # instrument = MIDI channel, so the parts of a score without <midi-instrument> (e.g. the
    # voices of music21's Bach chorales) all share instrument 0 and merge into one track.
    separate_parts: bool = False
    min_note: int = 48
    max_note: int = 84  # exclusive
    transpose_to_key: int | None = 0  # None: no key normalisation (mono_rnn)

    def __post_init__(self) -> None:
        if not 0 <= self.min_note < self.max_note <= 128:
            raise ValueError(
                f"need 0 <= min_note < max_note <= 128, got {self.min_note}, {self.max_note}"
            )
        if self.max_note - self.min_note < 12:
            raise ValueError("max_note - min_note must be >= 12 (melodies are octave-folded)")
        if self.transpose_to_key is not None and not 0 <= self.transpose_to_key <= 11:
            raise ValueError(f"transpose_to_key must be 0..11 or None, got {self.transpose_to_key}")
        if self.steps_per_quarter < 1 or self.min_bars < 0 or self.gap_bars <= 0:
            raise ValueError("steps_per_quarter >= 1, min_bars >= 0 and gap_bars > 0 required")

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None = None) -> MelodyExtractConfig:
        """Build from a params.yaml mapping; unknown keys raise one ValueError naming them."""
        params = dict(params or {})
        _check_fields(cls, params)
        return cls(**params)


MONO_EXTRACT = MelodyExtractConfig(min_note=0, max_note=128, transpose_to_key=None)
"""mono_rnn's set: full MIDI range, no key transposition (Magenta's mono_rnn config)."""


def event_space_name(min_note: int, max_note: int) -> str:
    """Stored-event vocabulary name, e.g. ``melody:48-84``."""
    return f"melody:{min_note}-{max_note}"


def parse_event_space(space: str) -> tuple[int, int]:
    """(min_note, max_note) of a ``melody:<min>-<max>`` event space."""
    m = re.fullmatch(r"melody:(\d+)-(\d+)", space)
    if not m:
        raise ValueError(f"not a melody event space: {space!r} (expected 'melody:<min>-<max>')")
    return int(m.group(1)), int(m.group(2))


EXTRACT_CONFIG = MelodyExtractConfig
"""The family's extraction config class (``modeling.families.extract_config`` builds it)."""


def event_space(cfg: MelodyExtractConfig | None = None) -> str:
    """The ``event_space`` an example set built with ``cfg`` records (default config if None)."""
    cfg = cfg or MelodyExtractConfig()
    return event_space_name(cfg.min_note, cfg.max_note)


# --------------------------------------------------------------------------------------------
# Extraction steps (shared with improv.py)
# --------------------------------------------------------------------------------------------

_QUANTIZE_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (sequences_lib.MultipleTimeSignatureError, "multiple_time_signatures"),
    (sequences_lib.MultipleTempoError, "multiple_tempos"),
    (sequences_lib.BadTimeSignatureError, "bad_time_signature"),
    (sequences_lib.NegativeTimeError, "negative_time"),
)


def quantized_parts(
    ns: music_pb2.NoteSequence, steps_per_quarter: int, split_on_time_changes: bool = True
) -> Iterator[music_pb2.NoteSequence | Dropped]:
    """Magenta's TimeChangeSplitter + Quantizer: quantised pieces, or Dropped per bad piece."""
    if split_on_time_changes:
        parts = sequences_lib.split_note_sequence_on_time_changes(ns)
    else:
        parts = [ns] if ns.total_time > 0 else []
    if not parts:
        yield Dropped("empty_sequence")
        return
    for part in parts:
        try:
            yield sequences_lib.quantize_note_sequence(part, steps_per_quarter)
        except tuple(e for e, _ in _QUANTIZE_ERRORS) as err:
            yield Dropped(next(name for e, name in _QUANTIZE_ERRORS if isinstance(err, e)))


def separate_part_tracks(qns: music_pb2.NoteSequence) -> music_pb2.NoteSequence:
    """A copy whose notes carry one instrument number per distinct (instrument, part) pair."""
    pairs = sorted({(n.instrument, n.part) for n in qns.notes})
    if len(pairs) == len({i for i, _ in pairs}):
        return qns
    number = {pair: k for k, pair in enumerate(pairs)}
    out = music_pb2.NoteSequence()
    out.CopyFrom(qns)
    for note in out.notes:
        note.instrument = number[(note.instrument, note.part)]
    return out


def extract_melodies(
    qns: music_pb2.NoteSequence, cfg: MelodyExtractConfig
) -> Iterator[melodies_lib.Melody | Dropped]:
    """Magenta's ``extract_melodies``: every monophonic melody of every instrument, filtered.

    Counters keep Magenta's stat names: polyphonic_tracks_discarded,
    melodies_discarded_too_short, melodies_discarded_too_long, melodies_truncated (kept, only
    counted), melodies_discarded_too_few_pitches, non_integer_steps_per_bar.
    """
    steps_per_bar_f = sequences_lib.steps_per_bar_in_quantized_sequence(qns)
    if steps_per_bar_f % 1 != 0:
        yield Dropped("non_integer_steps_per_bar")
        return
    steps_per_bar = int(steps_per_bar_f)
    if cfg.separate_parts:
        qns = separate_part_tracks(qns)
    for instrument in sorted({n.instrument for n in qns.notes}):
        start = 0
        while True:
            melody = melodies_lib.Melody()
            try:
                melody.from_quantized_sequence(
                    qns,
                    search_start_step=start,
                    instrument=instrument,
                    gap_bars=cfg.gap_bars,
                    ignore_polyphonic_notes=cfg.ignore_polyphonic_notes,
                    pad_end=cfg.pad_end,
                    filter_drums=cfg.filter_drums,
                )
            except melodies_lib.PolyphonicMelodyError:
                yield Dropped("polyphonic_tracks_discarded")
                break
            except events_lib.NonIntegerStepsPerBarError:
                yield Dropped("non_integer_steps_per_bar")
                return
            # The next search starts at the first bar boundary at or after this melody's end.
            start = melody.end_step + (-melody.end_step) % steps_per_bar
            if not melody:
                break
            if len(melody) < melody.steps_per_bar * cfg.min_bars:
                yield Dropped("melodies_discarded_too_short")
                continue
            if cfg.max_steps_discard is not None and len(melody) > cfg.max_steps_discard:
                yield Dropped("melodies_discarded_too_long")
                continue
            if cfg.max_steps is not None and len(melody) > cfg.max_steps:
                length = cfg.max_steps
                if cfg.pad_end:
                    length -= cfg.max_steps % melody.steps_per_bar
                melody.set_length(length)
                yield Dropped("melodies_truncated")
            if np.count_nonzero(melody.get_note_histogram()) < cfg.min_unique_pitches:
                yield Dropped("melodies_discarded_too_few_pitches")
                continue
            yield melody


def melody_events_to_indices(
    events: Sequence[int], min_note: int = 48, max_note: int = 84
) -> np.ndarray:
    """Magenta melody events (-2 no event, -1 note off, else MIDI pitch) -> stored indices.

    Raises one ValueError naming the first event outside the vocabulary and its position.
    """
    ev = np.asarray(list(events), dtype=np.int64)
    bad = (ev < MELODY_NO_EVENT) | ((ev >= 0) & ((ev < min_note) | (ev >= max_note)))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"melody event {int(ev[i])} at position {i} is outside "
            f"{event_space_name(min_note, max_note)} (-2, -1 or a pitch in "
            f"[{min_note}, {max_note}))"
        )
    return np.where(ev < 0, ev + NUM_SPECIAL, ev - min_note + NUM_SPECIAL).astype(np.int16)


def indices_to_melody_events(indices: Sequence[int] | np.ndarray, min_note: int = 48) -> list[int]:
    """Stored indices -> Magenta melody events (inverse of :func:`melody_events_to_indices`)."""
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size and idx.min() < 0:
        raise ValueError(f"negative melody index {int(idx.min())}")
    return np.where(idx < NUM_SPECIAL, idx - NUM_SPECIAL, idx - NUM_SPECIAL + min_note).tolist()


def _to_extracted_events(melody: melodies_lib.Melody, cfg: MelodyExtractConfig) -> np.ndarray:
    return melody_events_to_indices(list(melody), cfg.min_note, cfg.max_note)


def _as_config(cfg: Any, cls: type) -> Any:
    if cfg is None:
        return cls()
    if isinstance(cfg, cls):
        return cfg
    if isinstance(cfg, Mapping):
        return cls.from_params(cfg)
    raise TypeError(f"expected {cls.__name__} or a mapping, got {type(cfg).__name__}")


def extract(
    ns: music_pb2.NoteSequence,
    cfg: MelodyExtractConfig | Mapping[str, Any] | None = None,
    *,
    augment: bool = False,
) -> Iterator[Extracted | Dropped]:
    """Melodies of one NoteSequence, squashed into [min_note, max_note) and key-normalised.

    ``augment`` is accepted for the Family protocol and ignored: Magenta's melody sets use no
    transposition augmentation (key normalisation makes it pointless). ``Extracted.transposition``
    is therefore always 0; the key-normalising shift of ``squash`` is not an augmentation.
    """
    del augment
    cfg = _as_config(cfg, MelodyExtractConfig)
    for part in quantized_parts(ns, cfg.steps_per_quarter, cfg.split_on_time_changes):
        if isinstance(part, Dropped):
            yield part
            continue
        for item in extract_melodies(part, cfg):
            if isinstance(item, Dropped):
                yield item
                continue
            item.squash(cfg.min_note, cfg.max_note, cfg.transpose_to_key)
            yield Extracted(events=_to_extracted_events(item, cfg))


# --------------------------------------------------------------------------------------------
# Vectorised encodings
# --------------------------------------------------------------------------------------------


def _last_index(mask: torch.Tensor) -> torch.Tensor:
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
class MelodyLookback:
    """note-seq ``LookbackEventSequenceEncoderDecoder(MelodyOneHotEncoding(min, max))``.

    Inputs: current event one-hot, the event that followed each lookback position (what a repeat
    would play next), a binary counter of the *next* step, and "current step repeats d ago"
    flags. Labels add one "repeat d steps ago" class per lookback distance.
    """

    name: str = "lookback"
    min_note: int = 48
    max_note: int = 84
    lookback_distances: tuple[int, ...] = DEFAULT_LOOKBACK_DISTANCES
    binary_counter_bits: int = 5

    @property
    def event_space(self) -> str:
        return event_space_name(self.min_note, self.max_note)

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
        lab = ev.clone()
        # Later (longer) lookbacks take precedence, as note-seq checks them first.
        for i, rep in enumerate(_repeat_flags(ev, self.lookback_distances)):
            lab = torch.where(rep, self.num_events + i, lab)
        if self.lookback_distances:
            pos = torch.arange(ev.shape[-1], device=ev.device)
            early_rest = (pos < self.lookback_distances[-1]) & (ev == NO_EVENT_INDEX)
            lab = torch.where(early_rest, self.num_classes - 1, lab)
        return lab

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
class KeyMelody:
    """note-seq ``KeyMelodyEncoderDecoder(min_note, max_note)`` (attention_rnn's encoding).

    Input columns (74 for 48..84): current pitch one-hot, note/silence, attack, ascending ±1,
    repeat-d-ago flags, 7-bit counter of the next step, next-step-starts-a-bar, the major keys
    that best fit all notes so far, and those that best fit the last 3 distinct pitches.
    Labels: pitch classes 0..R-1, R no event, R+1 note off, then one repeat class per lookback.
    Every column is a cumulative scan over T, equal to note-seq's per-position Python loop.
    """

    name: str = "key_melody"
    min_note: int = 48
    max_note: int = 84
    lookback_distances: tuple[int, ...] = DEFAULT_LOOKBACK_DISTANCES
    binary_counter_bits: int = 7

    @property
    def event_space(self) -> str:
        return event_space_name(self.min_note, self.max_note)

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
        last_active = _last_index(ev != NO_EVENT_INDEX)
        cur = _gather(ev, last_active)
        playing = (last_active >= 0) & (cur >= NUM_SPECIAL)
        playing &= (cur - NUM_SPECIAL + self.min_note) != 0
        note_cols = F.one_hot((cur - NUM_SPECIAL).clamp(min=0, max=r - 1), r).float()
        note_cols = note_cols * playing.unsqueeze(-1)

        # Attack: the last event that is not a note-off is a note-on (note-offs keep the flag).
        last_not_off = _last_index(ev != NOTE_OFF_INDEX)
        attack = (last_not_off >= 0) & (_gather(ev, last_not_off) >= NUM_SPECIAL)

        # Ascending: sign of the last non-zero interval between consecutive note-ons.
        last_on = _last_index(is_pitch)
        prev_on = _shift_right(last_on, 1, -1)
        interval = torch.where(
            is_pitch & (prev_on >= 0), pitch - _gather(pitch, prev_on), torch.zeros_like(pitch)
        )
        last_move = _last_index(interval != 0)
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

    def labels(self, events: torch.Tensor, cond: Cond) -> torch.Tensor:
        r = self.note_range
        ev = _check_events(events, r + NUM_SPECIAL)
        lab = torch.where(
            ev >= NUM_SPECIAL, ev - NUM_SPECIAL, torch.where(ev == NOTE_OFF_INDEX, r + 1, r)
        )
        for i, rep in enumerate(_repeat_flags(ev, self.lookback_distances)):
            lab = torch.where(rep, r + NUM_SPECIAL + i, lab)
        if self.lookback_distances:
            pos = torch.arange(ev.shape[-1], device=ev.device)
            early_rest = (pos < self.lookback_distances[-1]) & (ev == NO_EVENT_INDEX)
            lab = torch.where(early_rest, self.num_classes - 1, lab)
        return lab

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


# --------------------------------------------------------------------------------------------
# Variants (Magenta's melody_rnn_model.default_configs, plus edm_rnn)
# --------------------------------------------------------------------------------------------

_MELODY_HPARAMS = HParams(
    batch_size=128,
    rnn_layer_sizes=(128, 128),
    dropout_keep_prob=0.5,
    clip_norm=5.0,
    learning_rate=1e-3,
)
_ATTENTION_HPARAMS = _MELODY_HPARAMS.override(attn_length=40, clip_norm=3.0)

VARIANTS: dict[str, VariantConfig] = {
    "basic_rnn": VariantConfig(
        name="basic_rnn",
        family=NAME,
        encoding=melody_onehot(48, 84),
        hparams=_MELODY_HPARAMS,
        description="Melody RNN with one-hot encoding (pitches 48-83, transposed to C).",
    ),
    "mono_rnn": VariantConfig(
        name="mono_rnn",
        family=NAME,
        encoding=melody_onehot(0, 128),
        hparams=_MELODY_HPARAMS,
        description="Monophonic RNN with one-hot encoding over the full MIDI range, no key "
        "transposition (extract with MONO_EXTRACT).",
    ),
    "lookback_rnn": VariantConfig(
        name="lookback_rnn",
        family=NAME,
        encoding=MelodyLookback(),
        hparams=_MELODY_HPARAMS,
        description="Melody RNN with lookback encoding (1- and 2-bar repeats, 5-bit counter).",
    ),
    "attention_rnn": VariantConfig(
        name="attention_rnn",
        family=NAME,
        encoding=KeyMelody(),
        hparams=_ATTENTION_HPARAMS,
        description="Melody RNN with key-melody encoding and attention over the last 40 steps.",
    ),
    "edm_rnn": VariantConfig(
        name="edm_rnn",
        family=NAME,
        encoding=KeyMelody(),
        hparams=_ATTENTION_HPARAMS,
        description="attention_rnn's encoding and hparams for EDM melodies; the EDM set is "
        "fine-tuned from an attention_rnn checkpoint (same event space).",
    ),
}


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


def indices_to_melody(
    events: Sequence[int] | np.ndarray, space: str = "melody:48-84", steps_per_quarter: int = 4
) -> melodies_lib.Melody:
    """Stored indices -> note-seq Melody (4/4 bars, like every Magenta melody model)."""
    lo, hi = parse_event_space(space)
    idx = np.asarray(events, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= hi - lo + NUM_SPECIAL):
        raise ValueError(
            f"event index out of range for {space}: {int(idx.min())}..{int(idx.max())}"
        )
    return melodies_lib.Melody(
        indices_to_melody_events(idx, lo),
        steps_per_quarter=steps_per_quarter,
        steps_per_bar=4 * steps_per_quarter,
    )


def to_note_sequence(
    events: Sequence[int] | np.ndarray,
    cond: Mapping[str, np.ndarray] | None = None,
    *,
    qpm: float = 120.0,
    event_space: str = "melody:48-84",
    velocity: int = 100,
    program: int = 0,
    instrument: int = 0,
    **kw: Any,
) -> music_pb2.NoteSequence:
    """Decode stored melody indices with note-seq's ``Melody.to_sequence``."""
    if kw:
        raise TypeError(f"unexpected keyword(s) {', '.join(sorted(kw))}")
    del cond
    melody = indices_to_melody(events, event_space)
    return melody.to_sequence(velocity=velocity, instrument=instrument, program=program, qpm=qpm)
