"""``python -m pipelines.ingest``: flags and ``params.yaml`` -> :class:`IngestConfig`, then
``pipeline.run``. Bad input is one line on stderr and exit code 2; a failed run, exit code 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from modeling.cli import ArgumentParser, command
from pipelines.beam_io import removed_on_failure
from pipelines.ingest.config import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_MEMORY_MB,
    DEFAULT_NUM_SHARDS,
    DEFAULT_PARAMS,
    DEFAULT_TIMEOUT_S,
    IngestConfig,
    UsageError,
)
from pipelines.ingest.inputs import is_remote, resolve_input
from pipelines.ingest.pipeline import run
from pipelines.readers import Limits

# (flag, IngestConfig/Limits field, type, params.yaml:ingest key, built-in default)
_KNOBS: tuple[tuple[str, str, Any, str, Any], ...] = (
    ("--max-file-bytes", "max_file_bytes", "int", "max_file_bytes", DEFAULT_MAX_FILE_BYTES),
    ("--timeout-s", "timeout_s", "float", "timeout_s", DEFAULT_TIMEOUT_S),
    ("--num-shards", "num_shards", "int", "num_shards", DEFAULT_NUM_SHARDS),
    ("--max-notes", "max_notes", "int", "max_notes", Limits.max_notes),
    ("--max-memory-mb", "max_memory_mb", "float", "max_memory_mb", DEFAULT_MAX_MEMORY_MB),
    ("--min-qpm", "min_qpm", "float", "min_tempo_qpm", Limits.min_qpm),
    ("--max-qpm", "max_qpm", "float", "max_tempo_qpm", Limits.max_qpm),
    ("--max-duration-s", "max_duration_s", "float", "max_duration_s", Limits.max_duration_s),
    (
        "--max-unzipped-bytes",
        "max_unzipped_bytes",
        "int",
        "max_unzipped_bytes",
        Limits.max_unzipped_bytes,
    ),
    ("--max-zip-ratio", "max_zip_ratio", "float", "max_zip_ratio", Limits.max_zip_ratio),
)
_HELP = {
    "timeout_s": "per-file parse time limit in seconds (<= 0: no limit, parse in-process)",
    "max_file_bytes": "larger files are quarantined unread",
    "num_shards": "number of notesequences-*.parquet shards",
    "max_notes": "files with more notes (all tunes together) are quarantined as too_large",
    "max_memory_mb": "memory (MiB) a parse child may add for one file, else quarantined as "
    "memory (<= 0: no cap)",
}
_MAY_BE_OFF = ("timeout_s", "max_memory_mb")  # <= 0 switches these limits off


def build_parser() -> argparse.ArgumentParser:
    """The CLI; unknown options are Beam pipeline options and pass through."""
    parser = ArgumentParser(
        prog="python -m pipelines.ingest",
        description="Ingest a corpus into NoteSequence Parquet (unknown options go to Beam).",
    )
    parser.add_argument("--corpus", required=True, help="corpus name used in ids, e.g. openewld")
    parser.add_argument(
        "--input",
        required=True,
        help="directory (searched recursively, any Beam filesystem), music21:chorales, "
        "or music21:<corpus folder> such as music21:essenFolksong",
    )
    parser.add_argument("--output", required=True, help="output directory")
    for flag, name, kind, key, default in _KNOBS:
        parser.add_argument(
            flag,
            dest=name,
            type=int if kind == "int" else float,
            default=None,
            help=f"{_HELP.get(name, '')} (params.yaml ingest.{key}; default {default})".strip(),
        )
    parser.add_argument(
        "--params",
        help="defaults from this file's 'ingest' and 'beam' sections (default: ./params.yaml "
        "when present, else the built-in defaults, which match the shipped params.yaml)",
    )
    parser.add_argument("--metrics", help="also write the metrics (plus 'seconds') to this path")
    parser.add_argument(
        "--reuse",
        help="an earlier output directory of this corpus (often --output itself): files whose "
        "path and sha256 are unchanged keep their rows there and are not parsed again",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


def _load_params(path: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ingest section, beam section) of a params file.

    Without ``--params``, ``./params.yaml`` is read when it exists (a hand run in the project gets
    the same limits as ``dvc repro``); elsewhere the built-in defaults apply.
    """
    if path is None:
        if not os.path.isfile(DEFAULT_PARAMS):
            return {}, {}
        path = DEFAULT_PARAMS
    from pipelines.params import ParamsError, load_params

    try:
        params = load_params(path)
    except ParamsError as exc:
        raise UsageError(str(exc)) from exc
    ingest_params = params.get("ingest") or {}
    known = {key for _, _, _, key, _ in _KNOBS}
    unknown = sorted(set(ingest_params) - known)
    if unknown:
        raise UsageError(
            f"{path}: unknown ingest key(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
        )
    return ingest_params, params.get("beam") or {}


