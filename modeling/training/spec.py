"""Everything a run needs, validated before anything is written: :func:`prepare` -> :class:`RunSpec`.

Steps, each raising :class:`~modeling.cli.UsageError` (one line, exit 2) on bad input: flags
filled from ``--params`` (:func:`apply_params`) and range-checked; the variant with its hparams;
the example set (compatible, splittable over the ranks, and :func:`probe`-d through the model);
the output directory; a checkpoint to resume (in ``--output``, else in the resume store keyed by
:func:`resume_key`); ``--init-from`` weights (:func:`resolve_init_source`,
:func:`check_init_compatible`).

Resume store: ``dvc repro`` deletes a stage's outputs before it re-runs it, so every training
checkpoint is also hard-linked into ``<output>/../.resume/<name>-<key>/`` (``--resume-dir``
elsewhere), keyed by a digest of the run's config: a re-run with the same config resumes from
there, one with any other config starts afresh.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modeling import checkpoint as ckpt
from modeling import first_line
from modeling.cli import UsageError
from modeling.data import ExampleSet, ExampleSetError
from modeling.families.base import HParams, VariantConfig
from modeling.hparams import HParamsError, hparams_from_mapping, parse_hparams
from modeling.model import ATTENTION_MODES, EventRNN
from modeling.training.distributed import Dist
from modeling.training.metrics import (
    PRECISIONS,
    Scorer,
    default_event_label,
    neutral_pad,
    resolve_precision,
    unit_weights,
)

Resume = tuple[dict[str, Any], Path]


@dataclass(kw_only=True)
class RunSpec:
    """Everything a run needs, validated before anything is written."""

    args: argparse.Namespace
    variant: VariantConfig  # with the run's hparams
    hparams: HParams
    attention: str
    examples: ExampleSet
    data_version: str
    data_version_source: str
    output: Path
    config: dict[str, Any]
    pad_value: int
    resume: Resume | None
    init_payload: dict[str, Any] | None
    init_source: str
    store: ckpt.ResumeStore | None = None  # resumable state that survives --output's deletion


DEFAULTS: dict[str, Any] = {
    "num_steps": 1000,
    "eval_every": 100,
    "keep_last": 2,
    "save_every": None,
    "seed": 0,
    "attention": "parallel",
    "precision": "fp32",
    # padded events per micro-batch: bounds memory on long sequences (polyphony's reach 6k
    # events; 64 of them in one batch took 22 GB); gradients accumulate to the full batch's
    "max_batch_events": 65536,
}
SETTINGS = (
    "num_steps",
    "eval_every",
    "keep_last",
    "save_every",
    "attention",
    "precision",
    "max_batch_events",
)
# Entry keys the trainer does not use: DVC builds --examples / --init-from paths from them.
_PATH_KEYS = ("example_set", "init_from")
_INTEGERS = ("num_steps", "eval_every", "keep_last", "seed", "save_every", "max_batch_events")


def apply_params(args: argparse.Namespace, variant: str) -> dict[str, Any]:
    """Fill unset flags from ``--params`` (entry > train section > top-level seed > built-in
    defaults); return the entry's hparams mapping (applied under ``--hparams``)."""
    hparams, values = _params_values(args.params, variant) if args.params else ({}, {})
    for key, default in DEFAULTS.items():
        if getattr(args, key, None) is None:
            setattr(args, key, values.get(key, default))
    for key in _INTEGERS:
        if key == "save_every" and args.save_every is None:
            continue
        try:
            setattr(args, key, int(getattr(args, key)))
        except (TypeError, ValueError):
            raise UsageError(f"{key} must be an integer (got {getattr(args, key)!r})") from None
    if args.attention not in ATTENTION_MODES or args.precision not in PRECISIONS:
        raise UsageError(
            f"attention must be one of {', '.join(ATTENTION_MODES)} and precision one of "
            f"{', '.join(PRECISIONS)} (got {args.attention!r}, {args.precision!r})"
        )
    return hparams


