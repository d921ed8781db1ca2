"""Getting the real corpora: ``motif corpora fetch openewld|edm|pop909|asap|all``.

The ``full`` profile reads OpenEWLD, the EDM melodies, POP909 and ASAP from ``data_root``
(``data/corpora`` by default). Each corpus is pinned in ``pipelines/corpora.yaml``: its upstream
repository, the commit whose archive is downloaded, which files of it are kept, and the sha256 of
what is kept. A fetch goes

    download (resumable .part file) -> [archive sha256] -> unpack the kept files into a staging
    folder -> content sha256 -> rename into data/corpora/NAME -> `dvc add data/corpora/NAME`

so a bad checksum, an interrupted download or no network ends with one line, a non-zero exit and
nothing half-unpacked: the corpus folder appears only once its content is verified.

Why a command and not DVC ``import-url`` stages: ``import-url`` stores the archive as it is (no
unpacking, no selection of files) and pins the server's ETag rather than a checksum we can state,
and stages that download would make every ``dvc repro`` need the network, also for users who
point ``data_root`` at a copy they already have. The corpora are raw inputs, which DVC's own guide
tracks with ``dvc add``; that is what the fetch ends with, so ``dvc status`` sees a changed corpus
and the ingest stages that read it re-run.

``--from DIR`` takes a local copy laid out as the archive (e.g. ``../shared/data``) instead of the
network, with the same checks; ``motif corpora verify`` re-checks a folder in place.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from modeling import first_line
from modeling.cli import ArgumentParser, UsageError, command

SOURCES = Path(__file__).with_name("corpora.yaml")
DEFAULT_DEST = Path("data/corpora")
CHUNK = 1 << 16


class CorpusError(RuntimeError):
    """A fetch that cannot complete; printed as one line, exit 1 (2 for usage errors)."""


@dataclass(frozen=True)
class Source:
    """One pinned corpus: where its archive is and which of its files make the corpus."""

    name: str
    url: str
    content_sha256: str
    licence: str
    keep: tuple[str, ...]
    drop: tuple[str, ...] = ()
    title: str = ""
    repo: str = ""
    commit: str = ""
    files: int | None = None
    archive_sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def wanted(self, rel: str) -> bool:
        """Whether ``rel`` (a POSIX path inside the corpus) is part of the corpus."""
        return any(fnmatch.fnmatchcase(rel, p) for p in self.keep) and not any(
            fnmatch.fnmatchcase(rel, p) for p in self.drop
        )


def load_sources(path: Path = SOURCES) -> dict[str, Source]:
    """The pinned sources in ``path`` (``pipelines/corpora.yaml`` unless a test gives its own)."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise CorpusError(f"cannot read corpus sources {path}: {first_line(err)}") from None
    out: dict[str, Source] = {}
    known = {
        "title",
        "repo",
        "commit",
        "url",
        "keep",
        "drop",
        "files",
        "content_sha256",
        "archive_sha256",
        "licence",
    }
    for name, item in raw.items():
        if not isinstance(item, dict) or not {"url", "keep", "content_sha256", "licence"} <= set(
            item
        ):
            raise CorpusError(f"{path}: {name} needs url, keep, content_sha256 and licence")
        out[name] = Source(
            name=name,
            url=str(item["url"]),
            content_sha256=str(item["content_sha256"]).lower(),
            licence=str(item["licence"]),
            keep=tuple(item["keep"]),
            drop=tuple(item.get("drop") or ()),
            title=str(item.get("title", "")),
            repo=str(item.get("repo", "")),
            commit=str(item.get("commit", "")),
            files=item.get("files"),
            archive_sha256=(
                str(item["archive_sha256"]).lower() if item.get("archive_sha256") else None
            ),
            extra={k: v for k, v in item.items() if k not in known},
        )
    return out


# --- content checksums -------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def manifest(root: Path) -> list[tuple[str, str]]:
    """(sha256, relative POSIX path) of every regular file under ``root``, sorted by path."""
    rows = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath, f)
            rows.append((file_sha256(p), p.relative_to(root).as_posix()))
    return sorted(rows, key=lambda r: r[1])


def content_sha256(rows: Iterable[tuple[str, str]]) -> str:
    """sha256 of the manifest as ``sha256sum`` prints it ("<sha>  <path>\\n" per file)."""
    h = hashlib.sha256()
    for digest, rel in rows:
        h.update(f"{digest}  {rel}\n".encode())
    return h.hexdigest()


# --- download ----------------------------------------------------------------------------------


