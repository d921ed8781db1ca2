"""Time to the quality bar by batch size: why the default profile trains at small batches.

    .venv/bin/python -m bench.batch_size [--variant basic_rnn] [--examples data/examples/melody]
        [--batches 64 16] [--examples-per-run 110000] [--lr 0.005] [--out bench/out/batch_size]

On 2 CPU cores an LSTM step's cost grows with its batch while the number of *steps* an LSTM
needs to leave its loss plateau barely does (the melody models predict only "no event" until
step ~650-850 at batch 16, 32 and 64 alike). So each run here sees the same number of examples
(``--examples-per-run``, steps = that / batch), and the figure that matters is the wall time
until the eval perplexity first reaches the n-gram bar of the quality criteria (0.95 x the
Kneser-Ney baseline fitted on the same set, :func:`modeling.ngram.ngram_baseline`).

Each run is ``modeling.train`` itself in its own process (``--no-mlflow``, evaluations every
``--eval-every`` steps); the first batch size is the baseline, measured in the same invocation.
The last line printed is one JSON object: per batch size the wall and train seconds, events/s,
final and best eval perplexity, the step and train seconds at which the bar was reached (null if
never), and ``speedup_to_bar`` = baseline's train seconds to the bar / this run's.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

from bench.common import REPO, timed
from modeling.cli import ArgumentParser, command


def _bar(examples: Path, variant: str) -> dict[str, Any]:
    """The n-gram baseline of the set and the perplexity the quality bar asks for."""
    from modeling.data import ExampleSet
    from modeling.ngram import ngram_baseline
    from modeling.quality import NGRAM_MARGIN
    from modeling.variants import get_variant

    es = ExampleSet.load(examples)
    vocabulary = int(get_variant(variant).encoding.num_classes)
    ngram = ngram_baseline(es.train, es.eval, vocabulary)
    if ngram is None:
        raise SystemExit(f"bench: {examples} has no train labels to fit the n-gram on")
    return {"ngram_perplexity": ngram["perplexity"], "bar": NGRAM_MARGIN * ngram["perplexity"]}


def _curve(run_dir: Path) -> list[dict[str, float]]:
    """Eval rows of the run's loss curve with the train seconds of the same step."""
    rows = list(csv.DictReader((run_dir / "loss_curve.csv").open()))
    seconds = {r["step"]: float(r["seconds"]) for r in rows if r["split"] == "train"}
    return [
        {
            "step": int(r["step"]),
            "perplexity": float(r["perplexity"]),
            "train_s": seconds[r["step"]],
        }
        for r in rows
        if r["split"] == "eval"
    ]


def run_one(args: Any, batch: int, bar: float) -> dict[str, Any]:
    steps = max(1, args.examples_per_run // batch)
    out = Path(args.out) / f"b{batch}"
    hparams = f"batch_size={batch},rnn_layer_sizes=[128,128],learning_rate={args.lr}"
    hparams += ",dropout_keep_prob=1.0"
    command_line = [
        sys.executable, "-m", "modeling.train", "--variant", args.variant,
        "--examples", str(args.examples), "--output", str(out), "--num-steps", str(steps),
        "--eval-every", str(args.eval_every), "--hparams", hparams, "--precision", "auto",
        "--no-mlflow", "--quiet",
    ]  # fmt: skip
    wall, cpu, _ = timed(command_line)
    metrics = json.loads((out / "metrics.json").read_text())
    curve = _curve(out)
    hit = next((c for c in curve if c["perplexity"] <= bar), None)
    return {
        "batch_size": batch,
        "steps": steps,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "train_s": round(metrics["throughput"]["train_seconds"], 1),
        "events_per_sec": round(metrics["throughput"]["events_per_sec"]),
        "steps_per_sec": round(metrics["throughput"]["steps_per_sec"], 2),
        "final_eval_perplexity": round(curve[-1]["perplexity"], 4),
        "best_eval_perplexity": round(min(c["perplexity"] for c in curve), 4),
        "bar_step": hit["step"] if hit else None,
        "bar_train_s": round(hit["train_s"], 1) if hit else None,
    }


@command("bench")
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m bench.batch_size", description=__doc__.split("\n")[0])
    p.add_argument("--variant", default="basic_rnn")
    p.add_argument("--examples", type=Path, default=REPO / "data" / "examples" / "melody")
    p.add_argument("--batches", type=int, nargs="+", default=[64, 16], metavar="B")
    p.add_argument("--examples-per-run", type=int, default=110_000)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--lr", type=float, default=0.005)
    p.add_argument("--out", default="bench/out/batch_size")
    args = p.parse_args(argv)
    if not (args.examples / "meta.json").is_file():
        p.error(f"--examples {args.examples} is not an example set (run `make run` first)")
    if any(b < 1 for b in args.batches) or args.examples_per_run < max(args.batches):
        p.error("--batches must be >= 1 and --examples-per-run at least the largest batch")
    shutil.rmtree(args.out, ignore_errors=True)  # fresh runs, never resumed ones
    bar = _bar(args.examples, args.variant)
    print(f"n-gram perplexity {bar['ngram_perplexity']:.3f}, bar {bar['bar']:.3f}", flush=True)
    runs = []
    for batch in args.batches:
        r = run_one(args, batch, bar["bar"])
        runs.append(r)
        print(json.dumps(r), flush=True)
    base = runs[0]["bar_train_s"]
    for r in runs:
        t = r["bar_train_s"]
        r["speedup_to_bar"] = round(base / t, 2) if base and t else None
        ratio = runs[0]["events_per_sec"] / max(r["events_per_sec"], 1)
        r["events_per_sec_vs_baseline"] = round(1 / ratio, 2) if math.isfinite(ratio) else None
    print(json.dumps({"variant": args.variant, "baseline_batch": args.batches[0], **bar,
                      "runs": runs}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
