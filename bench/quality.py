"""Where every variant stands against the quality bar (issue 12): one JSON line per variant.

    .venv/bin/python -m bench.quality --summary data/reports/summary.json
    .venv/bin/python -m bench.quality --params params.yaml [--examples-root data/examples]
        [--output bench/out/quality] [--models a b ...] [--num-samples N]

With ``--summary`` it reads a report the evaluate stage already wrote; otherwise it runs the stage
(``python -m modeling.evaluate``, timed as its own process, against ``$MLFLOW_TRACKING_URI``)
into ``--output`` first. Each line: eval loss and perplexity, the set's n-gram (Kneser-Ney) and
uniform baselines, every criterion of :mod:`modeling.quality` with its value, bar and pass/fail,
the overall pass, train seconds and time-to-quality (seconds until the eval loss stayed within
2 % of its final value: wall clock from MLflow's metric timestamps and the train loop's own
clock; null where the training run did not record it). The last line sums up the run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.common import timed
from modeling.cli import ArgumentParser, UsageError, command

BASELINE_KEYS = ("uniform_random", "ngram_baseline")


def lines(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per variant of a ``summary.json`` (baseline entries are folded in)."""
    uniform = summary.get("uniform_random") or {}
    out = []
    for name, e in sorted(summary.items()):
        if name in BASELINE_KEYS:
            continue
        q = e.get("quality") or {}
        ngram = e.get("ngram") or {}
        training = e.get("training") or {}
        out.append(
            {
                "variant": name,
                "family": e.get("family"),
                "example_set": e.get("example_set"),
                "eval_loss": e["eval"]["loss"],
                "eval_perplexity": e["eval"]["perplexity"],
                "ngram_perplexity": ngram.get("perplexity"),
                "ngram_order": ngram.get("order"),
                "uniform_perplexity": (uniform.get(e.get("example_set")) or {}).get("perplexity"),
                "quality_pass": q.get("pass"),
                "criteria": {
                    k: {
                        f: c.get(f) for f in ("value", "threshold", "low", "high", "pass") if f in c
                    }
                    for k, c in (q.get("criteria") or {}).items()
                },
                "train_seconds": training.get("train_seconds"),
                "time_to_quality_wall_s": training.get("wall_s"),
                "time_to_quality_train_s": training.get("train_s"),
                "time_to_quality_step": training.get("step"),
            }
        )
    return out


@command("bench")
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m bench.quality", description=__doc__.split("\n")[0])
    p.add_argument("--summary", default=None, help="read this summary.json instead of evaluating")
    p.add_argument("--params", default="params.yaml", help="params file for the evaluate stage")
    p.add_argument("--examples-root", default=None, help="example sets (default from params)")
    p.add_argument("--output", default="bench/out/quality", help="report directory to write")
    p.add_argument("--models", nargs="+", default=None, metavar="NAME")
    p.add_argument("--num-samples", type=int, default=None)
    args = p.parse_args(argv)
    wall = None
    if args.summary:
        path = Path(args.summary)
    else:
        command = [
            sys.executable,
            "-m",
            "modeling.evaluate",
            "--params",
            str(Path(args.params).resolve()),
            "--output",
            str(Path(args.output).resolve()),
            "--quiet",
        ]
        if args.examples_root:
            command += ["--examples-root", str(Path(args.examples_root).resolve())]
        if args.models:
            command += ["--models", *args.models]
        if args.num_samples is not None:
            command += ["--num-samples", str(args.num_samples)]
        wall, _, _ = timed(command)
        path = Path(args.output) / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if not isinstance(summary, dict):
        raise UsageError(f"{path} is not an evaluate summary.json")
    try:
        records = lines(summary)
    except (KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"{path} is not an evaluate summary.json ({exc})") from None
    for r in records:
        print(json.dumps(r))
    print(
        json.dumps(
            {
                "variants": len(records),
                "passing": sum(bool(r["quality_pass"]) for r in records),
                "evaluate_wall_s": wall,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
