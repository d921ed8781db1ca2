"""Melody index space, extraction config and extraction rules (Magenta's melody pipeline).

:func:`extract` is what the examples pipeline calls per NoteSequence; the improv family reuses
:func:`quantized_parts` and :func:`extract_melodies` for its lead sheets.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from note_seq import constants, events_lib, melodies_lib, sequences_lib
from note_seq.protobuf import music_pb2

from modeling.families.base import Dropped, Extracted
from modeling.music import STEPS_PER_BAR

NAME = "melody"

MELODY_NO_EVENT = constants.MELODY_NO_EVENT  # -2
MELODY_NOTE_OFF = constants.MELODY_NOTE_OFF  # -1
NUM_SPECIAL = constants.NUM_SPECIAL_MELODY_EVENTS  # 2: stored index 0 = no event, 1 = note off
NO_EVENT_INDEX = 0
NOTE_OFF_INDEX = 1
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
# Extraction steps (shared with the improv family)
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
