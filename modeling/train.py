"""The one training loop for every variant: example set -> checkpoints, metrics, MLflow model.

    python -m modeling.train --variant NAME --examples DIR --output DIR
        [--hparams "batch_size=64,rnn_layer_sizes=[64,64]"] [--num-steps N] [--eval-every N]
        [--seed S] [--init-from models:/<name>@<alias> | PATH] [--keep-last K]
        [--device auto|cpu|cuda] [--attention parallel|sequential] [--precision fp32|bf16]
        [--params params.yaml] [--metrics FILE] [--plots FILE] [--resume-dir DIR] [--no-mlflow]
        [--quiet]
    torchrun --nproc_per_node 2 -m modeling.train ...        (DDP: gloo on CPU, nccl on GPU)

Inputs: a variant from :mod:`modeling.variants` (encoding + default hparams) and an example set
from ``pipelines/examples.py`` (:mod:`modeling.data`). The batch contract is the one in
``docs/ARCHITECTURE.md``: ``cond = enc.conditions(E, S)``, ``x = enc.inputs(E[:, :-1], cond)``,
``y = enc.labels(E, cond)[:, 1:]``, loss over ``mask[:, 1:]`` only, so padding never counts.

Outputs in ``--output``: ``checkpoints/`` (last K training checkpoints + ``best.pt``, see
:mod:`modeling.checkpoint`), ``config.json``, ``metrics.json`` (final eval/train metrics, a DVC
metric), ``loss_curve.csv`` (a DVC plot) and ``loss_curve.png``; and, unless ``--no-mlflow``, an
MLflow run with a registered model version (:mod:`modeling.registry`).

Reproducibility: the batch of step s and the dropout noise of step s are functions of
``(seed, s)`` (and the DDP rank), and checkpoints hold optimizer and RNG state, so re-running the
same command after a crash (even ``kill -9``) continues from the last checkpoint on exactly the
trajectory an uninterrupted run takes. ``dvc repro`` deletes a stage's outputs before it re-runs
it, so every training checkpoint (and ``best.pt``) is also hard-linked into a resume store beside
the output (``<output>/../.resume/<name>-<key>/``, ``--resume-dir`` elsewhere), keyed by a digest
of the run's config (:func:`resume_key`): a re-run with the same config resumes from there, one
with any other config starts afresh, and a finished run deletes its store.

Metrics (Magenta's ``events_rnn_graph``): loss, perplexity = exp(loss), accuracy, event_accuracy
(labels other than the encoding's default event), no_event_accuracy (labels equal to it), and
loss per musical unit (``loss_per_step``): per 16th-note step for melody/improv (= per event), per
STEP_END for polyphony, per second of music for performance. The default event is note-seq's
``default_event_label``: melody/improv "no event"; polyphony STEP_END (nothing more starts in this
step); performance the longest TIME_SHIFT (a second with nothing happening).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import json
import logging
import math
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# OpenMP (libgomp) workers spin only briefly before sleeping while they wait for work. On this
# 2-core machine, shared with other stages, the default 300k-spin wait collapses under load;
# basic_rnn steps/s at 2 threads measured here: quiet 1.01 (2k spins) / 0.88 (passive) / 1.00
# (active); with 3 CPU hogs 0.37 (2k) / 0.38 (passive) / 0.17 (default). Must precede the torch
# import; an explicit OMP_WAIT_POLICY or GOMP_SPINCOUNT in the environment wins.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "2000")

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from modeling import checkpoint as ckpt
from modeling import first_line, quiet_libraries
from modeling.data import (
    Batch,
    BatchSchedule,
    ExampleSet,
    ExampleSetError,
    ExampleSplit,
    eval_batches,
    eval_micro_batches,
    micro_batches,
)
from modeling.families.base import HParams, VariantConfig
from modeling.hparams import HParamsError, hparams_from_mapping, parse_hparams
from modeling.model import ATTENTION_MODES, EventRNN

log = logging.getLogger("motif.train")

METRICS = ("loss", "perplexity", "accuracy", "event_accuracy", "no_event_accuracy", "loss_per_step")
PRECISIONS = ("fp32", "bf16")
CSV_FIELDS = ("step", "split", *METRICS, "events_per_sec", "seconds")

# Sums kept per split: loss, labels, correct, event labels, correct events, no-event labels,
# correct no-events, musical units (steps / seconds).
_N_STATS = 8


class UsageError(Exception):
    """Bad input: the CLI prints the message as one line and exits 2, having written nothing."""


# ----------------------------------------------------------------------------- distributed


@dataclass
class Dist:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum ``t`` over ranks (in place); a no-op in one process."""
        if self.world > 1:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def pick_device(arg: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> this rank's GPU if there is one, else CPU; never hard-coded."""
    if arg == "cpu":
        return torch.device("cpu")
    if arg == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available (use auto or cpu)")
    if arg in ("cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def setup_distributed(device_arg: str) -> Dist:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1 (gloo on CPU, nccl on GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_arg, local_rank)
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    if device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, local_world)))
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world, local_rank, device)


