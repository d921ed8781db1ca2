"""Evaluation stage: a quality report for every registered champion, data against generated music.

    python -m modeling.evaluate --output data/reports [--params params.yaml] [--models a b ...]
        [--examples-root data/examples] [--num-samples N] [--seed S] [--quiet]

How it connects. Models come from the MLflow registry (:mod:`modeling.registry`: every registered
model with the ``evaluate.alias`` alias, ``champion`` by default, loaded with
:func:`~modeling.registry.load_generator_model`). Each variant's example set is the one
``params.yaml`` names (``variants.<name>.example_set`` under ``data/examples``, see
:mod:`modeling.data`), falling back to the set recorded in the model's training config. For every
model the stage computes:

* **held-out metrics** on the set's eval split with the training code's own scorer
  (:func:`modeling.train.evaluate`: loss, perplexity, accuracy, event/no-event accuracy, loss per
  musical unit), and the same on extra eval sets (``evaluate.extra_eval_sets``: cross-corpus
  perplexity, only for sets of the same event space);
* **generated samples** from the one generation engine (:func:`modeling.generate.generate`):
  melodies from Magenta's default primer, lead-sheet melodies over chord progressions taken from
  the eval split, polyphony unprimed, performances with the data's average controls and with each
  requested control (``evaluate.performance_requests``);
* **musical statistics** (:mod:`modeling.musicstats`) of the samples against the same statistics
  of eval examples decoded by the family (note-seq) and cut to the generated length, and of a
  uniform random model (every stored event equally likely: perplexity = vocabulary size) sampled
  at the same lengths: the baseline a pitch-class histogram must beat;
* **conditioning adherence**: improv chord-tone ratio against the lead sheets', performance note
  density and pitch-class histogram achieved against each request.
* **the quality bar** (:mod:`modeling.quality`, issue 12): every criterion with its value, bar and
  pass, against a Kneser-Ney n-gram fitted on the set's train split (once per set), noise floors
  from windows of the eval split, and time-to-quality from the training run's per-eval clocks;
  the verdict goes onto each evaluated version's model card (``registry.set_quality``).

Outputs in ``--output`` (written to a temporary directory, moved into place only when complete):
``report.md`` (tables + ``figures/*.png``: loss curves from the training runs' MLflow metrics,
histograms data vs generated vs uniform, control requested vs achieved), ``summary.json`` (one
entry per variant plus ``uniform_random``: a DVC metric), ``summary.csv`` (the summary table with
baseline rows) and ``plots/`` CSVs for ``dvc plots``. Bad input is one line and exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore", message="Couldn't find ffmpeg")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from modeling import musicstats as MS  # noqa: E402
from modeling import quality as Q  # noqa: E402
from modeling import quiet_libraries  # noqa: E402

DEFAULT_OUTPUT = "data/reports"
QPM = 120.0  # generation's default tempo; eval examples are decoded at the same tempo
SECONDS_PER_STEP = 60.0 / QPM / 4  # one 16th note
STEPS_PER_BAR = 16
DEFAULT_REQUESTS: tuple[dict[str, Any], ...] = (
    {"notes_per_second": 2.0},
    {"notes_per_second": 8.0},
    {"pitch_class_histogram": [1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1]},  # C major scale
    {"pitch_class_histogram": [0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 1]},  # F# major scale
)
METRIC_KEYS = (
    "loss",
    "perplexity",
    "accuracy",
    "event_accuracy",
    "no_event_accuracy",
    "loss_per_step",
)
OUTPUT_ITEMS = ("report.md", "summary.json", "summary.csv", "figures", "plots")
"""What the stage owns inside ``--output`` (replaced as a whole; anything else is left alone)."""

log = logging.getLogger("motif.evaluate")


class EvalError(ValueError):
    """Bad input (params, names, missing sets or store): one line, exit 2, nothing written."""


# ============================================================================ settings


@dataclass(frozen=True)
class Settings:
    """The ``evaluate:`` section of params.yaml with its defaults (the stage runs without it)."""

    alias: str = "champion"
    models: tuple[str, ...] = ()
    examples_root: Path = Path("data/examples")
    num_samples: int = 32
    improv_progressions: int = 8
    temperature: float = 1.0
    seed: int = 1234
    batch_size: int = 64
    data_samples: int = 64
    melody_steps: int = 64
    polyphony_steps: int = 64
    performance_seconds: float = 10.0
    density_tolerance: float = 0.2
    extra_eval_sets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    performance_requests: tuple[dict[str, Any], ...] = DEFAULT_REQUESTS
    variant_sets: Mapping[str, str] = field(default_factory=dict)
    profile: str = ""


def _number(
    section: Mapping[str, Any],
    key: str,
    default: float,
    *,
    integer: bool,
    low: float,
    high: float = math.inf,
) -> Any:
    value = section.get(key, default)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value).is_integer()
    if not ok or not (low <= float(value) <= high) or not math.isfinite(float(value)):
        kind = "an integer" if integer else "a number"
        bound = f">= {low}" if high == math.inf else f"in [{low}, {high}]"
        raise EvalError(f"params evaluate.{key}: expected {kind} {bound}, got {value!r}")
    return int(value) if integer else float(value)


def check_request(item: Any, where: str) -> dict[str, Any]:
    """One performance control request: ``notes_per_second`` > 0 and/or a 12-value histogram."""
    if not isinstance(item, Mapping) or not item:
        raise EvalError(
            f"{where}: expected a mapping with notes_per_second and/or "
            f"pitch_class_histogram, got {item!r}"
        )
    unknown = sorted(set(item) - {"notes_per_second", "pitch_class_histogram"})
    if unknown:
        raise EvalError(
            f"{where}: unknown key(s) {', '.join(unknown)}; valid: notes_per_second, "
            "pitch_class_histogram"
        )
    out: dict[str, Any] = {}
    if "notes_per_second" in item:
        d = item["notes_per_second"]
        if (
            isinstance(d, bool)
            or not isinstance(d, (int, float))
            or not (math.isfinite(d) and d > 0)
        ):
            raise EvalError(f"{where}.notes_per_second: expected a number > 0, got {d!r}")
        out["notes_per_second"] = float(d)
    if "pitch_class_histogram" in item:
        h = item["pitch_class_histogram"]
        good = (
            isinstance(h, (list, tuple))
            and len(h) == 12
            and all(
                isinstance(v, (int, float))
                and not isinstance(v, bool)
                and math.isfinite(v)
                and v >= 0
                for v in h
            )
            and sum(h) > 0
        )
        if not good:
            raise EvalError(
                f"{where}.pitch_class_histogram: expected 12 numbers >= 0 (C..B) "
                f"with a positive sum, got {h!r}"
            )
        out["pitch_class_histogram"] = [float(v) for v in h]
    return out


def settings_from_params(params: Mapping[str, Any]) -> Settings:
    """Read and check the ``evaluate`` section (every key optional) and the variants' sets."""
    section = params.get("evaluate") or {}
    if not isinstance(section, Mapping):
        raise EvalError(f"params evaluate: expected a mapping, got {type(section).__name__}")
    known = {f for f in Settings.__dataclass_fields__ if f not in ("variant_sets", "profile")}
    unknown = sorted(set(section) - known)
    if unknown:
        raise EvalError(
            f"params evaluate: unknown key(s) {', '.join(unknown)}; valid: "
            f"{', '.join(sorted(known))}"
        )
    alias = section.get("alias", "champion")
    if not isinstance(alias, str) or not alias.strip():
        raise EvalError(f"params evaluate.alias: expected an alias name, got {alias!r}")
    models = section.get("models") or []
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise EvalError(f"params evaluate.models: expected a list of model names, got {models!r}")
    extra = section.get("extra_eval_sets") or {}
    if not isinstance(extra, Mapping) or not all(
        isinstance(v, list) and all(isinstance(s, str) for s in v) for v in extra.values()
    ):
        raise EvalError(
            "params evaluate.extra_eval_sets: expected a mapping of family or variant "
            f"name -> list of example-set names, got {extra!r}"
        )
    requests = section.get("performance_requests", list(DEFAULT_REQUESTS))
    if not isinstance(requests, list):
        raise EvalError(f"params evaluate.performance_requests: expected a list, got {requests!r}")
    checked = tuple(
        check_request(r, f"params evaluate.performance_requests[{i}]")
        for i, r in enumerate(requests)
    )
    variant_sets: dict[str, str] = {}
    for name, spec in {**(params.get("finetunes") or {}), **(params.get("variants") or {})}.items():
        if isinstance(spec, Mapping) and isinstance(spec.get("example_set"), str):
            variant_sets[str(name)] = spec["example_set"]
    seed_default = params.get("seed", 1234)
    return Settings(
        alias=alias.strip(),
        models=tuple(models),
        examples_root=Path(str(section.get("examples_root", "data/examples"))),
        num_samples=_number(section, "num_samples", 32, integer=True, low=1, high=1000),
        improv_progressions=_number(
            section, "improv_progressions", 8, integer=True, low=1, high=1000
        ),
        temperature=_number(section, "temperature", 1.0, integer=False, low=1e-3),
        seed=_number(
            section,
            "seed",
            seed_default if isinstance(seed_default, int) else 1234,
            integer=True,
            low=0,
        ),
        batch_size=_number(section, "batch_size", 64, integer=True, low=1),
        data_samples=_number(section, "data_samples", 64, integer=True, low=1),
        melody_steps=_number(section, "melody_steps", 64, integer=True, low=2, high=4096),
        polyphony_steps=_number(section, "polyphony_steps", 64, integer=True, low=2, high=4096),
        performance_seconds=_number(
            section, "performance_seconds", 10.0, integer=False, low=1.5, high=600
        ),
        density_tolerance=_number(section, "density_tolerance", 0.2, integer=False, low=0),
        extra_eval_sets={str(k): tuple(v) for k, v in extra.items()},
        performance_requests=checked,
        variant_sets=variant_sets,
        profile=str(params.get("profile", "")),
    )


