"""The one generation loop for every family: :class:`Engine`, :func:`build_plan`, :func:`generate`.

:func:`build_plan` validates the request against the model's family
(:meth:`~modeling.generation.request.Request.validate`) and asks the family module, loaded with
:func:`modeling.families.load_family`, for its :class:`~modeling.generation.plan.Plan`
(``generation_plan``). :class:`Engine` then runs the plan:

* every output (and every beam branch) is a row of one batch; the primer is fed once with
  :meth:`EventRNN.forward` and its state copied to all rows, then :meth:`EventRNN.step` advances
  every row one event at a time; the LSTM state and the attention window are carried, never
  recomputed. Input features of encodings that read only the newest events (the family's
  ``feature_window``: one event, or the performance's held-note window) are computed from those
  alone; the key-melody / lookback encodings, whose features are cumulative scans over the whole
  melody, are re-scanned over the (short) history.
* sampling is Gumbel-max on ``log_softmax(logits / temperature)`` with noise drawn per (seed,
  step) from a fresh generator, so row i always sees the same noise: a seed reproduces the bytes.
* beam search is Magenta's (``magenta/common/beam_search.py``): ``beam_size`` copies, each branched
  ``branch_factor`` times and extended by sampling ``steps_per_iteration`` steps, pruned to the
  ``beam_size`` highest summed log-likelihoods, the best one returned; all outputs' beams run in
  the same batch.
* forced events (polyphony's ``inject_primer_during_generation``) replace the sample of a row
  and do not count towards its log-likelihood, as in Magenta's ``modify_events_callback``.
* ``--key`` / ``--scale`` mask the softmax: notes outside the scale get probability 0 (decoded
  lookback / repeat classes are checked against what they would play).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from note_seq.protobuf import music_pb2

from modeling.families import load_family

from .plan import Plan, Sample
from .request import Request


def _feature_window(encoding: Any, family: str) -> int | None:
    """How many trailing events an encoding's last input row depends on (None: all of them),
    as the family says (``feature_window``); None, always exact, when it does not know."""
    return load_family(family).feature_window(encoding)


def _noise_seed(seed: int, step: int) -> int:
    digest = hashlib.blake2b(f"motif-generate:{seed}:{step}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def _gumbel(seed: int, step: int, rows: int, classes: int) -> torch.Tensor:
    """Gumbel(0, 1) noise (rows, classes) for one step; row r's values do not depend on ``rows``."""
    g = torch.Generator().manual_seed(_noise_seed(seed, step))
    u = torch.rand((rows, classes), generator=g, dtype=torch.float64)
    return -torch.log(-torch.log(u.clamp(1e-300, 1.0 - 1e-16)))