def _step_seed(seed: int, step: int, rank: int) -> int:
    """Dropout seed of one step on one rank: resume-safe because it depends on nothing else."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0] >> 1)


def _set_deterministic(device: torch.device) -> None:
    torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


# ----------------------------------------------------------------------------- metrics

_DEFAULT_STORED_EVENT: dict[str, Callable[[], int]] = {
    "melody": lambda: 0,  # MelodyOneHotEncoding: 0 = no event
    "improv": lambda: 0,
    "polyphony": lambda: _family_attr("polyphony", "STEP_END"),
    "performance": lambda: (
        _family_attr("performance", "TIME_SHIFT")
        + _family_attr("performance", "MAX_SHIFT_STEPS")
        - 1
    ),
}


def _family_attr(family: str, name: str) -> Any:
    import importlib

    return getattr(importlib.import_module(f"modeling.families.{family}"), name)


def default_event_label(cfg: VariantConfig) -> int:
    """The class Magenta's event/no-event accuracies split on (-1: none).

    The encoding may name it (``default_event_label``); otherwise it is the class that decodes to
    the family's default stored event after a history of note-offs (so lookback "repeat" classes,
    which decode to the repeated event, never match).
    """
    enc = cfg.encoding
    explicit = getattr(enc, "default_event_label", None)
    if isinstance(explicit, int):
        return explicit
    getter = _DEFAULT_STORED_EVENT.get(cfg.family)
    if getter is None:
        return -1
    stored = getter()
    n = int(enc.num_classes)
    neutral = 1 if cfg.family in ("melody", "improv") else 0
    history = torch.full((n, 64), neutral, dtype=torch.long)
    decoded = enc.decode_label(torch.arange(n), history)
    hits = torch.nonzero(decoded == stored).flatten()
    return int(hits[0]) if len(hits) else -1


def unit_weights(cfg: VariantConfig) -> tuple[str, Callable[[torch.Tensor], torch.Tensor]]:
    """(unit name, events (B, T) -> musical units each event covers) for ``loss_per_step``."""
    if cfg.family == "polyphony":
        step_end = _family_attr("polyphony", "STEP_END")
        return "STEP_END step", lambda e: (e == step_end).to(torch.float64)
    if cfg.family == "performance":
        seconds = _family_attr("performance", "event_seconds")
        return "second", lambda e: seconds(e).to(torch.float64)
    return "16th-note step", lambda e: torch.ones_like(e, dtype=torch.float64)


@dataclass
class Scorer:
    """Loss and metric sums of batches under one variant's encoding."""

    cfg: VariantConfig
    no_event: int
    units: Callable[[torch.Tensor], torch.Tensor]
    precision: str = "fp32"  # "bf16": forward under bfloat16 autocast (weights stay fp32)

    @classmethod
    def for_variant(cls, cfg: VariantConfig, precision: str = "fp32") -> Scorer:
        return cls(cfg, default_event_label(cfg), unit_weights(cfg)[1], precision)

    def __call__(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum of label losses with grad, float64 stat sums (8,)) of one batch."""
        enc = self.cfg.encoding
        events = batch.events
        cond = enc.conditions(events, batch.stored)
        x = enc.inputs(events[:, :-1], cond)
        y = enc.labels(events, cond)[:, 1:]
        m = batch.mask[:, 1:]
        with torch.autocast(
            events.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
        ):
            logits = model(x)
        sel, target = logits[m], y[m]
        losses = F.cross_entropy(sel.float(), target, reduction="none")
        loss_sum = losses.sum()
        with torch.no_grad():
            correct = sel.argmax(-1) == target
            is_ne = target == self.no_event
            units = self.units(events)[:, 1:][m].sum()
            n = torch.tensor(target.numel(), device=target.device)
            stats = torch.stack(
                [
                    v.to(torch.float64)
                    for v in (
                        loss_sum.detach(),
                        n,
                        correct.sum(),
                        (~is_ne).sum(),
                        (correct & ~is_ne).sum(),
                        is_ne.sum(),
                        (correct & is_ne).sum(),
                        units,
                    )
                ]
            )
        return loss_sum, stats


def summarize(stats: torch.Tensor) -> dict[str, float]:
    """Metric values from summed stats (NaN where a denominator is 0)."""
    s = [float(v) for v in stats.cpu()]
    loss_sum, n, correct, ev, ev_ok, ne, ne_ok, units = s

    def div(a: float, b: float) -> float:
        return a / b if b > 0 else float("nan")

    loss = div(loss_sum, n)
    return {
        "loss": loss,
        "perplexity": math.exp(loss) if loss < 700 else float("inf"),
        "accuracy": div(correct, n),
        "event_accuracy": div(ev_ok, ev),
        "no_event_accuracy": div(ne_ok, ne),
        "loss_per_step": div(loss_sum, units),
    }


def _accumulate(
    net: torch.nn.Module,
    model: EventRNN,
    scorer: Scorer,
    split: ExampleSplit,
    groups: list[np.ndarray],
    pad_value: int,
    d: Dist,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward over micro-batches, then scale the summed gradient to the batch's global mean
    (what one backward of the whole batch computes); DDP synchronises on the last one only."""
    stats = torch.zeros(_N_STATS, dtype=torch.float64, device=d.device)
    for j, rows in enumerate(groups):
        last = j == len(groups) - 1
        sync = contextlib.nullcontext() if last or not hasattr(net, "no_sync") else net.no_sync()
        with sync:
            loss_sum, part = scorer(net, split.batch(rows, pad_value).to(d.device))
            loss_sum.backward()
        stats += part
    count = d.all_sum(stats[1:2].clone())
    scale = float(d.world) / float(count.clamp(min=1))
    for p in model.parameters():
        if p.grad is not None:
            p.grad.mul_(scale)
    return stats, count