def load_settings(path: str | None) -> Settings:
    """Settings from ``path`` (an explicit path must exist; a missing default means defaults)."""
    from pipelines.params import ParamsError, load_params

    if path is None:
        if not Path("params.yaml").is_file():
            return settings_from_params({})
        path = "params.yaml"
    try:
        params = load_params(path)
    except ParamsError as exc:
        raise EvalError(str(exc)) from None
    except Exception as exc:  # yaml syntax errors carry multi-line messages
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise EvalError(f"cannot read {path}: {first}") from None
    return settings_from_params(params)


# ============================================================================ registry


def find_champions(alias: str, names: Sequence[str]) -> list[tuple[str, str]]:
    """(model name, ``models:/<name>@<alias>``) of every registered model holding ``alias``.

    Named models must be registered and hold the alias (one-line error otherwise); without
    names, models lacking the alias are skipped (a variant trained but never crowned cannot be).
    """
    from modeling import registry

    try:
        c = registry.client()
        registered = {
            m.name: dict(c.get_registered_model(m.name).aliases or {})
            for m in c.search_registered_models()
        }
    except registry.RegistryError as exc:
        raise EvalError(f"{exc}; train and register a model first") from None
    except Exception as exc:  # store unreachable or corrupt
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise EvalError(f"registry at {registry.tracking_uri()}: {first}") from None
    if names:
        missing = [n for n in names if n not in registered]
        if missing:
            raise EvalError(
                f"model(s) {', '.join(missing)} not in the registry at "
                f"{registry.tracking_uri()}; registered: "
                f"{', '.join(sorted(registered)) or 'none'}"
            )
        bare = [n for n in names if alias not in registered[n]]
        if bare:
            raise EvalError(f"model(s) {', '.join(bare)} have no @{alias} version")
        chosen = list(dict.fromkeys(names))
    else:
        chosen = sorted(n for n, aliases in registered.items() if alias in aliases)
    if not chosen:
        raise EvalError(
            f"no registered model has a @{alias} version in "
            f"{registry.tracking_uri()}; train a variant first"
        )
    return [(n, f"models:/{n}@{alias}") for n in chosen]


def loss_history(run_id: str | None) -> list[dict[str, float]]:
    """(step, train_loss, eval_loss) rows of a training run from its MLflow metrics.

    Falls back to the run's ``loss_curve.csv`` artifact if the metrics are missing (a run
    logged elsewhere); empty when neither exists.
    """
    if not run_id:
        return []
    from modeling import registry

    c = registry.client()
    missing = (registry._mlflow_error(), OSError, KeyError, ValueError)  # curves are optional
    rows: dict[int, dict[str, float]] = {}
    with contextlib.suppress(*missing):
        for split in ("train", "eval"):
            for m in c.get_metric_history(run_id, f"{split}_loss"):
                row = rows.setdefault(int(m.step), {"step": int(m.step)})
                row[f"{split}_loss"] = m.value
                if split == "eval":
                    row["eval_time_ms"] = m.timestamp
    if not rows:
        with contextlib.suppress(*missing):
            import mlflow

            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path="loss_curve.csv"
            )
            for r in csv.DictReader(Path(path).read_text().splitlines()):
                step = int(r["step"])
                rows.setdefault(step, {"step": step})[f"{r['split']}_loss"] = float(r["loss"])
    return [rows[k] for k in sorted(rows)]


def _artifact_text(run_id: str, name: str) -> str:
    """A small artifact of a run as text (MLflow's progress bar off: the stage's stderr is its
    own progress lines)."""
    import mlflow

    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(key)
    os.environ[key] = "false"
    try:
        return Path(
            mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name)
        ).read_text()
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def training_time(run_id: str | None, history: Sequence[Mapping[str, float]]) -> dict[str, Any]:
    """Train seconds and time-to-quality of a training run (None where unrecorded).

    ``wall_s`` clocks come from the eval-loss metrics' MLflow timestamps minus the run's start
    (set-up, evaluations and any pause before a resume included); ``train_s`` ones from the
    ``seconds`` column of the run's ``loss_curve.csv`` (the train loop's own clock) and
    ``train_seconds`` from its ``metrics.json`` (``throughput.train_seconds``).
    """
    out: dict[str, Any] = {"train_seconds": None}
    if not run_id:
        return {**out, **Q.time_to_quality([])}
    from modeling import registry

    c = registry.client()
    missing = (registry._mlflow_error(), OSError, KeyError, ValueError, TypeError)
    start = None
    with contextlib.suppress(*missing):
        start = c.get_run(run_id).info.start_time
    train_s: dict[int, float] = {}
    with contextlib.suppress(*missing):
        for r in csv.DictReader(_artifact_text(run_id, "loss_curve.csv").splitlines()):
            if r.get("split") == "train" and r.get("seconds"):
                train_s[int(r["step"])] = float(r["seconds"])
    with contextlib.suppress(*missing):
        metrics = json.loads(_artifact_text(run_id, "metrics.json"))
        out["train_seconds"] = float(metrics["throughput"]["train_seconds"])
    rows = [
        {
            "step": h["step"],
            "eval_loss": h["eval_loss"],
            "wall_s": (h["eval_time_ms"] - start) / 1000.0
            if start is not None and "eval_time_ms" in h
            else None,
            "train_s": train_s.get(int(h["step"])),
        }
        for h in history
        if "eval_loss" in h
    ]
    return {**out, **Q.time_to_quality(rows)}


# ============================================================================ families


def _event_space_velocity_bins(space: str) -> int:
    return int(space.rsplit("v", 1)[1])


def decode(
    family: str, event_space: str, events: np.ndarray, cond: Mapping[str, np.ndarray] | None = None
) -> Any:
    """Stored events -> NoteSequence with the family's own decoder (note-seq underneath)."""
    if family == "melody":
        from modeling.families import melody as mfam

        return mfam.to_note_sequence(events, qpm=QPM, event_space=event_space)
    if family == "improv":
        from modeling.families import improv as ifam

        return ifam.to_note_sequence(events, cond or {}, qpm=QPM, event_space=event_space)
    if family == "polyphony":
        from modeling.families import polyphony as pfam

        return pfam.to_note_sequence(events, qpm=QPM)
    if family == "performance":
        from modeling.families import performance as pf

        return pf.to_note_sequence(
            events, num_velocity_bins=_event_space_velocity_bins(event_space)
        )
    raise EvalError(f"no decoder for family {family!r}")


def stat_options(family: str) -> dict[str, Any]:
    """How :func:`musicstats.profile` reads a family's music (grid, bars, chord texture)."""
    return {
        "seconds_per_step": SECONDS_PER_STEP,
        "steps_per_bar": STEPS_PER_BAR,
        "metered": family != "performance",
        "polyphonic": family == "polyphony",
    }


def vocabulary_size(family: str, event_space: str) -> int:
    """Stored-event classes: the perplexity of a uniform model over them."""
    if family in ("melody", "improv"):
        from modeling.families.melody import NUM_SPECIAL, parse_event_space

        lo, hi = parse_event_space(event_space)
        return hi - lo + NUM_SPECIAL
    if family == "polyphony":
        from modeling.families.polyphony import NUM_CLASSES

        return NUM_CLASSES
    from modeling.families.performance import num_classes

    return num_classes(_event_space_velocity_bins(event_space))


def uniform_events(
    family: str, event_space: str, rng: np.random.Generator, *, steps: int = 0, seconds: float = 0.0
) -> np.ndarray:
    """One sample of a uniform random model over the stored vocabulary, at a musical length.

    Melody/improv: ``steps`` events (16th steps). Polyphony: events until ``steps`` STEP_ENDs
    (START and END are never sampled, as in generation). Performance: events until the clock
    reaches ``seconds``, the last time shift shortened to land on it (as generation's cut).
    """
    n = vocabulary_size(family, event_space)
    if family in ("melody", "improv"):
        return rng.integers(0, n, steps)
    if family == "polyphony":
        from modeling.families import polyphony as pfam

        classes = np.arange(pfam.STEP_END, pfam.NUM_CLASSES)
        parts, ends = [], 0
        while ends < steps:
            chunk = classes[rng.integers(0, len(classes), 4096)]
            parts.append(chunk)
            ends += int((chunk == pfam.STEP_END).sum())
        body = np.concatenate(parts)
        cut = int(np.flatnonzero(body == pfam.STEP_END)[steps - 1]) + 1
        return np.concatenate([[pfam.START], body[:cut], [pfam.END]])
    from modeling.families import performance as pf

    target = round(seconds * pf.STEPS_PER_SECOND)
    parts, clock = [], 0
    while clock < target:
        chunk = rng.integers(0, n, 4096)
        parts.append(chunk)
        clock += int(pf.shift_steps(torch.as_tensor(chunk)[None]).sum())
    events = np.concatenate(parts)
    cum = np.cumsum(pf.shift_steps(torch.as_tensor(events)[None])[0].numpy())
    k = int(np.argmax(cum >= target))
    events = events[: k + 1].copy()
    events[k] -= int(cum[k] - target)
    return events


