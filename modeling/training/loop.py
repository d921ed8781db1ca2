"""The training loop: a :class:`~.spec.RunSpec` in, checkpoints, metrics and an MLflow model out.

:func:`train` runs (or resumes) a run as named steps of :class:`_Run`: build the model and
optimizer (:func:`_build`, restoring a checkpoint's state), open the outputs and the MLflow run
(rank 0), then :meth:`_Run.step` until ``num_steps``, evaluating every ``eval_every`` steps
(:meth:`_Run.evaluate`) and checkpointing every ``save_every`` (:meth:`_Run.save`), and
:meth:`_Run.finish` (metrics.json, plots, registry).

Reproducibility: the batch of step s and the dropout noise of step s are functions of
``(seed, s)`` (and the DDP rank), and checkpoints hold optimizer and RNG state, so re-running the
same command after a crash (even ``kill -9``) continues from the last checkpoint on exactly the
trajectory an uninterrupted run takes. The batch contract is the one in ``docs/ARCHITECTURE.md``
(:class:`~.metrics.Scorer`): loss over ``mask[:, 1:]`` only, so padding never counts.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from modeling import checkpoint as ckpt
from modeling.data import BatchSchedule, ExampleSplit, micro_batches
from modeling.model import EventRNN
from modeling.training import outputs
from modeling.training.distributed import Dist, set_deterministic, step_seed
from modeling.training.metrics import N_STATS, Scorer, evaluate, summarize
from modeling.training.spec import RunSpec, resume_material


def train(spec: RunSpec, d: Dist) -> dict[str, Any]:
    """Run (or resume) the loop; rank 0 writes outputs and MLflow. Returns the final metrics."""
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    set_deterministic(d.device)
    try:
        run = _Run(spec, d, *_build(spec, d))
        run.open_outputs()
        with _status_on_failure(run.tracker):
            run.announce_resume()
            while run.state.step < spec.args.num_steps:
                run.step()
            final = run.finish()
        d.barrier()
        return final
    finally:  # in-process callers (tests, flows) get their global setting back
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])


@dataclass
class _State:
    """Where a run is, besides its weights and optimizer: what a training checkpoint holds."""

    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"loss": float("inf"), "step": -1})
    train_acc: torch.Tensor = field(
        default_factory=lambda: torch.zeros(N_STATS, dtype=torch.float64)
    )
    timing: dict[str, Any] = field(
        default_factory=lambda: {"seconds": 0.0, "cpu_seconds": 0.0, "events": 0.0, "steps": 0}
    )
    run_id: str = ""  # the MLflow run a resumed training reopens


def _build(spec: RunSpec, d: Dist) -> tuple[EventRNN, torch.optim.Optimizer, _State]:
    """Model (seeded init, ``--init-from`` weights), optimizer and state, restored from the
    resume checkpoint if there is one (its RNG state last, so the trajectory continues)."""
    args = spec.args
    torch.manual_seed(args.seed)
    model = EventRNN(spec.variant, spec.hparams, attention=args.attention)
    if spec.init_payload is not None:
        ckpt.load_state(model, spec.init_payload["model"], spec.init_source)
    model.to(d.device)
    opt = torch.optim.Adam(model.parameters(), lr=spec.hparams.learning_rate)
    state = _State()
    if spec.resume is not None:
        payload, path = spec.resume
        ckpt.load_state(model, payload["model"], str(path))
        opt.load_state_dict(payload["optimizer"])
        state = _State(
            step=int(payload["step"]),
            history=[dict(r) for r in payload["history"]],
            best=dict(payload["best"]),
            train_acc=torch.tensor(payload["train_acc"], dtype=torch.float64),
            timing={**state.timing, **payload["timing"]},
            run_id=str(payload.get("mlflow_run_id", "")),
        )
        torch.set_rng_state(payload["rng"]["torch"])
    state.train_acc = state.train_acc.to(d.device)
    return model, opt, state


class _Run:
    """One run's moving parts; each method is one named step of :func:`train`."""

    def __init__(
        self,
        spec: RunSpec,
        d: Dist,
        model: EventRNN,
        opt: torch.optim.Optimizer,
        state: _State,
    ) -> None:
        self.spec, self.d, self.model, self.opt, self.state = spec, d, model, opt, state
        self.args, self.hp = spec.args, spec.hparams
        self.net: torch.nn.Module = model
        if d.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.net = DDP(model, device_ids=[d.device.index] if d.device.type == "cuda" else None)
        self.cdir = ckpt.CheckpointDir(spec.output / "checkpoints", self.args.keep_last)
        self.save_every = self.args.save_every or self.args.eval_every
        self.store = spec.store if d.is_main else None
        self.tracker: Any = None
        self.scorer = Scorer.for_variant(spec.variant, self.args.precision)
        # fp32 evaluation, so runs compare whatever precision trained them
        self.eval_scorer = Scorer.for_variant(spec.variant)
        self.split: ExampleSplit = spec.examples.train
        self.schedule = BatchSchedule(self.split.lengths, self.hp.batch_size, self.args.seed)
        self.bar: Any = None

    # ------------------------------------------------------------------------- start

    def open_outputs(self) -> None:
        """Rank 0: the MLflow run (first: a training that cannot open the store leaves no files
        behind), the output folder, the resume store and config.json."""
        spec = self.spec
        if self.d.is_main:
            if not self.args.no_mlflow:
                from modeling import registry

                self.tracker = registry.Tracker.open(
                    spec.config, vars(self.args), self.state.run_id or None
                )
                self.state.run_id = self.tracker.run_id
            spec.output.mkdir(parents=True, exist_ok=True)
            self.cdir.clean_tmp()  # a killed writer's temporary files
            if self.store is not None:
                self.store.prepare(resume_material(spec.config, self.args))
                resumed_here = spec.resume is not None and spec.resume[1].parent == self.store.dir
                best = self.store.best_path
                if resumed_here and best.is_file() and not self.cdir.best_path.exists():
                    ckpt.link_or_copy(best, self.cdir.best_path)
            outputs.write_config(spec.output, spec.config)
        self.bar = outputs.progress(self.args, self.d, self.state.step)

    def announce_resume(self) -> None:
        spec = self.spec
        if spec.resume is not None and self.d.is_main:
            path = spec.resume[1]
            in_store = spec.store is not None and path.parent == spec.store.dir
            outputs.say(
                self.bar,
                f"resumed from {path if in_store else path.name} at step {self.state.step}",
            )

    # ------------------------------------------------------------------------- steps

    def step(self) -> None:
        """One optimizer step (micro-batched when the batch is over ``--max-batch-events``),
        then an evaluation and a checkpoint when their interval comes round."""
        args, d, st = self.args, self.d, self.state
        t0, c0 = time.perf_counter(), time.process_time()
        self.net.train()
        torch.manual_seed(step_seed(args.seed, st.step, d.rank))
        groups = micro_batches(
            self.schedule.batch(st.step), self.split.lengths, d.rank, d.world, args.max_batch_events
        )
        self.opt.zero_grad(set_to_none=True)
        if len(groups) == 1:
            batch = self.split.batch(groups[0], self.spec.pad_value).to(d.device)
            loss_sum, stats = self.scorer(self.net, batch)
            count = d.all_sum(stats[1:2].clone())
            loss = loss_sum / count.to(loss_sum.dtype) * d.world  # DDP averages: global mean
            loss.backward()
        else:
            stats, count = accumulate(
                self.net, self.model, self.scorer, self.split, groups, self.spec.pad_value, d
            )
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.hp.clip_norm)
        self.opt.step()
        st.train_acc += stats
        st.step += 1
        st.timing["seconds"] += time.perf_counter() - t0
        st.timing["cpu_seconds"] += time.process_time() - c0
        st.timing["events"] += float(count)
        st.timing["steps"] += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(
                loss=f"{float(stats[0] / max(stats[1], 1)):.3f}",
                ev_s=f"{st.timing['events'] / max(st.timing['seconds'], 1e-9):,.0f}",
            )
        last = st.step == args.num_steps
        if st.step % args.eval_every == 0 or last:
            self.evaluate()
        if st.step % self.save_every == 0 or last:
            self.save()

    def evaluate(self) -> None:
        """Train metrics since the last evaluation and eval-split metrics into the history;
        rank 0 keeps ``best.pt``, logs to MLflow and says one line."""
        st, d = self.state, self.d
        train_metrics = summarize(d.all_sum(st.train_acc.clone()))
        st.train_acc.zero_()
        eval_metrics = self._eval_loss(self.model, d)
        rate = st.timing["events"] / max(st.timing["seconds"], 1e-9)
        st.history.append(
            {
                "step": st.step,
                "split": "train",
                **train_metrics,
                "events_per_sec": rate,
                "seconds": st.timing["seconds"],
            }
        )
        st.history.append({"step": st.step, "split": "eval", **eval_metrics})
        improved = eval_metrics["loss"] < st.best["loss"]
        if improved:
            st.best = {"loss": eval_metrics["loss"], "step": st.step}
        if not d.is_main:
            return
        if improved:
            scores = {f"eval_{k}": v for k, v in eval_metrics.items()}
            path = self.cdir.save_best(
                ckpt.model_payload(self.model, self.spec.config, st.step, scores)
            )
            if self.store is not None:
                self.store.add_best(path)
        if self.tracker is not None:
            self.tracker.log_metrics(
                {
                    **{f"train_{k}": v for k, v in train_metrics.items()},
                    **{f"eval_{k}": v for k, v in eval_metrics.items()},
                    "events_per_sec": rate,
                },
                st.step,
            )
        outputs.say(
            self.bar,
            f"step {st.step}: train loss {train_metrics['loss']:.4f} acc "
            f"{train_metrics['accuracy']:.3f} | eval loss {eval_metrics['loss']:.4f}"
            f" ppl {eval_metrics['perplexity']:.2f} acc "
            f"{eval_metrics['accuracy']:.3f} | {rate:,.0f} events/s",
        )

    def _eval_loss(self, model: EventRNN, d: Dist) -> dict[str, float]:
        return evaluate(
            model,
            self.spec.examples.eval,
            self.eval_scorer,
            self.hp.batch_size,
            d,
            self.spec.pad_value,
            self.args.max_batch_events,
        )

    def save(self) -> None:
        """Rank 0: a training checkpoint (weights, optimizer, RNG, history), linked into the
        resume store."""
        if not self.d.is_main:
            return
        st = self.state
        payload = {
            "format": ckpt.FORMAT_VERSION,
            "kind": "train",
            "config": json.dumps(self.spec.config, sort_keys=True),
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "step": st.step,
            "rng": {"torch": torch.get_rng_state()},
            "history": st.history,
            "best": st.best,
            "train_acc": [float(v) for v in st.train_acc.cpu()],
            "timing": st.timing,
            "mlflow_run_id": st.run_id,
        }
        path = self.cdir.save(st.step, payload)
        if self.store is not None:
            self.store.add(path)

    # ------------------------------------------------------------------------- end

    def finish(self) -> dict[str, Any]:
        """Final metrics; rank 0 writes the outputs, registers the model and empties the
        resume store (nothing left to resume)."""
        spec, d, st = self.spec, self.d, self.state
        if self.bar is not None:
            self.bar.close()
        cpu_all = d.all_sum(
            torch.tensor([st.timing["cpu_seconds"]], dtype=torch.float64, device=d.device)
        )
        timing = {**st.timing, "cpu_seconds": float(cpu_all)}
        final = outputs.final_metrics(st.history, st.best, timing, st.step)
        if not d.is_main:
            return final
        outputs.write_outputs(spec.output, spec.config, st.history, final)
        outputs.copy_extras(spec.output, self.args.metrics, self.args.plots)
        if self.tracker is not None:
            final["registry"] = self._register(final)
        if self.store is not None:
            self.store.remove()
        return final

    def _register(self, final: dict[str, Any]) -> dict[str, Any]:
        """Log the model to MLflow; the registry's gate scores the champion on this eval split."""

        def evaluate_other(other: EventRNN) -> float:
            return self._eval_loss(other.to(self.d.device), Dist(device=self.d.device))["loss"]

        result = self.tracker.finish(self.spec.output, final, evaluate_other)
        # beside the weights: which registry version this run became, and the gate's verdict
        ckpt.atomic_write_bytes(
            self.spec.output / "registry.json", json.dumps(result, indent=2).encode()
        )
        outputs.say(
            None,
            f"registered {result['name']} version {result['version']}"
            f"{' (champion)' if result['champion'] else ''}",
        )
        return result


def accumulate(
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
    stats = torch.zeros(N_STATS, dtype=torch.float64, device=d.device)
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