def evaluate(
    model: EventRNN,
    split: ExampleSplit,
    scorer: Scorer,
    batch_size: int,
    d: Dist,
    pad_value: int = 0,
    max_events: int = 0,
) -> dict[str, float]:
    """Metrics over the whole split (each rank scores every world-th batch, then sums);
    ``max_events`` cuts long batches so memory stays bounded (as in training)."""
    was_training = model.training
    model.eval()
    stats = torch.zeros(_N_STATS, dtype=torch.float64, device=d.device)
    with torch.no_grad():
        for i, idx in enumerate(eval_batches(split.lengths, batch_size)):
            if i % d.world != d.rank:
                continue
            for rows in eval_micro_batches(idx, split.lengths, max_events):
                stats += scorer(model, split.batch(rows, pad_value).to(d.device))[1]
    d.all_sum(stats)
    model.train(was_training)
    return summarize(stats)


# ----------------------------------------------------------------------------- run spec


@dataclass
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
    resume: tuple[dict[str, Any], Path] | None
    init_payload: dict[str, Any] | None
    init_source: str
    store: ckpt.ResumeStore | None = None  # resumable state that survives --output's deletion


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``train: ...``) and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"train: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m modeling.train",
        description="Train one Magenta-style variant on an example set (resumes automatically).",
    )
    p.add_argument("--variant", required=True, help="variant name (see modeling.variants)")
    p.add_argument("--examples", required=True, help="example set directory (pipelines.examples)")
    p.add_argument("--output", required=True, help="run directory (checkpoints, metrics, plots)")
    p.add_argument(
        "--hparams",
        default="",
        help='Magenta-style overrides, e.g. "batch_size=64,rnn_layer_sizes=[64,64]"',
    )
    p.add_argument(
        "--params",
        default=None,
        help="params.yaml: seed, the train section and variants.NAME / finetunes.NAME "
        "(hparams, num_steps, ...) as defaults; explicit flags win",
    )
    p.add_argument("--num-steps", type=int, default=None, help="total training steps (1000)")
    p.add_argument("--eval-every", type=int, default=None, help="steps between evaluations (100)")
    p.add_argument(
        "--save-every",
        type=int,
        default=None,
        help="steps between checkpoints (default: --eval-every)",
    )
    p.add_argument("--seed", type=int, default=None, help="data order / dropout / init seed (0)")
    p.add_argument(
        "--init-from",
        default=None,
        help="fine-tune from models:/<name>@<alias>, models:/<name>/<version>, a "
        "checkpoint file or a training output directory",
    )
    p.add_argument("--keep-last", type=int, default=None, help="training checkpoints to keep (2)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument(
        "--attention",
        choices=ATTENTION_MODES,
        default=None,
        help="attention implementation when attn_length > 0 (sequential = Magenta's)",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="training forward precision; bf16 = bfloat16 autocast (fp32 weights, "
        "fp32 evaluation), ~1.7x faster on CPUs with AVX512-BF16",
    )
    p.add_argument(
        "--max-batch-events",
        type=int,
        default=None,
        help="padded events per micro-batch (65536); a batch over it is split and its "
        "gradients accumulated, so memory stays bounded on long sequences; 0 = never split",
    )
    p.add_argument("--metrics", default=None, help="also write metrics.json here (DVC metric)")
    p.add_argument("--plots", default=None, help="also write loss_curve.csv here (DVC plot)")
    p.add_argument(
        "--resume-dir",
        default=None,
        help="where resumable state outlives --output (dvc repro deletes outputs before a "
        "re-run); default: .resume beside --output",
    )
    p.add_argument("--no-mlflow", action="store_true", help="skip MLflow tracking/registry")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


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
_SETTINGS = (
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


def apply_params(args: argparse.Namespace, variant: str) -> dict[str, Any]:
    """Fill unset flags from ``--params`` (entry > train section > top-level seed > built-in
    defaults); return the entry's hparams mapping (applied under ``--hparams``)."""
    hparams: dict[str, Any] = {}
    values: dict[str, Any] = {}
    if args.params:
        from pipelines.params import ParamsError, load_params

        try:
            params = load_params(args.params)
        except ParamsError as exc:
            raise UsageError(str(exc)) from None
        if "seed" in params:
            values["seed"] = params["seed"]
        section = params.get("train") or {}
        bad = sorted(set(section) - set(_SETTINGS))
        if bad:
            raise UsageError(
                f"{args.params}: train: unknown key(s) {', '.join(bad)}; "
                f"valid: {', '.join(_SETTINGS)}"
            )
        values.update(section)
        entries = [
            (group, (params.get(group) or {})[variant])
            for group in ("variants", "finetunes")
            if variant in (params.get(group) or {})
        ]
        if len(entries) > 1:
            raise UsageError(f"{args.params}: {variant} is under both variants and finetunes")
        if entries:
            group, entry = entries[0]
            valid = {*_SETTINGS, "seed", "hparams", *_PATH_KEYS}
            bad = sorted(set(entry or {}) - valid)
            if bad:
                raise UsageError(
                    f"{args.params}: {group}.{variant}: unknown key(s) {', '.join(bad)}; "
                    f"valid: {', '.join(sorted(valid))}"
                )
            entry = dict(entry or {})
            hparams = dict(entry.pop("hparams", None) or {})
            values.update({k: v for k, v in entry.items() if k not in _PATH_KEYS})
    for key, default in DEFAULTS.items():
        if getattr(args, key, None) is None:
            setattr(args, key, values.get(key, default))
    for key in ("num_steps", "eval_every", "keep_last", "seed", "save_every", "max_batch_events"):
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


def _check_args(args: argparse.Namespace) -> None:
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


def check_init_compatible(src: dict[str, Any], model: EventRNN, source: str) -> None:
    """Refuse weights from another variant, event space or shape (one line, exit 2).

    A different variant *name* is accepted only when its encoding is the same (``edm_rnn`` is
    fine-tuned from ``attention_rnn``: same key-melody encoding and event space).
    """
    mine = model.describe()
    if src.get("event_space") != mine["event_space"]:
        raise UsageError(
            f"--init-from {source}: event space {src.get('event_space')} differs "
            f"from {mine['variant']}'s {mine['event_space']}"
        )
    if src.get("variant") != mine["variant"]:
        same = all(
            src.get(k) == mine[k] for k in ("family", "encoding", "input_size", "num_classes")
        )
        if not same:
            raise UsageError(
                f"--init-from {source}: a {src.get('variant')} checkpoint (encoding "
                f"{src.get('encoding')}) cannot start {mine['variant']} (encoding "
                f"{mine['encoding']})"
            )


def _identity(config: dict[str, Any]) -> dict[str, Any]:
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


def prepare(args: argparse.Namespace, d: Dist) -> RunSpec:
    """Validate every input; raise :class:`UsageError` before anything is written."""
    from modeling.variants import UnknownVariantError, get_variant

    params_hparams = apply_params(args, args.variant)
    _check_args(args)
    try:
        base = get_variant(args.variant)
    except UnknownVariantError as exc:
        raise UsageError(str(exc)) from None
    try:
        hp = hparams_from_mapping(params_hparams, base.hparams)
        hp = parse_hparams(args.hparams, hp)
    except HParamsError as exc:
        raise UsageError(str(exc)) from None
    variant = VariantConfig(base.name, base.family, base.encoding, hp, base.description)
    try:
        examples = ExampleSet.load(args.examples)
        examples.check_compatible(variant.family, variant.encoding.event_space, variant.name)
    except ExampleSetError as exc:
        raise UsageError(str(exc)) from None
    usable = int((examples.train.lengths >= 2).sum())
    if min(usable, hp.batch_size) < d.world:
        raise UsageError(
            f"batch of {min(usable, hp.batch_size)} examples cannot be split over "
            f"{d.world} processes"
        )
    pad_value = int(getattr(_family_module(variant.family), "NEUTRAL_PAD", 0))
    model = EventRNN(variant, hp, attention=args.attention)
    _probe(model, variant, examples, pad_value)

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
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output} exists and is not a directory")
    existing = next(p for p in (output, *output.absolute().parents) if p.exists())
    if not os.access(existing, os.W_OK):
        raise UsageError(f"--output {output}: {existing} is not writable")
    resume = None
    cdir = ckpt.CheckpointDir(output / "checkpoints", args.keep_last)
    if cdir.steps():
        resume = cdir.latest()
        if resume is None:
            raise UsageError(
                f"{cdir.root} holds no readable training checkpoint; delete it or "
                "use another --output"
            )
        old = ckpt.config_of(resume[0])
        if old.get("variant") != variant.name:
            raise UsageError(
                f"{output} holds a checkpoint of variant {old.get('variant')}, not "
                f"{variant.name}; use another --output"
            )
        mismatch = {
            k: (v, _identity(config)[k])
            for k, v in _identity(old).items()
            if v != _identity(config)[k]
        }
        if mismatch:
            what = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in mismatch.items())
            raise UsageError(
                f"{output} holds a run with other settings ({what}); use another "
                "--output or delete it"
            )
        for key in ("init_from", "init_digest"):  # the resumed run started from those weights
            if old.get(key):
                config[key] = old[key]
    init_payload, init_source = None, ""
    if args.init_from and resume is None:
        init_payload, init_source = resolve_init_source(args.init_from)
        check_init_compatible(ckpt.config_of(init_payload), model, args.init_from)
        try:
            ckpt.load_state(model, init_payload["model"], f"--init-from {args.init_from}")
        except ckpt.CheckpointError as exc:
            raise UsageError(str(exc)) from None
        config["init_from"] = args.init_from
        config["init_digest"] = _file_digest(init_source)
    # dvc repro deleted --output (or it never existed): the resume store may hold this run
    store = ckpt.ResumeStore(
        Path(args.resume_dir) if args.resume_dir else output.absolute().parent / ".resume",
        output.absolute().name,
        resume_key(config, args),
        args.keep_last,
    )
    if resume is None:
        found = store.latest()
        if found is not None and _identity(ckpt.config_of(found[0])) == _identity(config):
            resume, init_payload, init_source = found, None, ""
    return RunSpec(
        args,
        variant,
        hp,
        config["attention"],
        examples,
        version,
        version_source,
        output,
        config,
        pad_value,
        resume,
        init_payload,
        init_source,
        store,
    )