def download(url: str, target: Path, *, timeout: float = 60.0, progress: bool = True) -> Path:
    """Download ``url`` to ``target`` via ``target.part``; a short or failed read raises.

    The ``.part`` file is removed on failure, so a retry starts clean and no partial archive is
    ever mistaken for a whole one.
    """
    part = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            expected = resp.headers.get("Content-Length")
            total = int(expected) if expected and expected.isdigit() else None
            bar = _progress(total, f"download {target.name}", progress)
            got = 0
            with part.open("wb") as out:
                while chunk := resp.read(CHUNK):
                    out.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
            bar.close()
        if total is not None and got != total:
            raise CorpusError(f"download of {url} was interrupted: {got} of {total} bytes")
        if got == 0:
            raise CorpusError(f"download of {url} returned no data")
    except CorpusError:
        part.unlink(missing_ok=True)
        raise
    except urllib.error.HTTPError as err:
        part.unlink(missing_ok=True)
        raise CorpusError(f"download of {url} failed: HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        part.unlink(missing_ok=True)
        raise CorpusError(
            f"cannot reach {url} ({first_line(err.reason) if isinstance(err.reason, BaseException) else err.reason}); "
            "check the network, or use --from DIR with a local copy"
        ) from None
    except (OSError, ValueError) as err:  # IncompleteRead, reset connection, timeout
        part.unlink(missing_ok=True)
        raise CorpusError(f"download of {url} was interrupted: {first_line(err)}") from None
    except BaseException:  # Ctrl-C: never leave a partial archive behind
        part.unlink(missing_ok=True)
        raise
    os.replace(part, target)
    return target


def _progress(total: int | None, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total, desc=desc, unit="B", unit_scale=True, disable=not enabled, file=sys.stderr
    )


# --- unpacking ---------------------------------------------------------------------------------


def _strip_top(name: str) -> str | None:
    """The member's path below the archive's top folder (``repo-<commit>/``), or None for it."""
    parts = PurePosixPath(name).parts
    if len(parts) < 2 or any(p in ("..", "") for p in parts) or name.startswith("/"):
        return None
    return PurePosixPath(*parts[1:]).as_posix()


def _archive_members(archive: Path) -> Iterator[tuple[str, Any, Any]]:
    """(path below the top folder, opener, member) for every regular file of a tar or zip."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                rel = _strip_top(info.filename)
                if rel and not info.is_dir():
                    yield rel, zf.open, info
        return
    with tarfile.open(archive, "r:*") as tf:
        for member in tf:
            rel = _strip_top(member.name)
            if rel and member.isreg():
                yield rel, tf.extractfile, member


def unpack(source: Source, archive: Path, staging: Path) -> int:
    """Write the corpus's files from ``archive`` into ``staging``; returns how many."""
    n = 0
    try:
        for rel, opener, member in _archive_members(archive):
            if not source.wanted(rel):
                continue
            out = staging / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            with opener(member) as src, out.open("wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
            n += 1
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as err:
        raise CorpusError(
            f"{source.name}: archive {archive.name} is truncated or corrupt ({first_line(err)})"
        ) from None
    return n


def copy_local(source: Source, root: Path, staging: Path) -> int:
    """Copy the corpus's files from a local copy laid out as the archive (``--from``)."""
    if not root.is_dir():
        raise CorpusError(f"{source.name}: no local copy at {root}")
    n = 0
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath, f)
            rel = p.relative_to(root).as_posix()
            if source.wanted(rel):
                out = staging / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(p, out)
                n += 1
    return n


# --- fetch -------------------------------------------------------------------------------------


def fetch(
    source: Source,
    dest: Path = DEFAULT_DEST,
    *,
    local: Path | None = None,
    url: str | None = None,
    progress: bool = True,
    dvc: bool = True,
) -> Path:
    """Fetch ``source`` into ``dest/NAME`` (verified) and return that folder."""
    dest.mkdir(parents=True, exist_ok=True)
    final = dest / source.name
    staging = dest / f".{source.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    archive: Path | None = None
    try:
        if local is not None:
            count = copy_local(source, local / source.name, staging)
        else:
            archive = dest / f".{source.name}-{source.commit or 'archive'}.download"
            download(url or source.url, archive, progress=progress)
            if source.archive_sha256 and (got := file_sha256(archive)) != source.archive_sha256:
                raise CorpusError(
                    f"{source.name}: archive sha256 {got[:16]}… does not match the pinned "
                    f"{source.archive_sha256[:16]}…; nothing was unpacked"
                )
            count = unpack(source, archive, staging)
        if count == 0:
            raise CorpusError(f"{source.name}: no file of the corpus was found in its source")
        rows = manifest(staging)
        got = content_sha256(rows)
        if got != source.content_sha256:
            raise CorpusError(
                f"{source.name}: content sha256 {got[:16]}… ({len(rows)} files) does not match "
                f"the pinned {source.content_sha256[:16]}… ({source.files} files); "
                "nothing was unpacked"
            )
        if final.exists():
            old = dest / f".{source.name}.old-{os.getpid()}"
            os.replace(final, old)
            shutil.rmtree(old)
        os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if archive is not None:
            archive.unlink(missing_ok=True)
    if dvc:
        track_with_dvc(final)
    return final


def track_with_dvc(folder: Path) -> bool:
    """``dvc add`` the folder when it lies inside a DVC project; returns whether it did."""
    folder = folder.resolve()
    root = next((p for p in (folder, *folder.parents) if (p / ".dvc").is_dir()), None)
    if root is None:
        return False
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "add", "-q", str(folder.relative_to(root))],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise CorpusError(
            f"{folder.name}: fetched and verified, but `dvc add` failed: "
            f"{(done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]}"
        )
    return True


