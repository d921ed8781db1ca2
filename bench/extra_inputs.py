"""What the extra inputs (and the performance output terms) buy, against Magenta's inputs.

    .venv/bin/python -m bench.extra_inputs [--variant performance|polyphony|...]
        [--examples data/examples/<set>] [--steps 1500] [--batch 8] [--lr 0.01]
        [--samples 32] [--seconds 10] [--out bench/out/extra_inputs/<variant>]

Performance variants wrap Magenta's encoding in
:class:`~modeling.families.performance.encoding.HeldNotes` (per pitch: the notes held after each
event and for how long), polyphony in :class:`~modeling.families.polyphony.encoding.StepContext`
(the last step's pitches, the step so far, the recent pitch classes); both are
:class:`~modeling.families.extra.ExtraInputs`. The baseline arm ``magenta`` trains the variant
on the same set with the wrapper removed, i.e. Magenta's exact inputs; ``extra`` trains it with
the wrapper;
for performance variants ``terms`` adds the release and time-shift terms that read the held-note
columns (:mod:`modeling.families.performance.terms`, the ``output_terms`` hparam), as shipped.
Each arm is ``modeling.train`` itself in its own process (``--no-mlflow``), then generates
``--samples`` pieces and measures what the extra inputs are for:

* performance (``--seconds`` from Magenta's second of silence): the share of notes longer than
  2 s, the longest (Magenta's decoder caps notes at 5 s) and the share of NOTE_OFFs that release
  a pitch not held (note-seq ignores them);
* polyphony (64 steps from Polyphony RNN's C major chord): notes sounding per step (a chorale:
  4) and the share of notes inside each sample's best-fitting major scale (a chorale: ~0.95,
  twelve pitch classes at random: 7/12).

The encoding cost is timed on one batch of 8 x 512 random events. The last line printed is one
JSON object: per arm the train seconds, events/s, best eval perplexity and the sample figures,
and the ratios of each arm to ``magenta``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import REPO
from modeling.cli import ArgumentParser, command

ARMS = ("magenta", "extra", "terms")


def arms_of(variant: str) -> tuple[str, ...]:
    """The arms a variant has: ``terms`` only where its encoding has output terms."""
    from modeling.variants import get_variant

    has_terms = hasattr(get_variant(variant).encoding, "output_terms")
    return ARMS if has_terms else ARMS[:2]


def _use_arm(variant: str, arm: str) -> None:
    """Swap ``variant``'s encoding for its unwrapped base in this process (baseline arm)."""
    import modeling.variants as MV

    cfg = MV.VARIANTS[variant]
    if arm == "magenta":
        MV.VARIANTS[variant] = dataclasses.replace(cfg, encoding=cfg.encoding.base)


def _encoding_ms(variant: str, repeats: int = 30) -> dict[str, float]:
    """Milliseconds per (8, 512) batch for Magenta's inputs and for the wrapped ones."""
    import torch

    from modeling.variants import get_variant

    enc = get_variant(variant).encoding
    events = torch.randint(0, enc.num_classes, (8, 512))
    out = {}
    for name, fn in (("magenta", enc.base.inputs), ("extra", enc.inputs)):
        fn(events, {})
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn(events, {})
        out[name] = round((time.perf_counter() - t0) / repeats * 1000, 2)
    return out


def _sample_stats(run: Path, samples: int, seconds: float) -> dict[str, Any]:
    """The family's sample figures of ``samples`` generated pieces, and the generation time."""
    from modeling import generate as G

    model, _ = G.load_model(None, str(run), None)
    polyphony = model.family == "polyphony"
    length = {"num_steps": 64, "primer_pitches": [60, 64, 67]} if polyphony else {}
    req = G.Request(num_outputs=samples, seed=1, **(length or {"num_seconds": seconds}))
    plan = G.build_plan(model, req)
    t0 = time.perf_counter()
    out = G.Engine(model, plan).run(samples, seed=1)
    gen_s = time.perf_counter() - t0
    seqs = [plan.finish(s.events, s.reached_length) for s in out]
    figures = _texture(seqs) if polyphony else _releases(out, seqs)
    return {**figures, "generate_s": round(gen_s, 1)}


def _releases(out: list[Any], seqs: list[Any]) -> dict[str, Any]:
    """Performance: note lengths and NOTE_OFFs of pitches not held."""
    durations = [n.end_time - n.start_time for ns in seqs for n in ns.notes]
    offs = silent = 0
    for s in out:
        held: dict[int, int] = {}
        for e in s.events.tolist():
            if e < 128:
                held[e] = held.get(e, 0) + 1
            elif e < 256:
                offs += 1
                if held.get(e - 128, 0) > 0:
                    held[e - 128] -= 1
                else:
                    silent += 1
    d = np.asarray(durations)
    return {
        "notes": int(d.size),
        "over_2s": round(float((d > 2.0).mean()), 4) if d.size else None,
        "longest_s": round(float(d.max()), 2) if d.size else None,
        "silent_release_share": round(silent / offs, 4) if offs else None,
    }