def _family_module(family: str) -> Any:
    import importlib

    try:
        return importlib.import_module(f"modeling.families.{family}")
    except ImportError:
        return None


def _probe(model: EventRNN, variant: VariantConfig, examples: ExampleSet, pad_value: int) -> None:
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
            first = first_line(exc)
            raise UsageError(
                f"example set {examples.name} does not fit variant {variant.name}: {first}"
            ) from None
    model.train()


# ----------------------------------------------------------------------------- outputs


def write_outputs(
    output: Path, config: dict[str, Any], history: list[dict[str, Any]], final: dict[str, Any]
) -> None:
    """config.json, metrics.json, loss_curve.csv and loss_curve.png (all atomic)."""
    ckpt.atomic_write_text(output / "config.json", json.dumps(config, indent=2, sort_keys=True))
    ckpt.atomic_write_text(output / "metrics.json", json.dumps(_json_safe(final), indent=2))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow({k: row.get(k, "") for k in CSV_FIELDS})
    ckpt.atomic_write_text(output / "loss_curve.csv", buf.getvalue())
    ckpt.atomic_write_bytes(output / "loss_curve.png", _plot(history, config))


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


def _plot(history: list[dict[str, Any]], config: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for split, style in (("train", "-"), ("eval", "o-")):
        rows = [r for r in history if r["split"] == split]
        steps = [r["step"] for r in rows]
        ax1.plot(steps, [r["loss"] for r in rows], style, label=split, markersize=3)
        ax2.plot(steps, [r["accuracy"] for r in rows], style, label=split, markersize=3)
    ax1.set(xlabel="step", ylabel="loss (nats/event)", title=f"{config['variant']}: loss")
    ax2.set(xlabel="step", ylabel="accuracy", title="accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ----------------------------------------------------------------------------- training


def train(spec: RunSpec, d: Dist) -> dict[str, Any]:
    """Run (or resume) the loop; rank 0 writes outputs and MLflow. Returns the final metrics."""
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    _set_deterministic(d.device)
    try:
        return _train(spec, d)
    finally:  # in-process callers (tests, flows) get their global setting back
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])


