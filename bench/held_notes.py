"""What the held-note inputs buy a performance model, against Magenta's inputs in the same run.

    .venv/bin/python -m bench.held_notes [--variant performance]
        [--examples data/examples/performance] [--steps 1500] [--batch 8] [--lr 0.01]
        [--samples 32] [--seconds 10] [--out bench/out/held_notes]

Every performance variant wraps its Magenta encoding in
:class:`~modeling.families.performance.encoding.HeldNotes` (per pitch: the notes held after each
event and for how long). The baseline arm trains the same variant on the same set with the
wrapper removed, i.e. Magenta's exact inputs; the other arm trains it as shipped. Each arm is
``modeling.train`` itself in its own process (``--no-mlflow``), then generates ``--samples``
pieces of ``--seconds`` from Magenta's second of silence and measures the notes: the share
longer than 2 s, the longest (Magenta's decoder caps notes at 5 s) and the share of NOTE_OFFs
that release a pitch not held (note-seq ignores them). The encoding cost is timed on one batch
of 8 x 512 random events.

The last line printed is one JSON object: per arm the train seconds, events/s, best eval
perplexity and the sample figures, and the ratios held / magenta.
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

ARMS = ("magenta", "held")


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
    for name, fn in (("magenta", enc.base.inputs), ("held", enc.inputs)):
        fn(events, {})
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn(events, {})
        out[name] = round((time.perf_counter() - t0) / repeats * 1000, 2)
    return out


def _sample_stats(run: Path, samples: int, seconds: float) -> dict[str, Any]:
    """Note durations and silent releases of ``samples`` generated pieces."""
    from modeling import generate as G

    model, _ = G.load_model(None, str(run), None)
    req = G.Request(num_outputs=samples, seed=1, num_seconds=seconds)
    plan = G.build_plan(model, req)
    t0 = time.perf_counter()
    out = G.Engine(model, plan).run(samples, seed=1)
    gen_s = time.perf_counter() - t0
    durations: list[float] = []
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
        ns = plan.finish(s.events, s.reached_length)
        durations += [n.end_time - n.start_time for n in ns.notes]
    d = np.asarray(durations)
    return {
        "notes": int(d.size),
        "over_2s": round(float((d > 2.0).mean()), 4) if d.size else None,
        "longest_s": round(float(d.max()), 2) if d.size else None,
        "silent_release_share": round(silent / offs, 4) if offs else None,
        "generate_s": round(gen_s, 1),
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
        f"learning_rate={args.lr},dropout_keep_prob=1.0",
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


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m bench.held_notes", description=__doc__.split("\n")[0])
    p.add_argument("--variant", default="performance")
    p.add_argument("--examples", type=Path, default=REPO / "data/examples/performance")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--samples", type=int, default=32)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--out", type=Path, default=REPO / "bench/out/held_notes")
    p.add_argument("--arm", choices=ARMS, help="run one arm in this process (internal)")
    return p


@command("bench.held_notes")
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.arm:
        print(json.dumps(_arm(args)), flush=True)
        return 0
    if not (args.examples / "meta.json").is_file():
        raise SystemExit(f"bench: no example set at {args.examples}; run `make run` first")
    args.out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"variant": args.variant, "encoding_ms": _encoding_ms(args.variant)}
    for arm in ARMS:
        cmd = [sys.executable, "-m", "bench.held_notes", *(argv or sys.argv[1:]), "--arm", arm]
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"bench: {arm} arm failed: {done.stderr.strip()[-500:]}")
        result[arm] = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps(result[arm]), flush=True)
    base, held = result["magenta"], result["held"]
    result["ratios"] = {
        "perplexity": round(held["best_eval_perplexity"] / base["best_eval_perplexity"], 3),
        "train_s": round(held["train_s"] / base["train_s"], 3),
        "over_2s": round(held["over_2s"] / base["over_2s"], 3) if base["over_2s"] else None,
        "encoding_ms": round(result["encoding_ms"]["held"] / result["encoding_ms"]["magenta"], 1),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
