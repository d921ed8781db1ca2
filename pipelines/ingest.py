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
"""

from __future__ import annotations

import os

# The parse step forks reader processes that never use gRPC; gRPC's fork handlers (configured when
# gRPC is imported, so this must precede the Beam import) would only log "skipping fork()
# handlers" whenever a fork meets a busy gRPC thread. Off unless the caller set it. (The other
# import-time noise is quieted by ``pipelines/__init__``.)
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import argparse
import glob
import hashlib
import json
import posixpath
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes, FileMetadata
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from note_seq.protobuf import music_pb2

from pipelines.beam_io import (
    WriteSortedParquet,
    escape_glob,
    pipeline_options,
    removed_on_failure,
    write_json,
)
from pipelines.parse_worker import ParseWorker
from pipelines.readers import SUPPORTED_EXTENSIONS, Limits
from pipelines.schema import NOTESEQ_SCHEMA, QUARANTINE_SCHEMA
from pipelines.summary import summarise

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


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit code 2."""


# --------------------------------------------------------------------------------------------
# Records passed between steps


@dataclass(frozen=True)
class FileBytes:
    """A matched file's content; ``relpath`` (relative to the corpus root) names it in ids."""

    relpath: str
    size: int
    sha256: str
    data: bytes


@dataclass(frozen=True)
class Outcome:
    """One accounting record: a file entered (``matched``/``ignored``) or left the pipeline."""

    status: str  # matched | ignored | parsed | duplicate | quarantined
    reason: str = ""  # quarantine reason; ignored: the extension, or a SYMLINK_REASONS code
    fallbacks: tuple[str, ...] = ()  # reader hops "a->b"
    extension_mismatch: bool = False
    tune_failures: tuple[str, ...] = ()  # reasons of quarantined tunes of a parsed file
    note: str = ""  # duplicates: "<dropped> == <kept>"
    reused: bool = False  # parsed: rows taken unchanged from an earlier run (--reuse)
    log_messages: tuple[tuple[str, int], ...] = ()  # the readers' log lines, by kind


@dataclass(frozen=True)
class RowStat:
    """What the accounting needs from one written row."""

    reader: str
    notes: int
    total_time_us: int


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


@dataclass(frozen=True)
class InputSpec:
    """Where the files are: Beam file patterns and the root their relative paths start from."""

    root: str
    patterns: tuple[str, ...]
    description: str
    walk_root: str | None = None  # a local folder matched recursively: scanned for symlinks


def _counter(name: str) -> Any:
    return Metrics.counter(NAMESPACE, name)


def quarantine_row(
    corpus: str, relpath: str, sha256: str | None, size: int | None, reason: str, detail: str
) -> dict[str, Any]:
    """A ``QUARANTINE_SCHEMA`` row, and its counter."""
    _counter(f"quarantine_rows_{reason}").inc()
    return {
        "corpus": corpus,
        "source_path": relpath,
        "sha256": sha256,
        "size_bytes": size,
        "reason": reason,
        "detail": detail,
    }


# --------------------------------------------------------------------------------------------
# Inputs


def _is_remote(path: str) -> bool:
    return "://" in path


def _music21_corpus_root() -> str:
    from music21 import common

    return str(common.getCorpusFilePath())


def music21_source(name: str) -> InputSpec:
    """``music21:chorales`` (the chorales iterator, repeats included), a corpus sub-folder, or
    files in it (a path or glob such as ``essenFolksong/ballad*.abc``)."""
    from music21 import corpus

    root = _music21_corpus_root()
    if name == "chorales":
        paths = []
        for work in corpus.chorales.Iterator(returnType="filename"):
            found = corpus.getWork(work)
            # music21's own rule (corpus.parse): the first match when a name is ambiguous.
            paths.append(str(found[0] if isinstance(found, list) else found))
        return InputSpec(root, tuple(escape_glob(p) for p in paths), "music21 chorales")
    folder = os.path.normpath(os.path.join(root, name))
    if not name or folder == root or not folder.startswith(root + os.sep):
        raise UsageError(f"unknown music21 corpus source: {MUSIC21_PREFIX}{name}")
    if any(ch in name for ch in "*?[") or os.path.isfile(folder):
        # A file or a glob inside the bundled corpus, e.g. music21:essenFolksong/ballad*.abc
        matches = sorted(glob.glob(folder))
        if not matches:
            raise UsageError(f"input not found: {MUSIC21_PREFIX}{name} (nothing matches {folder})")
        return InputSpec(root, tuple(escape_glob(m) for m in matches), f"music21 corpus {name}")
    if not os.path.isdir(folder):
        raise UsageError(f"input not found: {MUSIC21_PREFIX}{name} (no folder {folder})")
    return InputSpec(root, (escape_glob(folder) + "/**",), f"music21 corpus {name}", folder)


