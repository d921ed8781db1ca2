"""Contracts every model family implements.

A *family* (melody, improv, polyphony, performance) is one small module under
``modeling/families`` that owns three things:

1. **Extraction rules** (``extract``): NoteSequence -> zero or more event sequences plus per-step
   conditioning, using note-seq's own extractors; run inside the Beam examples pipeline.
2. **Encodings** (objects satisfying :class:`Encoding`): stored events -> model input features and
   labels, vectorised in torch so that training (whole padded batches) and generation (a growing
   batch of sequences) share one code path. Parity with note-seq's encoders is proven in tests.
3. **Variants**: frozen :class:`VariantConfig` instances named as in Magenta (``basic_rnn`` ...).

Stored events are *indices in the family's base one-hot label space* (e.g. ``MelodyOneHotEncoding``
indices for melodies, ``PerformanceOneHotEncoding`` indices for performances). Conditioning that
cannot be recomputed from events (chords of a lead sheet) is stored beside them as per-step integer
columns; everything else (lookback, key features, performance controls) is computed from events.

Alignment (as note-seq's ``ConditionalEventSequenceEncoderDecoder``): the model input at position
``t`` is ``concat(control_features[t + 1], target_features(events[: t + 1]))`` and the label is
``labels[t + 1]``. :meth:`Encoding.inputs` therefore takes ``events`` of length ``T`` and conditioning
of length ``>= T + 1`` and returns ``T`` feature rows.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from note_seq.protobuf import music_pb2

if TYPE_CHECKING:
    import torch


class _LazyModule:
    """Stands in for a module until first use, then imports it and puts it in its place.

    A Beam worker imports a family only to extract examples (note-seq, numpy); the encodings need
    torch, whose import costs more than a second in every worker process.
    """

    def __init__(self, name: str, namespace: dict[str, Any], alias: str) -> None:
        self._name, self._namespace, self._alias = name, namespace, alias

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self._name)
        self._namespace[self._alias] = module  # later lookups in that module skip this proxy
        return getattr(module, attr)


def lazy_import(name: str, namespace: dict[str, Any], alias: str | None = None) -> Any:
    """``torch = lazy_import("torch", globals())``: imported when first touched."""
    return _LazyModule(name, namespace, alias or name)


if not TYPE_CHECKING:
    torch = lazy_import("torch", globals())

Cond = Mapping[str, "torch.Tensor"]
"""Per-step conditioning tensors, each shaped (B, T_cond) (or (B, T_cond, k)), keyed by name."""


@runtime_checkable
class Encoding(Protocol):
    """Vectorised encoder/decoder between stored events and model tensors.

    All tensors are batched: ``events`` is a LongTensor (B, T) of stored event indices. Padded
    positions may hold any valid index; callers mask them.
    """

    name: str
    event_space: str
    """Names the stored-event vocabulary, e.g. ``"melody:48-84"``; example sets record theirs and
    training refuses a set (or an ``--init-from`` checkpoint) whose space differs."""
    input_size: int
    num_classes: int

    def inputs(self, events: torch.Tensor, cond: Cond) -> torch.Tensor:
        """Float features (B, T, input_size); row t is the input that predicts label t + 1."""
        ...

    def labels(self, events: torch.Tensor, cond: Cond) -> torch.Tensor:
        """Long labels (B, T); ``labels[:, t]`` is the class of ``events[:, t]`` given its history."""
        ...

    def conditions(self, events: torch.Tensor, stored: Cond) -> dict[str, torch.Tensor]:
        """Training-time conditioning (B, T) from stored events and stored per-step columns.

        Families whose controls are derived from the data (performance density / pitch histogram)
        compute them here; lead sheets return their stored chord columns; others return ``{}``.
        """
        ...

    def decode_label(self, labels: torch.Tensor, events: torch.Tensor) -> torch.Tensor:
        """Stored event index (B,) that class ``labels`` (B,) means after history ``events`` (B, T).

        Identity for plain one-hot encodings; lookback labels ("repeat 1 bar ago") resolve here.
        """
        ...


@dataclass(frozen=True)
class HParams:
    """Training hyper-parameters, Magenta's names and defaults (overridable by params/--hparams)."""

    batch_size: int = 64
    rnn_layer_sizes: tuple[int, ...] = (128, 128)
    dropout_keep_prob: float = 1.0
    attn_length: int = 0
    clip_norm: float = 3.0
    learning_rate: float = 1e-3

    def override(self, **changes: Any) -> HParams:
        """A copy with ``changes`` applied; unknown keys raise ``KeyError`` naming the valid ones."""
        valid = {f.name for f in fields(self)}
        bad = sorted(set(changes) - valid)
        if bad:
            raise KeyError(f"unknown hparam(s) {', '.join(bad)}; valid: {', '.join(sorted(valid))}")
        if "rnn_layer_sizes" in changes:
            changes["rnn_layer_sizes"] = tuple(int(x) for x in changes["rnn_layer_sizes"])
        return replace(self, **changes)


@dataclass(frozen=True)
class VariantConfig:
    """One trainable model variant: which family, which encoding, which default hparams."""

    name: str
    family: str
    encoding: Encoding
    hparams: HParams = field(default_factory=HParams)
    description: str = ""


@dataclass(frozen=True)
class Extracted:
    """One example produced by a family's extraction rules (before it becomes a Parquet row)."""

    events: np.ndarray  # int16 stored event indices
    transposition: int = 0
    stretch: float = 1.0
    cond: Mapping[str, np.ndarray] = field(default_factory=dict)  # EXAMPLE_SCHEMA chord columns


@dataclass(frozen=True)
class Dropped:
    """Something extraction threw away, counted under ``reason`` (a Beam counter name)."""

    reason: str
    count: int = 1


class Family(Protocol):
    """What ``modeling.families.<name>`` exposes (module-level names)."""

    NAME: ClassVar[str]
    VARIANTS: ClassVar[dict[str, VariantConfig]]
    EXTRACT_CONFIG: ClassVar[type]  # frozen dataclass of extraction rules, Magenta's defaults
    INFO_COUNTERS: ClassVar[frozenset[str]]  # Dropped reasons that count without discarding

    def event_space(self, cfg: Any) -> str:
        """The stored-event vocabulary an extraction config produces (``Encoding.event_space``)."""
        ...

    def extract(
        self, ns: music_pb2.NoteSequence, cfg: Any, *, augment: bool
    ) -> Iterator[Extracted | Dropped]:
        """Examples of one NoteSequence. ``augment`` is true on the training split (or when a
        param asks for augmented eval); transpositions/stretches happen only then."""
        ...

    def to_note_sequence(
        self, events: np.ndarray, cond: Mapping[str, np.ndarray], **kw: Any
    ) -> music_pb2.NoteSequence:
        """Decode stored events (+ conditioning) back to a NoteSequence (generation output)."""
        ...
