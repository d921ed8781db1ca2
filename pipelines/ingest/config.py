"""Ingest's names and knobs: the built-in defaults, the output file names, :class:`IngestConfig`
(one run's parameters, built by ``cli.parse_args``) and the Beam counter namespace every step
counts in (``pipeline.counter_mismatches`` reads the counters back).

The leaf of :mod:`pipelines.ingest`: every other module imports it, it imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apache_beam.metrics import Metrics

from modeling import cli as _cli
from pipelines.readers import Limits

NAMESPACE = "motif.ingest"
MUSIC21_PREFIX = "music21:"
# The built-in defaults equal params.yaml's ``ingest`` section (a run without it behaves alike).
DEFAULT_MAX_FILE_BYTES = 50_000_000
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_NUM_SHARDS = 2
DEFAULT_MAX_MEMORY_MB = 2048.0  # per parse child and file; the biggest real file needs ~60 MiB
DEFAULT_PARAMS = "params.yaml"
NOTESEQ_PREFIX = "notesequences"
QUARANTINE_FILE = "quarantine"
METRICS_FILE = "metrics.json"
DUPLICATE_EXAMPLES = 20  # "<dropped> == <kept>" pairs listed in metrics.json


# Bad command-line input, reported as one line with exit code 2: every motif CLI's one error type.
UsageError = _cli.UsageError


@dataclass(frozen=True)
class IngestConfig:
    """Every knob of one ingest run (all CLI parameters)."""

    corpus: str
    output: str
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    timeout_s: float = DEFAULT_TIMEOUT_S
    num_shards: int = DEFAULT_NUM_SHARDS
    max_memory_mb: float = DEFAULT_MAX_MEMORY_MB  # <= 0: no cap
    limits: Limits = field(default_factory=Limits)
    progress: bool = True
    metrics_copy: str | None = None  # --metrics: a second copy (with run time) for DVC
    reuse: str | None = None  # --reuse: an earlier output whose unchanged files are not re-parsed


def counter(name: str) -> Any:
    """Beam counter ``name`` in ingest's namespace (cross-checked against metrics.json)."""
    return Metrics.counter(NAMESPACE, name)