def verify(source: Source, folder: Path) -> tuple[bool, int, str]:
    """(matches the pin, files, content sha256) of a corpus folder as it is now."""
    rows = [r for r in manifest(folder) if source.wanted(r[1])]
    got = content_sha256(rows)
    return got == source.content_sha256, len(rows), got


def needed(params_path: Path, dest: Path) -> list[str]:
    """The corpora ``params_path``'s ``fetched_corpora`` read, when they are to live in ``dest``.

    ``make run`` calls ``fetch needed --skip-present`` so a fresh clone's ``make run PROFILE=full``
    gets its corpora; a ``data_root`` pointing elsewhere (a copy the user already has) needs none.
    """
    try:
        params = yaml.safe_load(params_path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise CorpusError(f"cannot read {params_path}: {first_line(err)}") from None
    root = os.environ.get("MOTIF_DATA_ROOT") or str(params.get("data_root") or DEFAULT_DEST)
    if Path(root).resolve() != dest.resolve():
        return []
    wanted = params.get("fetched_corpora") or {}
    return sorted({str(item.get("path", name)).split("/")[0] for name, item in wanted.items()})


# --- CLI ---------------------------------------------------------------------------------------


def _names(sources: dict[str, Source], wanted: list[str]) -> list[str]:
    if wanted == ["all"]:
        return list(sources)
    unknown = [n for n in wanted if n not in sources]
    if unknown:
        raise UsageError(
            f"unknown corpus {', '.join(unknown)}; choose from {', '.join(sources)} or all"
        )
    return wanted


@command("corpora")
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="motif corpora",
        description="Fetch the real corpora (pinned in pipelines/corpora.yaml) into data/corpora.",
    )
    parser.add_argument("--sources", type=Path, default=SOURCES, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_fetch = sub.add_parser("fetch", help="download, verify and unpack corpora")
    p_fetch.add_argument(
        "names",
        nargs="+",
        metavar="NAME",
        help="a corpus name, all, or needed (those params.yaml's fetched_corpora read, when "
        "data_root is --dest)",
    )
    p_fetch.add_argument(
        "--dest",
        type=Path,
        default=DEFAULT_DEST,
        help="where corpus folders go (default: data/corpora)",
    )
    p_fetch.add_argument(
        "--from",
        dest="local",
        type=Path,
        default=None,
        metavar="DIR",
        help="copy from a local copy laid out as the archives (e.g. ../shared/data)"
        " instead of downloading",
    )
    p_fetch.add_argument("--url", default=None, help="download from this URL instead (a mirror)")
    p_fetch.add_argument("--no-dvc", action="store_true", help="do not `dvc add` the folder")
    p_fetch.add_argument("--no-progress", action="store_true")
    p_fetch.add_argument(
        "--skip-present",
        action="store_true",
        help="leave a corpus whose folder already exists (`verify` re-checks it)",
    )
    p_fetch.add_argument("--params", type=Path, default=Path("params.yaml"), help=argparse.SUPPRESS)
    p_verify = sub.add_parser("verify", help="re-check corpus folders against their pins")
    p_verify.add_argument("names", nargs="+", metavar="NAME")
    p_verify.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    sub.add_parser("list", help="the pinned corpora, their upstreams and licences")
    args = parser.parse_args(argv)
    try:
        sources = load_sources(args.sources)
        if args.cmd == "list":
            for s in sources.values():
                print(f"{s.name:9s} {s.title} — {s.repo}@{s.commit[:12]} — licence: {s.licence}")
            return 0
        if args.cmd == "fetch" and args.names == ["needed"]:
            args.names = needed(args.params, args.dest)
            if not args.names:
                return 0
        names = _names(sources, args.names)
        if getattr(args, "url", None) and len(names) != 1:
            raise UsageError("--url needs exactly one corpus name")
        if args.cmd == "verify":
            bad = 0
            for n in names:
                ok, count, got = verify(sources[n], args.dest / n)
                print(
                    f"{n}: {count} files, content sha256 {got[:16]}… "
                    f"{'OK' if ok else 'does NOT match the pin'}"
                )
                bad += not ok
            return 1 if bad else 0
        for n in names:
            s = sources[n]
            if args.skip_present and (args.dest / n).is_dir():
                print(f"{n}: already in {args.dest / n} (`motif corpora verify {n}` re-checks it)")
                continue
            folder = fetch(
                s,
                args.dest,
                local=args.local,
                url=args.url,
                progress=not args.no_progress,
                dvc=not args.no_dvc,
            )
            print(
                f"{n}: {s.files or ''} files verified in {folder} "
                f"(from {s.repo or s.url}@{s.commit[:12]})"
            )
            print(f"{n}: licence: {s.licence}")
        return 0
    except CorpusError as err:
        print(f"corpora: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("corpora: interrupted; nothing was unpacked", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
