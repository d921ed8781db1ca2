"""The ingest pipeline: :func:`build_pipeline` wires ``inputs`` and ``transforms`` to the Parquet
writers and ``accounting``; :func:`run` runs it, then checks metrics.json again (and against the
Beam counters). ``cli.main`` calls :func:`run`; tests call both directly.
"""

from __future__ import annotations

import json
import os
import posixpath
import sys
import time
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter

from pipelines.beam_io import WriteSortedParquet, pipeline_options, write_json
from pipelines.ingest.accounting import Account, check_accounting, row_stat
from pipelines.ingest.config import (
    METRICS_FILE,
    NAMESPACE,
    NOTESEQ_PREFIX,
    QUARANTINE_FILE,
    IngestConfig,
)
from pipelines.ingest.inputs import InputSpec, MatchInputs, is_remote
from pipelines.ingest.transforms import (
    CapSize,
    Dedupe,
    Parse,
    ReadBytes,
    Reuse,
    Summarise,
    close_progress,
    previous_pattern,
)
from pipelines.schema import NOTESEQ_SCHEMA, QUARANTINE_SCHEMA


def build_pipeline(
    pipeline: beam.Pipeline, spec: InputSpec, config: IngestConfig
) -> dict[str, beam.PCollection]:
    """Apply every step to ``pipeline``; returns the main PCollections (used by tests)."""
    corpus, output = config.corpus, config.output
    matched = pipeline | "MatchFiles" >> MatchInputs(spec)
    capped = matched.files | "CapSize" >> CapSize(corpus, spec.root, config.max_file_bytes)
    read = capped.files | "ReadBytes" >> ReadBytes(corpus, spec.root, config.max_file_bytes)
    unique = read.files | "Dedupe" >> Dedupe()
    pattern = previous_pattern(config.reuse)
    reused_outcomes: list[beam.PCollection] = []
    if pattern:
        reuse = unique.files | "Reuse" >> Reuse(pattern)
        to_parse = reuse.new
        reused_outcomes = [reuse.outcomes]
    else:
        to_parse = unique.files
    parsed = to_parse | "Parse" >> Parse(config)
    rows = parsed.tunes | "Summarise" >> Summarise()
    if pattern:
        rows = (rows, reuse.rows) | "WithReused" >> beam.Flatten()

    shards = rows | "WriteNoteSequences" >> WriteSortedParquet(
        posixpath.join(output, NOTESEQ_PREFIX), NOTESEQ_SCHEMA, config.num_shards, "id"
    )
    quarantine = (
        capped.quarantine,
        read.quarantine,
        parsed.quarantine,
    ) | "CollectQuarantine" >> beam.Flatten()
    quarantine_file = quarantine | "WriteQuarantine" >> WriteSortedParquet(
        posixpath.join(output, QUARANTINE_FILE),
        QUARANTINE_SCHEMA,
        1,
        ("source_path", "reason", "detail"),
        single_file=True,
    )
    stats = rows | "RowStats" >> beam.Map(row_stat)
    metrics = (
        (
            matched.outcomes,
            capped.outcomes,
            read.outcomes,
            unique.outcomes,
            parsed.outcomes,
            *reused_outcomes,
            stats,
        )
        | "CollectAccounting" >> beam.Flatten()
        | "Account" >> Account(corpus)
    )
    metrics_path = posixpath.join(output, METRICS_FILE)
    written_metrics = metrics | "WriteMetrics" >> beam.Map(
        lambda payload: write_json(metrics_path, payload)
    )
    return {
        "rows": rows,
        "quarantine": quarantine,
        "metrics": metrics,
        "shards": shards,
        "quarantine_file": quarantine_file,
        "metrics_file": written_metrics,
    }


def read_metrics(output: str) -> dict[str, Any]:
    """metrics.json of a finished run, through FileSystems."""
    with FileSystems.open(
        posixpath.join(output, METRICS_FILE), compression_type=CompressionTypes.UNCOMPRESSED
    ) as handle:
        return json.loads(handle.read().decode("utf-8"))


def counter_mismatches(result: Any, metrics: dict[str, Any]) -> list[str]:
    """Compare the committed Beam counters with metrics.json (empty when they agree)."""
    try:
        counters = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    except Exception:
        return []  # runner without metrics support
    committed: dict[str, int] = {}
    for counter in counters:
        value = counter.committed if counter.committed is not None else counter.attempted
        name = counter.key.metric.name
        committed[name] = committed.get(name, 0) + int(value or 0)
    if not committed:
        return []
    problems = []
    expected = {
        "matched": metrics["matched"],
        "parsed": metrics["parsed"],
        "duplicates": metrics["duplicates"],
        "tunes": metrics["tunes"],
    }
    for reason, count in metrics["quarantined_by_reason"].items():
        expected[f"quarantined_{reason}"] = count
    for name, value in expected.items():
        if committed.get(name, 0) != value:
            problems.append(f"counter {name}={committed.get(name, 0)} but metrics.json {value}")
    return problems


def run(
    config: IngestConfig,
    spec: InputSpec,
    beam_args: Sequence[str] = (),
    beam_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the pipeline to completion and return the (checked) metrics."""
    start = time.perf_counter()
    if not is_remote(config.output):
        os.makedirs(config.output, exist_ok=True)
    pipeline = beam.Pipeline(options=pipeline_options(beam_args, beam_params))
    build_pipeline(pipeline, spec, config)
    try:
        result = pipeline.run()
        result.wait_until_finish()
    finally:
        close_progress()
    metrics = read_metrics(config.output)
    check_accounting(metrics)
    for problem in counter_mismatches(result, metrics):
        print(f"ingest: warning: {problem}", file=sys.stderr)
    if config.metrics_copy:
        write_json(
            config.metrics_copy, {**metrics, "seconds": round(time.perf_counter() - start, 2)}
        )
    return metrics