def pick(indices: np.ndarray, count: int) -> np.ndarray:
    """``count`` entries spread evenly over ``indices`` (deterministic: reruns compare)."""
    if len(indices) <= count:
        return indices
    return indices[np.linspace(0, len(indices) - 1, count).round().astype(np.int64)]


# ============================================================================ example sets


@dataclass
class SetData:
    """An example set plus everything computed from it once (shared by variants of the set)."""

    examples: Any  # modeling.data.ExampleSet
    version: str
    profiles: dict[tuple[str, float], dict[str, Any]] = field(default_factory=dict)
    progressions: list[dict[str, Any]] | None = None
    chord_tone: tuple[float, int] | None = None
    ngram: dict[str, Any] | None = None
    ngram_done: bool = False
    pools: dict[tuple[str, float], tuple[Q.Pieces, float]] = field(default_factory=dict)


class Sets:
    """Loads example sets by name (each once) from ``examples_root``.

    Only the eval split is read (metrics, statistics and baselines all come from it), so a set
    without training examples is accepted: the eval-only sets of cross-corpus perplexity
    (``splits: [eval]``, e.g. ``pop909_eval``) or a variant pointed at a held-out corpus.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[Path, SetData] = {}

    def load(self, path: Path) -> SetData:
        from modeling.data import ExampleSet, ExampleSetError
        from modeling.registry import data_version

        path = Path(path)
        if path not in self.cache:
            try:
                es = ExampleSet.load(path, need_train=False)
            except ExampleSetError as exc:
                raise EvalError(str(exc)) from None
            self.cache[path] = SetData(es, data_version(path)[0])
        return self.cache[path]


def data_notes(sd: SetData, family: str, count: int, seconds: float) -> list[MS.NoteArrays]:
    """Up to ``count`` eval examples, decoded and cut to the first ``seconds``."""
    split = sd.examples.eval
    rows = pick(np.flatnonzero(split.lengths >= 2), count)
    out = []
    for i in rows.tolist():
        a, b = int(split.offsets[i]), int(split.offsets[i + 1])
        events = split.events[a:b].astype(np.int64)
        cond = {k: v[a:b] for k, v in split.cond.items()}
        ns = decode(family, sd.examples.event_space, events, cond)
        out.append(
            MS.NoteArrays.from_sequence(ns, instrument=0 if family == "improv" else None).window(
                0.0, seconds
            )
        )
    return out


POOL_EXAMPLES = 256
"""Eval examples decoded for the noise floor and percentiles (spread evenly over the split)."""


def data_pool(sd: SetData, family: str, seconds: float) -> tuple[Q.Pieces, float]:
    """(statistics of every ``seconds``-long window of the eval examples, longest data note).

    The quality bar's noise floor draws its two random groups from these windows, and
    polyphony's percentiles come from them; windows (not whole examples) give short generated
    spans many more data pieces than there are eval examples. The longest note is measured on
    whole decoded examples.
    """
    key = (family, round(seconds, 6))
    if key not in sd.pools:
        split = sd.examples.eval
        windows, longest = [], 0.0
        for i in pick(np.flatnonzero(split.lengths >= 2), POOL_EXAMPLES).tolist():
            a, b = int(split.offsets[i]), int(split.offsets[i + 1])
            cond = {k: v[a:b] for k, v in split.cond.items()}
            ns = decode(family, sd.examples.event_space, split.events[a:b].astype(np.int64), cond)
            notes = MS.NoteArrays.from_sequence(ns, instrument=0 if family == "improv" else None)
            longest = max(longest, float((notes.end - notes.start).max(initial=0.0)))
            k = 0
            while k == 0 or (k + 1) * seconds <= notes.total_time + 1e-9:
                windows.append(notes.window(k * seconds, (k + 1) * seconds))
                k += 1
        sd.pools[key] = (Q.pieces(windows, SECONDS_PER_STEP), longest)
    return sd.pools[key]


def set_ngram(sd: SetData, vocabulary: int) -> dict[str, Any] | None:
    """The set's Kneser-Ney baseline (fitted once per set; None for an eval-only set)."""
    if not sd.ngram_done:
        sd.ngram = Q.ngram_baseline(sd.examples.train, sd.examples.eval, vocabulary)
        sd.ngram_done = True
    return sd.ngram


def data_chord_tone_ratio(sd: SetData) -> tuple[float, int]:
    """Chord-tone ratio of the whole eval split (flat arrays: one vectorised pass)."""
    if sd.chord_tone is None:
        from modeling.families.melody import parse_event_space

        split = sd.examples.eval
        if "chord_pitches" not in split.cond:
            raise EvalError(f"example set {sd.examples.name} has no chord_pitches column")
        lo, _ = parse_event_space(sd.examples.event_space)
        sd.chord_tone = MS.chord_tone_ratio(split.events, split.cond["chord_pitches"], lo)
    return sd.chord_tone


def progressions(sd: SetData, count: int, steps: int) -> list[dict[str, Any]]:
    """Chord progressions of eval lead sheets (first ``steps`` steps) as generation requests.

    Each becomes ``--backing_chords`` figures with ``steps_per_chord`` = the gcd of its chord
    durations, which reproduces the per-step chords exactly; the columns the generator parses
    back from the figures are kept, because they are what the model was conditioned on.
    """
    if sd.progressions is not None:
        return sd.progressions
    from modeling import primers as P
    from modeling.families.chords import columns_to_figures

    split = sd.examples.eval
    root = split.cond.get("chord_root")
    if root is None:
        raise EvalError(
            f"example set {sd.examples.name} has no chord columns (not a lead-sheet set)"
        )
    owner = np.repeat(np.arange(len(split)), split.lengths)
    with_chords = np.unique(owner[root >= 0])
    usable = with_chords[split.lengths[with_chords] >= 2]
    out = []
    for i in pick(usable, count).tolist():
        a = int(split.offsets[i])
        n = min(int(split.lengths[i]), steps)
        cols = {k: v[a : a + n] for k, v in split.cond.items()}
        figures = columns_to_figures(cols)
        change = np.flatnonzero([figures[j] != figures[j - 1] for j in range(1, n)]) + 1
        runs = np.diff(np.concatenate([[0], change, [n]]))
        g = int(np.gcd.reduce(runs))
        text = " ".join(figures[::g])
        _, parsed = P.parse_backing_chords(text, g)
        out.append(
            {
                "example": split.example_ids[i] if split.example_ids else str(i),
                "backing_chords": text,
                "steps_per_chord": g,
                "steps": n,
                "columns": parsed,
            }
        )
    sd.progressions = out
    return out


# ============================================================================ generation


@dataclass
class Generated:
    """Samples of one request group: notes (cut to the generated span), events, chords."""

    notes: list[MS.NoteArrays]
    events: list[np.ndarray]
    chords: list[np.ndarray] = field(default_factory=list)
    span: float = 0.0


def _request(settings: Settings, seed: int, **kw: Any) -> Any:
    from modeling import generate as G

    return G.Request(
        num_outputs=kw.pop("num_outputs", settings.num_samples),
        temperature=settings.temperature,
        seed=seed,
        threads=1,
        **kw,
    )


def _run(model: Any, req: Any) -> tuple[Any, list[Any], list[Any]]:
    from modeling import generate as G

    try:
        return G.generate(model, req)
    except G.GenerateError as exc:
        raise EvalError(f"{model.variant}: generation request refused: {exc}") from None


def generated_span(family: str, plan: Any) -> tuple[float, float]:
    """(begin, end) seconds of the generated music of a plan: performance skips its primer
    (Magenta's default primer is a second of silence), the other families keep theirs (one
    note at most) as part of the piece."""
    if family != "performance":
        return 0.0, float(plan.target_units) * SECONDS_PER_STEP
    from modeling.families import performance as pf

    begin = int(pf.shift_steps(torch.as_tensor(plan.primer)[None]).sum()) / pf.STEPS_PER_SECOND
    return begin, float(plan.target_units) / pf.STEPS_PER_SECOND


def _generated(family: str, plan: Any, samples: list[Any], seqs: list[Any]) -> Generated:
    """Cut each sample to its generated span."""
    begin, end = generated_span(family, plan)
    notes = [
        MS.NoteArrays.from_sequence(ns, instrument=0 if family == "improv" else None).window(
            begin, end
        )
        for ns in seqs
    ]
    return Generated(notes, [s.events for s in samples], span=end - begin)


