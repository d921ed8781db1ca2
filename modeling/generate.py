"""Generation: one batched loop for every family, Magenta's flags, MIDI + piano roll + audio + JSON.

    python -m modeling.generate --config attention_rnn --output_dir out/ --num_outputs 10 \\
        --num_steps 128 --primer_melody "[60, -2, 60, -2, 67, -2, 67, -2]" [--key "D minor"]
    python -m modeling.generate --model models:/polyphony@champion --output_dir out/ \\
        --primer_melody "[60, -2, 60, -2, 67, -2, 67, -2]" --condition_on_primer=false \\
        --inject_primer_during_generation=true
    python -m modeling.generate --checkpoint runs/perf/checkpoints/best.pt --output_dir out/ \\
        --controls "2,0,1,1,0,1,0,1,1,0,0,1;4" --num_seconds 20

How it connects. A model comes from the MLflow registry (``--model models:/<name>@<alias>``, or
``--config NAME`` for ``models:/NAME@champion``) or a checkpoint file (``--checkpoint``), both
through :func:`modeling.registry.load_generator_model` (``weights_only`` loading). The request
(primers, chords, controls, key) is parsed by :mod:`modeling.primers` / :mod:`modeling.scales`
before any model is loaded. Each family's own helpers (``modeling/families/*.py``) turn the request
into a :class:`Plan`: the stored events to start from, the conditioning, the class mask, the stop
rule and the decoder back to a NoteSequence. :class:`Engine` then runs the one loop for all families:

* every output (and every beam branch) is a row of one batch; the primer is fed once with
  :meth:`EventRNN.forward` and its state copied to all rows, then :meth:`EventRNN.step` advances
  every row one event at a time; the LSTM state and the attention window are carried, never
  recomputed. Input features of local encodings (one-hot, chord + one-hot, performance controls)
  are computed from the last event only; the key-melody / lookback encodings, whose features are
  cumulative scans over the whole melody, are re-scanned vectorised over the (short) history.
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

Outputs (``--output_dir``): ``<variant>_<seed>_<index>.mid/.png/.wav/.json`` per sample, rendered
by :mod:`modeling.render` (FluidSynth + GM soundfont, else note-seq's synthesiser). Everything is
written to a temporary directory first and moved into place only when every sample succeeded;
existing files are never overwritten without ``--overwrite``. Bad input is one line and exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import secrets
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# note-seq imports pydub, which warns about a missing ffmpeg on import; audio here goes through
# FluidSynth or note-seq's synthesiser, so the warning would only pollute the one-line errors.
warnings.filterwarnings("ignore", message="Couldn't find ffmpeg")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from note_seq.protobuf import music_pb2  # noqa: E402

from modeling import first_line, quiet_libraries  # noqa: E402
from modeling import primers as P  # noqa: E402
from modeling.primers import RequestError  # noqa: E402
from modeling.scales import Scale, ScaleError  # noqa: E402
from modeling.scales import resolve as resolve_scale  # noqa: E402

DEFAULT_QPM = 120.0
STEPS_PER_QUARTER = 4  # melody, improv and polyphony models (16th notes)
STEPS_PER_BAR = 16
PERFORMANCE_STEPS_PER_SECOND = 100
DEFAULT_NUM_STEPS = {"melody": 128, "polyphony": 128, "performance": 3000}
MAX_NUM_STEPS = {"melody": 4096, "improv": 4096, "polyphony": 4096, "performance": 60_000}
"""Caps on ``--num_steps`` (16th steps; 10 ms steps for performance: 10 minutes)."""
MAX_OUTPUTS = 1000
MAX_BATCH_ROWS = 4096  # num_outputs x beam_size x branch_factor
DEFAULT_BACKING_CHORDS = "C G Am F C G F C"  # improv_rnn_generate's default
EVENTS_PER_UNIT_CAP = {"polyphony": 24, "performance": 4}
"""Variable-length families stop at a musical length; a row that has not reached it after this
many events per remaining unit (+ 256) is padded with silence (and flagged in the JSON)."""
AUDIO_FORMATS = ("wav", "none")


class GenerateError(RequestError):
    """Any request problem found after parsing (model, primer range, lengths): exit 2."""


# ============================================================================ the plan


@dataclass
class Plan:
    """Everything the engine needs for one request, built by a family's ``plan_*`` function.

    ``primer`` holds the stored events fed before sampling (never empty). A row stops when the
    units of its events reach ``target_units`` (events for melodies, STEP_ENDs for polyphony,
    10 ms clock steps for performance). Conditioning is a lookup table (1, N, ...) per name:
    indexed by event position (``cond_by="position"``: improv chords, N >= max_events + 1) or
    by the units elapsed before the position (``cond_by="units"``: performance controls, which
    follow the clock; N = target_units + 1, later clocks read the last entry).
    ``class_mask`` is True for allowed classes; ``dynamic_classes`` are classes whose meaning
    depends on the history (lookback repeats), checked with ``event_allowed`` after decoding when
    a scale is set. ``injector`` returns events a row must take next (polyphony primer
    injection). ``finish`` decodes one row (and whether it reached the length) to a NoteSequence.
    """

    family: str
    primer: np.ndarray
    target_units: int
    unit_fn: Callable[[torch.Tensor], torch.Tensor]
    max_events: int
    finish: Callable[[np.ndarray, bool], music_pb2.NoteSequence]
    primer_seconds: float
    info: dict[str, Any]
    cond: dict[str, torch.Tensor] = field(default_factory=dict)
    cond_by: str = "position"
    class_mask: torch.Tensor | None = None
    dynamic_classes: tuple[int, ...] = ()
    event_allowed: Callable[[torch.Tensor], torch.Tensor] | None = None
    injector: Callable[[np.ndarray], np.ndarray] | None = None
    fixed_length: bool = False


@dataclass
class Sample:
    """One finished output row."""

    events: np.ndarray
    log_likelihood: float
    num_sampled: int
    num_forced: int
    reached_length: bool


# ============================================================================ the engine


def _feature_window(encoding: Any) -> int | None:
    """How many trailing events an encoding's last input row depends on (None: all of them).

    Plain one-hot and performance-control encodings read only the newest event (plus the
    conditioning at the next position); chord conditioning adds nothing to its target's need.
    Unknown encodings get the full history, which is always exact.
    """
    from modeling.families.improv import ChordConditioned
    from modeling.families.onehot import OneHot
    from modeling.families.performance import ControlledPerformance

    if isinstance(encoding, (OneHot, ControlledPerformance)):
        return 1
    if isinstance(encoding, ChordConditioned):
        return _feature_window(encoding.target)
    return None


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
        self.window = _feature_window(self.encoding)
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
        rows = buf.shape[0]
        if self.window is not None:
            w = self.window
            pos = (lengths.unsqueeze(1) - w + torch.arange(w + 1)).clamp(min=0)  # len-w .. len
            events = buf.gather(1, pos[:, :w])
            return self.encoding.inputs(events, self.cond_at(pos, ucum))[:, -1]
        out = torch.empty(rows, self.model.input_size)
        for L, idx in _by_length(lengths):
            pos = torch.arange(L + 1).expand(len(idx), L + 1)
            cond = self.cond_at(pos, None if ucum is None else ucum[idx])
            out[idx] = self.encoding.inputs(buf[idx, :L], cond)[:, -1].float()
        return out

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


# ============================================================================ requests


@dataclass
class Request:
    """A parsed generation request (flag values after parsing, before any model exists)."""

    num_outputs: int = 10
    num_steps: int | None = None
    num_bars: float | None = None
    num_seconds: float | None = None
    primer_melody: list[int] | None = None
    primer_pitches: list[int] | None = None
    primer_midi: music_pb2.NoteSequence | None = None
    primer_midi_path: str | None = None
    condition_on_primer: bool = False
    inject_primer_during_generation: bool = True
    backing_chords: str | None = None
    steps_per_chord: int = 16
    render_chords: bool = False
    notes_per_second: float | list[float] | None = None
    pitch_class_histogram: list[float] | list[list[float]] | None = None
    temperature: float = 1.0
    beam_size: int = 1
    branch_factor: int = 1
    steps_per_iteration: int = 1
    threads: int | None = 1
    scale: Scale | None = None
    qpm: float | None = None
    seed: int = 0

    def check(self) -> None:
        """Range checks that need no model (one line each)."""
        if not 1 <= self.num_outputs <= MAX_OUTPUTS:
            raise GenerateError(f"--num_outputs must be 1..{MAX_OUTPUTS}, got {self.num_outputs}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise GenerateError(f"--temperature must be > 0, got {self.temperature}")
        for name in ("beam_size", "branch_factor", "steps_per_iteration"):
            if getattr(self, name) < 1:
                raise GenerateError(f"--{name} must be >= 1, got {getattr(self, name)}")
        rows = self.num_outputs * self.beam_size * self.branch_factor
        if self.threads is not None and self.threads < 0:
            raise GenerateError(f"--threads must be >= 0, got {self.threads}")
        if rows > MAX_BATCH_ROWS:
            raise GenerateError(
                f"num_outputs x beam_size x branch_factor = {rows} rows exceeds {MAX_BATCH_ROWS}"
            )
        given = [
            n for n in ("num_steps", "num_bars", "num_seconds") if getattr(self, n) is not None
        ]
        if len(given) > 1:
            raise GenerateError(
                f"give one of --num_steps, --num_bars, --num_seconds (got "
                f"{', '.join('--' + g for g in given)})"
            )
        for name in given:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise GenerateError(f"--{name} must be > 0, got {value}")
        primers = [
            n
            for n in ("primer_melody", "primer_pitches", "primer_midi")
            if getattr(self, n) is not None
        ]
        if len(primers) > 1:
            raise GenerateError(f"give one primer flag, not {', '.join('--' + n for n in primers)}")
        if self.qpm is not None and not (math.isfinite(self.qpm) and 1 <= self.qpm <= 1000):
            raise GenerateError(f"--qpm must be 1..1000, got {self.qpm}")

    def resolved_qpm(self) -> float:
        """Magenta: a MIDI primer's own tempo wins over --qpm; default 120."""
        if (
            self.primer_midi is not None
            and self.primer_midi.tempos
            and self.primer_midi.tempos[0].qpm > 0
        ):
            return round(float(self.primer_midi.tempos[0].qpm), 6)  # MIDI stores microseconds
        return float(self.qpm or DEFAULT_QPM)

    def step_length(self, family: str, default: int) -> int:
        """Total length in the family's steps (16ths; 10 ms steps for performance), capped."""
        qpm = self.resolved_qpm()
        if family == "performance":
            if self.num_steps is not None:
                n = self.num_steps
            elif self.num_seconds is not None:
                n = round(self.num_seconds * PERFORMANCE_STEPS_PER_SECOND)
            elif self.num_bars is not None:
                n = round(self.num_bars * 4 * 60.0 / qpm * PERFORMANCE_STEPS_PER_SECOND)
            else:
                n = default
        elif self.num_steps is not None:
            n = self.num_steps
        elif self.num_bars is not None:
            n = round(self.num_bars * STEPS_PER_BAR)
        elif self.num_seconds is not None:
            n = round(self.num_seconds * qpm / 60.0 * STEPS_PER_QUARTER)
        else:
            n = default
        cap = MAX_NUM_STEPS[family]
        unit = "10 ms steps" if family == "performance" else "16th-note steps"
        if n > cap:
            raise GenerateError(
                f"requested length {n} {unit} exceeds the cap of {cap} for {family} models"
            )
        if n < 1:
            raise GenerateError(f"requested length {n} {unit} is < 1")
        return int(n)


