"""A per-file time limit for the reader chain that really interrupts it.

``pipelines.ingest``'s parse step runs :func:`pipelines.readers.parse_file` through a
:class:`ParseWorker`. Beam executes DoFns on worker threads (never reliably the main thread), so
``signal.alarm`` cannot be used, and a Python thread cannot be killed. Instead each DoFn instance
keeps one long-lived child process, sends it one file at a time over a pipe, and kills and replaces
it when a file overruns the limit. The limit applies per file, and per tune inside a tunebook
(the child reports each finished tune), so a book of hundreds of tunes is not cut off for its
size. A child that dies (e.g. out of memory in a reader) is reported as ``reader_crash`` instead
of taking the Beam worker down with it.

How the child starts:

- ``fork`` (Linux default): a copy of the worker that already has the readers imported, so a
  (re)start costs milliseconds. The child only runs the readers (pure Python + note-seq/music21,
  no gRPC, no temp files, no locks shared with Beam's threads); a child that still hung on an
  inherited lock would be cut off by the same time limit.
- ``spawn`` (elsewhere, or inside a daemonic process): a fresh ``python -m pipelines.parse_worker``
  that imports only the readers; it signals when ready, so its import time never counts against
  the per-file limit.

Memory: with ``max_memory_mb > 0`` the child lowers its own address-space limit (``RLIMIT_AS``,
Linux) before each file to what it already holds plus ``max_memory_mb``, and restores it before
replying. A reader that needs more gets ``MemoryError``; the child reports the file as ``memory``
and the parent replaces the child (a fresh heap for the next file). Without such a cap a valid
12 MB MIDI of two million notes grew one child to about 2 GB. The cap counts address space the
file adds, which the readers' pure-Python objects grow in step with resident memory; a forked
child may also reuse the free heap it inherited without it counting, so its real headroom can
exceed the cap by that much (tens of MiB in a Beam worker, little against the default 2 GiB).

With ``timeout_s <= 0`` the chain runs in-process (no isolation, no time or memory limit).
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

from pipelines.readers import FileResult, Limits, parse_file

try:
    import resource
except ImportError:  # not on Windows: no memory cap there
    resource = None  # type: ignore[assignment]

READY = "ready"
HEARTBEAT = "tune"  # sent by the child between the tunes of a tunebook
STARTUP_TIMEOUT_S = 300.0  # imports only (spawn); generous for a loaded machine


def _address_space_bytes() -> int | None:
    """This process's current virtual size (Linux ``/proc``), None where unknown."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def memory_cap(max_memory_mb: float) -> Iterator[None]:
    """Let the block grow this process by at most ``max_memory_mb`` MiB (``RLIMIT_AS``).

    The cap is relative to what the process already holds, so a forked child of a large Beam
    worker gets the same headroom as a freshly spawned one. No-op when ``max_memory_mb <= 0``
    or where the platform cannot tell or enforce it.
    """
    size = _address_space_bytes() if max_memory_mb > 0 and resource is not None else None
    if size is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = size + int(max_memory_mb * 2**20)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _parse_capped(
    data: bytes, name: str, limits: Limits, max_memory_mb: float, replies: Connection
) -> FileResult:
    """One file under the memory cap; reader bugs and ``MemoryError`` become the file's result."""
    out_of_memory = False
    try:
        with memory_cap(max_memory_mb):
            return parse_file(data, name, limits, on_tune=lambda: replies.send(HEARTBEAT))
    except MemoryError:
        out_of_memory = True  # build the result after the except block has freed the frames
    except Exception as exc:  # a reader bug must not cost the child: report it as the file's
        return FileResult(format=None, reason="parse_error", detail=f"{exc!r}"[:2000])
    assert out_of_memory
    return FileResult(
        format=None,
        reason="memory",
        detail=f"reader chain needed more than max_memory_mb {max_memory_mb:g} MiB",
    )


def _serve(requests: Connection, replies: Connection) -> None:
    """Child loop: parse requests until the parent closes its end of the pipe."""
    replies.send(READY)  # imports are done: the parent starts the clock only now
    while True:
        try:
            data, name, limits, max_memory_mb = requests.recv()
        except (EOFError, OSError):
            return
        replies.send(_parse_capped(data, name, limits, max_memory_mb, replies))


def _serve_duplex(conn: Connection) -> None:
    _serve(conn, conn)