def resolve_input(value: str) -> InputSpec:
    """Turn ``--input`` into file patterns; a missing path is a :class:`UsageError`."""
    if value.startswith(MUSIC21_PREFIX):
        return music21_source(value[len(MUSIC21_PREFIX) :])
    path = value if _is_remote(value) else os.path.abspath(value)
    path = path.rstrip("/") or "/"
    try:
        exists = FileSystems.exists(path)
    except Exception as exc:  # e.g. an unknown scheme or missing credentials
        raise UsageError(f"cannot access input {value}: {exc}") from exc
    if not exists:
        raise UsageError(f"input not found: {value}")
    if not _is_remote(path) and os.path.isfile(path):
        return InputSpec(posixpath.dirname(path), (escape_glob(path),), path)
    return InputSpec(path, (escape_glob(path) + "/**",), path, None if _is_remote(path) else path)


def relative_path(path: str, root: str) -> str:
    """Path relative to the corpus root, '/'-separated (stable across machines)."""
    prefix = root.rstrip("/") + "/"
    rel = path[len(prefix) :] if path.startswith(prefix) else posixpath.basename(path)
    return rel.replace(os.sep, "/")


# --------------------------------------------------------------------------------------------
# Steps


SYMLINK_REASONS = ("symlink", "symlink_loop", "symlink_broken")


def symlink_reason(path: str) -> str:
    """Why a symlink is ignored: it loops, points nowhere, or is simply a link."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return "symlink_broken"
    except OSError:  # ELOOP, but also any other link that cannot be resolved
        return "symlink_loop"
    return "symlink"


def find_symlinks(root: str) -> list[str]:
    """Every symlink under ``root`` (to files or folders), never following one."""
    found = []
    for folder, dirs, files in os.walk(root):  # os.walk does not descend into linked folders
        found.extend(
            os.path.join(folder, name)
            for name in dirs + files
            if os.path.islink(os.path.join(folder, name))
        )
    return sorted(found)


class _SymlinkOutcomesFn(beam.DoFn):
    """One ``ignored`` outcome per symlink under a local input folder (Beam lists links to files
    as if they were files, and silently skips loops, broken links and linked folders)."""

    def process(self, root: str) -> Iterator[Outcome]:
        for path in find_symlinks(root):
            _counter("ignored").inc()
            yield Outcome("ignored", reason=symlink_reason(path))


class _ClassifyMatches(beam.DoFn):
    """Keep files with a supported extension; account for every file seen (symlinks are
    accounted for by ``_SymlinkOutcomesFn``)."""

    def __init__(self, local: bool) -> None:
        self._local = local

    def process(self, meta: FileMetadata) -> Iterator[Any]:
        if self._local and os.path.islink(meta.path):
            return
        ext = posixpath.splitext(meta.path)[1].lower()
        if ext in SUPPORTED_EXTENSIONS:
            _counter("matched").inc()
            yield beam.pvalue.TaggedOutput("outcomes", Outcome("matched"))
            yield meta
        else:
            _counter("ignored").inc()
            yield beam.pvalue.TaggedOutput("outcomes", Outcome("ignored", reason=ext or "none"))


class Matched(NamedTuple):
    """``MatchInputs``' outputs: file metadata to ingest, and one accounting record per entry."""

    files: beam.PCollection
    outcomes: beam.PCollection


class MatchInputs(beam.PTransform):
    """Match the input patterns (recursively) with Beam fileio; outputs ``files``, ``outcomes``."""

    def __init__(self, spec: InputSpec) -> None:
        super().__init__()
        self._spec = spec

    def expand(self, pbegin: beam.pvalue.PBegin) -> Matched:
        allow = fileio.EmptyMatchTreatment.ALLOW
        if len(self._spec.patterns) == 1:
            metas = pbegin | "Match" >> fileio.MatchFiles(self._spec.patterns[0], allow)
        else:
            metas = (
                pbegin
                | "Patterns" >> beam.Create(list(self._spec.patterns))
                | "Match" >> fileio.MatchAll(allow)
            )
        walk_root = self._spec.walk_root
        classified = metas | "Classify" >> beam.ParDo(
            _ClassifyMatches(walk_root is not None)
        ).with_outputs("outcomes", main="files")
        if walk_root is None:
            return Matched(classified.files, classified.outcomes)
        links = (
            pbegin
            | "SymlinkRoot" >> beam.Create([walk_root])
            | "FindSymlinks" >> beam.ParDo(_SymlinkOutcomesFn())
        )
        outcomes = (classified.outcomes, links) | "WithSymlinks" >> beam.Flatten()
        return Matched(classified.files, outcomes)


