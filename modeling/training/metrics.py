"""Loss and Magenta's metrics (``events_rnn_graph``) of batches under one variant's encoding.

loss (the negative log-likelihood of each stored event: where an encoding's classes alias, as a
lookback's "repeat 1 bar ago" and the repeated pitch do, the sum over them, see
:func:`modeling.families.base.label_aliases`), perplexity = exp(loss), accuracy, event_accuracy
(labels other than the encoding's default event), no_event_accuracy (labels equal to it), and
loss per musical unit (``loss_per_step``). The
family module says what both mean (:class:`modeling.families.base.Family`: ``default_event_label``,
``STEP_UNIT`` / ``event_units``): per 16th-note step for melody/improv (= per event), per STEP_END
for polyphony, per second of music for performance; so this module names no family.

:func:`evaluate` is also the held-out scorer of ``modeling.evaluate`` and the registry's gate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from modeling.data import Batch, ExampleSplit, eval_batches, eval_micro_batches
from modeling.families import load_family
from modeling.families.base import VariantConfig, label_aliases
from modeling.model import EventRNN
from modeling.training.distributed import Dist

METRICS = ("loss", "perplexity", "accuracy", "event_accuracy", "no_event_accuracy", "loss_per_step")
PRECISIONS = ("fp32", "bf16", "auto")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> bf16 where the hardware computes it natively (CUDA with bf16, a CPU with
    AVX512-BF16 or AMX), else fp32: on such a CPU bf16 trained a [128,128] melody model 3.4x
    faster to the same loss (bench/train.py), on one without it autocast only emulates and
    slows. The resolved value is what a run's config records."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    cpu = torch.cpu
    native = (
        getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
        or getattr(cpu, "_is_amx_tile_supported", lambda: False)()
    )
    return "bf16" if device.type == "cpu" and native else "fp32"


# Sums kept per split: loss, labels, correct, event labels, correct events, no-event labels,
# correct no-events, musical units (steps / seconds).
N_STATS = 8


def default_event_label(cfg: VariantConfig) -> int:
    """The class Magenta's event/no-event accuracies split on (-1: none).

    The encoding may name it (``default_event_label``); otherwise the family does (the class that
    decodes to its default stored event after a history of note-offs).
    """
    explicit = getattr(cfg.encoding, "default_event_label", None)
    if isinstance(explicit, int):
        return explicit
    return int(load_family(cfg.family).default_event_label(cfg.encoding))


def unit_weights(cfg: VariantConfig) -> tuple[str, Callable[[torch.Tensor], torch.Tensor]]:
    """(unit name, events (B, T) -> musical units each event covers) for ``loss_per_step``."""
    family = load_family(cfg.family)
    return family.STEP_UNIT, family.event_units


def neutral_pad(cfg: VariantConfig) -> int:
    """The stored event that pads this variant's batches (the family's ``NEUTRAL_PAD``)."""
    return int(load_family(cfg.family).NEUTRAL_PAD)


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
        aliases = label_aliases(enc, events, cond)
        if aliases is None:
            losses = F.cross_entropy(sel.float(), target, reduction="none")
        else:  # the event's likelihood: every class that plays it
            same = aliases[:, 1:][m]
            losses = -sel.float().log_softmax(-1).masked_fill(~same, -math.inf).logsumexp(-1)
        loss_sum = losses.sum()
        with torch.no_grad():
            guess = sel.argmax(-1)
            if aliases is None:
                correct = guess == target
            else:
                correct = same.gather(-1, guess.unsqueeze(-1)).squeeze(-1)
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
    stats = torch.zeros(N_STATS, dtype=torch.float64, device=d.device)
    with torch.no_grad():
        for i, idx in enumerate(eval_batches(split.lengths, batch_size)):
            if i % d.world != d.rank:
                continue
            for rows in eval_micro_batches(idx, split.lengths, max_events):
                stats += scorer(model, split.batch(rows, pad_value).to(d.device))[1]
    d.all_sum(stats)
    model.train(was_training)
    return summarize(stats)
