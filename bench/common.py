"""What every benchmark shares: timing a command as its own process, and where the corpora are."""

from __future__ import annotations

import os
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def default_data_root() -> str:
    """``$MOTIF_SHARED_DATA``, else ``../shared/data`` beside the project (as the tests)."""
    return os.environ.get("MOTIF_SHARED_DATA", str(REPO.parent / "shared" / "data"))


@dataclass
class Run:
    """One timed process: wall seconds, CPU seconds of it and its children, and what it made."""

    wall_s: float
    cpu_s: float
    result: dict[str, Any]


def timed(command: list[str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Run ``command`` from the project root; (wall s, CPU s incl. children, the process).

    Interpreter start and imports count, as in Magenta's anchor figures; a failure stops the
    benchmark with the command's last error lines.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(command[1:5])} failed: {done.stderr.strip()[-500:]}")
    return elapsed, cpu, done
