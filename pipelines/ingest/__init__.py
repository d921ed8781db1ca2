"""Ingest (Apache Beam): corpus files or a music21 corpus source -> NoteSequence Parquet.

    python -m pipelines.ingest --corpus openewld --input ../shared/data/openewld/dataset \\
        --output data/ingest/openewld [--params params.yaml] [--max-file-bytes N] [--timeout-s S] \\
        [--max-notes N] [--max-memory-mb M] [--num-shards K] [beam options, e.g. --runner ...]

Every knob comes from the command line, else from ``params.yaml`` (``ingest`` and ``beam``
sections; read from the working directory by default, as ``pipelines.examples`` does), else from
the built-in defaults, which equal the shipped ``params.yaml``.

First stage of motif (see docs/ARCHITECTURE.md); ``pipelines.examples`` reads what it writes:

- ``notesequences-0000i-of-0000K.parquet``: one row per tune (``NOTESEQ_SCHEMA``), sorted by id in
  each shard, the shard picked by a stable hash of the id (byte-identical reruns);
- ``quarantine.parquet`` (``QUARANTINE_SCHEMA``): every file, or tune of a tunebook, that was
  dropped, with a reason code (``pipelines.readers.QUARANTINE_REASONS``) and the readers' errors;
- ``metrics.json``: matched, parsed, duplicates, quarantined (by reason), ignored (by reason:
  unsupported extension, symlink, symlink loop, broken symlink), tunes, notes, hours, rows by
  reader, fallback hops, the readers' log lines by kind. ``matched == parsed + duplicates +
  quarantined`` is checked when the accounting is combined (the pipeline fails otherwise) and
  again by the driver.

Symlinks under a local input folder are never followed: each is counted as ignored with its
reason, so a link can neither pull in files from outside the corpus nor, being byte-identical to
its target, displace the real file in ``Dedupe``.

Steps, one labelled ``PTransform`` each: ``MatchFiles`` (Beam fileio, recursive) -> ``CapSize`` ->
``ReadBytes`` (+ sha256) -> ``Dedupe`` (byte-identical files, the first relative path wins) ->
``Parse`` (``pipelines.readers`` chain in a time-limited child, ``pipelines.parse_worker``) ->
``Summarise`` (``pipelines.summary``) -> ``WriteNoteSequences`` / ``WriteQuarantine``
(``pipelines.beam_io.WriteSortedParquet``) and ``Account`` -> ``WriteMetrics``.

Files are only touched through Beam's ``fileio`` / ``FileSystems``, so the same pipeline runs on the
DirectRunner, Flink, Spark or Dataflow and reads gs:// etc. metrics.json is built from the data
(one accounting record per file, combined in the pipeline), which is exact on every runner; the
driver cross-checks it against the Beam counters when the runner reports committed counters.

Modules, in import order (each imports only those above it):

- ``config``: defaults, output names, :class:`IngestConfig`, :class:`UsageError`, Beam counters;
- ``accounting``: :class:`Outcome` / :class:`RowStat` records, :class:`Account`,
  :func:`check_accounting`;
- ``inputs``: ``--input`` -> :class:`InputSpec`, symlinks, :class:`MatchInputs`;
- ``transforms``: :class:`CapSize`, :class:`ReadBytes`, :class:`Dedupe`, :class:`Reuse`,
  :class:`Parse`, :class:`Summarise`;
- ``pipeline``: :func:`build_pipeline`, :func:`run`;
- ``cli``: flags and params.yaml, :func:`main` (``__main__`` runs it).

This package re-exports their public names, so ``from pipelines import ingest; ingest.run(...)``
works as it did when ingest was one module.
"""

from __future__ import annotations

import os

# The parse step forks reader processes that never use gRPC; gRPC's fork handlers (configured when
# gRPC is imported, so this must precede the Beam import) would only log "skipping fork()
# handlers" whenever a fork meets a busy gRPC thread. Off unless the caller set it. (The other
# import-time noise is quieted by ``pipelines/__init__``.)
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from pipelines.ingest.accounting import (
    SYMLINK_REASONS,
    Account,
    AccountFn,
    AccountingError,
    Outcome,
    RowStat,
    check_accounting,
)
from pipelines.ingest.cli import build_parser, main, parse_args, summary_line
from pipelines.ingest.config import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_MEMORY_MB,
    DEFAULT_NUM_SHARDS,
    DEFAULT_PARAMS,
    DEFAULT_TIMEOUT_S,
    DUPLICATE_EXAMPLES,
    METRICS_FILE,
    MUSIC21_PREFIX,
    NAMESPACE,
    NOTESEQ_PREFIX,
    QUARANTINE_FILE,
    IngestConfig,
    UsageError,
)
from pipelines.ingest.inputs import (
    InputSpec,
    Matched,
    MatchInputs,
    find_symlinks,
    music21_source,
    relative_path,
    resolve_input,
    symlink_reason,
)
from pipelines.ingest.pipeline import build_pipeline, counter_mismatches, read_metrics, run
from pipelines.ingest.transforms import (
    CapSize,
    Dedupe,
    FileBytes,
    Parse,
    ReadBytes,
    Reuse,
    Summarise,
    close_progress,
    previous_pattern,
    quarantine_row,
    summarise_row,
)
