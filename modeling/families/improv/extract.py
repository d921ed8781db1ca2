"""Improv extraction config and rules: lead-sheet fragments (melody + chords under it), chords
inferred or respelled where needed, all 12 transpositions on the training split.

:func:`extract` is what the examples pipeline calls per NoteSequence.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from note_seq import chord_inference, chord_symbols_lib, chords_lib, lead_sheets_lib, melodies_lib
from note_seq.protobuf import music_pb2

from modeling.families import melody as melody_family
from modeling.families.base import Dropped, Extracted
from modeling.families.chords import (
    NO_CHORD,
    QUALITY_OTHER,
    RESPELLED_ABC,
    RESPELLED_MUSIC21,
    ChordColumnError,
    chord_columns,
    infer_chords,
    respell_chord_symbols,
)
from modeling.families.melody.extract import (
    MelodyExtractConfig,
    _as_config,
    _check_fields,
    event_space_name,
    extract_melodies,
    melody_events_to_indices,
    quantized_parts,
)

NAME = "improv"

CHORD_SYMBOL = music_pb2.NoteSequence.TextAnnotation.CHORD_SYMBOL
TRANSPOSITIONS = tuple(range(-6, 6))  # Magenta's all_transpositions: -6..+5 semitones

INFO_COUNTERS = melody_family.INFO_COUNTERS | {
    "chords_inferred",
    "coincident_chords_merged",
    RESPELLED_ABC,
    RESPELLED_MUSIC21,
}
"""Counter names yielded as :class:`Dropped` that discard nothing (they only count an event)."""


@dataclass(frozen=True)
class ImprovExtractConfig:
    """Every lead-sheet extraction rule (Magenta's improv pipeline defaults, except
    ``ignore_polyphonic_notes`` which keeps the highest note instead of dropping the track)."""

    steps_per_quarter: int = 4
    split_on_time_changes: bool = True
    min_bars: int = 7
    max_steps: int | None = 512
    max_steps_discard: int | None = None
    min_unique_pitches: int = 3  # Magenta's improv pipeline asks for 3, not 5
    gap_bars: float = 1.0
    ignore_polyphonic_notes: bool = True
    pad_end: bool = False
    filter_drums: bool = True
    separate_parts: bool = False  # see MelodyExtractConfig.separate_parts
    require_chords: bool = True  # drop fragments whose chords are all N.C.
    all_transpositions: bool = True  # all 12 keys when extract(..., augment=True)
    min_note: int = 48
    max_note: int = 84
    transpose_to_key: int | None = None  # Magenta's improv: octave-fold only, no key change
    infer_chords: Literal["auto", "always", "never"] = "auto"  # auto: only when no chord symbols
    chords_per_bar: int | None = None  # chord inference; None: note-seq's per-meter default
    triad_chords_only: bool = False  # drop fragments with non-triad chords (triad encodings)
    # Two different chord symbols at one step: "drop" the fragment (Magenta's
    # coincident_chords) or "keep_last", the later symbol in document order. note-seq's MusicXML
    # reader ignores <harmony><offset>, so a mid-note chord change lands on the note's onset.
    coincident_chords: Literal["drop", "keep_last"] = "drop"

    def __post_init__(self) -> None:
        # The melody rules are validated by the melody config they map onto.
        self.melody_config()
        if self.infer_chords not in ("auto", "always", "never"):
            raise ValueError(
                f"infer_chords must be auto, always or never, got {self.infer_chords!r}"
            )
        if self.coincident_chords not in ("drop", "keep_last"):
            raise ValueError(
                f"coincident_chords must be drop or keep_last, got {self.coincident_chords!r}"
            )
        if self.chords_per_bar is not None and self.chords_per_bar < 1:
            raise ValueError("chords_per_bar must be >= 1 or None")

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None = None) -> ImprovExtractConfig:
        """Build from a params.yaml mapping; unknown keys raise one ValueError naming them."""
        params = dict(params or {})
        _check_fields(cls, params)
        return cls(**params)

    def melody_config(self) -> MelodyExtractConfig:
        """The melody-extraction half of these rules."""
        return MelodyExtractConfig(
            steps_per_quarter=self.steps_per_quarter,
            split_on_time_changes=self.split_on_time_changes,
            min_bars=self.min_bars,
            max_steps=self.max_steps,
            max_steps_discard=self.max_steps_discard,
            min_unique_pitches=self.min_unique_pitches,
            gap_bars=self.gap_bars,
            ignore_polyphonic_notes=self.ignore_polyphonic_notes,
            pad_end=self.pad_end,
            filter_drums=self.filter_drums,
            separate_parts=self.separate_parts,
            min_note=self.min_note,
            max_note=self.max_note,
            transpose_to_key=self.transpose_to_key,
        )


EXTRACT_CONFIG = ImprovExtractConfig
"""The family's extraction config class (``modeling.families.extract_config`` builds it)."""


