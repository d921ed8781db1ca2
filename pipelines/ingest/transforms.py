"""The per-file steps after matching, one ``PTransform`` each: :class:`CapSize` -> :class:`ReadBytes`
(+ sha256) -> :class:`Dedupe` -> (:class:`Reuse`) -> :class:`Parse` -> :class:`Summarise`.

Each passes :class:`FileBytes` (or, from ``Parse`` on, NoteSequence rows) along its main output
and emits ``quarantine`` rows (``QUARANTINE_SCHEMA``) and ``outcomes`` (``accounting.Outcome``) on
tagged outputs; ``pipeline.build_pipeline`` wires them together.
"""

from __future__ import annotations

import hashlib
import posixpath
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes, FileMetadata
from apache_beam.io.filesystems import FileSystems
from note_seq.protobuf import music_pb2

from pipelines.ingest.accounting import Outcome
from pipelines.ingest.config import NOTESEQ_PREFIX, IngestConfig, counter
from pipelines.ingest.inputs import relative_path
from pipelines.parse_worker import ParseWorker
from pipelines.summary import summarise


@dataclass(frozen=True)
class FileBytes:
    """A matched file's content; ``relpath`` (relative to the corpus root) names it in ids."""

    relpath: str
    size: int
    sha256: str
    data: bytes


def quarantine_row(
    corpus: str, relpath: str, sha256: str | None, size: int | None, reason: str, detail: str
) -> dict[str, Any]:
    """A ``QUARANTINE_SCHEMA`` row, and its counter."""
    counter(f"quarantine_rows_{reason}").inc()
    return {
        "corpus": corpus,
        "source_path": relpath,
        "sha256": sha256,
        "size_bytes": size,
        "reason": reason,
        "detail": detail,
    }


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
        counter(f"quarantined_{reason}").inc()
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
                counter("bytes_read").inc(len(data))
                yield FileBytes(rel, len(data), hashlib.sha256(data).hexdigest(), data)
                return
            reason, size = "too_large", len(data)
            detail = f"more than --max-file-bytes {self._max} when read"
        counter(f"quarantined_{reason}").inc()
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
            counter("duplicates").inc()
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
            counter(f"fallback_{hop.replace('->', '_to_')}").inc()
        log_messages = tuple(result.log_messages.items())
        if result.extension_mismatch and result.reason is None:
            counter("extension_mismatch").inc()
        if result.reason is not None:
            counter(f"quarantined_{result.reason}").inc()
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
            counter("tunes_quarantined").inc()
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
            counter("tunes").inc()
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
        counter("parsed").inc()
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
            counter("reused").inc()
            counter("parsed").inc()
            for row in sorted(previous, key=lambda r: r["tune_index"]):
                counter("tunes").inc()
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