def _seconds_per_step(qpm: float) -> float:
    return 60.0 / qpm / STEPS_PER_QUARTER


# ----------------------------------------------------------------------------- melody / improv


def _quantized(ns: music_pb2.NoteSequence, what: str) -> music_pb2.NoteSequence:
    from note_seq import sequences_lib

    try:
        return sequences_lib.quantize_note_sequence(ns, STEPS_PER_QUARTER)
    except Exception as exc:  # note-seq raises several quantisation errors
        first = first_line(exc)
        raise GenerateError(
            f"{what}: cannot quantise the primer ({type(exc).__name__}: {first})"
        ) from None


def melody_primer_values(req: Request, family: str) -> tuple[list[int], str]:
    """Magenta melody events of the primer and where they came from (default: middle C)."""
    from note_seq import melodies_lib

    if req.primer_pitches is not None:
        raise GenerateError(
            f"--primer_pitches is for polyphony and performance models; a "
            f"{family} model takes --primer_melody or --primer_midi"
        )
    if req.primer_melody is not None:
        return list(req.primer_melody), "primer_melody"
    if req.primer_midi is not None:
        ns = music_pb2.NoteSequence()
        ns.CopyFrom(req.primer_midi)
        for n in ns.notes:  # one voice: the highest note of all pitched tracks
            n.instrument, n.program = 0, 0
        qns = _quantized(ns, "--primer_midi")
        mel = melodies_lib.Melody()
        try:
            mel.from_quantized_sequence(
                qns,
                search_start_step=0,
                instrument=0,
                gap_bars=float("inf"),
                ignore_polyphonic_notes=True,
            )
        except Exception as exc:
            raise GenerateError(f"--primer_midi: no melody could be extracted ({exc})") from None
        if len(mel) == 0:
            raise GenerateError("--primer_midi: no melody could be extracted")
        mel.set_length(max(len(mel), int(qns.total_quantized_steps) - mel.start_step))
        return list(mel), "primer_midi"
    return [60], "default (middle C, as Magenta)"


