"""One registered model's evaluation: held-out metrics, samples, statistics against the data and
the uniform baseline, control adherence and the quality bar, gathered in a :class:`Result`.

:func:`evaluate_model` is the per-variant loop body of :func:`modeling.evaluation.cli.run`;
statistics of a set at a given span are computed once (:func:`set_profile`) and shared by every
variant of that set.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modeling import musicstats as MS
from modeling import quality as Q
from modeling.evaluation.champions import loss_history, training_time
from modeling.evaluation.sampling import (
    Generated,
    adherence,
    chord_plan,
    control_requests,
    controls_of,
    cut_to_span,
    duration_histogram,
    generate_plain,
    length_request,
    make_request,
    planned_span,
    pooled_chord_tones,
    run_request,
    uniform_events,
    vocabulary_size,
)
from modeling.evaluation.sets import (
    SetData,
    Sets,
    data_chord_tone_ratio,
    data_notes,
    data_pool,
    decode,
    family_of,
    notes_of,
    set_ngram,
    stat_options,
    timing_and_dynamics,
)
from modeling.evaluation.settings import SECONDS_PER_STEP, EvalError, Settings


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
    from modeling import train

    pad = int(family_of(cfg.family).NEUTRAL_PAD)
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
    fam = family_of(family)
    opts = stat_options(family)
    notes = data_notes(sd, family, settings.data_samples, seconds)
    data = MS.profile(notes, **opts)
    data["duration_pitch_class_histogram"] = duration_histogram(notes)
    data["timing_and_dynamics"] = timing_and_dynamics(notes)
    space = sd.examples.event_space
    uni_events: list[np.ndarray] = []
    uni_cols: list[dict[str, np.ndarray]] = []
    if fam.CHORDS:
        for prog, count in chord_plan(sd, settings):
            for _ in range(count):
                uni_events.append(uniform_events(family, space, uniform_rng, steps=prog["steps"]))
                uni_cols.append(prog["columns"])
    else:
        setting, request_field = fam.EVAL_LENGTH
        steps = int(getattr(settings, setting)) if request_field == "num_steps" else 0
        for _ in range(settings.num_samples):
            uni_events.append(
                uniform_events(family, space, uniform_rng, steps=steps, seconds=seconds)
            )
            uni_cols.append({})
    uni_notes = [
        notes_of(family, decode(family, space, ev, cols)).window(0.0, seconds)
        for ev, cols in zip(uni_events, uni_cols, strict=True)
    ]
    uniform = MS.profile(uni_notes, **opts)
    if fam.CHORDS:
        uniform["chord_tone_ratio"] = pooled_chord_tones(
            uni_events, [c["chord_pitches"] for c in uni_cols], fam.lowest_pitch(space)
        )
    sd.profiles[key] = {
        "data": data,
        "uniform": uniform,
        "pieces": Q.pieces(notes, SECONDS_PER_STEP),
    }
    return data, uniform


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
    if any(controls_of(model)):
        # Statistics compare samples made with the data's own average controls; then each
        # requested control is generated and measured.
        data, _ = set_profile(sd, family, planned_span(model, settings), settings, uniform_rng)
        density = data["note_density"]
        hist = np.asarray(data["duration_pitch_class_histogram"])
        data_request = {
            "notes_per_second": max(density, 0.1) if math.isfinite(density) else 1.0,
            "pitch_class_histogram": (hist if hist.sum() > 0 else np.ones(12)).tolist(),
        }
        gen = Generated([], [])
        for i, req in enumerate(control_requests(model, settings, data_request)):
            if i == 0:  # the statistics' samples: primed from the data as plain ones are
                part = gen = generate_plain(model, settings, sd, req["controls"])
            else:
                plan, samples, seqs = run_request(
                    model,
                    make_request(
                        settings,
                        settings.seed + 101 * i,
                        **length_request(family, settings),
                        **req["controls"],
                    ),
                )
                part = cut_to_span(family, plan, samples, seqs)
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
    if family_of(family).CHORDS:
        lo = family_of(family).lowest_pitch(cfg.encoding.event_space)
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