def performance_span(model: Any, settings: Settings) -> float:
    """Seconds of generated music a performance request yields (its plan, no sampling)."""
    from modeling import generate as G

    try:
        plan = G.build_plan(
            model, _request(settings, settings.seed, num_seconds=settings.performance_seconds)
        )
    except G.GenerateError as exc:
        raise EvalError(f"{model.variant}: generation request refused: {exc}") from None
    begin, end = generated_span("performance", plan)
    return end - begin


def generate_plain(model: Any, settings: Settings, sd: SetData) -> Generated:
    """Samples without controls: melody (Magenta's middle-C primer), polyphony, performance,
    and improv over the eval split's chord progressions (one request per progression)."""
    family, seed = model.family, settings.seed
    if family == "melody":
        plan, samples, seqs = _run(model, _request(settings, seed, num_steps=settings.melody_steps))
        return _generated(family, plan, samples, seqs)
    if family == "polyphony":
        plan, samples, seqs = _run(
            model, _request(settings, seed, num_steps=settings.polyphony_steps)
        )
        return _generated(family, plan, samples, seqs)
    if family == "improv":
        gen = Generated([], [], [], 0.0)
        for i, (prog, count) in enumerate(improv_plan(sd, settings)):
            plan, samples, seqs = _run(
                model,
                _request(
                    settings,
                    seed + i,
                    num_outputs=count,
                    backing_chords=prog["backing_chords"],
                    steps_per_chord=prog["steps_per_chord"],
                ),
            )
            part = _generated(family, plan, samples, seqs)
            gen.notes += part.notes
            gen.events += part.events
            gen.chords += [plan.cond["chord_pitches"][0, : len(e)].numpy() for e in part.events]
            gen.span = max(gen.span, part.span)
        return gen
    plan, samples, seqs = _run(
        model, _request(settings, seed, num_seconds=settings.performance_seconds)
    )
    return _generated(family, plan, samples, seqs)


def improv_plan(sd: SetData, settings: Settings) -> list[tuple[dict[str, Any], int]]:
    """(progression, samples over it) pairs totalling ``num_samples``: a request per progression
    generates its samples as one batch (the engine's rows), over ``improv_progressions`` of the
    eval split's progressions."""
    progs = progressions(sd, settings.improv_progressions, settings.melody_steps)
    progs = progs[: settings.improv_progressions]
    base, extra = divmod(settings.num_samples, len(progs))
    return [(p, base + (i < extra)) for i, p in enumerate(progs) if base + (i < extra) > 0]


def controls_of(model: Any) -> tuple[bool, bool]:
    """(density-conditioned, histogram-conditioned) of a performance model."""
    from modeling.families.performance import ControlledPerformance

    enc = model.encoding
    if not isinstance(enc, ControlledPerformance):
        return False, False
    return bool(enc.density), bool(enc.histogram)


def control_requests(
    model: Any, settings: Settings, data_request: dict[str, Any]
) -> list[dict[str, Any]]:
    """The data's average controls first, then each params request reduced to the controls
    this model takes (requests left empty or repeated are dropped)."""
    density, histogram = controls_of(model)
    out: list[dict[str, Any]] = []
    for i, raw in enumerate([data_request, *settings.performance_requests]):
        req = {
            k: v
            for k, v in raw.items()
            if (k == "notes_per_second" and density) or (k == "pitch_class_histogram" and histogram)
        }
        if req and req not in [r["controls"] for r in out]:
            out.append({"name": "data average" if i == 0 else f"request {i}", "controls": req})
    return out


def adherence(gen: Generated, controls: Mapping[str, Any], tolerance: float) -> dict[str, Any]:
    """Achieved note density / duration-weighted pitch-class histogram against a request."""
    row: dict[str, Any] = {}
    if "notes_per_second" in controls:
        want = float(controls["notes_per_second"])
        got = float(np.mean([MS.note_density(len(n), n.total_time) for n in gen.notes]))
        err = MS.relative_error(got, want)
        row.update(
            {
                "requested_density": want,
                "achieved_density": got,
                "density_rel_error": err,
                "density_within_tolerance": bool(err <= tolerance),
            }
        )
    if "pitch_class_histogram" in controls:
        want_h = np.asarray(controls["pitch_class_histogram"], np.float64)
        got_h = duration_histogram(gen.notes)
        row.update(
            {
                "requested_histogram": (want_h / want_h.sum()).tolist(),
                "achieved_histogram": got_h.tolist(),
                "histogram_distance": MS.histogram_distance(want_h, got_h),
            }
        )
    return row


# ============================================================================ per variant


@dataclass
class Result:
    """Everything the report says about one variant."""

    name: str
    family: str
    example_set: str
    model: dict[str, Any]
    eval: dict[str, float]
    cross: dict[str, dict[str, float]]
    skipped_sets: dict[str, str]
    data: dict[str, Any]
    generated: dict[str, Any]
    uniform: dict[str, Any]
    distances: dict[str, float]
    uniform_distances: dict[str, float]
    improv: dict[str, float] = field(default_factory=dict)
    controls: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)
    vocabulary: int = 0
    unit: str = ""
    seconds: float = 0.0
    quality: dict[str, Any] = field(default_factory=dict)
    ngram: dict[str, Any] | None = None
    training: dict[str, Any] = field(default_factory=dict)


def held_out(model: Any, cfg: Any, split: Any, batch_size: int) -> dict[str, float]:
    """The training loop's eval metrics (``modeling.train.evaluate``) on one split."""
    import importlib

    from modeling import train

    family = importlib.import_module(f"modeling.families.{cfg.family}")
    pad = int(getattr(family, "NEUTRAL_PAD", 0))
    metrics = train.evaluate(
        model, split, train.Scorer.for_variant(cfg), batch_size, train.Dist(), pad
    )
    usable = split.lengths >= 2
    metrics["examples"] = int(usable.sum())
    metrics["labels"] = int((split.lengths[usable] - 1).sum())
    return metrics


def resolve_set(name: str, meta: Mapping[str, Any], settings: Settings) -> Path:
    """The variant's example set: params ``variants.<name>.example_set``, else the set the
    model was trained on (its config's ``examples`` path) if it still exists."""
    if name in settings.variant_sets:
        path = settings.examples_root / settings.variant_sets[name]
        if not path.is_dir():
            raise EvalError(
                f"{name}: example set {path} (params variants.{name}.example_set) "
                "does not exist; build it first (dvc repro examples)"
            )
        return path
    trained_on = (meta.get("config") or {}).get("examples")
    if trained_on and Path(trained_on).is_dir():
        return Path(trained_on)
    raise EvalError(
        f"{name}: no example set: not in params variants and its training set "
        f"{trained_on or '(unrecorded)'} is gone"
    )


def cross_sets(name: str, family: str, own: Path, settings: Settings) -> list[str]:
    """Extra eval sets for this variant: ``extra_eval_sets[<variant>]`` if given, else
    ``extra_eval_sets[<family>]``, without the variant's own set."""
    names = settings.extra_eval_sets.get(name, settings.extra_eval_sets.get(family, ()))
    return [
        s for s in dict.fromkeys(names) if (settings.examples_root / s).resolve() != own.resolve()
    ]