def _key_transposition(values: list[int], lo: int, hi: int) -> int:
    """Magenta's melody key normalisation: the shift ``Melody.squash`` makes towards C major,
    or the octave alternative, whichever keeps every primer note in [lo, hi) without folding
    (0 if neither does), so the primer comes back exactly after transposing the output back."""
    from note_seq import melodies_lib

    if not any(v >= 0 for v in values):
        return 0
    amount = int(melodies_lib.Melody(list(values)).squash(lo, hi, 0))
    pitches = [v for v in values if v >= 0]
    for cand in (amount, amount - 12, amount + 12):
        if all(lo <= p + cand < hi for p in pitches):
            return cand
    return 0


def _pitch_name(pitch: int) -> str:
    """MIDI pitch -> ``C4`` (60), the note names the Studio and pretty_midi use."""
    names = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
    return f"{names[pitch % 12]}{pitch // 12 - 1}"


def plan_melody(model: Any, req: Request, family: str) -> Plan:
    """Melody (and improv) plans: primer, optional key normalisation, scale mask, chords."""
    from modeling.families import melody as mfam

    enc = model.encoding
    lo, hi = mfam.parse_event_space(enc.event_space)
    values, source = melody_primer_values(req, family)
    flag = "--primer_midi" if source == "primer_midi" else "--primer_melody"
    for i, v in enumerate(values):  # in note names and 1-based, as a musician counts
        if v >= 0 and not lo <= v < hi:
            raise GenerateError(
                f"{flag}: note {_pitch_name(v)} (MIDI {v}, event {i + 1}) is outside this "
                f"model's range, {_pitch_name(lo)} to {_pitch_name(hi - 1)}"
            )
    try:
        mfam.melody_events_to_indices(values, lo, hi)  # range check on the user's primer
    except ValueError as exc:
        raise GenerateError(f"{flag}: {exc}") from None
    key_normalised = family == "melody" and enc.event_space == mfam.event_space(
        mfam.MelodyExtractConfig()
    )
    shift = _key_transposition(values, lo, hi) if key_normalised else 0
    model_values = [v + shift if v >= 0 else v for v in values]
    primer = mfam.melody_events_to_indices(model_values, lo, hi).astype(np.int64)
    qpm = req.resolved_qpm()

    info: dict[str, Any] = {
        "primer_source": source,
        "primer_events": values,
        "key_transposition": shift,
    }
    static: dict[str, torch.Tensor] = {}
    cols: dict[str, np.ndarray] = {}
    if family == "improv":
        chords = req.backing_chords or DEFAULT_BACKING_CHORDS
        figures, cols = P.parse_backing_chords(chords, req.steps_per_chord)
        grid = len(figures)
        total = (
            req.step_length("improv", grid)
            if (req.num_steps or req.num_bars or req.num_seconds)
            else grid
        )
        if total > MAX_NUM_STEPS["improv"]:
            raise GenerateError(
                f"the chord grid is {total} steps, over the cap of {MAX_NUM_STEPS['improv']}"
            )
        if total != grid:  # repeat (or cut) the progression to the requested length
            reps = np.arange(total) % grid
            cols = {k: v[reps] for k, v in cols.items()}
        static = {k: torch.as_tensor(v.astype(np.int64))[None] for k, v in cols.items()}
        info.update(
            {
                "backing_chords": chords.split(),
                "steps_per_chord": req.steps_per_chord,
                "chord_grid_steps": grid,
            }
        )
    else:
        if req.backing_chords is not None:
            raise GenerateError("--backing_chords needs an improv model")
        total = req.step_length("melody", DEFAULT_NUM_STEPS["melody"])
    if len(primer) >= total:
        raise GenerateError(
            f"the primer is {len(primer)} steps but the piece is only {total} "
            f"steps; ask for more (--num_steps / --num_bars"
            f"{' / a longer --backing_chords' if family == 'improv' else ''})"
        )

    pitches = mfam.class_pitches(enc)
    mask = None
    dynamic: tuple[int, ...] = ()
    allowed_event = None
    if req.scale is not None:
        model_scale = req.scale.transposed(shift)
        ok_pc = torch.zeros(12, dtype=torch.bool)
        ok_pc[list(model_scale.pitch_classes)] = True
        cp = torch.as_tensor(pitches)
        mask = (cp < 0) | ok_pc[cp.clamp(min=0) % 12]
        dynamic = tuple(int(c) for c in np.flatnonzero(pitches < 0))

        def allowed_event(ev: torch.Tensor) -> torch.Tensor:
            pitch = ev - mfam.NUM_SPECIAL + lo
            return (ev < mfam.NUM_SPECIAL) | ok_pc[pitch.clamp(min=0) % 12]

        info["model_scale_pitch_classes"] = list(model_scale.pitch_classes)

    def finish(events: np.ndarray, reached: bool) -> music_pb2.NoteSequence:
        if family == "improv":
            from modeling.families import improv as ifam

            ns = ifam.to_note_sequence(
                events, cols, qpm=qpm, event_space=enc.event_space, render_chords=req.render_chords
            )
        else:
            ns = mfam.to_note_sequence(events, qpm=qpm, event_space=enc.event_space)
        for n in ns.notes:
            if n.instrument == 0:  # the melody (rendered chords are instrument 1)
                n.pitch -= shift
        ns.total_time = max(ns.total_time, len(events) * _seconds_per_step(qpm))
        return ns

    return Plan(
        family=family,
        primer=primer,
        target_units=total,
        unit_fn=lambda e: torch.ones_like(e),
        max_events=total,
        finish=finish,
        primer_seconds=len(primer) * _seconds_per_step(qpm),
        info=info,
        cond=static,
        class_mask=mask,
        dynamic_classes=dynamic,
        event_allowed=allowed_event,
        fixed_length=True,
    )