def _train(spec: RunSpec, d: Dist) -> dict[str, Any]:
    args, hp = spec.args, spec.hparams
    torch.manual_seed(args.seed)
    model = EventRNN(spec.variant, hp, attention=args.attention)
    if spec.init_payload is not None:
        ckpt.load_state(model, spec.init_payload["model"], spec.init_source)
    model.to(d.device)
    opt = torch.optim.Adam(model.parameters(), lr=hp.learning_rate)
    cdir = ckpt.CheckpointDir(spec.output / "checkpoints", args.keep_last)
    save_every = args.save_every or args.eval_every

    step, history, best = 0, [], {"loss": float("inf"), "step": -1}
    train_acc = torch.zeros(_N_STATS, dtype=torch.float64)
    timing = {"seconds": 0.0, "cpu_seconds": 0.0, "events": 0.0, "steps": 0}
    run_id = ""
    if spec.resume is not None:
        payload, path = spec.resume
        ckpt.load_state(model, payload["model"], str(path))
        opt.load_state_dict(payload["optimizer"])
        step = int(payload["step"])
        history = [dict(r) for r in payload["history"]]
        best = dict(payload["best"])
        train_acc = torch.tensor(payload["train_acc"], dtype=torch.float64)
        timing.update(payload["timing"])
        run_id = str(payload.get("mlflow_run_id", ""))
        torch.set_rng_state(payload["rng"]["torch"])
    train_acc = train_acc.to(d.device)

    net: torch.nn.Module = model
    if d.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model, device_ids=[d.device.index] if d.device.type == "cuda" else None)

    tracker = None
    store = spec.store if d.is_main else None
    if d.is_main:
        # the store first: a training that cannot open it leaves no files behind
        if not args.no_mlflow:
            from modeling import registry

            tracker = registry.Tracker.open(spec.config, vars(args), run_id or None)
            run_id = tracker.run_id
        spec.output.mkdir(parents=True, exist_ok=True)
        cdir.clean_tmp()  # a killed writer's temporary files
        if store is not None:
            store.prepare(resume_material(spec.config, args))
            resumed_here = spec.resume is not None and spec.resume[1].parent == store.dir
            if resumed_here and store.best_path.is_file() and not cdir.best_path.exists():
                ckpt.link_or_copy(store.best_path, cdir.best_path)
        ckpt.atomic_write_text(
            spec.output / "config.json", json.dumps(spec.config, indent=2, sort_keys=True)
        )

    with _status_on_failure(tracker):
        scorer = Scorer.for_variant(spec.variant, args.precision)
        # fp32 evaluation, so runs compare whatever precision trained them
        eval_scorer = Scorer.for_variant(spec.variant)
        split = spec.examples.train
        schedule = BatchSchedule(split.lengths, hp.batch_size, args.seed)
        bar = _progress(args, d, step)
        if spec.resume is not None and d.is_main:
            path = spec.resume[1]
            where = path if spec.store is not None and path.parent == spec.store.dir else path.name
            _say(bar, f"resumed from {where} at step {step}")

        def save(step_now: int) -> None:
            if not d.is_main:
                return
            payload = {
                "format": ckpt.FORMAT_VERSION,
                "kind": "train",
                "config": json.dumps(spec.config, sort_keys=True),
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "step": step_now,
                "rng": {"torch": torch.get_rng_state()},
                "history": history,
                "best": best,
                "train_acc": [float(v) for v in train_acc.cpu()],
                "timing": timing,
                "mlflow_run_id": run_id,
            }
            path = cdir.save(step_now, payload)
            if store is not None:
                store.add(path)

        while step < args.num_steps:
            t0, c0 = time.perf_counter(), time.process_time()
            net.train()
            torch.manual_seed(_step_seed(args.seed, step, d.rank))
            groups = micro_batches(
                schedule.batch(step), split.lengths, d.rank, d.world, args.max_batch_events
            )
            opt.zero_grad(set_to_none=True)
            if len(groups) == 1:
                batch = split.batch(groups[0], spec.pad_value).to(d.device)
                loss_sum, stats = scorer(net, batch)
                count = d.all_sum(stats[1:2].clone())
                loss = loss_sum / count.to(loss_sum.dtype) * d.world  # DDP averages: global mean
                loss.backward()
            else:
                stats, count = _accumulate(net, model, scorer, split, groups, spec.pad_value, d)
            torch.nn.utils.clip_grad_norm_(model.parameters(), hp.clip_norm)
            opt.step()
            train_acc += stats
            step += 1
            timing["seconds"] += time.perf_counter() - t0
            timing["cpu_seconds"] += time.process_time() - c0
            timing["events"] += float(count)
            timing["steps"] += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(
                    loss=f"{float(stats[0] / max(stats[1], 1)):.3f}",
                    ev_s=f"{timing['events'] / max(timing['seconds'], 1e-9):,.0f}",
                )
            if step % args.eval_every == 0 or step == args.num_steps:
                train_metrics = summarize(d.all_sum(train_acc.clone()))
                train_acc.zero_()
                eval_metrics = evaluate(
                    model,
                    spec.examples.eval,
                    eval_scorer,
                    hp.batch_size,
                    d,
                    spec.pad_value,
                    args.max_batch_events,
                )
                rate = timing["events"] / max(timing["seconds"], 1e-9)
                history.append(
                    {
                        "step": step,
                        "split": "train",
                        **train_metrics,
                        "events_per_sec": rate,
                        "seconds": timing["seconds"],
                    }
                )
                history.append({"step": step, "split": "eval", **eval_metrics})
                improved = eval_metrics["loss"] < best["loss"]
                if improved:
                    best = {"loss": eval_metrics["loss"], "step": step}
                if d.is_main:
                    if improved:
                        best_path = cdir.save_best(
                            ckpt.model_payload(
                                model,
                                spec.config,
                                step,
                                {f"eval_{k}": v for k, v in eval_metrics.items()},
                            )
                        )
                        if store is not None:
                            store.add_best(best_path)
                    if tracker is not None:
                        tracker.log_metrics(
                            {
                                **{f"train_{k}": v for k, v in train_metrics.items()},
                                **{f"eval_{k}": v for k, v in eval_metrics.items()},
                                "events_per_sec": rate,
                            },
                            step,
                        )
                    _say(
                        bar,
                        f"step {step}: train loss {train_metrics['loss']:.4f} acc "
                        f"{train_metrics['accuracy']:.3f} | eval loss {eval_metrics['loss']:.4f}"
                        f" ppl {eval_metrics['perplexity']:.2f} acc "
                        f"{eval_metrics['accuracy']:.3f} | {rate:,.0f} events/s",
                    )
            if step % save_every == 0 or step == args.num_steps:
                save(step)
        if bar is not None:
            bar.close()

        cpu_all = d.all_sum(
            torch.tensor([timing["cpu_seconds"]], dtype=torch.float64, device=d.device)
        )
        final = _final_metrics(history, best, {**timing, "cpu_seconds": float(cpu_all)}, step)
        if d.is_main:
            write_outputs(spec.output, spec.config, history, final)
            for extra, name in ((args.metrics, "metrics.json"), (args.plots, "loss_curve.csv")):
                if extra:  # DVC metrics / plots files outside the cached output directory
                    Path(extra).parent.mkdir(parents=True, exist_ok=True)
                    ckpt.atomic_write_bytes(extra, (spec.output / name).read_bytes())
            if tracker is not None:

                def evaluate_other(other: EventRNN) -> float:
                    single = Dist(device=d.device)
                    return evaluate(
                        other.to(d.device),
                        spec.examples.eval,
                        Scorer.for_variant(spec.variant),
                        hp.batch_size,
                        single,
                        spec.pad_value,
                        args.max_batch_events,
                    )["loss"]

                result = tracker.finish(spec.output, final, evaluate_other)
                final["registry"] = result
                # beside the weights: which registry version this run became, and the gate's verdict
                ckpt.atomic_write_bytes(
                    spec.output / "registry.json", json.dumps(result, indent=2).encode()
                )
                _say(
                    None,
                    f"registered {result['name']} version {result['version']}"
                    f"{' (champion)' if result['champion'] else ''}",
                )
            if store is not None:
                store.remove()  # finished: nothing left to resume
    d.barrier()
    return final