class _CapSizeFn(beam.DoFn):
    def __init__(self, corpus: str, root: str, max_bytes: int) -> None:
        self._corpus, self._root, self._max = corpus, root, max_bytes

    def process(self, meta: FileMetadata) -> Iterator[Any]:
        size = int(meta.size_in_bytes)
        if 0 < size <= self._max:
            yield meta
            return
        reason = "empty" if size == 0 else "too_large"
        detail = f"{size} bytes" + ("" if size == 0 else f" > --max-file-bytes {self._max}")
        rel = relative_path(meta.path, self._root)
        _counter(f"quarantined_{reason}").inc()
        yield beam.pvalue.TaggedOutput(
            "quarantine", quarantine_row(self._corpus, rel, None, size, reason, detail)
        )
        yield beam.pvalue.TaggedOutput("outcomes", Outcome("quarantined", reason=reason))


class CapSize(beam.PTransform):
    """Quarantine empty and over-cap files from their metadata, before reading a byte."""

    def __init__(self, corpus: str, root: str, max_bytes: int) -> None:
        super().__init__()
        self._args = (corpus, root, max_bytes)

    def expand(self, metas: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return metas | "Check" >> beam.ParDo(_CapSizeFn(*self._args)).with_outputs(
            "quarantine", "outcomes", main="files"
        )


class _ReadFn(beam.DoFn):
    def __init__(self, corpus: str, root: str, max_bytes: int) -> None:
        self._corpus, self._root, self._max = corpus, root, max_bytes

    def process(self, readable: fileio.ReadableFile) -> Iterator[Any]:
        rel = relative_path(readable.metadata.path, self._root)
        try:
            with readable.open(compression_type=CompressionTypes.UNCOMPRESSED) as handle:
                data = handle.read(self._max + 1)  # bounded even if the file grew since matching
        except Exception as exc:
            reason, detail, size = "unreadable", f"{type(exc).__name__}: {exc}", None
        else:
            if len(data) <= self._max:
                _counter("bytes_read").inc(len(data))
                yield FileBytes(rel, len(data), hashlib.sha256(data).hexdigest(), data)
                return
            reason, size = "too_large", len(data)
            detail = f"more than --max-file-bytes {self._max} when read"
        _counter(f"quarantined_{reason}").inc()
        yield beam.pvalue.TaggedOutput(
            "quarantine", quarantine_row(self._corpus, rel, None, size, reason, detail)
        )
        yield beam.pvalue.TaggedOutput("outcomes", Outcome("quarantined", reason=reason))


class ReadBytes(beam.PTransform):
    """Read each file through fileio (``ReadMatches``) and hash it."""

    def __init__(self, corpus: str, root: str, max_bytes: int) -> None:
        super().__init__()
        self._args = (corpus, root, max_bytes)

    def expand(self, metas: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return (
            metas
            | "ReadMatches" >> fileio.ReadMatches()
            | "ReadAndHash"
            >> beam.ParDo(_ReadFn(*self._args)).with_outputs("quarantine", "outcomes", main="files")
        )


class _KeepFirstFn(beam.DoFn):
    def process(self, element: tuple[str, Iterable[FileBytes]]) -> Iterator[Any]:
        _, group = element
        ordered = sorted(group, key=lambda f: f.relpath)
        yield ordered[0]
        for duplicate in ordered[1:]:
            _counter("duplicates").inc()
            note = f"{duplicate.relpath} == {ordered[0].relpath}"
            yield beam.pvalue.TaggedOutput("outcomes", Outcome("duplicate", note=note))


class Dedupe(beam.PTransform):
    """Drop byte-identical files, keeping the first by sorted relative path (deterministic)."""

    def expand(self, files: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return (
            files
            | "KeyBySha256" >> beam.Map(lambda f: (f.sha256, f))
            | "GroupBySha256" >> beam.GroupByKey()
            | "KeepFirst" >> beam.ParDo(_KeepFirstFn()).with_outputs("outcomes", main="files")
        )


_PROGRESS: Any = None
_PROGRESS_LOCK = threading.Lock()


def _tick_progress(corpus: str) -> None:
    """Count parsed files on stderr (one bar per worker process)."""
    global _PROGRESS
    with _PROGRESS_LOCK:
        if _PROGRESS is None:
            from tqdm import tqdm

            _PROGRESS = tqdm(
                desc=f"ingest {corpus}", unit=" files", file=sys.stderr, mininterval=0.5
            )
        _PROGRESS.update(1)


def close_progress() -> None:
    """Finish this process's progress bar (the driver calls it once the pipeline is done)."""
    global _PROGRESS
    with _PROGRESS_LOCK:
        if _PROGRESS is not None:
            _PROGRESS.close()
            _PROGRESS = None


class _ParseFn(beam.DoFn):
    """Reader chain per file in a time-limited child; rows, quarantine rows and accounting."""

    def __init__(self, config: IngestConfig) -> None:
        self._config = config
        self._worker: ParseWorker | None = None

    def setup(self) -> None:
        self._worker = ParseWorker(
            self._config.timeout_s, self._config.limits, max_memory_mb=self._config.max_memory_mb
        )
        self._worker.start()

    def teardown(self) -> None:
        if self._worker is not None:
            self._worker.close()

    def process(self, item: FileBytes) -> Iterator[Any]:
        corpus = self._config.corpus
        if self._worker is None:
            self.setup()
        assert self._worker is not None
        result = self._worker.parse(item.data, item.relpath)
        if self._config.progress:
            _tick_progress(corpus)
        for hop in result.fallbacks:
            _counter(f"fallback_{hop.replace('->', '_to_')}").inc()
        log_messages = tuple(result.log_messages.items())
        if result.extension_mismatch and result.reason is None:
            _counter("extension_mismatch").inc()
        if result.reason is not None:
            _counter(f"quarantined_{result.reason}").inc()
            yield beam.pvalue.TaggedOutput(
                "quarantine",
                quarantine_row(
                    corpus, item.relpath, item.sha256, item.size, result.reason, result.detail
                ),
            )
            yield beam.pvalue.TaggedOutput(
                "outcomes",
                Outcome(
                    "quarantined",
                    reason=result.reason,
                    fallbacks=tuple(result.fallbacks),
                    log_messages=log_messages,
                ),
            )
            return
        for failure in result.failures:
            _counter("tunes_quarantined").inc()
            yield beam.pvalue.TaggedOutput(
                "quarantine",
                quarantine_row(
                    corpus, item.relpath, item.sha256, item.size, failure.reason, failure.detail
                ),
            )
        for tune in result.tunes:
            sequence = music_pb2.NoteSequence.FromString(tune.sequence)
            tune_id = f"{corpus}/{item.relpath}#{tune.index}"
            sequence.id = tune_id
            sequence.filename = item.relpath
            sequence.collection_name = corpus
            _counter("tunes").inc()
            yield {
                "id": tune_id,
                "corpus": corpus,
                "source_path": item.relpath,
                "tune_index": tune.index,
                "sha256": item.sha256,
                "reader": tune.reader,
                "note_sequence": sequence.SerializeToString(),
                "fallbacks": list(tune.fallbacks),
            }
        _counter("parsed").inc()
        yield beam.pvalue.TaggedOutput(
            "outcomes",
            Outcome(
                "parsed",
                fallbacks=tuple(result.fallbacks),
                extension_mismatch=result.extension_mismatch,
                tune_failures=tuple(f.reason for f in result.failures),
                log_messages=log_messages,
            ),
        )


class Parse(beam.PTransform):
    """Reader chain (``pipelines.readers``) with the per-file time limit; outputs ``tunes``,
    ``quarantine``, ``outcomes``."""

    def __init__(self, config: IngestConfig) -> None:
        super().__init__()
        self._config = config

    def expand(self, files: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return files | "ReaderChain" >> beam.ParDo(_ParseFn(self._config)).with_outputs(
            "quarantine", "outcomes", main="tunes"
        )


class _ReuseFn(beam.DoFn):
    """Per (path, sha256): earlier rows if this exact file was parsed before, else the file."""

    def process(self, element: tuple[tuple[str, str], dict[str, list[Any]]]) -> Iterator[Any]:
        _, groups = element
        files, previous = groups["files"], groups["previous"]
        # No files: the file is gone from the corpus, and its old rows go with it.
        if files and not previous:
            yield from files
        elif files:
            _counter("reused").inc()
            _counter("parsed").inc()
            for row in sorted(previous, key=lambda r: r["tune_index"]):
                _counter("tunes").inc()
                yield beam.pvalue.TaggedOutput("rows", row)
            yield beam.pvalue.TaggedOutput("outcomes", Outcome("parsed", reused=True))


class Reuse(beam.PTransform):
    """Split deduplicated files into ``new`` ones (to parse) and ``rows`` of an earlier run for
    files whose relative path and sha256 are unchanged, so re-ingesting a grown corpus (or an
    inbox) parses only what is new."""

    def __init__(self, previous_pattern: str) -> None:
        super().__init__()
        self._pattern = previous_pattern

    def expand(self, files: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        previous = (
            files.pipeline
            | "ReadPrevious" >> beam.io.ReadFromParquet(self._pattern)
            | "KeyPrevious" >> beam.Map(lambda r: ((r["source_path"], r["sha256"]), r))
        )
        keyed = files | "KeyFiles" >> beam.Map(lambda f: ((f.relpath, f.sha256), f))
        return (
            {"files": keyed, "previous": previous}
            | "Join" >> beam.CoGroupByKey()
            | "Choose" >> beam.ParDo(_ReuseFn()).with_outputs("rows", "outcomes", main="new")
        )


def previous_pattern(reuse: str | None) -> str | None:
    """The NoteSequence shards of an earlier run at ``reuse``, if there are any."""
    if not reuse:
        return None
    pattern = posixpath.join(reuse.rstrip("/"), f"{NOTESEQ_PREFIX}-*.parquet")
    try:
        found = FileSystems.match([pattern])[0].metadata_list
    except Exception:  # an unreadable location simply means nothing to reuse
        return None
    return pattern if found else None


def summarise_row(row: dict[str, Any]) -> dict[str, Any]:
    """Add the summary columns to a parsed row."""
    sequence = music_pb2.NoteSequence.FromString(row["note_sequence"])
    return {**row, **summarise(sequence)}


class Summarise(beam.PTransform):
    """Summary columns of ``NOTESEQ_SCHEMA`` (``pipelines.summary``)."""

    def expand(self, tunes: beam.PCollection) -> beam.PCollection:
        return tunes | "SummaryColumns" >> beam.Map(summarise_row)


# --------------------------------------------------------------------------------------------
# Accounting


class AccountFn(beam.CombineFn):
    """Combine accounting records into metrics.json; fails the run if the identity breaks."""

    def __init__(self, corpus: str) -> None:
        self._corpus = corpus

    def create_accumulator(self) -> tuple[Counter[str], list[str]]:
        return Counter(), []

    def add_input(
        self, acc: tuple[Counter[str], list[str]], record: Outcome | RowStat
    ) -> tuple[Counter[str], list[str]]:
        counts, duplicates = acc
        if isinstance(record, RowStat):
            counts["tunes"] += 1
            counts[f"reader:{record.reader}"] += 1
            counts["notes"] += record.notes
            counts["time_us"] += record.total_time_us
            counts["empty_sequences"] += record.notes == 0
            return acc
        counts[f"status:{record.status}"] += 1
        if record.status == "quarantined":
            counts[f"reason:{record.reason}"] += 1
        if record.status == "ignored":
            kind = record.reason if record.reason in SYMLINK_REASONS else "unsupported_extension"
            counts[f"ignored_reason:{kind}"] += 1
            if kind == "unsupported_extension":
                counts[f"ignored:{record.reason}"] += 1
        for message, count in record.log_messages:
            counts[f"log:{message}"] += count
        for hop in record.fallbacks:
            counts[f"fallback:{hop}"] += 1
        for reason in record.tune_failures:
            counts[f"tune_reason:{reason}"] += 1
        counts["extension_mismatch"] += record.extension_mismatch
        counts["reused"] += record.reused
        if record.note:
            duplicates.append(record.note)
        return acc

    def merge_accumulators(
        self, accumulators: Iterable[tuple[Counter[str], list[str]]]
    ) -> tuple[Counter[str], list[str]]:
        counts: Counter[str] = Counter()
        duplicates: list[str] = []
        for more, notes in accumulators:
            counts.update(more)
            duplicates.extend(notes)
        return counts, sorted(duplicates)[:DUPLICATE_EXAMPLES]

    def extract_output(self, acc: tuple[Counter[str], list[str]]) -> dict[str, Any]:
        counts, duplicates = acc

        def group(prefix: str) -> dict[str, int]:
            return {k[len(prefix) :]: v for k, v in sorted(counts.items()) if k.startswith(prefix)}

        metrics = {
            "corpus": self._corpus,
            "matched": counts["status:matched"],
            "parsed": counts["status:parsed"],
            "reused": counts["reused"],
            "duplicates": counts["status:duplicate"],
            "quarantined": counts["status:quarantined"],
            "quarantined_by_reason": group("reason:"),
            "ignored": counts["status:ignored"],
            "ignored_by_reason": group("ignored_reason:"),
            "ignored_by_extension": group("ignored:"),
            "extension_mismatch": counts["extension_mismatch"],
            "tunes": counts["tunes"],
            "tunes_by_reader": group("reader:"),
            "tunes_quarantined": sum(group("tune_reason:").values()),
            "tunes_quarantined_by_reason": group("tune_reason:"),
            "fallbacks": group("fallback:"),
            "reader_log_messages": group("log:"),
            "empty_sequences": counts["empty_sequences"],
            "notes": counts["notes"],
            "hours": round(counts["time_us"] / 3.6e9, 6),
            "duplicate_examples": sorted(duplicates)[:DUPLICATE_EXAMPLES],
        }
        check_accounting(metrics)
        return metrics


class AccountingError(RuntimeError):
    """The files that left the pipeline do not add up to the files that entered it."""


def check_accounting(metrics: dict[str, Any]) -> None:
    """``matched == parsed + duplicates + quarantined`` and the per-reason/per-reader sums."""
    matched = metrics["matched"]
    exits = metrics["parsed"] + metrics["duplicates"] + metrics["quarantined"]
    problems = []
    if matched != exits:
        problems.append(
            f"matched {matched} != parsed {metrics['parsed']} + duplicates "
            f"{metrics['duplicates']} + quarantined {metrics['quarantined']}"
        )
    if sum(metrics["quarantined_by_reason"].values()) != metrics["quarantined"]:
        problems.append("quarantined_by_reason does not sum to quarantined")
    if sum(metrics.get("ignored_by_reason", {}).values()) != metrics.get("ignored", 0):
        problems.append("ignored_by_reason does not sum to ignored")
    if sum(metrics["tunes_by_reader"].values()) != metrics["tunes"]:
        problems.append("tunes_by_reader does not sum to tunes")
    if metrics["parsed"] and metrics["tunes"] < metrics["parsed"]:
        problems.append(f"{metrics['parsed']} parsed files but only {metrics['tunes']} tunes")
    if problems:
        raise AccountingError("accounting identity violated: " + "; ".join(problems))


class Account(beam.PTransform):
    """Accounting records (outcomes + one stat per written row) -> the metrics dict."""

    def __init__(self, corpus: str) -> None:
        super().__init__()
        self._corpus = corpus

    def expand(self, records: beam.PCollection) -> beam.PCollection:
        return records | "Combine" >> beam.CombineGlobally(AccountFn(self._corpus))


def _row_stat(row: dict[str, Any]) -> RowStat:
    return RowStat(row["reader"], int(row["num_notes"]), round(row["total_time"] * 1e6))


# --------------------------------------------------------------------------------------------
# Pipeline


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
    stats = rows | "RowStats" >> beam.Map(_row_stat)
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
    if not _is_remote(config.output):
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


# --------------------------------------------------------------------------------------------
# CLI


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
    parser = argparse.ArgumentParser(
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
    parser = build_parser()

    def error(message: str) -> None:  # argparse would print usage and exit; we want one line
        raise UsageError(message)

    parser.error = error  # type: ignore[method-assign]
    args, beam_args = parser.parse_known_args(list(argv))
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
    output = args.output if _is_remote(args.output) else os.path.abspath(args.output)
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


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        config, input_value, beam_args, beam_params = parse_args(argv)
        spec = resolve_input(input_value)
    except UsageError as exc:
        print(f"ingest: error: {exc}", file=sys.stderr)
        return 2
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


if __name__ == "__main__":
    # Run from the importable module, not ``__main__``: Beam workers in other processes must be
    # able to unpickle this module's records and DoFns by their real name.
    from pipelines.ingest import main as _main

    sys.exit(_main())