# ----------------------------------------------------------------------------- polyphony


def _primer_sequence(
    req: Request, qpm: float, family: str
) -> tuple[music_pb2.NoteSequence | None, str]:
    """A polyphony / performance primer as a NoteSequence (family helpers), or None."""
    from modeling.families import polyphony as pfam

    try:
        if req.primer_melody is not None:
            return pfam.primer_from_melody(req.primer_melody, qpm), "primer_melody"
        if req.primer_pitches is not None:
            return pfam.primer_from_pitches(req.primer_pitches, qpm), "primer_pitches"
    except ValueError as exc:
        raise GenerateError(str(exc)) from None
    if req.primer_midi is not None:
        ns = music_pb2.NoteSequence()
        ns.CopyFrom(req.primer_midi)
        pitched = [n for n in ns.notes if not n.is_drum]
        del ns.notes[:]
        ns.notes.extend(pitched)
        if family in ("polyphony", "performance"):
            for n in ns.notes:  # both families refuse several programs; play it as one voice
                n.program = 0
        return ns, "primer_midi"
    return None, "none"


def plan_polyphony(model: Any, req: Request) -> Plan:
    from modeling.families import polyphony as pfam

    if req.backing_chords is not None:
        raise GenerateError("--backing_chords needs an improv model")
    qpm = req.resolved_qpm()
    sps = _seconds_per_step(qpm)
    primer_ns, source = _primer_sequence(req, qpm, "polyphony")
    try:
        pp = pfam.prepare_primer(
            primer_ns,
            condition_on_primer=req.condition_on_primer,
            inject_primer_during_generation=req.inject_primer_during_generation,
            steps_per_quarter=STEPS_PER_QUARTER,
        )
    except ValueError as exc:
        raise GenerateError(f"primer: {exc}") from None
    total = req.step_length("polyphony", DEFAULT_NUM_STEPS["polyphony"])
    if pp.primer_steps >= total:
        raise GenerateError(
            f"the primer is {pp.primer_steps} steps but the piece is only {total} "
            "steps; ask for more (--num_steps / --num_bars)"
        )
    conditioned = req.condition_on_primer and primer_ns is not None
    target = total if conditioned else total - pp.primer_steps
    primer = np.asarray(pp.events, np.int64)
    ok = torch.ones(pfam.NUM_CLASSES, dtype=torch.bool)
    if req.scale is not None:
        ok = pfam.scale_mask(req.scale.pitch_classes).clone()
    ok[pfam.START] = False  # the length comes from --num_steps; START/END are never sampled
    ok[pfam.END] = False
    per_unit = EVENTS_PER_UNIT_CAP["polyphony"]
    injected = sum(len(s) for s in pp.inject_steps)
    max_events = len(primer) + per_unit * (target - pp.primer_steps * conditioned) + injected + 256

    def finish(events: np.ndarray, reached: bool) -> music_pb2.NoteSequence:
        ends = np.flatnonzero(events == pfam.STEP_END)
        if len(ends) >= target:
            events = events[: ends[target - 1] + 1]
        else:  # hit the event cap: pad with empty steps (Magenta's set_length)
            events = np.concatenate([events, np.full(target - len(ends), pfam.STEP_END)])
        events = np.concatenate([events, [pfam.END]])
        ns = pfam.to_note_sequence(events, qpm=qpm, steps_per_quarter=STEPS_PER_QUARTER)
        if not conditioned and primer_ns is not None:
            offset = pp.primer_steps * sps  # generated music follows the primer
            for n in ns.notes:
                n.start_time += offset
                n.end_time += offset
            for n in primer_ns.notes:
                ns.notes.add().CopyFrom(n)
            ns.notes.sort(key=lambda n: (n.start_time, -n.pitch))
        ns.total_time = total * sps
        return ns

    info = {
        "primer_source": source,
        "primer_steps": pp.primer_steps,
        "condition_on_primer": conditioned,
        "inject_primer_during_generation": bool(pp.inject_steps),
    }
    return Plan(
        family="polyphony",
        primer=primer,
        target_units=target,
        unit_fn=lambda e: (e == pfam.STEP_END).long(),
        max_events=max_events,
        finish=finish,
        primer_seconds=pp.primer_steps * sps if primer_ns else 0.0,
        info=info,
        class_mask=ok,
        injector=pp.to_inject if pp.inject_steps else None,
    )


# ----------------------------------------------------------------------------- performance