def _params_values(path: str, variant: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(hparams, settings) that params file ``path`` gives ``variant``."""
    from pipelines.params import ParamsError, load_params

    try:
        params = load_params(path)
    except ParamsError as exc:
        raise UsageError(str(exc)) from None
    values: dict[str, Any] = {}
    if "seed" in params:
        values["seed"] = params["seed"]
    section = params.get("train") or {}
    bad = sorted(set(section) - set(SETTINGS))
    if bad:
        raise UsageError(
            f"{path}: train: unknown key(s) {', '.join(bad)}; valid: {', '.join(SETTINGS)}"
        )
    values.update(section)
    entries = [
        (group, (params.get(group) or {})[variant])
        for group in ("variants", "finetunes")
        if variant in (params.get(group) or {})
    ]
    if len(entries) > 1:
        raise UsageError(f"{path}: {variant} is under both variants and finetunes")
    if not entries:
        return {}, values
    group, entry = entries[0]
    valid = {*SETTINGS, "seed", "hparams", *_PATH_KEYS}
    bad = sorted(set(entry or {}) - valid)
    if bad:
        raise UsageError(
            f"{path}: {group}.{variant}: unknown key(s) {', '.join(bad)}; "
            f"valid: {', '.join(sorted(valid))}"
        )
    entry = dict(entry or {})
    hparams = dict(entry.pop("hparams", None) or {})
    values.update({k: v for k, v in entry.items() if k not in _PATH_KEYS})
    return hparams, values


def check_args(args: argparse.Namespace) -> None:
    for name in ("num_steps", "eval_every", "keep_last"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1 (got {getattr(args, name)})")
    if args.save_every is not None and args.save_every < 1:
        raise UsageError(f"--save-every must be >= 1 (got {args.save_every})")
    if args.max_batch_events < 0:
        raise UsageError(f"--max-batch-events must be >= 0 (got {args.max_batch_events})")


def resolve_init_source(source: str) -> tuple[dict[str, Any], str]:
    """Payload of an ``--init-from`` value: registry URI, checkpoint file or output directory."""
    if source.startswith(("models:/", "runs:/")):
        from modeling import registry

        try:
            path = registry.resolve_model_file(source)
        except registry.RegistryError as exc:
            raise UsageError(f"--init-from {source}: {exc}") from None
    else:
        path = Path(source)
        if path.is_dir():
            candidates = [path / "checkpoints" / ckpt.BEST, path / ckpt.BEST, path / "model.pt"]
            found = [c for c in candidates if c.is_file()]
            if not found:
                steps = ckpt.CheckpointDir(path / "checkpoints").steps()
                found = [steps[-1][1]] if steps else []
            if not found:
                raise UsageError(f"--init-from {source}: no checkpoint in that directory")
            path = found[0]
    try:
        return ckpt.load(path), str(path)
    except ckpt.CheckpointError as exc:
        raise UsageError(f"--init-from: {exc}") from None


def check_init_compatible(src: dict[str, Any], model: EventRNN, source: str) -> int:
    """Refuse weights from another variant, event space or shape (one line, exit 2); return
    how many leading control columns ``model``'s inputs add to the source's (0: none).

    A different variant *name* is accepted when its encoding is the same (``edm_rnn`` is
    fine-tuned from ``attention_rnn``: same key-melody encoding and event space), or when the
    model is the source's events plus conditioning: a controlled performance variant starts from
    ``performance_with_dynamics`` (same input columns, ``control_size`` control columns in
    front of them), so it skips the plateau the unconditioned model already left.
    """
    mine = model.describe()
    if src.get("event_space") != mine["event_space"]:
        raise UsageError(
            f"--init-from {source}: event space {src.get('event_space')} differs "
            f"from {mine['variant']}'s {mine['event_space']}"
        )
    if src.get("variant") == mine["variant"]:
        return 0
    if all(src.get(k) == mine[k] for k in ("family", "encoding", "input_size", "num_classes")):
        return 0
    controls = int(getattr(model.encoding, "control_size", 0))
    adds_controls = (
        controls > 0
        and model.first is None
        and src.get("family") == mine["family"]
        and src.get("num_classes") == mine["num_classes"]
        and mine["input_size"] == controls + src.get("input_size", -1)
    )
    if not adds_controls:
        raise UsageError(
            f"--init-from {source}: a {src.get('variant')} checkpoint (encoding "
            f"{src.get('encoding')}) cannot start {mine['variant']} (encoding "
            f"{mine['encoding']})"
        )
    return controls


def identity(config: dict[str, Any]) -> dict[str, Any]:
    """The config keys a resumed run must share with the run it continues."""
    keys = ("variant", "event_space", "hparams", "attention", "seed", "data_version", "precision")
    return {k: config.get(k) for k in keys}


# config keys that name where things are, not what the run computes
_NOT_IN_KEY = ("examples", "data_version_source", "init_from")


def resume_material(config: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """What a run's trajectory depends on: architecture, hparams, seed, data version, precision,
    the digest of the weights it started from, and the step count and eval interval (which shape
    its history); and which output it fills, so two outputs never share a store. The examples
    count by their DVC hash, not their path."""
    material = {k: v for k, v in config.items() if k not in _NOT_IN_KEY}
    return {
        **material,
        "num_steps": args.num_steps,
        "eval_every": args.eval_every,
        "output": str(Path(args.output).absolute()),
    }


def resume_key(config: dict[str, Any], args: argparse.Namespace) -> str:
    """16 hex digits naming the run's resume store: equal exactly when the material is."""
    text = json.dumps(resume_material(config, args), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"


# ----------------------------------------------------------------------------- prepare


def prepare(args: argparse.Namespace, d: Dist) -> RunSpec:
    """Validate every input; raise :class:`UsageError` before anything is written."""
    params_hparams = apply_params(args, args.variant)
    check_args(args)
    args.precision = resolve_precision(args.precision, d.device)
    variant = _variant(args, params_hparams)
    examples = _examples(args.examples, variant, d)
    pad_value = neutral_pad(variant)
    try:
        model = EventRNN(variant, variant.hparams, attention=args.attention)
    except ValueError as exc:  # e.g. output_terms on an encoding that has none
        raise UsageError(first_line(exc)) from None
    probe(model, variant, examples, pad_value)

    from modeling.registry import data_version

    version, version_source = data_version(examples.path)
    config = {
        **model.describe(),
        "seed": args.seed,
        "examples": str(examples.path),
        "example_set": examples.name,
        "data_version": version,
        "data_version_source": version_source,
        "step_unit": unit_weights(variant)[0],
        "default_event_label": default_event_label(variant),
        "precision": args.precision,
    }
    output = _output(args.output)
    resume = _resume_in_output(output, args.keep_last, variant.name, config)
    init_payload, init_source = None, ""
    if args.init_from and resume is None:
        init_payload, init_source = _init_weights(args.init_from, model, config)
    # dvc repro deleted --output (or it never existed): the resume store may hold this run
    store = ckpt.ResumeStore(
        Path(args.resume_dir) if args.resume_dir else output.absolute().parent / ".resume",
        output.absolute().name,
        resume_key(config, args),
        args.keep_last,
    )
    if resume is None:
        found = store.latest()
        if found is not None and identity(ckpt.config_of(found[0])) == identity(config):
            resume, init_payload, init_source = found, None, ""
    return RunSpec(
        args=args,
        variant=variant,
        hparams=variant.hparams,
        attention=config["attention"],
        examples=examples,
        data_version=version,
        data_version_source=version_source,
        output=output,
        config=config,
        pad_value=pad_value,
        resume=resume,
        init_payload=init_payload,
        init_source=init_source,
        store=store,
    )


def _variant(args: argparse.Namespace, params_hparams: dict[str, Any]) -> VariantConfig:
    """The named variant with its hparams: defaults < params entry < ``--hparams``."""
    from modeling.variants import UnknownVariantError, get_variant

    try:
        base = get_variant(args.variant)
    except UnknownVariantError as exc:
        raise UsageError(str(exc)) from None
    try:
        hp = hparams_from_mapping(params_hparams, base.hparams)
        hp = parse_hparams(args.hparams, hp)
    except HParamsError as exc:
        raise UsageError(str(exc)) from None
    return VariantConfig(base.name, base.family, base.encoding, hp, base.description)


def _examples(path: str, variant: VariantConfig, d: Dist) -> ExampleSet:
    """The example set, refused unless it fits the variant and splits over the ranks."""
    try:
        examples = ExampleSet.load(path)
        examples.check_compatible(variant.family, variant.encoding.event_space, variant.name)
    except ExampleSetError as exc:
        raise UsageError(str(exc)) from None
    usable = int((examples.train.lengths >= 2).sum())
    batch = min(usable, variant.hparams.batch_size)
    if batch < d.world:
        raise UsageError(f"batch of {batch} examples cannot be split over {d.world} processes")
    return examples


def _output(arg: str) -> Path:
    output = Path(arg)
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output} exists and is not a directory")
    existing = next(p for p in (output, *output.absolute().parents) if p.exists())
    if not os.access(existing, os.W_OK):
        raise UsageError(f"--output {output}: {existing} is not writable")
    return output


def _resume_in_output(
    output: Path, keep_last: int, variant: str, config: dict[str, Any]
) -> Resume | None:
    """The latest training checkpoint in ``--output``, refused unless it is this run's; its
    ``init_from``/``init_digest`` go into ``config`` (the resumed run started from them)."""
    cdir = ckpt.CheckpointDir(output / "checkpoints", keep_last)
    if not cdir.steps():
        return None
    resume = cdir.latest()
    if resume is None:
        raise UsageError(
            f"{cdir.root} holds no readable training checkpoint; delete it or use another --output"
        )
    old = ckpt.config_of(resume[0])
    if old.get("variant") != variant:
        raise UsageError(
            f"{output} holds a checkpoint of variant {old.get('variant')}, not "
            f"{variant}; use another --output"
        )
    mine = identity(config)
    mismatch = {k: (v, mine[k]) for k, v in identity(old).items() if v != mine[k]}
    if mismatch:
        what = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in mismatch.items())
        raise UsageError(
            f"{output} holds a run with other settings ({what}); use another --output or delete it"
        )
    for key in ("init_from", "init_digest"):
        if old.get(key):
            config[key] = old[key]
    return resume


