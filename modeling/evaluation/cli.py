"""The evaluation stage's command line and the run over every champion.

``python -m modeling.evaluate`` (dvc.yaml) and ``python -m modeling.evaluation`` both call
:func:`main`. The shared CLI idiom (:mod:`modeling.cli`): a usage error or an
:class:`~modeling.evaluation.settings.EvalError` is one stderr line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from modeling.cli import ArgumentParser, command
from modeling.evaluation.cache import ResultCache
from modeling.evaluation.champions import find_champions
from modeling.evaluation.core import evaluate_model
from modeling.evaluation.outputs import record_quality, write_outputs
from modeling.evaluation.sets import Sets
from modeling.evaluation.settings import DEFAULT_OUTPUT, EvalError, load_settings


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole stage; raises :class:`EvalError` for anything the user can fix."""
    started = time.perf_counter()
    settings = load_settings(args.params)
    overrides: dict[str, Any] = {}
    if args.examples_root:
        overrides["examples_root"] = Path(args.examples_root)
    if args.num_samples is not None:
        if args.num_samples < 1:
            raise EvalError(f"--num-samples must be >= 1, got {args.num_samples}")
        overrides["num_samples"] = args.num_samples
    if args.seed is not None:
        if args.seed < 0:
            raise EvalError(f"--seed must be >= 0, got {args.seed}")
        overrides["seed"] = args.seed
    if overrides:
        settings = replace(settings, **overrides)
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise EvalError(f"--output {output} exists and is not a directory")
    names = list(args.models) if args.models else list(settings.models)
    champions = find_champions(settings.alias, names)

    def say(message: str) -> None:
        if not args.quiet:
            print(f"evaluate: {message}", file=sys.stderr, flush=True)

    sets = Sets(settings.examples_root)
    cache = ResultCache(Path(args.cache), settings) if args.cache else None
    results = []
    for name, uri in champions:
        hit = cache.get(name, uri) if cache else None
        if hit is not None:
            say(f"{name}: unchanged model, data and settings; reusing its evaluation")
            results.append(hit)
            continue
        result = evaluate_model(name, uri, settings, sets, say)
        if cache:
            cache.put(name, uri, result)
        results.append(result)
    if cache:
        cache.prune({r.name for r in results})
    record_quality(results, say)
    evaluated = {r.name for r in results}
    missing = sorted(v for v in settings.variant_sets if v not in evaluated) if not names else []
    files = write_outputs(results, settings, missing, output)
    return {
        "variants": [r.name for r in results],
        "outputs": files,
        "seconds": round(time.perf_counter() - started, 2),
    }


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m modeling.evaluate",
        description="Evaluate every registered champion: held-out metrics, musical "
        "statistics of generated samples, conditioning adherence; writes a "
        "Markdown report, summary.json and plot CSVs.",
    )
    p.add_argument(
        "--output", default=DEFAULT_OUTPUT, help=f"report directory (default {DEFAULT_OUTPUT})"
    )
    p.add_argument(
        "--params",
        default=None,
        help="params file with an optional evaluate: section (default params.yaml if present)",
    )
    p.add_argument(
        "--models",
        nargs="+",
        default=None,
        metavar="NAME",
        help="registered model names to evaluate (default: every model with the alias)",
    )
    p.add_argument(
        "--examples-root",
        default=None,
        help="where example sets live (default evaluate.examples_root or data/examples)",
    )
    p.add_argument(
        "--num-samples",
        type=int,
        default=None,
        help="generated samples per variant and control request, e.g. 4",
    )
    p.add_argument("--seed", type=int, default=None, help="sampling seed, e.g. 1234")
    p.add_argument(
        "--cache",
        default=None,
        help="keep per-variant results here and reuse those whose model, data, settings and "
        "code are unchanged, e.g. data/reports/cache",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


@command("evaluate")
def main(argv: list[str] | None = None) -> int:
    """The stage; an :class:`EvalError` or a usage error becomes one line and exit 2
    (:func:`modeling.cli.command`)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    try:
        summary = run(args)
    except KeyboardInterrupt:
        print("evaluate: interrupted; the previous report is unchanged", file=sys.stderr)
        return 130
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