def plan_performance(model: Any, req: Request) -> Plan:
    from modeling.families import performance as pf

    if req.backing_chords is not None:
        raise GenerateError("--backing_chords needs an improv model")
    enc = model.encoding
    nvb = int(enc.event_space.rsplit("v", 1)[1])
    controlled = isinstance(enc, pf.ControlledPerformance)
    if req.notes_per_second is not None and not (controlled and enc.density):
        raise GenerateError(
            f"--notes_per_second needs a density-conditioned performance model; "
            f"{model.variant} is not"
        )
    if req.pitch_class_histogram is not None and not (controlled and enc.histogram):
        raise GenerateError(
            f"--pitch_class_histogram needs a pitch-conditioned performance "
            f"model; {model.variant} is not"
        )
    qpm = req.resolved_qpm()
    total = req.step_length("performance", DEFAULT_NUM_STEPS["performance"])
    primer_ns, source = _primer_sequence(req, qpm, "performance")
    if primer_ns is not None:
        try:
            primer = pf.primer_events(primer_ns, num_velocity_bins=nvb).astype(np.int64)
        except ValueError as exc:
            raise GenerateError(f"primer: {exc}") from None
    else:  # Magenta: an empty primer starts with (up to) a second of silence
        silence = min(pf.MAX_SHIFT_STEPS, total)
        primer = np.array([pf.TIME_SHIFT + silence - 1], np.int64)
    primer_clock = int(pf.shift_steps(torch.as_tensor(primer)[None]).sum())
    if primer_clock >= total and primer_ns is not None:
        raise GenerateError(
            f"the primer lasts {primer_clock / 100:.2f} s but the piece only "
            f"{total / 100:.2f} s; ask for more (--num_steps / --num_seconds)"
        )

    table: dict[str, torch.Tensor] = {}
    controls: dict[str, Any] = {}
    if controlled:
        kwargs = {
            "notes_per_second": req.notes_per_second,
            "pitch_class_histogram": req.pitch_class_histogram,
        }
        # The family's control rule depends on the clock only, so evaluate it once on a clock
        # ramp (one 10 ms shift per event): entry c is the control after c clock steps.
        ramp = torch.full((1, total), pf.TIME_SHIFT, dtype=torch.long)
        try:
            table = enc.control_from_request(ramp, total_steps=total, **kwargs)
        except ValueError as exc:
            raise GenerateError(str(exc)) from None
        controls = {k: v for k, v in kwargs.items() if v is not None}
        if req.notes_per_second is None and enc.density:
            controls["notes_per_second"] = float(pf.DEFAULT_NOTE_DENSITY)
        if req.pitch_class_histogram is None and enc.histogram:
            controls["pitch_class_histogram"] = list(pf.DEFAULT_PITCH_HISTOGRAM)
    mask = (
        pf.scale_mask(req.scale.pitch_classes, num_velocity_bins=nvb)
        if req.scale is not None
        else None
    )
    max_events = len(primer) + EVENTS_PER_UNIT_CAP["performance"] * (total - primer_clock) + 256

    def finish(events: np.ndarray, reached: bool) -> music_pb2.NoteSequence:
        shifts = pf.shift_steps(torch.as_tensor(events)[None])[0].numpy()
        clock = np.cumsum(shifts)
        if clock[-1] >= total:  # cut at the target, shortening the last shift (set_length)
            k = int(np.argmax(clock >= total))
            events = events[: k + 1].copy()
            over = int(clock[k] - total)
            if over:
                events[k] -= over
        else:  # hit the event cap: pad with silence up to the target
            left, pads = int(total - clock[-1]), []
            while left > 0:
                s = min(left, pf.MAX_SHIFT_STEPS)
                pads.append(pf.TIME_SHIFT + s - 1)
                left -= s
            events = np.concatenate([events, np.asarray(pads, np.int64)])
        ns = pf.to_note_sequence(events, num_velocity_bins=nvb)
        ns.total_time = max(ns.total_time, total / pf.STEPS_PER_SECOND)
        return ns

    info = {
        "primer_source": source if primer_ns is not None else "default (1 s of silence)",
        "primer_events": len(primer),
        "num_velocity_bins": nvb,
        "total_clock_steps": total,
        "controls": controls,
    }
    return Plan(
        family="performance",
        primer=primer,
        target_units=total,
        unit_fn=pf.shift_steps,
        max_events=max_events,
        finish=finish,
        primer_seconds=primer_clock / pf.STEPS_PER_SECOND if primer_ns else 0.0,
        info=info,
        cond=table,
        cond_by="units",
        class_mask=mask,
    )


def build_plan(model: Any, req: Request) -> Plan:
    """The family's plan for ``req`` (raises :class:`GenerateError` on a bad request)."""
    family = model.family
    controls = req.notes_per_second is not None or req.pitch_class_histogram is not None
    if controls and family != "performance":
        raise GenerateError(
            "--notes_per_second / --pitch_class_histogram / --controls need a "
            "conditioned performance model"
        )
    if req.render_chords and family != "improv":
        raise GenerateError("--render_chords needs an improv model")
    if family in ("melody", "improv"):
        return plan_melody(model, req, family)
    if family == "polyphony":
        return plan_polyphony(model, req)
    if family == "performance":
        return plan_performance(model, req)
    raise GenerateError(f"no generation plan for family {family!r}")


def generate(
    model: Any, req: Request, on_step: Callable[[int, int], None] | None = None
) -> tuple[Plan, list[Sample], list[music_pb2.NoteSequence]]:
    """Run one request: the plan, the raw samples and their NoteSequences (no files written)."""
    req.check()
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


# ============================================================================ model loading


def _registered_names() -> list[str]:
    from modeling import registry

    c = registry.client()
    return sorted(m.name for m in c.search_registered_models())