def _texture(seqs: list[Any]) -> dict[str, Any]:
    """Polyphony: voices (notes sounding per step) and key (share inside the best major scale)."""
    from modeling import musicstats as MS
    from modeling.evaluation.sets import SECONDS_PER_STEP

    notes = [MS.NoteArrays.from_sequence(ns) for ns in seqs]
    per_step = [MS.notes_per_step(n, SECONDS_PER_STEP) for n in notes if len(n)]
    in_key = [MS.in_key_ratio(n.pitch)[0] for n in notes if len(n)]
    return {
        "notes": int(sum(len(n) for n in notes)),
        "notes_per_step": round(float(np.mean(per_step)), 3) if per_step else None,
        "in_key_ratio": round(float(np.mean(in_key)), 3) if in_key else None,
    }


def _arm(args: Any) -> dict[str, Any]:
    """One arm in this process: train, then measure samples."""
    _use_arm(args.variant, args.arm)
    from modeling.train import main as train_main

    run = Path(args.out) / args.arm
    shutil.rmtree(run, ignore_errors=True)
    metrics = run.parent / f"{args.arm}.json"
    argv = [
        "--variant", args.variant, "--examples", str(args.examples), "--output", str(run),
        "--params", str(REPO / "params.yaml"), "--num-steps", str(args.steps),
        "--eval-every", "100", "--precision", "auto", "--no-mlflow", "--quiet",
        "--hparams", f"batch_size={args.batch},rnn_layer_sizes=[128,128],"
        f"learning_rate={args.lr},dropout_keep_prob=1.0,output_terms={args.arm == 'terms'}",
        "--metrics", str(metrics),
    ]  # fmt: skip
    if train_main(argv) != 0:
        raise SystemExit(f"bench: training the {args.arm} arm failed")
    m = json.loads(metrics.read_text())
    return {
        "arm": args.arm,
        "train_s": round(m["throughput"]["train_seconds"], 1),
        "events_per_sec": round(m["throughput"]["events_per_sec"]),
        "best_eval_perplexity": round(math.exp(m["best"]["eval_loss"]), 3),
        **_sample_stats(run, args.samples, args.seconds),
    }


def _example_set(variant: str) -> str:
    """The set params.yaml trains ``variant`` on."""
    from pipelines.params import load_params

    return str(load_params(REPO / "params.yaml")["variants"][variant]["example_set"])


def _defaults(args: Any) -> list[str]:
    """The arms' command line: every option, with the defaults filled in."""
    return [
        "--variant", args.variant, "--examples", str(args.examples), "--steps", str(args.steps),
        "--batch", str(args.batch), "--lr", str(args.lr), "--samples", str(args.samples),
        "--seconds", str(args.seconds), "--out", str(args.out),
    ]  # fmt: skip


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m bench.extra_inputs", description=__doc__.split("\n")[0])
    p.add_argument("--variant", default="performance")
    p.add_argument("--examples", type=Path, help="default: data/examples/<the variant's set>")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--samples", type=int, default=32)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--out", type=Path, help="default: bench/out/extra_inputs/<variant>")
    p.add_argument("--arm", choices=ARMS, help="run one arm in this process (internal)")
    return p


@command("bench.extra_inputs")
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.examples is None:
        args.examples = REPO / "data/examples" / _example_set(args.variant)
    if args.out is None:
        args.out = REPO / "bench/out/extra_inputs" / args.variant
    if not (args.examples / "meta.json").is_file():
        raise SystemExit(f"bench: no example set at {args.examples}; run `make run` first")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.arm:
        print(json.dumps(_arm(args)), flush=True)
        return 0
    result: dict[str, Any] = {"variant": args.variant, "encoding_ms": _encoding_ms(args.variant)}
    arms = arms_of(args.variant)
    for arm in arms:
        cmd = [sys.executable, "-m", "bench.extra_inputs", *_defaults(args), "--arm", arm]
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"bench: {arm} arm failed: {done.stderr.strip()[-500:]}")
        result[arm] = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps(result[arm]), flush=True)
    base = result["magenta"]
    ms = result["encoding_ms"]
    keys = ("best_eval_perplexity", "train_s", "over_2s", "longest_s", "in_key_ratio")
    result["ratios"] = {
        arm: {
            key: round(result[arm][key] / base[key], 3) if base.get(key) else None
            for key in keys
            if key in base
        }
        for arm in arms[1:]
    }
    result["ratios"]["extra"]["encoding_ms"] = round(ms["extra"] / ms["magenta"], 1)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