def _init_weights(
    source: str, model: EventRNN, config: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """``--init-from`` weights, checked against (and loaded into) ``model``; recorded in
    ``config``."""
    payload, path = resolve_init_source(source)
    controls = check_init_compatible(ckpt.config_of(payload), model, source)
    if controls:
        payload = {**payload, "model": ckpt.with_control_inputs(payload["model"], controls)}
    payload = {**payload, "model": ckpt.with_new_terms(payload["model"], model)}
    try:
        ckpt.load_state(model, payload["model"], f"--init-from {source}")
    except ckpt.CheckpointError as exc:
        raise UsageError(str(exc)) from None
    config["init_from"] = source
    config["init_digest"] = _file_digest(path)
    return payload, path


def probe(model: EventRNN, variant: VariantConfig, examples: ExampleSet, pad_value: int) -> None:
    """Run the encoding and model on the examples holding the largest event of each split, so a
    set that does not fit the variant fails here (one line) rather than mid-training."""
    scorer = Scorer.for_variant(variant)
    for split in (examples.train, examples.eval):
        owner = np.repeat(np.arange(len(split)), split.lengths)
        first_usable = int(np.flatnonzero(split.lengths >= 2)[0])
        idx = np.unique([int(owner[int(np.argmax(split.events))]), first_usable])
        try:
            with torch.no_grad():
                scorer(model.eval(), split.batch(idx, pad_value))
        except (ValueError, IndexError, RuntimeError, KeyError) as exc:
            raise UsageError(
                f"example set {examples.name} does not fit variant {variant.name}: "
                f"{first_line(exc)}"
            ) from None
    model.train()