def load_model(
    model_uri: str | None, checkpoint: str | None, config: str | None
) -> tuple[Any, dict[str, Any]]:
    """(EventRNN in eval mode, metadata) from the registry or a checkpoint; one-line errors."""
    from modeling import registry
    from modeling.checkpoint import CheckpointError

    if model_uri and checkpoint:
        raise GenerateError("give --model or --checkpoint, not both")
    uri = model_uri or checkpoint
    if uri is None:
        if not config:
            raise GenerateError(
                "give --model models:/<name>@<alias>, --checkpoint PATH or "
                "--config NAME (= models:/NAME@champion)"
            )
        uri = f"models:/{config}@champion"
    if checkpoint is None and not uri.startswith(("models:/", "runs:/")):
        raise GenerateError(
            f"--model {uri}: expected models:/<name>@<alias> or "
            "models:/<name>/<version>; use --checkpoint for a file"
        )
    if uri.startswith("models:/"):
        name = uri.removeprefix("models:/").split("@", 1)[0].split("/", 1)[0]
        try:
            names = _registered_names()
        except registry.RegistryError as exc:  # e.g. no store yet
            raise GenerateError(f"{exc}; train a model first or use --checkpoint") from None
        except Exception as exc:  # mlflow store unreachable / corrupt
            first = first_line(exc)
            raise GenerateError(f"registry at {registry.tracking_uri()}: {first}") from None
        if name not in names:
            listed = ", ".join(names) if names else "none"
            raise GenerateError(
                f"model {name!r} is not in the registry at "
                f"{registry.tracking_uri()}; registered: {listed}"
            )
    elif checkpoint is not None and not Path(checkpoint).exists():
        raise GenerateError(f"--checkpoint {checkpoint}: no such file or directory")
    try:
        model, _cfg, meta = registry.load_generator_model(uri)
    except (registry.RegistryError, CheckpointError) as exc:
        raise GenerateError(str(exc)) from None
    if config and config != model.variant:
        raise GenerateError(f"--config {config} but the model is a {model.variant} model")
    return model.eval(), meta


def apply_hparams(model: Any, text: str | None) -> dict[str, Any]:
    """Magenta's ``--hparams`` at generation: architecture keys must match the checkpoint;
    training-only keys (batch_size, dropout, clip, learning rate) have no effect here."""
    from modeling.hparams import HParamsError, hparams_to_dict, parse_hparams

    if not text or not text.strip():
        return {}
    try:
        hp = parse_hparams(text, model.hparams)
    except HParamsError as exc:
        raise GenerateError(f"--hparams: {exc}") from None
    for key in ("rnn_layer_sizes", "attn_length"):
        want, have = getattr(hp, key), getattr(model.hparams, key)
        if want != have:
            raise GenerateError(
                f"--hparams {key}={list(want) if isinstance(want, tuple) else want}"
                f" differs from the checkpoint's "
                f"{list(have) if isinstance(have, tuple) else have}"
            )
    return hparams_to_dict(hp)


# ============================================================================ outputs


def output_stem(variant: str, seed: int, index: int) -> str:
    """Deterministic file stem of sample ``index`` (1-based) of ``seed``."""
    return f"{variant}_{seed}_{index:03d}"


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def write_outputs(
    output_dir: Path,
    stems: Sequence[str],
    notes: Sequence[music_pb2.NoteSequence],
    records: Sequence[dict[str, Any]],
    *,
    primer_seconds: float,
    audio: str,
    overwrite: bool,
) -> list[dict[str, str]]:
    """Render every sample into a temporary directory, then move all files into place.

    MIDI and piano rolls are drawn one after the other (pyplot is not thread-safe); audio is
    rendered on a small thread pool, since FluidSynth runs as a subprocess and each render
    mostly waits on it. Any failure removes the temporary directory (and ``output_dir`` if this
    call created it), so an error never leaves part of a request behind.
    """
    from concurrent.futures import ThreadPoolExecutor

    from modeling import render

    created = not output_dir.exists()
    output_dir.mkdir(parents=True, exist_ok=True)
    exts = [".mid", ".png", ".json"] + ([".wav"] if audio == "wav" else [])
    tmp = Path(tempfile.mkdtemp(prefix=".motif-generate-", dir=output_dir))
    ok = False
    try:
        for stem, ns in zip(stems, notes, strict=True):
            render.write_midi(ns, tmp / f"{stem}.mid")
            render.piano_roll_png(ns, tmp / f"{stem}.png", stem, primer_seconds or None)
        renderers: list[str | None] = [None] * len(stems)
        if audio == "wav":
            workers = max(1, min(4, os.cpu_count() or 1, len(stems)))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                renderers = list(
                    pool.map(
                        lambda a: render.render_audio(a[1], tmp / f"{a[0]}.wav"),
                        zip(stems, notes, strict=True),
                    )
                )
        files = []
        for stem, rec, renderer in zip(stems, records, renderers, strict=True):
            final = {
                "midi": str(output_dir / f"{stem}.mid"),
                "piano_roll": str(output_dir / f"{stem}.png"),
            }
            if renderer is not None:
                final.update({"audio": str(output_dir / f"{stem}.wav"), "audio_renderer": renderer})
            (tmp / f"{stem}.json").write_text(
                json.dumps(_json_safe({**rec, "files": final}), indent=2) + "\n"
            )
            files.append({**final, "json": str(output_dir / f"{stem}.json")})
        if not overwrite:  # re-check: something may have appeared meanwhile
            clash = [
                output_dir / (s + e) for s in stems for e in exts if (output_dir / (s + e)).exists()
            ]
            if clash:
                raise GenerateError(f"{clash[0]} exists; use --overwrite or another --output_dir")
        for stem in stems:
            for ext in exts:
                os.replace(tmp / (stem + ext), output_dir / (stem + ext))
        ok = True
        return files
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not ok and created:
            with contextlib.suppress(OSError):
                output_dir.rmdir()  # only if empty


# ============================================================================ CLI