def event_space(cfg: ImprovExtractConfig | None = None) -> str:
    """The ``event_space`` a lead-sheet set built with ``cfg`` records: its melody vocabulary
    (the chord columns beside it are checked by the encodings' ``conditions``)."""
    cfg = cfg or ImprovExtractConfig()
    return event_space_name(cfg.min_note, cfg.max_note)


# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------


def _has_chords(ns: music_pb2.NoteSequence) -> bool:
    return any(ta.annotation_type == CHORD_SYMBOL for ta in ns.text_annotations)


def keep_last_coincident_chords(qns: music_pb2.NoteSequence) -> tuple[music_pb2.NoteSequence, int]:
    """A copy keeping, at each quantised step, only the last chord symbol; and how many went."""
    chords = [
        (i, ta.quantized_step)
        for i, ta in enumerate(qns.text_annotations)
        if ta.annotation_type == CHORD_SYMBOL
    ]
    last = {step: i for i, step in chords}  # later annotations overwrite earlier ones
    drop = {i for i, step in chords if last[step] != i}
    if not drop:
        return qns, 0
    out = copy.deepcopy(qns)
    keep = [ta for i, ta in enumerate(qns.text_annotations) if i not in drop]
    del out.text_annotations[:]
    out.text_annotations.extend(keep)
    return out, len(drop)


def _with_chords(
    qns: music_pb2.NoteSequence, cfg: ImprovExtractConfig
) -> Iterator[music_pb2.NoteSequence | Dropped]:
    """The quantised piece with chord symbols (given or inferred), or the reason there are none.

    Given symbols that note-seq cannot parse are first respelled where their meaning is known
    (ABC / Nottingham spellings such as ``G/b`` or ``Gd``, else music21's reading), each counted
    (``chord_symbols_respelled`` / ``chord_symbols_music21``); without this the whole fragment
    under such a symbol would be dropped as ``chord_symbol_exception``.
    """
    has = _has_chords(qns)
    if has and cfg.infer_chords != "always":
        qns, respelled = respell_chord_symbols(qns)
        for reason, n in respelled.items():
            yield Dropped(reason, n)
    if has and cfg.coincident_chords == "keep_last" and cfg.infer_chords != "always":
        qns, n = keep_last_coincident_chords(qns)
        if n:
            yield Dropped("coincident_chords_merged", n)
    if cfg.infer_chords == "never" or (cfg.infer_chords == "auto" and has):
        if not has:
            yield Dropped("no_chords")
            if cfg.require_chords:
                return
        yield qns
        return
    if has:  # "always": note-seq refuses to infer over existing chords, so drop them first
        qns = copy.deepcopy(qns)
        keep = [ta for ta in qns.text_annotations if ta.annotation_type != CHORD_SYMBOL]
        del qns.text_annotations[:]
        qns.text_annotations.extend(keep)
    try:
        infer_chords(qns, chords_per_bar=cfg.chords_per_bar)
    except chord_inference.ChordInferenceError:
        yield Dropped("chord_inference_failed")
        if cfg.require_chords:
            return
    else:
        yield Dropped("chords_inferred")
    yield qns


def _lead_sheets(
    qns: music_pb2.NoteSequence, melodies: Sequence[melodies_lib.Melody], cfg: ImprovExtractConfig
) -> Iterator[lead_sheets_lib.LeadSheet | Dropped]:
    """Magenta's ``extract_lead_sheet_fragments`` after melody extraction: the chords under each
    melody (``qns`` carries the chord symbols), before transposition."""
    for item in melodies:
        chords = chords_lib.ChordProgression()
        try:
            chords.from_quantized_sequence(qns, item.start_step, item.end_step)
        except chords_lib.CoincidentChordsError:
            yield Dropped("coincident_chords")
            continue
        if cfg.require_chords and all(c == NO_CHORD for c in chords):
            yield Dropped("empty_chord_progressions")
            continue
        yield lead_sheets_lib.LeadSheet(item, chords)