def default_start_method() -> str:
    """``fork`` where it is cheap and safe for our child, else ``spawn``.

    Safe means single-threaded: a Beam worker forking while its gRPC and bundle threads hold
    locks printed gRPC's "skipping fork() handlers" and aborted children ("Fatal Python error:
    Aborted" in the test runs). A spawned child costs an interpreter start per worker instead.
    """
    if (
        sys.platform.startswith("linux")
        and not multiprocessing.current_process().daemon
        and threading.active_count() == 1
    ):
        return "fork"
    return "spawn"


class ParseWorker:
    """Parses files in a child process with a wall-clock and a memory limit per file."""

    def __init__(
        self,
        timeout_s: float,
        limits: Limits | None = None,
        start_method: str | None = None,
        max_memory_mb: float = 0.0,
    ) -> None:
        self.timeout_s = timeout_s
        self.max_memory_mb = max_memory_mb
        self.limits = limits or Limits()
        self.start_method = start_method or default_start_method()
        if self.start_method not in ("fork", "spawn"):
            raise ValueError(f"start_method must be fork or spawn, got {self.start_method!r}")
        self._process: Any = None
        self._requests: Connection | None = None
        self._replies: Connection | None = None
        self._ready = False

    def start(self) -> None:
        """Start the child now (a spawned child's imports then overlap with other work)."""
        if self.timeout_s <= 0 or self._process is not None:
            return
        if self.start_method == "fork":
            ctx = multiprocessing.get_context("fork")
            parent, child = ctx.Pipe(duplex=True)
            self._process = ctx.Process(target=_serve_duplex, args=(child,), daemon=True)
            self._process.start()
            child.close()
            self._requests = self._replies = parent
            return
        child_in, parent_out = os.pipe()
        parent_in, child_out = os.pipe()
        env = dict(os.environ)
        # The child resolves imports exactly like this process (tests, editable installs, workers).
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
        env["PYTHONWARNINGS"] = "ignore"  # import-time noise (pydub, music21); outcomes are counted
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "pipelines.parse_worker", str(child_in), str(child_out)],
                pass_fds=(child_in, child_out),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
            )
        finally:
            os.close(child_in)
            os.close(child_out)
        self._requests = Connection(parent_out, readable=False)
        self._replies = Connection(parent_in, writable=False)

    def _alive(self) -> bool:
        if self._process is None:
            return False
        if isinstance(self._process, subprocess.Popen):
            return self._process.poll() is None
        return bool(self._process.is_alive())

    def _exit_code(self) -> int | None:
        if self._process is None:
            return None
        if isinstance(self._process, subprocess.Popen):
            return self._process.poll()
        return self._process.exitcode

    def _stop(self) -> None:
        for conn in {id(c): c for c in (self._requests, self._replies) if c is not None}.values():
            conn.close()
        self._requests = self._replies = None
        self._ready = False
        if self._process is not None:
            if self._alive():
                self._process.kill()
            if isinstance(self._process, subprocess.Popen):
                self._process.wait(timeout=10)
            else:
                self._process.join(timeout=10)
            self._process = None

    def parse(self, data: bytes, name: str) -> FileResult:
        """Parse one file; a timeout or a dead child becomes a quarantine outcome."""
        if self.timeout_s <= 0:
            return parse_file(data, name, self.limits)
        if self._process is not None and not self._alive():
            self._stop()  # died between files
        self.start()
        assert self._requests is not None and self._replies is not None
        try:
            if not self._ready:
                if not self._replies.poll(STARTUP_TIMEOUT_S) or self._replies.recv() != READY:
                    raise OSError("reader process did not start")
                self._ready = True
            self._requests.send((data, name, self.limits, self.max_memory_mb))
            while self._replies.poll(self.timeout_s):
                reply = self._replies.recv()
                if reply == HEARTBEAT:  # a heartbeat restarts the clock for the next tune
                    continue
                if reply.reason == "memory":
                    self._stop()  # the child's heap is spent: the next file gets a fresh one
                return reply
            reason, detail = "timeout", f"reader chain still running after {self.timeout_s:g} s"
        except (EOFError, OSError) as exc:
            reason = "reader_crash"
            detail = f"reader process died ({exc!r}, exit code {self._exit_code()})"
        self._stop()  # kill the runaway/dead child; the next file gets a fresh one
        return FileResult(format=None, reason=reason, detail=detail)

    def close(self) -> None:
        """Stop the child (the DoFn's teardown)."""
        self._stop()

    def __enter__(self) -> ParseWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str]) -> None:
    """Entry point of a spawned child: ``python -m pipelines.parse_worker IN_FD OUT_FD``."""
    _serve(Connection(int(argv[0]), writable=False), Connection(int(argv[1]), readable=False))


if __name__ == "__main__":
    main(sys.argv[1:])