def _bool(text: str) -> bool:
    low = str(text).strip().lower()
    if low in ("true", "1", "yes", "y", "t"):
        return True
    if low in ("false", "0", "no", "n", "f"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m modeling.generate",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Generate music from a trained motif model (Magenta's *_rnn_generate flags).",
        epilog="examples:\n"
        "  python -m modeling.generate --config attention_rnn --output_dir out "
        "--num_outputs 10 --num_steps 128 \\\n"
        '      --primer_melody "[60, -2, 60, -2, 67, -2, 67, -2]" --key "C major"\n'
        "  python -m modeling.generate --model models:/chord_pitches_improv@champion "
        "--output_dir out \\\n"
        '      --backing_chords "C G Am F C G F C" --render_chords\n'
        "  python -m modeling.generate --model models:/polyphony@champion --output_dir out "
        '\\\n      --primer_pitches "[67,64,60]" --condition_on_primer=true '
        "--inject_primer_during_generation=false\n"
        "  python -m modeling.generate --config multiconditioned_performance_with_dynamics "
        "--output_dir out \\\n"
        '      --controls "2,0,1,1,0,1,0,1,1,0,0,1;4" --num_seconds 20\n',
    )
    g = p.add_argument_group("model")
    g.add_argument(
        "--model",
        metavar="URI",
        help="registered model, e.g. models:/attention_rnn@champion or "
        "models:/attention_rnn/3 (MLflow at $MLFLOW_TRACKING_URI)",
    )
    g.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="checkpoint file or training output dir, e.g. runs/x/checkpoints/best.pt",
    )
    g.add_argument(
        "--config",
        metavar="VARIANT",
        help="variant name, e.g. attention_rnn; alone it means "
        "models:/<VARIANT>@champion, with --model/--checkpoint it must match",
    )
    g.add_argument(
        "--hparams",
        default="",
        help='Magenta-style overrides, e.g. "rnn_layer_sizes=[128,128]"; '
        "architecture keys must match the model, training keys are ignored",
    )
    g = p.add_argument_group("output")
    g.add_argument(
        "--output_dir",
        required=True,
        metavar="DIR",
        help="where <variant>_<seed>_<index>.mid/.png/.wav/.json go, e.g. out/",
    )
    g.add_argument("--num_outputs", type=int, default=10, help="samples to generate (default 10)")
    g.add_argument(
        "--seed",
        type=int,
        default=None,
        help="random seed, e.g. 7; the same seed and flags give the same bytes "
        "(default: a random seed, recorded in the names and JSON)",
    )
    g.add_argument("--overwrite", action="store_true", help="replace existing output files")
    g.add_argument(
        "--audio",
        choices=AUDIO_FORMATS,
        default="wav",
        help="wav (FluidSynth + GM soundfont, else a plain synthesiser) or none",
    )
    g = p.add_argument_group("length")
    g.add_argument(
        "--num_steps",
        type=int,
        default=None,
        help="total length incl. primer in 16th-note steps (melody/polyphony, default "
        "128; improv: the chord grid) or 10 ms steps (performance, default "
        "3000), e.g. 256",
    )
    g.add_argument(
        "--num_bars", type=float, default=None, help="total length in 4/4 bars instead, e.g. 8"
    )
    g.add_argument(
        "--num_seconds", type=float, default=None, help="total length in seconds instead, e.g. 30"
    )
    g.add_argument(
        "--qpm",
        type=float,
        default=None,
        help="tempo in quarters per minute, e.g. 100 (default 120; a MIDI primer's "
        "tempo wins, as in Magenta)",
    )
    g = p.add_argument_group("primer")
    g.add_argument(
        "--primer_melody",
        default=None,
        help='Magenta melody events, e.g. "[60, -2, 60, -2, 67, -2, 67, -2]" '
        "(-2 hold, -1 note off); default for melodies: one middle C",
    )
    g.add_argument(
        "--primer_pitches",
        default=None,
        help='a chord held for a quarter note (polyphony/performance), e.g. "[67,64,60]"',
    )
    g.add_argument(
        "--primer_midi",
        default=None,
        metavar="FILE",
        help="a MIDI file to continue, e.g. primer.mid",
    )
    g.add_argument(
        "--condition_on_primer",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        metavar="BOOL",
        help="polyphony: feed the primer to the model before generating, e.g. "
        "--condition_on_primer=true (default false)",
    )
    g.add_argument(
        "--inject_primer_during_generation",
        type=_bool,
        nargs="?",
        const=True,
        default=True,
        metavar="BOOL",
        help="polyphony: play the primer's notes at their steps while generating (to "
        "harmonise a melody), e.g. --inject_primer_during_generation=false "
        "(default true)",
    )
    g = p.add_argument_group("improv")
    g.add_argument(
        "--backing_chords",
        default=None,
        help="chord symbols in note-seq's grammar, e.g. \"C G Am F C7#9 Bbmaj7/D "
        'N.C." (default "C G Am F C G F C")',
    )
    g.add_argument(
        "--steps_per_chord",
        type=int,
        default=16,
        help="16th-note steps per chord, e.g. 8 (default 16 = one bar)",
    )
    g.add_argument(
        "--render_chords",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        metavar="BOOL",
        help="also play the chords in the MIDI as a second instrument",
    )
    g = p.add_argument_group("performance controls")
    g.add_argument(
        "--notes_per_second",
        default=None,
        help='note density, e.g. 4, or a list spread over the piece, e.g. "[2, 8]"',
    )
    g.add_argument(
        "--pitch_class_histogram",
        default=None,
        help='12 weights C..B, e.g. "[2, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1]", or a '
        "list of such lists spread over the piece",
    )
    g.add_argument(
        "--controls",
        default=None,
        help='histogram;density in one string, e.g. "2,0,1,1,0,1,0,1,1,0,0,1;4"',
    )
    g = p.add_argument_group("sampling")
    g.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="softmax temperature, e.g. 0.9 (< 1 tamer, > 1 wilder; default 1.0)",
    )
    g.add_argument("--beam_size", type=int, default=1, help="beam search width, e.g. 4")
    g.add_argument("--branch_factor", type=int, default=1, help="branches per beam entry, e.g. 2")
    g.add_argument(
        "--steps_per_iteration",
        type=int,
        default=1,
        help="events sampled between beam prunings, e.g. 1",
    )
    g.add_argument(
        "--key", default=None, help='keep every note in a key, e.g. "D minor", "F# dorian", "Bb"'
    )
    g.add_argument(
        "--scale",
        default=None,
        help="scale on --key's tonic (e.g. blues, minor_pentatonic, dorian) or explicit "
        'pitch classes, e.g. "C D Eb G A"',
    )
    g.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads while generating (default 1: one step is too small to "
        "split; 0 keeps torch's default)",
    )
    g.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    return p