@contextlib.contextmanager
def _status_on_failure(tracker: Any) -> Iterator[None]:
    """Mark the MLflow run FAILED (KILLED on Ctrl-C) if the loop raises; resuming reopens it."""
    try:
        yield
    except BaseException as exc:
        if tracker is not None:
            status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
            with contextlib.suppress(Exception):  # never mask the original error
                tracker.client.set_terminated(tracker.run_id, status)
        raise


def _final_metrics(
    history: list[dict[str, Any]], best: dict[str, Any], timing: dict[str, Any], step: int
) -> dict[str, Any]:
    last = {r["split"]: r for r in history if r["step"] == step}
    strip = ("step", "split", "seconds", "events_per_sec")
    return {
        "step": step,
        "eval": {k: v for k, v in last.get("eval", {}).items() if k not in strip},
        "train": {k: v for k, v in last.get("train", {}).items() if k not in strip},
        "best": {"eval_loss": best["loss"], "step": best["step"]},
        "throughput": {
            "events_per_sec": timing["events"] / max(timing["seconds"], 1e-9),
            "steps_per_sec": timing["steps"] / max(timing["seconds"], 1e-9),
            "train_seconds": timing["seconds"],
            # CPU time of every thread of every rank: a figure other processes on a shared
            # machine do not distort (a preempted thread burns none)
            "events_per_cpu_sec": timing["events"] / max(timing["cpu_seconds"], 1e-9),
        },
        "peak_rss_mb": _peak_rss_mb(),
    }


def _progress(args: argparse.Namespace, d: Dist, start: int) -> Any:
    if not d.is_main or args.quiet:
        return None
    from tqdm import tqdm

    return tqdm(
        total=args.num_steps,
        initial=start,
        desc=args.variant,
        unit="step",
        mininterval=1.0,
        dynamic_ncols=True,
        file=sys.stderr,
    )


def _say(bar: Any, message: str) -> None:
    if bar is not None:
        bar.write(message, file=sys.stderr)
    else:
        print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    quiet_libraries()
    args = build_parser().parse_args(argv)
    try:
        d = setup_distributed(args.device)
    except UsageError as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 2
    try:
        try:
            spec = prepare(args, d)
        except UsageError as exc:
            if d.is_main:
                print(f"train: {exc}", file=sys.stderr)
            return 2
        try:
            final = train(spec, d)
        except KeyboardInterrupt:
            if d.is_main:
                print(
                    "train: interrupted; re-run the same command to resume from the last "
                    "checkpoint",
                    file=sys.stderr,
                )
            return 130
        if d.is_main:
            print(json.dumps(_json_safe({k: final[k] for k in ("step", "eval", "best")})))
        return 0
    finally:
        if d.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
