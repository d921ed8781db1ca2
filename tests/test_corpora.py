"""`motif corpora fetch` against archives served by a local http.server (no real network).

Each case runs the real CLI in a subprocess: a good archive is unpacked, verified and (inside a
DVC project) `dvc add`-ed; a corrupt archive, a bad checksum, an interrupted download and an
unreachable server each end with one line, a non-zero exit and nothing half-unpacked.
"""

from __future__ import annotations

import hashlib
import io
import socket
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from pipelines import corpora

REPO = Path(__file__).resolve().parents[1]
FILES = {
    "Dataset/a tune.mid": b"MThd fake one",
    "Dataset/b's tune.mid": b"MThd fake two",
    "Dataset/notes.txt": b"not part of the corpus",
    "LICENSE": b"MIT licence text",
    "tools/convert.py": b"print('not part of the corpus')",
}
KEEP = ["Dataset/*.mid", "LICENSE"]


def make_archive(files: dict[str, bytes], top: str = "tiny-abc123") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for rel, data in files.items():
            info = tarfile.TarInfo(f"{top}/{rel}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def expected_digest(files: dict[str, bytes]) -> str:
    source = corpora.Source("tiny", "", "", "", tuple(KEEP))
    rows = sorted(
        ((hashlib.sha256(d).hexdigest(), rel) for rel, d in files.items() if source.wanted(rel)),
        key=lambda r: r[1],
    )
    return corpora.content_sha256(rows)


class Server:
    """A loopback HTTP server whose routes are (body, declared length or None, truncate at)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, int | None]] = {}
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path not in routes:
                    self.send_error(404)
                    return
                body, declared = routes[self.path]
                self.send_response(200)
                self.send_header("Content-Length", str(declared or len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def write_sources(tmp: Path, url: str, digest: str, **extra: object) -> Path:
    src = tmp / "sources.yaml"
    item = {
        "title": "tiny",
        "repo": "someone/tiny",
        "commit": "abc123",
        "url": url,
        "keep": KEEP,
        "files": 3,
        "content_sha256": digest,
        "licence": "MIT (test)",
        **extra,
    }
    src.write_text(yaml.safe_dump({"tiny": item}))
    return src


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.corpora", *args],
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


def test_fetch_unpacks_verifies_and_prints_the_licence(tmp_path: Path, server: Server) -> None:
    server.routes["/tiny.tar.gz"] = (make_archive(FILES), None)
    src = write_sources(tmp_path, server.url("/tiny.tar.gz"), expected_digest(FILES))
    dest = tmp_path / "corpora"
    done = run_cli("--sources", str(src), "fetch", "tiny", "--dest", str(dest), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "licence: MIT (test)" in done.stdout
    got = sorted(
        p.relative_to(dest / "tiny").as_posix() for p in (dest / "tiny").rglob("*") if p.is_file()
    )
    assert got == ["Dataset/a tune.mid", "Dataset/b's tune.mid", "LICENSE"]
    assert leftovers(dest) == ["tiny"]  # no archive, .part or staging folder left
    verify = run_cli("--sources", str(src), "verify", "tiny", "--dest", str(dest))
    assert verify.returncode == 0 and "OK" in verify.stdout
    (dest / "tiny" / "LICENSE").write_bytes(b"edited")
    assert run_cli("--sources", str(src), "verify", "tiny", "--dest", str(dest)).returncode == 1


def test_bad_checksum_unpacks_nothing(tmp_path: Path, server: Server) -> None:
    tampered = {**FILES, "Dataset/a tune.mid": b"MThd tampered"}
    server.routes["/tiny.tar.gz"] = (make_archive(tampered), None)
    src = write_sources(tmp_path, server.url("/tiny.tar.gz"), expected_digest(FILES))
    dest = tmp_path / "corpora"
    done = run_cli("--sources", str(src), "fetch", "tiny", "--dest", str(dest), "--no-progress")
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "does not match the pinned" in done.stderr and "nothing was unpacked" in done.stderr
    assert leftovers(dest) == []


def test_archive_sha256_is_checked_before_unpacking(tmp_path: Path, server: Server) -> None:
    server.routes["/tiny.tar.gz"] = (make_archive(FILES), None)
    src = write_sources(
        tmp_path, server.url("/tiny.tar.gz"), expected_digest(FILES), archive_sha256="0" * 64
    )
    dest = tmp_path / "corpora"
    done = run_cli("--sources", str(src), "fetch", "tiny", "--dest", str(dest), "--no-progress")
    assert done.returncode == 1 and "archive sha256" in done.stderr
    assert leftovers(dest) == []


def test_interrupted_download_leaves_nothing(tmp_path: Path, server: Server) -> None:
    body = make_archive(FILES)
    server.routes["/tiny.tar.gz"] = (body[: len(body) // 2], len(body))  # server hangs up early
    src = write_sources(tmp_path, server.url("/tiny.tar.gz"), expected_digest(FILES))
    dest = tmp_path / "corpora"
    done = run_cli("--sources", str(src), "fetch", "tiny", "--dest", str(dest), "--no-progress")
    assert done.returncode == 1
    assert "interrupted" in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr
    assert leftovers(dest) == []


def test_truncated_archive_without_length_is_reported(tmp_path: Path, server: Server) -> None:
    body = make_archive(FILES)
    server.routes["/tiny.tar.gz"] = (body[: len(body) // 2], None)  # looks whole, is not
    src = write_sources(tmp_path, server.url("/tiny.tar.gz"), expected_digest(FILES))
    dest = tmp_path / "corpora"
    done = run_cli("--sources", str(src), "fetch", "tiny", "--dest", str(dest), "--no-progress")
    assert done.returncode == 1 and "truncated or corrupt" in done.stderr, done.stderr
    assert leftovers(dest) == []


def test_no_network_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = write_sources(tmp_path, f"http://127.0.0.1:{port}/tiny.tar.gz", "0" * 64)
    dest = tmp_path / "corpora"
    done = run_cli("--sources", str(src), "fetch", "tiny", "--dest", str(dest), "--no-progress")
    assert done.returncode == 1
    assert done.stderr.startswith("corpora: cannot reach") and done.stderr.count("\n") == 1
    assert leftovers(dest) == []


def test_unknown_corpus_is_a_usage_error() -> None:
    done = run_cli("fetch", "nonesuch")
    assert done.returncode == 2 and "unknown corpus nonesuch" in done.stderr
    assert "Traceback" not in done.stderr


def test_fetch_inside_a_dvc_project_tracks_the_folder(tmp_path: Path, server: Server) -> None:
    server.routes["/tiny.tar.gz"] = (make_archive(FILES), None)
    src = write_sources(tmp_path, server.url("/tiny.tar.gz"), expected_digest(FILES))
    project = tmp_path / "project"
    project.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=project, check=True)
    (project / ".gitignore").write_text((REPO / ".gitignore").read_text())
    done = run_cli("--sources", str(src), "fetch", "tiny", "--no-progress", cwd=project)
    assert done.returncode == 0, done.stderr
    dvc_file = project / "data" / "corpora" / "tiny.dvc"
    assert dvc_file.is_file()
    # the .dvc file is committable: git does not ignore it, it ignores the data folder itself
    ignored = subprocess.run(["git", "check-ignore", "-q", str(dvc_file)], cwd=project)
    assert ignored.returncode == 1
    assert (
        subprocess.run(
            ["git", "check-ignore", "-q", "data/corpora/tiny/LICENSE"], cwd=project
        ).returncode
        == 0
    )


def test_motif_command_lists_the_pinned_corpora() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "modeling.motif", "corpora", "list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for name in ("openewld", "edm", "pop909", "asap"):
        assert name in done.stdout
    assert "CC BY-NC-SA 4.0" in done.stdout


@pytest.mark.corpus
def test_pins_match_the_shared_copies(shared_data: Path, tmp_path: Path) -> None:
    """The pinned content sha256 of every corpus is that of the copies the project was built on."""
    done = run_cli(
        "fetch",
        "all",
        "--from",
        str(shared_data),
        "--dest",
        str(tmp_path / "c"),
        "--no-progress",
        "--no-dvc",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("verified") == 4


@pytest.mark.parametrize("required", [False, True])
def test_missing_corpora_skip_or_fail(tmp_path: Path, required: bool) -> None:
    """Without corpora a corpus test skips with one line; MOTIF_REQUIRE_CORPORA=1 makes it fail."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "MOTIF_"))}
    env["MOTIF_SHARED_DATA"] = str(tmp_path / "absent")
    if required:
        env["MOTIF_REQUIRE_CORPORA"] = "1"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:xdist",
            "-p",
            "no:cacheprovider",
            "tests/test_corpora.py::test_pins_match_the_shared_copies",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if required:
        assert done.returncode != 0, done.stdout
        assert "MOTIF_REQUIRE_CORPORA is set" in done.stdout
    else:
        assert done.returncode == 0, done.stdout
        assert "1 skipped" in done.stdout
        assert "motif corpora fetch all" in done.stdout


def test_make_run_fetches_only_what_params_need(tmp_path: Path, server: Server) -> None:
    """`make run` runs `fetch needed --skip-present`: the corpora params.yaml reads from data_root,
    once; none when data_root points at a copy the user already has."""
    server.routes["/tiny.tar.gz"] = (make_archive(FILES), None)
    src = write_sources(tmp_path, server.url("/tiny.tar.gz"), expected_digest(FILES))
    project = tmp_path / "project"
    project.mkdir()
    params = project / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {"data_root": "data/corpora", "fetched_corpora": {"tiny": {"path": "tiny/Dataset"}}}
        )
    )
    args = ("--sources", str(src), "fetch", "needed", "--skip-present", "--no-dvc", "--no-progress")
    first = run_cli(*args, cwd=project)
    assert first.returncode == 0 and "tiny: 3 files verified" in first.stdout, first.stderr
    again = run_cli(*args, cwd=project)
    assert again.returncode == 0 and "already in" in again.stdout
    params.write_text(
        yaml.safe_dump({"data_root": "../elsewhere", "fetched_corpora": {"tiny": {"path": "tiny"}}})
    )
    (project / "data" / "corpora" / "tiny" / "LICENSE").unlink()
    elsewhere = run_cli(*args, cwd=project)
    assert elsewhere.returncode == 0 and elsewhere.stdout == ""