def set_profile(
    sd: SetData, family: str, seconds: float, settings: Settings, uniform_rng: np.random.Generator
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(data profile, uniform-model profile) of a set at a generated span, computed once."""
    key = (family, round(seconds, 6))
    if key in sd.profiles:
        return sd.profiles[key]["data"], sd.profiles[key]["uniform"]
    opts = stat_options(family)
    notes = data_notes(sd, family, settings.data_samples, seconds)
    data = MS.profile(notes, **opts)
    data["duration_pitch_class_histogram"] = duration_histogram(notes)
    space = sd.examples.event_space
    uni_events: list[np.ndarray] = []
    uni_cols: list[dict[str, np.ndarray]] = []
    if family == "improv":
        for prog, count in improv_plan(sd, settings):
            for _ in range(count):
                uni_events.append(uniform_events(family, space, uniform_rng, steps=prog["steps"]))
                uni_cols.append(prog["columns"])
    else:
        steps = settings.melody_steps if family == "melody" else settings.polyphony_steps
        for _ in range(settings.num_samples):
            uni_events.append(
                uniform_events(family, space, uniform_rng, steps=steps, seconds=seconds)
            )
            uni_cols.append({})
    uni_notes = [
        MS.NoteArrays.from_sequence(
            decode(family, space, ev, cols), instrument=0 if family == "improv" else None
        ).window(0.0, seconds)
        for ev, cols in zip(uni_events, uni_cols, strict=True)
    ]
    uniform = MS.profile(uni_notes, **opts)
    if family == "improv":
        from modeling.families.melody import parse_event_space

        lo, _ = parse_event_space(space)
        uniform["chord_tone_ratio"] = pooled_chord_tones(
            uni_events, [c["chord_pitches"] for c in uni_cols], lo
        )
    sd.profiles[key] = {
        "data": data,
        "uniform": uniform,
        "pieces": Q.pieces(notes, SECONDS_PER_STEP),
    }
    return data, uniform


def duration_histogram(notes: Sequence[MS.NoteArrays]) -> np.ndarray:
    """Pitch-class shares weighted by sounding time: Performance RNN's histogram control."""
    if not notes:
        return np.zeros(12)
    return MS.pitch_class_histogram(
        np.concatenate([n.pitch for n in notes]), np.concatenate([n.end - n.start for n in notes])
    )


def pooled_chord_tones(
    events: Sequence[np.ndarray], chords: Sequence[np.ndarray], min_note: int
) -> float:
    """Chord-tone ratio over all samples' onsets together."""
    hits = total = 0
    for ev, ch in zip(events, chords, strict=True):
        ratio, n = MS.chord_tone_ratio(ev, ch, min_note)
        if n:
            hits += ratio * n
            total += n
    return hits / total if total else float("nan")


def evaluate_model(
    name: str, uri: str, settings: Settings, sets: Sets, say: Callable[[str], None]
) -> Result:
    """Held-out metrics, samples, statistics and adherence of one registered model."""
    from modeling import registry
    from modeling.checkpoint import CheckpointError
    from modeling.data import ExampleSetError
    from modeling.train import unit_weights

    t0 = time.perf_counter()
    try:
        model, cfg, meta = registry.load_generator_model(uri)
    except (registry.RegistryError, CheckpointError) as exc:
        raise EvalError(f"{name}: {exc}") from None
    model.eval()
    family = cfg.family
    own = resolve_set(name, meta, settings)
    sd = sets.load(own)
    try:
        sd.examples.check_compatible(family, cfg.encoding.event_space, cfg.name)
    except ExampleSetError as exc:
        raise EvalError(f"{name}: {exc}") from None
    batch = settings.batch_size
    metrics = held_out(model, cfg, sd.examples.eval, batch)
    say(
        f"{name}: eval perplexity {metrics['perplexity']:.3f} on {sd.examples.name} "
        f"({metrics['examples']} examples)"
    )

    cross: dict[str, dict[str, float]] = {}
    skipped: dict[str, str] = {}
    for set_name in cross_sets(name, family, own, settings):
        path = settings.examples_root / set_name
        if not path.is_dir():
            skipped[set_name] = "not built in this profile"
            continue
        other = sets.load(path)
        try:
            other.examples.check_compatible(family, cfg.encoding.event_space, cfg.name)
        except ExampleSetError as exc:
            skipped[set_name] = str(exc)
            continue
        cross[set_name] = held_out(model, cfg, other.examples.eval, batch)

    uniform_rng = np.random.default_rng([settings.seed, 7])
    controls: list[dict[str, Any]] = []
    if family == "performance" and any(controls_of(model)):
        # Statistics compare samples made with the data's own average controls; then each
        # requested control is generated and measured.
        data, _ = set_profile(sd, family, performance_span(model, settings), settings, uniform_rng)
        density = data["note_density"]
        hist = np.asarray(data["duration_pitch_class_histogram"])
        data_request = {
            "notes_per_second": max(density, 0.1) if math.isfinite(density) else 1.0,
            "pitch_class_histogram": (hist if hist.sum() > 0 else np.ones(12)).tolist(),
        }
        gen = Generated([], [])
        for i, req in enumerate(control_requests(model, settings, data_request)):
            plan, samples, seqs = _run(
                model,
                _request(
                    settings,
                    settings.seed + 101 * i,
                    num_seconds=settings.performance_seconds,
                    **req["controls"],
                ),
            )
            part = _generated(family, plan, samples, seqs)
            if i == 0:
                gen = part
            controls.append(
                {
                    "name": req["name"],
                    **adherence(part, req["controls"], settings.density_tolerance),
                }
            )
    else:
        gen = generate_plain(model, settings, sd)

    data, uniform = set_profile(sd, family, gen.span, settings, uniform_rng)
    generated = MS.profile(gen.notes, **stat_options(family))
    improv: dict[str, float] = {}
    if family == "improv":
        from modeling.families.melody import parse_event_space

        lo, _ = parse_event_space(cfg.encoding.event_space)
        improv = {
            "data": data_chord_tone_ratio(sd)[0],
            "generated": pooled_chord_tones(gen.events, gen.chords, lo),
            "uniform": uniform["chord_tone_ratio"],
        }
    vocabulary = vocabulary_size(family, cfg.encoding.event_space)
    ngram = set_ngram(sd, vocabulary)
    pool, longest = data_pool(sd, family, gen.span)
    quality = Q.assess(
        family=family,
        perplexity=metrics["perplexity"],
        ngram=ngram,
        generated=Q.pieces(gen.notes, SECONDS_PER_STEP),
        data=sd.profiles[(family, round(gen.span, 6))]["pieces"],
        pool=pool,
        data_longest=longest,
        rng=np.random.default_rng([settings.seed, 11]),
        chord_tones=(improv["generated"], improv["data"]) if improv else None,
        controls=controls,
    )
    history = loss_history(meta.get("run_id"))
    info = {k: meta.get(k) for k in ("name", "version", "run_id", "step", "data_version")}
    info.update(
        {
            "uri": uri,
            "example_set_version": sd.version,
            "same_data_as_training": meta.get("data_version") == sd.version,
        }
    )
    result = Result(
        name=name,
        family=family,
        example_set=sd.examples.name,
        model=info,
        eval=metrics,
        cross=cross,
        skipped_sets=skipped,
        data=data,
        generated=generated,
        uniform=uniform,
        distances=MS.compare(data, generated),
        uniform_distances=MS.compare(data, uniform),
        improv=improv,
        controls=controls,
        history=history,
        vocabulary=vocabulary,
        unit=unit_weights(cfg)[0],
        seconds=time.perf_counter() - t0,
        quality=quality,
        ngram=ngram,
        training=training_time(meta.get("run_id"), history),
    )
    say(
        f"{name}: pitch-class distance {result.distances['pch_distance']:.3f} "
        f"(uniform {result.uniform_distances['pch_distance']:.3f}), "
        f"{result.seconds:.1f} s"
    )
    return result


# ============================================================================ outputs


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, (np.floating, np.integer)):
        return _finite(x.item())
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "**no**"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{float(x):.{digits}f}"


def goals(r: Result) -> dict[str, bool | None]:
    """The issue's acceptance goals for one variant (None: the goal does not apply)."""
    out: dict[str, bool | None] = {
        "eval_perplexity_reported": math.isfinite(r.eval.get("perplexity", math.nan)),
        "pch_closer_than_uniform": _less(
            r.distances["pch_distance"], r.uniform_distances["pch_distance"]
        ),
        "chord_tones_at_least_data": None,
        "density_within_tolerance": None,
    }
    if r.improv:
        g, d = r.improv["generated"], r.improv["data"]
        out["chord_tones_at_least_data"] = (
            (g >= d) if math.isfinite(g) and math.isfinite(d) else False
        )
    dens = [c["density_within_tolerance"] for c in r.controls if "density_within_tolerance" in c]
    if dens:
        out["density_within_tolerance"] = all(dens)
    return out


def _less(a: float, b: float) -> bool:
    return bool(math.isfinite(a) and math.isfinite(b) and a < b)


def summary_entry(r: Result) -> dict[str, Any]:
    """One variant's ``summary.json`` entry: nested scalars only (``dvc metrics show``)."""
    stats: dict[str, Any] = {
        "pch_distance": r.distances["pch_distance"],
        "pch_distance_uniform": r.uniform_distances["pch_distance"],
        "interval_distance": r.distances["interval_distance"],
        "interval_distance_uniform": r.uniform_distances["interval_distance"],
        "samples": r.generated["num_sequences"],
        "notes": r.generated["num_notes"],
    }
    for key in MS.SCALARS:
        if any(math.isfinite(p[key]) for p in (r.data, r.generated)):
            stats[key] = {
                "data": r.data[key],
                "generated": r.generated[key],
                "uniform": r.uniform[key],
            }
    entry: dict[str, Any] = {
        "family": r.family,
        "example_set": r.example_set,
        "model_version": r.model.get("version"),
        "loss_per_step_unit": r.unit,
        "eval": {k: r.eval[k] for k in (*METRIC_KEYS, "examples", "labels")},
        "cross": {
            s: {k: m[k] for k in ("loss", "perplexity", "accuracy")} for s, m in r.cross.items()
        },
        "generated": stats,
        "goals": goals(r),
        "quality": r.quality,
        "ngram": {k: r.ngram[k] for k in ("order", "loss", "perplexity")} if r.ngram else None,
        "training": r.training,
    }
    if r.improv:
        entry["chord_tone_ratio"] = dict(r.improv)
    if r.controls:
        dens = [c for c in r.controls if "density_rel_error" in c]
        hist = [c for c in r.controls if "histogram_distance" in c]
        entry["controls"] = {
            "requests": len(r.controls),
            "density_mean_rel_error": float(np.mean([c["density_rel_error"] for c in dens]))
            if dens
            else None,
            "density_within_tolerance": sum(c["density_within_tolerance"] for c in dens)
            if dens
            else None,
            "histogram_mean_distance": float(np.mean([c["histogram_distance"] for c in hist]))
            if hist
            else None,
        }
    return _finite(entry)


