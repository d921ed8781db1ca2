"""Chord-conditioned encodings in torch (note-seq's ``ConditionalEventSequenceEncoderDecoder``):
chord features (:class:`TriadChords`, :class:`PitchChords`) before a melody encoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modeling.families.base import Cond, Encoding, label_aliases, lazy_import
from modeling.families.chords import COLUMN_DTYPES, QUALITY_OTHER

if TYPE_CHECKING:
    import torch
    import torch.nn.functional as F
else:
    torch = lazy_import("torch", globals())
    F = lazy_import("torch.nn.functional", globals(), "F")


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


def _pitch_class_bits(mask: torch.Tensor) -> torch.Tensor:
    """The 12 bits (C..B) of a stored ``chord_pitches`` mask, as floats (..., 12)."""
    return ((mask.unsqueeze(-1) >> torch.arange(12, device=mask.device)) & 1).float()


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
        parts = [
            (~chord).float().unsqueeze(-1),
            F.one_hot(root.clamp(min=0), 12).float() * chord.unsqueeze(-1),
            _pitch_class_bits(pitches) * chord.unsqueeze(-1),
            F.one_hot(bass.clamp(min=0), 12).float() * chord.unsqueeze(-1),
        ]
        return torch.cat(parts, dim=-1)


CHORD_TONES = "chord_pitches"
"""The stored column (12-bit pitch-class mask per step) the chord-tone inputs read."""


@dataclass(frozen=True)
class ChordConditioned:
    """note-seq ``ConditionalEventSequenceEncoderDecoder(control, target)`` over (B, T).

    ``chord_tones=True`` appends 12 columns after Magenta's: the pitch classes of the chord
    under the predicted step. A triad one-hot names the chord but leaves the model to work out,
    separately in each of the 12 keys, which pitches belong to it; at [128, 128] the
    Major/minor models gave the lead sheets' melody notes 0.52-0.60 of their probability on
    chord tones where the data have 0.67, and played chord tones in 0.47-0.58 of their notes
    (the chord-pitches model, which sees these bits, 0.60 and passes). The columns carry no
    information the one-hot lacks (they are the same chord's notes), so they change no
    conditioning a user gives; Magenta's columns still come first, equal to note-seq's.

    ``repeat_tones=True`` (a key-melody target) appends 12 more per lookback distance: the pitch
    class each "repeat the step of a bar ago" class would play (``repeat_pitch_classes``), so
    the chord terms reach those classes too. In the lead sheets 15 % of the melody's onsets
    are such repeats, and without these columns a repeat got no chord term whatever it played.
    """

    name: str
    control: TriadChords | PitchChords
    target: Encoding
    chord_tones: bool = False
    repeat_tones: bool = False

    @property
    def event_space(self) -> str:
        return self.target.event_space

    def __post_init__(self) -> None:
        if self.repeat_tones and not (
            self.chord_tones and hasattr(self.target, "repeat_pitch_classes")
        ):
            raise ValueError("repeat_tones needs chord_tones and a key-melody target")

    @property
    def _repeat_columns(self) -> int:
        return 12 * len(self.target.lookback_distances) if self.repeat_tones else 0

    @property
    def input_size(self) -> int:
        tones = 12 * self.chord_tones + self._repeat_columns
        return self.control.input_size + self.target.input_size + tones

    @property
    def num_classes(self) -> int:
        return self.target.num_classes

    @property
    def columns(self) -> tuple[str, ...]:
        """The stored chord columns the encoding reads."""
        extra = (CHORD_TONES,) if self.chord_tones else ()
        return tuple(dict.fromkeys(self.control.columns + extra))

    def control_inputs(self, cond: Cond, t: int) -> torch.Tensor:
        """Control features (B, t, control size) for rows 0..t-1 (chords at steps 1..t)."""
        return self.control.features(*_chord_input(cond, self.control.columns, t))

    def inputs(self, events: torch.Tensor, cond: Cond) -> torch.Tensor:
        t = events.shape[-1]
        parts = [self.control_inputs(cond, t), self.target.inputs(events, cond)]
        if self.chord_tones:
            (mask,) = _chord_input(cond, (CHORD_TONES,), t)
            parts.append(_pitch_class_bits(mask))
        if self.repeat_tones:
            parts.append(self.target.repeat_pitch_classes(events))
        return torch.cat(parts, dim=-1)

    def labels(self, events: torch.Tensor, cond: Cond) -> torch.Tensor:
        return self.target.labels(events, cond)

    def conditions(self, events: torch.Tensor, stored: Cond) -> dict[str, torch.Tensor]:
        missing = [c for c in self.columns if c not in stored or stored[c] is None]
        if missing:
            raise ValueError(
                f"{self.name} needs stored chord column(s) {', '.join(missing)}; "
                "is this a lead-sheet (improv) example set?"
            )
        return {c: torch.as_tensor(stored[c]).long() for c in self.columns}

    def decode_label(self, labels: torch.Tensor, events: torch.Tensor) -> torch.Tensor:
        return self.target.decode_label(labels, events)

    def label_aliases(self, events: torch.Tensor, cond: Cond) -> torch.Tensor | None:
        return label_aliases(self.target, events, cond)

    def output_terms(self) -> torch.nn.Module:
        """The chord-tone logit terms (:mod:`modeling.families.pitch_terms`), which read
        the ``chord_tones`` columns; an encoding without them has none to read."""
        from modeling.families.melody.encoding import class_pitches
        from modeling.families.pitch_terms import PitchClassTerms

        if not self.chord_tones:
            raise ValueError(f"output_terms=true needs chord_tones columns; {self.name} has none")
        pitches = torch.as_tensor(class_pitches(self.target))
        chord = self.input_size - self._repeat_columns - 12
        repeats = []
        if self.repeat_tones:
            first = self.num_classes - len(self.target.lookback_distances)
            repeats = [(first + k, chord + 12 * (k + 1)) for k in range(self._repeat_columns // 12)]
        return PitchClassTerms([chord], pitches, repeats)
