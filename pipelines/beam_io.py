"""Reusable Beam I/O for motif's pipelines: deterministic, atomic Parquet outputs.

``pipelines.ingest`` writes its NoteSequence shards and quarantine table with
:class:`WriteSortedParquet`; ``pipelines.examples`` reuses it for train/eval shards. The same inputs
always give byte-identical files: each row goes to the shard picked by a stable hash of its sort
key, rows are sorted inside the shard, and the Parquet writer options are fixed. Every file is
written under a hidden temporary name and renamed into place through Beam's ``FileSystems`` (local
disk, gs://, s3://, hdfs:// alike), so a crash never leaves half a file.
Shards of an earlier run with another shard count are removed once the new set is complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

SortKey = str | Sequence[str] | Callable[[dict[str, Any]], Any]

# Local default, measured on the 2-core machine (bench/ingest.py): two in-process runner threads
# are fastest because the CPU-heavy parsing already runs in child processes (parse_worker).
DEFAULT_RUNNER_ARGS = ("--direct_num_workers=2", "--direct_running_mode=multi_threading")
RUNNER_FLAGS = ("--runner", "--direct_running_mode", "--direct_num_workers")

# Beam's gRPC data plane (the runner's side, and the SDK workers of multi_threading) also flushes
# every output stream from a timer thread each ``DATA_BUFFER_TIME_LIMIT_MS`` (1 s; that mode offers
# no option for it). The timer's flush copies the buffer and then clears it without stopping the
# thread that writes to it, so an element written in between is dropped without a trace (Beam 2.77,
# ``data_plane.TimeBasedBufferingClosableOutputStream``). CI lost one OpenEWLD file that way
# (matched 502, parsed 501) and an earlier run one ASAP row. A batch run needs no timed flush: the
# buffers still go out when they pass the size threshold and when the stream closes.
NO_TIMED_FLUSH_MS = 7 * 24 * 3600 * 1000


def pipeline_options(
    beam_args: Sequence[str], beam_params: Mapping[str, Any] | None = None
) -> PipelineOptions:
    """Beam options for motif's pipelines.

    Precedence: options on the command line, then params.yaml's ``beam`` section (``runner``,
    ``direct_num_workers``, ``direct_running_mode``, any other scalar as ``--key=value``, and
    ``extra_args``), then :data:`DEFAULT_RUNNER_ARGS` when neither names a runner setting.
    A worker count from params is dropped when the run ends up ``in_memory`` (the examples
    stage's override of the shared ``beam`` section): that mode has one worker, and Beam would
    warn on every run that the count has no effect. Every pipeline built on these options runs
    without Beam's timed data flush, which loses elements (:func:`disable_timed_flush`).
    """
    disable_timed_flush()
    cli = list(beam_args)
    from_params: list[str] = []
    for key, value in (beam_params or {}).items():
        if key == "extra_args":
            from_params.extend(str(arg) for arg in value or [])
        elif value is not None and not isinstance(value, dict | list):
            from_params.append(f"--{key}={value}")
    modes = [arg for arg in [*from_params, *cli] if _flag(arg) == "--direct_running_mode"]
    if modes and modes[-1].partition("=")[2] == "in_memory":
        from_params = [arg for arg in from_params if _flag(arg) != "--direct_num_workers"]
    chosen = [*from_params, *cli]  # argparse: the last occurrence wins, so the CLI beats params
    if not any(arg.split("=")[0] in RUNNER_FLAGS for arg in chosen):
        chosen = [*DEFAULT_RUNNER_ARGS, *chosen]
    if not any(arg.startswith("--default_sdk_harness_log_level") for arg in chosen):
        chosen.append("--default_sdk_harness_log_level=WARNING")
    return PipelineOptions(chosen)


def disable_timed_flush() -> None:
    """Stop Beam's racy timed flush of gRPC data streams (see :data:`NO_TIMED_FLUSH_MS`).

    The runner reads the limit each time it starts a gRPC server or an embedded worker, so
    setting it before a run covers that run; workers of multi_processing already default to none.
    """
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    worker_handlers.DATA_BUFFER_TIME_LIMIT_MS = NO_TIMED_FLUSH_MS


def _flag(arg: str) -> str:
    return arg.split("=", 1)[0]


@contextlib.contextmanager
def removed_on_failure(output: str) -> Iterator[None]:
    """Remove ``output`` (a local folder) again if the block fails and the folder is new.

    A stage that fails must not leave an empty or half-written output folder behind, which
    would look like a finished (empty) result. An existing folder, and anything remote, is
    left alone: its earlier files are still whole (every file is written atomically).
    """
    if "://" in output:
        yield
        return
    top = os.path.abspath(output)
    if os.path.exists(top):
        yield
        return
    while not os.path.exists(os.path.dirname(top)):  # the highest folder this run creates
        top = os.path.dirname(top)
    try:
        yield
    except BaseException:
        shutil.rmtree(top, ignore_errors=True)
        raise


def escape_glob(path: str) -> str:
    """Quote Beam glob metacharacters (``[ * ?``) so a literal path matches only itself."""
    return re.sub(r"([\[*?])", r"[\1]", path)


def stable_shard(key: Any, num_shards: int) -> int:
    """Shard index from a hash that is the same in every process and Python version."""
    digest = hashlib.sha256(str(key).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % num_shards


def shard_path(output_prefix: str, index: int, num_shards: int) -> str:
    """``<prefix>-00003-of-00008.parquet``."""
    return f"{output_prefix}-{index:05d}-of-{num_shards:05d}.parquet"


def _key_function(sort_key: SortKey) -> Callable[[dict[str, Any]], Any]:
    if callable(sort_key):
        return sort_key
    if isinstance(sort_key, str):
        column = sort_key
        return lambda row: row[column]
    columns = tuple(sort_key)
    return lambda row: tuple(row[c] for c in columns)


def _temporary_path(final_path: str) -> str:
    """A hidden sibling of the final path: same filesystem (atomic rename), never globbed."""
    directory, name = posixpath.split(final_path)
    return posixpath.join(directory, f".{name}.tmp-{uuid.uuid4().hex}")


def _ensure_directory(path: str) -> None:
    directory = posixpath.dirname(path)
    if directory and not FileSystems.exists(directory):
        with contextlib.suppress(OSError):  # created concurrently, or no directories at all
            FileSystems.mkdirs(directory)


def _close(handle: Any) -> None:
    """Close once (pyarrow may already have closed a handle it wrote through)."""
    if not getattr(handle, "closed", False):
        handle.close()


def write_atomically(final_path: str, write: Callable[[Any], None]) -> str:
    """Write a file through ``FileSystems`` under a temporary name, then rename it into place."""
    _ensure_directory(final_path)
    temporary = _temporary_path(final_path)
    handle = FileSystems.create(temporary, compression_type=CompressionTypes.UNCOMPRESSED)
    try:
        write(handle)
    except BaseException:
        _close(handle)
        FileSystems.delete([temporary])
        raise
    _close(handle)
    if FileSystems.exists(final_path):
        FileSystems.delete([final_path])  # object stores do not overwrite on rename
    FileSystems.rename([temporary], [final_path])
    return final_path


def write_parquet(
    final_path: str,
    rows: Sequence[dict[str, Any]],
    schema: pa.Schema,
    row_group_size: int = 512,
) -> str:
    """One Parquet file with fixed writer options (zstd, statistics), written atomically."""
    table = pa.Table.from_pylist(list(rows), schema=schema)

    def write(handle: Any) -> None:
        pq.write_table(
            table,
            handle,
            compression="zstd",
            row_group_size=row_group_size,
            write_statistics=True,
        )

    return write_atomically(final_path, write)


def write_json(final_path: str, payload: Any) -> str:
    """A JSON document (sorted keys, trailing newline) written atomically."""
    text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
    return write_atomically(final_path, lambda handle: handle.write(text.encode("utf-8")))


@dataclass(frozen=True)
class _ShardLayout:
    """Where and how :class:`WriteSortedParquet` writes: what the transform and its workers share."""

    prefix: str
    schema: pa.Schema
    num_shards: int
    sort_key: SortKey
    single_file: bool
    row_group_size: int

    def path(self, index: int) -> str:
        """Shard ``index``'s file (``<prefix>.parquet`` when the set is a single file)."""
        if self.single_file:
            return f"{self.prefix}.parquet"
        return shard_path(self.prefix, index, self.num_shards)


class _WriteShard(beam.DoFn):
    """Sort one shard's rows and write them; emits the final path."""

    def __init__(self, layout: _ShardLayout) -> None:
        self._layout = layout

    def process(self, element: tuple[int, Iterable[Any]]) -> Iterable[str]:
        index, rows = element
        layout = self._layout
        key = _key_function(layout.sort_key)
        ordered = sorted((row for row in rows if row is not None), key=key)
        yield write_parquet(layout.path(index), ordered, layout.schema, layout.row_group_size)


class _RemoveStaleShards(beam.DoFn):
    """Delete ``<prefix>-*-of-*.parquet`` files that are not part of the set just written."""

    def __init__(self, output_prefix: str) -> None:
        self._prefix = output_prefix

    def process(self, written: list[str]) -> Iterable[str]:
        keep = set(written)
        pattern = escape_glob(self._prefix) + "-*-of-*.parquet"
        shard_name = re.compile(re.escape(self._prefix) + r"-\d+-of-\d+\.parquet\Z")
        stale = [
            meta.path
            for result in FileSystems.match([pattern])
            for meta in result.metadata_list
            if meta.path not in keep and shard_name.match(meta.path)
        ]
        if stale:
            FileSystems.delete(stale)
        yield from sorted(stale)


class WriteSortedParquet(beam.PTransform):
    """Write dict rows to ``num_shards`` Parquet files, deterministically and atomically.

    Rows go to the shard given by a stable hash of their sort key and are sorted by it inside the
    shard; every shard index is written, even when empty, so readers can rely on the full set.
    With ``single_file=True`` (one shard) the file is ``<prefix>.parquet``. The output PCollection
    holds the written paths.
    """

    def __init__(
        self,
        output_prefix: str,
        schema: pa.Schema,
        num_shards: int,
        sort_key: SortKey,
        *,
        single_file: bool = False,
        row_group_size: int = 512,
    ) -> None:
        super().__init__()
        if num_shards < 1:
            raise ValueError(f"num_shards must be >= 1, got {num_shards}")
        if single_file and num_shards != 1:
            raise ValueError("single_file needs num_shards == 1")
        self._layout = _ShardLayout(
            output_prefix, schema, num_shards, sort_key, single_file, row_group_size
        )

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        layout = self._layout
        num_shards = layout.num_shards
        key = _key_function(layout.sort_key)
        keyed = rows | "AssignShard" >> beam.Map(
            lambda row: (stable_shard(key(row), num_shards), row)
        )
        every_shard = rows.pipeline | "EveryShard" >> beam.Create(
            [(index, None) for index in range(num_shards)]
        )
        written = (
            (keyed, every_shard)
            | "Merge" >> beam.Flatten()
            | "GroupByShard" >> beam.GroupByKey()
            | "SortAndWrite" >> beam.ParDo(_WriteShard(layout))
        )
        if not layout.single_file:
            _ = (
                written
                | "CollectPaths" >> beam.combiners.ToList()
                | "RemoveStaleShards" >> beam.ParDo(_RemoveStaleShards(layout.prefix))
            )
        return written