def extract(
    ns: music_pb2.NoteSequence,
    cfg: ImprovExtractConfig | Mapping[str, Any] | None = None,
    *,
    augment: bool = False,
) -> Iterator[Extracted | Dropped]:
    """Lead-sheet examples of one NoteSequence (12 keys each when ``augment``).

    Counted, not dropped: chords_inferred, coincident_chords_merged, chord_symbols_respelled,
    chord_symbols_music21. Drop reasons beyond the melody family's: no_chords, chord_inference_failed,
    coincident_chords, empty_chord_progressions, chord_symbol_exception (a figure note-seq cannot
    parse or transpose) and chord_encoding_exception (a non-triad chord with
    ``triad_chords_only``, what Magenta's triad encoders reject).

    Melodies are extracted before chords are looked at (they do not depend on them), so chord
    inference runs only on pieces that hold at least one melody: the same examples, without
    inferring chords for the many short time-signature fragments of e.g. the Bach chorales.
    """
    cfg = _as_config(cfg, ImprovExtractConfig)
    amounts = TRANSPOSITIONS if augment and cfg.all_transpositions else (0,)
    melody_cfg = cfg.melody_config()
    for part in quantized_parts(ns, cfg.steps_per_quarter, cfg.split_on_time_changes):
        if isinstance(part, Dropped):
            yield part
            continue
        melodies = []
        for item in extract_melodies(part, melody_cfg):
            if isinstance(item, Dropped):
                yield item
            else:
                melodies.append(item)
        if not melodies:
            continue
        for qns in _with_chords(part, cfg):
            if isinstance(qns, Dropped):
                yield qns
                continue
            for sheet in _lead_sheets(qns, melodies, cfg):
                if isinstance(sheet, Dropped):
                    yield sheet
                    continue
                yield from _transposed_examples(sheet, cfg, amounts)


@functools.lru_cache(maxsize=8192)
def _transpose_figure(figure: str, amount: int) -> str:
    """One chord moved as note-seq's ``ChordProgression.transpose`` moves each of its events."""
    if figure == NO_CHORD:
        return figure
    return chord_symbols_lib.transpose_chord_symbol(figure, amount % 12)


def _transposed_examples(
    sheet: lead_sheets_lib.LeadSheet, cfg: ImprovExtractConfig, amounts: Sequence[int]
) -> Iterator[Extracted | Dropped]:
    """Each key of one lead sheet: note-seq's ``LeadSheet.transpose`` then ``LeadSheet.squash``.

    Spelled out per part so that chord figures are transposed once per distinct figure (note-seq
    re-parses the figure at every step: 80% of extraction time on 12 keys) with the same
    note-seq function; ``tests/test_improv_family.py`` checks equality with the LeadSheet path.
    """
    figures = list(sheet.chords)
    distinct = set(figures)
    out: list[Extracted] = []
    for amount in amounts:
        mel = copy.copy(sheet.melody)  # Melody's deepcopy copies each event: 20% of the time
        mel._events = list(sheet.melody._events)  # ints: a fresh list is a full copy
        mel.transpose(amount)  # LeadSheet.transpose: Melody.transpose(amount, 0, 128)
        shift = mel.squash(cfg.min_note, cfg.max_note, cfg.transpose_to_key)
        try:
            moved = {f: _transpose_figure(_transpose_figure(f, amount), shift) for f in distinct}
            cols = chord_columns([moved[f] for f in figures])
        except (chord_symbols_lib.ChordSymbolError, ChordColumnError):
            yield Dropped("chord_symbol_exception")
            return
        if cfg.triad_chords_only and (cols["chord_quality"] == QUALITY_OTHER).any():
            yield Dropped("chord_encoding_exception")
            return
        events = melody_events_to_indices(list(mel), cfg.min_note, cfg.max_note)
        out.append(Extracted(events=events, transposition=amount, cond=cols))
    yield from out
