"""Improv family: Magenta's Improv RNN (melody conditioned on a chord progression).

How it connects:

* ``pipelines/examples.py`` calls :func:`extract` per NoteSequence: lead-sheet fragments (a
  melody plus the chords under it) become ``EXAMPLE_SCHEMA`` rows whose ``events`` are
  ``MelodyOneHotEncoding(48, 84)`` indices and whose ``chord_root`` / ``chord_bass`` /
  ``chord_quality`` / ``chord_pitches`` columns hold the chord at every step (see ``chords.py``).
  With ``augment`` (training split) each fragment comes in all 12 transpositions, like Magenta's
  ``LeadSheetExtractor(all_transpositions=True)``; the eval split keeps only the original key.
* ``modeling/train.py`` / ``modeling/generate.py`` use the :data:`VARIANTS` encodings, which are
  note-seq's ``ConditionalEventSequenceEncoderDecoder(control, target)`` restated in torch: the
  input at row t is ``control(chord[t + 1]) ++ target(melody[: t + 1])`` (so conditioning must be
  one step longer than the events), labels and ``decode_label`` are the target's.

Extraction reuses the melody family's steps (time-change split, quantise, melody extraction) and
then mirrors Magenta's ``extract_lead_sheet_fragments``: chords under each melody through note-seq's
``ChordProgression.from_quantized_sequence``, ``LeadSheet.transpose`` / ``LeadSheet.squash``.
Sources without chord symbols (Bach chorales, EDM, POP909 MIDI) get chords from note-seq's
``chord_inference.infer_chords_for_sequence`` (``infer_chords``: auto / always / never), in the
faster, identical restatement ``chords.infer_chords``. Given chord symbols that note-seq's parser
refuses (ABC spellings such as ``D/f+``) are respelled by ``chords.respell_chord_symbols``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from note_seq import (
    chord_inference,
    chord_symbols_lib,
    chords_lib,
    lead_sheets_lib,
    melodies_lib,
)
from note_seq.protobuf import music_pb2

from modeling.families import melody as melody_family
from modeling.families.base import (
    Cond,
    Dropped,
    Encoding,
    Extracted,
    HParams,
    VariantConfig,
    lazy_import,
)
from modeling.families.chords import (
    COLUMN_DTYPES,
    NO_CHORD,
    QUALITY_OTHER,
    RESPELLED_ABC,
    RESPELLED_MUSIC21,
    ChordColumnError,
    chord_columns,
    columns_to_figures,
    infer_chords,
    respell_chord_symbols,
)
from modeling.families.melody import (
    KeyMelody,
    _as_config,
    _check_fields,
    extract_melodies,
    melody_events_to_indices,
    melody_onehot,
    quantized_parts,
)

if TYPE_CHECKING:
    import torch
    import torch.nn.functional as F
else:
    torch = lazy_import("torch", globals())
    F = lazy_import("torch.nn.functional", globals(), "F")


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

    def melody_config(self) -> melody_family.MelodyExtractConfig:
        """The melody-extraction half of these rules."""
        return melody_family.MelodyExtractConfig(
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
    return melody_family.event_space_name(cfg.min_note, cfg.max_note)


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


# --------------------------------------------------------------------------------------------
# Vectorised chord-conditioned encodings
# --------------------------------------------------------------------------------------------


def _chord_input(cond: Cond, names: Sequence[str], t: int) -> list[torch.Tensor]:
    """Conditioning at steps 1..t (the chord under the event each row predicts)."""
    out = []
    for name in names:
        if name not in cond:
            raise ValueError(
                f"conditioning column {name!r} missing (lead-sheet sets store "
                f"{', '.join(COLUMN_DTYPES)})"
            )
        col = cond[name]
        if col.dim() != 2 or col.shape[1] < t + 1:
            raise ValueError(
                f"{name} must be (B, >= T + 1) = (B, >= {t + 1}); got {tuple(col.shape)}"
            )
        out.append(col[:, 1 : t + 1].long())
    return out


@dataclass(frozen=True)
class TriadChords:
    """note-seq ``OneHotEventSequenceEncoderDecoder(TriadChordOneHotEncoding())`` as a control:
    0 = no chord, 1 + 12 * quality + root for major / minor / augmented / diminished triads."""

    name: str = "triad"
    columns: tuple[str, ...] = ("chord_root", "chord_quality")

    @property
    def input_size(self) -> int:
        return 4 * 12 + 1

    def features(self, root: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        no_chord = (root < 0) | (quality < 0)
        other = ~no_chord & (quality >= QUALITY_OTHER)
        if other.any():
            b, t = (int(x) for x in other.nonzero()[0])
            raise ValueError(
                f"chord at batch row {b}, step {t + 1} is not a major/minor/augmented/diminished "
                "triad, which TriadChordOneHotEncoding cannot encode; build this set with "
                "triad_chords_only: true (Magenta drops such lead sheets)"
            )
        index = torch.where(no_chord, 0, 1 + 12 * quality.clamp(min=0) + root.clamp(min=0))
        return F.one_hot(index, self.input_size).float()


@dataclass(frozen=True)
class PitchChords:
    """note-seq ``PitchChordsEncoderDecoder``: [no chord, root one-hot, pitch classes, bass]."""

    name: str = "pitch_chords"
    columns: tuple[str, ...] = ("chord_root", "chord_pitches", "chord_bass")

    @property
    def input_size(self) -> int:
        return 3 * 12 + 1

    def features(
        self, root: torch.Tensor, pitches: torch.Tensor, bass: torch.Tensor
    ) -> torch.Tensor:
        chord = root >= 0
        bits = (pitches.unsqueeze(-1) >> torch.arange(12, device=pitches.device)) & 1
        parts = [
            (~chord).float().unsqueeze(-1),
            F.one_hot(root.clamp(min=0), 12).float() * chord.unsqueeze(-1),
            bits.float() * chord.unsqueeze(-1),
            F.one_hot(bass.clamp(min=0), 12).float() * chord.unsqueeze(-1),
        ]
        return torch.cat(parts, dim=-1)


@dataclass(frozen=True)
class ChordConditioned:
    """note-seq ``ConditionalEventSequenceEncoderDecoder(control, target)`` over (B, T)."""

    name: str
    control: TriadChords | PitchChords
    target: Encoding

    @property
    def event_space(self) -> str:
        return self.target.event_space

    @property
    def input_size(self) -> int:
        return self.control.input_size + self.target.input_size

    @property
    def num_classes(self) -> int:
        return self.target.num_classes

    def control_inputs(self, cond: Cond, t: int) -> torch.Tensor:
        """Control features (B, t, control size) for rows 0..t-1 (chords at steps 1..t)."""
        return self.control.features(*_chord_input(cond, self.control.columns, t))

    def inputs(self, events: torch.Tensor, cond: Cond) -> torch.Tensor:
        t = events.shape[-1]
        return torch.cat([self.control_inputs(cond, t), self.target.inputs(events, cond)], dim=-1)

    def labels(self, events: torch.Tensor, cond: Cond) -> torch.Tensor:
        return self.target.labels(events, cond)

    def conditions(self, events: torch.Tensor, stored: Cond) -> dict[str, torch.Tensor]:
        missing = [c for c in self.control.columns if c not in stored or stored[c] is None]
        if missing:
            raise ValueError(
                f"{self.name} needs stored chord column(s) {', '.join(missing)}; "
                "is this a lead-sheet (improv) example set?"
            )
        return {c: torch.as_tensor(stored[c]).long() for c in self.control.columns}

    def decode_label(self, labels: torch.Tensor, events: torch.Tensor) -> torch.Tensor:
        return self.target.decode_label(labels, events)


# --------------------------------------------------------------------------------------------
# Variants (Magenta's improv_rnn_model.default_configs)
# --------------------------------------------------------------------------------------------

VARIANTS: dict[str, VariantConfig] = {
    "basic_improv": VariantConfig(
        name="basic_improv",
        family=NAME,
        encoding=ChordConditioned("triad+onehot", TriadChords(), melody_onehot(48, 84)),
        hparams=HParams(
            batch_size=128,
            rnn_layer_sizes=(64, 64),
            dropout_keep_prob=0.5,
            clip_norm=5.0,
            learning_rate=1e-3,
        ),
        description="Melody-given-chords RNN with one-hot triad encoding for chords "
        "(needs a set extracted with triad_chords_only).",
    ),
    "attention_improv": VariantConfig(
        name="attention_improv",
        family=NAME,
        encoding=ChordConditioned("triad+key_melody", TriadChords(), KeyMelody()),
        hparams=HParams(
            batch_size=128,
            rnn_layer_sizes=(128, 128, 128),
            dropout_keep_prob=0.5,
            attn_length=40,
            clip_norm=3.0,
            learning_rate=1e-3,
        ),
        description="Melody-given-chords RNN with triad chords, key-melody features and "
        "attention (needs a set extracted with triad_chords_only).",
    ),
    "chord_pitches_improv": VariantConfig(
        name="chord_pitches_improv",
        family=NAME,
        encoding=ChordConditioned("pitch_chords+onehot", PitchChords(), melody_onehot(48, 84)),
        hparams=HParams(
            batch_size=128,
            rnn_layer_sizes=(256, 256, 256),
            dropout_keep_prob=0.5,
            clip_norm=3.0,
            learning_rate=1e-3,
        ),
        description="Melody-given-chords RNN with chord root, pitch classes and bass.",
    ),
}


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


def to_note_sequence(
    events: Sequence[int] | np.ndarray,
    cond: Mapping[str, np.ndarray],
    *,
    qpm: float = 120.0,
    event_space: str = "melody:48-84",
    velocity: int = 100,
    program: int = 0,
    render_chords: bool = False,
    chord_program: int = 0,
    chord_velocity: int = 80,
    **kw: Any,
) -> music_pb2.NoteSequence:
    """Melody notes plus CHORD_SYMBOL annotations (note-seq ``LeadSheet.to_sequence``).

    ``cond`` holds the chord columns, at least as long as ``events`` (extra steps are ignored).
    With ``render_chords`` the chords are also played as instrument 1 by note-seq's
    ``BasicChordRenderer`` (held chord tones plus bass).
    """
    if kw:
        raise TypeError(f"unexpected keyword(s) {', '.join(sorted(kw))}")
    n = len(events)
    cols = {c: np.asarray(cond[c])[:n] for c in COLUMN_DTYPES if c in cond}
    if any(len(v) < n for v in cols.values()):
        raise ValueError(f"chord columns are shorter than the {n} melody events")
    figures = columns_to_figures(cols)
    melody = melody_family.indices_to_melody(events, event_space)
    chords = chords_lib.ChordProgression(
        figures, steps_per_quarter=melody.steps_per_quarter, steps_per_bar=melody.steps_per_bar
    )
    sheet = lead_sheets_lib.LeadSheet(melody, chords)
    ns = sheet.to_sequence(velocity=velocity, qpm=qpm)
    for note in ns.notes:
        note.program = program
    ns.total_time = max(ns.total_time, n * 60.0 / qpm / melody.steps_per_quarter)
    if render_chords:
        chords_lib.BasicChordRenderer(
            velocity=chord_velocity, instrument=1, program=chord_program
        ).render(ns)
    return ns