def _by_length(lengths: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
    """Rows grouped by their current length: [(L, row indices)], usually a single group."""
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo == hi:
        return [(lo, torch.arange(len(lengths)))]
    uniq = torch.unique(lengths)
    return [(int(L), torch.nonzero(lengths == L).squeeze(1)) for L in uniq]


class Engine:
    """Batched stepping of one model over many rows (outputs x beam branches)."""

    def __init__(self, model: Any, plan: Plan) -> None:
        self.model = model
        self.plan = plan
        self.encoding = model.encoding
        self.window = _feature_window(self.encoding, model.family)
        self.num_classes = int(model.num_classes)

    # ------------------------------------------------------------------ features

    def cond_at(self, pos: torch.Tensor, ucum: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Conditioning at positions ``pos`` (R, P) of each row: a table lookup by position, or
        by the units (clock) elapsed before the position (``ucum``: (R, >= P) cumulative units)."""
        plan = self.plan
        if not plan.cond:
            return {}
        if plan.cond_by == "units":
            assert ucum is not None
            index = ucum.gather(1, pos)
        else:
            index = pos
        out = {}
        for k, table in plan.cond.items():
            out[k] = table[0][index.clamp(max=table.shape[1] - 1)]
        return out

    def features(
        self, buf: torch.Tensor, lengths: torch.Tensor, ucum: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Input row (R, input_size) that predicts the event after each row's history."""
        rows, w = buf.shape[0], self.window
        if w is not None and int(lengths.min()) >= w:
            pos = lengths.unsqueeze(1) - w + torch.arange(w + 1)  # len-w .. len
            events = buf.gather(1, pos[:, :w])
            return self._last_row(events, self.cond_at(pos, ucum))
        # Whole histories (or the newest ``w`` events where longer), grouped by length.
        out = torch.empty(rows, self.model.input_size)
        for L, idx in _by_length(lengths):
            start = 0 if w is None else max(0, L - w)
            pos = torch.arange(start, L + 1).expand(len(idx), L + 1 - start)
            cond = self.cond_at(pos, None if ucum is None else ucum[idx])
            out[idx] = self._last_row(buf[idx, start:L], cond).float()
        return out

    def _last_row(self, events: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        """The input row after the newest event: the encoding's ``last_input`` where it has one
        (it skips the other rows), else the last row of ``inputs``."""
        last = getattr(self.encoding, "last_input", None)
        return last(events, cond) if last is not None else self.encoding.inputs(events, cond)[:, -1]

    def decode(
        self, labels: torch.Tensor, buf: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """Stored events that class ``labels`` (R,) mean after each row's history."""
        out = torch.empty_like(labels)
        for L, idx in _by_length(lengths):
            out[idx] = self.encoding.decode_label(labels[idx], buf[idx, :L]).long()
        return out

    def _mask(self, buf: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor | None:
        """Allowed classes (R, C) or None: the static mask plus history-decoded classes."""
        plan = self.plan
        if plan.class_mask is None:
            return None
        rows = buf.shape[0]
        mask = plan.class_mask.unsqueeze(0).expand(rows, -1)
        if plan.dynamic_classes and plan.event_allowed is not None:
            # Decode every history-dependent class of every row in one batched call.
            classes = torch.tensor(plan.dynamic_classes, dtype=torch.long)
            k = len(classes)
            ev = self.decode(
                classes.repeat(rows), buf.repeat_interleave(k, dim=0), lengths.repeat_interleave(k)
            )
            mask = mask.clone()
            mask[:, classes] = plan.event_allowed(ev).view(rows, k)
        return mask

    # ------------------------------------------------------------------ loop

    def run(
        self,
        num_outputs: int,
        *,
        temperature: float = 1.0,
        seed: int = 0,
        beam_size: int = 1,
        branch_factor: int = 1,
        steps_per_iteration: int = 1,
        threads: int | None = 1,
        on_step: Callable[[int, int], None] | None = None,
        trace: list[dict[str, torch.Tensor]] | None = None,
    ) -> list[Sample]:
        """Generate ``num_outputs`` rows (each the best of its own beam when beam searching).

        ``threads``: torch intra-op threads while stepping (restored afterwards). One step is a
        handful of small matrix products, where extra threads cost more in synchronisation than
        they save (measured here: 10 x 128 attention_rnn steps take 8x longer on 2 busy cores
        with 2 threads than with 1); None keeps the process setting. ``trace`` (tests, analysis)
        receives per step the rows' log-probabilities, chosen classes and forced/active flags.
        """
        before = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            with torch.inference_mode():
                return self._run(
                    num_outputs,
                    temperature,
                    seed,
                    beam_size,
                    branch_factor,
                    steps_per_iteration,
                    on_step,
                    trace,
                )
        finally:
            torch.set_num_threads(before)

    def _run(
        self,
        num_outputs: int,
        temperature: float,
        seed: int,
        beam_size: int,
        branch_factor: int,
        steps_per_iteration: int,
        on_step: Callable[[int, int], None] | None,
        trace: list[dict[str, torch.Tensor]] | None = None,
    ) -> list[Sample]:
        plan, model = self.plan, self.model
        beam = beam_size > 1 or branch_factor > 1
        cap = plan.max_events
        primer = torch.as_tensor(plan.primer, dtype=torch.long)
        p = len(primer)
        rows = num_outputs * (beam_size if beam else 1)

        # Prime once on the primer (all but its last event, which the first step reads).
        primer_units = F.pad(torch.cumsum(plan.unit_fn(primer[None]), dim=1), (1, 0))  # (1, p+1)
        state = model.initial_state(1)
        if p > 1:
            cond = self.cond_at(torch.arange(p)[None], primer_units)
            x = self.encoding.inputs(primer[None, : p - 1], cond).float()
            _, state = model(x, state, return_state=True)
        state = model.select_state(state, torch.zeros(rows, dtype=torch.long))

        buf = torch.zeros(rows, cap, dtype=torch.long)
        buf[:, :p] = primer
        ucum = torch.zeros(rows, cap + 1, dtype=torch.long)  # units before each position
        ucum[:, : p + 1] = primer_units
        lengths = torch.full((rows,), p, dtype=torch.long)
        units = ucum[:, p].clone()
        done = units >= plan.target_units
        score = torch.zeros(rows, dtype=torch.float64)
        sampled = torch.zeros(rows, dtype=torch.long)
        forced_n = torch.zeros(rows, dtype=torch.long)
        queues: list[list[int]] = [[] for _ in range(rows)]

        def reorder(index: torch.Tensor) -> None:
            nonlocal state, buf, ucum, lengths, units, done, score, sampled, forced_n, queues
            state = model.select_state(state, index)
            buf, ucum, lengths = buf[index], ucum[index], lengths[index]
            units, done = units[index], done[index]
            score, sampled, forced_n = score[index], sampled[index], forced_n[index]
            queues = [list(queues[i]) for i in index.tolist()]

        if beam:
            # Magenta: beam_size copies, each branched branch_factor times.
            reorder(torch.arange(rows).repeat_interleave(branch_factor))
            per_output = beam_size * branch_factor
        if plan.fixed_length:
            total = plan.target_units - int(units[0])
            first = (total - 1) % steps_per_iteration + 1
        else:
            first = steps_per_iteration
        until_prune = first
        step = 0
        inv_t = 1.0 / float(temperature)
        while not bool(done.all()):
            if not bool((~done & (lengths < cap)).any()):
                break  # every unfinished row hit the event cap (finish() pads it)
            x = self.features(buf, lengths, ucum)
            logits, state = model.step(x, state)
            logp = logits.double() * inv_t
            mask = self._mask(buf, lengths)
            if mask is not None:
                logp = logp.masked_fill(~mask, float("-inf"))
            logp = torch.log_softmax(logp, dim=-1)
            noise = _gumbel(seed, step, buf.shape[0], self.num_classes)
            choice = torch.argmax(logp + noise, dim=-1)
            lp = logp.gather(1, choice[:, None]).squeeze(1)
            ev = self.decode(choice, buf, lengths)
            forced = self._forced(buf, lengths, done, queues)
            is_forced = forced >= 0
            ev = torch.where(is_forced, forced, ev)
            active = ~done & (lengths < cap)
            if trace is not None:
                trace.append(
                    {
                        "logp": logp.clone(),
                        "choice": choice.clone(),
                        "forced": is_forced.clone(),
                        "active": active.clone(),
                    }
                )
            score += torch.where(active & ~is_forced, lp, torch.zeros_like(lp))
            sampled += (active & ~is_forced).long()
            forced_n += (active & is_forced).long()
            rows_now = torch.nonzero(active).squeeze(1)
            buf[rows_now, lengths[rows_now]] = ev[rows_now]
            lengths += active.long()
            units += torch.where(
                active, plan.unit_fn(ev[:, None]).squeeze(1), torch.zeros_like(units)
            )
            ucum[rows_now, lengths[rows_now]] = units[rows_now]
            done = done | (units >= plan.target_units)
            step += 1
            if on_step is not None:
                on_step(step, int(done.sum()))
            if beam:
                until_prune -= 1
                if until_prune == 0 and not bool(done.all()):
                    top = score.view(num_outputs, per_output).topk(beam_size, dim=1).indices
                    base = (torch.arange(num_outputs) * per_output).unsqueeze(1)
                    keep = (top + base).reshape(-1)
                    reorder(keep.repeat_interleave(branch_factor))
                    until_prune = steps_per_iteration

        if beam:
            best = score.view(num_outputs, per_output).argmax(dim=1)
            pick = best + torch.arange(num_outputs) * per_output
        else:
            pick = torch.arange(num_outputs)
        return [
            Sample(
                events=buf[i, : int(lengths[i])].numpy().copy(),
                log_likelihood=float(score[i]),
                num_sampled=int(sampled[i]),
                num_forced=int(forced_n[i]),
                reached_length=bool(done[i]),
            )
            for i in pick.tolist()
        ]

    def _forced(
        self, buf: torch.Tensor, lengths: torch.Tensor, done: torch.Tensor, queues: list[list[int]]
    ) -> torch.Tensor:
        """Next forced event per row (-1 where the row samples), refilling each row's queue."""
        out = torch.full((buf.shape[0],), -1, dtype=torch.long)
        inject = self.plan.injector
        if inject is None:
            return out
        for r in range(buf.shape[0]):
            if bool(done[r]):
                continue
            if not queues[r]:
                queues[r].extend(int(e) for e in inject(buf[r, : int(lengths[r])].numpy()))
            if queues[r]:
                out[r] = queues[r].pop(0)
        return out


def build_plan(model: Any, req: Request) -> Plan:
    """The family's plan for ``req`` (raises :class:`GenerateError` on a bad request)."""
    family = load_family(model.family)
    req.validate(family)
    return family.generation_plan(model, req)


def generate(
    model: Any, req: Request, on_step: Callable[[int, int], None] | None = None
) -> tuple[Plan, list[Sample], list[music_pb2.NoteSequence]]:
    """Run one request: the plan, the raw samples and their NoteSequences (no files written)."""
    plan = build_plan(model, req)
    engine = Engine(model, plan)
    samples = engine.run(
        req.num_outputs,
        temperature=req.temperature,
        seed=req.seed,
        beam_size=req.beam_size,
        branch_factor=req.branch_factor,
        steps_per_iteration=req.steps_per_iteration,
        threads=req.threads,
        on_step=on_step,
    )
    return plan, samples, [plan.finish(s.events, s.reached_length) for s in samples]
