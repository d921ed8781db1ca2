"""Training throughput benchmark against Magenta's figures on this machine class.

    .venv/bin/python -m bench.train [--steps 50] [--out bench/out] [--no-sequential] [--no-ddp]

Trains basic_rnn and attention_rnn (batch 128, layers [128, 128], Magenta's other hparams) on the
OpenEWLD melody set for a fixed number of steps with ``modeling.train`` itself (one subprocess per
run, so each run's peak RSS is its own), then reports labelled events/s (non-padding), steps/s,
peak RSS, the train loss (mean over the last fifth of the steps, dropout on) and the eval loss
after them (always fp32). On a shared machine wall-clock figures depend on the other processes,
so every run also reports events per CPU-second (all threads, all ranks) and the load average.
Runs: fp32 and ``--precision bf16`` (bfloat16 autocast, fp32 weights) in one process with 2
threads; attention_rnn also with Magenta's sequential ``AttentionCellWrapper``
(``--attention sequential``) to compare speed and eval loss at equal steps; and
``torchrun --nproc_per_node 2`` (DDP, one thread per process) to show what data parallelism over
the two cores adds.

The example set is built once under ``--out`` if absent: OpenEWLD ``.mxl`` files read by the
project's reader chain (``pipelines.readers.parse_file``: note-seq, the zip's inner score, music21),
split by the same seeded source hash as ``pipelines.examples`` (10 % eval) and extracted with
``modeling.families.melody.extract`` (Magenta's melody rules) into EXAMPLE_SCHEMA Parquet.

The last line printed is one JSON object with every figure and the ratios to Magenta.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.common import REPO, default_data_root, example_row, split_of, write_example_set
from modeling.cli import ArgumentParser, command

# Magenta 2.1.4 (TF 2.9.1) on this machine class, 2 cores.
MAGENTA = {
    "basic_rnn": {"steps_per_sec": 0.86, "events_per_sec": 45_000},
    "attention_rnn": {"steps_per_sec": 0.150, "events_per_sec": 7_900},
    "train_loss_after_51_steps": 1.38,
}
HPARAMS = "batch_size=128,rnn_layer_sizes=[128,128]"


def build_openewld_set(out: Path, seed: int = 1234, eval_ratio: float = 0.1) -> dict:
    """Melody example set from OpenEWLD (EXAMPLE_SCHEMA Parquet + meta.json)."""
    import numpy as np
    from note_seq.protobuf import music_pb2

    from modeling.families import melody
    from modeling.families.base import Dropped
    from modeling.families.melody.extract import MelodyExtractConfig
    from pipelines.readers import parse_file

    root = Path(default_data_root()) / "openewld" / "dataset"
    files = sorted(root.rglob("*.mxl"))
    if not files:
        raise SystemExit(f"bench: no OpenEWLD .mxl files under {root}")
    cfg = MelodyExtractConfig()
    rows: dict[str, list[dict]] = {"train": [], "eval": []}
    counts = {"files": len(files), "unreadable": 0, "fallback_reads": 0, "dropped": 0}
    t0 = time.perf_counter()
    for path in files:
        rel = str(path.relative_to(root))
        result = parse_file(path.read_bytes(), path.name)
        if not result.tunes:
            counts["unreadable"] += 1
            continue
        counts["fallback_reads"] += bool(result.fallbacks)
        for tune in result.tunes:
            source_id = f"openewld/{rel}#{tune.index}"
            split = split_of(source_id, seed, eval_ratio)
            ns = music_pb2.NoteSequence.FromString(tune.sequence)
            for i, item in enumerate(melody.extract(ns, cfg, augment=split == "train")):
                if isinstance(item, Dropped):
                    counts["dropped"] += item.count
                    continue
                events = np.asarray(item.events, dtype=np.int16)
                rows[split].append(
                    example_row(f"{source_id}:{i:04d}", source_id, split, events.tolist())
                )
    meta = {
        "name": "openewld_melody",
        "family": "melody",
        "event_space": melody.event_space(cfg),
        "num_train": len(rows["train"]),
        "num_eval": len(rows["eval"]),
        "eval_ratio": eval_ratio,
        "seed": seed,
        "extract": {},
        "build": {**counts, "seconds": round(time.perf_counter() - t0, 1)},
    }
    write_example_set(out, rows, meta)
    return meta


def run_training(
    name: str,
    variant: str,
    examples: Path,
    out: Path,
    steps: int,
    attention: str = "parallel",
    nproc: int = 1,
    precision: str = "fp32",
) -> dict:
    """One fresh ``modeling.train`` run; returns its metrics.json plus wall time."""
    run_dir = out / "runs" / name
    shutil.rmtree(run_dir, ignore_errors=True)
    py = sys.executable
    train_args = [
        "--variant",
        variant,
        "--examples",
        str(examples),
        "--output",
        str(run_dir),
        "--hparams",
        HPARAMS,
        "--num-steps",
        str(steps),
        "--eval-every",
        str(max(1, steps // 5)),  # train loss then = mean of the last steps // 5 steps
        "--seed",
        "0",
        "--attention",
        attention,
        "--precision",
        precision,
        "--no-mlflow",
        "--quiet",
    ]
    if nproc > 1:
        cmd = [
            py,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(nproc),
            "-m",
            "modeling.train",
            *train_args,
        ]
    else:
        cmd = [py, "-m", "modeling.train", *train_args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    load_before = os.getloadavg()[0]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    load = round(max(load_before, os.getloadavg()[0]), 2)  # 2 = this run alone on 2 cores
    if proc.returncode != 0:
        raise SystemExit(
            f"bench: {name} failed (exit {proc.returncode}): "
            f"{proc.stderr.strip().splitlines()[-1:]}"
        )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "events_per_sec": round(metrics["throughput"]["events_per_sec"]),
        "steps_per_sec": round(metrics["throughput"]["steps_per_sec"], 3),
        "events_per_cpu_sec": round(metrics["throughput"]["events_per_cpu_sec"]),
        "train_loss": round(metrics["train"]["loss"], 4),
        "eval_loss": round(metrics["eval"]["loss"], 4),
        "eval_accuracy": round(metrics["eval"]["accuracy"], 4),
        "peak_rss_mb": round(metrics["peak_rss_mb"]),
        "wall_seconds": round(wall, 1),
        "load_avg_1m": load,
    }


@command("bench")
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m bench.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    parser.add_argument(
        "--no-sequential",
        action="store_true",
        help="skip Magenta-style sequential attention (the slowest run)",
    )
    parser.add_argument("--no-ddp", action="store_true", help="skip the 2-process DDP runs")
    args = parser.parse_args()
    examples = args.out / "openewld_melody"
    if not (examples / "meta.json").is_file():
        print(f"building the OpenEWLD melody set in {examples} ...", file=sys.stderr)
        meta = build_openewld_set(examples)
    else:
        meta = json.loads((examples / "meta.json").read_text())
    print(
        f"example set: {meta['num_train']} train / {meta['num_eval']} eval melodies",
        file=sys.stderr,
    )

    # (name, variant, attention, processes, precision)
    plan = [
        ("basic_rnn", "basic_rnn", "parallel", 1, "fp32"),
        ("basic_rnn_bf16", "basic_rnn", "parallel", 1, "bf16"),
        ("attention_rnn", "attention_rnn", "parallel", 1, "fp32"),
        ("attention_rnn_bf16", "attention_rnn", "parallel", 1, "bf16"),
    ]
    if not args.no_ddp:
        plan += [
            ("basic_rnn_ddp2", "basic_rnn", "parallel", 2, "fp32"),
            ("basic_rnn_ddp2_bf16", "basic_rnn", "parallel", 2, "bf16"),
            ("attention_rnn_ddp2_bf16", "attention_rnn", "parallel", 2, "bf16"),
        ]
    if not args.no_sequential:  # last: by far the slowest
        plan.append(("attention_rnn_sequential", "attention_rnn", "sequential", 1, "fp32"))
    results = {}
    for name, variant, attention, nproc, precision in plan:
        print(f"running {name} ({args.steps} steps) ...", file=sys.stderr, flush=True)
        results[name] = run_training(
            name, variant, examples, args.out, args.steps, attention, nproc, precision
        )
        r = results[name]
        print(
            f"  {name:26s} {r['steps_per_sec']:6.3f} steps/s {r['events_per_sec']:>8,} "
            f"events/s  train loss {r['train_loss']:.3f}  eval loss {r['eval_loss']:.3f}  "
            f"peak RSS {r['peak_rss_mb']} MB",
            file=sys.stderr,
            flush=True,
        )

    def vs_magenta(run: str, variant: str) -> float:
        return results[run]["steps_per_sec"] / MAGENTA[variant]["steps_per_sec"]

    ratios = {name: vs_magenta(name, variant) for name, variant, *_ in plan}
    best = {
        v: max((n for n, var, *_ in plan if var == v), key=lambda n: ratios[n])
        for v in ("basic_rnn", "attention_rnn")
    }
    comparisons = {}
    if "attention_rnn_sequential" in results:
        seq = results["attention_rnn_sequential"]
        par = results["attention_rnn"]
        comparisons["parallel_vs_sequential_attention_speed"] = round(
            par["events_per_sec"] / seq["events_per_sec"], 2
        )
        comparisons["parallel_minus_sequential_eval_loss"] = round(
            par["eval_loss"] - seq["eval_loss"], 4
        )
    comparisons["bf16_minus_fp32_eval_loss"] = {
        v: round(results[f"{v}_bf16"]["eval_loss"] - results[v]["eval_loss"], 4)
        for v in ("basic_rnn", "attention_rnn")
    }
    summary = {
        "bench": "train",
        "steps": args.steps,
        "batch_size": 128,
        "layers": [128, 128],
        "examples": {"train": meta["num_train"], "eval": meta["num_eval"]},
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "runs": results,
        "magenta": MAGENTA,
        "steps_per_sec_vs_magenta": {k: round(v, 2) for k, v in ratios.items()},
        "comparisons": comparisons,
        "best": {v: {"run": n, "vs_magenta": round(ratios[n], 2)} for v, n in best.items()},
        "goals_met": {
            "basic_1.5x_fp32_one_process": ratios["basic_rnn"] >= 1.5,
            "attention_4x_fp32_one_process": ratios["attention_rnn"] >= 4.0,
            "basic_1.5x_best": ratios[best["basic_rnn"]] >= 1.5,
            "attention_4x_best": ratios[best["attention_rnn"]] >= 4.0,
        },
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
