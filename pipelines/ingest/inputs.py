"""Inputs: ``--input`` (a path on any Beam filesystem, or ``music21:...``) -> :class:`InputSpec`,
and :class:`MatchInputs`, the first step, which matches its patterns and accounts for every entry
(supported files ``matched``; other extensions and symlinks ``ignored``).

Used by ``pipeline`` (the steps) and ``cli`` (resolving ``--input``); ``transforms`` names files
by :func:`relative_path`.
"""

from __future__ import annotations

import glob
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import FileMetadata
from apache_beam.io.filesystems import FileSystems

from pipelines.beam_io import escape_glob
from pipelines.ingest.accounting import Outcome
from pipelines.ingest.config import MUSIC21_PREFIX, UsageError, counter
from pipelines.readers import SUPPORTED_EXTENSIONS


@dataclass(frozen=True)
class InputSpec:
    """Where the files are: Beam file patterns and the root their relative paths start from."""

    root: str
    patterns: tuple[str, ...]
    description: str
    walk_root: str | None = None  # a local folder matched recursively: scanned for symlinks


def is_remote(path: str) -> bool:
    """Whether ``path`` names another Beam filesystem (gs://, s3://, ...) than the local one."""
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
    path = value if is_remote(value) else os.path.abspath(value)
    path = path.rstrip("/") or "/"
    try:
        exists = FileSystems.exists(path)
    except Exception as exc:  # e.g. an unknown scheme or missing credentials
        raise UsageError(f"cannot access input {value}: {exc}") from exc
    if not exists:
        raise UsageError(f"input not found: {value}")
    if not is_remote(path) and os.path.isfile(path):
        return InputSpec(posixpath.dirname(path), (escape_glob(path),), path)
    return InputSpec(path, (escape_glob(path) + "/**",), path, None if is_remote(path) else path)


def relative_path(path: str, root: str) -> str:
    """Path relative to the corpus root, '/'-separated (stable across machines)."""
    prefix = root.rstrip("/") + "/"
    rel = path[len(prefix) :] if path.startswith(prefix) else posixpath.basename(path)
    return rel.replace(os.sep, "/")


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
            counter("ignored").inc()
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
            counter("matched").inc()
            yield beam.pvalue.TaggedOutput("outcomes", Outcome("matched"))
            yield meta
        else:
            counter("ignored").inc()
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