SUMMARY_FIELDS = (
    "variant",
    "family",
    "example_set",
    "eval_perplexity",
    "eval_loss",
    "eval_accuracy",
    "eval_event_accuracy",
    "eval_no_event_accuracy",
    "eval_loss_per_step",
    "quality_pass",
    "ngram_perplexity",
    "cross_perplexity",
    "pch_distance",
    "pch_distance_uniform",
    "interval_distance",
    "in_key_ratio",
    "chord_tone_ratio",
    "density_mean_rel_error",
    "histogram_mean_distance",
    "velocity_spread",
)


def summary_rows(results: Sequence[Result]) -> list[dict[str, Any]]:
    """The summary table: one row per variant plus a uniform-random row per example set."""
    rows = []
    for r in results:
        e = summary_entry(r)
        rows.append(
            {
                "variant": r.name,
                "family": r.family,
                "example_set": r.example_set,
                **{f"eval_{k}": r.eval[k] for k in METRIC_KEYS},
                "quality_pass": r.quality.get("pass", ""),
                "ngram_perplexity": (r.ngram or {}).get("perplexity", ""),
                "cross_perplexity": "; ".join(
                    f"{s}={m['perplexity']:.4g}" for s, m in r.cross.items()
                ),
                "pch_distance": r.distances["pch_distance"],
                "pch_distance_uniform": r.uniform_distances["pch_distance"],
                "interval_distance": r.distances["interval_distance"],
                "in_key_ratio": r.generated["in_key_ratio"],
                "chord_tone_ratio": r.improv.get("generated", ""),
                "density_mean_rel_error": (e.get("controls") or {}).get(
                    "density_mean_rel_error", ""
                ),
                "histogram_mean_distance": (e.get("controls") or {}).get(
                    "histogram_mean_distance", ""
                ),
                "velocity_spread": r.generated["velocity_spread"],
            }
        )
    for set_name, r in _baseline_sources(results).items():
        rows.append(
            {
                "variant": f"uniform_random@{set_name}",
                "family": r.family,
                "example_set": set_name,
                "eval_perplexity": float(r.vocabulary),
                "eval_loss": math.log(r.vocabulary),
                "pch_distance": r.uniform_distances["pch_distance"],
                "pch_distance_uniform": r.uniform_distances["pch_distance"],
                "interval_distance": r.uniform_distances["interval_distance"],
                "in_key_ratio": r.uniform["in_key_ratio"],
                "chord_tone_ratio": r.uniform.get("chord_tone_ratio", ""),
                "velocity_spread": r.uniform["velocity_spread"],
            }
        )
        if r.ngram:
            rows.append(
                {
                    "variant": f"ngram_kn{r.ngram['order']}@{set_name}",
                    "family": r.family,
                    "example_set": set_name,
                    "eval_perplexity": r.ngram["perplexity"],
                    "eval_loss": r.ngram["loss"],
                    "ngram_perplexity": r.ngram["perplexity"],
                }
            )
    return rows


def _baseline_sources(results: Sequence[Result]) -> dict[str, Result]:
    """The first result of each example set: its uniform profile is the set's baseline."""
    out: dict[str, Result] = {}
    for r in results:
        out.setdefault(r.example_set, r)
    return out


def _csv(rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore")
    w.writeheader()
    for row in rows:
        w.writerow({k: _cell(row.get(k, "")) for k in fields})
    return buf.getvalue()


def _cell(v: Any) -> Any:
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.6g}"
    return v


# ----------------------------------------------------------------------------- figures


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_losses(results: Sequence[Result], path: Path) -> None:
    """One panel per variant: train and eval loss over training steps (MLflow metrics)."""
    plt = _plt()
    n = len(results)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, r in zip(axes.flat, results, strict=False):
        for split, style in (("train", "-"), ("eval", "o-")):
            pts = [(h["step"], h[f"{split}_loss"]) for h in r.history if f"{split}_loss" in h]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, label=split, markersize=3)
        ax.set_title(r.name, fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats/event)")
        ax.grid(alpha=0.3)
        if r.history:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no training metrics", ha="center", transform=ax.transAxes)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_histograms(r: Result, path: Path) -> None:
    """Pitch-class and interval histograms: eval data vs generated vs uniform random."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4))
    x = np.arange(12)
    width = 0.27
    for k, (label, prof) in enumerate(
        (("data", r.data), ("generated", r.generated), ("uniform random", r.uniform))
    ):
        a1.bar(x + (k - 1) * width, prof["pitch_class_histogram"], width, label=label)
        hist = np.asarray(prof["interval_histogram"], np.float64)
        if hist.sum() > 0:
            a2.plot(
                np.arange(-MS.MAX_INTERVAL, MS.MAX_INTERVAL + 1),
                hist / hist.sum(),
                "o-",
                markersize=3,
                label=label,
            )
    a1.set_xticks(x, ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"])
    a1.set(
        title=f"{r.name}: pitch classes (distance {_fmt(r.distances['pch_distance'])}, "
        f"uniform {_fmt(r.uniform_distances['pch_distance'])})",
        ylabel="share",
    )
    a2.set(title="melodic intervals (top line)", xlabel="semitones", ylabel="share")
    for ax in (a1, a2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    a1.title.set_fontsize(9)
    a2.title.set_fontsize(9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_controls(r: Result, path: Path, tolerance: float) -> None:
    """Requested vs achieved density (with the tolerance band) and histogram distance."""
    plt = _plt()
    dens = [c for c in r.controls if "requested_density" in c]
    hist = [c for c in r.controls if "histogram_distance" in c]
    panels = [p for p in (dens, hist) if p]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    axes = list(axes.flat)
    if dens:
        ax = axes.pop(0)
        want = np.array([c["requested_density"] for c in dens])
        got = np.array([c["achieved_density"] for c in dens])
        line = np.linspace(0, max(want.max(), np.nanmax(got), 1.0) * 1.1, 50)
        ax.fill_between(
            line,
            line * (1 - tolerance),
            line * (1 + tolerance),
            color="0.88",
            label=f"±{tolerance:.0%}",
        )
        ax.plot(line, line, "k--", linewidth=0.8, label="achieved = requested")
        ax.plot(want, got, "o", color="C1", label="samples (mean)")
        for c in dens:
            ax.annotate(c["name"], (c["requested_density"], c["achieved_density"]), fontsize=7)
        ax.set(
            xlabel="requested notes / s",
            ylabel="achieved notes / s",
            title=f"{r.name}: note density",
        )
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if hist:
        ax = axes.pop(0)
        ax.bar(range(len(hist)), [c["histogram_distance"] for c in hist], color="C2")
        ax.set_xticks(range(len(hist)), [c["name"] for c in hist], rotation=20, fontsize=7)
        ax.set(ylabel="distance requested vs achieved", title="pitch-class histogram")
        ax.title.set_fontsize(9)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_summary(results: Sequence[Result], path: Path) -> None:
    """Pitch-class distance to the data per variant: generated vs the uniform random model."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(results) + 2), 3.4))
    x = np.arange(len(results))
    ax.bar(x - 0.2, [r.distances["pch_distance"] for r in results], 0.4, label="generated")
    ax.bar(
        x + 0.2, [r.uniform_distances["pch_distance"] for r in results], 0.4, label="uniform random"
    )
    ax.set_xticks(x, [r.name for r in results], rotation=25, ha="right", fontsize=8)
    ax.set(ylabel="distance to eval data", title="pitch-class histogram distance (lower is better)")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ----------------------------------------------------------------------------- report