def parse_args(argv: Sequence[str]) -> tuple[IngestConfig, str, list[str], dict[str, Any]]:
    """(config, --input value, pass-through Beam args, beam params); UsageError for bad values.

    Precedence for every knob: command line, then ``--params`` (``ingest`` section), then the
    built-in default.
    """
    args, beam_args = build_parser().parse_known_args(list(argv))
    ingest_params, beam_params = _load_params(args.params)
    values: dict[str, Any] = {}
    for flag, name, kind, key, default in _KNOBS:
        value = getattr(args, name)
        if value is None:
            value = ingest_params.get(key, default)
        try:
            value = int(value) if kind == "int" else float(value)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{flag} / ingest.{key}: not a number: {value!r}") from exc
        if name not in _MAY_BE_OFF and not value > 0:
            raise UsageError(f"{flag} / ingest.{key} must be > 0, got {value}")
        values[name] = value
    corpus = args.corpus.strip()
    if not corpus or "/" in corpus or "#" in corpus:
        raise UsageError(f"--corpus must be a plain name, got {args.corpus!r}")
    if values["min_qpm"] >= values["max_qpm"]:
        raise UsageError("--min-qpm must be below --max-qpm")
    output = args.output if is_remote(args.output) else os.path.abspath(args.output)
    limits = Limits(
        min_qpm=values["min_qpm"],
        max_qpm=values["max_qpm"],
        max_duration_s=values["max_duration_s"],
        max_unzipped_bytes=values["max_unzipped_bytes"],
        max_zip_ratio=values["max_zip_ratio"],
        max_notes=values["max_notes"],
    )
    config = IngestConfig(
        corpus=corpus,
        output=output.rstrip("/"),
        max_file_bytes=values["max_file_bytes"],
        timeout_s=values["timeout_s"],
        num_shards=values["num_shards"],
        max_memory_mb=values["max_memory_mb"],
        limits=limits,
        progress=not args.no_progress,
        metrics_copy=args.metrics,
        reuse=args.reuse,
    )
    return config, args.input, beam_args, beam_params


def summary_line(metrics: dict[str, Any], seconds: float, output: str) -> str:
    reasons = ", ".join(f"{k} {v}" for k, v in metrics["quarantined_by_reason"].items())
    return (
        f"ingest {metrics['corpus']}: matched {metrics['matched']}, parsed {metrics['parsed']} "
        f"({metrics['tunes']} tunes, {metrics['notes']} notes, {metrics['hours']:.2f} h)"
        + (f" ({metrics['reused']} reused)" if metrics.get("reused") else "")
        + f", duplicates {metrics['duplicates']}, quarantined {metrics['quarantined']}"
        + (f" ({reasons})" if reasons else "")
        + (
            f", tunes quarantined {metrics['tunes_quarantined']}"
            if metrics["tunes_quarantined"]
            else ""
        )
        + f" -> {output} in {seconds:.1f} s"
    )


@command("ingest", template="{prog}: error: {message}")
def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    config, input_value, beam_args, beam_params = parse_args(argv)
    spec = resolve_input(input_value)
    start = time.perf_counter()
    try:
        with removed_on_failure(config.output):  # a failed run leaves no new output folder
            metrics = run(config, spec, beam_args, beam_params)
    except Exception as exc:
        # Beam wraps worker errors in the whole remote traceback; its last line names the cause.
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        message = lines[-1][:500] if lines else type(exc).__name__
        print(f"ingest: failed: {message}", file=sys.stderr)
        return 1
    print(summary_line(metrics, time.perf_counter() - start, config.output))
    return 0
