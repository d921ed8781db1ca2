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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from types import ModuleType
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
        An encoding may also offer ``last_input(events, cond)``, equal to ``inputs(...)[:, -1]``
        but cheaper; generation, which needs one row per step, then calls it instead. One whose
        classes alias (a lookback "repeat" class plays an event another class names too) offers
        ``label_aliases(events, cond)``: see :func:`label_aliases`.
        """
        ...


def label_aliases(encoding: Encoding, events: torch.Tensor, cond: Cond) -> torch.Tensor | None:
    """(B, T, num_classes) bool: the classes that decode to ``events[:, t]`` after its history,
    or None where each event has one class only.

    Why: a lookback encoding names an event repeated from a bar ago twice (its pitch, "repeat 1
    bar ago"); Magenta's labels pick one. The probability a model gives the *event* sums both,
    so scoring (:class:`modeling.training.metrics.Scorer`) sums them: the likelihood of the music,
    comparable with an n-gram or a uniform model over the same stored events.
    """
    aliases = getattr(encoding, "label_aliases", None)
    return None if aliases is None else aliases(events, cond)


@dataclass(frozen=True)
class HParams:
    """Training hyper-parameters, Magenta's names and defaults (overridable by params/--hparams)."""

    batch_size: int = 64
    rnn_layer_sizes: tuple[int, ...] = (128, 128)
    dropout_keep_prob: float = 1.0
    attn_length: int = 0
    clip_norm: float = 3.0
    learning_rate: float = 1e-3
    output_terms: bool = False
    """Add the encoding's own logit terms (``encoding.output_terms()``: performance's release and
    time-shift tables read from the held-note columns plus the controlled variants' density and
    histogram terms, the triad improv models' chord terms (attention_improv's repeat classes
    too) and the key-melody models' key terms). Not Magenta's; off by default so checkpoints
    written before it load unchanged."""

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


def variant_table(
    family: str, *rows: tuple[str, Encoding, HParams, str]
) -> dict[str, VariantConfig]:
    """A family's ``VARIANTS``: one ``(name, encoding, hparams, description)`` row per variant, so
    each name is written once (the key is the config's name, as :mod:`modeling.variants` checks)."""
    return {
        name: VariantConfig(name, family, encoding, hparams, description)
        for name, encoding, hparams, description in rows
    }


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


# --- hooks loaded on first use ---

HOOK_MODULES = ("training", "evaluation", "generation")
"""Submodules of a family package that hold its training, evaluation and generation hooks.

A family package's ``__init__`` imports its extraction, encodings and variants, and sets
a module ``__getattr__`` that calls :func:`hook_attribute`: a hook name resolves on first use, so a Beam
worker that only extracts examples never imports the hook modules, nor
:mod:`modeling.generation`. A hook no module lists falls back to :data:`DEFAULT_HOOKS`."""


def _metered_span(plan: Any, seconds_per_step: float) -> tuple[float, float]:
    """(begin, end) seconds of a plan on the 16th-note grid: a primer is part of the piece."""
    return 0.0, float(plan.target_units) * seconds_per_step


def _every_pitch(event_space: str) -> int:
    """Every MIDI pitch is stored: the lowest is 0."""
    return 0


def _no_eval_primer(notes: Any) -> Mapping[str, Any] | None:
    """No primer from the data: evaluation samples start as Magenta's generators do."""
    return None


def _no_controls(encoding: Encoding) -> tuple[str, ...]:
    """No control request fields: the family's encodings are conditioned on none."""
    return ()


DEFAULT_HOOKS: Mapping[str, Any] = {
    "STATS_INSTRUMENT": None,  # statistics read every note
    "CHORDS": False,  # samples are unconditioned; no chord-tone statistic applies
    "QUALITY_CRITERIA": frozenset(),  # the quality bar's common criteria only
    "DEFAULT_PRIMER_WORDS": "none (the model starts from silence)",
    "generated_span": _metered_span,
    "lowest_pitch": _every_pitch,
    "request_controls": _no_controls,
    "eval_primer": _no_eval_primer,
}
"""The ``Family`` hooks most families share; a hook module overrides one by listing it."""


def refuse_non_hook(package: str, name: str) -> None:
    """``AttributeError`` for names that are never hooks (dunders probed by pickle or inspect,
    the hook modules themselves), before anything is imported."""
    if name in HOOK_MODULES or name.startswith("__"):
        raise AttributeError(f"module {package!r} has no attribute {name!r}")


def hook_attribute(namespace: dict[str, Any], name: str, modules: Sequence[ModuleType]) -> Any:
    """The hook ``name`` from the first of ``modules`` whose ``__all__`` lists it (else from
    :data:`DEFAULT_HOOKS`), stored in the package's ``namespace`` so later lookups (and
    monkeypatches) see a plain attribute. A package's ``__getattr__`` calls
    :func:`refuse_non_hook`, imports ``modules`` with a plain ``from`` import (so
    :mod:`pipelines.stagedeps` sees them) and calls this."""
    for module in modules:
        if name in getattr(module, "__all__", ()):
            value = namespace[name] = getattr(module, name)
            return value
    if name in DEFAULT_HOOKS:
        value = namespace[name] = DEFAULT_HOOKS[name]
        return value
    raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")


# --- evaluation hooks (helpers) ---

DecodeKeywords = Callable[[str, float], Mapping[str, Any]]
"""``(event_space, qpm) -> keywords`` of a family's ``to_note_sequence``."""


def metered_keywords(event_space: str, qpm: float) -> Mapping[str, Any]:
    """Decoder keywords of an index range on the 16th-note grid: the event space and the tempo."""
    return {"event_space": event_space, "qpm": qpm}


def event_decoder(
    to_note_sequence: Callable[..., music_pb2.NoteSequence], keywords: DecodeKeywords
) -> Callable[..., music_pb2.NoteSequence]:
    """A family's ``decode_events`` hook: its ``to_note_sequence`` given the keywords it takes
    (``keywords(event_space, qpm)``), so the protocol's signature is written once. Conditioning
    passes through; families stored without it ignore it."""

    def decode_events(
        events: np.ndarray,
        cond: Mapping[str, np.ndarray] | None = None,
        *,
        event_space: str,
        qpm: float,
    ) -> music_pb2.NoteSequence:
        """Stored events (+ conditioning) -> NoteSequence at ``qpm``, for statistics."""
        return to_note_sequence(events, cond or {}, **keywords(event_space, qpm))

    return decode_events


# --- training hooks (helpers) ---


def label_decoding_to(encoding: Encoding, stored: int, history: int) -> int:
    """The first class of ``encoding`` that decodes to stored event ``stored`` after a history of
    ``history`` events (-1: none); a family's ``default_event_label`` in one line.

    The history is chosen so lookback "repeat" classes, which decode to the repeated event,
    never match (note-seq's ``default_event_label`` is a plain event, not a repeat).
    """
    n = int(encoding.num_classes)
    past = torch.full((n, 64), history, dtype=torch.long)
    decoded = encoding.decode_label(torch.arange(n), past)
    hits = torch.nonzero(decoded == stored).flatten()
    return int(hits[0]) if len(hits) else -1


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

    # --- training hooks (protocol) ---
    NEUTRAL_PAD: ClassVar[int]
    """Stored event that pads a batch (masked out of the loss; chosen so that derived
    conditioning, e.g. performance controls, is not disturbed by it)."""
    STEP_UNIT: ClassVar[str]
    """The musical unit ``loss_per_step`` is reported per (written to a run's config.json)."""

    def event_units(self, events: torch.Tensor) -> torch.Tensor:
        """Musical units (float64, same shape) each stored event covers, for ``loss_per_step``."""
        ...

    def default_event_label(self, encoding: Encoding) -> int:
        """The class Magenta's event / no-event accuracies split on (note-seq's
        ``default_event_label``; -1: none)."""
        ...

    # --- evaluation hooks (protocol) ---
    STATS_INSTRUMENT: ClassVar[int | None]
    """The instrument whose notes statistics read (None: all); improv reads its melody, never
    chords rendered beside it."""
    STATS_OPTIONS: ClassVar[Mapping[str, bool]]
    """How :func:`modeling.musicstats.profile` reads the music: ``metered`` (16th-note grid and
    bars) and ``polyphonic`` (chord-texture statistics)."""
    EVAL_LENGTH: ClassVar[tuple[str, str]]
    """(``evaluate`` setting, request field) of an evaluation sample's length, e.g.
    ``("melody_steps", "num_steps")``."""
    CHORDS: ClassVar[bool]
    """Samples are generated over chord progressions and scored on chord tones."""
    QUALITY_CRITERIA: ClassVar[frozenset[str]]
    """The quality bar's family-specific criteria (:func:`modeling.quality.assess`):
    ``longest_note`` (the family then also defines ``longest_note_seconds(events, offsets)``,
    the longest note of a flat split), ``control_requests``, ``texture_percentiles``."""
    REQUEST_COLUMNS: ClassVar[Mapping[str, str]]
    """Request fields of the family beyond the common ones, with their MLflow column types."""
    EXAMPLE_REQUEST: ClassVar[Mapping[str, Any]]
    """A small request the family accepts (a registered model's input example)."""
    DEFAULT_PRIMER_WORDS: ClassVar[str]
    """What generation starts from without a primer, in a musician's words (the gallery)."""

    def decode_events(
        self,
        events: np.ndarray,
        cond: Mapping[str, np.ndarray] | None = None,
        *,
        event_space: str,
        qpm: float,
    ) -> music_pb2.NoteSequence:
        """Stored events (+ conditioning) -> NoteSequence at ``qpm``, for statistics."""
        ...

    def vocabulary_size(self, event_space: str) -> int:
        """Stored-event classes: the perplexity of a uniform model over them."""
        ...

    def eval_primer(self, notes: Any) -> Mapping[str, Any] | None:
        """Request fields that prime a plain evaluation sample with the opening of one eval
        example (``notes``: its :class:`~modeling.musicstats.NoteArrays`), so samples start
        where the data they are compared with starts; None: the family's default primer."""
        ...

    def uniform_events(
        self, event_space: str, rng: np.random.Generator, *, steps: int = 0, seconds: float = 0.0
    ) -> np.ndarray:
        """One sample of a uniform model over the stored vocabulary at a musical length
        (``steps`` for metered families, ``seconds`` for performances)."""
        ...

    def generated_span(self, plan: Any, seconds_per_step: float) -> tuple[float, float]:
        """(begin, end) seconds of the generated music of a generation plan."""
        ...

    def lowest_pitch(self, event_space: str) -> int:
        """MIDI pitch of the lowest stored note (chord-tone ratios read pitches from it)."""
        ...

    def request_controls(self, encoding: Encoding) -> tuple[str, ...]:
        """The control request fields ``encoding`` is conditioned on (``()``: none)."""
        ...

    # --- generation hooks (protocol) ---
    GENERATION_UNITS: ClassVar[Any]
    """:class:`modeling.generation.units.StepUnits`: the unit a requested length is counted in
    (16th-note steps or a 10 ms clock), its default and cap, and the event budget per unit."""
    REQUEST_FIELDS: ClassVar[frozenset[str]]
    """Family-specific request fields its models take (primers, chords, controls, polyphony's
    primer flags); :meth:`modeling.generation.request.Request.validate` refuses the others, and
    the studio shows only their controls."""
    GALLERY_HEADING: ClassVar[tuple[str, str]]
    """(heading, one-line blurb) of the family's section of the gallery (``modeling.batch``)."""

    def playable_range(self, event_space: str) -> tuple[int, int] | None:
        """(lowest, highest) MIDI pitch a model of ``event_space`` can play, for the studio's
        model card; None when every pitch is stored."""
        ...

    def feature_window(self, encoding: Encoding) -> int | None:
        """Trailing events an encoding's last input row depends on (None: the whole history),
        so generation computes each step's input from that window only."""
        ...

    def generation_plan(self, model: Any, req: Any) -> Any:
        """The :class:`modeling.generation.plan.Plan` of a validated request for ``model``: primer
        events, conditioning, class mask, stop rule and the decoder back to a NoteSequence; a
        :class:`~modeling.generation.request.GenerateError` for what only the model can refuse."""
        ...


_FAMILY_CORE = frozenset(
    {
        "NAME",
        "VARIANTS",
        "EXTRACT_CONFIG",
        "INFO_COUNTERS",
        "event_space",
        "extract",
        "to_note_sequence",
    }
)
HOOK_NAMES: frozenset[str] = frozenset(
    name
    for name in (*Family.__annotations__, *vars(Family))
    if not name.startswith("_") and name not in _FAMILY_CORE
)
"""The hooks :class:`Family` declares beyond extraction: the names its hook modules define."""


def hook_exports(namespace: Mapping[str, Any], *extra: str) -> list[str]:
    """A hook module's ``__all__``: the :data:`HOOK_NAMES` it defines (the protocol is the one
    list of them), plus ``extra`` helpers other families reuse."""
    return sorted(name for name in HOOK_NAMES if name in namespace) + list(extra)