def render_report(
    results: Sequence[Result], settings: Settings, missing: Sequence[str], tracking: str
) -> str:
    """The Markdown report (figures referenced relative to it)."""
    lines = [
        "# motif evaluation report",
        "",
        f"Models: every registered model's `@{settings.alias}` version in `{tracking}`"
        f"{f' (profile `{settings.profile}`)' if settings.profile else ''}, evaluated "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"Held-out metrics use the training loop's scorer on each variant's eval split. "
        f"Statistics compare {settings.num_samples} generated samples per variant (melody / "
        f"improv {settings.melody_steps} steps, polyphony {settings.polyphony_steps} steps, "
        f"performance {settings.performance_seconds:g} s, temperature "
        f"{settings.temperature:g}, seed {settings.seed}) with up to {settings.data_samples} eval "
        "examples cut to the same length, and with a uniform random model (every stored event "
        "equally likely, perplexity = vocabulary size) sampled at the same lengths. "
        "Histogram distances are total-variation distances (0 = identical, 1 = disjoint).",
        "",
        *quality_table(results),
        "## Summary",
        "",
        "| variant | example set | eval perplexity | eval accuracy | eval loss per musical unit | "
        "cross-corpus perplexity | pitch-class distance | interval distance | in-key ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cross = ", ".join(f"{s}: {_fmt(m['perplexity'], 2)}" for s, m in r.cross.items()) or "-"
        lines.append(
            f"| {r.name} | {r.example_set} | {_fmt(r.eval['perplexity'])} | "
            f"{_fmt(r.eval['accuracy'])} | {_fmt(r.eval['loss_per_step'])} per {r.unit} | {cross} | "
            f"{_fmt(r.distances['pch_distance'])} | {_fmt(r.distances['interval_distance'])} | "
            f"{_fmt(r.generated['in_key_ratio'])} |"
        )
    for set_name, r in _baseline_sources(results).items():
        lines.append(
            f"| *uniform random* | {set_name} | {_fmt(float(r.vocabulary), 1)} | "
            f"{_fmt(1.0 / r.vocabulary)} | - | - | {_fmt(r.uniform_distances['pch_distance'])} | "
            f"{_fmt(r.uniform_distances['interval_distance'])} | "
            f"{_fmt(r.uniform['in_key_ratio'])} |"
        )
        if r.ngram:
            lines.append(
                f"| *n-gram (Kneser-Ney, order {r.ngram['order']})* | {set_name} | "
                f"{_fmt(r.ngram['perplexity'])} | - | - | - | - | - | - |"
            )
    lines += [
        "",
        "![pitch-class distance per variant](figures/summary_pch.png)",
        "",
        "## Goals",
        "",
        "| variant | eval perplexity | pitch classes closer than uniform | "
        "chord tones >= data | density within "
        f"{settings.density_tolerance:.0%} |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        g = goals(r)
        cells = [_fmt(r.eval["perplexity"]) if g["eval_perplexity_reported"] else "**missing**"]
        cells.append(
            f"{_fmt(g['pch_closer_than_uniform'])} "
            f"({_fmt(r.distances['pch_distance'])} vs "
            f"{_fmt(r.uniform_distances['pch_distance'])})"
        )
        cells.append(
            "-"
            if g["chord_tones_at_least_data"] is None
            else f"{_fmt(g['chord_tones_at_least_data'])} ({_fmt(r.improv['generated'])} vs "
            f"{_fmt(r.improv['data'])})"
        )
        dens = [c for c in r.controls if "density_rel_error" in c]
        cells.append(
            "-"
            if g["density_within_tolerance"] is None
            else f"{_fmt(g['density_within_tolerance'])} "
            f"({sum(c['density_within_tolerance'] for c in dens)}/{len(dens)} requests)"
        )
        lines.append(f"| {r.name} | " + " | ".join(cells) + " |")
    lines += ["", "## Training loss curves", "", "![loss curves](figures/loss_curves.png)", ""]
    for r in results:
        lines += variant_section(r, settings)
    if missing:
        lines += [
            "## Not evaluated",
            "",
            f"Variants in params.yaml without a `@{settings.alias}` model: {', '.join(missing)}.",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


QUALITY_LABELS = {
    "perplexity_vs_ngram": "eval perplexity <= 0.95 x n-gram",
    "samples": f"samples >= {Q.MIN_SAMPLES}",
    "pitch_class_distance": "pitch classes",
    "interval_distance": "intervals",
    "duration_distance": "durations",
    "density_difference": "density (notes/s)",
    "chord_tone_ratio": "chord tones >= 0.9 x data",
    "longest_note_seconds": "longest note (s) <= data's",
    "density_requests_met": "density requests within 20 %",
    "histogram_requests_distance": "histogram requests TV <= 0.2",
    "notes_per_step": "notes per step in data p5-p95",
    "pitch_range": "pitch range in data p5-p95",
}


def _criterion_cell(c: Mapping[str, Any] | None) -> str:
    if c is None:
        return "-"
    verdict = {True: "pass", False: "**fail**", None: "n/a"}[c["pass"]]
    if c["op"] == "in":
        bound = f"in [{_fmt(c['low'], 2)}, {_fmt(c['high'], 2)}]"
    else:
        bound = f"{c['op']} {_fmt(c['threshold'])}"
    return f"{verdict} ({_fmt(c['value'])} {bound})"


def quality_table(results: Sequence[Result]) -> list[str]:
    """The report's first table: each variant's verdict and every criterion's value vs bar."""
    keys = [k for k in QUALITY_LABELS if any(k in r.quality.get("criteria", {}) for r in results)]
    lines = [
        "## Quality bar",
        "",
        "Floors of issue 12, measured, not tuned: held-out perplexity at least 5 % below an "
        "interpolated Kneser-Ney n-gram fitted on the set's train split (order chosen on the eval "
        f"split); at least {Q.MIN_SAMPLES} samples; sample histograms and density within "
        f"{Q.FLOOR_FACTOR:g}x the data's own noise floor (two random disjoint groups of eval "
        "windows of the generated and data sample counts; the floor is the "
        f"{Q.FLOOR_PERCENTILE:g}th percentile of "
        f"{Q.FLOOR_DRAWS} draws; the threshold shown is {Q.FLOOR_FACTOR:g}x that floor).",
        "",
        "| variant | overall | " + " | ".join(QUALITY_LABELS[k] for k in keys) + " |",
        "|---|---|" + "---|" * len(keys),
    ]
    for r in results:
        crit = r.quality.get("criteria", {})
        overall = (
            f"{'pass' if r.quality.get('pass') else '**fail**'} "
            f"({r.quality.get('passed', 0)}/{len(crit)})"
        )
        cells = [_criterion_cell(crit.get(k)) for k in keys]
        lines.append(f"| {r.name} | {overall} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def variant_section(r: Result, settings: Settings) -> list[str]:
    """One variant's part of the report: model, held-out metrics, statistics, adherence."""
    m = r.model
    same = (
        "(the data version it was trained on)"
        if m["same_data_as_training"]
        else "(**changed since training**: its data version differs)"
    )
    lines = [
        f"## {r.name}",
        "",
        f"Registered model `{m.get('name')}` version {m.get('version')} (run "
        f"`{str(m.get('run_id') or '-')[:12]}`, training step {m.get('step')}), family "
        f"{r.family}; eval set `{r.example_set}` "
        f"{same}; evaluated in {r.seconds:.1f} s.",
        "",
        "### Held-out metrics",
        "",
        "| metric | " + " | ".join([f"{r.example_set} (eval)", *r.cross]) + " |",
        "|---|" + "---|" * (1 + len(r.cross)),
    ]
    for k in (*METRIC_KEYS, "examples", "labels"):
        label = f"loss per {r.unit}" if k == "loss_per_step" else k
        vals = [r.eval[k], *(c[k] for c in r.cross.values())]
        lines.append(f"| {label} | " + " | ".join(_fmt(v, 4) for v in vals) + " |")
    for s, why in r.skipped_sets.items():
        lines.append(f"\nCross-corpus set `{s}` skipped: {why}.")
    lines += [
        "",
        "### Generated vs data",
        "",
        "| statistic | eval data | generated | uniform random |",
        "|---|---|---|---|",
        f"| sequences / notes | {r.data['num_sequences']} / {r.data['num_notes']} | "
        f"{r.generated['num_sequences']} / {r.generated['num_notes']} | "
        f"{r.uniform['num_sequences']} / {r.uniform['num_notes']} |",
        f"| pitch-class distance to data | 0 | {_fmt(r.distances['pch_distance'])} | "
        f"{_fmt(r.uniform_distances['pch_distance'])} |",
        f"| interval distance to data | 0 | {_fmt(r.distances['interval_distance'])} | "
        f"{_fmt(r.uniform_distances['interval_distance'])} |",
    ]
    labels = {
        "pitch_range": "pitch range (semitones)",
        "note_density": "notes per second",
        "repetition": "bars repeating an earlier bar",
        "in_key_ratio": "in-key ratio",
        "silence_ratio": "silence ratio",
        "notes_per_step": "notes per sounding step",
        "voice_leading_move": "voice-leading move (semitones)",
        "leap_ratio": "voice-leading leaps > 5th",
        "velocity_spread": "velocity spread (sd)",
    }
    for key, label in labels.items():
        if all(not math.isfinite(p[key]) for p in (r.data, r.generated)):
            continue
        lines.append(
            f"| {label} | {_fmt(r.data[key])} | {_fmt(r.generated[key])} | {_fmt(r.uniform[key])} |"
        )
    if r.improv:
        lines.append(
            f"| chord-tone ratio | {_fmt(r.improv['data'])} | "
            f"{_fmt(r.improv['generated'])} | {_fmt(r.improv['uniform'])} |"
        )
    lines += ["", f"![histograms](figures/{r.name}_histograms.png)", ""]
    if r.controls:
        lines += [
            "### Control adherence",
            "",
            "| request | requested density | achieved density | relative error | "
            f"within {settings.density_tolerance:.0%} | histogram distance |",
            "|---|---|---|---|---|---|",
        ]
        for c in r.controls:
            lines.append(
                f"| {c['name']} | {_fmt(c.get('requested_density'), 2)} | "
                f"{_fmt(c.get('achieved_density'), 2)} | {_fmt(c.get('density_rel_error'))} | "
                f"{_fmt(c['density_within_tolerance']) if 'density_within_tolerance' in c else '-'}"
                f" | {_fmt(c.get('histogram_distance'))} |"
            )
        lines += ["", f"![controls](figures/{r.name}_controls.png)", ""]
    return lines


def write_outputs(
    results: Sequence[Result], settings: Settings, missing: Sequence[str], output: Path
) -> list[str]:
    """Write every output into a temporary directory beside ``output``, then move them in.

    Only the stage's own items (:data:`OUTPUT_ITEMS`) are replaced; a failure leaves the
    previous report untouched.
    """
    from modeling import registry

    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.evaluate-", dir=output.parent))
    try:
        figs, plots = tmp / "figures", tmp / "plots"
        for d in (figs, plots / "loss", plots / "pitch_classes"):
            d.mkdir(parents=True)
        plot_losses(results, figs / "loss_curves.png")
        plot_summary(results, figs / "summary_pch.png")
        control_rows = []
        for r in results:
            plot_histograms(r, figs / f"{r.name}_histograms.png")
            if r.controls:
                plot_controls(r, figs / f"{r.name}_controls.png", settings.density_tolerance)
            (plots / "loss" / f"{r.name}.csv").write_text(
                _csv(r.history, ("step", "train_loss", "eval_loss"))
            )
            pch = [
                {
                    "pitch_class": pc,
                    "data": r.data["pitch_class_histogram"][pc],
                    "generated": r.generated["pitch_class_histogram"][pc],
                    "uniform": r.uniform["pitch_class_histogram"][pc],
                }
                for pc in range(12)
            ]
            (plots / "pitch_classes" / f"{r.name}.csv").write_text(
                _csv(pch, ("pitch_class", "data", "generated", "uniform"))
            )
            for c in r.controls:
                if "requested_density" in c:
                    control_rows.append(
                        {
                            "variant": r.name,
                            "request": c["name"],
                            "requested": c["requested_density"],
                            "achieved": c["achieved_density"],
                            "rel_error": c["density_rel_error"],
                        }
                    )
        (plots / "controls.csv").write_text(
            _csv(control_rows, ("variant", "request", "requested", "achieved", "rel_error"))
        )
        (tmp / "summary.csv").write_text(_csv(summary_rows(results), SUMMARY_FIELDS))
        summary = {r.name: summary_entry(r) for r in results}
        summary["uniform_random"] = _finite(
            {
                s: {
                    "perplexity": float(r.vocabulary),
                    "pch_distance": r.uniform_distances["pch_distance"],
                    "interval_distance": r.uniform_distances["interval_distance"],
                }
                for s, r in _baseline_sources(results).items()
            }
        )
        summary["ngram_baseline"] = _finite(
            {
                s: {k: r.ngram[k] for k in ("order", "loss", "perplexity")}
                for s, r in _baseline_sources(results).items()
                if r.ngram
            }
        )
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        (tmp / "report.md").write_text(
            render_report(results, settings, missing, registry.tracking_uri())
        )
        output.mkdir(parents=True, exist_ok=True)
        for item in OUTPUT_ITEMS:
            dest = output / item
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            elif dest.exists() or dest.is_symlink():
                dest.unlink()
            os.replace(tmp / item, dest)
        return [str(output / item) for item in OUTPUT_ITEMS]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ============================================================================ CLI


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole stage; raises :class:`EvalError` for anything the user can fix."""
    started = time.perf_counter()
    settings = load_settings(args.params)
    overrides: dict[str, Any] = {}
    if args.examples_root:
        overrides["examples_root"] = Path(args.examples_root)
    if args.num_samples is not None:
        if args.num_samples < 1:
            raise EvalError(f"--num-samples must be >= 1, got {args.num_samples}")
        overrides["num_samples"] = args.num_samples
    if args.seed is not None:
        if args.seed < 0:
            raise EvalError(f"--seed must be >= 0, got {args.seed}")
        overrides["seed"] = args.seed
    if overrides:
        from dataclasses import replace

        settings = replace(settings, **overrides)
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise EvalError(f"--output {output} exists and is not a directory")
    names = list(args.models) if args.models else list(settings.models)
    champions = find_champions(settings.alias, names)

    def say(message: str) -> None:
        if not args.quiet:
            print(f"evaluate: {message}", file=sys.stderr, flush=True)

    sets = Sets(settings.examples_root)
    cache = ResultCache(Path(args.cache), settings) if args.cache else None
    results = []
    for name, uri in champions:
        hit = cache.get(name, uri) if cache else None
        if hit is not None:
            say(f"{name}: unchanged model, data and settings; reusing its evaluation")
            results.append(hit)
            continue
        result = evaluate_model(name, uri, settings, sets, say)
        if cache:
            cache.put(name, uri, result)
        results.append(result)
    if cache:
        cache.prune({r.name for r in results})
    record_quality(results, say)
    evaluated = {r.name for r in results}
    missing = sorted(v for v in settings.variant_sets if v not in evaluated) if not names else []
    files = write_outputs(results, settings, missing, output)
    return {
        "variants": [r.name for r in results],
        "outputs": files,
        "seconds": round(time.perf_counter() - started, 2),
    }


def record_quality(results: Sequence[Result], say: Callable[[str], None]) -> None:
    """Put each evaluated version's verdict on its model card (``quality`` tag + description)."""
    from modeling import registry

    for r in results:
        version = r.model.get("version")
        if version is None or not r.quality:
            continue
        verdict, text = Q.verdict_text(r.quality)
        try:
            registry.set_quality(r.name, version, verdict, text)
        except registry.RegistryError as exc:
            say(f"{r.name}: quality verdict not recorded in the registry: {exc}")
        say(f"{r.name}: quality {verdict} ({text})")


def code_version(root: Path | None = None) -> str:
    """SHA-256 of the evaluation code: the source of every project module ``python -m
    modeling.evaluate`` imports (derived from the imports by :mod:`pipelines.stagedeps`, the same
    closure dvc.yaml's evaluate deps are checked against), under ``root`` (default: this checkout).
    """
    import hashlib

    from pipelines.stagedeps import ROOT, closure

    root = ROOT if root is None else Path(root)
    digest = hashlib.sha256()
    for rel in closure("modeling.evaluate", root):
        digest.update(f"{rel}\0".encode())
        digest.update(hashlib.sha256((root / rel).read_bytes()).digest())
    return digest.hexdigest()


class ResultCache:
    """Per-variant results kept between runs, keyed by what decides them.

    The stage re-runs when any variant changes (it reports on all of them); a variant whose
    registry version, eval data, settings and evaluation code are unchanged is not evaluated
    again. Entries are JSON (no pickle): ``<dir>/<variant>.json`` = {key, result}. The code part
    is :func:`code_version`: every project file this module imports, so a changed decoder or
    scorer is never answered from the cache.
    """

    def __init__(self, root: Path, settings: Settings) -> None:
        import hashlib

        self.root = root
        digest = hashlib.sha256(repr(settings).encode())
        digest.update(code_version().encode())
        for path in sorted(Path(settings.examples_root).glob("*/eval-*.parquet")):
            digest.update(str(path.relative_to(settings.examples_root)).encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        for path in sorted(Path(settings.examples_root).glob("*/meta.json")):
            digest.update(path.read_bytes())
        self.base = digest.hexdigest()

    def _key(self, name: str, uri: str) -> str | None:
        from modeling import registry

        try:
            mv = registry._version_of(registry.client(), uri)
        except registry.RegistryError:
            return None
        return f"{self.base}:{name}:{mv.version}:{mv.run_id}"

    def get(self, name: str, uri: str) -> Result | None:
        path = self.root / f"{name}.json"
        key = self._key(name, uri)
        if key is None or not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text())
            return Result(**entry["result"]) if entry.get("key") == key else None
        except (ValueError, TypeError, KeyError):
            return None  # an old or damaged entry: evaluate again

    def put(self, name: str, uri: str, result: Result) -> None:
        from dataclasses import asdict

        key = self._key(name, uri)
        if key is None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"key": key, "result": asdict(result)}, default=_jsonable)
        tmp = self.root / f".{name}.json.tmp"
        tmp.write_text(text)
        os.replace(tmp, self.root / f"{name}.json")

    def prune(self, keep: set[str]) -> None:
        for path in self.root.glob("*.json") if self.root.is_dir() else ():
            if path.stem not in keep:
                path.unlink()


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON-serialisable: {type(x).__name__}")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"evaluate: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m modeling.evaluate",
        description="Evaluate every registered champion: held-out metrics, musical "
        "statistics of generated samples, conditioning adherence; writes a "
        "Markdown report, summary.json and plot CSVs.",
    )
    p.add_argument(
        "--output", default=DEFAULT_OUTPUT, help=f"report directory (default {DEFAULT_OUTPUT})"
    )
    p.add_argument(
        "--params",
        default=None,
        help="params file with an optional evaluate: section (default params.yaml if present)",
    )
    p.add_argument(
        "--models",
        nargs="+",
        default=None,
        metavar="NAME",
        help="registered model names to evaluate (default: every model with the alias)",
    )
    p.add_argument(
        "--examples-root",
        default=None,
        help="where example sets live (default evaluate.examples_root or data/examples)",
    )
    p.add_argument(
        "--num-samples",
        type=int,
        default=None,
        help="generated samples per variant and control request, e.g. 4",
    )
    p.add_argument("--seed", type=int, default=None, help="sampling seed, e.g. 1234")
    p.add_argument(
        "--cache",
        default=None,
        help="keep per-variant results here and reuse those whose model, data, settings and "
        "code are unchanged, e.g. data/reports/cache",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    quiet_libraries()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # usage error (one line, printed) or --help
        return int(exc.code or 0)
    try:
        summary = run(args)
    except EvalError as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("evaluate: interrupted; the previous report is unchanged", file=sys.stderr)
        return 130
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