def request_from_args(args: argparse.Namespace) -> Request:
    """Parse every flag value (no model needed); :class:`RequestError` on bad input."""
    req = Request(
        num_outputs=args.num_outputs,
        num_steps=args.num_steps,
        num_bars=args.num_bars,
        num_seconds=args.num_seconds,
        condition_on_primer=args.condition_on_primer,
        inject_primer_during_generation=args.inject_primer_during_generation,
        backing_chords=args.backing_chords,
        steps_per_chord=args.steps_per_chord,
        render_chords=args.render_chords,
        temperature=args.temperature,
        beam_size=args.beam_size,
        branch_factor=args.branch_factor,
        steps_per_iteration=args.steps_per_iteration,
        qpm=args.qpm,
        threads=args.threads or None,
        seed=args.seed if args.seed is not None else secrets.randbelow(2**31),
    )
    if req.seed < 0:
        raise RequestError(f"--seed must be >= 0, got {req.seed}")
    if args.primer_melody is not None:
        req.primer_melody = P.parse_primer_melody(args.primer_melody)
    if args.primer_pitches is not None:
        req.primer_pitches = P.parse_primer_pitches(args.primer_pitches)
    if args.primer_midi is not None:
        req.primer_midi = P.read_primer_midi(args.primer_midi)
        req.primer_midi_path = args.primer_midi
    if args.backing_chords is not None:
        P.parse_backing_chords(args.backing_chords, args.steps_per_chord)
    elif args.steps_per_chord < 1:
        raise RequestError(f"--steps_per_chord must be >= 1, got {args.steps_per_chord}")
    if args.notes_per_second is not None:
        req.notes_per_second = P.parse_density(args.notes_per_second)
    if args.pitch_class_histogram is not None:
        req.pitch_class_histogram = P.parse_histogram(args.pitch_class_histogram)
    if args.controls is not None:
        hist, density = P.parse_controls(args.controls)
        if hist is not None:
            if req.pitch_class_histogram is not None:
                raise RequestError("--controls and --pitch_class_histogram both give a histogram")
            req.pitch_class_histogram = hist
        if density is not None:
            if req.notes_per_second is not None:
                raise RequestError("--controls and --notes_per_second both give a density")
            req.notes_per_second = density
    try:
        req.scale = resolve_scale(args.key, args.scale)
    except ScaleError as exc:
        raise RequestError(f"--key/--scale: {exc}") from None
    req.check()
    return req


def _model_record(model: Any, meta: dict[str, Any]) -> dict[str, Any]:
    cfg = meta.get("config", {})
    return {
        "uri": meta.get("uri"),
        "name": meta.get("name"),
        "version": meta.get("version"),
        "aliases": meta.get("aliases"),
        "run_id": meta.get("run_id"),
        "path": meta.get("path"),
        "variant": model.variant,
        "family": model.family,
        "event_space": model.encoding.event_space,
        "training_step": meta.get("step"),
        "data_version": meta.get("data_version"),
        "example_set": cfg.get("example_set"),
        "hparams": cfg.get("hparams"),
        "attention": cfg.get("attention"),
        "eval_metrics": meta.get("metrics"),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole CLI flow; raises :class:`RequestError` for anything the user can fix."""
    started = time.perf_counter()
    req = request_from_args(args)
    output_dir = Path(args.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise RequestError(f"--output_dir {output_dir} exists and is not a directory")
    model, meta = load_model(args.model, args.checkpoint, args.config)
    hp = apply_hparams(model, args.hparams)
    stems = [output_stem(model.variant, req.seed, i + 1) for i in range(req.num_outputs)]
    exts = [".mid", ".png", ".json"] + ([".wav"] if args.audio == "wav" else [])
    if not args.overwrite:
        clash = [
            output_dir / (s + e) for s in stems for e in exts if (output_dir / (s + e)).exists()
        ]
        if clash:
            raise RequestError(
                f"{clash[0]} exists ({len(clash)} output file(s) would be "
                "overwritten); use --overwrite or another --output_dir"
            )
    loaded = time.perf_counter()

    progress = None
    if not args.quiet:

        def progress(step: int, finished: int) -> None:
            if step % 256 == 0:
                print(f"generate: {step} events, {finished} rows done", file=sys.stderr, flush=True)

    plan, samples, notes = generate(model, req, on_step=progress)
    gen_seconds = time.perf_counter() - loaded
    flags = {k: v for k, v in vars(args).items() if k != "quiet"}
    flags["seed"] = req.seed
    records = []
    for i, (s, ns) in enumerate(zip(samples, notes, strict=True)):
        records.append(
            {
                "variant": model.variant,
                "family": model.family,
                "seed": req.seed,
                "sample_index": i + 1,
                "num_outputs": req.num_outputs,
                "model": _model_record(model, meta),
                "flags": flags,
                "hparams_override": hp,
                "log_likelihood": s.log_likelihood,
                "num_events": len(s.events),
                "num_sampled_events": s.num_sampled,
                "num_forced_events": s.num_forced,
                "reached_length": s.reached_length,
                "events": s.events.tolist(),
                "plan": plan.info,
                "scale": req.scale.describe() if req.scale else None,
                "qpm": req.resolved_qpm() if model.family != "performance" else None,
                "temperature": req.temperature,
                "beam": {
                    "beam_size": req.beam_size,
                    "branch_factor": req.branch_factor,
                    "steps_per_iteration": req.steps_per_iteration,
                },
                "total_time": ns.total_time,
                "num_notes": len(ns.notes),
                "generation_seconds": round(gen_seconds, 4),
            }
        )
    files = write_outputs(
        output_dir,
        stems,
        notes,
        records,
        primer_seconds=plan.primer_seconds,
        audio=args.audio,
        overwrite=args.overwrite,
    )
    return {
        "outputs": files,
        "variant": model.variant,
        "seed": req.seed,
        "num_outputs": req.num_outputs,
        "load_seconds": round(loaded - started, 3),
        "generation_seconds": round(gen_seconds, 3),
        "total_seconds": round(time.perf_counter() - started, 3),
        "log_likelihoods": [s.log_likelihood for s in samples],
    }


def main(argv: list[str] | None = None) -> int:
    quiet_libraries()
    args = build_parser().parse_args(argv)
    try:
        summary = run(args)
    except RequestError as exc:
        print(f"generate: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("generate: interrupted; nothing was written", file=sys.stderr)
        return 130
    if not args.quiet:
        for f in summary["outputs"]:
            print(f"wrote {f['midi']}", file=sys.stderr)
    print(json.dumps(_json_safe(summary)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
